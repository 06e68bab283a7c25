"""The SSE body of a streamed Messages call -> :class:`~synapsekit.llm.types.Chunk` s.

The hot path: each event is parsed with ``json.loads`` and read with dict lookups, no
SDK event object per chunk (that costs more CPU than everything else here).

Wire rules followed here:

- usage: ``input_tokens`` from ``message_start``; ``output_tokens`` from ``message_delta``
  is cumulative, so the last value wins, never a sum;
- Anthropic's ``input_tokens`` excludes prompt-cache reads and writes; ``Usage.input_tokens``
  here is the whole prompt, ``input_tokens + cache_read_input_tokens +
  cache_creation_input_tokens``, with the two parts in ``cached_input_tokens`` and
  ``cache_write_tokens`` (the 1-hour part of the writes, ``usage.cache_creation``, in
  ``cache_write_1h_tokens``), as :class:`~synapsekit.llm.types.Usage` defines them;
- content blocks carry an ``index`` counting every block of the answer (text, thinking,
  tool_use...); a ``tool_use`` block becomes the tool call numbered by its position among
  the answer's tool_use blocks (0, 1, ...): ``content_block_start`` gives the first
  delta (id, name), each ``input_json_delta`` a fragment (an empty one is skipped),
  ``content_block_stop`` a ``done`` delta. The JSON is never parsed here;
- ``thinking_delta`` text goes to ``Chunk.reasoning``; its ``signature_delta`` and any
  ``redacted_thinking`` block are kept for ``provider_data``; ``ping``, ``citations_delta``
  and unknown events are ignored; JSON padded with spaces is fine;
- ``provider_data`` (on the final chunk, when the answer holds more than text): the
  assistant content blocks in order, as the next request must send them back (thinking
  with its signature, redacted_thinking with its data, text, tool_use with its input);
- the forced tool of structured output (``text_tool``) is the answer: its fragments are
  text chunks, it is not a tool call, and the answer finishes "stop";
- ``stop_reason``: end_turn / stop_sequence / pause_turn -> stop, max_tokens /
  model_context_window_exceeded -> length, tool_use -> tool_calls, refusal ->
  content_filter; the raw one is ``metadata["raw_finish_reason"]``;
- ``event: error`` inside a 200 stream is raised by its ``error.type``; no ``message_stop``
  means the stream broke (:class:`~synapsekit.errors.ConnectionError`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.sse import iter_sse, json_event
from synapsekit.llm.types import Chunk, ProviderData, ToolCallDelta, Usage

from .errors import error_event

__all__ = ["FINISH_REASONS", "parse", "take_usage", "usage_of"]

#: stop_reason -> the finish reasons every provider uses; others are kept as-is.
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class _Block:
    """One content block as it streams: its start object and the pieces since."""

    __slots__ = ("call", "pieces", "signature", "start", "text")

    def __init__(self, start: dict[str, Any], call: int | None, text: bool) -> None:
        self.start = start
        self.call = call  # the tool-call index of a tool_use block
        self.text = text  # the structured answer's forced tool: its input is the text
        self.pieces: list[str] = []
        self.signature: list[str] = []


async def parse(
    response: Any, errors: ErrorMapper, text_tool: str | None = None
) -> AsyncIterator[Chunk]:
    """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
    usage: dict[str, Any] = {}
    stop: str | None = None
    stop_sequence: Any = None
    done = False
    blocks: dict[int, _Block] = {}
    calls = 0
    message_id: Any = None
    current: _Block | None
    errors.request_id = response.headers.get("request-id")
    async for name, data in iter_sse(response.aiter_bytes()):
        event = json_event(data, errors)
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            part = delta.get("type")
            current = blocks.get(event.get("index"))  # type: ignore[arg-type]
            if part == "text_delta":
                piece = delta.get("text")
                if piece:
                    if current is not None:
                        current.pieces.append(piece)
                    yield Chunk(piece)
            elif part == "input_json_delta":
                piece = delta.get("partial_json")
                if piece and current is not None:
                    current.pieces.append(piece)
                    if current.call is not None:
                        yield Chunk(tool_delta=ToolCallDelta(current.call, arguments=piece))
                    elif current.text:  # the structured answer
                        yield Chunk(piece)
            elif part == "thinking_delta":
                piece = delta.get("thinking")
                if piece:
                    if current is not None:
                        current.pieces.append(piece)
                    yield Chunk(reasoning=piece)
            elif part == "signature_delta" and current is not None:
                current.signature.append(delta.get("signature") or "")
        elif kind == "content_block_start":
            start = event.get("content_block") or {}
            call = None
            text = start.get("type") == "tool_use" and start.get("name") == text_tool
            if start.get("type") == "tool_use" and not text:
                call = calls
                calls += 1
            current = blocks[event.get("index", len(blocks))] = _Block(start, call, text)
            if call is not None:
                yield Chunk(tool_delta=ToolCallDelta(call, start.get("id"), start.get("name")))
        elif kind == "content_block_stop":
            block = blocks.get(event.get("index"))  # type: ignore[arg-type]
            if block is not None and block.call is not None:
                yield Chunk(tool_delta=ToolCallDelta(block.call, done=True))
        elif kind == "message_start":
            message = event.get("message") or {}
            message_id = message.get("id")
            take_usage(usage, message.get("usage"))
            if usage:  # the input is counted now: kept if the stream fails later
                yield Chunk(usage=usage_of(usage, complete=False))
        elif kind == "message_delta":
            take_usage(usage, event.get("usage"))
            end = event.get("delta") or {}
            if end.get("stop_reason"):
                stop = end["stop_reason"]
                stop_sequence = end.get("stop_sequence")
        elif kind == "message_stop":
            done = True
        elif kind == "error" or name == b"error":
            raise errors.error(error_event(event.get("error")))
    if not done:
        raise errors.cut("message_stop")
    finish = FINISH_REASONS.get(stop, stop) if stop is not None else None
    if finish == "tool_calls" and not calls and text_tool is not None:
        finish = "stop"  # only the structured answer's forced tool
    metadata: dict[str, Any] = {"raw_finish_reason": stop}
    if stop_sequence is not None:
        metadata["stop_sequence"] = stop_sequence
    if message_id:
        metadata["response_id"] = message_id  # the Message's id ("msg_..."): gen_ai.response.id
    yield Chunk(
        usage=usage_of(usage) if usage else None,
        finish_reason=finish,
        metadata=metadata,
        provider_data=_provider_data(blocks, text_tool),
    )


