"""RAG store: ingest throughput and retrieval latency at 10k and 100k passages.

The corpus is synthetic but shaped like prose: sentences of 8-20 words drawn from a
vocabulary of 8,000 made-up words (Zipf-Mandelbrot) and 36 common English words,
4-8 sentences per passage (~600 characters), 500 passages per source. Vectors are random
unit vectors of 384 dimensions (the size of small local embedding models), given as lists
of floats as an embedder returns them.

- ingest: passages per second written into a store file (one ``replace_source`` per
  source), once without vectors and once with them.
- retrieval: top-5 latency over 200 queries (median and p95, milliseconds), on the store
  with vectors, reopened from its file: lexical (FTS5 BM25), dense (cosine over the numpy
  matrix, loaded once before timing; the load is reported apart), and hybrid (lexical
  top-10 and dense top-10 fused by RRF into the top 5), the two searches run one after
  the other, then at once in two threads (the store's lock is not held during the numpy
  product, and SQLite and numpy both release the GIL). Queries are 3-8 words: half taken
  from a passage of the corpus, half random; a second lexical row uses only the 30 most
  frequent content words (the costliest queries: the term budget is what bounds them).

    python benchmarks/bench_rag.py                   # 10k and 100k, under a minute here
    python benchmarks/bench_rag.py --sizes 10000 --queries 500
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import accumulate
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from synapsekit.rag.retrieval import rrf  # noqa: E402
from synapsekit.rag.splitting import Passage  # noqa: E402
from synapsekit.rag.store import Store  # noqa: E402

DIMENSION = 384
PER_SOURCE = 500
TOP_K = 5
#: The most common English words: about 40% of the words of a sentence.
COMMON = [
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "with", "was",
    "on", "be", "by", "this", "are", "from", "or", "at", "an", "have", "which", "not",
    "but", "all", "can", "if", "will", "one", "more", "when", "there", "so", "what",
]


def vocabulary(rng: random.Random, size: int = 8000) -> list[str]:
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai")]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))))
    return sorted(words, key=lambda _: rng.random())


class Corpus:
    """Deterministic prose-like passages and queries.

    Content words follow a Zipf-Mandelbrot law (weight 1/(rank + 100)), as the words of
    English after its hundred most common ones do: the most frequent content word is in
    about a tenth of the passages, most words are rare.
    """

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        self.cumulative = list(accumulate(1.0 / (rank + 100) for rank in range(len(self.words))))

    def content(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=count)

    def sentence(self) -> str:
        words = [
            word if self.rng.random() > 0.4 else self.rng.choice(COMMON)
            for word in self.content(self.rng.randint(8, 20))
        ]
        return " ".join(words).capitalize() + "."

    def passage(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(4, 8)))

    def query(self, texts: Sequence[str]) -> str:
        if self.rng.random() < 0.5:
            words = self.rng.choice(texts).rstrip(".").split()
            start = self.rng.randrange(max(1, len(words) - 8))
            return "what about " + " ".join(words[start : start + self.rng.randint(3, 6)]) + "?"
        return " ".join(self.content(self.rng.randint(3, 8)))


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray[Any, Any]:
    vectors = rng.standard_normal((count, DIMENSION), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def ingest(path: Path, texts: list[str], vectors: np.ndarray[Any, Any] | None) -> float:
    """Write every passage into a new store file; returns passages per second."""
    store = Store(path)
    if vectors is not None:
        store.set_embedding("bench-embedding", DIMENSION)
    start = time.perf_counter()
    for first in range(0, len(texts), PER_SOURCE):
        source = f"docs/file{first // PER_SOURCE:05d}.md"
        passages = [
            Passage(text, source, {"index": i, "start": i * 600})
            for i, text in enumerate(texts[first : first + PER_SOURCE])
        ]
        rows = vectors[first : first + PER_SOURCE].tolist() if vectors is not None else None
        store.replace_source(source, f"hash{first}", passages, rows)
    elapsed = time.perf_counter() - start
    store.close()
    return len(texts) / elapsed


def latency(run: Callable[[int], object], count: int) -> tuple[float, float]:
    """Median and p95 of ``run(i)`` for i in range(count), in milliseconds (after warm-up)."""
    for i in range(min(20, count)):
        run(i)
    times = []
    for i in range(count):
        start = time.perf_counter()
        run(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), statistics.quantiles(times, n=20)[-1]


def bench_size(size: int, queries: int, directory: Path) -> list[tuple[str, str]]:
    corpus = Corpus()
    texts = [corpus.passage() for _ in range(size)]
    rng = np.random.default_rng(7)
    vectors = unit_vectors(rng, size)
    plain = ingest(directory / f"lex{size}.db", texts, None)
    with_vectors = ingest(directory / f"vec{size}.db", texts, vectors)
    rows = [
        ("ingest, no vectors", f"{plain:,.0f} passages/s"),
        ("ingest, 384-d vectors", f"{with_vectors:,.0f} passages/s"),
    ]
    start = time.perf_counter()
    store = Store(directory / f"vec{size}.db")
    rows.append(("reopen", f"{(time.perf_counter() - start) * 1000:.1f} ms"))
    query_texts = [corpus.query(texts) for _ in range(queries)]
    query_vectors = unit_vectors(rng, queries).tolist()
    start = time.perf_counter()
    store.search_dense(query_vectors[0], TOP_K)
    load = (time.perf_counter() - start) * 1000
    rows.append(("first dense search (loads matrix)", f"{load:.0f} ms"))

    frequent = corpus.words[:30]  # the most common content words: the costliest queries
    hard = [" ".join(corpus.rng.sample(frequent, 5)) for _ in range(queries)]

    def hybrid(i: int) -> object:
        lexical = store.search_lexical(query_texts[i], 2 * TOP_K)
        dense = store.search_dense(query_vectors[i], 2 * TOP_K)
        return rrf([lexical, dense], k=TOP_K)

    pool = ThreadPoolExecutor(1)

    def hybrid_parallel(i: int) -> object:  # as asyncio.gather over two to_thread calls
        dense = pool.submit(store.search_dense, query_vectors[i], 2 * TOP_K)
        lexical = store.search_lexical(query_texts[i], 2 * TOP_K)
        return rrf([lexical, dense.result()], k=TOP_K)

    for name, run in (
        ("lexical top-5", lambda i: store.search_lexical(query_texts[i], TOP_K)),
        ("lexical top-5, 5 frequent words", lambda i: store.search_lexical(hard[i], TOP_K)),
        ("dense top-5", lambda i: store.search_dense(query_vectors[i], TOP_K)),
        ("hybrid (rrf) top-5, one after other", hybrid),
        ("hybrid (rrf) top-5, in parallel", hybrid_parallel),
    ):
        median, p95 = latency(run, queries)
        rows.append((name, f"median {median:6.2f} ms   p95 {p95:6.2f} ms"))
    pool.shutdown()
    store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    import sqlite3

    python = sys.version.split()[0]
    print(f"Python {python}, SQLite {sqlite3.sqlite_version}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as directory:
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"\n{size:,} passages ({size // PER_SOURCE} sources of {PER_SOURCE})")
            for name, value in bench_size(size, args.queries, Path(directory)):
                print(f"  {name:<38} {value}")


if __name__ == "__main__":
    main()
