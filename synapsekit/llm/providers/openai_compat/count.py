"""Counting a chat-completions request locally: tiktoken on the body :mod:`.encode` builds.

The API has no counting endpoint for chat completions. For an OpenAI model whose tiktoken
encoding file is on this machine, the messages are counted with OpenAI's documented chat
framing (:func:`synapsekit.llm.counting.chat_tokens`): exact for text turns. Tools, a
response format, images and tool calls are wrapped by the API in a format it does not
publish: their JSON is counted with the same encoding and the count marked inexact. Any
other model (a vendor's Llama, Qwen...), or no file: the estimate.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from synapsekit.llm.counting import TokenCount, chat_tokens, estimate, tiktoken_for
from synapsekit.llm.types import Message

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig

__all__ = ["EXTRA_INPUT", "count", "count_with"]

#: Body fields that hold input besides the messages (counted as JSON: inexact).
EXTRA_INPUT = ("tools", "tool_choice", "response_format")


def count(llm: BaseLLM, turns: list[Message], config: LLMConfig) -> TokenCount:
    encoding = tiktoken_for(config.base_model or config.model)
    if encoding is None:
        return estimate(turns, config)
    return count_with(encoding, llm, turns, config)


def count_with(
    encoding: Any, llm: BaseLLM, turns: list[Message], config: LLMConfig
) -> TokenCount:
    """The count of the request body with a tiktoken ``Encoding``."""
    request: Any = getattr(llm, "_request", None)
    body: dict[str, Any] = request(turns, config) if request is not None else {
        "messages": [dict(t) for t in turns]
    }

    def tokens(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    total, whole = chat_tokens(body["messages"], tokens)
    for field in EXTRA_INPUT:
        if body.get(field) is not None:
            whole = False
            total += tokens(json.dumps(body[field], separators=(",", ":")))
    return TokenCount(total, exact=whole, method=f"tiktoken {encoding.name}")
