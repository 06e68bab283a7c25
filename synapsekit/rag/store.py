"""The RAG store: passages, their vectors and a BM25 index in one embedded SQLite file.

Why SQLite: it ships with Python, a store is one file that reopens with zero re-indexing
and zero embedding calls, FTS5 gives BM25 lexical search for free, and a transaction makes
an ingest all-or-nothing. Vectors are float32 blobs in their own table; dense search loads
them once into one numpy matrix (:class:`~synapsekit.rag.retrieval.VectorIndex`) and
reloads it only after a write, from this process or another one (``PRAGMA data_version``).

The calls are synchronous and thread-safe (one connection behind a lock); the RAG facade
runs them in a worker thread (``asyncio.to_thread``). Every SQLite failure is raised as a
:class:`~synapsekit.errors.StoreError` naming the file.

Layout (named, recorded migrations in a ``migrations`` table, as in the answer cache; the
file is marked with its own ``PRAGMA application_id`` so a foreign database is refused)::

    meta      (key, value)                      embedding model and dimension
    sources   (source, content_hash, updated_at)
    passages  (id, source, text, metadata JSON) + passages_fts (FTS5, porter stemming)
    vectors   (id -> passages.id, vector float32 little-endian blob)
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from synapsekit._sqlite import Migration, apply_migrations, prepare_location
from synapsekit.errors import ConfigError, InvalidInputError, StoreError
from synapsekit.rag.retrieval import (
    Hit,
    VectorIndex,
    _check_k,
    fts_match,
    query_terms,
    select_terms,
)

if TYPE_CHECKING:
    from types import TracebackType

    from synapsekit.rag.splitting import Passage

__all__ = ["APPLICATION_ID", "MIGRATIONS", "Hit", "Store"]

#: Written in the file header: a SQLite file with another id is not a synapsekit store.
APPLICATION_ID = int.from_bytes(b"SkRg", "big")
#: How long a statement waits for another process's write lock.
BUSY_TIMEOUT = 10.0
#: Document frequencies of query terms kept between two writes (then all dropped).
FREQUENCY_CACHE = 10_000

MIGRATIONS: tuple[Migration, ...] = (
    (
        "rag001_schema",
        (
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE sources (
                source TEXT PRIMARY KEY,
                content_hash TEXT NOT NULL,
                updated_at REAL NOT NULL
            )""",
            """CREATE TABLE passages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                source TEXT NOT NULL,
                text TEXT NOT NULL,
                metadata TEXT NOT NULL,
                heading TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX passages_source ON passages (source)",
            "CREATE TABLE vectors (id INTEGER PRIMARY KEY, vector BLOB NOT NULL)",
            # The heading path is indexed beside the text, weighted 2:1: a section titled
            # "Retries" is about retries even where its text says "attempt".
            """CREATE VIRTUAL TABLE passages_fts USING fts5 (
                heading, text, content='passages', content_rowid='id',
                tokenize='porter unicode61 remove_diacritics 2'
            )""",
            "INSERT INTO passages_fts (passages_fts, rank) VALUES ('rank', 'bm25(2.0, 1.0)')",
            """CREATE TRIGGER passages_ai AFTER INSERT ON passages BEGIN
                INSERT INTO passages_fts (rowid, heading, text)
                VALUES (new.id, new.heading, new.text);
            END""",
            """CREATE TRIGGER passages_ad AFTER DELETE ON passages BEGIN
                INSERT INTO passages_fts (passages_fts, rowid, heading, text)
                VALUES ('delete', old.id, old.heading, old.text);
            END""",
        ),
    ),
    (
        # Headings get an index of their own, so a heading word is weighed by how rare it
        # is among headings (BM25 per field, as a search engine scores a title apart from
        # the body): "retry" is common in text but names only the retry sections.
        "rag002_heading_index",
        (
            """CREATE VIRTUAL TABLE headings_fts USING fts5 (
                heading, content='passages', content_rowid='id',
                tokenize='porter unicode61 remove_diacritics 2'
            )""",
            """CREATE TRIGGER passages_ai_heading AFTER INSERT ON passages BEGIN
                INSERT INTO headings_fts (rowid, heading) VALUES (new.id, new.heading);
            END""",
            """CREATE TRIGGER passages_ad_heading AFTER DELETE ON passages BEGIN
                INSERT INTO headings_fts (headings_fts, rowid, heading)
                VALUES ('delete', old.id, old.heading);
            END""",
            "INSERT INTO headings_fts (headings_fts) VALUES ('rebuild')",
        ),
    ),
)

#: How much a heading match weighs against a match in the text (both BM25, each over
#: its own field's statistics); tuned on benchmarks/retrieval_eval.json, where 1.25-3
#: all rank the same first passages (see docs/performance.md, retrieval quality).
HEADING_WEIGHT = 1.5
#: Candidates taken from each field's ranking before the two scores are summed.
LEXICAL_CANDIDATES = 50

# The text's BM25 (the heading column weighs 0 here: headings are scored apart).
_TEXT_SQL = """
    SELECT rowid, bm25(passages_fts, 0.0, 1.0) AS score FROM passages_fts
    WHERE passages_fts MATCH ? ORDER BY score LIMIT ?
