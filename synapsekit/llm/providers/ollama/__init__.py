"""Ollama's native chat API (``POST /api/chat``, NDJSON), over the official ``ollama`` SDK.

The jobs are split by module: :mod:`.connection` (the SDK client per loop, host, optional
bearer key, the status hook and the one that takes the stream's body), :mod:`.encode`
(messages and config -> the request), :mod:`.decode` (the raw NDJSON lines -> chunks),
:mod:`.errors` (the error table).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, ClassVar

from synapsekit._lazy import Deferred
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.content import Capabilities

if TYPE_CHECKING:
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.providers._errors import ErrorTable
    from synapsekit.llm.types import Chunk, Message

    from .connection import OllamaConnection

__all__ = ["OllamaLLM"]


class OllamaLLM(BaseLLM):
    """Ollama ``/api/chat``, streamed; the NDJSON lines read raw (no SDK object per line)."""

    provider: ClassVar[str] = "ollama"
    # The protocol modules load with the first OllamaLLM built, not with the class.
    connection_class: Deferred[type[OllamaConnection]] = Deferred(
        f"{__name__}.connection", "OllamaConnection"
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        images=True,  # message `images` (base64) for vision models (llava, gemma3, ...)
        image_urls=False,  # bytes only: the server takes no URL (we never download)
        documents=False,  # no PDF input
        tools=True,
        parallel_tool_calls=False,  # no switch
        tool_choices=frozenset({"auto"}),  # Ollama has no tool_choice
        structured="json_schema",  # format: <JSON schema>
        reasoning=frozenset({"effort"}),  # think: true / false, or gpt-oss's levels
        note="images as bytes, no URLs or PDFs; no tool_choice (auto only) and no "
        "parallel-calls switch; tool calls carry no ids (call_<index> synthesised); "
        "reasoning is think on/off, or low/medium/high on gpt-oss",
    )

    #: Whether a call reads its stream's body itself (see :mod:`.connection`); False
    #: leaves it to the SDK's ``ChatResponse`` objects, the path an SDK that stopped
    #: sending through our client would take (tests run both).
    raw_stream: ClassVar[bool] = True

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        # The protocol is imported with the first call, not with the class (see _lazy.py).
        from synapsekit.llm.models import rules_for
        from synapsekit.llm.providers._raw_body import Call

        from .connection import CHAT_PATH
        from .decode import chunks, lines
        from .encode import request as build

        request = build(messages, config, rules_for(self.provider, config))
        # the call closes every response it opened when it ends, early or not
        async with Call(CHAT_PATH, take=self.raw_stream) as call:
            with self._map_errors(config) as errors:
                parts = await (await self._client(config)).chat(**request)
                async with aclosing(parts):
                    async for chunk in chunks(lines(parts, call, self._sdk, errors), errors):
                        yield chunk

    def _error_table(self) -> ErrorTable:
        from .errors import error_table

        return error_table(self._sdk)
