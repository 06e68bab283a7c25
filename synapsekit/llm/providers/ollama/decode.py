"""Ollama's NDJSON stream (as the SDK's ``ChatResponse`` objects) -> chunks.

The SDK parses each NDJSON line into a pydantic ``ChatResponse``; it offers no public access
to the raw lines (only its private httpx client), so those objects are used as they come and
the per-line work here is a few attribute reads.

Usage only on the ``done: true`` line (``prompt_eval_count`` in, ``eval_count`` out);
``done_reason`` ``stop``/``length``; ``message.thinking`` kept apart from the answer; a body
that ends without ``done: true`` is a broken connection (an ``{"error": ...}`` line inside a
200 is raised by the SDK as a ``ResponseError``, mapped by the error table).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.types import Chunk, Usage

__all__ = ["chunks"]


async def chunks(parts: Any, errors: ErrorMapper) -> AsyncIterator[Chunk]:
    """Chunks from the SDK's async iterator of ``ChatResponse`` (read to its end)."""
    final: Any = None
    try:
        async for part in parts:  # read to the end: the connection is then reused
            message = part.message
            if message.thinking:
                yield Chunk(reasoning=message.thinking)
            if message.content:
                yield Chunk(message.content)
            if part.done:
                final = part
    finally:
        await parts.aclose()  # early exit / cancel: closes the HTTP response
    if final is None:
        raise errors.cut("'done' line")
    yield Chunk(
        usage=Usage(
            input_tokens=final.prompt_eval_count or 0,
            output_tokens=final.eval_count or 0,
            complete=final.eval_count is not None,
        ),
        finish_reason=final.done_reason or "stop",
    )
