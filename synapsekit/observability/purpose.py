"""What a call was for: a context variable the tool loop and structured output set around
each ``respond()``, so the :class:`~synapsekit.observability.tracer.CallRecord` of that call
says so.

Why a context variable: the record is made deep in the call path, which must not take a
"purpose" argument on every public method; a ``with`` block around the call is enough, it
is per task (concurrent loops on one LLM never mix), and nested blocks restore the outer
purpose on exit::

    with call_purpose("tool_loop", step=2):
        response = await llm.respond(history, tools=tools)
    with call_purpose("structured_retry", attempt=2):
        response = await llm.respond(history, response_schema=schema)

A call made outside any block has no purpose (``CallRecord.purpose`` is None).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from synapsekit.errors import ConfigError

__all__ = ["CallPurpose", "call_purpose", "current_purpose"]


@dataclass(frozen=True, slots=True)
class CallPurpose:
    """Why a call was made: ``name`` (e.g. ``"tool_loop"``, ``"structured"``,
    ``"structured_retry"``), the loop ``step`` (1-based) and the re-ask ``attempt``
    (1-based) when they apply."""

    name: str
    step: int | None = None
    attempt: int | None = None


_CURRENT: ContextVar[CallPurpose | None] = ContextVar("synapsekit_call_purpose", default=None)


@contextmanager
def call_purpose(
    name: str, *, step: int | None = None, attempt: int | None = None
) -> Iterator[CallPurpose]:
    """Mark every call made inside the block (in this task) with ``name`` / ``step`` /
    ``attempt``; the previous purpose is restored on exit."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"call_purpose: name must be a non-empty string, not {name!r}")
    for label, value in (("step", step), ("attempt", attempt)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"call_purpose: {label} must be an int or None, not {value!r}")
    purpose = CallPurpose(name, step, attempt)
    token = _CURRENT.set(purpose)
    try:
        yield purpose
    finally:
        _CURRENT.reset(token)


def current_purpose() -> CallPurpose | None:
    """The purpose set by the innermost :func:`call_purpose` block of this task, if any."""
    return _CURRENT.get()
