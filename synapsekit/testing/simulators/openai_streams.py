"""Scripted chat-completions streams beyond text: tool calls (parallel, interleaved, long) and
reasoning deltas in each vendor's field, in the shape of the real captures
(captures/openai/stream_tool_call.sse: the first fragment of a call carries ``index``,
``id``, ``type`` and ``function.name`` with ``arguments: ""``; later ones only ``index`` and
an ``arguments`` piece; then a ``finish_reason: "tool_calls"`` chunk and, when asked, a
``choices: []`` usage chunk).

``tool_stream(..., fragment=4)`` splits each call's arguments into 4-character pieces:
``long_tool_call(n)`` is one call of ``n`` fragments, what benchmarks/bench_tool_stream.py
streams (``python -m synapsekit.testing.simulators.openai_streams --port 0 --fragments 400`` serves
it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .openai_protocol import DONE, SSE_TYPE, OpenAISimulator, _Chunks, _usage, _wants_stream
from .server import BENCH_TOOL, Reply, Request, bench_tool_arguments, serve_main

__all__ = ["Call", "long_tool_call", "reasoning_stream", "tool_stream"]


@dataclass(frozen=True)
class Call:
    """One scripted tool call: its id, name and arguments (a dict, or raw text to script
    invalid JSON)."""

    id: str
    name: str
    arguments: Any

    @property
    def text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def tool_stream(
    calls: Sequence[Call],
    *,
    fragment: int = 4,
    interleave: bool = False,
    text: Sequence[str] = (),
    reasoning: Sequence[str] = (),
    reasoning_field: str = "reasoning_content",
    prompt_tokens: int = 20,
    completion_tokens: int = 12,
    model: str = "gpt-4o-2024-08-06",
    finish_reason: str = "tool_calls",
    usage_on_finish: bool = False,
    wire_index_base: int = 0,
) -> Reply:
    """A streamed answer that calls ``calls``: optional reasoning deltas (in
    ``reasoning_field``), text, then each call's fragments -- one call after the other as
    OpenAI sends them, or round-robin (``interleave``) as some vendors do. Usage goes in a
    ``choices: []`` chunk when ``stream_options.include_usage`` is asked, or on the finish
    chunk (``usage_on_finish``, Groq / DeepSeek / Cerebras placement). ``wire_index_base``
    numbers the wire ``index`` from another base (clients must count their own)."""

    def build(include_usage: bool) -> Reply:
        c = _Chunks(model, obfuscation=False)
        events = [c.delta({"role": "assistant", "content": None, "refusal": None})]
        events += [c.delta({"content": None, reasoning_field: r}) for r in reasoning]
        events += [c.delta({"content": t}) for t in text]
        firsts = []
        rests: list[list[bytes]] = []
        for n, call in enumerate(calls):
            index = wire_index_base + n
            firsts.append(c.delta({"tool_calls": [{
                "index": index, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }]}))
            rests.append([
                c.delta({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
                for p in _pieces(call.text, fragment)
            ])
        if interleave:
            events += firsts
            longest = max((len(r) for r in rests), default=0)
            for k in range(longest):
                events += [r[k] for r in rests if k < len(r)]
        else:
            for first, rest in zip(firsts, rests, strict=True):
                events += [first, *rest]
        usage = _usage(prompt_tokens, completion_tokens)
        if include_usage and usage_on_finish:
            events.append(c.delta({}, finish_reason, usage=usage))
        else:
            events.append(c.delta({}, finish_reason))
            if include_usage:
                events.append(c.chunk([], usage=usage))
        events.append(DONE)
        return Reply(200, {"content-type": SSE_TYPE}, stream=events)

    variants: dict[bool, Reply] = {}

    def choose(request: Request) -> Reply:
        body = request.json() if _wants_stream(request) else {}
        wanted = bool((body.get("stream_options") or {}).get("include_usage"))
        wanted = wanted or usage_on_finish
        if wanted not in variants:
            variants[wanted] = build(wanted)
        return variants[wanted]

    reply = build(True)
    variants[True] = reply
    reply.adapt = choose
    return reply


def long_tool_call(fragments: int, *, model: str = "gpt-4o-2024-08-06") -> Reply:
    """One tool call whose arguments arrive in ``fragments`` pieces of 4 characters (the
    benchmark's stream): ``{"q":"xxxx...."}`` padded to length."""
    arguments, _ = bench_tool_arguments(fragments)
    return tool_stream([Call("call_bench0001", BENCH_TOOL, arguments)], fragment=4,
                       model=model, completion_tokens=fragments)


def reasoning_stream(
    thoughts: Sequence[str],
    tokens: Sequence[str],
    *,
    field: str = "reasoning_content",
    details: bool = False,
    prompt_tokens: int = 10,
    model: str = "deepseek-reasoner",
    calls: Sequence[Call] = (),
) -> Reply:
    """Reasoning deltas in ``field`` (``reasoning_content``: DeepSeek; ``reasoning``: Groq,
    Cerebras, OpenRouter), then the answer tokens (or ``calls``); ``details`` adds
    OpenRouter's ``reasoning_details`` (``reasoning.text`` fragments of index 0, the
    signature on the last one). Usage on the finish chunk, as DeepSeek sends it."""
    c = _Chunks(model, obfuscation=False)
    events = [c.delta({"role": "assistant", "content": "", field: ""})]
    for k, thought in enumerate(thoughts):
        delta: dict[str, Any] = {"content": None, field: thought}
        if details:
            entry: dict[str, Any] = {"type": "reasoning.text", "text": thought,
                                     "format": "anthropic-claude-v1", "index": 0}
            if k == len(thoughts) - 1:
                entry["signature"] = "sig-" + "A" * 24
            delta["reasoning_details"] = [entry]
        events.append(c.delta(delta))
    events += [c.delta({"content": t, field: None}) for t in tokens]
    for n, call in enumerate(calls):
        events.append(c.delta({"tool_calls": [{
            "index": n, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": call.text},
        }]}))
    usage = _usage(prompt_tokens, len(thoughts) + len(tokens))
    usage["completion_tokens_details"]["reasoning_tokens"] = len(thoughts)
    events.append(c.delta({}, "tool_calls" if calls else "stop", usage=usage))
    events.append(DONE)
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def main(argv: Sequence[str] | None = None) -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--fragments", type=int, default=400,
                            help="argument fragments of the one tool call served")

    serve_main(
        __doc__,
        lambda a, tokens: OpenAISimulator(
            a.api_key, default=long_tool_call(a.fragments), port=a.port, record=False
        ),
        argv,
        api_key="sk-test-key",
        extra=extra,
    )


if __name__ == "__main__":
    main()
