"""The RAG store on real SQLite files: persistence, BM25 and cosine search, fusion,
transactional writes, and the files it must refuse."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from synapsekit.errors import InvalidInputError, MissingDependencyError, StoreError
from synapsekit.rag.retrieval import (
    LEXICAL_BUDGET,
    Hit,
    fts_match,
    query_terms,
    rrf,
    select_terms,
)
from synapsekit.rag.splitting import Passage
from synapsekit.rag.store import Store

ROOT = Path(__file__).resolve().parent.parent

DISTRACTORS = [
    f"Chapter {i} describes the weather in town number {i}: rain, wind and some sun."
    for i in range(40)
]
TARGET = "The lighthouse keeper polished the Fresnel lens every evening before dusk."


def passages(source: str, texts: Sequence[str]) -> list[Passage]:
    return [Passage(text, source, {"index": i}) for i, text in enumerate(texts)]


def axis(dimension: int, hot: int, value: float = 1.0) -> list[float]:
    vector = [0.0] * dimension
    vector[hot] = value
    return vector


def snapshot(store: Store) -> dict[str, Any]:
    """Every row of every table, and a check that the FTS index matches its content."""
    connection = store._connection
    assert connection is not None
    connection.execute("INSERT INTO passages_fts (passages_fts) VALUES ('integrity-check')")
    return {
        table: connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in ("meta", "sources", "passages", "vectors", "migrations")
    }


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def corpus_store(tmp_path: Path) -> Iterator[Store]:
    """A file store: 40 distractors in one source, the target in another, 4-d vectors."""
    store = Store(tmp_path / "kb.db")
    store.set_embedding("test-embed", 4)
    store.replace_source(
        "weather.md", "h1", passages("weather.md", DISTRACTORS), [axis(4, 0)] * len(DISTRACTORS)
    )
    store.replace_source("lighthouse.md", "h2", passages("lighthouse.md", [TARGET]), [axis(4, 3)])
    yield store
    store.close()


# --------------------------------------------------------------------------- persistence

_CHILD = """
import json, sys
from synapsekit.rag.store import Store
store = Store(sys.argv[1])
found = {
    "count": store.count(),
    "sources": store.sources(),
    "embedding": store.embedding(),
    "hash": store.source_hash("lighthouse.md"),
    "lexical": [h.id for h in store.search_lexical("Fresnel lens polished")],
    "numpy_before_dense": "numpy" in sys.modules,
}
found["dense"] = [h.id for h in store.search_dense([0.1, 0.0, 0.0, 1.0], k=2)]
print(json.dumps(found))
"""


def test_a_store_file_reopens_with_everything_and_writes_nothing(
    tmp_path: Path, corpus_store: Store
) -> None:
    lexical = corpus_store.search_lexical("Fresnel lens polished")
    dense = corpus_store.search_dense([0.1, 0.0, 0.0, 1.0], k=2)
    target_id = lexical[0].id
    assert lexical[0].text == TARGET
    assert dense[0].id == target_id
    corpus_store.close()
    path = tmp_path / "kb.db"
    digest = file_digest(path)

    with Store(path) as again:
        assert again.count() == 41
        assert again.sources() == ["lighthouse.md", "weather.md"]
        assert again.embedding() == ("test-embed", 4)
        assert again.source_hash("lighthouse.md") == "h2"
        assert again.source_hash("missing.md") is None
        assert again.search_lexical("Fresnel lens polished") == lexical
        assert again.search_dense([0.1, 0.0, 0.0, 1.0], k=2) == dense
    assert file_digest(path) == digest  # reopening and searching wrote nothing

    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    assert json.loads(out.stdout) == {
        "count": 41,
        "sources": ["lighthouse.md", "weather.md"],
        "embedding": ["test-embed", 4],
        "hash": "h2",
        "lexical": [h.id for h in lexical],
        "dense": [h.id for h in dense],
        "numpy_before_dense": False,
    }
    assert file_digest(path) == digest


def test_hits_carry_source_metadata_and_score(corpus_store: Store) -> None:
    [hit] = corpus_store.search_lexical("lighthouse keeper", k=1)
    assert (hit.text, hit.source, hit.metadata) == (TARGET, "lighthouse.md", {"index": 0})
    assert hit.score > 0


def test_metadata_round_trips_as_json(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        meta = {"heading": "Intro > Setup", "page": 3, "tags": ["a", "b"], "path": tmp_path}
        store.replace_source("a.md", "h", [Passage("setup steps", "a.md", meta)], None)
    with Store(tmp_path / "m.db") as store:
        [hit] = store.search_lexical("setup")
    assert hit.metadata == {
        "heading": "Intro > Setup", "page": 3, "tags": ["a", "b"], "path": str(tmp_path)
    }


def test_in_memory_store() -> None:
    for store in (Store(), Store(":memory:")):
        assert store.path is None
        store.replace_source("t", "h", passages("t", ["alpha beta", "gamma"]), None)
        assert store.count() == 2
        assert [h.text for h in store.search_lexical("gamma")] == ["gamma"]
        store.close()


# --------------------------------------------------------------------------- lexical


def test_lexical_search_finds_the_passage_among_distractors(corpus_store: Store) -> None:
    hits = corpus_store.search_lexical("who polished the lens of the lighthouse?", k=5)
    assert hits[0].text == TARGET
    assert hits[0].id == 41  # 40 distractors were inserted first
    assert len(hits) == 1  # no distractor shares a word beyond the dropped stop words


def test_lexical_search_stems_words(corpus_store: Store) -> None:
    assert corpus_store.search_lexical("polishing lenses")[0].id == 41


def test_lexical_ranking_follows_bm25(tmp_path: Path) -> None:
    with Store() as store:
        store.replace_source(
            "s", "h",
            passages("s", ["rain", "rain rain wind", "wind only here", "nothing relevant"]),
            None,
        )
        hits = store.search_lexical("rain wind", k=5)
        assert [h.text for h in hits] == ["rain rain wind", "rain", "wind only here"]
        assert hits[0].score > hits[1].score > hits[2].score > 0


WEIRD_QUERIES = [
    "", "   ", '"', '""', 'a"b', "'", "*", "fox*", "-fox", "NOT fox", "fox AND", "AND",
    "OR", "NEAR", "NEAR(fox dog, 2)", "(", ")", "())((", "col:fox", "text:fox", "^fox",
    "+", "{fox}", "[fox]", "fox\x00dog", "💥🦊", "ünïcödé façade", "a" * 10_000,
    " ".join(f"w{i}" for i in range(500)), "fox; DROP TABLE passages; --", "\\", "%_",
]


@pytest.mark.parametrize("query", WEIRD_QUERIES)
def test_any_query_text_is_safe(corpus_store: Store, query: str) -> None:
    hits = corpus_store.search_lexical(query)
    assert isinstance(hits, list)
    assert corpus_store.count() == 41


def test_query_syntax_words_are_searched_as_words() -> None:
    with Store() as store:
        store.replace_source("s", "h", passages("s", ["NEAR the AND gate", "other text"]), None)
        assert [h.text for h in store.search_lexical('NEAR "AND" gate*')] == ["NEAR the AND gate"]


def test_query_terms_and_match_expression() -> None:
    assert query_terms('What is the "lens" of a lighthouse, lens-maker?') == [
        "lens", "lighthouse", "maker"
    ]
    assert query_terms("what is it") == ["what", "is", "it"]  # only stop words: kept
    assert query_terms('"*:()') == []
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == 32
    assert fts_match(["lens", "near"]) == '"lens" OR "near"'


def test_select_terms_takes_rare_terms_first_within_the_budget() -> None:
    frequencies = [("common", 7_000), ("absent", 0), ("rare", 3), ("mid", 2_997)]
    assert select_terms(frequencies) == ["rare", "mid", "common"]  # exactly the budget
    assert select_terms(frequencies, budget=9_999) == ["rare", "mid"]
    assert select_terms([("everywhere", 90_000), ("often", 50_000)]) == ["often"]
    assert select_terms([("absent", 0)]) == []
    assert LEXICAL_BUDGET == 10_000


def test_bad_k_is_refused(corpus_store: Store) -> None:
    for k in (0, -1, True, 2.5):
        with pytest.raises(InvalidInputError, match="k must be a positive integer"):
            corpus_store.search_lexical("lens", k=k)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="k must be a positive integer"):
            corpus_store.search_dense([1.0, 0.0, 0.0, 0.0], k=k)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- dense


def test_dense_search_ranks_by_cosine() -> None:
    with Store() as store:
        store.set_embedding("m", 3)
        vectors = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
        store.replace_source("s", "h", passages("s", ["x", "y", "xy", "zero"]), vectors)
        hits = store.search_dense([2.0, 0.2, 0.0], k=4)
        assert [h.text for h in hits] == ["x", "xy", "y", "zero"]
        norm = (4.0 + 0.04) ** 0.5
        expected = [2.0 / norm, 2.2 / norm / 2**0.5, 0.2 / norm, 0.0]
        assert [h.score for h in hits] == pytest.approx(expected, rel=1e-6)
        ties = store.search_dense([0.0, -1.0, 0.0], k=2)  # x and zero both score 0
        assert [(h.text, h.score) for h in ties] == [("x", 0.0), ("zero", 0.0)]  # lower id first


def test_dense_search_accepts_numpy_rows_and_matches_lists() -> None:
    import numpy as np

    rows = np.array([[0.5, 0.25, 1.0], [3.0, -1.0, 0.5]], dtype=np.float64)
    with Store() as as_lists, Store() as as_numpy:
        for store, vectors in ((as_lists, rows.tolist()), (as_numpy, list(rows))):
            store.set_embedding("m", 3)
            store.replace_source("s", "h", passages("s", ["a", "b"]), vectors)
        assert snapshot(as_lists)["vectors"] == snapshot(as_numpy)["vectors"]
        assert as_numpy.search_dense([3.0, -1.0, 0.5], k=1)[0].score == pytest.approx(1.0)


def test_dense_search_sees_every_write(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    with Store(path) as writer, Store(path) as reader:
        writer.set_embedding("m", 2)
        writer.replace_source("a", "h", passages("a", ["east"]), [[1.0, 0.0]])
        assert [h.text for h in reader.search_dense([0.0, 1.0], k=1)] == ["east"]
        writer.replace_source("b", "h", passages("b", ["north"]), [[0.0, 1.0]])  # other connection
        assert [h.text for h in reader.search_dense([0.0, 1.0], k=1)] == ["north"]
        reader.replace_source("b", "h2", passages("b", ["north-east"]), [[1.0, 1.0]])  # own write
        assert [h.text for h in reader.search_dense([0.0, 1.0], k=2)] == ["north-east", "east"]
        assert [h.text for h in reader.search_lexical("north")] == ["north-east"]


def test_dense_search_errors() -> None:
    with Store() as store:
        with pytest.raises(StoreError, match="no embedding model was recorded"):
            store.search_dense([1.0, 0.0])
        store.set_embedding("m", 2)
        assert store.search_dense([1.0, 0.0]) == []
        store.replace_source("a", "h", passages("a", ["east"]), [[1.0, 0.0]])
        with pytest.raises(InvalidInputError, match="3 dimensions; the store's vectors have 2"):
            store.search_dense([1.0, 0.0, 0.0])
        with pytest.raises(InvalidInputError, match="NaN or infinite"):
            store.search_dense([float("nan"), 0.0])


def test_dense_search_without_numpy_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['numpy'] = None  # as if numpy were not installed\n"
        "from synapsekit.rag.store import Store\n"
        "from synapsekit.errors import MissingDependencyError\n"
        "store = Store()\n"
        "store.set_embedding('m', 2)\n"
        "store.replace_source('a', 'h', [], [])\n"
        "print(store.search_lexical('anything'))\n"
        "try:\n"
        "    store.search_dense([1.0, 0.0])\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.splitlines() == [
        "[]",
        str(MissingDependencyError("numpy", "rag", feature="Dense retrieval")),
    ]


# --------------------------------------------------------------------------- fusion


def hit(hit_id: int, score: float = 0.0) -> Hit:
    return Hit(id=hit_id, text=f"t{hit_id}", source="s", metadata={}, score=score)


def test_rrf_fuses_by_reciprocal_rank() -> None:
    lexical = [hit(1, 9.0), hit(2, 8.0), hit(3, 7.0)]
    dense = [hit(3, 0.9), hit(1, 0.8), hit(4, 0.7)]
    fused = rrf([lexical, dense], k=5)
    assert [h.id for h in fused] == [1, 3, 2, 4]
    assert [h.score for h in fused] == [
        1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62, 1 / 63
    ]
    assert fused[0].text == "t1"
    assert [h.id for h in rrf([lexical, dense], k=2)] == [1, 3]
    assert [h.id for h in rrf([lexical, dense], k=5, constant=0)] == [1, 3, 2, 4]


def test_rrf_ties_keep_first_seen_order_and_empty_rankings() -> None:
    assert [h.id for h in rrf([[hit(7)], [hit(5)]])] == [7, 5]
    assert rrf([[], []]) == []
    assert rrf([]) == []
    with pytest.raises(InvalidInputError):
        rrf([[hit(1)]], k=0)


def test_hybrid_retrieval_over_the_store(corpus_store: Store) -> None:
    lexical = corpus_store.search_lexical("rain wind town", k=3)
    dense = corpus_store.search_dense([0.0, 0.0, 0.0, 1.0], k=3)
    fused = rrf([lexical, dense], k=3)
    assert fused[0].id == lexical[0].id  # first in lexical, second in dense (all ties)
    assert dense[0].id == 41
    assert 41 in [h.id for h in fused]


# --------------------------------------------------------------------------- embedding model


def test_embedding_model_and_dimension_are_fixed_per_store(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    with Store(path) as store:
        assert store.embedding() is None
        store.set_embedding("text-embedding-3-small", 1536)
        store.set_embedding("text-embedding-3-small", 1536)  # same again: fine
    with Store(path) as store:
        assert store.embedding() == ("text-embedding-3-small", 1536)
        with pytest.raises(StoreError) as model:
            store.set_embedding("nomic-embed-text", 1536)
        with pytest.raises(StoreError) as dimension:
            store.set_embedding("text-embedding-3-small", 512)
        assert store.embedding() == ("text-embedding-3-small", 1536)
    assert str(model.value) == (
        f"The RAG store {path} was built with embedding model text-embedding-3-small "
        "(dimension 1536); it cannot be searched or extended with embedding model "
        "nomic-embed-text (dimension 1536). Use the same model or a new store."
    )
    assert "with embedding model text-embedding-3-small (dimension 512)" in str(dimension.value)


def test_bad_embedding_settings_are_config_errors() -> None:
    from synapsekit.errors import ConfigError

    with Store() as store:
        for model, dimension in (("", 3), ("m", 0), ("m", True), ("m", "3")):
            with pytest.raises(ConfigError):
                store.set_embedding(model, dimension)  # type: ignore[arg-type]
        assert store.embedding() is None


# --------------------------------------------------------------------------- writes


def test_replace_source_is_idempotent_and_replaces(corpus_store: Store) -> None:
    before = corpus_store.count()
    again = passages("lighthouse.md", [TARGET])
    assert corpus_store.replace_source("lighthouse.md", "h2", again, [axis(4, 3)]) == 1
    assert corpus_store.count() == before
    assert [h.text for h in corpus_store.search_lexical("Fresnel")] == [TARGET]

    new = passages("lighthouse.md", ["The keeper retired.", "A robot tends the light now."])
    assert corpus_store.replace_source("lighthouse.md", "h3", new, [axis(4, 2), axis(4, 3)]) == 2
    assert corpus_store.count() == before + 1
    assert corpus_store.source_hash("lighthouse.md") == "h3"
    assert corpus_store.search_lexical("Fresnel") == []
    assert [h.text for h in corpus_store.search_lexical("robot")] == [new[1].text]
    assert [h.text for h in corpus_store.search_dense(axis(4, 3), k=1)] == [new[1].text]
    assert len(corpus_store.search_lexical("weather town", k=50)) == 40  # untouched
    snapshot(corpus_store)  # FTS index consistent with its content

    assert corpus_store.delete_source("lighthouse.md") == 2
    assert corpus_store.sources() == ["weather.md"]
    assert corpus_store.search_lexical("robot") == []
    assert corpus_store.delete_source("lighthouse.md") == 0


def test_a_source_with_no_passages_keeps_its_hash() -> None:
    with Store() as store:
        assert store.replace_source("empty.md", "e3b0", [], None) == 0
        assert store.source_hash("empty.md") == "e3b0"
        assert (store.count(), store.sources()) == (0, ["empty.md"])


class Exploding(Sequence[Passage]):
    """Passages that raise when the third one is read, like a generator failing halfway."""

    def __init__(self, items: list[Passage]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        if index == 2:
            raise RuntimeError("splitter failed on passage 3")
        return self.items[index]


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("wrong dimension", StoreError, "vector 2 has 3 dimensions; the store's embedding"),
        ("nan", InvalidInputError, "vector 2 contains NaN or infinite values"),
        ("not numbers", InvalidInputError, "vector 2: not a sequence of floats"),
        ("bad text", InvalidInputError, "passage 2: text must be a str, got bytes"),
        ("exception halfway", RuntimeError, "splitter failed on passage 3"),
        ("vector count", InvalidInputError, "4 passages but 3 vectors"),
    ],
)
def test_a_failed_write_leaves_the_store_exactly_as_before(
    corpus_store: Store, case: str, error: type[Exception], message: str
) -> None:
    before = snapshot(corpus_store)
    lexical = corpus_store.search_lexical("Fresnel lens")
    dense = corpus_store.search_dense(axis(4, 3), k=3)
    items: Sequence[Passage] = passages(
        "lighthouse.md", ["new one", "new two", "new three", "new four"]
    )
    vectors: list[Any] = [axis(4, 1)] * 4
    if case == "wrong dimension":
        vectors = [axis(4, 1), axis(4, 1), [1.0, 0.0, 0.0], axis(4, 1)]
    elif case == "nan":
        vectors = [axis(4, 1), axis(4, 1), axis(4, 0, float("nan")), axis(4, 1)]
    elif case == "not numbers":
        vectors = [axis(4, 1), axis(4, 1), ["a", "b", "c", "d"], axis(4, 1)]
    elif case == "bad text":
        items = [*items[:2], Passage(b"bytes", "lighthouse.md", {}), items[3]]  # type: ignore[arg-type]
    elif case == "exception halfway":
        items = Exploding(list(items))
    else:
        vectors = vectors[:3]
    with pytest.raises(error, match=message):
        corpus_store.replace_source("lighthouse.md", "changed", items, vectors)
    assert snapshot(corpus_store) == before
    assert corpus_store.source_hash("lighthouse.md") == "h2"
    assert corpus_store.search_lexical("Fresnel lens") == lexical
    assert corpus_store.search_lexical("new") == []
    assert corpus_store.search_dense(axis(4, 3), k=3) == dense


def test_vectors_need_a_recorded_embedding_model() -> None:
    with Store() as store:
        with pytest.raises(StoreError, match=r"call set_embedding\(model, dimension\)"):
            store.replace_source("a", "h", passages("a", ["x"]), [[1.0]])
        assert (store.count(), store.sources()) == (0, [])


def test_threads_share_one_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "kb.db")
    store.set_embedding("m", 2)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                source = f"t{n}-{i}"
                texts = [f"thread {n} item {i} alpha", f"thread {n} item {i} beta"]
                store.replace_source(source, "h", passages(source, texts), [[1.0, n], [n, 1.0]])
                store.search_lexical(f"alpha {n}")
                store.search_dense([1.0, float(i)])
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert store.count() == 120
    assert len(store.sources()) == 60
    assert len(store.search_dense([1.0, 1.0], k=200)) == 120
    store.close()


# --------------------------------------------------------------------------- files refused


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"The RAG store path {tmp_path} is a directory"):
        Store(tmp_path)


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    with Store(tmp_path / "a" / "b" / "kb.db") as store:
        assert store.path == str(tmp_path / "a" / "b" / "kb.db")
    assert (tmp_path / "a" / "b" / "kb.db").is_file()


def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot be used: cannot create"):
        Store(tmp_path / "file" / "kb.db")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    garbage = b"this is not a database, just some text " * 200
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match=f"The RAG store {path} cannot be used: file is not a"):
        Store(path)
    assert path.read_bytes() == garbage  # left as it was


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        connection.execute("INSERT INTO migrations VALUES ('m001_entries', 0)")
    connection.close()
    with pytest.raises(StoreError, match=f"The file {path} is an SQLite database but not a"):
        Store(path)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == [
            ("migrations",), ("sqlite_autoindex_migrations_1",)
        ]
    connection.close()


def test_an_empty_sqlite_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with Store(path) as store:
        assert store.count() == 0


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    Store(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO migrations VALUES ('rag999_future', 0)")
    connection.close()
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(caught.value) == (
        f"The RAG store {path} was written by a newer version of synapsekit (unknown schema "
        "migrations: rag999_future). Upgrade synapsekit, or use another store."
    )


def test_a_corrupted_store_fails_with_store_error(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    with Store(path) as store:
        texts = [f"passage number {i} about corruption" for i in range(2000)]
        store.replace_source("s", "h", passages("s", texts), None)
    data = bytearray(path.read_bytes())
    page = 4096
    data[page:] = b"\xa5" * (len(data) - page)  # keep the header page, wreck the rest
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=f"The RAG store {path} cannot be used"):
        store = Store(path)
        store.count()
        store.search_lexical("corruption")


def test_a_closed_store_says_so() -> None:
    store = Store()
    store.close()
    store.close()
    with pytest.raises(StoreError, match=r"The RAG store \(in memory\) is closed"):
        store.count()


def test_importing_the_store_loads_no_numpy() -> None:
    code = "import sys, synapsekit.rag.store; print('numpy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"
