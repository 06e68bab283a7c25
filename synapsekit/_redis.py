"""What the Redis cache and the Redis rate limiter share: short timeouts and a back-off.

A Redis server that is *dead* refuses connections at once; one that is *frozen* (paused,
swapping, a network partition that drops packets) accepts them and never answers. Both
backends are optional help for a call, never a reason for it to wait: every operation has
one short deadline (:data:`OP_TIMEOUT` for a cache operation, :data:`LIMITER_TIMEOUT` for a
rate-limiter round trip; the connect included, the wait for a free pooled connection not:
that is local queueing, not the server's fault), and after a
failure the server is left alone for a while that doubles with each failure in a row
(:class:`Backoff`), so a frozen server costs one short timeout per back-off window, not
one per call.
"""

from __future__ import annotations

import asyncio
import math
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = [
    "BACKOFF_FIRST", "BACKOFF_LONGEST", "LIMITER_TIMEOUT", "OP_TIMEOUT", "Backoff", "within",
]

T = TypeVar("T")

#: Seconds one Redis cache operation (connect included) may take before it counts as a
#: failure. Local and same-datacenter servers answer in well under a millisecond; the
#: margin is for a busy client process (an event loop with hundreds of tasks, a loaded
#: machine), whose delays must not look like a frozen server: a false alarm costs a
#: cache miss, i.e. a paid request.
OP_TIMEOUT = 0.25
#: The same for the Redis rate limiter (a false alarm there limits in-process only, so
#: the processes together may go over the shared budget for a moment).
LIMITER_TIMEOUT = 0.25
#: After a first failure the server is not tried for this many seconds; each further
#: failure in a row doubles it, up to :data:`BACKOFF_LONGEST`.
BACKOFF_FIRST = 0.25
BACKOFF_LONGEST = 30.0


class Backoff:
    """Whether to try the server now: always while it answers; after ``failures`` in a
    row, once per ``first * 2 ** (failures - 1)`` seconds (at most ``longest``).

    Only one caller probes per window: :meth:`allow` moves the window on for the others
    while that probe runs. Failures of operations that were already in flight when the
    server went down count as one (a burst of concurrent timeouts is one failure), so the
    window grows once per failed probe. Thread-safe; ``clock`` is injectable.
    """

    def __init__(
        self,
        first: float = BACKOFF_FIRST,
        longest: float = BACKOFF_LONGEST,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first = first
        self.longest = longest
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0
        self._until = -math.inf
        self._probing = False

    @property
    def down(self) -> bool:
        """True after a failure, until an operation succeeds again."""
        return self.failures > 0

    def window(self) -> float:
        """Seconds the server is left alone after the current run of failures."""
        if self.failures == 0:
            return 0.0
        return float(min(self.first * 2 ** (self.failures - 1), self.longest))

    def allow(self) -> bool:
        """True: try the server now. False: skip it (the caller does without)."""
        with self._lock:
            if self.failures == 0:
                return True
            now = self._clock()
            if now < self._until:
                return False
            self._until = now + self.window()  # one probe per window
            self._probing = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self.failures = 0
            self._until = -math.inf
            self._probing = False

    def failed(self) -> None:
        with self._lock:
            if self.failures == 0 or self._probing:  # else: one of a burst already counted
                self.failures += 1
                self._probing = False
            self._until = max(self._until, self._clock() + self.window())


async def within(operation: Awaitable[T], seconds: float) -> T:
    """``await operation``, or asyncio.TimeoutError after ``seconds``. On Python 3.11+ with
    ``asyncio.timeout`` (no extra task per operation: a Redis round trip is ~100 us, a
    task would add a fifth of it); ``wait_for`` before."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await operation
    return await asyncio.wait_for(operation, seconds)
