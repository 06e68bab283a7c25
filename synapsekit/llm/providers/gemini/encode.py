"""Messages and LLMConfig -> a google-genai ``generate_content_stream`` request.

Wire quirks: assistant turns are role ``model``; every system message is a text part of
``system_instruction``, in order (the API has no system role in ``contents``).
"""

from __future__ import annotations

from typing import Any

from synapsekit.errors import ConfigError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.models import rules_for
from synapsekit.llm.types import Message

__all__ = ["contents", "generation_config"]


def contents(messages: list[Message]) -> list[dict[str, Any]]:
    """The ``contents`` of the request: every turn but the system ones."""
    return [
        {"role": "model" if m["role"] == "assistant" else "user",
         "parts": [{"text": m["content"]}]}
        for m in messages
        if m["role"] != "system"
    ]


def generation_config(sdk: Any, provider: str, messages: list[Message], config: LLMConfig) -> Any:
    """The SDK's ``GenerateContentConfig`` for this call."""
    model: Any = sdk.types.GenerateContentConfig
    rules = rules_for(provider, config)
    fields: dict[str, Any] = {
        **rules.params(config),
        "max_output_tokens": config.max_tokens,
    }
    temperature = rules.temperature(config)
    if temperature is not None:  # None: the model's own default, not sent
        fields["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        fields["top_p"] = top_p
    if "automatic_continuation" in model.model_fields:  # SDKs before it never continue
        fields["automatic_continuation"] = False
    system = [{"text": m["content"]} for m in messages if m["role"] == "system"]
    if system:  # every system message, in order: one text part each (as Bedrock's blocks)
        fields["system_instruction"] = {"parts": system}
    if config.stop:
        fields["stop_sequences"] = list(config.stop)
    try:
        return model(**fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params: not accepted by google-genai: {exc}") from None
