"""Anthropic's token counting: ``POST /v1/messages/count_tokens`` with the Messages body
:mod:`.encode` builds for the call (system prompt, tools, tool_choice, thinking, structured
output, cache marks), less the fields the counting endpoint does not take (``max_tokens``,
sampling, stop sequences, ``stream``). Sent with the SDK's ``messages.count_tokens`` on the
call's client; its errors are mapped like a chat call's. Anthropic documents the figure as
the model's own count of that request (it may differ from the billed input by the few
tokens the API adds itself)."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from synapsekit.llm.counting import TokenCount
from synapsekit.llm.models import rules_for
from synapsekit.llm.types import Message

from . import _header, encode

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig

__all__ = ["METHOD", "count", "counted_body"]

METHOD = "anthropic count_tokens"
_BETA = "token-counting-2024-11-01"
_SDK_ONLY = frozenset({"self", "extra_headers", "extra_query", "extra_body", "timeout", "betas"})


def counted_body(body: dict[str, Any], method: Any) -> dict[str, Any]:
    """The fields of a Messages body that ``method`` (the SDK's ``count_tokens``) takes."""
    accepted = set(inspect.signature(method).parameters) - _SDK_ONLY
    return {k: v for k, v in body.items() if k in accepted}


async def count(llm: BaseLLM, turns: list[Message], config: LLMConfig) -> TokenCount:
    client = await llm._client(config)
    version = _header(client.default_headers, "anthropic-version")
    plan = encode.request(turns, config, rules_for(llm.provider, config), version)
    method = getattr(client.messages, "count_tokens", None)
    extra: dict[str, Any] = {}
    if method is None:  # anthropic < 0.42 has it as a beta (the same endpoint, ?beta=true)
        method = client.beta.messages.count_tokens
        extra["betas"] = [_BETA]
    with llm._map_errors(config):
        found = await method(**counted_body(plan.body, method), **extra)
    return TokenCount(found.input_tokens, exact=True, method=METHOD)
