"""The Gemini connection: a ``google.genai.Client`` per event loop, over our own httpx client.

The client is configured so the SDK adds nothing of its own to a call:

- an ``httpx2``/``httpx`` ``AsyncClient`` of ours is passed in, which keeps the SDK off its
  aiohttp path: there, ``timeout`` is a *total* limit that would cut any stream longer than
  it, and connection errors are retried after a 1-10 s sleep;
- that client's response hook (:func:`synapsekit.llm.providers._raw_body.response_hook`,
  shared with Ollama) records each response in the current call, so a stream left early is
  closed at once, and **takes the body of the call's 200 stream** (:data:`STREAM_METHOD`):
  the SDK is handed an empty body and yields no ``GenerateContentResponse`` at all, and the
  call reads the SSE events itself (:func:`.decode.events`). google-genai has no public raw
  stream (``should_return_http_response`` is refused for streams), and building its pydantic
  objects per chunk costs about five times a ``json`` parse; this way the SDK still builds,
  authenticates and sends the request and maps every error status, through nothing but
  public names (``HttpOptions.httpx_async_client``, httpx's response hooks and
  ``Response``). If a future SDK stops sending through our client, nothing is taken and
  its objects are decoded as before (``tests/test_gemini_raw.py`` fails loudly either way);
- ``HttpRetryOptions(attempts=1)`` and ``automatic_continuation=False``: one retry policy, ours;
- ``vertexai=False`` so a ``GOOGLE_GENAI_USE_VERTEXAI`` in the environment cannot reroute the
  call; ``api_version`` is pinned to ``v1beta`` (``config.api_version`` overrides), the version
  with system instructions and thinking on every model.

The embedding backend (:class:`~synapsekit.rag.embeddings.GeminiEmbedder`) uses the same
client through ``chat.connection.client()``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from synapsekit.llm.connection import Connection
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._raw_body import response_hook

__all__ = ["API_VERSION", "SENDER", "STREAM_METHOD", "GeminiConnection"]

#: The SDK module whose HTTP library (httpx2, else httpx) our AsyncClient is built from.
SENDER = "google.genai._api_client"

API_VERSION = "v1beta"

#: The path suffix of the one request whose body a call takes (not countTokens, embeddings).
STREAM_METHOD = ":streamGenerateContent"


class _Client(NamedTuple):
    genai: Any  # google.genai.Client
    http: Any  # the httpx2 / httpx AsyncClient we own


class GeminiConnection(Connection):
    """A ``google.genai.Client`` per loop over our own httpx client (our pool size, and a
    response hook that lets a call close what it opened and read its stream's body)."""

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
            event_hooks={
                "request": [connect_hook(self.config)],
                "response": [response_hook(library)],
            },
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

    @staticmethod
    async def close_client(client: _Client) -> None:
        client.genai.close()  # the SDK's own sync transport
        await client.http.aclose()


def _millis(seconds: float | None) -> int | None:
    """google-genai's timeout is in milliseconds; None: no timeout."""
    return None if seconds is None else math.ceil(seconds * 1000)
