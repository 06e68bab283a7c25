"""Throttled warnings, for failures that would otherwise repeat on every call.

A cache whose disk is full, or a Redis server that is down, fails the same way for each
call; the call goes on without it (that is the design), and the log should say so once
a minute, not once per call. The warnings held back are counted in the next one.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["WARN_INTERVAL", "ThrottledLog"]

#: Seconds between two warnings of one throttled log.
WARN_INTERVAL = 60.0


class ThrottledLog:
    """Warnings to ``logger``, at most one per ``interval`` seconds; thread-safe."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = WARN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._next = -math.inf
        self._suppressed = 0

    def warning(self, message: str, *args: Any) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._suppressed += 1
                return
            self._next = now + self._interval
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            message += " (%d similar warnings suppressed)"
            args += (suppressed,)
        self._logger.warning(message, *args)
