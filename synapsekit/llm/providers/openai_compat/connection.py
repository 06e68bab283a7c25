"""How the OpenAI-protocol classes reach their endpoint: an ``openai`` SDK client per loop.

:class:`OpenAIConnection` serves OpenAI and the seven bearer-token vendors (the registry
row gives the URL and the key variables); :class:`AzureConnection` is Azure OpenAI's
resource endpoint, ``api-key`` header and ``api-version``. The embedding backends of
:mod:`synapsekit.rag.embeddings` use the same connection (``chat.connection.client()``).
Both build the client with our pool size, no SDK retries (one retry policy: ours) and
the call's connect limit plus a read backstop (synapsekit enforces the stream deadlines
itself: :mod:`synapsekit.llm.deadlines`).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from synapsekit.llm.connection import Connection
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.registry import PROVIDERS

__all__ = ["NO_KEY", "AzureConnection", "OpenAIConnection"]

#: The key sent to an OpenAI-compatible server that needs none (the SDK refuses no key;
#: llama.cpp's docs use the same placeholder). Never sent to a vendor's own endpoint.
NO_KEY = "sk-no-key-required"


class OpenAIConnection(Connection):
    """An ``openai.AsyncOpenAI`` client per loop: our pool size, no SDK retries."""

    def keyless(self) -> bool:
        """No key is needed at an endpoint other than the vendor's own (a local vLLM,
        llama.cpp or LM Studio server): ``base_url`` or the vendor's URL variable set."""
        default = PROVIDERS[self.provider].base_url
        url = self.base_url
        return url is not None and url.rstrip("/") != (default or "").rstrip("/")

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.deadlines import sdk_timeouts
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        sdk: Any = self.sdk
        http = http_stack("openai._base_client").module
        return sdk.AsyncOpenAI(
            api_key=self.api_key or NO_KEY,
            base_url=self.base_url,
            max_retries=0,  # one retry policy: ours
            timeout=sdk_timeouts(self.config, http),  # connect limit + read backstop
            default_headers=dict(self.config.headers) or None,
            http_client=sdk.DefaultAsyncHttpxClient(  # the SDK's defaults, our pool size
                limits=httpx_limits(http)
            ),
        )


class AzureConnection(OpenAIConnection):
    """Azure OpenAI: the resource endpoint, the ``api-key`` header, an ``api-version``.

    The endpoint is ``base_url`` or ``AZURE_OPENAI_ENDPOINT``; the API version is
    ``api_version`` or ``OPENAI_API_VERSION``, else :data:`DEFAULT_API_VERSION`.
    """

    DEFAULT_API_VERSION: ClassVar[str] = "2024-10-21"

    @property
    def base_url(self) -> str | None:
        return self.config.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")

    def keyless(self) -> bool:
        return False  # every Azure resource needs its key

    @property
    def api_version(self) -> str:
        return (
            self.config.api_version
            or os.environ.get("OPENAI_API_VERSION")
            or self.DEFAULT_API_VERSION
        )

    def build(self) -> Any:
        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.deadlines import sdk_timeouts
        from synapsekit.llm.providers._pool import httpx_limits

        redact_in_logs(self.api_key)
        sdk: Any = self.sdk
        http = http_stack("openai._base_client").module
        return sdk.AsyncAzureOpenAI(
            api_key=self.api_key,
            azure_endpoint=self.base_url,
            api_version=self.api_version,
            max_retries=0,
            timeout=sdk_timeouts(self.config, http),  # connect limit + read backstop
            default_headers=dict(self.config.headers) or None,
            http_client=sdk.DefaultAsyncHttpxClient(  # the SDK's defaults, our pool size
                limits=httpx_limits(http)
            ),
        )
