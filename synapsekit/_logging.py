"""Logging helpers: throttled warnings, and API keys kept out of every log line.

A cache whose disk is full, or a Redis server that is down, fails the same way for each
call; the call goes on without it (that is the design), and the log should say so once
a minute, not once per call. The warnings held back are counted in the next one.

SDKs log more than their own messages at DEBUG: botocore prints each request with its
headers (``Authorization: Bearer <Bedrock API key>``, ``X-Amz-Security-Token``), its
SigV4 canonical request too. :func:`redact_in_logs` registers a key in use (every
provider calls it when it builds a client with one), and from then on every log record
of the process has it replaced by ``***`` -- SDK loggers included, whatever handler or
level the application set. It is done where records are made (a log-record factory that
wraps the one installed before it), because a ``logging.Filter`` on a logger does not see
the records of its child loggers (``botocore.endpoint``) that propagate to the root.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["MIN_SECRET", "WARN_INTERVAL", "ThrottledLog", "forget_in_logs", "redact_in_logs"]

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


#: Shorter strings are not treated as secrets: replacing them would mangle ordinary text.
MIN_SECRET = 8
_REDACTED = "***"
_secrets_lock = threading.Lock()
#: Each secret in use and how many live SDK clients hold it (per-call keys come and go).
_secrets: dict[str, int] = {}
_pattern: re.Pattern[str] | None = None  # alternation of the secrets, longest first
_stale = False  # the secrets changed since _pattern was compiled
_installed = False


def redact_in_logs(*secrets: str | None) -> None:
    """Replace each of ``secrets`` with ``***`` in every log record made from now on,
    until as many :func:`forget_in_logs` calls have released it (a connection registers
    its key when it builds an SDK client and releases it when it closes that client).

    Cheap to repeat; ``None``, empty and short values are ignored. The message (with its
    arguments), exception and stack text of a record are checked; a record that holds no
    secret is left exactly as it was. The pattern is compiled when the next record is
    made, not per key: a burst of new per-call keys compiles it once.
    """
    global _stale, _installed
    held = [s for s in secrets if s and len(s) >= MIN_SECRET]
    if not held:
        return
    with _secrets_lock:
        if not _installed:
            _install_factory()
            _installed = True
        for secret in held:
            count = _secrets.get(secret, 0)
            _secrets[secret] = count + 1
            _stale = _stale or count == 0


def forget_in_logs(*secrets: str | None) -> None:
    """Release secrets :func:`redact_in_logs` registered: one that no live client holds
    any more is no longer searched for, so a service that sees thousands of users' keys
    over its life checks each log record against the keys in use, not every key ever."""
    global _stale
    with _secrets_lock:
        for secret in filter(None, secrets):
            count = _secrets.pop(secret, 0)
            if count > 1:
                _secrets[secret] = count - 1
            elif count == 1:
                _stale = True


def _current_pattern() -> re.Pattern[str] | None:
    global _pattern, _stale
    if _stale:
        with _secrets_lock:
            if _stale:
                ordered = sorted(_secrets, key=len, reverse=True)
                _pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
                _stale = False
    return _pattern


def _install_factory() -> None:
    previous = logging.getLogRecordFactory()

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        pattern = _current_pattern()
        if pattern is not None:
            _scrub(record, pattern)
        return record

    logging.setLogRecordFactory(make_record)


def _scrub(record: logging.LogRecord, pattern: re.Pattern[str]) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it at emit time, as usual
        message = str(record.msg)
    if pattern.search(message):
        record.msg, record.args = pattern.sub(_REDACTED, message), None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        if pattern.search(text):  # the text only: a handler reading exc_info would see it
            record.exc_text, record.exc_info = pattern.sub(_REDACTED, text), None
    if record.stack_info and pattern.search(record.stack_info):
        record.stack_info = pattern.sub(_REDACTED, record.stack_info)
