"""The gateway: an OpenAI- and Anthropic-compatible HTTP server over the Router
(``synapsekit serve --config gateway.toml``).

It owns no LLM logic: it translates wire formats to the call path (Router + Budget +
limiter) and back, keeps one ledger row per request, and refuses what a key may not do.
Importing this package does not import starlette or uvicorn; :mod:`.app` and
:mod:`.server` do (the ``gateway`` extra).
"""

from __future__ import annotations

from synapsekit.gateway.types import GatewayError, GatewayRequest, KeyInfo, LedgerRow

__all__ = ["GatewayError", "GatewayRequest", "KeyInfo", "LedgerRow"]
