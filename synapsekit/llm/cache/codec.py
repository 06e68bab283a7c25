"""The stored value: a finished answer, and its JSON encoding (the same for every backend)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from synapsekit.llm.types import Usage

__all__ = ["CachedAnswer", "decode", "encode"]

_USAGE_FIELDS = frozenset(f.name for f in fields(Usage))


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A finished answer as it was streamed: replayed chunk by chunk on a hit.

    ``usage`` is what the original call used (informational: a hit costs nothing);
    ``metadata`` is the provider's JSON-able final metadata (e.g. citations).
    """

    chunks: tuple[str, ...]
    finish_reason: str | None = None
    usage: Usage | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.chunks, tuple):
            object.__setattr__(self, "chunks", tuple(self.chunks))

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def encode(answer: CachedAnswer) -> str:
    """The JSON text stored for ``answer`` (TypeError/ValueError: not storable)."""
    return json.dumps(
        {
            "chunks": list(answer.chunks),
            "finish_reason": answer.finish_reason,
            "usage": asdict(answer.usage) if answer.usage is not None else None,
            "metadata": dict(answer.metadata) if answer.metadata is not None else None,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode(raw: str | bytes) -> CachedAnswer:
    """Rebuild an answer, refusing anything that is not one (a corrupt or foreign value)."""
    data = json.loads(raw)
    chunks = data.get("chunks") if isinstance(data, dict) else None
    usage = data.get("usage") if isinstance(data, dict) else None
    if (
        not isinstance(chunks, list)
        or not all(isinstance(c, str) for c in chunks)
        or not isinstance(data.get("finish_reason"), (str, type(None)))
        or not isinstance(usage, (dict, type(None)))
        or not isinstance(data.get("metadata"), (dict, type(None)))
    ):
        raise ValueError("the stored value is not a synapsekit answer")
    return CachedAnswer(
        chunks=tuple(chunks),
        finish_reason=data.get("finish_reason"),
        usage=Usage(**{k: v for k, v in usage.items() if k in _USAGE_FIELDS})
        if usage is not None
        else None,
        metadata=data.get("metadata"),
    )
