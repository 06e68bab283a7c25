"""The stored value: a finished answer, and its JSON encoding (the same for every backend).

Format 2 (``"v": 2``) added the tool calls, the reasoning text and the provider data of an
answer. A value of format 1 (no ``"v"``) is a text answer and still decodes; it is never
looked up anyway, since the key version changed with it (:data:`.key.KEY_VERSION` 3). A
value of a newer format is refused (a miss, logged by the backend), never misread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from synapsekit.llm.types import ProviderData, ToolCall, Usage

__all__ = ["FORMAT", "CachedAnswer", "decode", "encode"]

#: The format of the stored JSON (see the module docstring).
FORMAT = 2

_USAGE_FIELDS = frozenset(f.name for f in fields(Usage))


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A finished answer as it was streamed: replayed chunk by chunk on a hit.

    ``usage`` is what the original call used (informational: a hit costs nothing);
    ``metadata`` is the provider's JSON-able final metadata (e.g. citations);
    ``tool_calls`` the answer's parsed calls (by index), ``reasoning`` its thinking text,
    ``provider_data`` what the next turn must send back verbatim (signatures).
    """

    chunks: tuple[str, ...]
    finish_reason: str | None = None
    usage: Usage | None = None
    metadata: Mapping[str, Any] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str = ""
    provider_data: ProviderData | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.chunks, tuple):
            object.__setattr__(self, "chunks", tuple(self.chunks))
        if not isinstance(self.tool_calls, tuple):
            object.__setattr__(self, "tool_calls", tuple(self.tool_calls))

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def encode(answer: CachedAnswer) -> str:
    """The JSON text stored for ``answer`` (TypeError/ValueError: not storable)."""
    return json.dumps(
        {
            "v": FORMAT,
            "chunks": list(answer.chunks),
            "finish_reason": answer.finish_reason,
            "usage": asdict(answer.usage) if answer.usage is not None else None,
            "metadata": dict(answer.metadata) if answer.metadata is not None else None,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": dict(c.arguments), "index": c.index}
                for c in answer.tool_calls
            ],
            "reasoning": answer.reasoning,
            "provider_data": dict(answer.provider_data)
            if answer.provider_data is not None else None,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode(raw: str | bytes) -> CachedAnswer:
    """Rebuild an answer, refusing anything that is not one (a corrupt or foreign value, or
    one of a newer format)."""
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("v", 1) not in (1, FORMAT):
        raise ValueError("the stored value is not a synapsekit answer of a known format")
    chunks = data.get("chunks")
    usage = data.get("usage")
    calls = data.get("tool_calls", [])
    provider_data = data.get("provider_data")
    if (
        not isinstance(chunks, list)
        or not all(isinstance(c, str) for c in chunks)
        or not isinstance(data.get("finish_reason"), (str, type(None)))
        or not isinstance(usage, (dict, type(None)))
        or not isinstance(data.get("metadata"), (dict, type(None)))
        or not isinstance(calls, list)
        or not all(_is_call(c) for c in calls)
        or not isinstance(data.get("reasoning", ""), str)
        or not (provider_data is None or (
            isinstance(provider_data, dict) and isinstance(provider_data.get("protocol"), str)
        ))
    ):
        raise ValueError("the stored value is not a synapsekit answer")
    return CachedAnswer(
        chunks=tuple(chunks),
        finish_reason=data.get("finish_reason"),
        usage=Usage(**{k: v for k, v in usage.items() if k in _USAGE_FIELDS})
        if usage is not None
        else None,
        metadata=data.get("metadata"),
        tool_calls=tuple(ToolCall(c["id"], c["name"], c["arguments"], c["index"]) for c in calls),
        reasoning=data.get("reasoning", ""),
        provider_data=ProviderData(
            protocol=provider_data["protocol"], content=provider_data.get("content")
        ) if provider_data is not None else None,
    )


def _is_call(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and isinstance(value.get("name"), str)
        and isinstance(value.get("arguments"), dict)
        and isinstance(value.get("index"), int)
    )
