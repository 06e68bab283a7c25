"""The SQLite answer cache: one file shared by every process of the machine.

No file I/O runs on an event loop: the file is prepared (created, checked, migrated,
purged) at construction only when no event loop is running in the building thread; built
inside a running loop (an async app building an LLM per request), the preparation is
deferred to the first use and runs on a worker thread (:meth:`SQLiteCache.prepare`).
Statements run through aiosqlite, whose I/O is on its own thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synapsekit._loops import PerLoop
from synapsekit._sqlite import (
    BUSY_RETRIES,
    Migration,
    apply_migrations,
    busy_pause,
    daemon_worker,
    is_busy,
    prepare_location,
    sqlite_code,
)
from synapsekit.errors import CacheError
from synapsekit.llm.cache.base import Cache, check_ttl, log, require
from synapsekit.llm.cache.codec import CachedAnswer, decode, encode

if TYPE_CHECKING:
    import sqlite3

__all__ = ["BUSY_RETRIES", "BUSY_TIMEOUT", "MIGRATIONS", "PURGE_INTERVAL", "SQLiteCache",
           "default_cache_path"]

#: SQLite: how long one statement waits for another process's write lock (then it is
#: retried BUSY_RETRIES times, synapsekit._sqlite).
BUSY_TIMEOUT = 5.0
#: SQLite: seconds between two purges of expired rows.
PURGE_INTERVAL = 60.0

# Named, recorded migrations (cf. simonw/llm): each runs once per file, in order, and is
# recorded in the ``migrations`` table. Never edit one; append a new one.
MIGRATIONS: tuple[Migration, ...] = (
    (
        "m001_entries",
        (
            """CREATE TABLE entries (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                created_at REAL NOT NULL,
                expires_at REAL
            )""",
            "CREATE INDEX entries_expires_at ON entries (expires_at) "
            "WHERE expires_at IS NOT NULL",
        ),
    ),
    (
        "m002_entry_count",  # a row count kept by triggers: stats()'s size without a scan
        (
            "CREATE TABLE entry_count (id INTEGER PRIMARY KEY CHECK (id = 0), "
            "n INTEGER NOT NULL)",
            "INSERT INTO entry_count (id, n) VALUES (0, (SELECT COUNT(*) FROM entries))",
            "CREATE TRIGGER entries_counted AFTER INSERT ON entries "
            "BEGIN UPDATE entry_count SET n = n + 1 WHERE id = 0; END",
            "CREATE TRIGGER entries_uncounted AFTER DELETE ON entries "
            "BEGIN UPDATE entry_count SET n = n - 1 WHERE id = 0; END",
        ),
    ),
)

_GET_SQL = (
    "SELECT c.n, e.value, e.expires_at FROM entry_count AS c "
    "LEFT JOIN entries AS e ON e.key = ? WHERE c.id = 0"
)
_SET_SQL = (
    "INSERT INTO entries (key, value, created_at, expires_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
    "created_at = excluded.created_at, expires_at = excluded.expires_at"
)
_COUNT_SQL = "SELECT n FROM entry_count WHERE id = 0"
_PURGE_SQL = "DELETE FROM entries WHERE expires_at <= ?"

_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def default_cache_path() -> str:
    """``$XDG_CACHE_HOME/synapsekit/llm-cache.db``, else ``~/.cache/synapsekit/...``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "synapsekit", "llm-cache.db")


def _is_corrupt(exc: BaseException) -> bool:
    code = sqlite_code(exc)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc)
    return "file is not a database" in text or "malformed" in text


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@dataclass
class _Db:
    connection: Any  # aiosqlite.Connection (optional package, untyped)
    generation: int


