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
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from synapsekit.llm.providers._errors import ErrorMapper, Failure
from synapsekit.llm.sse import iter_sse
from synapsekit.llm.types import Chunk, Usage

__all__ = ["FINISH_REASONS", "chunks"]

_DONE = b"[DONE]"

#: finish_reason -> the finish reasons every provider uses; others are kept, lower-cased.
FINISH_REASONS: dict[str, str] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}


async def chunks(response: Any, errors: ErrorMapper) -> AsyncIterator[Chunk]:
    """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
    loads = json.loads
    end: dict[str, Any] | None = None
    message_id: str | None = None
    async for _, data in iter_sse(response.aiter_bytes()):
        if data == _DONE:  # read on to the body's end: the connection is then reused
            continue
        try:
            event = loads(data)
        except ValueError:
            event = None
        if type(event) is not dict:
            raise errors.malformed(repr(data[:200]))
        kind = event.get("type")
        if kind == "content-delta":
            content = ((event.get("delta") or {}).get("message") or {}).get("content") or {}
            text = content.get("text")
            if text:
                yield Chunk(text)
            elif content.get("thinking"):
                yield Chunk(reasoning=content["thinking"])
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
    metadata = {"id": message_id} if message_id else {}
    if isinstance(usage, dict) and usage.get("billed_units"):
        metadata["billed_units"] = usage["billed_units"]
    yield Chunk(
        usage=_usage(usage) if isinstance(usage, dict) else None,
        finish_reason=FINISH_REASONS.get(reason, reason.lower()),
        metadata=metadata or None,
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
