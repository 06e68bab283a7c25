"""Where a Router keeps what it learned about its members: circuit breakers, cooldowns,
time to first token, in-flight calls and error counts.

Why a backend object: one process's router sees one process's failures; a fleet of workers
behind one provider outage should open the breaker once, not once per worker. So the
state is behind one small interface with two backends: :class:`MemoryRouterState` (the
default, per process) and :class:`RedisRouterState` (shared by every Router with the same
``name`` on one Redis server, updated by Lua scripts so each transition is atomic).

The breaker, per member: *closed* (calls pass) -> *open* after ``failure_threshold``
consecutive failures (calls skip the member) -> *half-open* once ``cooldown`` seconds have
passed: exactly one call (the probe) is let through at a time; its success closes the
breaker, its failure opens it for another cooldown. A 429 with ``Retry-After`` *cools* the
member for that long whatever the breaker says.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from synapsekit._redis import LIMITER_TIMEOUT, Backoff, within

__all__ = ["MemberHealth", "MemoryRouterState", "RedisRouterState", "RouterState"]

log = logging.getLogger("synapsekit")

#: Weight of the newest time-to-first-token sample in the moving average.
TTFT_ALPHA = 0.2


@dataclass(frozen=True, slots=True)
class MemberHealth:
    """One member as :meth:`Router.health` shows it. ``state``: ``"closed"``, ``"open"``
    or ``"half_open"`` (open, cooldown over: the next call probes); ``ttft_ms``: the moving
    average of time to first token (None before any success); ``failures``: consecutive
    failures now; ``errors`` / ``successes``: totals; ``cooling_s``: seconds left of a
    Retry-After cooldown (0 when none)."""

    name: str
    state: str
    ttft_ms: float | None
    in_flight: int
    failures: int
    errors: int
    successes: int
    cooling_s: float = 0.0
    probing: bool = False


class RouterState(ABC):
    """The breakers and statistics of one router's members (``names``)."""

    def __init__(self, failure_threshold: int, cooldown: float) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown

    @abstractmethod
    async def acquire(self, member: str) -> str | None:
        """Take an attempt slot on ``member``: None when it may be called now (its
        in-flight count goes up; a half-open breaker's probe is taken), else why not
        (``"circuit open"``, ``"cooling down (429)"``, ``"probe in flight"``)."""

    @abstractmethod
    async def success(self, member: str, ttft_s: float | None) -> None:
        """The attempt taken with :meth:`acquire` answered: breaker closed."""

    @abstractmethod
    async def failure(self, member: str, *, counts: bool, retry_after: float | None) -> None:
        """The attempt failed; ``counts``: it is the member's fault (opens the breaker
        after enough in a row); ``retry_after``: cool the member that long."""

    @abstractmethod
    async def release(self, member: str) -> None:
        """The attempt ended without a verdict (the caller left, a request the member
        refused as invalid): in-flight down, a probe given back."""

    @abstractmethod
    async def health(self, members: Sequence[str]) -> list[MemberHealth]:
        """A snapshot of every member, in order."""

    def in_flight(self, member: str) -> int:
        """In-flight calls as this process last saw them (for ``least_busy``)."""
        return 0

    def ttft(self, member: str) -> float | None:
        """The moving average TTFT (seconds) as this process last saw it."""
        return None


class _Breaker:
    __slots__ = (
        "cool_until", "errors", "failures", "in_flight", "opened_at", "probing",
        "successes", "ttft",
    )

    def __init__(self) -> None:
        self.failures = 0
        self.errors = 0
        self.successes = 0
        self.in_flight = 0
        self.opened_at: float | None = None
        self.probing = False
        self.cool_until = 0.0
        self.ttft: float | None = None


