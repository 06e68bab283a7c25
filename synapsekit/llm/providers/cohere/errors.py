"""Cohere's error table, fed to :mod:`synapsekit.llm.providers._errors`.

Every error status is a ``cohere.core.api_error.ApiError`` (the ``cohere.errors.*`` classes
subclass it) with ``status_code``, ``body`` (``{"id"?, "message"}``, or plain text) and
``headers``. 498 (an invalid, deny-listed token) is an AuthenticationError; 402 (billing) is
a QuotaExceededError by status. The in-stream finish reasons ``ERROR`` / ``TIMEOUT`` map
through ``codes``.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from synapsekit.errors import AuthenticationError, ServerError, TimeoutError
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure, text

__all__ = ["error_table"]


@functools.cache
def error_table() -> ErrorTable:
    """The cohere SDK's exceptions: every error status is an ``ApiError``."""
    stack = http_stack("cohere.core.http_client")
    api_error: type[Exception] = importlib.import_module("cohere.core.api_error").ApiError
    return ErrorTable(
        name="Cohere",
        status=(api_error,),
        read=_read_status,
        timeouts=stack.timeouts,
        transport=stack.transport,
        # In-stream finish reasons; 498 is an invalid (deny-listed) token.
        codes={"timeout": TimeoutError, "error": ServerError},
        statuses={498: AuthenticationError},
        packages=("cohere", "pydantic", "pydantic_core", *stack.packages),
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    """``{"id": ..., "message": ...}``; the body may also be plain text."""
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") or (exc.body if isinstance(exc.body, str) else None)
    return Failure(
        exc.status_code,
        str(message or ""),
        request_id=text(body.get("id")),
        headers=exc.headers,
    )
