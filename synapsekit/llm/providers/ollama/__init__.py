"""Ollama's native chat API (``POST /api/chat``, NDJSON), over the official ``ollama`` SDK.

Local models need no key: the endpoint is ``base_url``, else ``OLLAMA_HOST``, else
``http://localhost:11434``. A key, when given, is sent as a Bearer token (ollama.com).

The SDK sends the request and parses each NDJSON line into a pydantic ``ChatResponse``;
it offers no public access to the raw lines (only its private httpx client), so those
objects are used as they come and the per-line work here is a few attribute reads.
The SDK turns an HTTP error into ``ResponseError(text, status)`` and drops the response
headers, so an httpx response hook (the client's documented ``**kwargs`` pass-through)
raises first with the status, body and headers: Retry-After and request ids survive.

Wire quirks handled (tests/wire/ollama): usage only on the ``done: true`` line
(``prompt_eval_count`` in, ``eval_count`` out); ``done_reason`` ``stop``/``length``;
``message.thinking`` kept apart from the answer; an ``{"error": ...}`` line inside a 200
stream raised as a typed error; a body that ends without ``done: true`` is a broken
connection; a 404 for a model that is not pulled says how to pull it; a refused
connection says Ollama is not running at that address.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from synapsekit.errors import NotFoundError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.connection import Connection
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure
from synapsekit.llm.registry import PROVIDERS
from synapsekit.llm.types import Chunk, Message, Usage

__all__ = ["OllamaLLM"]

#: ``config.params`` keys that are top-level chat arguments; every other key is a model
#: option (``options``: top_k, seed, num_ctx, ...).
TOP_LEVEL_PARAMS = frozenset({"think", "format", "keep_alive", "logprobs", "top_logprobs"})


class _HTTPStatus(Exception):
    """An HTTP error status, with what the SDK's ResponseError would drop (the headers)."""

    def __init__(self, status: int, text: str, headers: Mapping[str, str]) -> None:
        super().__init__(status)
        self.status = status
        self.text = text
        self.headers = headers


async def _raise_for_status(response: Any) -> None:
    """httpx response hook: raise :class:`_HTTPStatus` before the SDK sees an error."""
    if response.status_code >= 400:
        await response.aread()
        raise _HTTPStatus(response.status_code, response.text, response.headers)


class OllamaConnection(Connection):
    """An ``ollama.AsyncClient`` per loop: the host, an optional bearer key, our pool size."""

    @property
    def base_url(self) -> str:
        default = PROVIDERS[self.provider].base_url or "http://localhost:11434"
        return self.config.base_url or os.environ.get("OLLAMA_HOST") or default

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.providers._common import http_stack
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        headers = dict(self.config.headers)
        if self.api_key and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {self.api_key}"
        return self.sdk.AsyncClient(  # type: ignore[union-attr]
            host=self.base_url,
            timeout=self.config.timeout,
            headers=headers or None,
            event_hooks={"response": [_raise_for_status]},
            limits=httpx_limits(http_stack("ollama._client").module),  # passed on to httpx
        )

    async def close_client(self, client: Any) -> None:
        """ollama < 0.6 has no ``AsyncClient.close()``: close the httpx client under it, or
        its pooled sockets stay open until the process ends."""
        if hasattr(client, "close"):
            await super().close_client(client)
        else:
            await client._client.aclose()


class OllamaLLM(BaseLLM):
    """Ollama ``/api/chat``, streamed; one SDK ``ChatResponse`` per NDJSON line."""

    provider: ClassVar[str] = "ollama"
    connection_class = OllamaConnection

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        rules = rules_for(self.provider, config)
        options: dict[str, Any] = {"num_predict": config.max_tokens}
        temperature = rules.temperature(config)
        if temperature is not None:
            options["temperature"] = temperature
        top_p = rules.top_p(config)
        if top_p is not None:
            options["top_p"] = top_p
        if config.stop:
            options["stop"] = list(config.stop)
        request: dict[str, Any] = {"model": config.model, "messages": messages, "stream": True}
        for key, value in rules.params(config).items():
            if key in TOP_LEVEL_PARAMS:
                request[key] = value
            else:
                options[key] = value
        request["options"] = options
        return request

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        final: Any = None
        with self._map_errors(config) as errors:
            parts = await (await self._client()).chat(**self._request(messages, config))
            try:
                async for part in parts:  # read to the end: the connection is then reused
                    message = part.message
                    if message.thinking:
                        yield Chunk(reasoning=message.thinking)
                    if message.content:
                        yield Chunk(message.content)
                    if part.done:
                        final = part
            finally:
                await parts.aclose()  # early exit / cancel: closes the HTTP response
        if final is None:
            raise errors.cut("'done' line")
        yield Chunk(
            usage=Usage(
                input_tokens=final.prompt_eval_count or 0,
                output_tokens=final.eval_count or 0,
                complete=final.eval_count is not None,
            ),
            finish_reason=final.done_reason or "stop",
        )

    def _error_table(self) -> ErrorTable:
        return _error_table(self._sdk)


@functools.cache
def _error_table(sdk: Any) -> ErrorTable:
    """The ollama SDK's exceptions. Its ``ResponseError`` drops the headers, so an HTTP
    error status is raised first by our response hook (:class:`_HTTPStatus`); a
    ``ResponseError`` is then an ``{"error": ...}`` line inside a 200 (status -1). A refused
    connection is a builtins ConnectionError raised by the SDK itself."""
    import pydantic

    stack = http_stack("ollama._client")
    return ErrorTable(
        name="Ollama",
        status=(_HTTPStatus, sdk.ResponseError),
        read=_read_status,
        timeouts=stack.timeouts,
        transport=(*stack.transport, builtins.ConnectionError),
        malformed=(json.JSONDecodeError, pydantic.ValidationError),
        packages=("ollama", "pydantic", "pydantic_core", *stack.packages),
        hint="Is Ollama running there? Start it with `ollama serve`, or point base_url / "
        "OLLAMA_HOST at the server.",
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    if isinstance(exc, _HTTPStatus):
        status: int | None = exc.status
        message = _error_text(exc.text)
        headers: Mapping[str, str] = exc.headers
    else:
        status = exc.status_code if exc.status_code > 0 else None  # -1: a line in a 200
        message, headers = str(exc.error), {}
    lowered = message.lower()
    cls = None
    if "not found" in lowered and "model" in lowered:  # "model "x" not found, try pulling"
        cls = NotFoundError
        message = (
            f"Model {errors.model!r} is not on the Ollama server at {errors.endpoint} "
            f"({message}). Download it with: ollama pull {errors.model}"
        )
    elif status == 404:
        message = (
            f"{message} -- is {errors.endpoint} an Ollama server? base_url is the server "
            "root, e.g. http://localhost:11434"
        )
    return Failure(
        status,
        message or f"Ollama answered HTTP {status}.",
        request_id=headers.get("x-request-id"),
        headers=headers,
        cls=cls,
    )


def _error_text(text: str) -> str:
    """``{"error": "..."}`` (Ollama's one error shape) -> the message; else the text itself."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return text.strip()[:500]
