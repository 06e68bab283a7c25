"""Cohere's Chat API v2 (``POST /v2/chat``, streamed) over the official ``cohere`` SDK.

The SDK builds and sends the request (bearer auth, body) and turns an error status into its
typed errors (``cohere.errors.*``, all ``ApiError`` with ``status_code``); the stream body is
read raw, through ``with_raw_response.chat_stream`` (public; it yields the open
``httpx.Response``), and each SSE event parsed with ``json.loads`` directly. That is both
cheaper than the SDK's pydantic object per event and stricter: the SDK skips an event it
cannot parse with a warning, which would silently drop answer text; here it is an error.

Wire quirks handled:

- ``stop`` goes out as ``stop_sequences``; ``params`` are merged into the body as-is
  (``request_options.additional_body_parameters``: ``thinking``, ``seed``, ``p``, ``k``...);
  ``headers`` through ``request_options.additional_headers``; retries off per request too;
- text in ``content-delta`` is ``delta.message.content.text``; a reasoning model's thinking
  block arrives in the same event type as ``.thinking`` and goes to ``Chunk.reasoning``;
- usage rides on ``message-end``: ``Usage`` counts ``usage.tokens`` (what the model
  processed, chat template included), not ``billed_units`` (what is charged, which leaves the
  template out), because ``usage.cached_tokens`` is a part of the former (448 of 507 in a real
  capture, against 12 billed) and :class:`~synapsekit.llm.types.Usage` keeps cached tokens a
  part of ``input_tokens``. ``billed_units`` is kept in the final chunk's metadata (for cost);
  it is the fallback when ``tokens`` is absent;
- ``message-end`` is the terminal event (``data: [DONE]`` may follow, or not): a stream
  without one broke (:class:`~synapsekit.errors.ConnectionError`); ``finish_reason: ERROR``
  (with ``delta.error``) inside a 200 is a ServerError, ``TIMEOUT`` a TimeoutError;
- 498 (invalid token) is an AuthenticationError, 402 (billing) a QuotaExceededError.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from synapsekit.errors import (
    AuthenticationError,
    ConnectionError,
    LLMError,
    QuotaExceededError,
    ServerError,
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

__all__ = ["CohereLLM"]

_DONE = b"[DONE]"

#: finish_reason -> the finish reasons every provider uses; others are kept, lower-cased.
FINISH_REASONS: dict[str, str] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
_STATUS_CLASSES: dict[int, type[LLMError]] = {
    402: QuotaExceededError,  # payment required: waiting will not help
    498: AuthenticationError,  # invalid (deny-listed) token
}


class CohereLLM(BaseLLM):
    """Cohere Command models over the v2 chat API, streamed."""

    provider: ClassVar[str] = "cohere"

    def _new_client(self) -> Any:
        extra = {"base_url": self.base_url} if self.base_url else {}  # else CO_API_URL / default
        return self._sdk.AsyncClientV2(  # type: ignore[union-attr]
            api_key=self._api_key,
            timeout=self.config.timeout,
            max_retries=0,  # one retry policy: ours
            **extra,
        )

    async def _close_client(self, client: Any) -> None:
        await client.__aexit__(None, None, None)  # no close(): the context exit closes httpx

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        options: dict[str, Any] = {"max_retries": 0, "timeout": config.timeout}
        if config.headers:
            options["additional_headers"] = dict(config.headers)
        if config.params:
            options["additional_body_parameters"] = dict(config.params)
        request: dict[str, Any] = {
            "model": config.model,
            "messages": [dict(m) for m in messages],
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "request_options": options,
        }
        if config.stop:
            request["stop_sequences"] = list(config.stop)
        return request

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        chat_stream = self._client().with_raw_response.chat_stream
        with self._map_errors(config):
            async with chat_stream(**self._request(messages, config)) as raw:
                async for chunk in self._parse(raw.response, config):
                    yield chunk

    async def _parse(self, response: Any, config: LLMConfig) -> AsyncIterator[Chunk]:
        """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
        loads = json.loads
        end: dict[str, Any] | None = None
        message_id: str | None = None
        async for _, data in iter_sse(response.aiter_bytes()):
            if data == _DONE:
                break
            try:
                event = loads(data)
            except ValueError:
                event = None
            if type(event) is not dict:
                raise malformed_event(self.provider, config.model, data)
            kind = event.get("type")
            if kind == "content-delta":
                content = ((event.get("delta") or {}).get("message") or {}).get("content") or {}
                text = content.get("text")
                if text:
                    yield Chunk(text)
                elif content.get("thinking"):
                    yield Chunk(reasoning=content["thinking"])
            elif kind == "message-end":
                end = event.get("delta") or {}
            elif kind == "message-start":
                message_id = event.get("id")
        if end is None:
            raise ConnectionError(
                "The stream ended before the provider finished the answer (no message-end).",
                provider=self.provider,
                model=config.model,
                request_id=message_id,
            )
        reason = str(end.get("finish_reason") or "COMPLETE")
        if reason in ("ERROR", "TIMEOUT") or end.get("error"):
            cls = TimeoutError if reason == "TIMEOUT" else ServerError
            raise cls(
                redact(f"Cohere stopped the answer ({reason}): {end.get('error') or reason}",
                       self._api_key),
                provider=self.provider,
                model=config.model,
                request_id=message_id,
                code=reason,
            )
        usage = end.get("usage")
        metadata = {"id": message_id} if message_id else {}
        if isinstance(usage, dict) and usage.get("billed_units"):
            metadata["billed_units"] = usage["billed_units"]
        yield Chunk(
            usage=_usage(usage) if isinstance(usage, dict) else None,
            finish_reason=FINISH_REASONS.get(reason, reason.lower()),
            metadata=metadata or None,
        )

    @contextmanager
    def _map_errors(self, config: LLMConfig) -> Iterator[None]:
        """Translate the cohere SDK's and httpx's exceptions, at this one depth."""
        import httpx

        context: dict[str, Any] = {"provider": self.provider, "model": config.model}
        try:
            yield
        except _api_error() as exc:
            raise self._status_error(exc, context) from None
        except httpx.TimeoutException as exc:
            raise TimeoutError(
                f"No answer within {config.timeout:g} s: {type(exc).__name__}", **context
            ) from None
        except httpx.HTTPError as exc:
            raise ConnectionError(
                redact(f"Connection to {self.base_url or 'Cohere'} failed: "
                       f"{exc or type(exc).__name__}", self._api_key),
                **context,
            ) from None

    def _status_error(self, exc: Any, context: dict[str, Any]) -> LLMError:
        body = exc.body if isinstance(exc.body, dict) else {}
        status = exc.status_code
        message = body.get("message") or (exc.body if isinstance(exc.body, str) else None)
        cls = _STATUS_CLASSES.get(status) or error_for_status(status)
        return cls(
            redact(str(message or f"HTTP {status}"), self._api_key),
            status_code=status,
            request_id=as_text(body.get("id")),
            retry_after=parse_retry_after(exc.headers),
            **context,
        )


def _usage(raw: dict[str, Any]) -> Usage:
    counts = raw.get("tokens") or raw.get("billed_units") or {}
    return Usage(
        input_tokens=int(counts.get("input_tokens") or 0),
        output_tokens=int(counts.get("output_tokens") or 0),
        cached_input_tokens=int(raw.get("cached_tokens") or 0),
    )



@functools.cache
def _api_error() -> type[Exception]:
    """The base of the SDK's typed errors (``cohere.errors.*``), not exported at the top."""
    cls: type[Exception] = importlib.import_module("cohere.core.api_error").ApiError
    return cls
