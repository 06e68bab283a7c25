"""Google's Gemini API (``streamGenerateContent?alt=sse``) over the official ``google-genai`` SDK.

Why SDK objects here, unlike the other providers: ``google-genai`` offers no raw access to a
streamed body (``should_return_http_response`` is refused for streams; the SSE reader lives in
private classes), so each chunk arrives as a ``GenerateContentResponse`` model. Reading its
fields is the one supported way; bypassing the SDK would mean re-implementing its request
building and auth, which is what we use it for.

The client is configured so the SDK adds nothing of its own to a call:

- an ``httpx2``/``httpx`` ``AsyncClient`` of ours is passed in, which keeps the SDK off its
  aiohttp path: there, ``timeout`` is a *total* limit that would cut any stream longer than
  it, and connection errors are retried after a 1-10 s sleep;
- that client's response hook records each response in a per-call list (a ContextVar: the
  request is sent in the caller's context), so a stream left early is closed at once; the
  SDK's nested generators do not pass ``aclose()`` down, and their cyclic references would
  keep the connection open until the garbage collector ran;
- ``HttpRetryOptions(attempts=1)`` and ``automatic_continuation=False``: one retry policy, ours;
- ``vertexai=False`` so a ``GOOGLE_GENAI_USE_VERTEXAI`` in the environment cannot reroute the
  call; ``api_version`` is pinned to ``v1beta`` (``config.api_version`` overrides), the version
  with system instructions and thinking on every model.

Wire quirks handled: assistant turns are role ``model`` and every system message is a text
part of ``system_instruction``, in order; thought-summary parts (``thought: true``) go to
``Chunk.reasoning``; ``usageMetadata`` is cumulative on every chunk, so the last one wins;
output tokens are ``candidatesTokenCount + thoughtsTokenCount`` (thoughts are billed as output and
``totalTokenCount`` includes them); there is no terminator, so a stream is complete only when a
chunk carried a ``finishReason`` (else :class:`~synapsekit.errors.ConnectionError`); a safety
finish or ``promptFeedback.blockReason`` is a ContentFilterError; a bad key is HTTP 400
``API_KEY_INVALID`` (an AuthenticationError); a 429's wait is in the body's ``RetryInfo``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator
from contextlib import aclosing, suppress
from contextvars import ContextVar
from typing import Any, ClassVar, NamedTuple

from synapsekit.errors import AuthenticationError, ConfigError, ContentFilterError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.connection import Connection
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure, text
from synapsekit.llm.types import Chunk, Message, Usage

__all__ = ["GeminiLLM"]

#: The SDK module whose HTTP library (httpx2, else httpx) our AsyncClient is built from.
_SENDER = "google.genai._api_client"

API_VERSION = "v1beta"

#: finishReason -> the finish reasons every provider uses; others are kept, lower-cased.
FINISH_REASONS: dict[str, str] = {"STOP": "stop", "MAX_TOKENS": "length"}
#: finishReasons that mean a safety or policy filter stopped the answer.
FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})


#: The HTTP responses the current call opened (set per call; the SDK sends in our context).
_OPENED: ContextVar[list[Any] | None] = ContextVar("synapsekit_gemini_opened", default=None)


async def _record_response(response: Any) -> None:
    """httpx response hook: remember the response so its call can close it."""
    opened = _OPENED.get()
    if opened is not None:
        opened.append(response)


class _Client(NamedTuple):
    genai: Any  # google.genai.Client
    http: Any  # the httpx2 / httpx AsyncClient we own


class GeminiConnection(Connection):
    """A ``google.genai.Client`` per loop over our own httpx client (our pool size, and a
    response hook that keeps the raw status for the error layer)."""

    def build(self) -> _Client:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        sdk: Any = self.sdk
        library = http_stack(_SENDER).module
        http = library.AsyncClient(
            timeout=self.config.timeout,
            event_hooks={"response": [_record_response]},
            limits=httpx_limits(library),  # httpx's default pool is 100 connections
        )
        options = sdk.types.HttpOptions(
            base_url=self.base_url,
            api_version=self.config.api_version or API_VERSION,
            headers=dict(self.config.headers) or None,
            timeout=_millis(self.config.timeout),
            retry_options=sdk.types.HttpRetryOptions(attempts=1),  # one retry policy: ours
            httpx_async_client=http,
        )
        client = sdk.Client(api_key=self.api_key, vertexai=False, http_options=options)
        return _Client(client, http)

    async def close_client(self, client: _Client) -> None:
        client.genai.close()  # the SDK's own sync transport
        await client.http.aclose()


class GeminiLLM(BaseLLM):
    """Gemini models over the Gemini Developer API, streamed."""

    provider: ClassVar[str] = "gemini"
    connection_class = GeminiConnection

    def _config(self, messages: list[Message], config: LLMConfig) -> Any:
        model: Any = self._sdk.types.GenerateContentConfig  # type: ignore[union-attr]
        rules = rules_for(self.provider, config)
        fields: dict[str, Any] = {
            **rules.params(config),
            "max_output_tokens": config.max_tokens,
        }
        temperature = rules.temperature(config)
        if temperature is not None:  # None: the model's own default, not sent
            fields["temperature"] = temperature
        top_p = rules.top_p(config)
        if top_p is not None:
            fields["top_p"] = top_p
        if "automatic_continuation" in model.model_fields:  # SDKs before it never continue
            fields["automatic_continuation"] = False
        system = [{"text": m["content"]} for m in messages if m["role"] == "system"]
        if system:  # every system message, in order: one text part each (as Bedrock's blocks)
            fields["system_instruction"] = {"parts": system}
        if config.stop:
            fields["stop_sequences"] = list(config.stop)
        try:
            return model(**fields)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"params: not accepted by google-genai: {exc}") from None

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        contents = [
            {"role": "model" if m["role"] == "assistant" else "user",
             "parts": [{"text": m["content"]}]}
            for m in messages
            if m["role"] != "system"
        ]
        models = (await self._client()).genai.aio.models
        gen_config = self._config(messages, config)
        usage: Any = None
        finish: str | None = None
        metadata: dict[str, Any] = {}
        opened: list[Any] = []
        _OPENED.set(opened)
        errors = self._map_errors(config)
        try:
            with errors:
                stream = await models.generate_content_stream(
                    model=config.model, contents=contents, config=gen_config
                )
                async with aclosing(stream):
                    async for response in stream:
                        feedback = response.prompt_feedback
                        if feedback is not None and feedback.block_reason:
                            raise self._filtered(_name(feedback.block_reason), config, "prompt")
                        if response.usage_metadata is not None:
                            usage = response.usage_metadata
                        elif not response.candidates and feedback is None:
                            # The SDK turns an event that is not an object ([] / null)
                            # into an empty response; a real event always has one of these.
                            raise errors.malformed("an event that is not a JSON object")
                        if response.response_id:
                            metadata["response_id"] = response.response_id
                        if response.model_version:
                            metadata["model_version"] = response.model_version
                        if not response.candidates:
                            continue
                        candidate = response.candidates[0]
                        content = candidate.content
                        for part in (content.parts if content is not None else None) or ():
                            if part.text:
                                yield Chunk(reasoning=part.text) if part.thought else Chunk(
                                    part.text
                                )
                        if candidate.finish_reason:
                            finish = _name(candidate.finish_reason)
        finally:
            for response in opened:  # the SDK's generators do not close it when left early
                await response.aclose()
            opened.clear()
        if finish is None:
            raise errors.cut("finishReason")
        if finish in FILTERED:
            raise self._filtered(finish, config, "answer")
        yield Chunk(
            usage=_usage(usage) if usage is not None else None,
            finish_reason=FINISH_REASONS.get(finish, finish.lower()),
            metadata=metadata or None,
        )

    def _filtered(self, reason: str, config: LLMConfig, what: str) -> ContentFilterError:
        return ContentFilterError(
            f"Gemini blocked the {what}: {reason}.",
            provider=self.provider,
            model=config.model,
            code=reason,
        )

    def _error_table(self) -> ErrorTable:
        return _error_table(self._sdk)


@functools.cache
def _error_table(sdk: Any) -> ErrorTable:
    """google-genai's exceptions: ``APIError`` for an error status (and for an
    ``{"error": ...}`` event inside a 200 stream), ``UnknownApiResponseError`` for an event
    that is not JSON; the HTTP library is the one our own AsyncClient is built from."""
    stack = http_stack(_SENDER)
    return ErrorTable(
        name="Gemini",
        status=(sdk.errors.APIError,),
        read=_read_status,
        timeouts=stack.timeouts,
        transport=stack.transport,
        malformed=(sdk.errors.UnknownApiResponseError,),
        packages=("google.genai", "pydantic", "pydantic_core", *stack.packages),
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    """``{"error": {"code", "message", "status", "details": [...]}}``. A bad key is a 400
    whose detail reason is ``API_KEY_INVALID``: the one case the status does not tell."""
    body: dict[str, Any] = exc.details if isinstance(exc.details, dict) else {}
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else body
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    reason = next((str(d["reason"]) for d in details if d.get("reason")), None)
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return Failure(
        exc.code if isinstance(exc.code, int) else None,
        str(exc.message or error.get("message") or exc),
        (reason, text(exc.status)),
        headers=headers,
        retry_after=_retry_delay(details),
        cls=AuthenticationError if reason and reason.startswith("API_KEY_") else None,
    )


def _name(value: Any) -> str:
    """An SDK enum member (or an unknown value the SDK kept as a string) as its wire name."""
    return str(getattr(value, "value", value))


def _usage(meta: Any) -> Usage:
    thoughts = meta.thoughts_token_count or 0
    return Usage(
        input_tokens=(meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0),
        output_tokens=(meta.candidates_token_count or 0) + thoughts,
        cached_input_tokens=meta.cached_content_token_count or 0,
        reasoning_tokens=thoughts,
    )


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """``RetryInfo.retryDelay`` ("26s", "7.81s") in seconds."""
    for detail in details:
        if str(detail.get("@type", "")).endswith("RetryInfo"):
            with suppress(TypeError, ValueError):
                return max(float(str(detail.get("retryDelay")).rstrip("s")), 0.0)
    return None


def _millis(seconds: float | None) -> int | None:
    """google-genai's timeout is in milliseconds; None: no timeout."""
    return None if seconds is None else math.ceil(seconds * 1000)
