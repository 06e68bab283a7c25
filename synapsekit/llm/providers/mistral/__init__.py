"""Mistral's chat completions (``POST /v1/chat/completions``), over the official ``mistralai``
SDK: the SDK builds, authenticates and sends the request and raises its own exceptions for
HTTP errors; the body is read as raw SSE.

The protocol in three parts: :mod:`.encode` (messages and settings -> the SDK request),
:mod:`.decode` (the SSE stream -> Chunks), :mod:`.errors` (the error table); the SDK client
per loop is :mod:`.connection` (shared with the embedding backend).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, ClassVar

from synapsekit._lazy import Deferred, lazy_getattr
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.content import Capabilities

if TYPE_CHECKING:
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.providers._errors import ErrorTable
    from synapsekit.llm.types import Chunk, Message

    from .connection import MistralConnection

__all__ = ["MistralConnection", "MistralLLM"]

# The protocol modules load with the first MistralLLM built, not with the class.
__getattr__ = lazy_getattr(__name__, {"MistralConnection": f"{__name__}.connection"})


class MistralLLM(BaseLLM):
    """Mistral chat completions, streamed; raw SSE parsing over the SDK's response."""

    provider: ClassVar[str] = "mistral"
    capabilities: ClassVar[Capabilities] = Capabilities(
        images=True,
        image_urls=True,
        documents=True,
        tools=True,
        parallel_tool_calls=True,
        tool_choices=frozenset({"auto", "none", "required", "name"}),
        structured="json_schema",
        reasoning=frozenset({"effort"}),
        note=(
            "images as image_url (data: URL or URL), PDFs as document_url (data: URL); "
            "tool_choice 'required' is sent as 'any'; tool-call ids from other providers "
            "are mapped to Mistral's 9-character ids; reasoning_effort on Mistral Small 4 / "
            "Medium 3.5 (none, high) and Large 4 (none, low, medium, high); Magistral "
            "always reasons"
        ),
    )

    connection_class: Deferred[type[MistralConnection]] = Deferred(
        f"{__name__}.connection", "MistralConnection"
    )

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        # The protocol is imported with the first call, not with the class (see _lazy.py).
        from .decode import parse
        from .encode import request

        client = await self._client(config)
        kwargs = request(self.provider, client, messages, config)
        with self._map_errors(config) as errors:
            events = await client.chat.stream_async(**kwargs)
            response = events.response  # the raw body; the SDK's decoder is never started
            try:
                async with aclosing(parse(response, errors)) as chunks:
                    async for chunk in chunks:
                        yield chunk
            finally:
                await response.aclose()  # early exit / cancel: the server sees the disconnect

    def _error_table(self) -> ErrorTable:
        from .errors import error_table

        assert self._sdk is not None
        return error_table(self._sdk)
