"""Mistral's SSE stream -> Chunks: the per-token hot path, kept to dict lookups.

``chat.stream_async`` returns an ``EventStreamAsync`` whose decoder would build a pydantic
``CompletionEvent`` per chunk; it also exposes the undecoded httpx response (``.response``),
so the body is read here as raw SSE bytes and each event parsed with ``json.loads`` -- the
SDK's decoder never runs.

Wire quirks (tests/wire/mistral): usage rides on the last content chunk, the one with
``finish_reason`` (the last report wins); a random ``"p"`` padding field is ignored;
reasoning models (Magistral) send ``delta.content`` as a list of ``thinking`` parts (each
holding text parts) and ``text`` parts; ``finish_reason`` ``model_length`` means
``length`` and ``error`` is a failure; a stream must end with ``data: [DONE]``; an
``{"object": "error", ...}`` event mid-stream is an error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from synapsekit.errors import ServerError
from synapsekit.llm.providers._errors import ErrorMapper, Failure
from synapsekit.llm.sse import iter_sse
from synapsekit.llm.types import Chunk, Usage

from .errors import describe, request_id

__all__ = ["parse"]

_DONE = b"[DONE]"
_FINISH = {"model_length": "length"}


async def parse(response: Any, errors: ErrorMapper) -> AsyncGenerator[Chunk, None]:
    """Chunks from the raw SSE body of one answer."""
    loads = json.loads
    usage: dict[str, Any] | None = None
    finish: str | None = None
    done = False
    errors.request_id = request_id(response.headers)
    async for _, data in iter_sse(response.aiter_bytes()):
        if data == _DONE or done:  # read on to the body's end: the connection is reused
            done = True
            continue
        try:
            event = loads(data)
        except ValueError:
            event = None
        if type(event) is not dict:
            raise errors.malformed(repr(data[:200]))
        choices = event.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    if content.__class__ is str:
                        yield Chunk(content)
                    else:  # a list of text / thinking parts (reasoning models)
                        for chunk in _part_chunks(content):
                            yield chunk
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        elif choices is None and ("message" in event or "error" in event or "detail" in event):
            message, code, kind = describe(event.get("error", event), "")
            raise errors.error(Failure(None, message, (code, kind)))
        if event.get("usage"):
            usage = event["usage"]
    if finish == "error":
        raise errors.error(Failure(
            None, "Mistral stopped the answer with finish_reason 'error'.", ("error",),
            cls=ServerError,
        ))
    if not done:
        raise errors.cut("'data: [DONE]'")
    if finish is not None:
        finish = _FINISH.get(finish, finish)
    yield Chunk(usage=_usage(usage) if usage else None, finish_reason=finish)


def _part_chunks(parts: list[Any]) -> list[Chunk]:
    """``[{"type": "thinking", "thinking": [{"type": "text", ...}]}, {"type": "text", ...}]``."""
    chunks: list[Chunk] = []
    for part in parts:
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            chunks.append(Chunk(part["text"]))
        elif kind == "thinking":
            inner = part.get("thinking")
            for piece in [inner] if isinstance(inner, str) else inner or ():
                text = piece if isinstance(piece, str) else piece.get("text")
                if text:
                    chunks.append(Chunk(reasoning=text))
    return chunks


def _usage(raw: dict[str, Any]) -> Usage:
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_input_tokens=details.get("cached_tokens") or raw.get("num_cached_tokens") or 0,
    )
