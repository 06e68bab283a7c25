"""Anthropic's Messages API (``POST /v1/messages``) over the official ``anthropic`` SDK.

The SDK builds and sends the request (auth, ``anthropic-version``) and maps HTTP statuses
to its exceptions; the stream body is read as raw SSE bytes and each event parsed with
``json.loads`` directly, as in :mod:`~synapsekit.llm.providers.openai_compat`, because an
SDK event object per chunk costs more CPU than everything else here.

Wire quirks handled:

- system messages become the top-level ``system`` field, joined by a blank line (the API
  rejects the role in ``messages``); ``max_tokens`` is always sent; ``stop`` goes out as
  ``stop_sequences``; ``params`` is merged into the body as-is;
- ``temperature`` follows the API version the client sends: version 2026-10-21 (the
  default of anthropic >= 2.0) rejects any sampling parameter, so it is not sent; older
  versions (anthropic < 2.0, or ``headers={"anthropic-version": "2023-06-01"}``) get it
  in the body (anthropic >= 1.0 dropped the argument from ``create``), except when
  ``params["thinking"]`` enables thinking (then only 1 is accepted);
- usage: ``input_tokens`` from ``message_start``; ``output_tokens`` from ``message_delta``
  is cumulative, so the last value wins, never a sum;
- Anthropic's ``input_tokens`` excludes prompt-cache reads and writes; ``Usage.input_tokens``
  here is the whole prompt, ``input_tokens + cache_read_input_tokens +
  cache_creation_input_tokens``, with the two parts in ``cached_input_tokens`` and
  ``cache_write_tokens``, as :class:`~synapsekit.llm.types.Usage` defines them;
- ``thinking_delta`` text goes to ``Chunk.reasoning``; ``signature_delta``, ``ping``,
  tool-input deltas and unknown events are ignored; JSON padded with spaces is fine;
- ``event: error`` inside a 200 stream is raised by its ``error.type``; no ``message_stop``
  means the stream broke (:class:`~synapsekit.errors.ConnectionError`);
- 529 / ``overloaded_error`` is a ServerError (retried); a 400 "prompt is too long" is a
  ContextLengthError; ``billing_error`` a QuotaExceededError.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, ClassVar

from synapsekit.errors import (
    ConnectionError,
    ContextLengthError,
    LLMError,
    QuotaExceededError,
    TimeoutError,
    error_for_status,
    redact,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.providers._common import as_text, malformed_event, transport_errors
from synapsekit.llm.retry import parse_retry_after
from synapsekit.llm.sse import iter_sse
from synapsekit.llm.types import Chunk, Message, Usage

__all__ = ["AnthropicLLM"]

#: stop_reason -> the finish reasons every provider uses; others are kept as-is.
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: The first API version that rejects temperature / top_p / top_k (a 400 at any value).
NO_SAMPLING_VERSION = "2026-10-21"

#: The HTTP status each error type comes with, to classify an ``event: error`` in a 200.
_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicLLM(BaseLLM):
    """Claude models over the Messages API, streamed."""

    provider: ClassVar[str] = "anthropic"

    def _new_client(self) -> Any:
        return self._sdk.AsyncAnthropic(  # type: ignore[union-attr]
            api_key=self._api_key,
            base_url=self.base_url,
            max_retries=0,  # one retry policy: ours
            timeout=self.config.timeout,
            default_headers=dict(self.config.headers) or None,
        )

    def _request(
        self, messages: list[Message], config: LLMConfig, version: str | None
    ) -> dict[str, Any]:
        system = [m["content"] for m in messages if m["role"] == "system"]
        body: dict[str, Any] = {
            "model": config.model,
            "max_tokens": config.max_tokens,
            "messages": [m for m in messages if m["role"] != "system"],
            "stream": True,
        }
        if system:
            body["system"] = "\n\n".join(system)
        if config.stop:
            body["stop_sequences"] = list(config.stop)
        extra: dict[str, Any] = {}
        if _takes_temperature(version, config.params.get("thinking")):
            extra["temperature"] = config.temperature
        body.update(extra)
        body.update(config.params)
        return body

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        client = self._client()
        version = _header(client.default_headers, "anthropic-version")
        with self._map_errors(config):
            # The SDK's low-level post: it builds the request (auth, version headers) and
            # raises typed status errors, but skips create()'s per-call TypedDict transform
            # of the body, a third of this provider's client CPU, and returns the raw response.
            response = await client.post(
                "/v1/messages",
                cast_to=_response_class(self._sdk),
                body=self._request(messages, config, version),
                stream=True,
            )
            try:
                async for chunk in self._parse(response, config):
                    yield chunk
            finally:
                await response.aclose()

    async def _parse(self, response: Any, config: LLMConfig) -> AsyncIterator[Chunk]:
        """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
        loads = json.loads
        usage: dict[str, Any] = {}
        finish: str | None = None
        done = False
        async for name, data in iter_sse(response.aiter_bytes()):
            try:
                event = loads(data)
            except ValueError:
                event = None
            if type(event) is not dict:
                request_id = response.headers.get("request-id")
                raise malformed_event(self.provider, config.model, data, request_id)
            kind = event.get("type")
            if kind == "content_block_delta":
                delta = event.get("delta") or {}
                part = delta.get("type")
                if part == "text_delta":
                    if delta.get("text"):
                        yield Chunk(delta["text"])
                elif part == "thinking_delta" and delta.get("thinking"):
                    yield Chunk(reasoning=delta["thinking"])
            elif kind == "message_start":
                _take_usage(usage, (event.get("message") or {}).get("usage"))
            elif kind == "message_delta":
                _take_usage(usage, event.get("usage"))
                stop = (event.get("delta") or {}).get("stop_reason")
                if stop:
                    finish = FINISH_REASONS.get(stop, stop)
            elif kind == "message_stop":
                done = True
            elif kind == "error" or name == b"error":
                raise self._stream_error(event.get("error"), response, config)
        if not done:
            raise ConnectionError(
                "The stream ended before the provider finished the answer (no message_stop).",
                provider=self.provider,
                model=config.model,
                request_id=response.headers.get("request-id"),
            )
        yield Chunk(usage=_usage(usage) if usage else None, finish_reason=finish)

    def _stream_error(self, error: Any, response: Any, config: LLMConfig) -> LLMError:
        """An ``event: error`` that arrived inside a 200 stream."""
        if not isinstance(error, dict):
            error = {"message": str(error)}
        kind = as_text(error.get("type"))
        message = str(error.get("message") or error)
        cls = _error_class(_TYPE_STATUS.get(kind or "", 500), kind, message)
        return cls(
            redact(message, self._api_key),
            provider=self.provider,
            model=config.model,
            request_id=response.headers.get("request-id"),
            code=kind,
        )

    @contextmanager
    def _map_errors(self, config: LLMConfig) -> Iterator[None]:
        """Translate the anthropic SDK's and its HTTP client's exceptions, at this one depth."""
        sdk = self._sdk
        timeouts, transport = transport_errors()
        context: dict[str, Any] = {"provider": self.provider, "model": config.model}
        try:
            yield
        except sdk.APIStatusError as exc:  # type: ignore[union-attr]
            raise self._status_error(exc, context) from None
        except (sdk.APITimeoutError, *timeouts) as exc:  # type: ignore[union-attr]
            raise TimeoutError(
                f"No answer within {config.timeout:g} s: {type(exc).__name__}", **context
            ) from None
        except (sdk.APIConnectionError, *transport) as exc:  # type: ignore[union-attr]
            raise ConnectionError(
                redact(
                    f"Connection to {self.base_url or 'Anthropic'} failed: "
                    f"{exc or type(exc).__name__}",
                    self._api_key,
                ),
                **context,
            ) from None

    def _status_error(self, exc: Any, context: dict[str, Any]) -> LLMError:
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error")
        if not isinstance(error, dict):
            error = {}
        headers = exc.response.headers
        kind = as_text(error.get("type"))
        message = str(error.get("message") or exc.message)
        cls = _error_class(exc.status_code, kind, message)
        return cls(
            redact(message, self._api_key),
            status_code=exc.status_code,
            request_id=headers.get("request-id") or as_text(body.get("request_id")),
            retry_after=parse_retry_after(headers),
            code=kind,
            **context,
        )


