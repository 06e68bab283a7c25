"""Canonical messages and an :class:`LLMConfig` -> the keyword arguments of the SDK's
``chat_stream`` (Cohere's v2 chat body).

- ``stop`` goes out as ``stop_sequences``, ``top_p`` as ``p``; ``params`` are merged into
  the body as-is (``request_options.additional_body_parameters``: ``seed``, ``k``...);
  ``headers`` through ``request_options.additional_headers``; retries off per request too.
"""

from __future__ import annotations

from typing import Any

from synapsekit.llm.config import LLMConfig
from synapsekit.llm.models import RequestRules
from synapsekit.llm.types import Message

__all__ = ["request"]


def request(messages: list[Message], config: LLMConfig, rules: RequestRules) -> dict[str, Any]:
    """The ``chat_stream`` keyword arguments for one call."""
    options: dict[str, Any] = {"max_retries": 0, "timeout": config.timeout}
    if config.headers:
        options["additional_headers"] = dict(config.headers)
    if config.params:
        options["additional_body_parameters"] = dict(rules.params(config))
    body: dict[str, Any] = {
        "model": config.model,
        "messages": [dict(m) for m in messages],
        "max_tokens": config.max_tokens,
        "request_options": options,
    }
    temperature = rules.temperature(config)
    if temperature is not None:  # None would go out as null: leave the argument out
        body["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:  # Cohere's v2 chat calls it p
        body["p"] = top_p
    if config.stop:
        body["stop_sequences"] = list(config.stop)
    return body
