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

import json
import os
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from synapsekit.errors import (
    ConfigError,
    ConnectionError,
    LLMError,
    TimeoutError,
    error_for_status,
    redact,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.providers._common import as_text, malformed_event
from synapsekit.llm.retry import parse_retry_after
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
# json.loads(bytes) sniffs the encoding on every call; SSE is UTF-8 by definition.
_decode_json = json.JSONDecoder().decode


class OpenAICompatibleLLM(BaseLLM):
    """Chat completions over the ``openai`` SDK; vendors subclass with their provider name."""

    provider: ClassVar[str] = "openai"
    #: Name of the output-length field: OpenAI's reasoning models accept only the new one.
    max_tokens_field: ClassVar[str] = "max_tokens"
    #: Ask for ``stream_options.include_usage`` (vendors that always send usage: False).
    usage_option: ClassVar[bool] = True
    #: Top-level chunk fields kept as call metadata (the last value seen wins).
    metadata_keys: ClassVar[tuple[str, ...]] = ()

    def _new_client(self) -> Any:
        return self._sdk.AsyncOpenAI(  # type: ignore[union-attr]
            api_key=self._api_key,
            base_url=self.base_url,
            max_retries=0,  # one retry policy: ours
            timeout=self.config.timeout,
            default_headers=dict(self.config.headers) or None,
        )

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": config.model,
            "messages": messages,
            "stream": True,
            "temperature": config.temperature,
            self.max_tokens_field: config.max_tokens,
        }
        if self.usage_option:
            body["stream_options"] = {"include_usage": True}
        if config.stop:
            body["stop"] = list(config.stop)
        if config.params:
            body.update(config.params)
        return body

    async def _stream(
        self, messages: list[Message], config: LLMConfig
    ) -> AsyncGenerator[Chunk, None]:
        import httpx

        client = self._client()
        with self._map_errors(config):
            # The SDK's low-level post: it builds the request (auth, Azure's deployment
            # path) and raises typed status errors, but skips create()'s per-call
            # TypedDict transform of the body (~0.8 ms) and hands back the raw response.
            response = await client.post(
                "/chat/completions",
                cast_to=httpx.Response,
                body=self._request(messages, config),
                stream=True,
            )
            try:
                async for chunk in self._parse(response, config):
                    yield chunk
            finally:
                await response.aclose()

    async def _parse(
        self, response: Any, config: LLMConfig
    ) -> AsyncGenerator[Chunk, None]:
        """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
        decode = _decode_json
        metadata_keys = self.metadata_keys
        usage: dict[str, Any] | None = None
        finish: str | None = None
        metadata: dict[str, Any] = {}
        done = False
        async for _, data in iter_sse(response.aiter_bytes()):
            if done:  # read on to the end of the body so the connection can be reused
                continue
            if data == _DONE:
                done = True
                continue
            try:
                event = decode(data.decode())
            except ValueError:
                request_id = response.headers.get("x-request-id")
                raise malformed_event(self.provider, config.model, data, request_id) from None
            if event.get("error"):
                raise self._stream_error(event["error"], response, config)
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
            for key in metadata_keys:
                if event.get(key) is not None:
                    metadata[key] = event[key]
        if not done and finish is None:
            raise ConnectionError(
                "The stream ended before the provider finished the answer.",
                provider=self.provider,
                model=config.model,
                request_id=response.headers.get("x-request-id"),
            )
        yield Chunk(
            usage=_usage(usage) if usage else None,
            finish_reason=finish,
            metadata=metadata or None,
        )

    def _stream_error(self, error: Any, response: Any, config: LLMConfig) -> LLMError:
        """An ``{"error": ...}`` object that arrived inside a 200 stream."""
        if not isinstance(error, dict):
            error = {"message": str(error)}
        code = error.get("code")
        status = int(code) if isinstance(code, int) or str(code).isdigit() else None
        cls = error_for_status(status or 500, as_text(code), as_text(error.get("type")))
        return cls(
            redact(str(error.get("message") or error), self._api_key),
            provider=self.provider,
            model=config.model,
            status_code=status,
            request_id=response.headers.get("x-request-id"),
            code=as_text(code),
        )

    @contextmanager
    def _map_errors(self, config: LLMConfig) -> Iterator[None]:
        """Translate the openai SDK's and httpx's exceptions, at this one depth."""
        import httpx

        sdk = self._sdk
        context: dict[str, Any] = {"provider": self.provider, "model": config.model}
        try:
            yield
        except sdk.APIStatusError as exc:  # type: ignore[union-attr]
            raise self._status_error(exc, context) from None
        except (sdk.APITimeoutError, httpx.TimeoutException) as exc:  # type: ignore[union-attr]
            raise TimeoutError(
                f"No answer within {config.timeout:g} s: {type(exc).__name__}", **context
            ) from None
        except (sdk.APIConnectionError, httpx.HTTPError) as exc:  # type: ignore[union-attr]
            raise ConnectionError(
                redact(f"Connection to {self.base_url} failed: {exc or type(exc).__name__}",
                       self._api_key),
                **context,
            ) from None

    def _status_error(self, exc: Any, context: dict[str, Any]) -> LLMError:
        body = exc.body if isinstance(exc.body, dict) else {}
        headers = exc.response.headers
        code, kind = as_text(body.get("code")), as_text(body.get("type"))
        message = body.get("message") or body.get("detail") or exc.message
        cls = error_for_status(exc.status_code, code, kind)
        return cls(
            redact(str(message), self._api_key),
            status_code=exc.status_code,
            request_id=headers.get("x-request-id") or headers.get("apim-request-id"),
            retry_after=parse_retry_after(headers),
            code=code or kind,
            **context,
        )



def _usage(raw: dict[str, Any]) -> Usage:
    prompt_details = raw.get("prompt_tokens_details") or {}
    output_details = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_input_tokens=(
            prompt_details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0
        ),
        reasoning_tokens=output_details.get("reasoning_tokens") or 0,
    )


class OpenAILLM(OpenAICompatibleLLM):
    provider = "openai"
    max_tokens_field = "max_completion_tokens"


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
    """Azure OpenAI: ``model`` is the deployment name; ``api-key`` header; api-version.

    The endpoint is ``base_url`` or ``AZURE_OPENAI_ENDPOINT``; the API version is
    ``api_version`` or ``OPENAI_API_VERSION``, else :data:`DEFAULT_API_VERSION`.
    """

    provider = "azure"
    DEFAULT_API_VERSION: ClassVar[str] = "2024-10-21"

    def __init__(self, config: LLMConfig, *, tracer: Any = None) -> None:
        super().__init__(config, tracer=tracer)
        if not self.base_url:
            raise ConfigError(
                "No Azure OpenAI endpoint: pass base_url=... or set AZURE_OPENAI_ENDPOINT "
                "(e.g. https://my-resource.openai.azure.com)."
            )

    @property
    def base_url(self) -> str | None:
        return self.config.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")

    @property
    def api_version(self) -> str:
        return (
            self.config.api_version
            or os.environ.get("OPENAI_API_VERSION")
            or self.DEFAULT_API_VERSION
        )

    def _new_client(self) -> Any:
        return self._sdk.AsyncAzureOpenAI(  # type: ignore[union-attr]
            api_key=self._api_key,
            azure_endpoint=self.base_url,
            api_version=self.api_version,
            max_retries=0,
            timeout=self.config.timeout,
            default_headers=dict(self.config.headers) or None,
        )
