"""The OpenAI chat-completions protocol, for OpenAI and the eight vendors that speak it.

One implementation over the official ``openai`` SDK, in four parts: :mod:`.connection`
(the SDK client per loop, Azure's endpoint), :mod:`.encode` (the request body),
:mod:`.decode` (the stream -> chunks) and :mod:`.errors` (the error table). A vendor that
differs only by URL and env var is a row of :data:`synapsekit.llm.registry.PROVIDERS`
plus a short class here: its :class:`~.encode.Vendor` (how its API differs, as data: where
reasoning goes, JSON mode only, what goes back verbatim), its ``capabilities`` (from its
API docs) and, for Azure, its connection; Perplexity keeps citations as metadata.

The SDK builds and sends the request (its documented low-level ``client.post``: auth,
Azure's deployment path, typed status errors) and hands back the raw response.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from synapsekit._lazy import Deferred, lazy_getattr
from synapsekit.errors import ConfigError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.content import Capabilities
from synapsekit.llm.providers.openai_compat.vendor import Vendor

if TYPE_CHECKING:
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.providers._errors import ErrorTable
    from synapsekit.llm.providers.openai_compat.connection import (
        NO_KEY,
        AzureConnection,
        OpenAIConnection,
    )
    from synapsekit.llm.providers.openai_compat.decode import Wire
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
]

# The protocol modules (connection, encode, decode, errors, agent) load with the first LLM
# of these classes built (or one of these names read), not with the classes: importing the
# public names stays cheap.
_CONNECTION = f"{__name__}.connection"
__getattr__ = lazy_getattr(__name__, dict.fromkeys(
    ("NO_KEY", "AzureConnection", "OpenAIConnection"), _CONNECTION
))


#: Every tool_choice the chat-completions API takes.
ALL_CHOICES = frozenset({"auto", "none", "required", "name"})
#: OpenAI's own API (and Azure's): images as bytes or URLs, PDFs as ``file`` parts.
OPENAI_CAPS = Capabilities(
    images=True, image_urls=True, documents=True, tools=True, parallel_tool_calls=True,
    tool_choices=ALL_CHOICES, structured="json_schema", reasoning=frozenset({"effort"}),
    note="reasoning_effort on reasoning models (levels per model); PDFs as file parts",
)


class OpenAICompatibleLLM(BaseLLM):
    """Chat completions over the ``openai`` SDK; vendors subclass with their provider name,
    their :class:`~.encode.Vendor` (how their API differs, as data) and capabilities."""

    provider: ClassVar[str] = "openai"
    connection_class: Deferred[type[OpenAIConnection]] = Deferred(_CONNECTION, "OpenAIConnection")
    capabilities: ClassVar[Capabilities] = OPENAI_CAPS
    vendor: ClassVar[Vendor] = Vendor("openai")
    #: Top-level chunk fields kept as call metadata (the last value seen wins).
    metadata_keys: ClassVar[tuple[str, ...]] = ()

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        # The protocol is imported with the first call, not with the class (see _lazy.py).
        from synapsekit.llm.models import rules_for

        from .encode import request

        return request(messages, config, rules_for(self.provider, config), self.vendor)

    async def _stream(
        self, messages: list[Message], config: LLMConfig
    ) -> AsyncGenerator[Chunk, None]:
        from synapsekit.llm.providers._common import http_stack

        from .decode import parse

        body = self._request(messages, config)  # before the client: a refusal sends nothing
        client = await self._client(config)
        with self._map_errors(config) as errors:
            # The SDK's low-level post: it builds the request (auth, Azure's deployment
            # path) and raises typed status errors, but skips create()'s per-call
            # TypedDict transform of the body (~0.8 ms) and hands back the raw response.
            response = await client.post(
                "/chat/completions",
                cast_to=http_stack("openai._base_client").response,
                body=body,
                stream=True,
            )
            try:
                async for chunk in parse(response, errors, _wire(type(self))):
                    yield chunk
            finally:
                await response.aclose()

    def _error_table(self) -> ErrorTable:
        from .errors import error_table

        return error_table(self._sdk)


@functools.cache
def _wire(cls: type[OpenAICompatibleLLM]) -> Wire:
    """What a vendor class's stream needs of the decoder (built once per class)."""
    from .decode import Wire

    return Wire(cls.metadata_keys, cls.vendor.name, cls.vendor.carry)


class OpenAILLM(OpenAICompatibleLLM):
    provider = "openai"


class GroqLLM(OpenAICompatibleLLM):
    """Groq: reasoning_effort per model (Qwen 3: none/default; gpt-oss: low..high),
    reasoning streamed in ``delta.reasoning``; vision on the Llama 4 models."""

    provider = "groq"
    vendor = Vendor("groq")
    capabilities = replace(
        OPENAI_CAPS, documents=False,
        note="images on vision models (Llama 4); reasoning_effort per model",
    )


