"""The connection to Ollama: an ``ollama.AsyncClient`` per event loop.

Local models need no key: the endpoint is ``base_url``, else ``OLLAMA_HOST``, else
``http://localhost:11434``. A key, when given, is sent as a Bearer token (ollama.com).

The httpx client under the SDK (built from the client's documented ``**kwargs``
pass-through) has two response hooks, in this order:

- :func:`_raise_for_status`: the SDK turns an HTTP error into ``ResponseError(text,
  status)`` and drops the response headers, so the hook raises :class:`HTTPStatus` first
  with the status, body and headers: Retry-After and request ids survive;
- :func:`synapsekit.llm.providers._raw_body.response_hook` (shared with Gemini): it
  records each response in the current chat call, so a stream left early is closed at
  once, and **takes the body of the call's 200 stream** (:data:`CHAT_PATH`): the SDK reads
  an empty body and builds no ``ChatResponse``, and the call parses the NDJSON lines itself
  (:func:`.decode.lines`). Only a 200 is ever taken: every error status is raised by the
  first hook, and an ``{"error": ...}`` line inside the 200 is raised as the SDK's own
  ``ResponseError``, so errors map exactly as before.

The embedding backend (:mod:`synapsekit.rag.embeddings`) shares the client (its
``/api/embed`` requests are never taken).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from synapsekit.llm.connection import Connection
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._raw_body import response_hook
from synapsekit.llm.registry import PROVIDERS

__all__ = ["CHAT_PATH", "HTTPStatus", "OllamaConnection"]

#: The path of the one request whose body a chat call takes (not ``/api/embed``).
CHAT_PATH = "/api/chat"


class HTTPStatus(Exception):
    """An HTTP error status, with what the SDK's ResponseError would drop (the headers)."""

    def __init__(self, status: int, text: str, headers: Mapping[str, str]) -> None:
        super().__init__(status)
        self.status = status
        self.text = text
        self.headers = headers


async def _raise_for_status(response: Any) -> None:
    """httpx response hook: raise :class:`HTTPStatus` before the SDK sees an error."""
    if response.status_code >= 400:
        await response.aread()
        raise HTTPStatus(response.status_code, response.text, response.headers)


class OllamaConnection(Connection):
    """An ``ollama.AsyncClient`` per loop: the host, an optional bearer key, our pool size,
    and the response hooks (see the module docstring)."""

    @property
    def base_url(self) -> str:
        default = PROVIDERS[self.provider].base_url or "http://localhost:11434"
        return self.config.base_url or os.environ.get("OLLAMA_HOST") or default

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.deadlines import sdk_timeouts
        from synapsekit.llm.providers._pool import httpx_limits, httpx_transport

        redact_in_logs(self.api_key)
        headers = dict(self.config.headers)
        if self.api_key and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {self.api_key}"
        http = http_stack("ollama._client").module
        return self.sdk.AsyncClient(  # type: ignore[union-attr]
            host=self.base_url,
            timeout=sdk_timeouts(self.config, http),  # connect limit + read backstop
            headers=headers or None,
            # an error status is raised before the raw-body hook sees the response
            event_hooks={"response": [_raise_for_status, response_hook(http)]},
            limits=httpx_limits(http),  # passed on to httpx
            transport=httpx_transport(http),  # httpx (not httpx2): pools of 100, see _pool
        )

    @staticmethod
    async def close_client(client: Any) -> None:
        """ollama < 0.6 has no ``AsyncClient.close()``: close the httpx client under it, or
        its pooled sockets stay open until the process ends."""
        if hasattr(client, "close"):
            await Connection.close_client(client)
        else:
            await client._client.aclose()
