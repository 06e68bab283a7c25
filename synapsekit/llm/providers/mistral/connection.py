"""The connection to Mistral: one ``mistralai.Mistral`` client per event loop, over our own
httpx client (our pool size, no SDK retries); shared by chat and the embedding backend.

SDK layouts: v2+ has ``mistralai.client.Mistral`` (over ``httpx2``), v1 ``mistralai.Mistral``
(over ``httpx``); both are found at run time (:func:`sdk_root`). ``base_url`` may be given
with or without the ``/v1`` suffix: the SDK wants the server root.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any

from synapsekit.llm.connection import Connection

__all__ = ["DEFAULT_URL", "MistralConnection", "millis", "sdk_root"]

DEFAULT_URL = "https://api.mistral.ai"


@functools.cache
def sdk_root(sdk: ModuleType) -> ModuleType:
    """The module holding ``Mistral``, ``errors`` and ``basesdk``: ``mistralai.client``
    (v2+) or ``mistralai`` itself (v1)."""
    try:
        return importlib.import_module(f"{sdk.__name__}.client")  # v2+
    except ImportError:
        return sdk  # v1


def millis(seconds: float | None) -> int | None:
    """The SDK's ``timeout_ms``; None (no timeout) stays None."""
    return None if seconds is None else max(1, round(seconds * 1000))


class MistralConnection(Connection):
    """A ``mistralai.Mistral`` client per loop over our own httpx client (our pool size,
    no SDK retries)."""

    @property
    def base_url(self) -> str:
        return self.config.base_url or DEFAULT_URL

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.deadlines import connect_hook, sdk_timeouts, timeouts
        from synapsekit.llm.providers._common import http_stack
        from synapsekit.llm.providers._pool import httpx_limits

        assert self.sdk is not None
        redact_in_logs(self.api_key)
        server = self.base_url.rstrip("/")
        if server.endswith("/v1"):
            server = server[:-3]
        client_class = sdk_root(self.sdk).Mistral
        http = http_stack(client_class.__module__).module  # httpx2 (v2+), httpx (v1)
        return client_class(
            api_key=self.api_key,
            server_url=server,
            retry_config=None,  # null: no SDK retries; one retry policy, ours
            timeout_ms=millis(timeouts(self.config).read),  # per request, as one float
            # The SDK's default async client has httpx's 100-connection pool.
            async_client=http.AsyncClient(
                timeout=sdk_timeouts(self.config, http), follow_redirects=True,
                limits=httpx_limits(http),
                event_hooks={"request": [connect_hook(self.config)]},  # the float's connect
            ),
        )

    @staticmethod
    async def close_client(client: Any) -> None:
        # Our async client (see build): the SDK does not close a client it was given.
        http = getattr(client.sdk_configuration, "async_client", None)
        await client.__aexit__(None, None, None)  # the SDK has no close(): its httpx clients
        client.__exit__(None, None, None)
        if http is not None:
            await http.aclose()
