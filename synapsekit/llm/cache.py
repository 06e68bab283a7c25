"""Answer caches: an in-process LRU, a SQLite file, a Redis server.

Why a cache here: the same prompt with the same settings is often asked again (retries of
a whole job, tests, a web app rebuilding its LLM object per request), and a stored answer
replayed through ``stream()`` costs nothing and arrives at once. Why three backends:
"memory" is per process and fastest, "sqlite" survives restarts and is shared by the
processes of one machine, "redis" is shared by every machine.

The rules every backend keeps:

- The key (:func:`cache_key`) is a SHA-256 over everything that shapes the answer and
  never the API key, so a stored answer is only ever replayed for the same question.
- A cache never fails a call. Once open, any runtime failure of ``get``/``set`` (disk
  full, file deleted, server down, corrupt row) is logged to the ``synapsekit.cache``
  logger, at most once a minute per backend, and is a miss or a skipped write. Only
  opening a cache that cannot work (:func:`open_cache`) and an explicit ``clear()`` raise
  :class:`~synapsekit.errors.CacheError`.
- One backend object serves every LLM object of the process with the same settings
  (:func:`open_cache`), from any thread and event loop: the sync wrappers run on a
  background loop, so loop-bound connections are kept one per running loop.

Optional packages (``aiosqlite``, ``redis``) and ``sqlite3`` are imported when a backend is
first built, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from synapsekit._logging import ThrottledLog
from synapsekit._sqlite import Migration, apply_migrations, prepare_location
from synapsekit.errors import CacheError, ConfigError, MissingDependencyError, redact
from synapsekit.llm.config import LLMConfig, redact_url, redis_url, url_password
from synapsekit.llm.types import Message, Usage

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "KEY_VERSION",
    "Cache",
    "CachedAnswer",
    "MemoryCache",
    "RedisCache",
    "SQLiteCache",
    "cache_key",
    "open_cache",
]

#: Version of the key format and of the stored value; bump it when either changes, so an
#: old entry can never be read as a new one.
KEY_VERSION: int = 1

#: SQLite: how long one statement waits for another process's write lock, and how often
#: a still-busy statement is retried after that.
BUSY_TIMEOUT = 5.0
BUSY_RETRIES = 8
#: SQLite: seconds between two purges of expired rows.
PURGE_INTERVAL = 60.0
#: Redis: after a connection failure the server is not tried again for this long (calls
#: are misses meanwhile), so a dead server does not add a timeout to every call.
REDIS_RETRY_AFTER = 1.0
#: Redis: connections per event loop; more concurrent calls wait for a free one.
REDIS_CONNECTIONS = 32

#: Header names containing one of these (lower-cased) are credentials: never in a key.
_SECRET_HEADER_PARTS = ("auth", "key", "token", "secret", "cookie")
_USAGE_FIELDS = frozenset(f.name for f in fields(Usage))

log = logging.getLogger("synapsekit.cache")
T = TypeVar("T")


# --------------------------------------------------------------------------- the key


def cache_key(config: LLMConfig, messages: Sequence[Message]) -> str:
    """The hex SHA-256 naming the answer to ``messages`` under ``config``.

    Covers the key format version, provider, ``base_url``, model, every message (the
    system prompt is the first one when there is one), temperature, max_tokens, stop,
    params, api_version and the headers that are not credentials. Never the API key.
    A ``params`` value JSON cannot encode is a ConfigError, before any request: an
    SDK object (e.g. a pydantic config) counts by its ``model_dump()``.
    """
    headers = {
        name.lower(): value
        for name, value in config.headers.items()
        if not any(part in name.lower() for part in _SECRET_HEADER_PARTS)
    }
    payload = {
        "version": KEY_VERSION,
        "provider": config.provider,
        "base_url": config.base_url,
        "model": config.model,
        "messages": [dict(message) for message in messages],
        "temperature": float(config.temperature),
        "max_tokens": config.max_tokens,
        "stop": list(config.stop) if config.stop is not None else None,
        "params": dict(config.params),
        "api_version": config.api_version,
        "headers": headers,
    }
    try:
        text = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params: cannot be part of a cache key: {exc}") from None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models, e.g. google-genai configs
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    raise TypeError(f"a {type(value).__name__} is not JSON")


# --------------------------------------------------------------------------- the value


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A finished answer as it was streamed: replayed chunk by chunk on a hit.

    ``usage`` is what the original call used (informational: a hit costs nothing);
    ``metadata`` is the provider's JSON-able final metadata (e.g. citations).
    """

    chunks: tuple[str, ...]
    finish_reason: str | None = None
    usage: Usage | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.chunks, tuple):
            object.__setattr__(self, "chunks", tuple(self.chunks))

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def _encode(answer: CachedAnswer) -> str:
    return json.dumps(
        {
            "chunks": list(answer.chunks),
            "finish_reason": answer.finish_reason,
            "usage": asdict(answer.usage) if answer.usage is not None else None,
            "metadata": dict(answer.metadata) if answer.metadata is not None else None,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _decode(raw: str | bytes) -> CachedAnswer:
    """Rebuild an answer, refusing anything that is not one (a corrupt or foreign value)."""
    data = json.loads(raw)
    chunks = data.get("chunks") if isinstance(data, dict) else None
    usage = data.get("usage") if isinstance(data, dict) else None
    if (
        not isinstance(chunks, list)
        or not all(isinstance(c, str) for c in chunks)
        or not isinstance(data.get("finish_reason"), (str, type(None)))
        or not isinstance(usage, (dict, type(None)))
        or not isinstance(data.get("metadata"), (dict, type(None)))
    ):
        raise ValueError("the stored value is not a synapsekit answer")
    return CachedAnswer(
        chunks=tuple(chunks),
        finish_reason=data.get("finish_reason"),
        usage=Usage(**{k: v for k, v in usage.items() if k in _USAGE_FIELDS})
        if usage is not None
        else None,
        metadata=data.get("metadata"),
    )


# --------------------------------------------------------------------------- the interface


class Cache(ABC):
    """A store of finished answers by :func:`cache_key`.

    One instance may be shared by many LLM objects, threads and event loops. ``get`` and
    ``set`` never raise for a runtime failure: they log a warning and behave as a miss or
    a skipped write (a call never fails because of its cache). ``clear`` may raise
    :class:`CacheError`: the user asked for it. ``aclose`` releases connections; the
    cache stays usable and reconnects when used again.
    """

    def __init__(self) -> None:
        self._stats_lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._size = 0
        self._log = ThrottledLog(log)

    async def get(self, key: str) -> CachedAnswer | None:
        """The stored answer, or None (missing, expired, or the cache failed)."""
        try:
            answer = await self._load(key)
        except Exception as exc:  # a cache never fails a call (class docstring)
            self._failed("lookup", "miss", exc)
            answer = None
        with self._stats_lock:
            if answer is None:
                self._misses += 1
            else:
                self._hits += 1
        return answer

    async def set(self, key: str, answer: CachedAnswer) -> None:
        """Store ``answer`` (with the cache's TTL); a failure is logged and skipped."""
        try:
            await self._store(key, answer)
        except Exception as exc:  # a cache never fails a call (class docstring)
            self._failed("write", "skipped", exc)

    async def clear(self) -> None:
        """Remove every entry of this cache (only ours), for every process using it."""
        try:
            await self._clear()
        except CacheError:
            raise
        except Exception as exc:  # re-raised as the one documented type
            raise CacheError(f"Could not clear {self!r}: {self._describe_error(exc)}") from exc
        self._size = 0

    def stats(self) -> dict[str, int]:
        """``{"hits", "misses", "size"}``: lookups of this process; ``size`` as of the last
        operation of this process (no I/O)."""
        with self._stats_lock:
            return {"hits": self._hits, "misses": self._misses, "size": self._size}

    async def aclose(self) -> None:  # noqa: B027 - a backend without connections has none
        """Release connections; the cache reconnects if used again."""

    @abstractmethod
    async def _load(self, key: str) -> CachedAnswer | None: ...

    @abstractmethod
    async def _store(self, key: str, answer: CachedAnswer) -> None: ...

    @abstractmethod
    async def _clear(self) -> None: ...

    def _failed(self, operation: str, outcome: str, exc: Exception) -> None:
        self._log.warning(
            "%r: cache %s failed (%s), the call goes on: %s",
            self, operation, outcome, self._describe_error(exc),
        )

    def _describe_error(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"


def _require(module: str, package: str, extra: str, feature: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, extra, feature=feature) from exc


def _check_ttl(ttl: float | None) -> float | None:
    if ttl is not None and (isinstance(ttl, bool) or not ttl > 0):
        raise ConfigError(f"cache_ttl: must be > 0 seconds or None, got {ttl!r}")
    return ttl


# --------------------------------------------------------------------------- memory


class MemoryCache(Cache):
    """An LRU of ``maxsize`` answers in this process, each kept ``ttl`` seconds (None:
    until evicted). O(1) per operation under one lock; ``clock`` is injectable."""

    def __init__(
        self,
        maxsize: int = 128,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigError(f"cache_maxsize: must be a whole number >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.ttl = _check_ttl(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[CachedAnswer, float]] = OrderedDict()

    async def _load(self, key: str) -> CachedAnswer | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            answer, expires = entry
            if self._clock() >= expires:
                del self._entries[key]
                self._size = len(self._entries)
                return None
            self._entries.move_to_end(key)
            return answer

    async def _store(self, key: str, answer: CachedAnswer) -> None:
        # Through JSON, as the other backends: a value that could not be stored there is
        # not stored here either, and the entry shares nothing mutable with the caller.
        stored = _decode(_encode(answer))
        expires = self._clock() + self.ttl if self.ttl is not None else math.inf
        with self._lock:
            self._entries[key] = (stored, expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            self._size = len(self._entries)

    async def _clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __repr__(self) -> str:
        return f"MemoryCache(maxsize={self.maxsize}, ttl={self.ttl})"


# --------------------------------------------------------------------------- per-loop resources


@dataclass
class _Slot(Generic[T]):
    lock: asyncio.Lock
    value: T | None = None


class _PerLoop(Generic[T]):
    """One connection per running event loop, opened once however many tasks ask at once.

    asyncio connections are bound to the loop that opened them; the sync wrappers run
    on a background loop, tests and apps on others. When a new loop shows up, the
    connections of loops that have since closed are released (``cross_loop``: the
    connection can be closed from another loop; else it is dropped, its sockets die
    with their loop).
    """

    def __init__(
        self,
        open_: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
        *,
        cross_loop: bool,
    ) -> None:
        self._open = open_
        self._close = close
        self._cross_loop = cross_loop
        self._lock = threading.Lock()
        self._slots: dict[asyncio.AbstractEventLoop, _Slot[T]] = {}

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is not None and slot.value is not None:
            return slot.value
        if slot is None:
            slot, stale = self._add(loop)
            for value in stale:
                await self._quietly_close(value)
        async with slot.lock:
            if slot.value is None:
                slot.value = await self._open()
            return slot.value

    async def discard(self, value: T) -> None:
        """Forget (and close) ``value``, e.g. a connection to a file that was replaced."""
        slot = self._slots.get(asyncio.get_running_loop())
        if slot is not None and slot.value is value:
            slot.value = None
            await self._quietly_close(value)

    async def close_all(self) -> None:
        current = asyncio.get_running_loop()
        with self._lock:
            slots, self._slots = list(self._slots.items()), {}
        for loop, slot in slots:
            if slot.value is None:
                continue
            if loop is current or self._cross_loop:
                await self._quietly_close(slot.value)
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._quietly_close(slot.value), loop)
                await asyncio.wrap_future(future)

    def _add(self, loop: asyncio.AbstractEventLoop) -> tuple[_Slot[T], list[T]]:
        with self._lock:
            slot = self._slots.get(loop)
            if slot is None:
                slot = self._slots[loop] = _Slot(asyncio.Lock())
            closed = [other for other in self._slots if other.is_closed()]
            stale = [self._slots.pop(other).value for other in closed]
        return slot, [v for v in stale if v is not None and self._cross_loop]

    async def _quietly_close(self, value: T) -> None:
        try:
            await self._close(value)
        except Exception as exc:  # closing a broken connection must not fail the caller
            log.debug("closing a cache connection failed: %r", exc)


# --------------------------------------------------------------------------- SQLite

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
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def default_cache_path() -> str:
    """``$XDG_CACHE_HOME/synapsekit/llm-cache.db``, else ``~/.cache/synapsekit/...``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "synapsekit", "llm-cache.db")


def _sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    return code & 0xFF if isinstance(code, int) else None


def _is_corrupt(exc: BaseException) -> bool:
    code = _sqlite_code(exc)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc)
    return "file is not a database" in text or "malformed" in text


def _is_busy(exc: BaseException) -> bool:
    code = _sqlite_code(exc)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc)
    return "locked" in text or "busy" in text


def _busy_pause(attempt: int) -> float:
    return float(min(0.01 * 2**attempt, 0.5))


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _daemon_worker(connection: Any) -> None:
    """Let the interpreter exit with an aiosqlite connection still open.

    aiosqlite (>= 0.22) runs each connection on a non-daemon thread that ends only at
    ``close()``; a process-wide cache the app never closes would then keep the process
    from exiting. Every statement here is its own autocommit transaction, so a worker
    stopped at exit loses at most the write in flight, which SQLite rolls back.
    """
    thread = getattr(connection, "_thread", connection)
    if isinstance(thread, threading.Thread) and not thread.is_alive():
        thread.daemon = True


@dataclass
class _Db:
    connection: Any  # aiosqlite.Connection (optional package, untyped)
    generation: int


class SQLiteCache(Cache):
    """Answers in a SQLite file shared by every process of the machine that uses it.

    The file is opened, checked and migrated once, synchronously, when the cache is built
    (:class:`CacheError` for an unusable path or a schema from a newer synapsekit; a
    corrupt file is moved aside to ``<path>.corrupt-<unix time>`` and a fresh one
    started). Calls then go through aiosqlite, one connection per event loop, in WAL mode
    with a busy timeout plus a retry loop, so processes writing at once lose nothing.
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
        self._aiosqlite = _require("aiosqlite", "aiosqlite", "sqlite", "The SQLite cache")
        self.path = os.path.realpath(os.path.expanduser(os.fspath(path or default_cache_path())))
        self.ttl = _check_ttl(ttl)
        self._clock = clock
        self._file_lock = threading.Lock()
        self._generation = 0
        self._identity = self._prepare()
        self._last_purge = clock()
        self._connections: _PerLoop[_Db] = _PerLoop(
            self._connect, self._disconnect, cross_loop=True
        )

    def __repr__(self) -> str:
        return f"SQLiteCache(path={self.path!r}, ttl={self.ttl})"

    # ---- calls

    async def _load(self, key: str) -> CachedAnswer | None:
        rows = await self._execute(_GET_SQL, (key,))
        count, value, expires = rows[0]
        self._size = int(count)
        if value is None or (expires is not None and self._clock() >= expires):
            return None
        return _decode(value)

    async def _store(self, key: str, answer: CachedAnswer) -> None:
        value = _encode(answer)
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

    async def aclose(self) -> None:
        await self._connections.close_all()

    async def _execute(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one statement; "database is locked" past the busy timeout is retried."""
        import sqlite3

        connection = await self._connection()
        for attempt in range(BUSY_RETRIES):
            try:
                return list(await connection.execute_fetchall(sql, params))
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt == BUSY_RETRIES - 1:
                    raise
            await asyncio.sleep(_busy_pause(attempt))
        raise AssertionError("unreachable")

    async def _connection(self) -> Any:
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
        _daemon_worker(connection)
        await connection
        await connection.execute_fetchall("PRAGMA synchronous=NORMAL")
        return _Db(connection, generation)

    async def _disconnect(self, db: _Db) -> None:
        await db.connection.close()

    # ---- the file (synchronous, stdlib sqlite3)

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
                if not _is_busy(exc) or attempt == BUSY_RETRIES - 1:
                    raise
            finally:
                connection.close()
            time.sleep(_busy_pause(attempt))
        raise AssertionError("unreachable")


def _migrate(connection: sqlite3.Connection, path: str) -> None:
    """Apply the missing migrations in one write transaction (processes may race here)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
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


# --------------------------------------------------------------------------- Redis

# Both scripts read the server's clock, so every client agrees on what has expired.
_NOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# KEYS: entry, index. Returns {value or nil, live entries}.
_GET_LUA = _NOW_LUA + """
return {redis.call('GET', KEYS[1]), redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')}
"""
# KEYS: entry, index. ARGV: value, ttl in ms (0: none). Returns live entries.
_SET_LUA = _NOW_LUA + """
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], '+inf', KEYS[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('ZCARD', KEYS[2])
"""


@dataclass
class _RedisClient:
    client: Any  # redis.asyncio.Redis (optional package, untyped)
    get: Any
    set: Any


class RedisCache(Cache):
    """Answers in Redis, shared by every process and machine using the server.

    Entries are ``synapsekit:cache:v<KEY_VERSION>:<key>`` (JSON) with a ``PX`` expiry when
    ``ttl`` is set; a sorted set ``...:index`` of keys by expiry gives the live count
    (``size``) and lets ``clear()`` delete only our keys (never FLUSHDB). A server that
    is down makes calls misses (warned once a minute), never errors. The URL's password
    never appears in a repr, log line or error.
    """

    def __init__(self, url: str | None = None, ttl: float | None = None) -> None:
        super().__init__()
        self._redis = _require("redis.asyncio", "redis", "redis", "The Redis cache")
        self.url = redis_url(url)
        self.ttl = _check_ttl(ttl)
        self._password = url_password(self.url)
        try:
            self._redis.ConnectionPool.from_url(self.url)  # parses only, no I/O
        except ValueError as exc:
            raise CacheError(
                f"The Redis cache URL {redact_url(self.url)} is not usable: "
                f"{redact(str(exc), self._password)}"
            ) from exc
        self.prefix = f"synapsekit:cache:v{KEY_VERSION}:"
        self._index = self.prefix + "index"
        self._ttl_ms = max(1, round(self.ttl * 1000)) if self.ttl is not None else 0
        self._down_until = 0.0
        self._clients: _PerLoop[_RedisClient] = _PerLoop(
            self._connect, self._disconnect, cross_loop=False
        )

    def __repr__(self) -> str:
        return f"RedisCache(url={redact_url(self.url)!r}, ttl={self.ttl})"

    async def _load(self, key: str) -> CachedAnswer | None:
        if time.monotonic() < self._down_until:
            return None
        redis = await self._clients.get()
        value, live = await redis.get(keys=[self.prefix + key, self._index])
        self._size = int(live)
        return _decode(value) if value is not None else None

    async def _store(self, key: str, answer: CachedAnswer) -> None:
        if time.monotonic() < self._down_until:
            return
        value = _encode(answer)
        redis = await self._clients.get()
        live = await redis.set(keys=[self.prefix + key, self._index], args=[value, self._ttl_ms])
        self._size = int(live)

    async def _clear(self) -> None:
        client = (await self._clients.get()).client
        batch: list[Any] = []
        async for name in client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)

    async def aclose(self) -> None:
        await self._clients.close_all()

    async def _connect(self) -> _RedisClient:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # A bounded pool: a thousand concurrent calls share REDIS_CONNECTIONS connections
        # (each lookup holds one for a round trip) instead of opening a thousand.
        pool = self._redis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=REDIS_CONNECTIONS,
            timeout=5.0,
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
            retry=Retry(NoBackoff(), 1),  # one retry: a pooled connection the server closed
        )
        client = self._redis.Redis.from_pool(pool)
        return _RedisClient(
            client, client.register_script(_GET_LUA), client.register_script(_SET_LUA)
        )

    async def _disconnect(self, redis: _RedisClient) -> None:
        await redis.client.aclose()

    def _failed(self, operation: str, outcome: str, exc: Exception) -> None:
        from redis.exceptions import ConnectionError, TimeoutError

        if isinstance(exc, (ConnectionError, TimeoutError)):
            self._down_until = time.monotonic() + REDIS_RETRY_AFTER
        super()._failed(operation, outcome, exc)

    def _describe_error(self, exc: BaseException) -> str:
        return redact(super()._describe_error(exc), self._password)


# --------------------------------------------------------------------------- sharing

_shared: dict[tuple[Any, ...], Cache] = {}
_shared_lock = threading.Lock()


def open_cache(config: LLMConfig) -> Cache:
    """The process-wide cache for ``config`` (``cache_backend``, its location,
    ``cache_maxsize``, ``cache_ttl``), built on first use.

    The same settings return the same instance, so an app that builds a new LLM object
    per request still hits. Raises CacheError for a cache that cannot work, and
    MissingDependencyError when the backend's package is not installed.
    """
    backend = config.cache_backend
    if backend == "sqlite":
        location: str | None = os.path.realpath(
            os.path.expanduser(config.cache_path or default_cache_path())
        )
    elif backend == "redis":
        location = redis_url(config.redis_url)
    else:
        location = None
    ident = (backend, location, config.cache_maxsize, config.cache_ttl)
    with _shared_lock:
        cache = _shared.get(ident)
        if cache is None:
            cache = _shared[ident] = _build(backend, location, config)
        return cache


def _build(backend: str, location: str | None, config: LLMConfig) -> Cache:
    if backend == "sqlite":
        return SQLiteCache(location, config.cache_ttl)
    if backend == "redis":
        return RedisCache(location, config.cache_ttl)
    return MemoryCache(config.cache_maxsize, config.cache_ttl)