def _provider_data(blocks: dict[int, _Block], text_tool: str | None) -> ProviderData | None:
    """The answer's content blocks in order, or None when it is only text (the next turn
    is then built from the text alone)."""
    content: list[dict[str, Any]] = []
    plain = True
    for index in sorted(blocks):
        block = blocks[index]
        start = block.start
        kind = start.get("type")
        if kind == "text" or block.text:
            text = (start.get("text") or "") + "".join(block.pieces)
            if text:
                content.append({"type": "text", "text": text})
            continue
        plain = False
        if kind == "thinking":
            content.append({
                "type": "thinking",
                "thinking": (start.get("thinking") or "") + "".join(block.pieces),
                "signature": (start.get("signature") or "") + "".join(block.signature),
            })
        elif kind == "tool_use":
            # The input as the model wrote it; the call path parses it again (one error
            # path: an invalid one is a ToolCallError there) and the encoder sends the
            # turn's parsed tool_calls in its place.
            content.append({
                "type": "tool_use", "id": start.get("id"), "name": start.get("name"),
                "input": _input(block.pieces),
            })
        else:  # redacted_thinking (its data), server tool blocks: as they came
            item = dict(start)
            if kind == "server_tool_use" and block.pieces:  # its input streamed as JSON
                item["input"] = _input(block.pieces)
            content.append(item)
    if plain:
        return None
    return {"protocol": "anthropic", "content": content}


def _input(pieces: list[str]) -> dict[str, Any]:
    """A streamed tool input as an object ({} when it is not one)."""
    raw = "".join(pieces)
    try:
        found = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def take_usage(usage: dict[str, Any], raw: Any) -> None:
    """Merge a usage report: every count present replaces the earlier one (cumulative)."""
    if isinstance(raw, dict):
        usage.update((k, v) for k, v in raw.items() if isinstance(v, int))
        lifetimes = raw.get("cache_creation")  # {"ephemeral_5m_input_tokens", "..._1h_..."}
        if isinstance(lifetimes, dict):
            usage.update(
                (f"cache_creation.{k}", v) for k, v in lifetimes.items() if isinstance(v, int)
            )


def usage_of(raw: dict[str, Any], *, complete: bool = True) -> Usage:
    cache_read = raw.get("cache_read_input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=(raw.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=raw.get("output_tokens") or 0,
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
        # the 1-hour part of the writes (``usage.cache_creation``), billed at 2x input
        cache_write_1h_tokens=min(raw.get("cache_creation.ephemeral_1h_input_tokens") or 0,
                                  cache_write),
        complete=complete,
    )