class SQLiteCache(Cache):
    """Answers in a SQLite file shared by every process of the machine that uses it.

    The file is created, checked and migrated once (:meth:`prepare`): at construction
    when no event loop is running in this thread (a script, a test), else — built inside
    a running loop — at the first use, on a worker thread, so the loop never waits for
    the disk. An unusable path or a schema from a newer synapsekit is a
    :class:`CacheError`: raised by the constructor, by :meth:`prepare`, or by the first
    ``get`` (so by the first call of an LLM using the cache; every later one too until
    the file is fixed) and :meth:`clear`; a background write logs it. ``await
    cache.prepare()`` at startup surfaces it early. A corrupt file is moved aside to
    ``<path>.corrupt-<unix time>`` and a fresh one started (a warning, no error).
    Calls then go through aiosqlite, one connection per event loop (closed with its
    loop), in WAL mode with a busy timeout plus a retry loop, so processes writing at
    once lose nothing.
    ``ttl`` seconds (None: forever) is checked on read; expired rows are purged now and
    then. The file is not bounded by a size: ``cache_maxsize`` does not apply here.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._aiosqlite = require("aiosqlite", "aiosqlite", "sqlite", "The SQLite cache")
        self.path = os.path.realpath(os.path.expanduser(os.fspath(path or default_cache_path())))
        self.ttl = check_ttl(ttl)
        self._clock = clock
        self._file_lock = threading.Lock()
        self._generation = 0
        self._identity: tuple[int, int] | None = None
        self._prepared = False
        self._last_purge = clock()
        self._connections: PerLoop[_Db] = PerLoop(
            self._connect, self._disconnect, cross_loop=True
        )
        if not _loop_running():
            self._prepare_once()  # nothing to block: a bad file is an error right here

    async def prepare(self) -> None:
        """Create, check and migrate the file now if not done yet, on a worker thread.
        Raises CacheError for a file that cannot be used."""
        if not self._prepared:
            await asyncio.to_thread(self._prepare_once)

    def __repr__(self) -> str:
        return f"SQLiteCache(path={self.path!r}, ttl={self.ttl})"

    # ---- calls

    async def _load(self, key: str) -> CachedAnswer | None:
        rows = await self._execute(_GET_SQL, (key,))
        count, value, expires = rows[0]
        self._size = int(count)
        if value is None or (expires is not None and self._clock() >= expires):
            return None
        return decode(value)

    async def _store(self, key: str, answer: CachedAnswer) -> None:
        value = encode(answer)
        now = self._clock()
        expires = now + self.ttl if self.ttl is not None else None
        await self._execute(_SET_SQL, (key, value, now, expires))
        if now - self._last_purge >= PURGE_INTERVAL:
            self._last_purge = now
            await self._execute(_PURGE_SQL, (now,))
        rows = await self._execute(_COUNT_SQL, ())
        self._size = int(rows[0][0])

    async def _clear(self) -> None:
        await self._execute("DELETE FROM entries", ())

    async def _release(self) -> None:
        await self._connections.close_all()

    async def _execute(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one statement; "database is locked" past the busy timeout is retried."""
        import sqlite3

        connection = await self._connection()
        for attempt in range(BUSY_RETRIES):
            try:
                return list(await connection.execute_fetchall(sql, params))
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or attempt == BUSY_RETRIES - 1:
                    raise
            await asyncio.sleep(busy_pause(attempt))
        raise AssertionError("unreachable")

    async def _connection(self) -> Any:
        if not self._prepared:
            await asyncio.to_thread(self._prepare_once)
        if _file_identity(self.path) != self._identity:  # deleted or replaced meanwhile
            await asyncio.to_thread(self._reopen_file)
        db = await self._connections.get()
        if db.generation != self._generation:
            await self._connections.discard(db)
            db = await self._connections.get()
        return db.connection

    async def _connect(self) -> _Db:
        generation = self._generation
        connection = self._aiosqlite.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None
        )
        daemon_worker(connection)
        await connection
        await connection.execute_fetchall("PRAGMA synchronous=NORMAL")
        return _Db(connection, generation)

    @staticmethod  # no self: PerLoop's close must not keep this object alive
    async def _disconnect(db: _Db) -> None:
        await db.connection.close()

    # ---- the file (synchronous, stdlib sqlite3)

    def _prepare_once(self) -> None:
        with self._file_lock:
            if not self._prepared:
                self._identity = self._prepare()
                self._prepared = True

    def _reopen_file(self) -> None:
        with self._file_lock:
            if _file_identity(self.path) == self._identity:
                return  # another thread already did
            self._log.warning(
                "%r: the cache file was deleted or replaced; starting on a new file", self
            )
            self._identity = self._prepare()
            self._generation += 1

    def _prepare(self) -> tuple[int, int] | None:
        """Create, check and migrate the file; returns its identity. Raises CacheError."""
        import sqlite3

        prepare_location(
            self.path, lambda reason: CacheError(f"The SQLite cache path {self.path} {reason}")
        )
        seen = _file_identity(self.path)
        try:
            self._size = self._open_file()
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise self._unusable(exc) from exc
            self._set_aside(seen, exc)
            try:
                self._size = self._open_file()
            except (sqlite3.Error, OSError) as again:
                raise self._unusable(again) from again
        except (sqlite3.Error, OSError) as exc:
            raise self._unusable(exc) from exc
        return _file_identity(self.path)

    def _unusable(self, exc: BaseException) -> CacheError:
        return CacheError(f"The SQLite cache file {self.path} cannot be used: {exc}")

    def _set_aside(self, seen: tuple[int, int] | None, exc: BaseException) -> None:
        if _file_identity(self.path) != seen:
            return  # another process already replaced it
        aside = f"{self.path}.corrupt-{int(time.time())}"
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.replace(self.path + suffix, aside + suffix)
        except OSError as move_failed:
            raise self._unusable(move_failed) from exc
        log.warning(
            "The SQLite cache file %s is corrupt (%s): moved it to %s and started a new cache.",
            self.path, exc, aside,
        )

    def _open_file(self) -> int:
        """Migrate the file and purge expired rows; returns the row count."""
        import sqlite3

        for attempt in range(BUSY_RETRIES):
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                _migrate(connection, self.path)
                connection.execute(_PURGE_SQL, (self._clock(),))
                return int(connection.execute(_COUNT_SQL).fetchone()[0])
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or attempt == BUSY_RETRIES - 1:
                    raise
            finally:
                connection.close()
            time.sleep(busy_pause(attempt))
        raise AssertionError("unreachable")


