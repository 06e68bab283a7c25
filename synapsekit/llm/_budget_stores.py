"""The shared backends of :class:`~synapsekit.llm.budget.Budget`: a SQLite file (every
process of the machine) and a Redis server (every process of every machine).

Both keep, per budget name and window, the settled spend and the sum of open
reservations as integer nano-dollars, plus one row (or hash field) per open reservation,
and change them only in one atomic step per reservation or settlement: a ``BEGIN
IMMEDIATE`` transaction (the write lock is taken before the spend is read, so two
processes can never both see the old figure), or one Lua script.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from synapsekit._loops import PerLoop
from synapsekit._sqlite import Migration, apply_migrations, prepare_location
from synapsekit.errors import BudgetError, redact
from synapsekit.llm.budget import Reservation, _Totals

__all__ = ["REDIS_CONNECTIONS", "RedisStore", "SQLiteStore", "default_budget_path"]


# ------------------------------------------------------------------------- SQLite

_SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    (
        "m001_budgets",
        (
            """CREATE TABLE windows (
                name TEXT NOT NULL,
                window TEXT NOT NULL,
                spent INTEGER NOT NULL,
                held INTEGER NOT NULL,
                ends_at REAL NOT NULL,
                PRIMARY KEY (name, window)
            )""",
            """CREATE TABLE holds (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                window TEXT NOT NULL,
                nanos INTEGER NOT NULL,
                expires_at REAL NOT NULL
            )""",
            "CREATE INDEX holds_window ON holds (name, window, expires_at)",
        ),
    ),
)


def default_budget_path() -> str:
    """``$XDG_DATA_HOME/synapsekit/budgets.db``, else ``~/.local/share/synapsekit/...``:
    spend is data to keep, not a cache to clear."""
    base = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "synapsekit", "budgets.db")


@dataclass
class _SQLiteConn:
    connection: Any  # aiosqlite.Connection (optional package, untyped)
    lock: asyncio.Lock  # one transaction at a time on this loop's connection


class SQLiteStore:
    """The counters in a SQLite file; each reservation and settlement is one
    ``BEGIN IMMEDIATE`` transaction (the write lock is taken first, so two processes
    cannot both read the old spend), through aiosqlite, one connection per event loop."""

    def __init__(self, name: str, path: str | None, timeout: float) -> None:
        from synapsekit.llm.cache.base import require

        self._aiosqlite = require("aiosqlite", "aiosqlite", "sqlite", "The SQLite budget")
        self.name = name
        self.path = os.path.realpath(os.path.expanduser(path or default_budget_path()))
        self.timeout = timeout
        self._prepared = False
        self._prepare_lock = threading.Lock()
        self._connections: PerLoop[_SQLiteConn] = PerLoop(
            self._connect, self._disconnect, cross_loop=True
        )

    def describe(self) -> str:
        return f", path={self.path!r}"

    async def reserve(
        self, r: Reservation, limit: int, ends_at: float, now: float, keep: float
    ) -> tuple[bool, _Totals]:
        def run(tx: Any) -> Any:
            return _sqlite_reserve(tx, self.name, r, limit, ends_at, now, keep)

        result: tuple[bool, _Totals] = await self._transaction(run)
        return result

    async def settle(self, r: Reservation, cost: int | None, now: float) -> _Totals | None:
        async def run(tx: Any) -> _Totals | None:
            rows = await tx.execute_fetchall(
                "DELETE FROM holds WHERE id = ? RETURNING nanos", (r.id,)
            )
            if not rows:
                return None
            nanos = int(rows[0][0])
            await tx.execute(
                "UPDATE windows SET held = held - ?, spent = spent + ? "
                "WHERE name = ? AND window = ?",
                (nanos, nanos if cost is None else cost, self.name, r.window),
            )
            return await _sqlite_totals(tx, self.name, r.window, now)

        result: _Totals | None = await self._transaction(run)
        return result

    async def totals(self, window: str, now: float) -> _Totals:
        async def run(tx: Any) -> _Totals:
            return await _sqlite_totals(tx, self.name, window, now)

        result: _Totals = await self._transaction(run)
        return result

    async def clear(self) -> None:
        async def run(tx: Any) -> None:
            await tx.execute("DELETE FROM holds WHERE name = ?", (self.name,))
            await tx.execute("DELETE FROM windows WHERE name = ?", (self.name,))

        await self._transaction(run)

    async def aclose(self) -> None:
        await self._connections.close_all()

    async def _transaction(self, run: Callable[[Any], Any]) -> Any:
        """``await run(connection)`` inside BEGIN IMMEDIATE ... COMMIT; a lock still
        held by another process past the busy timeout is retried a few times."""
        import sqlite3

        from synapsekit._sqlite import BUSY_RETRIES, busy_pause, is_busy

        if not self._prepared:
            await asyncio.to_thread(self._prepare)
        try:
            db = await self._connections.get()
        except (sqlite3.Error, OSError) as exc:
            raise self._unusable(exc) from exc
        async with db.lock:
            for attempt in range(BUSY_RETRIES):
                try:
                    await db.connection.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if is_busy(exc) and attempt < BUSY_RETRIES - 1:
                        await asyncio.sleep(busy_pause(attempt))
                        continue
                    raise self._unusable(exc) from exc
                try:
                    result = await run(db.connection)
                except BaseException as exc:
                    await db.connection.execute("ROLLBACK")
                    if isinstance(exc, sqlite3.Error):
                        raise self._unusable(exc) from exc
                    raise
                try:
                    await db.connection.execute("COMMIT")
                except sqlite3.Error as exc:
                    raise self._unusable(exc) from exc
                return result
        raise AssertionError("unreachable")

    async def _connect(self) -> _SQLiteConn:
        from synapsekit._sqlite import daemon_worker

        connection = self._aiosqlite.connect(
            self.path, timeout=self.timeout, isolation_level=None
        )
        daemon_worker(connection)
        await connection
        await connection.execute("PRAGMA synchronous=NORMAL")
        return _SQLiteConn(connection, asyncio.Lock())

    @staticmethod  # no self: PerLoop's close must not keep this object alive
    async def _disconnect(db: _SQLiteConn) -> None:
        await db.connection.close()

    def _prepare(self) -> None:
        import sqlite3

        with self._prepare_lock:
            if self._prepared:
                return
            prepare_location(self.path, lambda reason: BudgetError(
                f"The SQLite budget path {self.path} {reason}"))
            try:
                connection = sqlite3.connect(self.path, timeout=self.timeout,
                                             isolation_level=None)
                try:
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.execute("BEGIN IMMEDIATE")
                    try:
                        apply_migrations(connection, _SQLITE_MIGRATIONS, lambda names: BudgetError(
                            f"The SQLite budget file {self.path} was written by a newer "
                            f"synapsekit (migrations {', '.join(names)}); upgrade synapsekit"))
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
                    connection.execute("COMMIT")
                finally:
                    connection.close()
            except sqlite3.Error as exc:
                raise self._unusable(exc) from exc
            self._prepared = True

    def _unusable(self, exc: BaseException) -> BudgetError:
        return BudgetError(f"The SQLite budget file {self.path} cannot be used: {exc}")


async def _sqlite_reserve(
    tx: Any, name: str, r: Reservation, limit: int, ends_at: float, now: float, keep: float
) -> tuple[bool, _Totals]:
    rows = await tx.execute_fetchall(
        "SELECT spent, held FROM windows WHERE name = ? AND window = ?", (name, r.window)
    )
    if not rows:
        # a new window: drop the ones that ended (their late settlements have had `keep`)
        await tx.execute(
            "DELETE FROM holds WHERE name = ? AND window IN (SELECT window FROM windows "
            "WHERE name = ? AND ends_at + ? <= ?)", (name, name, keep, now))
        await tx.execute(
            "DELETE FROM windows WHERE name = ? AND ends_at + ? <= ?", (name, keep, now))
        await tx.execute(
            "INSERT INTO windows (name, window, spent, held, ends_at) VALUES (?, ?, 0, 0, ?)",
            (name, r.window, ends_at if math.isfinite(ends_at) else 1e300))
        spent, held = 0, 0
    else:
        spent, held = int(rows[0][0]), int(rows[0][1])
    if spent + held + r.nanos > limit:
        return False, await _sqlite_totals(tx, name, r.window, now)
    await tx.execute(
        "UPDATE windows SET held = held + ? WHERE name = ? AND window = ?",
        (r.nanos, name, r.window))
    await tx.execute(
        "INSERT INTO holds (id, name, window, nanos, expires_at) VALUES (?, ?, ?, ?, ?)",
        (r.id, name, r.window, r.nanos, r.expires_at))
    return True, _Totals(spent, held + r.nanos, 0)


async def _sqlite_totals(tx: Any, name: str, window: str, now: float) -> _Totals:
    rows = await tx.execute_fetchall(
        "SELECT w.spent, w.held, (SELECT COALESCE(SUM(h.nanos), 0) FROM holds AS h "
        "WHERE h.name = w.name AND h.window = w.window AND h.expires_at <= ?) "
        "FROM windows AS w WHERE w.name = ? AND w.window = ?", (now, name, window))
    if not rows:
        return _Totals()
    return _Totals(int(rows[0][0]), int(rows[0][1]), int(rows[0][2]))


# ------------------------------------------------------------------------- Redis

# KEYS[1]: the window's hash (fields "spent", "held" and "r:<id>" = "<nanos> <expires
# ms>"). ARGV[1]: "reserve", "settle" or "totals"; ARGV[2]: now (ms). reserve: ARGV[3]
# id, [4] nanos, [5] limit, [6] expires (ms), [7] when the hash may go (ms; "" never).
# settle: ARGV[3] id, [4] cost (nanos; -1 keeps the reservation). Returns {ok, spent,
# held, expired}; expired (holds past their ttl) is only summed when it is reported.
_LUA = """
local k = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local function expired()
  local sum = 0
  local all = redis.call('HGETALL', k)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'r:' then
      local m, e = string.match(all[i + 1], '^(%d+) (%d+)$')
      if tonumber(e) <= now then sum = sum + tonumber(m) end
    end
  end
  return sum
