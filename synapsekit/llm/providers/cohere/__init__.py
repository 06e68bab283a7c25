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
  part of ``input_tokens``. ``billed_units`` goes to ``Usage.billed_input_tokens`` /
  ``billed_output_tokens``, which the cost is computed from (what Cohere charges), and stays
  in the final chunk's metadata; it is the fallback count when ``tokens`` is absent;
- ``message-end`` is the terminal event (``data: [DONE]`` may follow, or not): a stream
  without one broke (:class:`~synapsekit.errors.ConnectionError`); ``finish_reason: ERROR``
  (with ``delta.error``) inside a 200 is a ServerError, ``TIMEOUT`` a TimeoutError;
- 498 (invalid token) is an AuthenticationError, 402 (billing) a QuotaExceededError.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from synapsekit.errors import AuthenticationError, ServerError, TimeoutError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.connection import Connection
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure, text
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


class CohereConnection(Connection):
    """A ``cohere.AsyncClientV2`` per loop over our own httpx client (our pool size)."""

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        extra = {"base_url": self.base_url} if self.base_url else {}  # else CO_API_URL / default
        http = http_stack("cohere.core.http_client").module
        return self.sdk.AsyncClientV2(  # type: ignore[union-attr]
            api_key=self.api_key,
            timeout=self.config.timeout,
            max_retries=0,  # one retry policy: ours
            # The SDK's default client has httpx's 100-connection pool; closed by __aexit__.
            httpx_client=http.AsyncClient(
                timeout=self.config.timeout, follow_redirects=True, limits=httpx_limits(http)
            ),
            **extra,
        )

    async def close_client(self, client: Any) -> None:
        await client.__aexit__(None, None, None)  # no close(): the context exit closes httpx


class CohereLLM(BaseLLM):
    """Cohere Command models over the v2 chat API, streamed."""

    provider: ClassVar[str] = "cohere"
    connection_class = CohereConnection

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        options: dict[str, Any] = {"max_retries": 0, "timeout": config.timeout}
        if config.headers:
            options["additional_headers"] = dict(config.headers)
        rules = rules_for(self.provider, config)
        if config.params:
            options["additional_body_parameters"] = dict(rules.params(config))
        request: dict[str, Any] = {
            "model": config.model,
            "messages": [dict(m) for m in messages],
            "max_tokens": config.max_tokens,
            "request_options": options,
        }
        temperature = rules.temperature(config)
        if temperature is not None:  # None would go out as null: leave the argument out
            request["temperature"] = temperature
        top_p = rules.top_p(config)
        if top_p is not None:  # Cohere's v2 chat calls it p
            request["p"] = top_p
        if config.stop:
            request["stop_sequences"] = list(config.stop)
        return request

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        chat_stream = (await self._client()).with_raw_response.chat_stream
        with self._map_errors(config) as errors:
            async with chat_stream(**self._request(messages, config)) as raw:
                async for chunk in self._parse(raw.response, errors):
                    yield chunk

    async def _parse(self, response: Any, errors: ErrorMapper) -> AsyncIterator[Chunk]:
        """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
        loads = json.loads
        end: dict[str, Any] | None = None
        message_id: str | None = None
        async for _, data in iter_sse(response.aiter_bytes()):
            if data == _DONE:  # read on to the body's end: the connection is then reused
                continue
            try:
                event = loads(data)
            except ValueError:
                event = None
            if type(event) is not dict:
                raise errors.malformed(repr(data[:200]))
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
                message_id = errors.request_id = event.get("id")
        if end is None:
            raise errors.cut("message-end")
        reason = str(end.get("finish_reason") or "COMPLETE")
        if reason in ("ERROR", "TIMEOUT") or end.get("error"):
            raise errors.error(Failure(
                None, f"Cohere stopped the answer ({reason}): {end.get('error') or reason}",
                (reason, "ERROR"),
            ))
        usage = end.get("usage")
        metadata = {"id": message_id} if message_id else {}
        if isinstance(usage, dict) and usage.get("billed_units"):
            metadata["billed_units"] = usage["billed_units"]
        yield Chunk(
            usage=_usage(usage) if isinstance(usage, dict) else None,
            finish_reason=FINISH_REASONS.get(reason, reason.lower()),
            metadata=metadata or None,
        )

    def _error_table(self) -> ErrorTable:
        return _error_table()


@functools.cache
def _error_table() -> ErrorTable:
    """The cohere SDK's exceptions: every error status is an ``ApiError`` (``cohere.errors.*``
    subclass it) with ``status_code``, ``body`` and ``headers``."""
    stack = http_stack("cohere.core.http_client")
    api_error: type[Exception] = importlib.import_module("cohere.core.api_error").ApiError
    return ErrorTable(
        name="Cohere",
        status=(api_error,),
        read=_read_status,
        timeouts=stack.timeouts,
        transport=stack.transport,
        # In-stream finish reasons; 498 is an invalid (deny-listed) token.
        codes={"timeout": TimeoutError, "error": ServerError},
        statuses={498: AuthenticationError},
        packages=("cohere", "pydantic", "pydantic_core", *stack.packages),
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    """``{"id": ..., "message": ...}``; the body may also be plain text."""
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") or (exc.body if isinstance(exc.body, str) else None)
    return Failure(
        exc.status_code,
        str(message or ""),
        request_id=text(body.get("id")),
        headers=exc.headers,
    )


def _usage(raw: dict[str, Any]) -> Usage:
    billed = raw.get("billed_units")
    billed = billed if isinstance(billed, dict) else {}
    counts = raw.get("tokens") or billed
    return Usage(
        input_tokens=int(counts.get("input_tokens") or 0),
        output_tokens=int(counts.get("output_tokens") or 0),
        cached_input_tokens=int(raw.get("cached_tokens") or 0),
        # What is charged: the cost is computed from these (synapsekit.llm.pricing).
        billed_input_tokens=int(billed.get("input_tokens") or 0) if billed else None,
        billed_output_tokens=int(billed.get("output_tokens") or 0) if billed else None,
    )
