"""Ollama's NDJSON stream (``/api/chat`` lines) -> chunks.

The lines are read raw (:func:`lines`): the body of the 200 stream is taken from the SDK
by the connection's response hook (see :mod:`synapsekit.llm.providers._raw_body`), split
at ``\\n`` and parsed with one ``json`` call each, as on the SSE protocols; the SDK's
per-line pydantic ``ChatResponse`` cost more than the rest of the call. When the SDK kept
the body after all (a version that no longer sends through our client), its objects are
dumped back to the same wire dicts, so there is one decoder (:func:`chunks`) either way.

Usage only on the ``done: true`` line (``prompt_eval_count`` in, ``eval_count`` out);
``message.thinking`` kept apart from the answer (``Chunk.reasoning``); a body that ends
without ``done: true`` is a broken connection; an ``{"error": ...}`` line inside a 200 is
raised as the SDK's own ``ResponseError`` (as its reader does), mapped by the error table;
a line that is not a JSON object, or whose ``message`` is not what the SDK's
``ChatResponse`` takes, is ``errors.malformed`` (blank lines are skipped).

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
from typing import TYPE_CHECKING, Any

from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.sse import json_event
from synapsekit.llm.types import Chunk, ToolCallDelta, Usage

if TYPE_CHECKING:
    from synapsekit.llm.providers._raw_body import Call

__all__ = ["chunks", "lines"]


async def lines(
    parts: AsyncIterator[Any], call: Call, sdk: Any, errors: ErrorMapper
) -> AsyncIterator[dict[str, Any]]:
    """The stream's lines as wire dicts.

    The SDK's ``parts`` are driven first: their first step sends the request, and they
    yield nothing when the connection took the body (``call.body``), which is then read
    here: split at ``\\n`` (a last line without one included), one ``json`` parse per
    line. When the SDK kept the body, its ``ChatResponse`` objects are dumped back to
    dicts."""
    async for part in parts:  # nothing when the body was taken
        yield part.model_dump(exclude_none=True)
    body = call.body
    if body is None:
        return
    pending = b""
    async for piece in body.aiter_bytes():
        pending = pending + piece if pending else piece
        if b"\n" not in piece:
            continue
        found = pending.split(b"\n")
        pending = found.pop()
        for line in found:
            if line[:1] != b"{" and not line.strip():
                continue  # a blank line
            event = json_event(line, errors)
            if "error" in event:
                _raise_error(event, sdk)
            yield event
    if pending.strip():
        event = json_event(pending, errors)
        if "error" in event:
            _raise_error(event, sdk)
        yield event


def _raise_error(event: dict[str, Any], sdk: Any) -> None:
    """An ``{"error": ...}`` line: the SDK's ``ResponseError`` (status -1), as its reader
    raises it, for the error table to map."""
    error = event["error"]
    if error:
        raise sdk.ResponseError(error if isinstance(error, str) else json.dumps(error))


async def chunks(lines: AsyncIterator[dict[str, Any]], errors: ErrorMapper) -> AsyncIterator[Chunk]:
    """Chunks from the stream's lines (read to the end: the connection is then reused)."""
    final: dict[str, Any] | None = None
    calls = 0
    thinking: list[str] = []
    async for part in lines:
        message = part.get("message")
        if type(message) is not dict:
            raise errors.malformed(f"a line without a message: {str(part)[:200]}")
        thought = message.get("thinking")
        if thought:
            if type(thought) is not str:
                raise errors.malformed(f"message.thinking is not text: {thought!r:.200}")
            thinking.append(thought)
            yield Chunk(reasoning=thought)
        content = message.get("content")
        if content:
            if type(content) is not str:
                raise errors.malformed(f"message.content is not text: {content!r:.200}")
            yield Chunk(content)
        found = message.get("tool_calls")
        if found:
            for name, arguments in _calls(found, errors):
                yield Chunk(tool_delta=ToolCallDelta(
                    calls, f"call_{calls}", name, json.dumps(arguments, ensure_ascii=False),
                    True,
                ))
                calls += 1
        if part.get("done"):
            final = part
    if final is None:
        raise errors.cut("'done' line")
    raw = final.get("done_reason") or "stop"
    eval_count = final.get("eval_count")
    yield Chunk(
        usage=Usage(
            input_tokens=final.get("prompt_eval_count") or 0,
            output_tokens=eval_count or 0,
            complete=eval_count is not None,
        ),
        finish_reason="tool_calls" if calls else "length" if raw == "length" else "stop",
        metadata={"raw_finish_reason": raw},
        provider_data=(
            {"protocol": "ollama", "content": {"thinking": "".join(thinking)}}
            if calls and thinking else None
        ),
    )


def _calls(found: Any, errors: ErrorMapper) -> list[tuple[str, dict[str, Any]]]:
    """``message.tool_calls`` as (name, arguments) pairs; anything the SDK's ``ToolCall``
    would refuse (no name, arguments that are not an object) is malformed."""
    out: list[tuple[str, dict[str, Any]]] = []
    for call in found if type(found) is list else (None,):
        function = call.get("function") if type(call) is dict else None
        if (type(function) is not dict or type(function.get("name")) is not str
                or type(function.get("arguments")) is not dict):
            raise errors.malformed(f"a tool call the protocol does not allow: {call!r:.200}")
        out.append((function["name"], function["arguments"]))
    return out
