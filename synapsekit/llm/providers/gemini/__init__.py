"""Google's Gemini API (``streamGenerateContent?alt=sse``) over the official ``google-genai``
SDK: the LLM class, wiring :mod:`.encode` (request), :mod:`.decode` (stream -> chunks) and
:mod:`.errors` (the error table) over :mod:`.connection` (the SDK client per loop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, ClassVar

from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.providers._errors import ErrorTable
from synapsekit.llm.providers.gemini import decode, encode
from synapsekit.llm.providers.gemini.connection import OPENED, GeminiConnection
from synapsekit.llm.providers.gemini.errors import error_table
from synapsekit.llm.types import Chunk, Message

__all__ = ["GeminiConnection", "GeminiLLM"]


class GeminiLLM(BaseLLM):
    """Gemini models over the Gemini Developer API, streamed."""

    provider: ClassVar[str] = "gemini"
    connection_class = GeminiConnection

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        sdk: Any = self._sdk
        contents = encode.contents(messages)
        gen_config = encode.generation_config(sdk, self.provider, messages, config)
        models = (await self._client()).genai.aio.models
        opened: list[Any] = []
        OPENED.set(opened)
        errors = self._map_errors(config)
        try:
            with errors:
                stream = await models.generate_content_stream(
                    model=config.model, contents=contents, config=gen_config
                )
                async with aclosing(stream):
                    async for chunk in decode.decode(stream, errors, self.provider, config.model):
                        yield chunk
        finally:
            for response in opened:  # the SDK's generators do not close it when left early
                await response.aclose()
            opened.clear()

    def _error_table(self) -> ErrorTable:
        return error_table(self._sdk)
