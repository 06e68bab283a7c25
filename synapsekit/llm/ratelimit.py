"""Rate limiting: token buckets that make calls wait instead of collecting 429s.

Providers limit requests and tokens per minute *per API key* (and per endpoint: an Azure
resource, a Bedrock region, a self-hosted server each count on their own), so the limiter
is shared by every LLM object in the process that uses the same provider, effective
endpoint and key (found by a fingerprint of the key, never the key itself), and, with the
Redis backend, by every process and machine that points at the same Redis. A limiter is
also an object you may build and pass (``make_llm(..., rate_limiter=...)``).

Each limit is a bucket of ``capacity`` (the per-minute figure) that starts full and
refills continuously at ``capacity / 60`` per second. A caller *reserves* its share at
once, possibly going into debt, and then sleeps until the debt is paid (virtual
scheduling, as in GCRA). Reserving is O(1) under a lock and needs no queue or event-loop
object, so it is exact under any number of concurrent callers, FIFO by construction
(each reservation is served no earlier than the previous one: a bucket remembers its
last grant time, the "tail"), and usable from any event loop or thread. A caller
cancelled while waiting gives its reservation back.

Tokens per minute are only known after the call, so a call reserves an estimate
(:func:`estimate_tokens`: ceil(characters / 4) of everything the request sends as input --
the messages' text, the tool definitions (name, description and parameters' JSON Schema),
the structured output's schema -- plus :data:`PART_TOKENS` per image or document part,
plus ``max_tokens``) and :meth:`RateLimiter.settle` corrects it with the actual count.
The same estimate is the input a budget reserves (:mod:`synapsekit.llm.spend`), routing's
input size (:func:`synapsekit.llm.models.needs_of`), ``count_tokens``' fallback and the
gateway's reservation and ``count_tokens`` answer.

The Redis limiter runs the same algorithm in one Lua script, with the server's ``TIME``
as the clock; when Redis is unreachable or frozen (no answer within 0.25 s) it logs a
warning and limits calls in this process only, trying Redis again after a back-off that
doubles while it stays down, because a rate limiter must not turn a Redis outage into
failed or stalled LLM calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from synapsekit._logging import ThrottledLog
from synapsekit._loops import PerLoop
from synapsekit._redis import LIMITER_TIMEOUT, Backoff, within
from synapsekit.errors import MissingDependencyError, redact
from synapsekit.llm.config import LLMConfig, redact_url, redis_url, url_password

if TYPE_CHECKING:
    from synapsekit.llm.tools import Tool
    from synapsekit.llm.types import Message, OutputSchema

__all__ = [
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "TokenBucket",
    "bucket_key",
    "estimate_tokens",
    "key_fingerprint",
    "limiter_for",
]

#: Redis connections per event loop; more concurrent calls wait for a free one.
REDIS_CONNECTIONS = 32

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger("synapsekit.ratelimit")


def key_fingerprint(api_key: str | None) -> str:
    """A short, stable name for an API key: 16 hex digits of its SHA-256.

    It identifies the key's budget across processes without revealing the key;
    ``"anonymous"`` when there is no key (e.g. a local Ollama).
    """
    if api_key is None:
        return "anonymous"
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def bucket_key(
    provider: str,
    endpoint: str | None,
    api_key: str | None,
    requests_per_minute: float | None,
    tokens_per_minute: float | None,
) -> str:
    """The Redis key of a limiter's buckets:
    ``synapsekit:ratelimit:<provider>:<endpoint fingerprint>:<key fingerprint>:<rpm>:<tpm>``.

    The endpoint is fingerprinted like the key (a URL may carry credentials); ``"default"``
    when None (the provider's default endpoint)."""
    where = "default" if endpoint is None else key_fingerprint(endpoint)
    return ":".join((
        "synapsekit:ratelimit", provider, where, key_fingerprint(api_key),
        _number(requests_per_minute), _number(tokens_per_minute),
    ))


def estimate_tokens(
    messages: Sequence[Message],
    max_tokens: int,
    *,
    tools: Iterable[Tool] = (),
    response_schema: OutputSchema | None = None,
) -> int:
    """Tokens a call may use, reserved before it is sent: ceil(characters / 4) of all the
    input the request carries, plus ``max_tokens`` (providers count it against the limit
    when the request arrives). :meth:`RateLimiter.settle` corrects it once usage is known.

    The characters are those of the message contents (text parts) and of the tool calls
    earlier assistant turns made (id, name and arguments as compact JSON; a tool result's
    ``tool_call_id``): in a tool loop they are resent on every step; then those of each
    tool's name, description and parameters' JSON Schema (:attr:`Tool.schema`, as the
    encoders send it) and of ``response_schema``'s name, description and schema:
    providers take the tools, and the schema (OpenAI-style ``response_format``, Anthropic
    ``output_config`` or a forced tool, Gemini ``responseSchema``), as input they bill;
    Ollama's ``format`` constrains the decoding instead, so there the schema is an
    overcount, on the safe side. Schemas are serialized as compact JSON (no spaces,
    non-ASCII as it is). An image or document part counts as :data:`PART_TOKENS`
    (providers bill a typical image at 250-1,600 tokens). ``tool_choice`` is not counted
    (a tool's name at most).
    """
    chars = 0
    parts = 0
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            chars += len(content)
        else:
            for part in content:
                if part["type"] == "text":
                    chars += len(part["text"])
                else:
                    parts += 1
        for call in message.get("tool_calls") or ():  # earlier turns' calls, sent back
            chars += len(call.id) + len(call.name) + len(_compact_json(call.arguments))
        chars += len(message.get("tool_call_id") or "")
    for tool in tools:
        chars += len(tool.name) + len(tool.description) + len(_compact_json(tool.schema))
    if response_schema is not None:
        chars += (len(response_schema.name) + len(response_schema.description)
                  + len(_compact_json(response_schema.schema)))
    return -(-chars // 4) + parts * PART_TOKENS + max_tokens


def _compact_json(value: Mapping[str, Any]) -> str:
    """A schema as the estimate counts it: JSON without spaces, non-ASCII kept as it is;
    a nested mapping or set that is not JSON's own is taken as a dict or list, anything
    else as its ``str`` (an estimate never fails on a schema)."""
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


#: The reservation for one image or document part (see :func:`estimate_tokens`).
PART_TOKENS = 1000


class TokenBucket:
    """One limit: ``capacity`` units, full at the start, refilled at ``per_second``.

    ``acquire(n)`` reserves ``n`` units at once (the level may go negative: debt) and
    sleeps until the debt is paid, never before an earlier caller's grant. Thread-safe
    and loop-agnostic: the state is three floats under a ``threading.Lock``. ``clock``
    and ``sleep`` are injectable so tests can run on virtual time.
    """

    def __init__(
        self,
        capacity: float,
        per_second: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not capacity > 0 or not per_second > 0:
            raise ValueError("capacity and per_second must be > 0")
        self.capacity = float(capacity)
        self.per_second = float(per_second)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._level = self.capacity
        self._stamp = clock()
        self._tail = self._stamp

    @property
    def available(self) -> float:
        """Units available now; negative while callers are waiting (the debt)."""
        with self._lock:
            return self._refill(self._clock())

    async def acquire(self, amount: float = 1) -> None:
        """Wait until ``amount`` units (clamped to the capacity) are granted."""
        amount = self.clamp(amount)
        now = self._clock()
        grant = self.reserve(amount, now)
        await _wait(grant - now, self._sleep, lambda: self.give_back(amount))

    def reserve(self, amount: float, now: float) -> float:
        """Take ``amount`` units at ``now``; return the clock time they are granted."""
        with self._lock:
            level = self._refill(now) - amount
            self._level = level
            self._tail = max(now - min(level, 0.0) / self.per_second, self._tail)
            return self._tail

    def shortfall(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` units are there without debt (0: there now). Takes
        nothing: :meth:`RateLimiter.try_acquire` takes only when every bucket has enough."""
        with self._lock:
            return max(amount - self._refill(now), 0.0) / self.per_second

    def give_back(self, amount: float) -> None:
        """Return units that were reserved but not used (never above the capacity)."""
        with self._lock:
            self._level = min(self.capacity, self._refill(self._clock()) + amount)

    def take(self, amount: float) -> None:
        """Take units without waiting (the call already happened); later callers wait."""
        with self._lock:
            self._level = self._refill(self._clock()) - amount

    def clamp(self, amount: float) -> float:
        """``amount`` as reserved: at most the capacity (a bigger one waits for a full bucket)."""
        if amount < 0:
            raise ValueError(f"amount must be >= 0, got {amount!r}")
        return min(float(amount), self.capacity)

    def _refill(self, now: float) -> float:
        elapsed = max(now - self._stamp, 0.0)
        self._stamp = max(now, self._stamp)
        self._level = min(self.capacity, self._level + elapsed * self.per_second)
        return self._level

    def __repr__(self) -> str:
        return f"TokenBucket(capacity={self.capacity!r}, per_second={self.per_second!r})"


class RateLimiter(ABC):
    """Requests-per-minute and tokens-per-minute limits of one provider and key.

    ``await acquire(estimate)`` before each attempt, ``await settle(estimate, actual)``
    after it. Callers are served in the order they called ``acquire``.
    """

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        if requests_per_minute is None and tokens_per_minute is None:
            raise ValueError("give requests_per_minute, tokens_per_minute or both")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        #: True when a tokens-per-minute limit exists (``acquire``'s ``tokens`` counts).
        self.counts_tokens = tokens_per_minute is not None

    @abstractmethod
    async def acquire(self, tokens: int = 0) -> None:
        """Wait for one request slot and ``tokens`` (clamped to the per-minute limit).

        Cancelled while waiting, the reservation is given back; the callers already
        waiting keep their turn (none moves earlier) and the freed capacity goes to the
        next caller.
        """

    @abstractmethod
    async def try_acquire(self, tokens: int = 0) -> float:
        """Answer now: take one request slot and ``tokens`` if they are there (return 0),
        else take nothing and return the seconds until they would be (a server answering
        429 with ``Retry-After``: the gateway). Same buckets as :meth:`acquire`."""

    @abstractmethod
    async def settle(self, estimated: int, actual: int) -> None:
        """After a call: give back ``estimated - actual`` tokens, or take the excess.

        ``estimated`` is what was passed to :meth:`acquire` (it is clamped the same way).
        """

    def _clamp(self, tokens: float) -> float:
        """``tokens`` as reserved: at most the per-minute limit; 0 without a token limit."""
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens!r}")
        if self.tokens_per_minute is None:
            return 0.0
        return min(float(tokens), float(self.tokens_per_minute))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(requests_per_minute={self.requests_per_minute!r}, "
            f"tokens_per_minute={self.tokens_per_minute!r})"
        )


class MemoryRateLimiter(RateLimiter):
    """The in-process limiter: a requests bucket and/or a tokens bucket on one clock."""

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(requests_per_minute, tokens_per_minute)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()  # both buckets reserve as one step
        self._requests = _bucket(requests_per_minute, clock)
        self._tokens = _bucket(tokens_per_minute, clock)

    async def acquire(self, tokens: int = 0) -> None:
        amount = self._clamp(tokens)
        with self._lock:
            now = self._clock()
            grant = max(
                bucket.reserve(n, now) for bucket, n in self._parts(amount) if bucket
            )
        await _wait(grant - now, self._sleep, lambda: self._give_back(amount))

    async def try_acquire(self, tokens: int = 0) -> float:
        amount = self._clamp(tokens)
        with self._lock:
            now = self._clock()
            parts = [(bucket, n) for bucket, n in self._parts(amount) if bucket]
            wait = max(bucket.shortfall(n, now) for bucket, n in parts)
            if wait <= 0:
                for bucket, n in parts:
                    bucket.reserve(n, now)
            return wait

    async def settle(self, estimated: int, actual: int) -> None:
        if self._tokens is None:
            return
        extra = actual - self._clamp(estimated)
        if extra > 0:
            self._tokens.take(extra)
        elif extra < 0:
            self._tokens.give_back(-extra)

    def _parts(self, tokens: float) -> tuple[tuple[TokenBucket | None, float], ...]:
        return ((self._requests, 1.0), (self._tokens, tokens))

    def _give_back(self, tokens: float) -> None:
        for bucket, amount in self._parts(tokens):
            if bucket:
                bucket.give_back(amount)


def _bucket(per_minute: float | None, clock: Clock) -> TokenBucket | None:
    return None if per_minute is None else TokenBucket(per_minute, per_minute / 60.0, clock=clock)


async def _wait(delay: float, sleep: Sleep, give_back: Callable[[], object]) -> None:
    """Sleep ``delay`` seconds; if cancelled meanwhile, give the reservation back."""
    if delay <= 0:
        return
    try:
        await sleep(delay)
    except asyncio.CancelledError:
        result = give_back()
        if asyncio.iscoroutine(result):
            await result
        raise


# ------------------------------------------------------------------------- Redis

# The same algorithm as TokenBucket.reserve/give_back/take, atomically on the server with
# its TIME as the clock. KEYS[1]: the limiter's hash. ARGV[1]: "acquire", "try", "give" or
# "take"; ARGV[2..4] and ARGV[5..7]: capacity, per_second, amount of the requests and the
# tokens bucket (capacity 0: no such bucket). Returns the seconds to wait, as a string.
# The hash expires once both buckets would be full again, which is the same as absent.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op = ARGV[1]
local wait = 0
local idle = 0
local function fmt(x) return string.format('%.17g', x) end
if op == 'try' then  -- answer now: take only when every bucket has enough, else the wait
  for i, p in ipairs({'r', 't'}) do
    local cap = tonumber(ARGV[3 * i - 1])
    if cap > 0 then
      local rate = tonumber(ARGV[3 * i])
      local s = redis.call('HMGET', KEYS[1], p .. 'level', p .. 'stamp')
      local level = tonumber(s[1]) or cap
      local stamp = tonumber(s[2]) or now
      level = math.min(cap, level + math.max(now - stamp, 0) * rate)
      wait = math.max(wait, (tonumber(ARGV[3 * i + 1]) - level) / rate)
    end
  end
  if wait > 0 then return fmt(wait) end
  wait = 0
  op = 'acquire'
end
for i, p in ipairs({'r', 't'}) do
  local cap = tonumber(ARGV[3 * i - 1])
  if cap > 0 then
    local rate = tonumber(ARGV[3 * i])
    local n = tonumber(ARGV[3 * i + 1])
    local s = redis.call('HMGET', KEYS[1], p .. 'level', p .. 'stamp', p .. 'tail')
    local level = tonumber(s[1]) or cap
    local stamp = tonumber(s[2]) or now
    local tail = tonumber(s[3]) or now
    level = math.min(cap, level + math.max(now - stamp, 0) * rate)
    stamp = math.max(now, stamp)
    if op == 'acquire' then
      level = level - n
      tail = math.max(now - math.min(level, 0) / rate, tail)
      wait = math.max(wait, tail - now)
    elseif op == 'take' then
      level = level - n
    else
      level = math.min(cap, level + n)
    end
    redis.call('HSET', KEYS[1], p .. 'level', fmt(level), p .. 'stamp', fmt(stamp),
               p .. 'tail', fmt(tail))
    idle = math.max(idle, tail - now, (cap - level) / rate)
  end
end
redis.call('PEXPIRE', KEYS[1], math.ceil(idle * 1000) + 1000)
return fmt(wait)
"""


class RedisRateLimiter(RateLimiter):
    """A limiter whose buckets live in Redis, shared by every process using ``key``.

    ``RedisRateLimiter(url=None, key=None, requests_per_minute, tokens_per_minute, *,
    provider=None, endpoint=None, api_key=None, timeout=0.25)``: ``url`` defaults to
    ``$REDIS_URL``, else ``redis://localhost:6379/0``; ``key`` defaults to
    :func:`bucket_key` of ``provider`` (``"custom"`` when not given), ``endpoint``,
    ``api_key`` and the limits, so limiters built for the same provider, endpoint, key
    and limits share one budget in every process. The API key is only fingerprinted.

    Connections: a pool of at most 32 per event loop, closed with its loop. Every Redis
    round trip has ``timeout`` seconds (connect included; waiting for a free pooled
    connection is not timed). When Redis fails or does not answer in time, a warning is
    logged (at most once a minute) and calls are limited by an
    in-process :class:`MemoryRateLimiter` of the same limits; Redis is tried again by one
    call after a back-off of 0.25 s that doubles with every failed retry (up to 30 s).
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        provider: str | None = None,
        endpoint: str | None = None,
        api_key: str | None = None,
        timeout: float = LIMITER_TIMEOUT,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        try:
            import redis.asyncio  # fail at construction, not at the first call
            import redis.exceptions
        except ImportError as exc:
            raise MissingDependencyError(
                "redis", "redis", feature="The Redis rate limiter"
            ) from exc
        super().__init__(requests_per_minute, tokens_per_minute)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self._fallback = MemoryRateLimiter(requests_per_minute, tokens_per_minute, sleep=sleep)
        self.key = key or bucket_key(
            provider or "custom", endpoint, api_key, requests_per_minute, tokens_per_minute
        )
        self._url = redis_url(url)
        self._secret = url_password(self._url)
        self.timeout = float(timeout)
        self._sleep = sleep
        self._failures: tuple[type[BaseException], ...] = (
            redis.exceptions.RedisError, OSError, asyncio.TimeoutError,
        )
        self._clients: PerLoop[tuple[Any, Any, asyncio.Semaphore]] = PerLoop(
            self._connect, self._disconnect
        )
        self.backoff = Backoff()
        self._log = ThrottledLog(log)  # one "Redis is unreachable" line a minute

    async def acquire(self, tokens: int = 0) -> None:
        amount = self._clamp(tokens)
        wait = await self._call("acquire", amount)
        if wait is None:
            await self._fallback.acquire(tokens)
            return
        await _wait(wait, self._sleep, lambda: self._call("give", amount, requests=1))

    async def try_acquire(self, tokens: int = 0) -> float:
        wait = await self._call("try", self._clamp(tokens), requests=1)
        if wait is None:
            return await self._fallback.try_acquire(tokens)
        return wait

    async def settle(self, estimated: int, actual: int) -> None:
        if not self.counts_tokens:
            return
        extra = actual - self._clamp(estimated)
        if extra and await self._call("take" if extra > 0 else "give", abs(extra)) is None:
            await self._fallback.settle(estimated, actual)

    async def aclose(self) -> None:
        """Close the connections of every event loop (each loop's also close with it)."""
        await self._clients.close_all()

    async def _call(self, op: str, tokens: float, *, requests: int | None = None) -> float | None:
        """Run the script; None when Redis failed (the caller falls back in-process)."""
        if requests is None:
            requests = 1 if op == "acquire" else 0
        args = [op, *self._bucket_args(self.requests_per_minute, requests)]
        args += self._bucket_args(self.tokens_per_minute, tokens)

        _client, script, slots = await self._clients.get()
        try:
            async with slots:
                if not self.backoff.allow():  # checked once a connection is ours: calls
                    return None  # queued behind a frozen server's timeouts skip it at once
                wait = float(await within(script(keys=[self.key], args=args), self.timeout))
        except self._failures as exc:
            self.backoff.failed()
            self._unreachable(exc)
            return None
        self.backoff.succeeded()
        return wait

    @staticmethod
    def _bucket_args(per_minute: float | None, amount: float) -> list[str]:
        if per_minute is None:
            return ["0", "0", "0"]
        return [repr(float(per_minute)), repr(per_minute / 60.0), repr(float(amount))]

    async def _connect(self) -> tuple[Any, Any, asyncio.Semaphore]:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError

        # A bounded pool; a call waits for a free connection (not timed: local
        # queueing), then has `timeout` seconds for its round trip, connect included.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self._url,
            max_connections=REDIS_CONNECTIONS,
            socket_connect_timeout=self.timeout,
            socket_timeout=self.timeout,
            # one retry, for a pooled connection the server closed; never for a timeout
            retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        )
        client = redis.asyncio.Redis.from_pool(pool)
        return client, client.register_script(_LUA), asyncio.Semaphore(REDIS_CONNECTIONS)

    @staticmethod  # no self: PerLoop's close must not keep this object alive
    async def _disconnect(parts: tuple[Any, Any, asyncio.Semaphore]) -> None:
        await parts[0].aclose()

    def _unreachable(self, exc: BaseException) -> None:
        if isinstance(exc, asyncio.TimeoutError) and not str(exc):
            reason = f"TimeoutError: no answer within {self.timeout:g} s"
        else:
            reason = redact(f"{type(exc).__name__}: {exc}", self._secret)
        self._log.warning(
            "Redis rate limiter at %s failed (%s); limiting calls in this process only "
            "until it answers again",
            redact_url(self._url),
            reason,
        )

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, url={redact_url(self._url)!r}, key={self.key!r})"


# ------------------------------------------------------------------------- sharing

_shared: dict[tuple[str, ...], RateLimiter] = {}
_shared_lock = threading.Lock()


def limiter_for(
    config: LLMConfig, provider: str, api_key: str | None, endpoint: str | None = None
) -> RateLimiter | None:
    """The process-wide limiter of ``provider``, ``endpoint`` and ``api_key`` under
    ``config``'s limits.

    ``endpoint`` is the effective endpoint of the calls (``llm.endpoint``: base_url or
    the one from the environment; Bedrock's includes its region): two Azure resources or
    two Bedrock regions never share a bucket. None when neither
    ``requests_per_minute`` nor ``tokens_per_minute`` is set. Every LLM object with the
    same backend, provider, endpoint, key fingerprint and limits gets the same limiter
    (and, with Redis, the same server-side buckets, :func:`bucket_key`), so their calls
    share one budget. Thread-safe.
    """
    rpm, tpm = config.requests_per_minute, config.tokens_per_minute
    if rpm is None and tpm is None:
        return None
    key = bucket_key(provider, endpoint, api_key, rpm, tpm)
    url = ""
    if config.rate_limit_backend == "redis":
        url = redis_url(config.redis_url)
    ident = (config.rate_limit_backend, key, key_fingerprint(url))
    with _shared_lock:
        limiter = _shared.get(ident)
        if limiter is None:
            limiter = RedisRateLimiter(url, key, rpm, tpm) if url else MemoryRateLimiter(rpm, tpm)
            _shared[ident] = limiter
        return limiter


def _number(value: float | None) -> str:
    if value is None:
        return "none"
    return str(int(value)) if float(value).is_integer() else repr(float(value))
