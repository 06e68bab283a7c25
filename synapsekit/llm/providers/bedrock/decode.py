"""botocore's parsed ConverseStream events -> Chunks (the hot path: dict lookups only).

Text blocks have no ``contentBlockStart``. Usage comes only in the ``metadata`` event that
follows ``messageStop``; a stream without ``messageStop`` was cut off. Its ``inputTokens``
excludes ``cacheReadInputTokens`` and ``cacheWriteInputTokens``: ``Usage.input_tokens`` is
the sum of the three, the cache counts its parts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synapsekit.llm.types import Chunk, Usage

__all__ = ["Decoder", "usage"]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


class Decoder:
    """One answer's state: :meth:`feed` each event (a chunk or None), then :meth:`end`."""

    __slots__ = ("_finish", "_stopped", "_usage")

    def __init__(self) -> None:
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._stopped = False

    def feed(self, event: dict[str, Any]) -> Chunk | None:
        block = event.get("contentBlockDelta")
        if block is not None:
            delta = block.get("delta") or {}
            if delta.get("text"):
                return Chunk(delta["text"])
            thought = delta.get("reasoningContent")
            if thought and thought.get("text"):
                return Chunk(reasoning=thought["text"])
        elif "messageStop" in event:
            self._stopped = True
            reason = event["messageStop"].get("stopReason")
            self._finish = _FINISH.get(reason, reason)
        elif "metadata" in event:
            raw = event["metadata"].get("usage")
            self._usage = usage(raw) if raw else self._usage
        return None

    def end(self, cut: Callable[[str], Exception]) -> Chunk:
        """The final chunk; ``cut(what)`` is raised when the stream ended early."""
        if not self._stopped:
            raise cut("messageStop")
        return Chunk(usage=self._usage, finish_reason=self._finish)


def usage(raw: dict[str, Any]) -> Usage:
    """Converse's ``inputTokens`` leaves out cache reads and writes (as Anthropic's
    ``input_tokens`` does): the whole prompt is the sum, the cache parts stay parts."""
    read = raw.get("cacheReadInputTokens") or 0
    written = raw.get("cacheWriteInputTokens") or 0
    # ``cacheDetails``: [{"ttl": "5m" | "1h", "inputTokens": n}], the writes by lifetime
    details = raw.get("cacheDetails")
    written_1h = sum(
        d.get("inputTokens") or 0 for d in details if isinstance(d, dict) and d.get("ttl") == "1h"
    ) if isinstance(details, list) else 0
    return Usage(
        input_tokens=(raw.get("inputTokens") or 0) + read + written,
        output_tokens=raw.get("outputTokens") or 0,
        cached_input_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=min(written_1h, written),
    )
