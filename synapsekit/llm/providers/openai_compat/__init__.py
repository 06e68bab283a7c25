"""The OpenAI chat-completions protocol, for OpenAI and the eight vendors that speak it.

One implementation over the official ``openai`` SDK, in four parts: :mod:`.connection`
(the SDK client per loop, Azure's endpoint), :mod:`.encode` (the request body),
:mod:`.decode` (the stream -> chunks) and :mod:`.errors` (the error table). A vendor that
differs only by URL and env var is a row of :data:`synapsekit.llm.registry.PROVIDERS`
plus a two-line class here; a vendor with a real quirk overrides one attribute (Azure:
its connection; Perplexity: no usage option, citations kept).

The SDK builds and sends the request (its documented low-level ``client.post``: auth,
Azure's deployment path, typed status errors) and hands back the raw response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from synapsekit.errors import ConfigError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorTable
from synapsekit.llm.providers.openai_compat.connection import (
    NO_KEY,
    AzureConnection,
    OpenAIConnection,
)
from synapsekit.llm.providers.openai_compat.decode import parse
from synapsekit.llm.providers.openai_compat.decode import usage as _usage
from synapsekit.llm.providers.openai_compat.encode import request
from synapsekit.llm.providers.openai_compat.errors import error_table
from synapsekit.llm.types import Chunk, Message

__all__ = [
    "NO_KEY",
    "AzureConnection",
    "AzureOpenAILLM",
    "CerebrasLLM",
    "DeepSeekLLM",
    "FireworksLLM",
    "GroqLLM",
    "OpenAICompatibleLLM",
    "OpenAIConnection",
    "OpenAILLM",
    "OpenRouterLLM",
    "PerplexityLLM",
    "TogetherLLM",
    "_usage",
]


class OpenAICompatibleLLM(BaseLLM):
    """Chat completions over the ``openai`` SDK; vendors subclass with their provider name."""

    provider: ClassVar[str] = "openai"
    connection_class = OpenAIConnection
    #: Ask for ``stream_options.include_usage`` (vendors that always send usage: False).
    usage_option: ClassVar[bool] = True
    #: Top-level chunk fields kept as call metadata (the last value seen wins).
    metadata_keys: ClassVar[tuple[str, ...]] = ()

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        return request(
            messages, config, rules_for(self.provider, config), usage_option=self.usage_option
        )

    async def _stream(
        self, messages: list[Message], config: LLMConfig
    ) -> AsyncGenerator[Chunk, None]:
        client = await self._client()
        with self._map_errors(config) as errors:
            # The SDK's low-level post: it builds the request (auth, Azure's deployment
            # path) and raises typed status errors, but skips create()'s per-call
            # TypedDict transform of the body (~0.8 ms) and hands back the raw response.
            response = await client.post(
                "/chat/completions",
                cast_to=http_stack("openai._base_client").response,
                body=self._request(messages, config),
                stream=True,
            )
            try:
                async for chunk in parse(response, errors, self.metadata_keys):
                    yield chunk
            finally:
                await response.aclose()

    def _error_table(self) -> ErrorTable:
        return error_table(self._sdk)


class OpenAILLM(OpenAICompatibleLLM):
    provider = "openai"


class GroqLLM(OpenAICompatibleLLM):
    provider = "groq"


class DeepSeekLLM(OpenAICompatibleLLM):
    provider = "deepseek"


class OpenRouterLLM(OpenAICompatibleLLM):
    provider = "openrouter"


class TogetherLLM(OpenAICompatibleLLM):
    provider = "together"


class FireworksLLM(OpenAICompatibleLLM):
    provider = "fireworks"


class CerebrasLLM(OpenAICompatibleLLM):
    provider = "cerebras"


class PerplexityLLM(OpenAICompatibleLLM):
    """Perplexity sends cumulative usage on every chunk unasked, and citations."""

    provider = "perplexity"
    usage_option = False
    metadata_keys = ("citations", "search_results")


class AzureOpenAILLM(OpenAICompatibleLLM):
    """Azure OpenAI: ``model`` is the deployment name (see :class:`AzureConnection`)."""

    provider = "azure"
    connection_class = AzureConnection
    DEFAULT_API_VERSION: ClassVar[str] = AzureConnection.DEFAULT_API_VERSION

    def __init__(self, config: LLMConfig, **options: Any) -> None:
        super().__init__(config, **options)
        if not self.base_url:
            raise ConfigError(
                "No Azure OpenAI endpoint: pass base_url=... or set AZURE_OPENAI_ENDPOINT "
                "(e.g. https://my-resource.openai.azure.com)."
            )

    @property
    def api_version(self) -> str:
        connection: Any = self.connection
        return str(connection.api_version)
