"""The gateway's shared value types: what both wires parse into, what auth returns, what
the ledger stores, and the one error every layer raises.

They live apart from :mod:`synapsekit.gateway.core` so the wires, the key store, the
limiter and the ledger can import them without importing each other (or starlette).
No type here ever holds a secret: :class:`KeyInfo` carries the key's public id only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synapsekit.llm.types import Message

__all__ = ["GatewayError", "GatewayRequest", "KeyInfo", "LedgerRow"]


@dataclass(frozen=True)
class KeyInfo:
    """One virtual key as the key store returns it (never the secret or its hash)."""

    id: str  # public id, e.g. "key_3f9a1c2b": what logs, the ledger and metrics carry
    name: str | None = None
    budget_usd: float | None = None
    window: str | None = None  # "day" | "month" | None (lifetime)
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    models: tuple[str, ...] | None = None  # allow-list of [[models]] names; None = all
    master: bool = False  # the master key: admin endpoints, all spend, /ui


@dataclass
class GatewayRequest:
    """A chat request, wire-neutral: what the OpenAI and Anthropic wires both parse into."""

    api: str  # "openai" | "anthropic" | "embeddings" | "count_tokens"
    model: str  # the name the client asked for (a [[models]] name)
    messages: list[Message]
    overrides: dict[str, Any]  # call-path overrides (temperature, max_tokens, tools, ...)
    stream: bool
    include_usage: bool = False  # OpenAI stream_options.include_usage
    request_id: str = ""  # set by core: "req_" + 24 hex


@dataclass
class LedgerRow:
    """One request, recorded exactly once whatever happened (ok, error, client gone)."""

    ts: float  # unix seconds at request start
    request_id: str
    key_id: str
    api: str
    model: str  # the name asked for
    member: str | None  # "provider:model" that answered (None if none did)
    stream: bool
    status: int  # HTTP status sent: 200 for a completed stream, 499 for an abandoned one
    error: str | None  # error type name (e.g. "RateLimitError"), None if ok
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    complete: bool = True  # usage complete (False for interrupted/abandoned streams)


class GatewayError(Exception):
    """A refusal or an upstream failure, said once; each wire renders it in its API's own
    error body (OpenAI ``{"error": {...}}``, Anthropic ``{"type": "error", ...}``).

    ``code`` is the OpenAI-style code (``invalid_api_key``, ``model_not_found``,
    ``rate_limit_exceeded``, ``insufficient_quota``, ...); the Anthropic wire maps the
    status to its own type names. ``retry_after`` (seconds) becomes ``Retry-After``.
    The message never contains a secret: callers build it from public ids only.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.retry_after = retry_after
        #: OpenAI's error ``type``; derived from the status unless given.
        self.type = type or _openai_type(status)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"GatewayError({self.status}, {self.code!r}, {self.message!r}, param={self.param!r})"


def _openai_type(status: int) -> str:
    """OpenAI's error ``type`` for a status (what its API sends in ``error.type``)."""
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"
