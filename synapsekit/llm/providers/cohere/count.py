"""Cohere's tokenizer: ``POST /v1/tokenize`` (the SDK's ``tokenize``) on the text of the
chat request :mod:`.encode` builds -- the messages' text, tool calls, the tools and the
response format as JSON. It counts text with the model's own tokenizer, but Cohere
documents no count for a whole chat (the template around the turns and tools adds tokens
the endpoint does not see), so the count is marked inexact; an image part adds the
estimate's figure.

``offline=False`` always: the SDK's default downloads the model's tokenizer file on first
use, which an offline machine would wait on. The endpoint takes 1..65,536 characters: a
longer text is cut at whitespace into pieces counted at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from synapsekit._tasks import gather_or_cancel
from synapsekit.llm.counting import TokenCount
from synapsekit.llm.models import rules_for
from synapsekit.llm.ratelimit import PART_TOKENS
from synapsekit.llm.types import Message

from . import encode

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig

__all__ = ["MAX_CHARS", "METHOD", "count", "pieces", "texts"]

METHOD = "cohere tokenize (text only)"
MAX_CHARS = 65_536
#: Body fields sent as JSON, whose text the model reads too.
JSON_FIELDS = ("tools", "response_format")


def texts(body: dict[str, Any]) -> tuple[list[str], int]:
    """The texts of a chat body and its number of image parts."""
    found: list[str] = []
    images = 0
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            found.append(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    found.append(part["text"])
                else:
                    images += 1
        for key in ("tool_calls", "thinking"):
            if message.get(key):
                found.append(json.dumps(message[key], separators=(",", ":")))
    for key in JSON_FIELDS:
        if body.get(key) is not None:
            found.append(json.dumps(body[key], separators=(",", ":")))
    return [t for t in found if t], images


def pieces(text: str, limit: int = MAX_CHARS) -> Iterator[str]:
    """``text`` in pieces of at most ``limit`` characters, cut after whitespace when there
    is some in the second half of a window."""
    while len(text) > limit:
        cut = max(text.rfind(" ", limit // 2, limit), text.rfind("\n", limit // 2, limit))
        cut = cut + 1 if cut > 0 else limit
        yield text[:cut]
        text = text[cut:]
    if text:
        yield text


async def count(llm: BaseLLM, turns: list[Message], config: LLMConfig) -> TokenCount:
    client = await llm._client(config)
    body = encode.request(turns, config, rules_for(llm.provider, config))
    found, images = texts(body)
    options: dict[str, Any] = {"max_retries": 0}
    if config.timeout is not None:
        options["timeout"] = config.timeout

    async def tokens(text: str) -> int:
        response = await client.tokenize(
            text=text, model=config.model, offline=False, request_options=options
        )
        return len(response.tokens)

    with llm._map_errors(config):
        counts = await gather_or_cancel(tokens(p) for p in pieces("\n".join(found)))
    return TokenCount(sum(counts) + images * PART_TOKENS, exact=False, method=METHOD)
