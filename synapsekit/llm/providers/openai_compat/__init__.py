"""The OpenAI chat-completions protocol, for OpenAI and the eight vendors that speak it.

One implementation over the official ``openai`` SDK. A vendor that differs only by URL
and env var is a row of :data:`synapsekit.llm.registry.PROVIDERS` plus a two-line class
here; a vendor with a real quirk overrides one attribute or method (Azure: client and
deployment paths; Perplexity: no usage option, citations kept).

The SDK builds and sends the request (its documented low-level ``client.post``) and
maps HTTP statuses to its exceptions; the stream body is read as raw SSE bytes and each
event parsed as JSON directly, because an SDK model object per chunk costs more CPU than
everything else here. Wire
quirks handled once for all vendors: usage in a final ``choices: []`` chunk (OpenAI) or
on the finish chunk (Groq, DeepSeek, Cerebras) or cumulative on every chunk (Perplexity)
-- the last report wins, never a sum; ``reasoning_content`` / ``reasoning`` deltas kept
out of the answer; SSE comments ignored; an ``{"error": ...}`` event inside a 200 stream
raised as a typed error.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from synapsekit.errors import ConfigError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.connection import Connection
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure, text
from synapsekit.llm.registry import PROVIDERS
from synapsekit.llm.sse import iter_sse
from synapsekit.llm.types import Chunk, Message, Usage

__all__ = [
    "AzureOpenAILLM",
    "CerebrasLLM",
    "DeepSeekLLM",
    "FireworksLLM",
    "GroqLLM",
    "OpenAICompatibleLLM",
    "OpenAILLM",
    "OpenRouterLLM",
    "PerplexityLLM",
    "TogetherLLM",
]

_DONE = b"[DONE]"
#: The key sent to an OpenAI-compatible server that needs none (the SDK refuses no key;
#: llama.cpp's docs use the same placeholder). Never sent to a vendor's own endpoint.
NO_KEY = "sk-no-key-required"
# json.loads(bytes) sniffs the encoding on every call; SSE is UTF-8 by definition.
_decode_json = json.JSONDecoder().decode


class OpenAIConnection(Connection):
    """An ``openai.AsyncOpenAI`` client per loop: our pool size, no SDK retries."""

    def keyless(self) -> bool:
        """No key is needed at an endpoint other than the vendor's own (a local vLLM,
        llama.cpp or LM Studio server): ``base_url`` or the vendor's URL variable set."""
        default = PROVIDERS[self.provider].base_url
        url = self.base_url
        return url is not None and url.rstrip("/") != (default or "").rstrip("/")

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        sdk: Any = self.sdk
        return sdk.AsyncOpenAI(
            api_key=self.api_key or NO_KEY,
            base_url=self.base_url,
            max_retries=0,  # one retry policy: ours
            timeout=self.config.timeout,
            default_headers=dict(self.config.headers) or None,
            http_client=sdk.DefaultAsyncHttpxClient(  # the SDK's defaults, our pool size
                limits=httpx_limits(http_stack("openai._base_client").module)
            ),
        )


class AzureConnection(OpenAIConnection):
    """Azure OpenAI: the resource endpoint, the ``api-key`` header, an ``api-version``.

    The endpoint is ``base_url`` or ``AZURE_OPENAI_ENDPOINT``; the API version is
    ``api_version`` or ``OPENAI_API_VERSION``, else :data:`DEFAULT_API_VERSION`.
    """

    DEFAULT_API_VERSION: ClassVar[str] = "2024-10-21"

    @property
    def base_url(self) -> str | None:
        return self.config.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")

    def keyless(self) -> bool:
        return False  # every Azure resource needs its key

    @property
    def api_version(self) -> str:
        return (
            self.config.api_version
            or os.environ.get("OPENAI_API_VERSION")
            or self.DEFAULT_API_VERSION
        )

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        sdk: Any = self.sdk
        return sdk.AsyncAzureOpenAI(
            api_key=self.api_key,
            azure_endpoint=self.base_url,
            api_version=self.api_version,
            max_retries=0,
            timeout=self.config.timeout,
            default_headers=dict(self.config.headers) or None,
            http_client=sdk.DefaultAsyncHttpxClient(  # the SDK's defaults, our pool size
                limits=httpx_limits(http_stack("openai._base_client").module)
            ),
        )


