"""Ollama's NDJSON stream (as the SDK's ``ChatResponse`` objects) -> chunks.

The SDK parses each NDJSON line into a pydantic ``ChatResponse``; it offers no public access
to the raw lines (only its private httpx client), so those objects are used as they come and
the per-line work here is a few attribute reads.

Usage only on the ``done: true`` line (``prompt_eval_count`` in, ``eval_count`` out);
``message.thinking`` kept apart from the answer (``Chunk.reasoning``); a body that ends
without ``done: true`` is a broken connection (an ``{"error": ...}`` line inside a 200 is
raised by the SDK as a ``ResponseError``, mapped by the error table).

Tool calls come whole, in a ``done: false`` line (``message.tool_calls``: ``function.name``
and ``function.arguments``, an object): each is one
:class:`~synapsekit.llm.types.ToolCallDelta` with ``done=True`` and the arguments as JSON
text (the call path parses them, as for every provider). Ollama sends no call ids: they are
synthesised as ``call_<index>``, the index counted over the answer's calls. Ollama's
``done_reason`` stays ``"stop"`` after tool calls (stream_tool_call.ndjson): the finish
reason is ``"tool_calls"`` when the answer called tools, ``"length"`` for ``length``,
``"stop"`` otherwise; the raw one is ``metadata["raw_finish_reason"]``. The thinking of an
answer that calls tools goes into ``provider_data`` (``{"thinking"}``), sent back with that
turn (Ollama's docs append the whole assistant message, thinking included).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.types import Chunk, ToolCallDelta, Usage

__all__ = ["chunks"]


async def chunks(parts: Any, errors: ErrorMapper) -> AsyncIterator[Chunk]:
    """Chunks from the SDK's async iterator of ``ChatResponse`` (read to its end)."""
    final: Any = None
    calls = 0
    thinking: list[str] = []
    try:
        async for part in parts:  # read to the end: the connection is then reused
            message = part.message
            if message.thinking:
                thinking.append(message.thinking)
                yield Chunk(reasoning=message.thinking)
            if message.content:
                yield Chunk(message.content)
            if message.tool_calls:
                for call in message.tool_calls:
                    function = call.function
                    yield Chunk(tool_delta=ToolCallDelta(
                        calls, f"call_{calls}", function.name,
                        json.dumps(dict(function.arguments), ensure_ascii=False), True,
                    ))
                    calls += 1
            if part.done:
                final = part
    finally:
        await parts.aclose()  # early exit / cancel: closes the HTTP response
    if final is None:
        raise errors.cut("'done' line")
    raw = final.done_reason or "stop"
    yield Chunk(
        usage=Usage(
            input_tokens=final.prompt_eval_count or 0,
            output_tokens=final.eval_count or 0,
            complete=final.eval_count is not None,
        ),
        finish_reason="tool_calls" if calls else "length" if raw == "length" else "stop",
        metadata={"raw_finish_reason": raw},
        provider_data=(
            {"protocol": "ollama", "content": {"thinking": "".join(thinking)}}
            if calls and thinking else None
        ),
    )
