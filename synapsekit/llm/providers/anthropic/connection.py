"""The Anthropic connection: one ``anthropic.AsyncAnthropic`` client per event loop.

Shared by the chat class and anything else that talks to the same account (the call
path builds it once per loop through :class:`~synapsekit.llm.connection.Connection`).
The SDK's own retries are off (synapsekit has one retry policy); the pool size is ours,
on the SDK's default httpx client so its other defaults (proxies) stay; the timeout is
the call's connect limit plus a read backstop (:mod:`synapsekit.llm.deadlines`).
"""

from __future__ import annotations

from typing import Any

from synapsekit.llm.connection import Connection
from synapsekit.llm.providers._common import http_stack

__all__ = ["AnthropicConnection"]


class AnthropicConnection(Connection):
    """An ``anthropic.AsyncAnthropic`` client per loop: our pool size, no SDK retries."""

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.deadlines import sdk_timeouts
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        sdk: Any = self.sdk
        http = http_stack("anthropic._base_client").module
        return sdk.AsyncAnthropic(
            api_key=self.api_key,
            base_url=self.base_url,
            max_retries=0,  # one retry policy: ours
            timeout=sdk_timeouts(self.config, http),  # connect limit + read backstop
            default_headers=dict(self.config.headers) or None,
            http_client=sdk.DefaultAsyncHttpxClient(  # the SDK's defaults, our pool size
                limits=httpx_limits(http)
            ),
        )
