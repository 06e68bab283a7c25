"""Canonical messages and an :class:`LLMConfig` -> the chat-completions request body.

What the model accepts (output-length field, sampling) is its row in ``models.json``
(:func:`~synapsekit.llm.models.rules_for`): no ``if`` on model names here.
"""

from __future__ import annotations

from typing import Any

from synapsekit.llm.config import LLMConfig
from synapsekit.llm.models import RequestRules
from synapsekit.llm.types import Message

__all__ = ["request"]


def request(
    messages: list[Message], config: LLMConfig, rules: RequestRules, *, usage_option: bool
) -> dict[str, Any]:
    """The streamed request body. ``usage_option``: ask ``stream_options.include_usage``."""
    body: dict[str, Any] = {
        "model": config.model,
        "messages": messages,
        "stream": True,
        rules.max_tokens_field: config.max_tokens,
    }
    temperature = rules.temperature(config)
    if temperature is not None:
        body["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        body["top_p"] = top_p
    if usage_option:
        body["stream_options"] = {"include_usage": True}
    if config.stop:
        body["stop"] = list(config.stop)
    if config.params:
        body.update(rules.params(config))
    return body
