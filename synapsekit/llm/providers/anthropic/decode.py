"""The SSE body of a streamed Messages call -> :class:`~synapsekit.llm.types.Chunk` s.

The hot path: each event is parsed with ``json.loads`` and read with dict lookups, no
SDK event object per chunk (that costs more CPU than everything else here).

Wire rules followed here:

- usage: ``input_tokens`` from ``message_start``; ``output_tokens`` from ``message_delta``
  is cumulative, so the last value wins, never a sum;
- Anthropic's ``input_tokens`` excludes prompt-cache reads and writes; ``Usage.input_tokens``
  here is the whole prompt, ``input_tokens + cache_read_input_tokens +
  cache_creation_input_tokens``, with the two parts in ``cached_input_tokens`` and
  ``cache_write_tokens``, as :class:`~synapsekit.llm.types.Usage` defines them;
- ``thinking_delta`` text goes to ``Chunk.reasoning``; ``ping`` and unknown events are
  ignored; JSON padded with spaces is fine;
- ``event: error`` inside a 200 stream is raised by its ``error.type``; no ``message_stop``
  means the stream broke (:class:`~synapsekit.errors.ConnectionError`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.sse import iter_sse
from synapsekit.llm.types import Chunk, Usage

from .errors import error_event

__all__ = ["FINISH_REASONS", "parse", "take_usage", "usage_of"]

#: stop_reason -> the finish reasons every provider uses; others are kept as-is.
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


async def parse(response: Any, errors: ErrorMapper) -> AsyncIterator[Chunk]:
    """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
    loads = json.loads
    usage: dict[str, Any] = {}
    finish: str | None = None
    done = False
    errors.request_id = response.headers.get("request-id")
    async for name, data in iter_sse(response.aiter_bytes()):
        try:
            event = loads(data)
        except ValueError:
            event = None
        if type(event) is not dict:
            raise errors.malformed(repr(data[:200]))
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            part = delta.get("type")
            if part == "text_delta":
                if delta.get("text"):
                    yield Chunk(delta["text"])
            elif part == "thinking_delta" and delta.get("thinking"):
                yield Chunk(reasoning=delta["thinking"])
        elif kind == "message_start":
            take_usage(usage, (event.get("message") or {}).get("usage"))
            if usage:  # the input is counted now: kept if the stream fails later
                yield Chunk(usage=usage_of(usage, complete=False))
        elif kind == "message_delta":
            take_usage(usage, event.get("usage"))
            stop = (event.get("delta") or {}).get("stop_reason")
            if stop:
                finish = FINISH_REASONS.get(stop, stop)
        elif kind == "message_stop":
            done = True
        elif kind == "error" or name == b"error":
            raise errors.error(error_event(event.get("error")))
    if not done:
        raise errors.cut("message_stop")
    yield Chunk(usage=usage_of(usage) if usage else None, finish_reason=finish)


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