"""
_HEADING_SQL = """
    SELECT rowid, bm25(headings_fts) AS score FROM headings_fts
    WHERE headings_fts MATCH ? ORDER BY score LIMIT ?
"""
_TEXT_OF = (
    "SELECT rowid, bm25(passages_fts, 0.0, 1.0) FROM passages_fts "
    "WHERE passages_fts MATCH ? AND rowid IN ({})"
)
_HEADING_OF = (
    "SELECT rowid, bm25(headings_fts) FROM headings_fts "
    "WHERE headings_fts MATCH ? AND rowid IN ({})"
)
_ROWS_SQL = "SELECT id, text, source, metadata FROM passages WHERE id IN ({})"
_FREQUENCY_SQL = "SELECT count(*) FROM passages_fts WHERE passages_fts MATCH ?"
_BIG_ENDIAN = sys.byteorder == "big"


class Store:
    """Passages of many sources, searchable by BM25 and by cosine similarity.

    ``path=None`` keeps everything in memory; a file path opens (or creates) a store file
    in WAL mode. Raises StoreError for a directory, a file that cannot be opened, a
    corrupt file, a SQLite file that is not a store, or one written by a newer synapsekit.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path: str | None = None
        if path is not None and os.fspath(path) != ":memory:":
            self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        self._lock = threading.RLock()
        # Derived from the rows, dropped when they change (see _refresh).
        self._version: tuple[int, int] | None = None
        self._index: VectorIndex | None = None
        self._frequencies: dict[str, int] = {}
        self._writes = 0
        self._connection: sqlite3.Connection | None = None
        self._connection = self._open()

    def __repr__(self) -> str:
        return f"Store(path={self.path!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- opening

    def _open(self) -> sqlite3.Connection:
        target = self.path or ":memory:"
        if self.path is not None:
            prepare_location(
                self.path, lambda reason: StoreError(f"The RAG store path {self.path} {reason}")
            )
        try:
            connection = sqlite3.connect(
                target, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error("cannot be opened", exc) from exc
        try:
            if self.path is not None:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            self._migrate(connection)
        except BaseException as exc:
            connection.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error("cannot be used", exc) from exc
            raise
        return connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Check the file is ours, then apply missing migrations in one write transaction."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            app_id = connection.execute("PRAGMA application_id").fetchone()[0]
            tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != APPLICATION_ID:
                if app_id != 0 or tables:
                    raise StoreError(
                        f"The file {self._name} is an SQLite database but not a synapsekit "
                        "RAG store; choose another path."
                    )
                connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            apply_migrations(connection, MIGRATIONS, lambda unknown: StoreError(
                f"The RAG store {self._name} was written by a newer version of synapsekit "
                f"(unknown schema migrations: {', '.join(unknown)}). Upgrade "
                "synapsekit, or use another store."
            ))
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    # ---- plumbing

    @property
    def _name(self) -> str:
        return self.path or "(in memory)"

    def _error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(f"The RAG store {self._name} {what}: {exc}")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; SQLite errors become StoreError."""
        with self._lock:
            if self._connection is None:
                raise StoreError(f"The RAG store {self._name} is closed.")
            try:
                yield self._connection
            except sqlite3.Error as exc:
                raise self._error("cannot be used", exc) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole, or rolled back on any exception."""
        with self._db() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            finally:
                self._writes += 1  # a failed COMMIT may still have changed nothing: reload

    def _meta(self, connection: sqlite3.Connection, key: str) -> str | None:
        row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # ---- embedding model

    def embedding(self) -> tuple[str, int] | None:
        """The (model, dimension) the store's vectors were made with, if recorded."""
        with self._db() as connection:
            return self._embedding(connection)

    def _embedding(self, connection: sqlite3.Connection) -> tuple[str, int] | None:
        model = self._meta(connection, "embedding_model")
        dimension = self._meta(connection, "embedding_dimension")
        if model is None or dimension is None:
            return None
        return model, int(dimension)

    def set_embedding(self, model: str, dimension: int) -> None:
        """Record the embedding model and dimension; the same pair again is a no-op.

        Raises StoreError when the store was built with another model or dimension.
        """
        if not isinstance(model, str) or not model:
            raise ConfigError(f"embedding model: must be a non-empty string, got {model!r}")
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ConfigError(f"embedding dimension: must be a positive integer, got {dimension!r}")
        recorded = self.embedding()
        if recorded == (model, dimension):
            return  # the usual case: no write, nothing derived from the rows is dropped
        with self._transaction() as connection:
            recorded = self._embedding(connection)
            if recorded is None:
                connection.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("embedding_model", model), ("embedding_dimension", str(dimension))],
                )
            elif recorded != (model, dimension):
                raise self._mismatch(recorded, f"embedding model {model} (dimension {dimension})")

    def _mismatch(self, recorded: tuple[str, int], given: str) -> StoreError:
        return StoreError(
            f"The RAG store {self._name} was built with embedding model {recorded[0]} "
            f"(dimension {recorded[1]}); it cannot be searched or extended with {given}. "
            "Use the same model or a new store."
        )

    # ---- writing

    def source_hash(self, source: str) -> str | None:
        """The content hash recorded for ``source``, or None if it was never added."""
        with self._db() as connection:
            row = connection.execute(
                "SELECT content_hash FROM sources WHERE source = ?", (source,)
            ).fetchone()
        return None if row is None else str(row[0])

    def replace_source(
        self,
        source: str,
        content_hash: str,
        passages: Sequence[Passage],
        vectors: Sequence[Sequence[float]] | None,
    ) -> int:
        """Make ``passages`` (and their ``vectors``) the whole content of ``source``.

        One transaction: the source's old passages and vectors are deleted, the new ones
        inserted and ``content_hash`` recorded. Any failure, including an exception raised
        halfway through ``passages`` or a vector of the wrong dimension, rolls everything
        back. Returns the number of passages added.
        """
        if vectors is not None and len(vectors) != len(passages):
            raise InvalidInputError(
                f"replace_source({source!r}): {len(passages)} passages but {len(vectors)} vectors"
            )
        with self._transaction() as connection:
            dimension = self._vector_dimension(connection, vectors)
            connection.execute(
                "DELETE FROM vectors WHERE id IN (SELECT id FROM passages WHERE source = ?)",
                (source,),
            )
            connection.execute("DELETE FROM passages WHERE source = ?", (source,))
            for number, passage in enumerate(passages):
                cursor = connection.execute(
                    "INSERT INTO passages (source, text, metadata, heading) VALUES (?, ?, ?, ?)",
                    (source, _text(passage.text, number), _json(passage.metadata),
                     str((passage.metadata or {}).get("heading") or "")),
                )
                if vectors is not None and dimension is not None:
                    connection.execute(
                        "INSERT INTO vectors VALUES (?, ?)",
                        (cursor.lastrowid, _blob(vectors[number], dimension, number)),
                    )
            connection.execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?)",
                (source, content_hash, time.time()),
            )
        return len(passages)

    def _vector_dimension(
        self, connection: sqlite3.Connection, vectors: Sequence[Sequence[float]] | None
    ) -> int | None:
        if vectors is None:
            return None
        recorded = self._embedding(connection)
        if recorded is None:
            raise StoreError(
                f"The RAG store {self._name} has no embedding model recorded; call "
                "set_embedding(model, dimension) before adding vectors."
            )
        return recorded[1]

    def delete_source(self, source: str) -> int:
        """Remove ``source``, its passages and vectors; returns the passages removed."""
        with self._transaction() as connection:
            connection.execute(
                "DELETE FROM vectors WHERE id IN (SELECT id FROM passages WHERE source = ?)",
                (source,),
            )
            removed = connection.execute("DELETE FROM passages WHERE source = ?", (source,))
            connection.execute("DELETE FROM sources WHERE source = ?", (source,))
            return removed.rowcount

    def missing_vectors(self) -> list[tuple[int, str, str]]:
        """``(id, heading, text)`` of every passage that has no vector, by id: what a
        store indexed without an embedding model needs embedded once one is turned on."""
        with self._db() as connection:
            rows = connection.execute(
                "SELECT p.id, p.heading, p.text FROM passages AS p "
                "WHERE NOT EXISTS (SELECT 1 FROM vectors AS v WHERE v.id = p.id) ORDER BY p.id"
            ).fetchall()
        return [(int(row[0]), str(row[1]), str(row[2])) for row in rows]

    def add_vectors(self, ids: Sequence[int], vectors: Sequence[Sequence[float]]) -> int:
        """Store ``vectors[i]`` as the vector of passage ``ids[i]`` (replacing any), in one
        transaction; ids of passages deleted meanwhile are passed over. Returns how many
        were written. The embedding model must be recorded (:meth:`set_embedding`)."""
        if len(ids) != len(vectors):
            raise InvalidInputError(f"add_vectors: {len(ids)} ids but {len(vectors)} vectors")
        written = 0
        with self._transaction() as connection:
            dimension = self._vector_dimension(connection, vectors)
            assert dimension is not None
            for number, (passage_id, vector) in enumerate(zip(ids, vectors, strict=True)):
                blob = _blob(vector, dimension, number)
                cursor = connection.execute(
                    "INSERT OR REPLACE INTO vectors SELECT id, ? FROM passages WHERE id = ?",
                    (blob, passage_id),
                )
                written += cursor.rowcount
        return written

    # ---- searching

    def search_lexical(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` passages that best match the words of ``query`` by BM25.

        Any text is a valid query: its words are searched for, never parsed as FTS5
        syntax. Words too common to be worth scoring are left out
        (:func:`~synapsekit.rag.retrieval.select_terms`). The score is the text's BM25
        plus HEADING_WEIGHT times the heading path's BM25, each field with its own
        statistics (a word that names a section counts for more than one that is merely
        frequent in the text), over the best LEXICAL_CANDIDATES of either field; higher
        is better. Ties keep the lower id first.
        """
        _check_k(k)
        terms = query_terms(query)
        if not terms:
            return []
        with self._db() as connection:
            self._refresh(connection)
            frequencies = [(term, self._frequency(connection, term)) for term in terms]
            kept = select_terms(frequencies)
            if not kept:
                return []
            match = fts_match(kept)
            depth = max(LEXICAL_CANDIDATES, k)
            text = dict(connection.execute(_TEXT_SQL, (match, depth)).fetchall())
            heading = dict(connection.execute(_HEADING_SQL, (match, depth)).fetchall())
            # Each candidate's score in the field whose top list it missed, exactly.
            for scores, sql, other in ((text, _TEXT_OF, heading), (heading, _HEADING_OF, text)):
                absent = [i for i in other if i not in scores]
                if absent:
                    marks = ",".join("?" * len(absent))
                    scores.update(connection.execute(sql.format(marks), (match, *absent)))
            total = {
                i: -float(text.get(i, 0.0)) - HEADING_WEIGHT * float(heading.get(i, 0.0))
                for i in text.keys() | heading.keys()
            }
            best = sorted(total, key=lambda i: (-total[i], i))[:k]
            rows = connection.execute(
                _ROWS_SQL.format(",".join("?" * len(best))), best
            ).fetchall()
        found = {row[0]: row for row in rows}
        return [_hit(found[i], total[i]) for i in best if i in found]

    def _frequency(self, connection: sqlite3.Connection, term: str) -> int:
        """How many passages contain ``term`` (cached until the next write)."""
        count = self._frequencies.get(term)
        if count is None:
            if len(self._frequencies) >= FREQUENCY_CACHE:
                self._frequencies.clear()
            count = connection.execute(_FREQUENCY_SQL, (fts_match([term]),)).fetchone()[0]
            self._frequencies[term] = count
        return int(count)

    def _refresh(self, connection: sqlite3.Connection) -> None:
        """Forget what was derived from the rows if any connection wrote since."""
        version = (connection.execute("PRAGMA data_version").fetchone()[0], self._writes)
        if version != self._version:
            self._version = version
            self._index = None
            self._frequencies.clear()

    def search_dense(self, vector: Sequence[float], k: int = 5) -> list[Hit]:
        """The ``k`` passages whose vectors are closest to ``vector`` by cosine similarity.

        Needs numpy (the ``rag`` extra). Raises StoreError when no embedding model is
        recorded, InvalidInputError for a vector of another dimension.
        """
        _check_k(k)
        with self._db() as connection:
            index = self._vector_index(connection)
        ranked = index.search(vector, k)  # outside the lock: a lexical search may run meanwhile
        if not ranked:
            return []
        scores = dict(ranked)
        with self._db() as connection:
            rows = connection.execute(
                f"SELECT id, text, source, metadata FROM passages WHERE id IN "
                f"({','.join('?' * len(scores))})",
                list(scores),
            ).fetchall()
        hits = {row[0]: _hit(row, scores[row[0]]) for row in rows}
        return [hits[passage_id] for passage_id, _ in ranked if passage_id in hits]

    def _vector_index(self, connection: sqlite3.Connection) -> VectorIndex:
        """The matrix of all vectors, reloaded after any write by any connection."""
        self._refresh(connection)
        if self._index is not None:
            return self._index
        recorded = self._embedding(connection)
        if recorded is None:
            raise StoreError(
                f"The RAG store {self._name} has no vectors: no embedding model was recorded."
            )
        size = 4 * recorded[1]
        ids: list[int] = []
        data = bytearray()
        for passage_id, blob in connection.execute("SELECT id, vector FROM vectors ORDER BY id"):
            if len(blob) != size:
                raise StoreError(
                    f"The RAG store {self._name} is corrupt: the vector of passage "
                    f"{passage_id} has {len(blob)} bytes, expected {size}."
                )
            ids.append(passage_id)
            data += blob
        self._index = VectorIndex(ids, data, recorded[1])
        return self._index

    # ---- reading

    def count(self) -> int:
        """The number of passages in the store."""
        with self._db() as connection:
            return int(connection.execute("SELECT count(*) FROM passages").fetchone()[0])

    def sources(self) -> list[str]:
        """Every source added, sorted."""
        with self._db() as connection:
            rows = connection.execute("SELECT source FROM sources ORDER BY source").fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        """Close the file (idempotent); the store cannot be used afterwards."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            self._index = None
            self._frequencies.clear()


def _hit(row: Sequence[Any], score: float) -> Hit:
    return Hit(id=row[0], text=row[1], source=row[2], metadata=json.loads(row[3]), score=score)


def _text(text: object, number: int) -> str:
    if not isinstance(text, str):
        raise InvalidInputError(f"passage {number}: text must be a str, got {type(text).__name__}")
    return text


def _json(metadata: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(metadata or {}), ensure_ascii=False, default=str)


def _blob(vector: Sequence[float], dimension: int, number: int) -> bytes:
    """``vector`` as little-endian float32 bytes; checks its dimension and finiteness."""
    values = array("f")
    if hasattr(vector, "astype"):  # a numpy row: no per-element Python loop
        values.frombytes(vector.astype("=f4").tobytes())
    else:
        try:
            values = array("f", vector)
        except (TypeError, OverflowError) as exc:
            raise InvalidInputError(f"vector {number}: not a sequence of floats: {exc}") from None
    if len(values) != dimension:
        raise StoreError(
            f"vector {number} has {len(values)} dimensions; the store's embedding model "
            f"makes {dimension}."
        )
    total = sum(values)
    if total != total or total in (float("inf"), float("-inf")):
        raise InvalidInputError(f"vector {number} contains NaN or infinite values")
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tobytes()
