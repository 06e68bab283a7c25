"""FakeLLM: a scripted provider for users' own tests.

It goes through the same call path as every real provider (message validation, retries,
token accounting, and whatever else BaseLLM wraps), so code tested against it behaves the
same against a real model. Replies are scripted; usage numbers are real counts of what
was sent and streamed (or the numbers you give). No network, no key.

    llm = FakeLLM(["Hello world", "Second answer"])
    assert await llm.generate("hi") == "Hello world"
    llm = FakeLLM([RateLimitError("slow down"), "ok"], max_retries=1)  # errors scripted too

Tool loops and reasoning too, with every capability on (tools, images, documents,
structured output, reasoning controls), so ``run_tools`` and ``generate_object`` can be
tested without a server::

    llm = FakeLLM([
        ToolCall("call_1", "get_weather", {"city": "Paris"}),        # the model calls a tool
        "It is sunny in Paris.",                                      # then answers
    ])
    llm = FakeLLM([Response("", tool_calls=(call_a, call_b), reasoning="two calls")])
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Union

from synapsekit.errors import ConfigError, LLMError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Capabilities, text_of
from synapsekit.llm.types import Chunk, Message, Response, ToolCall, ToolCallDelta, Usage

if TYPE_CHECKING:
    from synapsekit.observability.tracer import TokenTracer

__all__ = ["FakeLLM", "Reply", "fake_tokens"]

#: One scripted reply: text, an error to raise, a whole :class:`Response` (text, tool
#: calls, reasoning, finish reason, usage, ``message["provider_data"]``), one
#: :class:`ToolCall` or a list of them (an answer that only calls tools).
Reply = Union[str, LLMError, Response, ToolCall, Sequence[ToolCall]]  # noqa: UP007 - 3.10

#: Everything a provider can have: FakeLLM refuses nothing a real provider might take.
FULL_CAPABILITIES = Capabilities(
    images=True, image_urls=True, documents=True, tools=True, parallel_tool_calls=True,
    tool_choices=frozenset({"auto", "none", "required", "name"}), structured="json_schema",
    reasoning=frozenset({"effort", "budget"}), note="scripted replies (synapsekit.testing)",
)

_TOKEN = re.compile(r"\s*\S+|\s+")


def fake_tokens(text: str) -> list[str]:
    """Split text into word-like tokens that join back to exactly ``text``."""
    return _TOKEN.findall(text)


class FakeLLM(BaseLLM):
    """Replays ``replies`` in order, one per call; the last one repeats when they run out.

    A reply (:data:`Reply`) is a string (streamed as word tokens), an
    :class:`~synapsekit.errors.LLMError` instance (raised before the first token, so the
    retry policy sees it), a :class:`~synapsekit.llm.types.Response` (its reasoning and
    text streamed as word tokens, then each tool call as two argument fragments, the way
    providers stream them; its finish reason, usage when non-zero, and
    ``message["provider_data"]``), or one :class:`~synapsekit.llm.types.ToolCall` / a
    list of them (finish reason ``"tool_calls"``). Usage: input tokens are the
    whitespace-separated words of all messages, output tokens the number of tokens
    streamed, unless ``input_tokens`` / ``output_tokens`` are given. ``calls`` records
    the messages of every request and ``configs`` the settings each was made with (tools,
    tool_choice, reasoning...); ``delay`` sleeps before each token.
    """

    provider = "fake"
    capabilities = FULL_CAPABILITIES

    def __init__(
        self,
        replies: Iterable[Reply] = ("This is a fake answer.",),
        *,
        config: LLMConfig | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reason: str = "stop",
        delay: float = 0.0,
        tracer: TokenTracer | None = None,
        hooks: Iterable[Any] | None = None,
        **fields: Any,
    ) -> None:
        self._replies = [_checked(reply) for reply in replies]
        if not self._replies:
            raise ConfigError("replies: give FakeLLM at least one reply")
        config = config or LLMConfig(model=fields.pop("model", "fake-model"), **fields)
        super().__init__(config, tracer=tracer, hooks=hooks)
        self._input_tokens = input_tokens
        self._output_tokens = output_tokens
        self._finish_reason = finish_reason
        self._delay = delay
        self._next = 0
        self.calls: list[list[Message]] = []
        self.configs: list[LLMConfig] = []

    async def _stream(
        self, messages: list[Message], config: LLMConfig
    ) -> AsyncGenerator[Chunk, None]:
        self.calls.append(messages)
        self.configs.append(config)
        reply = self._replies[min(self._next, len(self._replies) - 1)]
        self._next += 1
        if isinstance(reply, LLMError):
            raise reply
        if isinstance(reply, str):
            reply = Response(reply)
        streamed = 0
        for field in ("reasoning", "text"):
            for token in fake_tokens(getattr(reply, field)):
                if self._delay:
                    await asyncio.sleep(self._delay)
                streamed += 1
                yield Chunk(token) if field == "text" else Chunk(reasoning=token)
        for index, call in enumerate(reply.tool_calls):
            arguments = json.dumps(dict(call.arguments))
            half = len(arguments) // 2
            for piece, head in ((arguments[:half], True), (arguments[half:], False)):
                if self._delay:
                    await asyncio.sleep(self._delay)
                streamed += 1
                yield Chunk(tool_delta=ToolCallDelta(
                    index, call.id if head else None, call.name if head else None, piece,
                ))
        prompt_words = sum(len(text_of(m["content"]).split()) for m in messages)
        scripted = reply.usage if reply.usage != Usage() else None
        finish = self._finish_reason
        if reply.tool_calls and finish == "stop":
            finish = "tool_calls"
        elif reply.finish_reason != "stop":
            finish = reply.finish_reason
        yield Chunk(
            usage=scripted or Usage(
                input_tokens=self._input_tokens if self._input_tokens is not None
                else prompt_words,
                output_tokens=self._output_tokens if self._output_tokens is not None
                else streamed,
            ),
            finish_reason=finish,
            provider_data=reply.message.get("provider_data"),
        )


def _checked(reply: Any) -> str | LLMError | Response:
    """A scripted reply as a str, an error or a Response (tool calls become one)."""
    if isinstance(reply, Response):
        return replace(reply, tool_calls=_indexed(reply.tool_calls))
    if isinstance(reply, (str, LLMError)):
        return reply
    if isinstance(reply, ToolCall):
        reply = [reply]
    if isinstance(reply, Sequence) and reply and all(isinstance(c, ToolCall) for c in reply):
        return Response("", tool_calls=_indexed(reply), finish_reason="tool_calls")
    raise ConfigError(
        f"FakeLLM reply {reply!r}: a reply is a str, an LLMError, a Response, a ToolCall "
        "or a list of ToolCalls"
    )


def _indexed(calls: Sequence[ToolCall]) -> tuple[ToolCall, ...]:
    """The calls with ``index`` their position (as a provider numbers an answer's calls)."""
    return tuple(
        call if call.index == i else ToolCall(call.id, call.name, call.arguments, i)
        for i, call in enumerate(calls)
    )
