"""Stream deadlines, enforced by synapsekit itself on every provider.

The SDKs' own timeouts cannot be trusted to catch a stalled stream: httpx's read timeout
is per socket read (a server that trickles keep-alive bytes never trips it), google-genai's
aiohttp path has only a total limit, botocore reads on a worker thread, and none of them
has a first-token limit. So the call path (:meth:`BaseLLM._run`) wraps the provider's
chunk iterator in :meth:`Deadline.watch`, which bounds

- ``first_token_timeout``: from the moment the attempt starts (the request is sent inside
  the first ``__anext__``: connect and upload included; building the SDK client on
  first use is not, see :func:`client_ready`) to the first chunk carrying text,
  reasoning or a tool-call delta (a usage-only opening chunk is not a token);
- ``idle_timeout``: every silence between two chunks after the first token;
- ``total_timeout``: the whole call, from :class:`Deadline`'s creation, retries included
  (:meth:`Deadline.allows` refuses a back-off that would end past it).

On expiry the waiting task is cancelled the way :func:`asyncio.timeout` does it: the
``CancelledError`` runs through the provider's generator, whose cleanup closes the HTTP
response (the server sees the disconnect; Bedrock's worker read is woken by shutting its
socket down), and comes out here as :class:`synapsekit.errors.TimeoutError`. The call path
then retries it if nothing reached the caller, else raises ``StreamInterruptedError`` with
the partial text; nothing is cached either way.

Cost: one timer per stream, not one per chunk. A chunk only stores the loop time; the
timer, when it fires, re-arms itself for the current expiry if chunks came meanwhile, so a
healthy stream reschedules it about once per ``idle_timeout``. Time the consumer spends
between chunks is never cut (the timer only cancels while the provider is awaited), but it
counts towards ``total_timeout``.

The SDKs still get a backstop (:func:`sdk_timeouts`): ``connect_timeout`` as their connect
limit (only the SDK can tell connecting from waiting) and the larger of the first-token
and idle limits as their read limit, so the SDK never fires before synapsekit does.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

from synapsekit.errors import TimeoutError
from synapsekit.llm.config import SAME_AS_TIMEOUT, LLMConfig

if TYPE_CHECKING:
    from synapsekit.llm.types import Chunk

__all__ = ["Deadline", "Timeouts", "client_ready", "connect_hook", "sdk_timeouts", "timeouts"]

#: The watch of the stream waiting for its first chunk in this context, if any.
_FIRST_WAIT: ContextVar[_Watch | None] = ContextVar("synapsekit_first_wait", default=None)


class Timeouts(NamedTuple):
    """A config's four limits in seconds, ``timeout`` filled in; None = no limit."""

    connect: float | None
    first_token: float | None
    idle: float | None
    total: float | None

    @property
    def read(self) -> float | None:
        """The SDK's per-read backstop: the longest silence synapsekit itself allows."""
        if self.first_token is None or self.idle is None:
            return None
        return max(self.first_token, self.idle)


def timeouts(config: LLMConfig) -> Timeouts:
    """``config``'s deadlines, with :data:`~synapsekit.llm.config.SAME_AS_TIMEOUT` read as
    ``config.timeout``."""

    def given(value: Any) -> float | None:
        return config.timeout if value is SAME_AS_TIMEOUT else value

    return Timeouts(
        given(config.connect_timeout),
        given(config.first_token_timeout),
        given(config.idle_timeout),
        config.total_timeout,
    )


def client_ready() -> None:
    """Called by :meth:`Connection.client` when the SDK client is at hand: a stream waiting
    for its first chunk restarts its first-token clock, so a client built on first use
    (boto3 takes 50-100 ms) never eats into ``first_token_timeout``."""
    watch = _FIRST_WAIT.get()
    if watch is not None:
        watch.restart()


def sdk_timeouts(config: LLMConfig, http: Any) -> Any:
    """An ``http.Timeout`` (``http``: the httpx or httpx2 module the SDK sends with): the
    connect limit, and the read backstop for reads, writes and the pool wait; None when
    neither is limited (the SDKs' own spelling of "no timeout")."""
    limits = timeouts(config)
    if limits.read is None and limits.connect is None:
        return None
    return http.Timeout(limits.read, connect=limits.connect)


def connect_hook(config: LLMConfig) -> Callable[[Any], Awaitable[None]]:
    """An httpx ``request`` event hook setting ``config``'s connect limit on every request,
    for SDKs that send a single float timeout per request (cohere, mistralai, google-genai:
    that float would be the connect limit too)."""
    connect = timeouts(config).connect

    async def limit_connect(request: Any) -> None:
        limits = request.extensions.get("timeout", {})
        request.extensions["timeout"] = {**limits, "connect": connect}

    return limit_connect


