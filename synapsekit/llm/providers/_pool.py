"""Connection pools sized for concurrent streams, for every SDK client synapsekit builds.

A streamed answer holds its HTTP connection for as long as it streams, so a pool caps how
many calls of one LLM object can be in flight at once: the rest wait for a free
connection, in a queue nobody sees. The SDKs' defaults are small for that: httpx allows
100 connections per client (cohere, mistralai, ollama, and the client we give
google-genai), botocore 10. With 1,000 concurrent Cohere streams and 100 connections, 900
calls waited: 30-40 s instead of 3.4 s. Every client is therefore built with a pool of
:data:`MAX_CONNECTIONS` (openai and anthropic already use the same figures by default;
they are passed explicitly so this one constant governs every provider).

A pool that large is cheap in httpx2 (the pydantic fork the openai, anthropic, mistralai
and google-genai SDKs send with) but not in httpx's httpcore 1.0: its pool walks every
connection on each request and release, and for each idle one walks them all again
(O(N^2) per pass). With 1,000 connections that bookkeeping was most of the client's CPU:
1,000 concurrent Cohere streams (10 events 50 ms apart) took 45 s wall, 27 s CPU. Clients
on httpx (cohere, ollama) therefore get :func:`httpx_transport`: :data:`SHARDS` pools of
100 connections each, each request to the least busy one: 13.7 s wall, 6.2 s CPU for the same
run (the raw cohere SDK with one 1,000-connection pool: 9-14 s, 8-10 s).

The figures are read when a client is built (once per event loop per LLM object), so a
process that needs other limits can set them before its first call::

    import synapsekit.llm.providers._pool as pool
    pool.MAX_CONNECTIONS = 5000
"""

from __future__ import annotations

import functools
import math
from types import ModuleType
from typing import Any

__all__ = ["MAX_CONNECTIONS", "MAX_KEEPALIVE", "SHARDS", "httpx_limits", "httpx_transport"]

#: Connections one SDK client may open at once (streams in flight per LLM object and loop).
MAX_CONNECTIONS = 1000
#: Idle connections kept open for reuse after a burst (httpx, httpx2; botocore keeps all).
MAX_KEEPALIVE = 100
#: How many httpcore pools one httpx (not httpx2) client spreads its connections over.
SHARDS = 10


def httpx_limits(http: ModuleType) -> Any:
    """The pool limits for a client of ``http``, the ``httpx`` or ``httpx2`` module an SDK
    sends with (see :func:`synapsekit.llm.providers._common.http_stack`)."""
    return http.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE)


def httpx_transport(http: ModuleType) -> Any | None:
    """A transport for a client of ``http`` that keeps httpcore's per-pool bookkeeping
    small: :data:`SHARDS` pools sharing :data:`MAX_CONNECTIONS`, for the ``httpx`` module
    only (None for httpx2, whose pool is fine at that size: use :func:`httpx_limits`)."""
    if http.__name__ != "httpx" or SHARDS <= 1:
        return None
    limits = http.Limits(
        max_connections=math.ceil(MAX_CONNECTIONS / SHARDS),
        max_keepalive_connections=math.ceil(MAX_KEEPALIVE / SHARDS),
    )
    context = _ssl_context(http)
    return _sharded_class(http)(
        [http.AsyncHTTPTransport(verify=context, limits=limits) for _ in range(SHARDS)]
    )


@functools.cache
def _ssl_context(http: ModuleType) -> Any:
    """One TLS context for every pool of the process: building one loads the CA bundle
    (20-130 ms here), and a client is built per event loop -- ten shards made each
    ``asyncio.run(llm.generate(...))`` on Cohere or Ollama cost 1-1.5 s. httpx's own
    function, so ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` are honoured as httpx does (read
    once, at the first client)."""
    make: Any = getattr(http, "create_ssl_context", None)  # public from httpx 0.28
    if make is None:  # httpx 0.27
        from httpx._config import create_ssl_context as make
    return make()


@functools.cache
def _sharded_class(http: ModuleType) -> Any:
    """The transport class, built on first use (``http`` is imported only by then)."""

    class CountedStream(http.AsyncByteStream):  # type: ignore[misc, name-defined]
        """A response body that frees its pool's slot in the count when closed."""

        def __init__(self, inner: Any, busy: list[int], index: int) -> None:
            self._inner, self._busy, self._index = inner, busy, index
            self._open = True

        def __aiter__(self) -> Any:
            return self._inner.__aiter__()  # the inner body itself: no layer per chunk

        async def aclose(self) -> None:
            if self._open:
                self._open = False
                self._busy[self._index] -= 1
            await self._inner.aclose()

    class ShardedTransport(http.AsyncBaseTransport):  # type: ignore[misc, name-defined]
        """Each request goes to the pool with the fewest responses open (the first on a
        tie): sequential calls keep reusing one kept-alive connection, a burst spreads."""

        def __init__(self, shards: list[Any]) -> None:
            self._shards = shards
            self._busy = [0] * len(shards)

        async def handle_async_request(self, request: Any) -> Any:
            busy = self._busy
            index = busy.index(min(busy))
            busy[index] += 1
            try:
                response = await self._shards[index].handle_async_request(request)
            except BaseException:
                busy[index] -= 1
                raise
            response.stream = CountedStream(response.stream, busy, index)
            return response

        async def aclose(self) -> None:
            for shard in self._shards:
                await shard.aclose()

    return ShardedTransport