end
local s = redis.call('HMGET', k, 'spent', 'held')
local spent = tonumber(s[1]) or 0
local held = tonumber(s[2]) or 0
if op == 'reserve' then
  local n = tonumber(ARGV[4])
  if spent + held + n > tonumber(ARGV[5]) then
    return {0, spent, held, expired()}
  end
  held = redis.call('HINCRBY', k, 'held', n)
  redis.call('HSET', k, 'r:' .. ARGV[3], ARGV[4] .. ' ' .. ARGV[6])
  if ARGV[7] ~= '' then redis.call('PEXPIREAT', k, ARGV[7]) end
  return {1, spent, held, 0}
elseif op == 'settle' then
  local v = redis.call('HGET', k, 'r:' .. ARGV[3])
  if not v then return {0, spent, held, 0} end
  local m = tonumber(string.match(v, '^(%d+)'))
  local cost = tonumber(ARGV[4])
  if cost < 0 then cost = m end
  redis.call('HDEL', k, 'r:' .. ARGV[3])
  held = redis.call('HINCRBY', k, 'held', -m)
  spent = redis.call('HINCRBY', k, 'spent', cost)
  return {1, spent, held, expired()}
elseif op == 'clear' then
  redis.call('DEL', k)
  return {1, 0, 0, 0}