def _takes_temperature(version: str | None, thinking: Any) -> bool:
    """Whether the request may carry ``temperature`` (see the module docstring)."""
    if version is None or version >= NO_SAMPLING_VERSION:
        return False
    return not (isinstance(thinking, dict) and thinking.get("type", "disabled") != "disabled")


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name and isinstance(value, str):
            return value
    return None


def _error_class(status: int, kind: str | None, message: str) -> type[LLMError]:
    if kind == "billing_error":
        return QuotaExceededError  # out of credit: waiting will not help
    if status == 400 and message.startswith("prompt is too long"):
        return ContextLengthError  # "prompt is too long: 208656 tokens > 200000 maximum"
    return error_for_status(status, None, kind)


def _take_usage(usage: dict[str, Any], raw: Any) -> None:
    """Merge a usage report: every count present replaces the earlier one (cumulative)."""
    if isinstance(raw, dict):
        usage.update((k, v) for k, v in raw.items() if isinstance(v, int))


def _usage(raw: dict[str, Any]) -> Usage:
    cache_read = raw.get("cache_read_input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=(raw.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=raw.get("output_tokens") or 0,
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
    )





@functools.cache
def _response_class(sdk: ModuleType) -> type:
    """The HTTP response class the SDK's client returns for ``cast_to`` (``httpx2.Response``
    from anthropic 2.x, which moved to its own httpx fork; ``httpx.Response`` before)."""
    base = importlib.import_module(f"{sdk.__name__}._base_client")
    library = getattr(base, "httpx2", None) or base.httpx
    response: type = library.Response
    return response
