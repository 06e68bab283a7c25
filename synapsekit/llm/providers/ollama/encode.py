"""Canonical messages and an :class:`LLMConfig` -> the keyword arguments of the SDK's
``AsyncClient.chat`` (Ollama's ``/api/chat`` body).

Sampling settings are model ``options`` (``num_predict`` is max_tokens); ``params`` keys
in :data:`TOP_LEVEL_PARAMS` are top-level chat arguments, every other key a model option
(``top_k``, ``seed``, ``num_ctx``...).
"""

from __future__ import annotations

from typing import Any

from synapsekit.llm.config import LLMConfig
from synapsekit.llm.models import RequestRules
from synapsekit.llm.types import Message

__all__ = ["TOP_LEVEL_PARAMS", "request"]

#: ``config.params`` keys that are top-level chat arguments; every other key is a model
#: option (``options``: top_k, seed, num_ctx, ...).
TOP_LEVEL_PARAMS = frozenset({"think", "format", "keep_alive", "logprobs", "top_logprobs"})


def request(messages: list[Message], config: LLMConfig, rules: RequestRules) -> dict[str, Any]:
    """The ``chat`` keyword arguments for one streamed call."""
    options: dict[str, Any] = {"num_predict": config.max_tokens}
    temperature = rules.temperature(config)
    if temperature is not None:
        options["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        options["top_p"] = top_p
    if config.stop:
        options["stop"] = list(config.stop)
    body: dict[str, Any] = {"model": config.model, "messages": messages, "stream": True}
    for key, value in rules.params(config).items():
        if key in TOP_LEVEL_PARAMS:
            body[key] = value
        else:
            options[key] = value
    body["options"] = options
    return body
