"""botocore's parsed ConverseStream events -> Chunks (the hot path: dict lookups only).

Text blocks have no ``contentBlockStart``. Usage comes only in the ``metadata`` event that
follows ``messageStop``; a stream without ``messageStop`` was cut off. Its ``inputTokens``
excludes ``cacheReadInputTokens`` and ``cacheWriteInputTokens``: ``Usage.input_tokens`` is
the sum of the three, the cache counts its parts.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from synapsekit.llm.types import Chunk, ProviderData, ToolCallDelta, Usage

__all__ = ["Decoder", "usage"]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_tool_use": "tool_calls",  # the call path's JSON parse then names the fault
    "malformed_model_output": "stop",
}


class Decoder:
    """One answer's state: :meth:`feed` each event (a chunk or None), then :meth:`end`.

    ``forced`` is the name of the structured-output tool (encode's forced-tool route):
    its argument fragments come out as text and its ``tool_use`` stop as "stop".
    """

    __slots__ = ("_blocks", "_calls", "_finish", "_forced", "_forced_blocks", "_raw",
                 "_reasoning", "_stopped", "_usage")

    def __init__(self, forced: str | None = None) -> None:
        self._forced = forced
        self._finish: str | None = None
        self._raw: str | None = None
        self._usage: Usage | None = None
        self._stopped = False
        self._calls: dict[int, int] = {}  # contentBlockIndex -> the call's index
        self._forced_blocks: set[int] = set()
        self._reasoning: dict[int, tuple[list[str], list[str]]] = {}  # texts, signature
        self._blocks: list[dict[str, Any]] = []  # finished reasoning blocks, in order

    def feed(self, event: dict[str, Any]) -> Chunk | None:
        block = event.get("contentBlockDelta")
        if block is not None:
            delta = block.get("delta") or {}
            text = delta.get("text")
            if text:
                return Chunk(text)
            use = delta.get("toolUse")
            if use is not None:
                where = block.get("contentBlockIndex", 0)
                fragment = use.get("input") or ""
                if where in self._forced_blocks:
                    return Chunk(fragment) if fragment else None
                index = self._calls.get(where)
                if index is None:  # a delta without its start: count it as a new call
                    index = self._calls[where] = len(self._calls)
                return Chunk(tool_delta=ToolCallDelta(index, arguments=fragment))
            thought = delta.get("reasoningContent")
            if thought is not None:
                return self._thought(block.get("contentBlockIndex", 0), thought)
            return None
        start = event.get("contentBlockStart")
        if start is not None:
            use = (start.get("start") or {}).get("toolUse")
            if use is None:
                return None
            where = start.get("contentBlockIndex", 0)
            name = use.get("name")
            if self._forced is not None and name == self._forced:
                self._forced_blocks.add(where)
                return None
            index = self._calls[where] = len(self._calls)
            return Chunk(tool_delta=ToolCallDelta(index, id=use.get("toolUseId"), name=name))
        stop = event.get("contentBlockStop")
        if stop is not None:
            where = stop.get("contentBlockIndex", 0)
            if where in self._reasoning:
                self._close_reasoning(where)
                return None
            index = self._calls.get(where)
            if index is not None:
                return Chunk(tool_delta=ToolCallDelta(index, done=True))
            return None
        if "messageStop" in event:
            self._stopped = True
            self._raw = event["messageStop"].get("stopReason")
            self._finish = _FINISH.get(self._raw or "", self._raw)
        elif "metadata" in event:
            raw = event["metadata"].get("usage")
            self._usage = usage(raw) if raw else self._usage
        return None

    def _thought(self, where: int, thought: dict[str, Any]) -> Chunk | None:
        redacted = thought.get("redactedContent")
        if redacted is not None:  # opaque bytes (botocore decoded the base64): keep as text
            kept = (base64.b64encode(redacted).decode("ascii") if isinstance(redacted, bytes)
                    else str(redacted))
            self._blocks.append({"reasoningContent": {"redactedContent": kept}})
            return None
        texts, signature = self._reasoning.setdefault(where, ([], []))
        if thought.get("signature"):
            signature.append(thought["signature"])
        text = thought.get("text")
        if text:
            texts.append(text)
            return Chunk(reasoning=text)
        return None

    def _close_reasoning(self, where: int) -> None:
        texts, signature = self._reasoning.pop(where)
        reasoning: dict[str, Any] = {"text": "".join(texts)}
        if signature:
            reasoning["signature"] = "".join(signature)
        self._blocks.append({"reasoningContent": {"reasoningText": reasoning}})

    def end(self, cut: Callable[[str], Exception]) -> Chunk:
        """The final chunk; ``cut(what)`` is raised when the stream ended early."""
        if not self._stopped:
            raise cut("messageStop")
        for where in sorted(self._reasoning):  # a reasoning block the stream left open
            self._close_reasoning(where)
        finish = self._finish
        if self._forced_blocks and finish == "tool_calls" and not self._calls:
            finish = "stop"  # the structured answer came as the forced tool's arguments
        data: ProviderData | None = (
            {"protocol": "bedrock", "content": self._blocks} if self._blocks else None
        )
        return Chunk(usage=self._usage, finish_reason=finish,
                     metadata={"raw_finish_reason": self._raw}, provider_data=data)


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
