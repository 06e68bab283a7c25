"""Canonical messages + LLMConfig -> the ``converse_stream`` request (pure functions).

Converse is Bedrock's one request shape for every model family, so any model id works as
``modelId`` unchanged: ``anthropic.claude-3-5-haiku-20241022-v1:0``, a cross-region
inference profile (``us.``/``eu.``/``apac.`` prefix) or an ARN. botocore validates the
request against its service model before sending: a field set to ``None`` is refused, so
absent settings are left out.
"""

from __future__ import annotations

from typing import Any

from synapsekit.llm.config import LLMConfig
from synapsekit.llm.models import RequestRules
from synapsekit.llm.types import Message

__all__ = ["request"]


def request(messages: list[Message], config: LLMConfig, rules: RequestRules) -> dict[str, Any]:
    """The keyword arguments of ``client.converse_stream``."""
    system = [{"text": m["content"]} for m in messages if m["role"] == "system"]
    inference: dict[str, Any] = {"maxTokens": config.max_tokens}
    temperature = rules.temperature(config)
    if temperature is not None:  # botocore refuses None: leave the field out
        inference["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        inference["topP"] = top_p
    if config.stop:
        inference["stopSequences"] = list(config.stop)
    body: dict[str, Any] = {
        "modelId": config.model,
        "messages": [
            {"role": m["role"], "content": [{"text": m["content"]}]}
            for m in messages
            if m["role"] != "system"
        ],
        "inferenceConfig": inference,
    }
    if system:
        body["system"] = system
    if config.params:
        body["additionalModelRequestFields"] = dict(rules.params(config))
    return body
