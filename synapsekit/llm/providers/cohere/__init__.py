"""Cohere's Chat API v2 (``POST /v2/chat``, streamed) over the official ``cohere`` SDK.

The SDK builds and sends the request (bearer auth, body) and turns an error status into its
typed errors; the stream body is read raw and decoded here. The jobs are split by module:
:mod:`.connection` (the SDK client per loop), :mod:`.encode` (messages and config -> the
request), :mod:`.decode` (the SSE stream -> chunks), :mod:`.errors` (the error table).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, ClassVar

from synapsekit._lazy import Deferred
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.content import Capabilities

if TYPE_CHECKING:
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.providers._errors import ErrorTable
    from synapsekit.llm.types import Chunk, Message

    from .connection import CohereConnection

__all__ = ["CohereLLM"]


class CohereLLM(BaseLLM):
    """Cohere Command models over the v2 chat API, streamed."""

    provider: ClassVar[str] = "cohere"
    # The protocol modules load with the first CohereLLM built, not with the class.
    connection_class: Deferred[type[CohereConnection]] = Deferred(
        f"{__name__}.connection", "CohereConnection"
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        images=True,  # vision models only (Command A Vision, Aya Vision): models.json rows
        image_urls=True,  # "base64 data URLs and HTTP image URLs" (docs: Image Inputs)
        documents=False,  # `documents` is RAG grounding text, not PDF files
        tools=True,
        parallel_tool_calls=False,  # no switch: the model may call several tools at once
        tool_choices=frozenset({"auto", "none", "required"}),  # REQUIRED / NONE; no named
        structured="json_schema",  # response_format json_object + json_schema
        reasoning=frozenset({"budget"}),  # thinking.token_budget (Command A Reasoning)
        note="images on vision models only; tool_choice has no named tool and there is no "
        "parallel-calls switch; no PDFs; response_format not together with tools; "
        "reasoning is a thinking token budget on reasoning models",
    )

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        # The protocol is imported with the first call, not with the class (see _lazy.py).
        from synapsekit.llm.models import rules_for

        from .decode import chunks
        from .encode import request as build

        chat_stream = (await self._client(config)).with_raw_response.chat_stream
        request = build(messages, config, rules_for(self.provider, config))
        with self._map_errors(config) as errors:
            async with chat_stream(**request) as raw:
                async for chunk in chunks(raw.response, errors):
                    yield chunk

    def _error_table(self) -> ErrorTable:
        from .errors import error_table

        return error_table()
