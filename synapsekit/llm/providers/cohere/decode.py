"""Cohere's v2 chat SSE stream -> :class:`~synapsekit.llm.types.Chunk` s.

The stream body is read raw (``with_raw_response.chat_stream`` yields the open
``httpx.Response``) and each SSE event parsed with ``json.loads`` directly: cheaper than the
SDK's pydantic object per event, and stricter (the SDK skips an event it cannot parse with a
warning, which would silently drop answer text; here it is an error).

- text in ``content-delta`` is ``delta.message.content.text``; a reasoning model's thinking
  block arrives in the same event type as ``.thinking`` and goes to ``Chunk.reasoning``;
- usage rides on ``message-end``: ``Usage`` counts ``usage.tokens`` (what the model
  processed, chat template included), not ``billed_units`` (what is charged, which leaves the
  template out), because ``usage.cached_tokens`` is a part of the former (448 of 507 in a real
  capture, against 12 billed) and :class:`~synapsekit.llm.types.Usage` keeps cached tokens a
  part of ``input_tokens``. ``billed_units`` goes to ``Usage.billed_input_tokens`` /
  ``billed_output_tokens``, which the cost is computed from (what Cohere charges), and stays
  in the final chunk's metadata; it is the fallback count when ``tokens`` is absent;
- ``message-end`` is the terminal event (``data: [DONE]`` may follow, or not): a stream
  without one broke (:class:`~synapsekit.errors.ConnectionError`); ``finish_reason: ERROR``
  (with ``delta.error``) inside a 200 is a ServerError, ``TIMEOUT`` a TimeoutError.

Tool calls (``stream_tool_call.sse``: two calls, one after the other):

- ``tool-call-start`` carries one call (``delta.message.tool_calls``: id, name, and
  ``arguments``, ``""`` so far) -> the first :class:`~synapsekit.llm.types.ToolCallDelta`
  of its index (id, name); ``tool-call-delta`` an argument fragment of the same ``index``;
  ``tool-call-end`` -> a ``done`` delta. The event's ``index`` keeps parallel calls apart;
  it is mapped onto 0, 1, ... in order of first appearance (the contract's numbering);
- ``tool-plan-delta`` (``delta.message.tool_plan``) is the model's plan before it calls
  tools ("I will use the query_daily_sales_report tool to ..."): not the answer, so it goes
  to ``Chunk.reasoning``, like thinking. The whole plan, and the thinking of an answer that
  calls tools, go into ``provider_data`` (``{"tool_plan", "thinking"}``) so the assistant
  turn is sent back as Cohere wrote it (:mod:`.encode`);
- ``finish_reason``: ``COMPLETE`` / ``STOP_SEQUENCE`` -> stop, ``MAX_TOKENS`` -> length,
  ``TOOL_CALL`` -> tool_calls; the raw one is ``metadata["raw_finish_reason"]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from synapsekit.llm.providers._errors import ErrorMapper, Failure
from synapsekit.llm.sse import iter_sse, json_event
from synapsekit.llm.types import Chunk, ToolCallDelta, Usage

__all__ = ["FINISH_REASONS", "chunks"]

_DONE = b"[DONE]"

#: finish_reason -> the finish reasons every provider uses; another (none is documented
#: besides ERROR / TIMEOUT, which raise) is "tool_calls" after tool calls, else "stop".
FINISH_REASONS: dict[str, str] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}


async def chunks(response: Any, errors: ErrorMapper) -> AsyncIterator[Chunk]:
    """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
    end: dict[str, Any] | None = None
    message_id: str | None = None
    plan: list[str] = []
    thinking: list[str] = []
    order: dict[Any, int] = {}  # the wire's tool-call index -> ours (0, 1, ...)
    async for _, data in iter_sse(response.aiter_bytes()):
        if data == _DONE:  # read on to the body's end: the connection is then reused
            continue
        event = json_event(data, errors)
        kind = event.get("type")
        if kind == "content-delta":
            content = ((event.get("delta") or {}).get("message") or {}).get("content") or {}
            text = content.get("text")
            if text:
                yield Chunk(text)
            elif content.get("thinking"):
                thinking.append(content["thinking"])
                yield Chunk(reasoning=content["thinking"])
        elif kind == "tool-call-delta":
            call = ((event.get("delta") or {}).get("message") or {}).get("tool_calls") or {}
            fragment = (call.get("function") or {}).get("arguments")
            if fragment:
                index = order.setdefault(event.get("index"), len(order))
                yield Chunk(tool_delta=ToolCallDelta(index, arguments=fragment))
        elif kind == "tool-plan-delta":
            piece = ((event.get("delta") or {}).get("message") or {}).get("tool_plan")
            if piece:
                plan.append(piece)
                yield Chunk(reasoning=piece)
        elif kind == "tool-call-start":
            call = ((event.get("delta") or {}).get("message") or {}).get("tool_calls") or {}
            function = call.get("function") or {}
            index = order.setdefault(event.get("index"), len(order))
            yield Chunk(tool_delta=ToolCallDelta(
                index, call.get("id") or None, function.get("name") or None,
                function.get("arguments") or "",
            ))
        elif kind == "tool-call-end":
            index = order.setdefault(event.get("index"), len(order))
            yield Chunk(tool_delta=ToolCallDelta(index, done=True))
        elif kind == "message-end":
            end = event.get("delta") or {}
        elif kind == "message-start":
            message_id = errors.request_id = event.get("id")
    if end is None:
        raise errors.cut("message-end")
    reason = str(end.get("finish_reason") or "COMPLETE")
    if reason in ("ERROR", "TIMEOUT") or end.get("error"):
        raise errors.error(Failure(
            None, f"Cohere stopped the answer ({reason}): {end.get('error') or reason}",
            (reason, "ERROR"),
        ))
    usage = end.get("usage")
    metadata: dict[str, Any] = {"raw_finish_reason": reason}
    if message_id:
        metadata["id"] = message_id
    if isinstance(usage, dict) and usage.get("billed_units"):
        metadata["billed_units"] = usage["billed_units"]
    native: dict[str, str] = {}
    if plan:
        native["tool_plan"] = "".join(plan)
    if thinking and order:  # thinking goes back with the turn that called tools
        native["thinking"] = "".join(thinking)
    yield Chunk(
        usage=_usage(usage) if isinstance(usage, dict) else None,
        finish_reason=FINISH_REASONS.get(reason, "tool_calls" if order else "stop"),
        metadata=metadata,
        provider_data={"protocol": "cohere", "content": native} if native else None,
    )


def _usage(raw: dict[str, Any]) -> Usage:
    billed = raw.get("billed_units")
    billed = billed if isinstance(billed, dict) else {}
    counts = raw.get("tokens") or billed
    return Usage(
        input_tokens=int(counts.get("input_tokens") or 0),
        output_tokens=int(counts.get("output_tokens") or 0),
        cached_input_tokens=int(raw.get("cached_tokens") or 0),
        # What is charged: the cost is computed from these (synapsekit.llm.pricing).
        billed_input_tokens=int(billed.get("input_tokens") or 0) if billed else None,
        billed_output_tokens=int(billed.get("output_tokens") or 0) if billed else None,
    )
