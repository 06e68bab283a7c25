"""Ollama's error table, fed to :mod:`synapsekit.llm.providers._errors`.

Its ``ResponseError`` drops the headers, so an HTTP error status is raised first by the
connection's response hook (:class:`~.connection.HTTPStatus`); a ``ResponseError`` is then
an ``{"error": ...}`` line inside a 200 (status -1). A refused connection is a builtins
ConnectionError raised by the SDK itself (the hint says Ollama may not be running there); a
404 for a model that is not pulled says how to pull it.
"""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Mapping
from typing import Any

from synapsekit.errors import NotFoundError
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure

from .connection import HTTPStatus

__all__ = ["error_table"]


@functools.cache
def error_table(sdk: Any) -> ErrorTable:
    """The ollama SDK's exceptions, and ours for an HTTP status."""
    import pydantic

    stack = http_stack("ollama._client")
    return ErrorTable(
        name="Ollama",
        status=(HTTPStatus, sdk.ResponseError),
        read=_read_status,
        timeouts=stack.timeouts,
        transport=(*stack.transport, builtins.ConnectionError),
        malformed=(json.JSONDecodeError, pydantic.ValidationError),
        packages=("ollama", "pydantic", "pydantic_core", *stack.packages),
        hint="Is Ollama running there? Start it with `ollama serve`, or point base_url / "
        "OLLAMA_HOST at the server.",
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    if isinstance(exc, HTTPStatus):
        status: int | None = exc.status
        message = _error_text(exc.text)
        headers: Mapping[str, str] = exc.headers
    else:
        status = exc.status_code if exc.status_code > 0 else None  # -1: a line in a 200
        message, headers = str(exc.error), {}
    lowered = message.lower()
    cls = None
    if "not found" in lowered and "model" in lowered:  # "model "x" not found, try pulling"
        cls = NotFoundError
        message = (
            f"Model {errors.model!r} is not on the Ollama server at {errors.endpoint} "
            f"({message}). Download it with: ollama pull {errors.model}"
        )
    elif status == 404:
        message = (
            f"{message} -- is {errors.endpoint} an Ollama server? base_url is the server "
            "root, e.g. http://localhost:11434"
        )
    return Failure(
        status,
        message or f"Ollama answered HTTP {status}.",
        request_id=headers.get("x-request-id"),
        headers=headers,
        cls=cls,
    )


def _error_text(text: str) -> str:
    """``{"error": "..."}`` (Ollama's one error shape) -> the message; else the text itself."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return text.strip()[:500]
