"""Cohere's Chat API v2 (``POST /v2/chat``, streamed) over the official ``cohere`` SDK.

The SDK builds and sends the request (bearer auth, body) and turns an error status into its
typed errors; the stream body is read raw and decoded here. The jobs are split by module:
:mod:`.connection` (the SDK client per loop), :mod:`.encode` (messages and config -> the
request), :mod:`.decode` (the SSE stream -> chunks), :mod:`.errors` (the error table).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._errors import ErrorTable
from synapsekit.llm.types import Chunk, Message

from . import decode, encode
from .connection import CohereConnection
from .errors import error_table

__all__ = ["CohereLLM"]


class CohereLLM(BaseLLM):
    """Cohere Command models over the v2 chat API, streamed."""

    provider: ClassVar[str] = "cohere"
    connection_class = CohereConnection

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        chat_stream = (await self._client()).with_raw_response.chat_stream
        request = encode.request(messages, config, rules_for(self.provider, config))
        with self._map_errors(config) as errors:
            async with chat_stream(**request) as raw:
                async for chunk in decode.chunks(raw.response, errors):
                    yield chunk

    def _error_table(self) -> ErrorTable:
        return error_table()