class OpenAICompatibleLLM(BaseLLM):
    """Chat completions over the ``openai`` SDK; vendors subclass with their provider name."""

    provider: ClassVar[str] = "openai"
    connection_class = OpenAIConnection
    #: Ask for ``stream_options.include_usage`` (vendors that always send usage: False).
    usage_option: ClassVar[bool] = True
    #: Top-level chunk fields kept as call metadata (the last value seen wins).
    metadata_keys: ClassVar[tuple[str, ...]] = ()

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        # What the model accepts (output-length field, sampling) is its row in models.json.
        rules = rules_for(self.provider, config)
        body: dict[str, Any] = {
            "model": config.model,
            "messages": messages,
            "stream": True,
            rules.max_tokens_field: config.max_tokens,
        }
        temperature = rules.temperature(config)
        if temperature is not None:
            body["temperature"] = temperature
        top_p = rules.top_p(config)
        if top_p is not None:
            body["top_p"] = top_p
        if self.usage_option:
            body["stream_options"] = {"include_usage": True}
        if config.stop:
            body["stop"] = list(config.stop)
        if config.params:
            body.update(rules.params(config))
        return body

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
                async for chunk in self._parse(response, errors):
                    yield chunk
            finally:
                await response.aclose()

    async def _parse(self, response: Any, errors: ErrorMapper) -> AsyncGenerator[Chunk, None]:
        """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
        decode = _decode_json
        metadata_keys = self.metadata_keys
        usage: dict[str, Any] | None = None
        finish: str | None = None
        metadata: dict[str, Any] = {}
        event_model: str | None = None
        done = False
        errors.request_id = response.headers.get("x-request-id")
        async for _, data in iter_sse(response.aiter_bytes()):
            if done:  # read on to the end of the body so the connection can be reused
                continue
            if data == _DONE:
                done = True
                continue
            try:
                event = decode(data.decode())
            except ValueError:
                event = None
            if type(event) is not dict:
                raise errors.malformed(repr(data[:200]))
            if event.get("error"):
                raise errors.error(_stream_failure(event["error"]))
            choices = event.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta")
                if delta:
                    text = delta.get("content") or delta.get("refusal")
                    if text:
                        yield Chunk(text)
                    thought = delta.get("reasoning_content") or delta.get("reasoning")
                    if thought:
                        yield Chunk(reasoning=thought)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            if event.get("usage"):
                usage = event["usage"]
            if event.get("model"):  # the model that answered (Azure: not the deployment)
                event_model = event["model"]
            for key in metadata_keys:
                if event.get(key) is not None:
                    metadata[key] = event[key]
        if not done and finish is None:
            raise errors.cut("finish_reason or [DONE]")
        yield Chunk(
            usage=_usage(usage, event_model) if usage else None,
            finish_reason=finish,
            metadata=metadata or None,
        )

    def _error_table(self) -> ErrorTable:
        return _error_table(self._sdk)


@functools.cache
def _error_table(sdk: Any) -> ErrorTable:
    """The openai SDK's exceptions (APIStatusError carries the body's ``error`` object)."""
    stack = http_stack("openai._base_client")
    return ErrorTable(
        name="the OpenAI-protocol API",
        status=(sdk.APIStatusError,),
        read=_read_status,
        timeouts=(sdk.APITimeoutError, *stack.timeouts),
        transport=(sdk.APIConnectionError, *stack.transport),
        packages=("openai", *stack.packages),
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    body = exc.body if isinstance(exc.body, dict) else {}
    headers = exc.response.headers
    message = body.get("message") or body.get("detail") or exc.message
    return Failure(
        exc.status_code,
        str(message),
        (text(body.get("code")), text(body.get("type"))),
        request_id=headers.get("x-request-id") or headers.get("apim-request-id"),
        headers=headers,
    )


def _stream_failure(error: Any) -> Failure:
    """An ``{"error": ...}`` object inside a 200 stream; Azure sends its status as the
    code (``"429"``), OpenRouter as a number."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = text(error.get("code"))
    status = int(code) if code is not None and code.isdigit() else None
    return Failure(status, str(error.get("message") or error), (code, text(error.get("type"))))


def _usage(raw: dict[str, Any], model: Any = None) -> Usage:
    prompt_details = raw.get("prompt_tokens_details") or {}
    output_details = raw.get("completion_tokens_details") or {}
    size = raw.get("search_context_size")  # Perplexity: chooses the per-request fee
    return Usage(
        model=model if isinstance(model, str) else None,
        search_context_size=size if isinstance(size, str) else None,
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_input_tokens=(
            prompt_details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0
        ),
        reasoning_tokens=output_details.get("reasoning_tokens") or 0,
    )


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