#: ``PRAGMA application_id`` of a synapsekit RAG store (``synapsekit.rag.store``).
_RAG_STORE_ID = int.from_bytes(b"SkRg", "big")


def _not_a_cache(connection: sqlite3.Connection, path: str) -> CacheError | None:
    """The error for another synapsekit file given as the cache: a RAG store (its
    application id, or its ``rag...`` migrations) or a call ledger (its ``calls`` table)."""
    app_id = connection.execute("PRAGMA application_id").fetchone()[0]
    tables = {row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    )}
    names: set[str] = set()
    if "migrations" in tables:
        names = {row[0] for row in connection.execute("SELECT name FROM migrations")}
    if app_id == _RAG_STORE_ID or any(name.startswith("rag") for name in names):
        kind = "a synapsekit RAG store (made by RAG(path=...) or `synapsekit index`)"
    elif "calls" in tables and "entries" not in tables:
        kind = "a synapsekit call ledger (TokenTracer(ledger=...))"
    else:
        return None
    return CacheError(
        f"The SQLite cache path {path} is {kind}, not an answer cache; the cache needs a "
        "file of its own: set cache_path to another file (e.g. 'cache.db'), or leave it "
        "unset for the default."
    )


def _migrate(connection: sqlite3.Connection, path: str) -> None:
    """Apply the missing migrations in one write transaction (processes may race here)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        foreign = _not_a_cache(connection, path)
        if foreign is not None:
            raise foreign
        apply_migrations(connection, MIGRATIONS, lambda unknown: CacheError(
            f"The SQLite cache file {path} was written by a newer version of synapsekit "
            f"(unknown schema migrations: {', '.join(unknown)}). Upgrade "
            "synapsekit, or set cache_path to another file."
        ))
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
