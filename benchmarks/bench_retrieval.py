"""Retrieval quality on this repository's own docs: recall@1, recall@5 and MRR.

The evaluation set (``benchmarks/retrieval_eval.json``) holds questions written from each
section of ``docs/``, each with the section(s) that answer it (source file + heading
path). ``docs/`` is indexed exactly as ``synapsekit index docs`` does (default split
settings, in memory), then each question is asked of each ranking:

- lexical: ``Store.search_lexical`` (FTS5 BM25 over heading + text), what ``RAG``
  uses without an embedding model;
- dense: cosine over vectors from a local, deterministic embedder (no network, no model
  download). No offline *semantic* embedding model is available to this benchmark, so
  two stand-ins are measured: ``hashed`` (word and character-trigram counts hashed into
  512 dimensions, sublinear tf, a bag-of-words vector: similar to BM25, not semantic) and
  ``sha`` (the test simulators' SHA-256 vectors: deterministic but meaningless, the floor
  a broken embedder would give). With a real embedding model, run the same code through
  ``--embedding-model`` (see below);
- hybrid: lexical top-10 and dense top-10 fused by reciprocal rank into the top 5, as
  ``RAG.retrieve`` does.

A retrieved passage is relevant when its source and heading match an answer. recall@k
is the share of questions with a relevant passage in the top k; MRR the mean of
1/rank of the first relevant passage (0 if none in the top 10).

    python benchmarks/bench_retrieval.py                 # the table for docs/performance.md
    python benchmarks/bench_retrieval.py --misses        # also list the questions missed at 1
    python benchmarks/bench_retrieval.py --embedding-model text-embedding-3-small  # a real one
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synapsekit.rag.pipeline import RAG, _heading_text  # noqa: E402
from synapsekit.rag.retrieval import Hit, rrf  # noqa: E402
from synapsekit.rag.store import Store  # noqa: E402

EVAL_SET = ROOT / "benchmarks" / "retrieval_eval.json"
DEPTH = 10
DIMENSIONS = 512
_WORD = re.compile(r"\w+")


def load_questions(path: Path = EVAL_SET) -> list[dict[str, Any]]:
    questions: list[dict[str, Any]] = json.loads(path.read_text())["questions"]
    return questions


def index_docs(root: Path = ROOT) -> RAG:
    """``docs/`` in an in-memory store, as ``synapsekit index docs`` would split it."""
    rag = RAG()
    rag.add(root / "docs")
    return rag


def relevant(hit: Hit, question: dict[str, Any], root: Path = ROOT) -> bool:
    return (
        hit.source == str(root / question["source"])
        and hit.metadata.get("heading") in question["headings"]
    )


def first_relevant_rank(hits: Sequence[Hit], question: dict[str, Any], root: Path = ROOT) -> int:
    """The 1-based rank of the first relevant hit, or 0."""
    for rank, hit in enumerate(hits, 1):
        if relevant(hit, question, root):
            return rank
    return 0


def scores(ranks: Sequence[int]) -> dict[str, float]:
    n = len(ranks)
    return {
        "recall@1": sum(r == 1 for r in ranks) / n,
        "recall@5": sum(0 < r <= 5 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
    }


# --------------------------------------------------------------------- local embedders


def hashed_vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """Words and character trigrams, hashed (signed) into ``dimensions``, tf as 1 + log."""
    counts: dict[str, int] = {}
    for word in _WORD.findall(text.lower()):
        counts[word] = counts.get(word, 0) + 1
        padded = f" {word} "
        for i in range(len(padded) - 2):
            gram = "#" + padded[i : i + 3]
            counts[gram] = counts.get(gram, 0) + 1
    vector = [0.0] * dimensions
    for feature, count in counts.items():
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[slot] += sign * (1.0 + math.log(count))
    return vector


def sha_vector(text: str) -> list[float]:
    from synapsekit.testing.simulators.openai_protocol import embedding_vector

    return embedding_vector(text, 64)


def add_vectors(store: Store, model: str, embed: Callable[[str], list[float]]) -> None:
    missing = store.missing_vectors()
    vectors = [embed(_heading_text(heading, text)) for _, heading, text in missing]
    store.set_embedding(model, len(vectors[0]))
    store.add_vectors([passage_id for passage_id, _, _ in missing], vectors)


# --------------------------------------------------------------------- the run


def evaluate(
    questions: Sequence[dict[str, Any]],
    rankings: dict[str, Callable[[str], list[Hit]]],
    root: Path = ROOT,
) -> dict[str, tuple[dict[str, float], list[int]]]:
    out = {}
    for name, search in rankings.items():
        ranks = [first_relevant_rank(search(q["q"]), q, root) for q in questions]
        out[name] = (scores(ranks), ranks)
    return out


def _rankings(store: Store, embed: Callable[[str], list[float]]) -> dict[str, Any]:
    def lexical(question: str) -> list[Hit]:
        return store.search_lexical(question, DEPTH)

    def dense(question: str) -> list[Hit]:
        return store.search_dense(embed(question), DEPTH)

    def hybrid(question: str) -> list[Hit]:
        return rrf([store.search_lexical(question, DEPTH), dense(question)], k=DEPTH)

    return {"lexical": lexical, "dense": dense, "hybrid": hybrid}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="list questions missed at rank 1")
    parser.add_argument("--embedding-model", help="a real embedding model (needs its key)")
    parser.add_argument("--embedding-base-url")
    args = parser.parse_args(argv)
    questions = load_questions()
    rag = index_docs()
    store = rag.store
    sources = {(h.source, h.metadata.get("heading")) for h in _all_hits(store)}
    stale = [q["q"] for q in questions
             if not any((str(ROOT / q["source"]), h) in sources for h in q["headings"])]
    print(f"docs/: {len(store.sources())} files, {store.count()} passages; "
          f"{len(questions)} questions ({len(stale)} whose section is gone)")
    for q in stale:
        print(f"  stale: {q}")
    results: dict[str, tuple[dict[str, float], list[int]]] = {}
    embedders: list[tuple[str, Callable[[str], list[float]]]] = [
        ("hashed", hashed_vector), ("sha", sha_vector)
    ]
    if args.embedding_model:
        embedders = [(args.embedding_model, _real_embedder(args))]
    for label, embed in embedders:
        fresh = index_docs()
        add_vectors(fresh.store, label, embed)
        for name, result in evaluate(questions, _rankings(fresh.store, embed)).items():
            key = name if name == "lexical" else f"{name} ({label})"
            results.setdefault(key, result)
        fresh.close()
    print(f"\n| ranking | recall@1 | recall@5 | MRR@{DEPTH} |\n|---|---:|---:|---:|")
    for name, (score, _) in results.items():
        print(f"| {name} | {score['recall@1']:.2f} | {score['recall@5']:.2f} | "
              f"{score['mrr']:.3f} |")
    if args.misses:
        ranks = results["lexical"][1]
        print("\nlexical, not first:")
        for q, rank in zip(questions, ranks, strict=True):
            if rank != 1:
                top = store.search_lexical(q["q"], 1)
                got = "-"
                if top:
                    got = f"{Path(top[0].source).name} > {top[0].metadata.get('heading')}"
                print(f"  rank {rank or '>10'}: {q['q']}  (first: {got})")
    rag.close()
    return 0


def _all_hits(store: Store) -> list[Hit]:
    with store._db() as connection:
        rows = connection.execute("SELECT id, text, source, metadata FROM passages").fetchall()
    return [Hit(row[0], row[1], row[2], json.loads(row[3]), 0.0) for row in rows]


def _real_embedder(args: argparse.Namespace) -> Callable[[str], list[float]]:
    from synapsekit.rag.embeddings import make_embedder

    embedder = make_embedder(args.embedding_model, base_url=args.embedding_base_url)

    def embed(text: str) -> list[float]:
        (vector,) = asyncio.run(embedder.embed([text]))
        return vector

    return embed


if __name__ == "__main__":
    raise SystemExit(main())
