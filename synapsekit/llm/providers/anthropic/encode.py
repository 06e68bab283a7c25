"""Canonical messages and an :class:`~synapsekit.llm.config.LLMConfig` -> a Messages API body.

Wire rules followed here:

- system messages become the top-level ``system`` field, joined by a blank line (the API
  rejects the role in ``messages``); ``max_tokens`` is always sent; ``stop`` goes out as
  ``stop_sequences``; ``params`` is merged into the body as-is;
- ``temperature`` follows the API version the client sends: version 2026-10-21 (the
  default of anthropic >= 2.0) rejects any sampling parameter, so it is not sent; older
  versions (anthropic < 2.0, or ``headers={"anthropic-version": "2023-06-01"}``) get it
  in the body (anthropic >= 1.0 dropped the argument from ``create``), except when
  thinking is on (then only 1 is accepted); ``temperature=None`` is never sent;
  ``LLMConfig.top_p`` follows the same rule.
"""

from __future__ import annotations

from typing import Any

from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import text_of
from synapsekit.llm.models import RequestRules
from synapsekit.llm.types import Message

__all__ = ["NO_SAMPLING_VERSION", "request"]

#: The first API version that rejects temperature / top_p / top_k (a 400 at any value).
NO_SAMPLING_VERSION = "2026-10-21"


def request(
    messages: list[Message], config: LLMConfig, rules: RequestRules, version: str | None
) -> dict[str, Any]:
    """The streamed request body for ``messages`` under ``config``."""
    system = [text_of(m["content"]) for m in messages if m["role"] == "system"]
    body: dict[str, Any] = {
        "model": config.model,
        "max_tokens": config.max_tokens,
        "messages": [m for m in messages if m["role"] != "system"],
        "stream": True,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if config.stop:
        body["stop_sequences"] = list(config.stop)
    sampling = takes_temperature(version, config.params.get("thinking"))
    temperature = rules.temperature(config)
    if temperature is not None and sampling:
        body["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None and sampling:  # the same rule as temperature
        body["top_p"] = top_p
    body.update(rules.params(config))
    return body


def takes_temperature(version: str | None, thinking: Any) -> bool:
    """Whether the request may carry ``temperature`` (see the module docstring)."""
    if version is None or version >= NO_SAMPLING_VERSION:
        return False
    return not (isinstance(thinking, dict) and thinking.get("type", "disabled") != "disabled")
