"""The message content of OpenTelemetry GenAI spans (``instrument(capture_content=True)``):
synapsekit's messages, tool calls and answers in the conventions' parts format
(``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions``).

Why a module of its own: none of this runs unless content capture is on, and the
instrumentation's hot path (:mod:`synapsekit.observability.otel`) stays short.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synapsekit.llm.types import Message, ToolCall
    from synapsekit.observability.hooks import CallInfo

__all__ = ["input_messages", "output_message", "text"]


def text(content: Any) -> str:
    """A tool result or message content as one string (JSON for structured content)."""
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, default=str)


def _parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as the conventions' parts (text kept; other parts by type)."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    found: list[dict[str, Any]] = []
    for part in content or ():
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            found.append({"type": "text", "content": part.get("text", "")})
        elif kind in ("image", "image_url", "document"):
            found.append({"type": "blob" if kind != "image_url" else "uri",
                          "modality": "image" if kind != "document" else "document"})
    return found


def input_messages(turns: Sequence[Message]) -> tuple[list[Any], list[Any]]:
    """(the system instructions' parts, the other turns as the conventions' messages)."""
    system: list[Any] = []
    rest: list[Any] = []
    for turn in turns:
        role = turn["role"]
        if role == "system":
            system.extend(_parts(turn["content"]))
            continue
        parts = _parts(turn["content"])
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": turn.get("tool_call_id"),
                      "response": text(turn["content"])}]
        for done in turn.get("tool_calls") or ():
            parts.append(_tool_call_part(done))
        rest.append({"role": role, "parts": parts})
    return system, rest


def _tool_call_part(call: ToolCall | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(call, Mapping):  # an OpenAI-shaped dict in a history
        function = call.get("function") or {}
        return {"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                "arguments": function.get("arguments")}
    return {"type": "tool_call", "id": call.id, "name": call.name,
            "arguments": dict(call.arguments)}


def output_message(call: CallInfo) -> dict[str, Any]:
    """The call's answer (text and tool calls) as the conventions' output message."""
    parts: list[dict[str, Any]] = []
    answer = "".join(call.output)
    if answer:
        parts.append({"type": "text", "content": answer})
    parts.extend(_tool_call_part(done) for done in call.output_calls)
    return {"role": "assistant", "parts": parts, "finish_reason": call.finish_reason or "stop"}
