"""FakeLLM: a scripted provider for users' own tests.

It goes through the same call path as every real provider (message validation, retries,
token accounting, and whatever else BaseLLM wraps), so code tested against it behaves the
same against a real model. Replies are scripted; usage numbers are real counts of what
was sent and streamed (or the numbers you give). No network, no key.

    llm = FakeLLM(["Hello world", "Second answer"])
    assert await llm.generate("hi") == "Hello world"
    llm = FakeLLM([RateLimitError("slow down"), "ok"], max_retries=1)  # errors scripted too
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Iterable
from typing import TYPE_CHECKING, Any

from synapsekit.errors import ConfigError, LLMError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import text_of
from synapsekit.llm.types import Chunk, Message, Usage

if TYPE_CHECKING:
    from synapsekit.observability.tracer import TokenTracer

__all__ = ["FakeLLM", "fake_tokens"]

_TOKEN = re.compile(r"\s*\S+|\s+")


def fake_tokens(text: str) -> list[str]:
    """Split text into word-like tokens that join back to exactly ``text``."""
    return _TOKEN.findall(text)


class FakeLLM(BaseLLM):
    """Replays ``replies`` in order, one per call; the last one repeats when they run out.

    A reply is a string (streamed as word tokens) or an :class:`~synapsekit.errors.LLMError`
    instance (raised before the first token, so the retry policy sees it). Usage: input
    tokens are the whitespace-separated words of all messages, output tokens the number of
    tokens streamed, unless ``input_tokens`` / ``output_tokens`` are given. ``calls``
    records the messages of every request, ``delay`` sleeps before each token.
    """

    provider = "fake"

    def __init__(
        self,
        replies: Iterable[str | LLMError] = ("This is a fake answer.",),
        *,
        config: LLMConfig | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reason: str = "stop",
        delay: float = 0.0,
        tracer: TokenTracer | None = None,
        **fields: Any,
    ) -> None:
        self._replies = list(replies)
        if not self._replies:
            raise ConfigError("replies: give FakeLLM at least one reply")
        config = config or LLMConfig(model=fields.pop("model", "fake-model"), **fields)
        super().__init__(config, tracer=tracer)
        self._input_tokens = input_tokens
        self._output_tokens = output_tokens
        self._finish_reason = finish_reason
        self._delay = delay
        self._next = 0
        self.calls: list[list[Message]] = []

    async def _stream(
        self, messages: list[Message], config: LLMConfig
    ) -> AsyncGenerator[Chunk, None]:
        self.calls.append(messages)
        reply = self._replies[min(self._next, len(self._replies) - 1)]
        self._next += 1
        if isinstance(reply, LLMError):
            raise reply
        tokens = fake_tokens(reply)
        for token in tokens:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield Chunk(token)
        prompt_words = sum(len(text_of(m["content"]).split()) for m in messages)
        yield Chunk(
            usage=Usage(
                input_tokens=self._input_tokens if self._input_tokens is not None
                else prompt_words,
                output_tokens=self._output_tokens if self._output_tokens is not None
                else len(tokens),
            ),
            finish_reason=self._finish_reason,
        )
