"""Small pieces every provider module needs in the same form."""

from __future__ import annotations

import functools
import importlib
from contextlib import suppress
from typing import Any

from synapsekit.errors import ServerError

__all__ = ["as_text", "malformed_event", "transport_errors"]

Classes = tuple[type[BaseException], ...]


def as_text(value: Any) -> str | None:
    """An error code as text (APIs send codes as strings or numbers), None kept None."""
    return None if value is None else str(value)


def malformed_event(
    provider: str, model: str, data: bytes, request_id: str | None = None
) -> ServerError:
    """The error for a stream event that is not the JSON object the protocol promises.

    A ServerError, so it is retried while no token has reached the caller: the answer is
    never silently missing a piece, as it would be if the event were skipped.
    """
    return ServerError(
        f"The provider sent a malformed stream event: {data[:200]!r}",
        provider=provider,
        model=model,
        request_id=request_id,
    )


@functools.cache
def transport_errors() -> tuple[Classes, Classes]:
    """(timeout, other) exception classes of the HTTP clients the SDKs use.

    Reading a raw response body raises the client's own exceptions, unwrapped: ``httpx``
    for openai, cohere and older SDKs, ``httpx2`` (a fork) for anthropic >= 2, mistralai
    >= 2 and google-genai >= 3. Whichever are installed are caught.
    """
    modules = []
    for name in ("httpx2", "httpx"):
        with suppress(ImportError):
            modules.append(importlib.import_module(name))
    return (
        tuple(m.TimeoutException for m in modules),
        tuple(m.HTTPError for m in modules),
    )