class Deadline:
    """One call's deadlines: created when the call starts, it watches each attempt's
    provider stream (:meth:`watch`) and bounds retries (:meth:`allows`)."""

    __slots__ = ("_ends", "_limits", "_model", "_provider")

    def __init__(self, config: LLMConfig, provider: str) -> None:
        self._limits = timeouts(config)
        self._provider = provider
        self._model = config.model
        total = self._limits.total
        loop = asyncio.get_running_loop()
        self._ends = None if total is None else loop.time() + total

    def allows(self, delay: float) -> bool:
        """Whether a back-off of ``delay`` seconds still ends before ``total_timeout``
        (else the call gives up now, with the attempt's own error)."""
        if self._ends is None:
            return True
        return asyncio.get_running_loop().time() + delay < self._ends

    def watch(self, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        """``chunks`` under the deadlines; unchanged when no limit is set."""
        limits = self._limits
        if limits.first_token is None and limits.idle is None and self._ends is None:
            return chunks
        return self._watched(chunks)

    async def _watched(self, chunks: AsyncIterator[Chunk]) -> AsyncGenerator[Chunk, None]:
        loop = asyncio.get_running_loop()
        watch = _Watch(loop, self._ends)
        first, idle = self._limits.first_token, self._limits.idle
        started = loop.time()
        count = 0
        iterator = chunks.__aiter__()
        try:
            # Up to the first token: one limit from the start (opening events do not reset it).
            expires = None if first is None else started + first
            while True:
                watch.arm(expires, first)
                first_wait = _FIRST_WAIT.set(watch)
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not watch.fired:
                        raise
                    kind = "first_token_timeout"
                    raise self._timed_out(watch, kind, first, count, started) from None
                finally:
                    watch.waiting = False
                    _FIRST_WAIT.reset(first_wait)
                count += 1
                yield chunk
                if chunk.text or chunk.reasoning or chunk.tool_delta is not None:
                    break
            # Then per wait: the provider's silence, not the consumer's (the hot loop: kept
            # flat). The first wait is armed in full; after it an expiry only moves later
            # (now + idle, or the total deadline), so a live timer stays valid (it re-arms
            # itself when it fires early) and a wait only stores the expiry and the task.
            now, anext, current = _clock(loop), iterator.__anext__, asyncio.current_task
            ends = math.inf if self._ends is None else self._ends
            watch.arm(None if idle is None else now() + idle, idle)
            if not watch.waiting:  # neither idle_timeout nor total_timeout: nothing to time
                async for chunk in iterator:
                    yield chunk
                return
            while True:
                try:
                    chunk = await anext()
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not watch.fired:
                        raise
                    raise self._timed_out(watch, "idle_timeout", idle, count, started) from None
                finally:
                    watch.waiting = False
                count += 1
                yield chunk
                expires = ends if idle is None else now() + idle
                if ends <= expires:
                    expires, watch.total_hit = ends, True
                watch.expires = expires
                watch.task = current(loop)
                watch.waiting = True
                if watch.handle is None:
                    watch.schedule()
        finally:
            watch.close()

    def _timed_out(
        self, watch: _Watch, kind: str, limit: float | None, count: int, started: float
    ) -> TimeoutError:
        """Our own cancellation of the wait, taken back from the task, as a TimeoutError."""
        watch.uncancel()
        elapsed = asyncio.get_running_loop().time() - started
        return self._expired(watch, kind, limit, count, elapsed)

    def _expired(
        self, watch: _Watch, kind: str, limit: float | None, count: int, elapsed: float
    ) -> TimeoutError:
        if watch.total_hit:
            what = f"total_timeout of {self._limits.total:g} s reached"
        elif kind == "first_token_timeout":
            what = f"no first token within first_token_timeout={limit:g} s"
        else:
            what = f"the stream sent nothing for idle_timeout={limit:g} s"
        return TimeoutError(
            f"{what} ({count} chunk(s) in {elapsed:.2f} s); the upstream request was closed",
            provider=self._provider,
            model=self._model,
            code=kind if not watch.total_hit else "total_timeout",
        )


def _clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time``, or the function it calls when that is the standard library's own
    (``time.monotonic``: the same clock without a Python frame per chunk; uvloop's
    ``time`` is its own and is kept)."""
    if type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class _Watch:
    """The one timer of a watched stream. Before each wait, :meth:`arm` (or, between
    chunks, :meth:`Deadline._watched`'s own three stores) sets when the wait expires and
    which task waits; the timer cancels that task only if the moment has come and it is
    still waiting, else re-arms itself (chunks came meanwhile) or lapses until the next
    wait schedules it again (the consumer has the chunk)."""

    __slots__ = (
        "_ends", "_limit", "_loop", "expires", "fired", "handle", "task", "total_hit",
        "waiting",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, ends: float | None) -> None:
        self._loop = loop
        self._ends = ends  # the call's total deadline (loop time), if any
        self.handle: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[Any] | None = None
        self._limit: float | None = None
        self.expires = 0.0
        self.waiting = False
        self.fired = False
        self.total_hit = False

    def arm(self, expires: float | None, limit: float | None) -> None:
        self._limit = limit
        ends = self._ends
        if expires is None or (ends is not None and ends <= expires):
            expires, self.total_hit = ends, True
        else:
            self.total_hit = False
        if expires is None:
            return  # this wait is unbounded
        self.expires = expires
        self.task = asyncio.current_task(self._loop)
        self.waiting = True
        handle = self.handle
        if handle is None or handle.when() > expires:
            if handle is not None:
                handle.cancel()
            self.schedule()

    def schedule(self) -> None:
        """The timer, at the current expiry."""
        self.handle = self._loop.call_at(self.expires, self._fire)

    def restart(self) -> None:
        """Count the current wait's limit from now (the total deadline stays)."""
        if self.waiting and self._limit is not None and not self.total_hit:
            now = self._loop.time()
            ends = self._ends
            self.expires = now + self._limit if ends is None else min(now + self._limit, ends)
            self.total_hit = ends is not None and ends <= now + self._limit

    def _fire(self) -> None:
        self.handle = None
        if not self.waiting:
            return  # the consumer holds a chunk: the next arm() schedules again
        if self._loop.time() < self.expires:  # a chunk came since: wait for the new expiry
            self.schedule()
            return
        if self.task is not None:
            self.fired = True
            self.task.cancel()

    def uncancel(self) -> None:
        """Take back our cancellation (Python 3.11+ counts them), as asyncio.timeout does."""
        uncancel = getattr(self.task, "uncancel", None)
        if uncancel is not None:
            uncancel()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
