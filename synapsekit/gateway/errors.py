"""Upstream failures mapped back to clients: :func:`status_for`, the one table.

Why one function: the OpenAI wire, the Anthropic wire and embeddings all meet the same
synapsekit errors; deciding status and code once keeps them consistent, and each wire only
renders the resulting :class:`~synapsekit.gateway.types.GatewayError` in its API's body.

The choices, by type (the library's hierarchy, never a message's words):

* upstream 401/403 (the gateway's own provider key was refused) -> 502 ``upstream_auth``:
  the client's key was fine, the gateway is misconfigured;
* rate limit -> 429 with the upstream's ``Retry-After``; quota / budget exhausted ->
  429 ``insufficient_quota`` (what OpenAI itself sends when credit runs out);
* invalid request, context length, content filter, a request no member can take, a
  request setting the library refuses -> 400, the message kept (it tells the client what
  to fix);
* not found -> 404; timeout -> 504; connection, server, interrupted -> 502;
* every member failed -> the mapping of the last failure; every member skipped (circuits
  open) -> 503 with the soonest retry.

Messages of 5xx mappings are the gateway's own words: an upstream's text there could name
internals the client should not see. No message carries a key (the library redacts them).
"""

from __future__ import annotations

from synapsekit.errors import (
    AllMembersFailedError,
    AuthenticationError,
    BudgetExceededError,
    ConfigError,
    ConnectionError,
    ContentFilterError,
    ContextLengthError,
    InvalidInputError,
    InvalidRequestError,
    LLMError,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
    StreamInterruptedError,
    TimeoutError,
)
from synapsekit.gateway.types import GatewayError

__all__ = ["status_for"]


def status_for(exc: BaseException) -> GatewayError:
    """The :class:`GatewayError` a client gets for ``exc`` (see the module docstring)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, AllMembersFailedError):
        if exc.__cause__ is not None and exc.failures:
            mapped = status_for(exc.__cause__)
            if mapped.retry_after is None and exc.retry_after is not None:
                mapped.retry_after = exc.retry_after
            return mapped
        return GatewayError(
            503, "no_member_available",
            "No upstream model is available right now; try again later.",
            retry_after=exc.retry_after, type="server_error",
        )
    if isinstance(exc, BudgetExceededError):
        return GatewayError(
            429, "insufficient_quota",
            "This key's budget is exhausted: the request was not sent.",
            type="insufficient_quota",
        )
    if isinstance(exc, QuotaExceededError):
        return GatewayError(
            429, "insufficient_quota", "The upstream provider's quota is exhausted.",
            type="insufficient_quota",
        )
    if isinstance(exc, RateLimitError):
        return GatewayError(
            429, "rate_limit_exceeded", "The upstream provider is rate limiting requests.",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, AuthenticationError):
        return GatewayError(
            502, "upstream_auth",
            "The gateway's credentials were refused by the upstream provider.",
            type="server_error",
        )
    if isinstance(exc, ContextLengthError):
        return GatewayError(400, "context_length_exceeded", _said(exc), param="messages")
    if isinstance(exc, ContentFilterError):
        return GatewayError(400, "content_filter", _said(exc))
    if isinstance(exc, (InvalidRequestError, InvalidInputError, ConfigError)):
        # (a ConfigError during a request comes from its own settings: tool_choice naming
        # no tool, a value out of range; the gateway's config was checked at start)
        return GatewayError(400, "invalid_request", _said(exc))
    if isinstance(exc, NotFoundError):
        return GatewayError(404, "model_not_found", _said(exc), param="model")
    if isinstance(exc, TimeoutError):
        return GatewayError(504, "upstream_timeout", "The upstream provider timed out.",
                            type="server_error")
    if isinstance(exc, StreamInterruptedError):
        return GatewayError(502, "upstream_interrupted",
                            "The upstream stream failed before it finished.",
                            type="server_error")
    if isinstance(exc, (ConnectionError, LLMError)):
        return GatewayError(502, "upstream_error", "The upstream provider failed to answer.",
                            type="server_error")
    return GatewayError(500, "internal_error", "The gateway failed to handle the request.",
                        type="server_error")


def _said(exc: BaseException) -> str:
    """The library's message without its "(provider=..., status=...)" suffix."""
    return exc.message if isinstance(exc, LLMError) else str(exc)
