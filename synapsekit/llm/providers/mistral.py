"""Mistral's chat completions (``POST /v1/chat/completions``), over the official ``mistralai`` SDK.

The SDK builds, authenticates and sends the request and raises its own exceptions for HTTP
errors. ``chat.stream_async`` returns an ``EventStreamAsync`` whose decoder would build a
pydantic ``CompletionEvent`` per chunk; it also exposes the undecoded httpx response
(``.response``), so the body is read here as raw SSE bytes and each event parsed with
``json.loads`` -- the decoder never runs.

Wire quirks handled (tests/wire/mistral): usage rides on the last content chunk, the one
with ``finish_reason`` (the last report wins); a random ``"p"`` padding field is ignored;
reasoning models (Magistral) send ``delta.content`` as a list of ``thinking`` parts (each
holding text parts) and ``text`` parts; ``finish_reason`` ``model_length`` means
``length`` and ``error`` is a failure; a stream must end with ``data: [DONE]``; error
bodies come in several shapes: ``{"detail": "Unauthorized"}`` (401),
``{"object": "error", "message", "type", "code"}`` (documented, 429) and FastAPI's
``{"detail": [...]}`` (422).

SDK layouts: v2+ has ``mistralai.client.Mistral`` (over ``httpx2``), v1 ``mistralai.Mistral``
(over ``httpx``); both are found at run time. ``base_url`` may be given with or without the
``/v1`` suffix: the SDK wants the server root.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from synapsekit.errors import ConfigError, ServerError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.connection import Connection
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure, text
from synapsekit.llm.sse import iter_sse
from synapsekit.llm.types import Chunk, Message, Usage

__all__ = ["MistralLLM"]

DEFAULT_URL = "https://api.mistral.ai"
_DONE = b"[DONE]"
_FINISH = {"model_length": "length"}
_REQUEST_ID = ("mistral-correlation-id", "x-request-id", "x-kong-request-id")
#: stream_async arguments synapsekit sets itself; never taken from ``config.params``.
_OWN_ARGS = frozenset({"self", "stream", "retries", "server_url", "timeout_ms", "http_headers"})


@dataclass(frozen=True)
class _SDK:
    """The pieces of the installed mistralai SDK this module needs, whatever its version."""

    client_class: type[Any]
    errors: ErrorTable


@functools.cache
def _sdk_parts(sdk: ModuleType) -> _SDK:
    try:
        root = importlib.import_module(f"{sdk.__name__}.client")  # v2+
    except ImportError:
        root = sdk  # v1
    status: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    for holder in (f"{root.__name__}.errors", f"{sdk.__name__}.models"):
        try:
            module = importlib.import_module(holder)
        except ImportError:
            continue
        for name, bucket in (("MistralError", status), ("SDKError", status),
                             ("HTTPValidationError", status), ("NoResponseError", transport)):
            cls = getattr(module, name, None)
            if isinstance(cls, type) and cls not in bucket:
                bucket.append(cls)
    stack = http_stack(f"{root.__name__}.basesdk")  # v2+ sends with httpx2, v1 with httpx
    errors = ErrorTable(
        name="Mistral",
        status=tuple(status),
        read=_read_status,
        timeouts=stack.timeouts,
        transport=(*transport, *stack.transport),
        packages=("mistralai", "pydantic", "pydantic_core", *stack.packages),
    )
    return _SDK(root.Mistral, errors)


class MistralConnection(Connection):
    """A ``mistralai.Mistral`` client per loop over our own httpx client (our pool size,
    no SDK retries)."""

    @property
    def base_url(self) -> str:
        return self.config.base_url or DEFAULT_URL

    @property
    def _parts(self) -> _SDK:
        assert self.sdk is not None
        return _sdk_parts(self.sdk)

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.providers._common import http_stack
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        server = self.base_url.rstrip("/")
        if server.endswith("/v1"):
            server = server[:-3]
        http = http_stack(self._parts.client_class.__module__).module  # httpx2 (v2+), httpx (v1)
        return self._parts.client_class(
            api_key=self.api_key,
            server_url=server,
            retry_config=None,  # null: no SDK retries; one retry policy, ours
            timeout_ms=_millis(self.config.timeout),
            # The SDK's default async client has httpx's 100-connection pool.
            async_client=http.AsyncClient(
                timeout=self.config.timeout, follow_redirects=True, limits=httpx_limits(http)
            ),
        )

    async def close_client(self, client: Any) -> None:
        # Our async client (see _new_client): the SDK does not close a client it was given.
        http = getattr(client.sdk_configuration, "async_client", None)
        await client.__aexit__(None, None, None)  # the SDK has no close(): its httpx clients
        client.__exit__(None, None, None)
        if http is not None:
            await http.aclose()


class MistralLLM(BaseLLM):
    """Mistral chat completions, streamed; raw SSE parsing over the SDK's response."""

    provider: ClassVar[str] = "mistral"

    connection_class = MistralConnection

    @property
    def _parts(self) -> _SDK:
        assert self._sdk is not None
        return _sdk_parts(self._sdk)

    def _request(self, client: Any, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        rules = rules_for(self.provider, config)
        body: dict[str, Any] = {
            "model": config.model,
            "messages": messages,
            "max_tokens": config.max_tokens,
            "timeout_ms": _millis(config.timeout),
        }
        temperature = rules.temperature(config)
        if temperature is not None:  # None is the SDK's explicit null: leave it UNSET
            body["temperature"] = temperature
        top_p = rules.top_p(config)
        if top_p is not None:
            body["top_p"] = top_p
        if config.stop:
            body["stop"] = list(config.stop)
        if config.headers:
            body["http_headers"] = dict(config.headers)
        params = rules.params(config)
        if params:
            allowed = _param_names(type(client.chat).stream_async)
            unknown = sorted(set(params) - allowed)
            if unknown:
                raise ConfigError(
                    f"params: {', '.join(unknown)} not accepted by Mistral chat; "
                    f"valid: {', '.join(sorted(allowed))}"
                )
            body.update(params)
        return body

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        client = await self._client()
        request = self._request(client, messages, config)
        with self._map_errors(config) as errors:
            events = await client.chat.stream_async(**request)
            response = events.response  # the raw body; the SDK's decoder is never started
            try:
                async with aclosing(self._parse(response, errors)) as chunks:
                    async for chunk in chunks:
                        yield chunk
            finally:
                await response.aclose()  # early exit / cancel: the server sees the disconnect

    async def _parse(self, response: Any, errors: ErrorMapper) -> AsyncGenerator[Chunk, None]:
        """Chunks from the raw SSE body: the per-token hot path, kept to dict lookups."""
        loads = json.loads
        usage: dict[str, Any] | None = None
        finish: str | None = None
        done = False
        errors.request_id = _request_id(response.headers)
        async for _, data in iter_sse(response.aiter_bytes()):
            if data == _DONE or done:  # read on to the body's end: the connection is reused
                done = True
                continue
            try:
                event = loads(data)
            except ValueError:
                event = None
            if type(event) is not dict:
                raise errors.malformed(repr(data[:200]))
            choices = event.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta")
                if delta:
                    content = delta.get("content")
                    if content:
                        if content.__class__ is str:
                            yield Chunk(content)
                        else:  # a list of text / thinking parts (reasoning models)
                            for chunk in _part_chunks(content):
                                yield chunk
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            elif choices is None and ("message" in event or "error" in event or "detail" in event):
                message, code, kind = _describe(event.get("error", event), "")
                raise errors.error(Failure(None, message, (code, kind)))
            if event.get("usage"):
                usage = event["usage"]
        if finish == "error":
            raise errors.error(Failure(
                None, "Mistral stopped the answer with finish_reason 'error'.", ("error",),
                cls=ServerError,
            ))
        if not done:
            raise errors.cut("'data: [DONE]'")
        if finish is not None:
            finish = _FINISH.get(finish, finish)
        yield Chunk(usage=_usage(usage) if usage else None, finish_reason=finish)

    def _error_table(self) -> ErrorTable:
        return self._parts.errors


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    """Any of Mistral's error bodies (see the module docstring); a 2xx the SDK could not
    take as a stream is a ServerError."""
    raw = getattr(exc, "raw_response", None)
    status = getattr(exc, "status_code", None) or getattr(raw, "status_code", None)
    if status is None and type(exc).__name__ == "HTTPValidationError":
        status = 422  # v1's validation error may carry no response
    headers = getattr(exc, "headers", None) or getattr(raw, "headers", None) or {}
    raw_text = exc.body if isinstance(getattr(exc, "body", None), str) else ""
    try:
        body = json.loads(raw_text) if raw_text else None
    except ValueError:
        body = None
    message, code, kind = _describe(body, raw_text)
    request_id = _request_id(headers)
    if request_id is None and isinstance(body, dict) and body.get("request_id"):
        request_id = str(body["request_id"])
    return Failure(
        status,
        message,
        (code, kind),
        request_id=request_id,
        headers=headers,
        cls=ServerError if status is not None and 200 <= status < 300 else None,
    )


def _millis(seconds: float | None) -> int | None:
    """The SDK's ``timeout_ms``; None (no timeout) stays None."""
    return None if seconds is None else max(1, round(seconds * 1000))


@functools.cache
def _param_names(method: Any) -> frozenset[str]:
    """The generation parameters ``stream_async`` accepts (``config.params`` is checked)."""
    return frozenset(inspect.signature(method).parameters) - _OWN_ARGS - {"model", "messages"}


def _part_chunks(parts: list[Any]) -> list[Chunk]:
    """``[{"type": "thinking", "thinking": [{"type": "text", ...}]}, {"type": "text", ...}]``."""
    chunks: list[Chunk] = []
    for part in parts:
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            chunks.append(Chunk(part["text"]))
        elif kind == "thinking":
            inner = part.get("thinking")
            for piece in [inner] if isinstance(inner, str) else inner or ():
                text = piece if isinstance(piece, str) else piece.get("text")
                if text:
                    chunks.append(Chunk(reasoning=text))
    return chunks


def _describe(body: Any, raw: str) -> tuple[str, str | None, str | None]:
    """(message, code, type) from any of Mistral's error body shapes."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list):  # FastAPI validation: [{"loc": [...], "msg": ...}, ...]
            message = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg')}"
                if isinstance(d, dict) else str(d)
                for d in detail
            )
            return message, None, None
        message = body.get("message") or detail or ""
        code, kind = body.get("code"), body.get("type")
        return (str(message) if message else raw[:500], text(code), text(kind))
    if isinstance(body, str):
        return body, None, None
    return raw[:500], None, None



def _request_id(headers: Any) -> str | None:
    for name in _REQUEST_ID:
        value = headers.get(name)
        if value:
            return str(value)
    return None


def _usage(raw: dict[str, Any]) -> Usage:
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_input_tokens=details.get("cached_tokens") or raw.get("num_cached_tokens") or 0,
    )