end
return {1, spent, held, expired()}
"""

#: Redis connections per event loop; more concurrent calls wait for a free one.
REDIS_CONNECTIONS = 32


class RedisStore:
    """The counters in one Redis hash per window (``synapsekit:budget:<name>:<window>``),
    changed only by one Lua script, so every check-and-reserve is atomic on the server.
    The hash of a window expires a reservation_ttl after the window ends."""

    def __init__(self, name: str, url: str | None, timeout: float) -> None:
        from synapsekit.llm.cache.base import require
        from synapsekit.llm.config import redis_url, url_password

        self._redis = require("redis.asyncio", "redis", "redis", "The Redis budget")
        self.name = name
        self.url = redis_url(url)
        self._password = url_password(self.url)
        self.timeout = timeout
        self._clients: PerLoop[tuple[Any, Any, asyncio.Semaphore]] = PerLoop(
            self._connect, self._disconnect
        )

    def describe(self) -> str:
        from synapsekit.llm.config import redact_url

        return f", url={redact_url(self.url)!r}"

    def key(self, window: str) -> str:
        return f"synapsekit:budget:{self.name}:{window}"

    async def reserve(
        self, r: Reservation, limit: int, ends_at: float, now: float, keep: float
    ) -> tuple[bool, _Totals]:
        drop = "" if math.isinf(ends_at) else str(int((ends_at + keep) * 1000))
        ok, totals = await self._run(r.window, "reserve", now, r.id, r.nanos, limit,
                                     int(r.expires_at * 1000), drop)
        return ok, totals

    async def settle(self, r: Reservation, cost: int | None, now: float) -> _Totals | None:
        ok, totals = await self._run(r.window, "settle", now, r.id, -1 if cost is None else cost)
        return totals if ok else None

    async def totals(self, window: str, now: float) -> _Totals:
        return (await self._run(window, "totals", now))[1]

    async def clear(self) -> None:
        client, _, _ = await self._clients.get()
        async for key in client.scan_iter(match=f"synapsekit:budget:{self.name}:*"):
            await client.delete(key)

    async def aclose(self) -> None:
        await self._clients.close_all()

    async def _run(self, window: str, op: str, now: float, *args: Any) -> tuple[bool, _Totals]:
        from redis.exceptions import RedisError

        from synapsekit._redis import within

        _, script, slots = await self._clients.get()
        try:
            async with slots:  # waiting for a free connection is local queueing: not timed
                reply = await within(
                    script(keys=[self.key(window)], args=[op, int(now * 1000), *args]),
                    self.timeout,
                )
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            reason = (f"no answer within {self.timeout:g} s" if isinstance(
                exc, asyncio.TimeoutError) and not str(exc) else f"{type(exc).__name__}: {exc}")
            raise BudgetError(
                f"The Redis budget {self.name!r} cannot be used ({redact(reason, self._password)})"
                "; nothing was sent"
            ) from exc
        ok, spent, held, expired = (int(x) for x in reply)
        return bool(ok), _Totals(spent, held, expired)

    async def _connect(self) -> tuple[Any, Any, asyncio.Semaphore]:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError

        pool = self._redis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=REDIS_CONNECTIONS,
            socket_connect_timeout=self.timeout,
            socket_timeout=self.timeout,
            # one retry, for a pooled connection the server closed; never for a timeout
            retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        )
        client = self._redis.Redis.from_pool(pool)
        return client, client.register_script(_LUA), asyncio.Semaphore(REDIS_CONNECTIONS)

    @staticmethod  # no self: PerLoop's close must not keep this object alive
    async def _disconnect(parts: tuple[Any, Any, asyncio.Semaphore]) -> None:
        await parts[0].aclose()
