"""Mistral's error table for ``_errors.py``, and how to read its error bodies.

Error bodies come in several shapes: ``{"detail": "Unauthorized"}`` (401),
``{"object": "error", "message", "type", "code"}`` (documented, 429, 400) and FastAPI's
``{"detail": [{"loc", "msg", "type"}, ...]}`` (422: a request the API's schema refuses --
an unknown tool_choice, a bad message shape). The SDK raises ``MistralError`` /
``SDKError`` / ``HTTPValidationError`` for HTTP errors and ``NoResponseError`` when no
answer came.
"""

from __future__ import annotations

import functools
import importlib
import json
from types import ModuleType
from typing import Any

from synapsekit.errors import ServerError
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure, text

from .connection import sdk_root

__all__ = ["describe", "error_table", "request_id"]

_REQUEST_ID = ("mistral-correlation-id", "x-request-id", "x-kong-request-id")


@functools.cache
def error_table(sdk: ModuleType) -> ErrorTable:
    """The SDK's exception classes, whatever its version, and the body reader."""
    root = sdk_root(sdk)
    status: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    for holder in (f"{root.__name__}.errors", f"{sdk.__name__}.models"):
        try:
            module = importlib.import_module(holder)
        except ImportError:
            continue
        for name, bucket in (("MistralError", status), ("SDKError", status),
                             ("HTTPValidationError", status), ("NoResponseError", transport)):
            cls = getattr(module, name, None)
            if isinstance(cls, type) and cls not in bucket:
                bucket.append(cls)
    stack = http_stack(f"{root.__name__}.basesdk")  # v2+ sends with httpx2, v1 with httpx
    return ErrorTable(
        name="Mistral",
        status=tuple(status),
        read=_read_status,
        timeouts=stack.timeouts,
        transport=(*transport, *stack.transport),
        packages=("mistralai", "pydantic", "pydantic_core", *stack.packages),
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    """Any of Mistral's error bodies (see the module docstring); a 2xx the SDK could not
    take as a stream is a ServerError."""
    raw = getattr(exc, "raw_response", None)
    status = getattr(exc, "status_code", None) or getattr(raw, "status_code", None)
    if status is None and type(exc).__name__ == "HTTPValidationError":
        status = 422  # v1's validation error may carry no response
    headers = getattr(exc, "headers", None) or getattr(raw, "headers", None) or {}
    raw_text = exc.body if isinstance(getattr(exc, "body", None), str) else ""
    try:
        body = json.loads(raw_text) if raw_text else None
    except ValueError:
        body = None
    message, code, kind = describe(body, raw_text)
    found = request_id(headers)
    if found is None and isinstance(body, dict) and body.get("request_id"):
        found = str(body["request_id"])
    return Failure(
        status,
        message,
        (code, kind),
        request_id=found,
        headers=headers,
        cls=ServerError if status is not None and 200 <= status < 300 else None,
    )


def describe(body: Any, raw: str) -> tuple[str, str | None, str | None]:
    """(message, code, type) from any of Mistral's error body shapes."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list):  # FastAPI validation: [{"loc": [...], "msg": ...}, ...]
            message = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg')}"
                if isinstance(d, dict) else str(d)
                for d in detail
            )
            return message, None, None
        message = body.get("message") or detail or ""
        code, kind = body.get("code"), body.get("type")
        return (str(message) if message else raw[:500], text(code), text(kind))
    if isinstance(body, str):
        return body, None, None
    return raw[:500], None, None


def request_id(headers: Any) -> str | None:
    for name in _REQUEST_ID:
        value = headers.get(name)
        if value:
            return str(value)
    return None
