"""Anthropic's errors, for the shared mapping layer (:mod:`~synapsekit.llm.providers._errors`).

A status error's body is ``{"type": "error", "error": {"type", "message"}, "request_id"}``;
the same ``error`` object can arrive as ``event: error`` inside a 200 stream (then only
its type decides). 529 / ``overloaded_error`` is a ServerError (retried) by the status
rule; a 400 "prompt is too long" a ContextLengthError; ``billing_error`` a
QuotaExceededError.
"""

from __future__ import annotations

import functools
from typing import Any

from synapsekit.llm.providers._errors import (
    ErrorMapper,
    ErrorTable,
    Failure,
    stainless_table,
    text,
)

__all__ = ["error_event", "error_table"]


@functools.cache
def error_table(sdk: Any) -> ErrorTable:
    """The anthropic SDK's exceptions; 529 is a ServerError by the status rule (5xx)."""
    return stainless_table(sdk, name="Anthropic", read=_read_status)


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if not isinstance(error, dict):
        error = {}
    headers = exc.response.headers
    return Failure(
        exc.status_code,
        str(error.get("message") or exc.message),
        (text(error.get("type")),),
        request_id=headers.get("request-id") or text(body.get("request_id")),
        headers=headers,
    )


def error_event(error: Any) -> Failure:
    """An ``event: error`` inside a 200 stream: no status, so its type decides."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    return Failure(None, str(error.get("message") or error), (text(error.get("type")),))
