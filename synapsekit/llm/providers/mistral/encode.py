"""Messages and settings -> the keyword arguments of the SDK's ``chat.stream_async``.

Pure functions of (messages, config, rules) but for the SDK method's signature, which says
which ``config.params`` keys are accepted (others are a ConfigError before any request).
``temperature=None`` is the SDK's explicit null, so an unset value is left out, not sent.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from synapsekit.errors import ConfigError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.models import rules_for
from synapsekit.llm.types import Message

from .connection import millis

__all__ = ["request"]

#: stream_async arguments synapsekit sets itself; never taken from ``config.params``.
_OWN_ARGS = frozenset({"self", "stream", "retries", "server_url", "timeout_ms", "http_headers"})


def request(
    provider: str, client: Any, messages: list[Message], config: LLMConfig
) -> dict[str, Any]:
    """The ``stream_async`` keyword arguments for one call."""
    rules = rules_for(provider, config)
    body: dict[str, Any] = {
        "model": config.model,
        "messages": messages,
        "max_tokens": config.max_tokens,
        "timeout_ms": millis(config.timeout),
    }
    temperature = rules.temperature(config)
    if temperature is not None:  # None is the SDK's explicit null: leave it UNSET
        body["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        body["top_p"] = top_p
    if config.stop:
        body["stop"] = list(config.stop)
    if config.headers:
        body["http_headers"] = dict(config.headers)
    params = rules.params(config)
    if params:
        allowed = param_names(type(client.chat).stream_async)
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ConfigError(
                f"params: {', '.join(unknown)} not accepted by Mistral chat; "
                f"valid: {', '.join(sorted(allowed))}"
            )
        body.update(params)
    return body


@functools.cache
def param_names(method: Any) -> frozenset[str]:
    """The generation parameters ``stream_async`` accepts (``config.params`` is checked)."""
    return frozenset(inspect.signature(method).parameters) - _OWN_ARGS - {"model", "messages"}
