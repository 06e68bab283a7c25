"""The connection to Cohere: a ``cohere.AsyncClientV2`` per event loop.

The client runs over our own httpx client (our pool size; the SDK's default has httpx's
100-connection pool), with the SDK's retries off (one retry policy: ours). The endpoint is
``base_url``, else ``CO_API_URL`` / the SDK's default. The embedding backend
(:mod:`synapsekit.rag.embeddings`) shares it.
"""

from __future__ import annotations

from typing import Any

from synapsekit.llm.connection import Connection
from synapsekit.llm.providers._common import http_stack

__all__ = ["CohereConnection"]


class CohereConnection(Connection):
    """A ``cohere.AsyncClientV2`` per loop over our own httpx client (our pool size)."""

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.deadlines import connect_hook, sdk_timeouts, timeouts
        from synapsekit.llm.providers._pool import httpx_limits, httpx_transport

        redact_in_logs(self.api_key)
        extra = {"base_url": self.base_url} if self.base_url else {}  # else CO_API_URL / default
        http = http_stack("cohere.core.http_client").module
        return self.sdk.AsyncClientV2(  # type: ignore[union-attr]
            api_key=self.api_key,
            timeout=timeouts(self.config).read,  # sent per request, as one float
            max_retries=0,  # one retry policy: ours
            # The SDK's default client has httpx's 100-connection pool; closed by __aexit__.
            httpx_client=http.AsyncClient(
                timeout=sdk_timeouts(self.config, http), follow_redirects=True,
                limits=httpx_limits(http), transport=httpx_transport(http),  # see _pool
                event_hooks={"request": [connect_hook(self.config)]},  # the float's connect
            ),
            **extra,
        )

    @staticmethod
    async def close_client(client: Any) -> None:
        await client.__aexit__(None, None, None)  # no close(): the context exit closes httpx
