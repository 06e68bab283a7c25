"""The Gemini connection: a ``google.genai.Client`` per event loop, over our own httpx client.

The client is configured so the SDK adds nothing of its own to a call:

- an ``httpx2``/``httpx`` ``AsyncClient`` of ours is passed in, which keeps the SDK off its
  aiohttp path: there, ``timeout`` is a *total* limit that would cut any stream longer than
  it, and connection errors are retried after a 1-10 s sleep;
- that client's response hook records each response in the current call's :class:`Call` (a
  ContextVar: the request is sent in the caller's context), so a stream left early is closed
  at once; the SDK's nested generators do not pass ``aclose()`` down, and their cyclic
  references would keep the connection open until the garbage collector ran;
- the same hook **takes the body of a 200 stream** for the call (:attr:`Call.body`): the
  SDK is handed an empty body and yields no ``GenerateContentResponse`` at all, and the call
  reads the SSE events itself (:func:`.decode.raw_events`). google-genai has no public raw
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
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import ModuleType
from typing import Any, NamedTuple

from synapsekit.llm.connection import Connection
from synapsekit.llm.providers._common import http_stack

__all__ = ["API_VERSION", "CALL", "SENDER", "Call", "GeminiConnection"]

#: The SDK module whose HTTP library (httpx2, else httpx) our AsyncClient is built from.
SENDER = "google.genai._api_client"

API_VERSION = "v1beta"

#: The path suffix of the one request whose body a call takes (not countTokens, embeddings).
STREAM_METHOD = ":streamGenerateContent"


class Call:
    """One chat call's view of its HTTP responses (set per call in :data:`CALL`)."""

    __slots__ = ("body", "live", "opened", "take")

    def __init__(self, take: bool) -> None:
        #: Whether the hook may take a 200 stream's body (False: the SDK reads it).
        self.take = take
        #: False once the call ended: a later request in the same task (an embedding) is
        #: not this call's, though the ContextVar still names it.
        self.live = True
        #: Every response the call opened (closed when it ends, early or not).
        self.opened: list[Any] = []
        #: The 200 stream's body, taken from the SDK, when it was.
        self.body: Any = None


#: The current chat call (the SDK sends the request in the caller's context).
CALL: ContextVar[Call | None] = ContextVar("synapsekit_gemini_call", default=None)


def response_hook(library: ModuleType) -> Callable[[Any], Awaitable[None]]:
    """The httpx (or httpx2: ``library``) response hook that remembers each response so its
    call can close it, and takes the body of the call's 200 stream, leaving the SDK an
    empty one (see the module docstring). Any other status is the SDK's to read and map."""
    empty = library.ByteStream(b"")  # stateless: one for every response

    async def on_response(response: Any) -> None:
        call = CALL.get()
        if call is None or not call.live:
            return
        call.opened.append(response)
        if (call.take and call.body is None and response.status_code == 200
                and response.request.url.path.endswith(STREAM_METHOD)):
            body = library.Response(
                200, headers=response.headers, stream=response.stream,
                request=response.request, extensions=response.extensions,
            )
            response.stream = empty
            call.body = body
            call.opened.append(body)

    return on_response


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
