"""The OpenAI protocol's error table, fed to :mod:`synapsekit.llm.providers._errors`.

The SDK raises ``APIStatusError`` carrying the body's ``error`` object (``message``,
``type``, ``code``; Azure puts its status in ``code`` as a string, ``"429"``; some vendors
send ``detail``). An ``{"error": ...}`` object can also arrive inside a 200 stream
(OpenAI, Azure; OpenRouter with a numeric code, then ``[DONE]``): :func:`stream_failure`.
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

__all__ = ["error_table", "stream_failure"]


@functools.cache
def error_table(sdk: Any) -> ErrorTable:
    """The openai SDK's exceptions (APIStatusError carries the body's ``error`` object)."""
    return stainless_table(sdk, name="the OpenAI-protocol API", read=_read_status)


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    body = exc.body if isinstance(exc.body, dict) else {}
    headers = exc.response.headers
    message = body.get("message") or body.get("detail") or exc.message
    return Failure(
        exc.status_code,
        str(message),
        (text(body.get("code")), text(body.get("type"))),
        request_id=headers.get("x-request-id") or headers.get("apim-request-id"),
        headers=headers,
    )


def stream_failure(error: Any) -> Failure:
    """An ``{"error": ...}`` object inside a 200 stream; Azure sends its status as the
    code (``"429"``), OpenRouter as a number."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = text(error.get("code"))
    status = int(code) if code is not None and code.isdigit() else None
    return Failure(status, str(error.get("message") or error), (code, text(error.get("type"))))
