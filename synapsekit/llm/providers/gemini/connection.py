"""The Gemini connection: a ``google.genai.Client`` per event loop, over our own httpx client.

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

The embedding backend (:class:`~synapsekit.rag.embeddings.GeminiEmbedder`) uses the same
client through ``chat.connection.client()``.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import Any, NamedTuple

from synapsekit.llm.connection import Connection
from synapsekit.llm.providers._common import http_stack

__all__ = ["API_VERSION", "OPENED", "SENDER", "GeminiConnection"]

#: The SDK module whose HTTP library (httpx2, else httpx) our AsyncClient is built from.
SENDER = "google.genai._api_client"

API_VERSION = "v1beta"

#: The HTTP responses the current call opened (set per call; the SDK sends in our context).
OPENED: ContextVar[list[Any] | None] = ContextVar("synapsekit_gemini_opened", default=None)


async def _record_response(response: Any) -> None:
    """httpx response hook: remember the response so its call can close it."""
    opened = OPENED.get()
    if opened is not None:
        opened.append(response)


class _Client(NamedTuple):
    genai: Any  # google.genai.Client
    http: Any  # the httpx2 / httpx AsyncClient we own


class GeminiConnection(Connection):
    """A ``google.genai.Client`` per loop over our own httpx client (our pool size, and a
    response hook that lets a call close what it opened)."""

    def build(self) -> _Client:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.deadlines import connect_hook, sdk_timeouts, timeouts
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        sdk: Any = self.sdk
        library = http_stack(SENDER).module
        http = library.AsyncClient(
            timeout=sdk_timeouts(self.config, library),
            # the SDK sends one float per request: the connect limit is set by the hook
            event_hooks={"request": [connect_hook(self.config)], "response": [_record_response]},
            limits=httpx_limits(library),  # httpx's default pool is 100 connections
        )
        options = sdk.types.HttpOptions(
            base_url=self.base_url,
            api_version=self.config.api_version or API_VERSION,
            headers=dict(self.config.headers) or None,
            timeout=_millis(timeouts(self.config).read),
            retry_options=sdk.types.HttpRetryOptions(attempts=1),  # one retry policy: ours
            httpx_async_client=http,
        )
        client = sdk.Client(api_key=self.api_key, vertexai=False, http_options=options)
        return _Client(client, http)

    async def close_client(self, client: _Client) -> None:
        client.genai.close()  # the SDK's own sync transport
        await client.http.aclose()


def _millis(seconds: float | None) -> int | None:
    """google-genai's timeout is in milliseconds; None: no timeout."""
    return None if seconds is None else math.ceil(seconds * 1000)
