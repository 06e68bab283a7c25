"""The retry policy: which failures are retried, and how long to wait.

There is one policy, ours: every SDK's own retries are switched off, so attempts never
multiply. Whether to retry is read from the exception's type (``LLMError.retryable``);
the wait is the server's Retry-After when it gave one, else exponential backoff with
full jitter, capped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from synapsekit.errors import LLMError

__all__ = ["MAX_DELAY", "backoff_delay", "parse_retry_after", "should_retry"]

MAX_DELAY = 60.0


def should_retry(exc: LLMError, attempt: int, max_retries: int) -> bool:
    """True when ``exc`` is transient and attempts remain (``attempt`` counts from 0)."""
    return attempt < max_retries and exc.retryable


def backoff_delay(
    attempt: int, base: float, retry_after: float | None = None, cap: float = MAX_DELAY
) -> float:
    """Seconds to wait before retry number ``attempt + 1``.

    Retry-After wins (capped) because the server knows when capacity returns; otherwise
    full jitter, uniform in [0, min(cap, base * 2**attempt)], which spreads many clients'
    retries instead of synchronising them.
    """
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, cap)
    import random  # imported with the first retry, not with the module

    return random.uniform(0.0, min(cap, base * (2**attempt)))


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (delta-seconds or an HTTP date)."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    import email.utils  # only a Retry-After given as an HTTP date needs it

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
