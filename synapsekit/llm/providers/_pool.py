"""Connection pools sized for concurrent streams, for every SDK client synapsekit builds.

A streamed answer holds its HTTP connection for as long as it streams, so a pool caps how
many calls of one LLM object can be in flight at once: the rest wait for a free
connection, in a queue nobody sees. The SDKs' defaults are small for that: httpx allows
100 connections per client (cohere, mistralai, ollama, and the client we give
google-genai), botocore 10. With 1,000 concurrent Cohere streams and 100 connections, 900
calls waited: 30-40 s instead of 3.4 s. Every client is therefore built with a pool of
:data:`MAX_CONNECTIONS` (openai and anthropic already use the same figures by default;
they are passed explicitly so this one constant governs every provider).

The figures are read when a client is built (once per event loop per LLM object), so a
process that needs other limits can set them before its first call::

    import synapsekit.llm.providers._pool as pool
    pool.MAX_CONNECTIONS = 5000
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["MAX_CONNECTIONS", "MAX_KEEPALIVE", "httpx_limits"]

#: Connections one SDK client may open at once (streams in flight per LLM object and loop).
MAX_CONNECTIONS = 1000
#: Idle connections kept open for reuse after a burst (httpx, httpx2; botocore keeps all).
MAX_KEEPALIVE = 100


def httpx_limits(http: ModuleType) -> Any:
    """The pool limits for a client of ``http``, the ``httpx`` or ``httpx2`` module an SDK
    sends with (see :func:`synapsekit.llm.providers._common.http_stack`)."""
    return http.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE)
