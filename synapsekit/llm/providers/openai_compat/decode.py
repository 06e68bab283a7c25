"""The chat-completions stream -> :class:`~synapsekit.llm.types.Chunk` s (the hot path).

The stream body is read as raw SSE bytes and each event parsed as JSON directly, because
an SDK model object per chunk costs more CPU than everything else here. Wire quirks
handled once for all vendors: usage in a final ``choices: []`` chunk (OpenAI) or on the
finish chunk (Groq, DeepSeek, Cerebras) or cumulative on every chunk (Perplexity) -- the
last report wins, never a sum; ``reasoning_content`` / ``reasoning`` deltas kept out of
the answer; SSE comments ignored (OpenRouter's ``: OPENROUTER PROCESSING``, DeepSeek's
keep-alives); an ``{"error": ...}`` event inside a 200 stream raised as a typed error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.providers.openai_compat.errors import stream_failure
from synapsekit.llm.sse import iter_sse
from synapsekit.llm.types import Chunk, Usage

__all__ = ["parse", "usage"]

_DONE = b"[DONE]"
# json.loads(bytes) sniffs the encoding on every call; SSE is UTF-8 by definition.
_decode_json = json.JSONDecoder().decode


async def parse(
    response: Any, errors: ErrorMapper, metadata_keys: tuple[str, ...] = ()
) -> AsyncGenerator[Chunk, None]:
    """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups.
    ``metadata_keys``: top-level chunk fields kept as call metadata (the last one wins)."""
    decode = _decode_json
    raw_usage: dict[str, Any] | None = None
    finish: str | None = None
    metadata: dict[str, Any] = {}
    event_model: str | None = None
    done = False
    errors.request_id = response.headers.get("x-request-id")
    async for _, data in iter_sse(response.aiter_bytes()):
        if done:  # read on to the end of the body so the connection can be reused
            continue
        if data == _DONE:
            done = True
            continue
        try:
            event = decode(data.decode())
        except ValueError:
            event = None
        if type(event) is not dict:
            raise errors.malformed(repr(data[:200]))
        if event.get("error"):
            raise errors.error(stream_failure(event["error"]))
        choices = event.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                text = delta.get("content") or delta.get("refusal")
                if text:
                    yield Chunk(text)
                thought = delta.get("reasoning_content") or delta.get("reasoning")
                if thought:
                    yield Chunk(reasoning=thought)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        if event.get("usage"):
            raw_usage = event["usage"]
        if event.get("model"):  # the model that answered (Azure: not the deployment)
            event_model = event["model"]
        for key in metadata_keys:
            if event.get(key) is not None:
                metadata[key] = event[key]
    if not done and finish is None:
        raise errors.cut("finish_reason or [DONE]")
    yield Chunk(
        usage=usage(raw_usage, event_model) if raw_usage else None,
        finish_reason=finish,
        metadata=metadata or None,
    )


def usage(raw: dict[str, Any], model: Any = None) -> Usage:
    """The vendor's usage object as :class:`Usage` (cached: OpenAI's details or DeepSeek's
    ``prompt_cache_hit_tokens``; Perplexity's ``search_context_size`` kept for its fee)."""
    prompt_details = raw.get("prompt_tokens_details") or {}
    output_details = raw.get("completion_tokens_details") or {}
    size = raw.get("search_context_size")  # Perplexity: chooses the per-request fee
    return Usage(
        model=model if isinstance(model, str) else None,
        search_context_size=size if isinstance(size, str) else None,
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_input_tokens=(
            prompt_details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0
        ),
        reasoning_tokens=output_details.get("reasoning_tokens") or 0,
    )
