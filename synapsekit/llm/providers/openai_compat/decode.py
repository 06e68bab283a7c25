"""The chat-completions stream -> :class:`~synapsekit.llm.types.Chunk` s (the hot path).

The stream body is read as raw SSE bytes and each event parsed as JSON directly, because
an SDK model object per chunk costs more CPU than everything else here. Wire quirks
handled once for all vendors: usage in a final ``choices: []`` chunk (OpenAI) or on the
finish chunk (Groq, DeepSeek, Cerebras) or cumulative on every chunk (Perplexity) -- the
last report wins, never a sum; ``reasoning_content`` / ``reasoning`` deltas kept out of
the answer (``reasoning_content``: DeepSeek, Fireworks, Together; ``reasoning``: Groq,
Cerebras, OpenRouter); tool-call fragments by index (see :func:`parse`); refusals as text
(and ``metadata["refusal"]``); SSE comments ignored (OpenRouter's ``: OPENROUTER
PROCESSING``, DeepSeek's keep-alives); an ``{"error": ...}`` event inside a 200 stream
raised as a typed error.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.providers.openai_compat.errors import stream_failure
from synapsekit.llm.sse import iter_sse, json_event
from synapsekit.llm.types import Chunk, ProviderData, ToolCallDelta, Usage

__all__ = ["FINISH", "Wire", "merge_details", "parse", "usage"]

_DONE = b"[DONE]"
# json.loads(bytes) sniffs the encoding on every call; SSE is UTF-8 by definition.


#: The vendors' finish reasons -> ours (the raw one is kept in metadata).
FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the legacy functions API
    "content_filter": "content_filter",  # Azure's filter, OpenAI's moderation
    "eos": "stop",
}


@dataclass(frozen=True)
class Wire:
    """What one vendor's stream needs of the decoder: ``metadata_keys`` (top-level chunk
    fields kept as call metadata, the last one wins), ``protocol`` (the ``provider_data``
    name: the vendor's), ``carry`` (assistant fields the next turn must send back:
    ``reasoning_details`` on OpenRouter, ``reasoning_content`` on DeepSeek)."""

    metadata_keys: tuple[str, ...] = ()
    protocol: str = "openai"
    carry: tuple[str, ...] = ()


_PLAIN = Wire()


async def parse(
    response: Any, errors: ErrorMapper, wire: Wire = _PLAIN
) -> AsyncGenerator[Chunk, None]:
    """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups.

    Tool calls: ``delta.tool_calls[]`` fragments are yielded as :class:`ToolCallDelta` s
    by position: the wire ``index`` (when a vendor sends none, a new ``id`` starts the next
    call) is mapped to 0, 1, ... in order of first appearance, so interleaved parallel
    calls stay apart; the first delta of a call carries its id (``call_<n>`` when the
    vendor sends none) and name. The JSON is never parsed here (the call path does)."""
    metadata_keys = wire.metadata_keys
    raw_usage: dict[str, Any] | None = None
    finish: str | None = None
    metadata: dict[str, Any] = {}
    event_model: str | None = None
    response_id: Any = None
    done = False
    calls: dict[Any, int] = {}  # wire index (or id) -> our index
    last_call = -1
    refusal: list[str] = []
    reasoning: list[str] = []
    details: list[dict[str, Any]] = []
    errors.request_id = response.headers.get("x-request-id")
    async for _, data in iter_sse(response.aiter_bytes()):
        if done:  # read on to the end of the body so the connection can be reused
            continue
        if data == _DONE:
            done = True
            continue
        event = json_event(data, errors)
        if not response_id:  # every chunk repeats it (Azure's first, filter-only chunk: "")
            response_id = event.get("id")
        if event.get("error"):
            raise errors.error(stream_failure(event["error"]))
        choices = event.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                text = delta.get("content")
                if text:
                    yield Chunk(text)
                # The common deltas hold one key ({"content"} / {"tool_calls"}): after it,
                # nothing else to look up.
                pieces = delta.get("tool_calls") if not text or len(delta) > 1 else None
                if pieces:
                    for piece in pieces:
                        function = piece.get("function") or {}
                        key = piece.get("index")
                        if key is None:  # no index: a new id starts a call, else the last
                            key = piece.get("id")
                            if key is None or key in calls:
                                key = last_call if last_call >= 0 else 0
                                position = last_call if last_call >= 0 else None
                            else:
                                position = None
                        else:
                            position = calls.get(key)
                        fragment = function.get("arguments") or ""
                        if position is None:
                            position = calls[key] = len(calls)
                            last_call = position
                            yield Chunk(tool_delta=ToolCallDelta(
                                position, piece.get("id") or f"call_{position}",
                                function.get("name"), fragment,
                            ))
                        elif fragment:
                            last_call = position
                            yield Chunk(tool_delta=ToolCallDelta(position, arguments=fragment))
                if len(delta) > 1 or not (text or pieces):
                    if not text and delta.get("refusal"):
                        refusal.append(delta["refusal"])
                        yield Chunk(delta["refusal"])
                    thought = delta.get("reasoning_content") or delta.get("reasoning")
                    if thought:
                        if wire.carry:
                            reasoning.append(thought)
                        yield Chunk(reasoning=thought)
                    if not pieces and delta.get("function_call"):  # legacy: one call
                        function = delta["function_call"]
                        if "legacy" not in calls:
                            calls["legacy"] = len(calls)
                            yield Chunk(tool_delta=ToolCallDelta(
                                calls["legacy"], f"call_{calls['legacy']}",
                                function.get("name"), function.get("arguments") or "",
                            ))
                        elif function.get("arguments"):
                            yield Chunk(tool_delta=ToolCallDelta(
                                calls["legacy"], arguments=function["arguments"]
                            ))
                    if "reasoning_details" in wire.carry and delta.get("reasoning_details"):
                        details.extend(delta["reasoning_details"])
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
    normal = FINISH.get(finish) if finish is not None else None
    if calls and normal in (None, "stop"):
        normal = "tool_calls"  # an answer that ends with calls, whatever the vendor said
    if normal is None and finish is not None:
        normal = "stop"
    if finish is not None and finish != normal:  # the vendor's own word, when it differs
        metadata["raw_finish_reason"] = finish
    if refusal:
        metadata["refusal"] = "".join(refusal)
    if response_id:
        metadata["response_id"] = response_id  # gen_ai.response.id
    yield Chunk(
        usage=usage(raw_usage, event_model) if raw_usage else None,
        finish_reason=normal,
        metadata=metadata or None,
        provider_data=_carried(wire, details, reasoning, bool(calls)),
    )


def _carried(
    wire: Wire, details: list[dict[str, Any]], reasoning: list[str], called: bool
) -> ProviderData | None:
    """What the next turn sends back: OpenRouter's ``reasoning_details`` (merged per
    ``index``; needed by models whose reasoning is signed or encrypted), DeepSeek's
    ``reasoning_content`` of a turn that called tools (its thinking mode requires it back
    on such turns, and only on them)."""
    content: dict[str, Any] = {}
    if details:
        content["reasoning_details"] = merge_details(details)
    if "reasoning_content" in wire.carry and called and reasoning:
        content["reasoning_content"] = "".join(reasoning)
    if not content:
        return None
    return {"protocol": wire.protocol, "content": content}


def merge_details(fragments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Streamed ``reasoning_details`` fragments as whole entries: fragments of one
    ``index`` joined (``text`` / ``summary`` / ``data`` concatenated, the other fields'
    last non-empty value kept), in index order."""
    merged: dict[Any, dict[str, Any]] = {}
    for fragment in fragments:
        if not isinstance(fragment, dict):
            continue
        key = fragment.get("index", len(merged))
        entry = merged.get(key)
        if entry is None:
            merged[key] = dict(fragment)
            continue
        for field, value in fragment.items():
            if field in ("text", "summary", "data") and isinstance(value, str):
                entry[field] = (entry.get(field) or "") + value
            elif value not in (None, ""):
                entry[field] = value
    return list(merged.values())


def usage(raw: dict[str, Any], model: Any = None) -> Usage:
    """The vendor's usage object as :class:`Usage` (cached: OpenAI's details or DeepSeek's
    ``prompt_cache_hit_tokens``; Perplexity's ``search_context_size`` kept for its fee;
    OpenRouter's stated ``cost`` as ``stated_cost_usd``)."""
    prompt_details = raw.get("prompt_tokens_details") or {}
    output_details = raw.get("completion_tokens_details") or {}
    size = raw.get("search_context_size")  # Perplexity: chooses the per-request fee
    # OpenRouter states what it billed (``usage.cost``, USD); with BYOK that is only its
    # fee (the upstream provider bills the key's owner), so the price row prices it then.
    stated = raw.get("cost")
    if not isinstance(stated, (int, float)) or isinstance(stated, bool) or stated < 0 \
            or raw.get("is_byok"):
        stated = None
    return Usage(
        model=model if isinstance(model, str) else None,
        search_context_size=size if isinstance(size, str) else None,
        stated_cost_usd=None if stated is None else float(stated),
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_input_tokens=(
            prompt_details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0
        ),
        reasoning_tokens=output_details.get("reasoning_tokens") or 0,
    )
