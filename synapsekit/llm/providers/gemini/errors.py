"""The Gemini error table fed to :mod:`synapsekit.llm.providers._errors`.

Errors are ``google.rpc.Status`` bodies: ``{"error": {"code", "message", "status",
"details": [...]}}``. A bad key is HTTP **400** whose detail reason is ``API_KEY_INVALID`` (an
AuthenticationError: the one case the status does not tell); a 429's wait is in the body's
``RetryInfo.retryDelay``, not in a header.
"""

from __future__ import annotations

import functools
from contextlib import suppress
from typing import Any

from synapsekit.errors import AuthenticationError
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure, text
from synapsekit.llm.providers.gemini.connection import SENDER

__all__ = ["error_table"]


@functools.cache
def error_table(sdk: Any) -> ErrorTable:
    """google-genai's exceptions: ``APIError`` for an error status (and for an
    ``{"error": ...}`` event inside a 200 stream), ``UnknownApiResponseError`` for an event
    that is not JSON; the HTTP library is the one our own AsyncClient is built from."""
    stack = http_stack(SENDER)
    return ErrorTable(
        name="Gemini",
        status=(sdk.errors.APIError,),
        read=_read_status,
        timeouts=stack.timeouts,
        transport=stack.transport,
        malformed=(sdk.errors.UnknownApiResponseError,),
        packages=("google.genai", "pydantic", "pydantic_core", *stack.packages),
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    body: dict[str, Any] = exc.details if isinstance(exc.details, dict) else {}
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else body
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    reason = next((str(d["reason"]) for d in details if d.get("reason")), None)
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return Failure(
        exc.code if isinstance(exc.code, int) else None,
        str(exc.message or error.get("message") or exc),
        (reason, text(exc.status)),
        headers=headers,
        retry_after=_retry_delay(details),
        cls=AuthenticationError if reason and reason.startswith("API_KEY_") else None,
    )


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """``RetryInfo.retryDelay`` ("26s", "7.81s") in seconds."""
    for detail in details:
        if str(detail.get("@type", "")).endswith("RetryInfo"):
            with suppress(TypeError, ValueError):
                return max(float(str(detail.get("retryDelay")).rstrip("s")), 0.0)
    return None