class MemoryRouterState(RouterState):
    """In-process state (thread-safe; the sync variants run on another thread).
    ``clock`` is injectable (tests)."""

    def __init__(
        self, failure_threshold: int, cooldown: float, *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(failure_threshold, cooldown)
        self._clock = clock
        self._lock = threading.Lock()
        self._members: dict[str, _Breaker] = {}

    def _get(self, member: str) -> _Breaker:
        found = self._members.get(member)
        if found is None:
            found = self._members[member] = _Breaker()
        return found

    async def acquire(self, member: str) -> str | None:
        now = self._clock()
        with self._lock:
            b = self._get(member)
            if now < b.cool_until:
                return f"cooling down (429, {b.cool_until - now:.1f}s left)"
            if b.opened_at is not None:
                left = b.opened_at + self.cooldown - now
                if left > 0:
                    return f"circuit open ({left:.1f}s of cooldown left)"
                if b.probing:
                    return "circuit half-open, its probe is in flight"
                b.probing = True
            b.in_flight += 1
            return None

    async def success(self, member: str, ttft_s: float | None) -> None:
        with self._lock:
            b = self._get(member)
            b.in_flight = max(0, b.in_flight - 1)
            b.successes += 1
            b.failures = 0
            b.opened_at = None
            b.probing = False
            if ttft_s is not None:
                b.ttft = ttft_s if b.ttft is None else (
                    b.ttft + TTFT_ALPHA * (ttft_s - b.ttft)
                )

    async def failure(self, member: str, *, counts: bool, retry_after: float | None) -> None:
        now = self._clock()
        with self._lock:
            b = self._get(member)
            b.in_flight = max(0, b.in_flight - 1)
            b.errors += 1
            if retry_after:
                b.cool_until = max(b.cool_until, now + retry_after)
            if counts:
                b.failures += 1
                if b.probing or b.failures >= self.failure_threshold:
                    b.opened_at = now
            b.probing = False

    async def release(self, member: str) -> None:
        with self._lock:
            b = self._get(member)
            b.in_flight = max(0, b.in_flight - 1)
            b.probing = False

    async def health(self, members: Sequence[str]) -> list[MemberHealth]:
        return self.snapshot(members)

    def snapshot(self, members: Sequence[str]) -> list[MemberHealth]:
        """:meth:`health` without an event loop (nothing to wait for in-process)."""
        now = self._clock()
        with self._lock:
            return [_health(name, self._get(name), self.cooldown, now) for name in members]

    def in_flight(self, member: str) -> int:
        found = self._members.get(member)
        return 0 if found is None else found.in_flight

    def ttft(self, member: str) -> float | None:
        found = self._members.get(member)
        return None if found is None else found.ttft


def _health(name: str, b: _Breaker, cooldown: float, now: float) -> MemberHealth:
    state = "closed"
    if b.opened_at is not None:
        state = "half_open" if now >= b.opened_at + cooldown else "open"
    return MemberHealth(
        name=name, state=state, ttft_ms=None if b.ttft is None else b.ttft * 1000.0,
        in_flight=b.in_flight, failures=b.failures, errors=b.errors, successes=b.successes,
        cooling_s=max(0.0, b.cool_until - now), probing=b.probing,
    )


# One hash per member: the same transitions as MemoryRouterState, each one Lua script.
_ACQUIRE = """
local now = tonumber(ARGV[1]); local cooldown = tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'cool_until', 'opened_at', 'probing')
local cool = tonumber(s[1] or '0') or 0
if now < cool then
  return 'cooling down (429, ' .. string.format('%.1f', cool - now) .. 's left)'
end
if s[2] and s[2] ~= '' then
  local left = tonumber(s[2]) + cooldown - now
  if left > 0 then
    return 'circuit open (' .. string.format('%.1f', left) .. 's of cooldown left)'
  end
  if s[3] == '1' then return 'circuit half-open, its probe is in flight' end
  redis.call('HSET', KEYS[1], 'probing', '1')
end
redis.call('HINCRBY', KEYS[1], 'in_flight', 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return false
"""
_SUCCESS = """
local f = tonumber(redis.call('HGET', KEYS[1], 'in_flight') or '0')
if f > 0 then redis.call('HINCRBY', KEYS[1], 'in_flight', -1) end
redis.call('HINCRBY', KEYS[1], 'successes', 1)
redis.call('HSET', KEYS[1], 'failures', 0, 'probing', '0')
redis.call('HDEL', KEYS[1], 'opened_at')
if ARGV[1] ~= '' then
  local t = tonumber(ARGV[1]); local old = redis.call('HGET', KEYS[1], 'ttft')
  if old then t = tonumber(old) + tonumber(ARGV[2]) * (t - tonumber(old)) end
  redis.call('HSET', KEYS[1], 'ttft', tostring(t))
end
return 1
"""
_FAILURE = """
local now = tonumber(ARGV[1])
local f = tonumber(redis.call('HGET', KEYS[1], 'in_flight') or '0')
if f > 0 then redis.call('HINCRBY', KEYS[1], 'in_flight', -1) end
redis.call('HINCRBY', KEYS[1], 'errors', 1)
if ARGV[3] ~= '' then
  local until_ = now + tonumber(ARGV[3])
  local cool = tonumber(redis.call('HGET', KEYS[1], 'cool_until') or '0') or 0
  if until_ > cool then redis.call('HSET', KEYS[1], 'cool_until', tostring(until_)) end
end
if ARGV[2] == '1' then
  local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if redis.call('HGET', KEYS[1], 'probing') == '1' or n >= tonumber(ARGV[4]) then
    redis.call('HSET', KEYS[1], 'opened_at', tostring(now))
  end
end
redis.call('HSET', KEYS[1], 'probing', '0')
return 1
"""
_RELEASE = """
local f = tonumber(redis.call('HGET', KEYS[1], 'in_flight') or '0')
if f > 0 then redis.call('HINCRBY', KEYS[1], 'in_flight', -1) end
redis.call('HSET', KEYS[1], 'probing', '0')
return 1
"""
_FIELDS = ("cool_until", "opened_at", "probing", "in_flight", "failures", "errors",
           "successes", "ttft")


class _Down(Exception):
    """The Redis server did not answer (or is being left alone after failures)."""


class RedisRouterState(RouterState):
    """State shared through Redis by every router of the same ``name`` (key
    ``synapsekit:router:<name>:<member>``). Times are the clients' wall clocks
    (``time.time()``), so the processes' clocks must agree to well under a cooldown; a
    member's hash expires ``ttl`` seconds after its last call. ``url`` as the rate
    limiter takes it (``$REDIS_URL`` by default); ``timeout`` is each round trip's deadline
    (the rate limiter's by default: short, because a call never waits long on its state).

    Redis helps the calls, it never stops them: each round trip has the rate limiter's
    short deadline, and while the server is dead or frozen (then left alone for a
    doubling back-off, :class:`synapsekit._redis.Backoff`) this process decides with an
    in-process state of its own."""

    def __init__(
        self, failure_threshold: int, cooldown: float, *, url: str | None = None,
        name: str = "default", ttl: int = 86_400,
        clock: Callable[[], float] = time.time, timeout: float = LIMITER_TIMEOUT,
    ) -> None:
        super().__init__(failure_threshold, cooldown)
        from synapsekit.errors import MissingDependencyError
        from synapsekit.llm.config import redis_url

        try:
            import redis.asyncio  # noqa: F401  (fail at construction, not at the first call)
        except ImportError as exc:
            raise MissingDependencyError(
                "redis", "redis", feature="A Router's shared state"
            ) from exc
        self._url = redis_url(url)
        self._prefix = f"synapsekit:router:{name}:"
        self._ttl = ttl
        self._clock = clock
        self._timeout = timeout
        self._clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._seen: dict[str, tuple[int, float | None]] = {}
        self._backoff = Backoff()
        self._local = MemoryRouterState(failure_threshold, cooldown)

    def _client(self) -> Any:
        import redis.asyncio

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = redis.asyncio.Redis.from_url(self._url)
        return client

    async def _call(self, operation: Callable[[Any], Awaitable[Any]]) -> Any:
        """One round trip under the deadline, or :class:`_Down`."""
        import redis.exceptions

        if not self._backoff.allow():
            raise _Down
        try:
            found = await within(operation(self._client()), self._timeout)
        except (redis.exceptions.RedisError, OSError, asyncio.TimeoutError) as exc:
            self._backoff.failed()
            log.warning("the router's Redis state failed (%s); deciding in-process for "
                        "%.2fs", type(exc).__name__, self._backoff.window())
            raise _Down from exc
        self._backoff.succeeded()
        return found

    async def _eval(self, script: str, member: str, *args: Any) -> Any:
        key = self._prefix + member
        return await self._call(lambda client: client.eval(script, 1, key, *args))

    async def acquire(self, member: str) -> str | None:
        try:
            found = await self._eval(
                _ACQUIRE, member, repr(self._clock()), repr(self.cooldown), self._ttl
            )
        except _Down:
            return await self._local.acquire(member)
        return None if found is None else found.decode()

    async def success(self, member: str, ttft_s: float | None) -> None:
        try:
            await self._eval(
                _SUCCESS, member, "" if ttft_s is None else repr(ttft_s), repr(TTFT_ALPHA)
            )
        except _Down:
            await self._local.success(member, ttft_s)

    async def failure(self, member: str, *, counts: bool, retry_after: float | None) -> None:
        try:
            await self._eval(
                _FAILURE, member, repr(self._clock()), "1" if counts else "0",
                repr(retry_after) if retry_after else "", self.failure_threshold,
            )
        except _Down:
            await self._local.failure(member, counts=counts, retry_after=retry_after)

    async def release(self, member: str) -> None:
        try:
            await self._eval(_RELEASE, member)
        except _Down:
            await self._local.release(member)

    async def health(self, members: Sequence[str]) -> list[MemberHealth]:
        now = self._clock()

        def read(client: Any) -> Awaitable[Any]:
            pipe = client.pipeline(transaction=False)
            for name in members:
                pipe.hmget(self._prefix + name, *_FIELDS)
            return cast(Awaitable[Any], pipe.execute())

        try:
            rows = await self._call(read)
        except _Down:
            return await self._local.health(members)
        found = []
        for name, row in zip(members, rows, strict=True):
            b = _Breaker()
            cool, opened, probing, flight, fails, errs, oks, ttft = (
                None if v is None else v.decode() for v in row
            )
            b.cool_until = float(cool or 0)
            b.opened_at = float(opened) if opened else None
            b.probing = probing == "1"
            b.in_flight, b.failures = int(flight or 0), int(fails or 0)
            b.errors, b.successes = int(errs or 0), int(oks or 0)
            b.ttft = float(ttft) if ttft else None
            self._seen[name] = (b.in_flight, b.ttft)
            found.append(_health(name, b, self.cooldown, now))
        return found

    def in_flight(self, member: str) -> int:
        return self._seen.get(member, (0, None))[0]

    def ttft(self, member: str) -> float | None:
        return self._seen.get(member, (0, None))[1]

    async def aclose(self) -> None:
        """Close this event loop's client (another loop's goes with that loop)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