class DeepSeekLLM(OpenAICompatibleLLM):
    """DeepSeek: no images or documents; JSON mode only (``json_object``, the schema in
    the instructions); thinking switched by ``thinking.type``; a thinking turn that called
    tools must send its ``reasoning_content`` back (carried in ``provider_data``)."""

    provider = "deepseek"
    vendor = Vendor("deepseek", reasoning="deepseek", json_only=True,
                    carry=("reasoning_content",))
    capabilities = Capabilities(
        tools=True, tool_choices=ALL_CHOICES, structured="json",
        reasoning=frozenset({"effort"}),
        note="text only; JSON mode (json_object); thinking on/off + reasoning_effort",
    )


class OpenRouterLLM(OpenAICompatibleLLM):
    """OpenRouter: ``reasoning: {effort | max_tokens}``; ``reasoning_details`` carried back
    verbatim (signed / encrypted reasoning of Anthropic, Gemini, OpenAI models)."""

    provider = "openrouter"
    vendor = Vendor("openrouter", reasoning="openrouter", carry=("reasoning_details",))
    capabilities = replace(
        OPENAI_CAPS, reasoning=frozenset({"effort", "budget"}),
        note="what each routed model takes; reasoning effort or max_tokens budget",
    )


class TogetherLLM(OpenAICompatibleLLM):
    provider = "together"
    vendor = Vendor("together")
    capabilities = Capabilities(
        images=True, image_urls=True, tools=True,
        tool_choices=frozenset({"auto", "none", "name"}), structured="json_schema",
        reasoning=frozenset({"effort"}),
        note="images on vision models; no parallel_tool_calls switch; reasoning_effort "
        "on gpt-oss",
    )


class FireworksLLM(OpenAICompatibleLLM):
    provider = "fireworks"
    vendor = Vendor("fireworks")
    capabilities = Capabilities(
        images=True, image_urls=True, tools=True, tool_choices=ALL_CHOICES,
        structured="json_schema", reasoning=frozenset({"effort"}),
        note="images on vision models; no parallel_tool_calls switch; reasoning_effort "
        "per model",
    )


class CerebrasLLM(OpenAICompatibleLLM):
    provider = "cerebras"
    vendor = Vendor("cerebras")
    capabilities = Capabilities(
        tools=True, parallel_tool_calls=True, tool_choices=ALL_CHOICES,
        structured="json_schema", reasoning=frozenset({"effort"}),
        note="text only; reasoning_effort on gpt-oss (low..high) and GLM (none = off)",
    )


class PerplexityLLM(OpenAICompatibleLLM):
    """Perplexity through its Agent API (``POST /v1/agent``, see :mod:`.agent`): the Sonar
    chat-completions endpoint was retired on 2026-09-27. Search results and citations are
    metadata, the bill Perplexity states is ``metadata["cost"]`` and, its ``total_cost``,
    ``Usage.stated_cost_usd`` (the call's cost); no function tools."""

    provider = "perplexity"
    vendor = Vendor("perplexity", usage_option=False)
    metadata_keys = ("citations", "search_results")
    capabilities = Capabilities(
        structured="json_schema", reasoning=frozenset({"effort"}),
        note="Agent API: text in, presets (fast..xhigh) or vendor/model ids; "
        "sonar ids run perplexity/sonar with web_search",
    )

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        from synapsekit.llm.models import rules_for

        from .agent import agent_request

        return agent_request(messages, config, rules_for(self.provider, config))

    async def _stream(
        self, messages: list[Message], config: LLMConfig
    ) -> AsyncGenerator[Chunk, None]:
        from synapsekit.llm.providers._common import http_stack

        from .agent import PATH as AGENT_PATH
        from .agent import parse_agent

        body = self._request(messages, config)
        client = await self._client(config)
        with self._map_errors(config) as errors:
            response = await client.post(
                AGENT_PATH, cast_to=http_stack("openai._base_client").response,
                body=body, stream=True,
            )
            try:
                async for chunk in parse_agent(response, errors):
                    yield chunk
            finally:
                await response.aclose()


class AzureOpenAILLM(OpenAICompatibleLLM):
    """Azure OpenAI: ``model`` is the deployment name (see :class:`AzureConnection`)."""

    provider = "azure"
    connection_class: Deferred[type[AzureConnection]] = Deferred(_CONNECTION, "AzureConnection")
    vendor = Vendor("azure")
    capabilities = replace(
        OPENAI_CAPS, documents=False,
        note="as OpenAI, per deployment; no PDF file parts on the GA api-version",
    )
    DEFAULT_API_VERSION: Deferred[str] = Deferred(
        _CONNECTION, "AzureConnection.DEFAULT_API_VERSION"
    )

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
