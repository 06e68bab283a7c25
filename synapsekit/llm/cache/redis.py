"""The Redis answer cache: shared by every process and machine using the server.

A server that stops answering costs a call one short timeout (``timeout``, 0.25 s by
default, the connect included, the wait for a free pooled connection not), and then
nothing for a back-off window that doubles with every failed retry (0.25 s, 0.5 s, ... up
to 30 s): calls are misses meanwhile, and one call per window tries the server again
(:mod:`synapsekit._redis`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from synapsekit._loops import PerLoop
from synapsekit._redis import OP_TIMEOUT, Backoff, within
from synapsekit.errors import CacheError, ConfigError, redact
from synapsekit.llm.cache.base import Cache, check_ttl, require
from synapsekit.llm.cache.codec import CachedAnswer, decode, encode
from synapsekit.llm.cache.key import KEY_VERSION
from synapsekit.llm.config import redact_url, redis_url, url_password

__all__ = ["REDIS_CONNECTIONS", "RedisCache"]

#: Connections per event loop; more concurrent calls wait for a free one.
REDIS_CONNECTIONS = 32

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
    #: One per pooled connection: a call waits here (local queueing, not the server's
    #: fault, so not timed), then has ``timeout`` seconds with a connection of its own.
    slots: asyncio.Semaphore


class RedisCache(Cache):
    """Answers in Redis, shared by every process and machine using the server.

    ``RedisCache(url=None, ttl=None, *, timeout=0.25, prefix="synapsekit:cache")``:
    ``url`` defaults to ``$REDIS_URL``, else ``redis://localhost:6379/0``. Entries are
    ``<prefix>:v<KEY_VERSION>:<key>`` (JSON) with a ``PX`` expiry when ``ttl`` is set; a
    sorted set ``...:index`` of keys by expiry gives the live count (``size``) and lets
    ``clear()`` delete only our keys (never FLUSHDB); give two groups of apps sharing
    one server different ``prefix`` es to keep their entries (and clears) apart. A server
    that is down or frozen makes calls misses (warned once a minute), never errors, and
    costs at most ``timeout`` seconds per back-off window. Connections: a pool of at
    most 32 per event loop, closed with its loop. The URL's password never appears in a
    repr, log line or error.
    """

    def __init__(
        self,
        url: str | None = None,
        ttl: float | None = None,
        *,
        timeout: float = OP_TIMEOUT,
        prefix: str = "synapsekit:cache",
    ) -> None:
        super().__init__()
        self._redis = require("redis.asyncio", "redis", "redis", "The Redis cache")
        self.url = redis_url(url)
        self.ttl = check_ttl(ttl)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"timeout: must be > 0 seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self._password = url_password(self.url)
        try:
            self._redis.ConnectionPool.from_url(self.url)  # parses only, no I/O
        except ValueError as exc:
            raise CacheError(
                f"The Redis cache URL {redact_url(self.url)} is not usable: "
                f"{redact(str(exc), self._password)}"
            ) from exc
        self.prefix = f"{prefix}:v{KEY_VERSION}:"
        self._index = self.prefix + "index"
        self._ttl_ms = max(1, round(self.ttl * 1000)) if self.ttl is not None else 0
        self.backoff = Backoff()
        self._clients: PerLoop[_RedisClient] = PerLoop(self._connect, self._disconnect)

    def __repr__(self) -> str:
        return f"RedisCache(url={redact_url(self.url)!r}, ttl={self.ttl})"

    async def _load(self, key: str) -> CachedAnswer | None:
        result = await self._op("get", [self.prefix + key, self._index], [])
        if result is None:
            return None  # backing off: a miss
        value, live = result
        self._size = int(live)
        return decode(value) if value is not None else None

    async def _store(self, key: str, answer: CachedAnswer) -> None:
        value = encode(answer)
        live = await self._op("set", [self.prefix + key, self._index], [value, self._ttl_ms])
        if live is not None:
            self._size = int(live)

    async def _op(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """One script call within ``timeout`` (None: skipped, the server is backed off);
        the outcome feeds the back-off."""
        redis = await self._clients.get()
        async with redis.slots:
            if not self.backoff.allow():  # checked once a connection is ours: calls that
                return None  # queued behind a frozen server's timeouts skip it at once
            result = await within(getattr(redis, script)(keys=keys, args=args), self.timeout)
        self.backoff.succeeded()
        return result

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

    async def _release(self) -> None:
        await self._clients.close_all()

    async def _connect(self) -> _RedisClient:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError

        # A bounded pool: a thousand concurrent calls share REDIS_CONNECTIONS connections
        # (each lookup holds one for a round trip) instead of opening a thousand. Every
        # wait is short: the whole operation has `timeout` seconds.
        pool = self._redis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=REDIS_CONNECTIONS,
            timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            socket_timeout=self.timeout,
            # one retry, for a pooled connection the server closed; never for a timeout
            retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        )
        client = self._redis.Redis.from_pool(pool)
        return _RedisClient(
            client,
            client.register_script(_GET_LUA),
            client.register_script(_SET_LUA),
            asyncio.Semaphore(REDIS_CONNECTIONS),
        )

    @staticmethod  # no self: PerLoop's close must not keep this object alive
    async def _disconnect(redis: _RedisClient) -> None:
        await redis.client.aclose()

    def _failed(self, operation: str, outcome: str, exc: Exception) -> None:
        from redis.exceptions import ConnectionError, TimeoutError

        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            self.backoff.failed()  # asyncio's TimeoutError is an OSError (3.11) ...
        elif isinstance(exc, asyncio.TimeoutError):
            self.backoff.failed()  # ... and not one before
        super()._failed(operation, outcome, exc)

    def _describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, asyncio.TimeoutError) and not str(exc):
            return f"TimeoutError: no answer within {self.timeout:g} s"
        return redact(super()._describe_error(exc), self._password)
