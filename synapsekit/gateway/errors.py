"""Upstream failures mapped back to clients: :func:`status_for`, the one table.

Why one function: the OpenAI wire, the Anthropic wire and embeddings all meet the same
synapsekit errors; deciding status and code once keeps them consistent, and each wire only
renders the resulting :class:`~synapsekit.gateway.types.GatewayError` in its API's body.

The choices, by type (the library's hierarchy, never a message's words):

* upstream 401/403 (the gateway's own provider key was refused) -> 502 ``upstream_auth``:
  the client's key was fine, the gateway is misconfigured;
* rate limit -> 429 with the upstream's ``Retry-After``; quota / budget exhausted ->
  429 ``insufficient_quota`` (what OpenAI itself sends when credit runs out); under a
  budget, a model with no known price -> 403 ``model_not_priced``; a budget whose store
  (Redis, the SQLite file) cannot be used -> 503 ``budget_unavailable`` (budgets fail
  closed: nothing is sent);
* invalid request, context length, content filter, a request no member can take, a
  request setting the library refuses -> 400, the message kept (it tells the client what
  to fix);
* not found -> 404; timeout -> 504; connection, server, interrupted -> 502; an
  upstream that says it is overloaded (Anthropic's 529 / ``overloaded_error``) -> 503
  ``upstream_overloaded`` with its ``Retry-After`` (the Anthropic wire sends it as 529);
* every member failed -> the mapping of the last failure; every member skipped (circuits
  open) -> 503 with the soonest retry.

Messages of 5xx mappings are the gateway's own words: an upstream's text there could name
internals the client should not see. No message carries a key (the library redacts them).
"""

from __future__ import annotations

from synapsekit.errors import (
    AllMembersFailedError,
    AuthenticationError,
    BudgetError,
    BudgetExceededError,
    ConfigError,
    ContentFilterError,
    ContextLengthError,
    InvalidInputError,
    InvalidRequestError,
    LLMError,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    TimeoutError,
    UnpricedModelError,
)
from synapsekit.gateway.types import GatewayError

__all__ = ["status_for"]

#: In order, the first match wins: (type, status, code, OpenAI error type, param, message).
#: A message of None keeps the library's (it tells the client what to fix); the others are
#: the gateway's own words.
_TABLE: tuple[tuple[type[BaseException], int, str, str, str | None, str | None], ...] = (
    (BudgetExceededError, 429, "insufficient_quota", "insufficient_quota", None,
     "This key's budget is exhausted: the request was not sent."),
    (UnpricedModelError, 403, "model_not_priced", "permission_error", "model",
     "This key has a budget and the model has no known price (its cost cannot be "
     "bounded): the request was not sent."),
    (BudgetError, 503, "budget_unavailable", "server_error", None,
     "The gateway cannot check this key's budget right now: the request was not sent."),
    (QuotaExceededError, 429, "insufficient_quota", "insufficient_quota", None,
     "The upstream provider's quota is exhausted."),
    (RateLimitError, 429, "rate_limit_exceeded", "rate_limit_error", None,
     "The upstream provider is rate limiting requests."),
    (AuthenticationError, 502, "upstream_auth", "server_error", None,
     "The gateway's credentials were refused by the upstream provider."),
    (ContextLengthError, 400, "context_length_exceeded", "invalid_request_error", "messages",
     None),
    (ContentFilterError, 400, "content_filter", "invalid_request_error", None, None),
    # (a ConfigError during a request comes from its own settings: tool_choice naming no
    # tool, a value out of range; the gateway's own config was checked at start)
    (InvalidRequestError, 400, "invalid_request", "invalid_request_error", None, None),
    (InvalidInputError, 400, "invalid_request", "invalid_request_error", None, None),
    (ConfigError, 400, "invalid_request", "invalid_request_error", None, None),
    (NotFoundError, 404, "model_not_found", "not_found_error", "model", None),
    (TimeoutError, 504, "upstream_timeout", "server_error", None,
     "The upstream provider timed out."),
    (StreamInterruptedError, 502, "upstream_interrupted", "server_error", None,
     "The upstream stream failed before it finished."),
    (LLMError, 502, "upstream_error", "server_error", None,
     "The upstream provider failed to answer."),
)


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
    if isinstance(exc, ServerError) and (
        exc.status_code == 529 or exc.code == "overloaded_error"
    ):
        return GatewayError(
            503, "upstream_overloaded", "The upstream provider is overloaded; try again later.",
            retry_after=exc.retry_after, type="server_error",
        )
    for kind, status, code, type_, param, message in _TABLE:
        if isinstance(exc, kind):
            return GatewayError(
                status, code, _said(exc) if message is None else message, param=param,
                retry_after=exc.retry_after if isinstance(exc, RateLimitError) else None,
                type=type_,
            )
    return GatewayError(500, "internal_error", "The gateway failed to handle the request.",
                        type="server_error")


def _said(exc: BaseException) -> str:
    """The library's message without its "(provider=..., status=...)" suffix."""
    return exc.message if isinstance(exc, LLMError) else str(exc)
