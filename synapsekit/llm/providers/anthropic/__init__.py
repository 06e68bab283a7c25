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
  ``params["thinking"]`` enables thinking (then only 1 is accepted); ``temperature=None``
  is never sent; ``LLMConfig.top_p`` follows the same rule;
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
- errors go through the shared layer (``_errors.py``): 529 / ``overloaded_error`` is a
  ServerError (retried); a 400 "prompt is too long" a ContextLengthError;
  ``billing_error`` a QuotaExceededError.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.connection import Connection
from synapsekit.llm.content import text_of
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure, text
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

class AnthropicConnection(Connection):
    """An ``anthropic.AsyncAnthropic`` client per loop: our pool size, no SDK retries."""

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        sdk: Any = self.sdk
        return sdk.AsyncAnthropic(
            api_key=self.api_key,
            base_url=self.base_url,
            max_retries=0,  # one retry policy: ours
            timeout=self.config.timeout,
            default_headers=dict(self.config.headers) or None,
            http_client=sdk.DefaultAsyncHttpxClient(  # the SDK's defaults, our pool size
                limits=httpx_limits(http_stack("anthropic._base_client").module)
            ),
        )


class AnthropicLLM(BaseLLM):
    """Claude models over the Messages API, streamed."""

    provider: ClassVar[str] = "anthropic"
    connection_class = AnthropicConnection

    def _request(
        self, messages: list[Message], config: LLMConfig, version: str | None
    ) -> dict[str, Any]:
        system = [text_of(m["content"]) for m in messages if m["role"] == "system"]
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
        rules = rules_for(self.provider, config)
        sampling = _takes_temperature(version, config.params.get("thinking"))
        temperature = rules.temperature(config)
        if temperature is not None and sampling:
            body["temperature"] = temperature
        top_p = rules.top_p(config)
        if top_p is not None and sampling:  # the same rule as temperature
            body["top_p"] = top_p
        body.update(rules.params(config))
        return body

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        client = await self._client()
        version = _header(client.default_headers, "anthropic-version")
        with self._map_errors(config) as errors:
            # The SDK's low-level post: it builds the request (auth, version headers) and
            # raises typed status errors, but skips create()'s per-call TypedDict transform
            # of the body, a third of this provider's client CPU, and returns the raw response.
            response = await client.post(
                "/v1/messages",
                cast_to=http_stack("anthropic._base_client").response,
                body=self._request(messages, config, version),
                stream=True,
            )
            try:
                async for chunk in self._parse(response, errors):
                    yield chunk
            finally:
                await response.aclose()

    async def _parse(self, response: Any, errors: ErrorMapper) -> AsyncIterator[Chunk]:
        """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
        loads = json.loads
        usage: dict[str, Any] = {}
        finish: str | None = None
        done = False
        errors.request_id = response.headers.get("request-id")
        async for name, data in iter_sse(response.aiter_bytes()):
            try:
                event = loads(data)
            except ValueError:
                event = None
            if type(event) is not dict:
                raise errors.malformed(repr(data[:200]))
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
                if usage:  # the input is counted now: kept if the stream fails later
                    yield Chunk(usage=_usage(usage, complete=False))
            elif kind == "message_delta":
                _take_usage(usage, event.get("usage"))
                stop = (event.get("delta") or {}).get("stop_reason")
                if stop:
                    finish = FINISH_REASONS.get(stop, stop)
            elif kind == "message_stop":
                done = True
            elif kind == "error" or name == b"error":
                raise errors.error(_error_event(event.get("error")))
        if not done:
            raise errors.cut("message_stop")
        yield Chunk(usage=_usage(usage) if usage else None, finish_reason=finish)

    def _error_table(self) -> ErrorTable:
        return _error_table(self._sdk)


@functools.cache
def _error_table(sdk: Any) -> ErrorTable:
    """The anthropic SDK's exceptions; 529 is a ServerError by the status rule (5xx)."""
    stack = http_stack("anthropic._base_client")
    return ErrorTable(
        name="Anthropic",
        status=(sdk.APIStatusError,),
        read=_read_status,
        timeouts=(sdk.APITimeoutError, *stack.timeouts),
        transport=(sdk.APIConnectionError, *stack.transport),
        packages=("anthropic", *stack.packages),
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if not isinstance(error, dict):
        error = {}
    headers = exc.response.headers
    return Failure(
        exc.status_code,
        str(error.get("message") or exc.message),
        (text(error.get("type")),),
        request_id=headers.get("request-id") or text(body.get("request_id")),
        headers=headers,
    )


def _error_event(error: Any) -> Failure:
    """An ``event: error`` inside a 200 stream: no status, so its type decides."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    return Failure(None, str(error.get("message") or error), (text(error.get("type")),))


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


def _take_usage(usage: dict[str, Any], raw: Any) -> None:
    """Merge a usage report: every count present replaces the earlier one (cumulative)."""
    if isinstance(raw, dict):
        usage.update((k, v) for k, v in raw.items() if isinstance(v, int))
        lifetimes = raw.get("cache_creation")  # {"ephemeral_5m_input_tokens", "..._1h_..."}
        if isinstance(lifetimes, dict):
            usage.update(
                (f"cache_creation.{k}", v) for k, v in lifetimes.items() if isinstance(v, int)
            )


def _usage(raw: dict[str, Any], *, complete: bool = True) -> Usage:
    cache_read = raw.get("cache_read_input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=(raw.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=raw.get("output_tokens") or 0,
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
        # the 1-hour part of the writes (``usage.cache_creation``), billed at 2x input
        cache_write_1h_tokens=min(raw.get("cache_creation.ephemeral_1h_input_tokens") or 0,
                                  cache_write),
        complete=complete,
    )
