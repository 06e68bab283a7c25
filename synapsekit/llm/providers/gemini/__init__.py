"""Google's Gemini API (``streamGenerateContent?alt=sse``) over the official ``google-genai``
SDK: the LLM class, wiring :mod:`.encode` (request), :mod:`.decode` (stream -> chunks) and
:mod:`.errors` (the error table) over :mod:`.connection` (the SDK client per loop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, ClassVar

from synapsekit._lazy import Deferred, lazy_getattr
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.content import Capabilities

if TYPE_CHECKING:
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.providers._errors import ErrorTable
    from synapsekit.llm.types import Chunk, Message

    from .connection import GeminiConnection

__all__ = ["GeminiConnection", "GeminiLLM"]

# The protocol modules load with the first GeminiLLM built (or GeminiConnection read).
__getattr__ = lazy_getattr(__name__, {"GeminiConnection": f"{__name__}.connection"})


class GeminiLLM(BaseLLM):
    """Gemini models over the Gemini Developer API, streamed."""

    provider: ClassVar[str] = "gemini"
    # The protocol modules load with the first GeminiLLM built, not with the class.
    connection_class: Deferred[type[GeminiConnection]] = Deferred(
        f"{__name__}.connection", "GeminiConnection"
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        images=True,
        image_urls=True,
        documents=True,
        tools=True,
        parallel_tool_calls=False,
        tool_choices=frozenset({"auto", "none", "required", "name"}),
        structured="json_schema",
        reasoning=frozenset({"effort", "budget"}),
        note="images and PDFs as inlineData; image URLs as fileData (fetched by Google: "
        "public or signed HTTPS, Gemini 2.5 and later); no parallel-calls switch; reasoning: "
        "thinkingLevel on Gemini 3, thinkingBudget on Gemini 2.5",
    )

    #: Whether a call reads its stream's body itself (see :mod:`.connection`); False
    #: leaves it to the SDK's objects, the path an SDK that stopped sending through our
    #: client would take (tests run both).
    raw_stream: ClassVar[bool] = True

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        # The protocol is imported with the first call, not with the class (see _lazy.py).
        from synapsekit.llm.models import rules_for
        from synapsekit.llm.providers._raw_body import Call

        from . import decode, encode
        from .connection import STREAM_METHOD

        sdk: Any = self._sdk
        contents = encode.contents(messages, rules_for(self.provider, config))
        gen_config = encode.generation_config(sdk, self.provider, messages, config)
        models = (await self._client(config)).genai.aio.models
        errors = self._map_errors(config)
        # the call closes every response it opened when it ends, early or not
        async with Call(STREAM_METHOD, take=self.raw_stream) as call:
            with errors:
                stream = await models.generate_content_stream(
                    model=config.model, contents=contents, config=gen_config
                )
                async with aclosing(stream):
                    events = decode.events(stream, call, sdk, errors)
                    async for chunk in decode.decode(events, errors, self.provider, config.model):
                        yield chunk

    def _error_table(self) -> ErrorTable:
        from .errors import error_table

        return error_table(self._sdk)
