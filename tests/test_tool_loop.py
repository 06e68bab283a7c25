"""run_tools and call_with_tools through the real call path: a BaseLLM subclass whose
``_stream`` yields scripted Chunks (text, interleaved tool-call deltas, a final chunk) and
records every request -- no monkeypatching. Concurrency is proven by events / barriers both
tools must reach, never by timing."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import pytest

from synapsekit.errors import ConfigError, MaxStepsError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Capabilities
from synapsekit.llm.tool_loop import call_with_tools, run_tools
from synapsekit.llm.tools import Tool, tool
from synapsekit.llm.types import Chunk, Message, ToolCall, ToolCallDelta, Usage
from synapsekit.observability.tracer import TokenTracer

MODEL = "scripted-1"
OPENAI_KEY = "sk-test-key-0123456789"  # the conftest simulator's
#: The scripted model has no price: its cost is None (the warning says so once).
pytestmark = pytest.mark.filterwarnings("ignore::synapsekit.llm.pricing.UnknownModelPriceWarning")

Turn = Sequence[Chunk] | Callable[[list[Message]], Sequence[Chunk]]


class Scripted(BaseLLM):
    """A provider whose answers are scripted chunk lists (or functions of the request's
    messages), one per request; ``requests`` holds (messages, config) of each."""

    provider = "scripted"
    capabilities = Capabilities(
        images=True, tools=True, parallel_tool_calls=True,
        tool_choices=frozenset({"auto", "none", "required", "name"}), structured="json_schema",
    )

    def __init__(self, turns: Sequence[Turn], *, tracer: TokenTracer | None = None,
                 **fields: Any) -> None:
        super().__init__(LLMConfig(model=MODEL, **fields), tracer=tracer)
        self.turns = list(turns)
        self.requests: list[tuple[list[Message], LLMConfig]] = []

    async def _stream(
        self, messages: list[Message], config: LLMConfig
    ) -> AsyncGenerator[Chunk, None]:
        self.requests.append(([dict(m) for m in messages], config))  # type: ignore[misc]
        turn = self.turns[min(len(self.requests), len(self.turns)) - 1]
        for chunk in (turn(messages) if callable(turn) else turn):
            yield chunk


def calls(*specs: tuple[str, str, dict[str, Any]], interleave: bool = True) -> list[Chunk]:
    """A turn asking for tool calls (id, name, arguments), their argument JSON split in two
    fragments, the fragments of parallel calls interleaved."""
    texts = [json.dumps(args) for _, _, args in specs]
    halves = [(t[: len(t) // 2], t[len(t) // 2:]) for t in texts]
    first = [Chunk(tool_delta=ToolCallDelta(i, cid, name, halves[i][0]))
             for i, (cid, name, _) in enumerate(specs)]
    second = [Chunk(tool_delta=ToolCallDelta(i, arguments=halves[i][1]))
              for i in range(len(specs))]
    pairs = zip(first, second, strict=True)
    chunks = first + second if interleave else [c for pair in pairs for c in pair]
    return [*chunks, Chunk(usage=Usage(10, 5), finish_reason="tool_calls")]


def answer(text: str) -> list[Chunk]:
    return [Chunk(text[:3]), Chunk(text[3:]), Chunk(usage=Usage(20, 4), finish_reason="stop")]


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the weather in a city.

    Args:
        city: The city's name.
        unit: celsius or fahrenheit.
    """
    return f"{city}: 21 degrees {unit}"


# ----------------------------------------------------------------- the loop


async def test_two_step_loop_exact_transcript_and_traces() -> None:
    tracer = TokenTracer()
    llm = Scripted([calls(("call_1", "get_weather", {"city": "Paris"})),
                    answer("It is 21 degrees in Paris.")], tracer=tracer)
    response = await llm.run_tools("Weather in Paris?", tools=[get_weather])

    assert response.text == "It is 21 degrees in Paris."
    assert response.finish_reason == "stop"
    call = ToolCall("call_1", "get_weather", {"city": "Paris"}, 0)
    assert response.transcript == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
         "content": "Paris: 21 degrees celsius"},
        {"role": "assistant", "content": "It is 21 degrees in Paris."},
    ]
    assert response.transcript[-1] == response.message
    assert len(llm.requests) == 2
    # the second request carries the model's turn and the tool result, as built (after
    # the configured system prompt, which is not part of the transcript)
    assert llm.requests[1][0] == [{"role": "system", "content": "You are a helpful assistant."},
                                  *response.transcript[:3]]
    assert all(config.tools == (get_weather.tool,) for _, config in llm.requests)
    records = tracer.records
    assert [(r.purpose, r.step, r.tool_calls) for r in records] == [
        ("tool_loop", 1, 1), ("tool_loop", 2, 0)]
    assert [(r.input_tokens, r.output_tokens) for r in records] == [(10, 5), (20, 4)]


async def test_messages_in_and_system_prompt_not_in_the_transcript() -> None:
    llm = Scripted([calls(("c", "get_weather", {"city": "Oslo", "unit": "fahrenheit"})),
                    answer("Cold.")], system_prompt="Be brief.")
    history = [{"role": "user", "content": "Oslo?"}]
    response = await run_tools(llm, history, tools=[get_weather])
    assert history == [{"role": "user", "content": "Oslo?"}]  # the caller's list untouched
    assert response.transcript[0] == {"role": "user", "content": "Oslo?"}
    assert response.transcript[2]["content"] == "Oslo: 21 degrees fahrenheit"
    sent = llm.requests[1][0]
    assert sent[0] == {"role": "system", "content": "Be brief."}  # added per request
    assert sent[1:] == response.transcript[:3]


async def test_parallel_async_tools_run_concurrently_results_in_model_order() -> None:
    first_in, second_done = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    @tool
    async def slow(n: int) -> str:
        """Slow: finishes only after fast has finished."""
        first_in.set()
        await asyncio.wait_for(second_done.wait(), 5)  # sequential runs would time out here
        order.append("slow")
        return f"slow {n}"

    @tool
    async def fast(n: int) -> str:
        """Fast: needs slow to have started."""
        await asyncio.wait_for(first_in.wait(), 5)
        order.append("fast")
        second_done.set()
        return f"fast {n}"

    llm = Scripted([calls(("a", "slow", {"n": 1}), ("b", "fast", {"n": 2})), answer("done!")])
    response = await llm.run_tools("go", tools=[slow, fast])
    assert order == ["fast", "slow"]  # both were in flight at once
    assert [(m["tool_call_id"], m["content"]) for m in response.transcript[2:4]] == [
        ("a", "slow 1"), ("b", "fast 2")]  # the model's order, not the finishing order
    assert response.transcript[1]["tool_calls"] == [
        ToolCall("a", "slow", {"n": 1}, 0), ToolCall("b", "fast", {"n": 2}, 1)]


async def test_parallel_sync_tools_run_in_worker_threads() -> None:
    barrier = threading.Barrier(2, timeout=5)  # breaks unless both threads arrive
    threads: list[int] = []

    @tool
    def left(x: int) -> int:
        """Left."""
        threads.append(threading.get_ident())
        barrier.wait()
        return x

    @tool
    def right(x: int) -> int:
        """Right."""
        threads.append(threading.get_ident())
        barrier.wait()
        return x * 10

    llm = Scripted([calls(("l", "left", {"x": 1}), ("r", "right", {"x": 2}),
                          interleave=False), answer("sum")])
    response = await llm.run_tools("go", tools=[left, right])
    assert [m["content"] for m in response.transcript[2:4]] == ["1", "20"]
    assert len(set(threads)) == 2 and threading.get_ident() not in threads


async def test_tool_error_is_fed_back_to_the_model() -> None:
    @tool
    def lookup(city: str) -> str:
        """Look up."""
        raise ValueError(f"no station in {city}")

    llm = Scripted([calls(("c1", "lookup", {"city": "Atlantis"})), answer("Sorry, unknown.")])
    response = await llm.run_tools("?", tools=[lookup])
    assert response.text == "Sorry, unknown."
    assert response.transcript[2] == {"role": "tool", "tool_call_id": "c1", "name": "lookup",
                                      "content": "Error: ValueError: no station in Atlantis"}
    assert llm.requests[1][0][-1] == response.transcript[2]


async def test_unknown_tool_and_rejected_arguments_are_results() -> None:
    llm = Scripted([calls(("u", "nope", {}), ("w", "get_weather", {"town": "Rome"})),
                    answer("ok, ok")])
    response = await llm.run_tools("?", tools=[get_weather])
    assert [m["content"] for m in response.transcript[2:4]] == [
        "Error: unknown tool 'nope'; the tools are: get_weather",
        "Error: TypeError: get_weather() got an unexpected keyword argument 'town'",
    ]


async def test_results_that_are_not_strings() -> None:
    @tool
    def data(kind: str) -> Any:
        """Data."""
        if kind == "parts":
            return [{"type": "text", "text": "a chart:"},
                    {"type": "image", "data": b"\x89PNG\r\n\x1a\n0000", "media_type": "image/png"}]
        if kind == "bad part":
            return [{"type": "image", "data": "@@not-base64", "media_type": "image/png"}]
        if kind == "empty":
            return ""
        return {"kind": kind, "values": (1, 2), "none": None, "é": "ü"}

    llm = Scripted([calls(("j", "data", {"kind": "json"}), ("p", "data", {"kind": "parts"}),
                          ("b", "data", {"kind": "bad part"}), ("e", "data", {"kind": "empty"})),
                    answer("seen")])
    response = await llm.run_tools("?", tools=[data])
    assert response.transcript[2]["content"] == (
        '{"kind": "json", "values": [1, 2], "none": null, "é": "ü"}')
    parts = response.transcript[3]["content"]
    assert parts[0] == {"type": "text", "text": "a chart:"}
    assert parts[1]["type"] == "image"
    assert response.transcript[4]["content"] == (
        "Error: InvalidInputError: tool 'data' result content[0]: 'data' is a string but "
        "not valid base64.")
    assert response.transcript[5]["content"] == "(no output)"
    # the next request took the parts through build_messages
    assert llm.requests[1][0][4]["content"][1]["media_type"] == "image/png"


async def test_max_steps_error_carries_the_transcript() -> None:
    llm = Scripted([calls(("c", "get_weather", {"city": "Paris"}))])  # always asks again
    with pytest.raises(MaxStepsError, match="after max_steps=2 turns") as caught:
        await llm.run_tools("loop", tools=[get_weather], max_steps=2)
    assert len(llm.requests) == 2
    transcript = caught.value.transcript
    assert [m["role"] for m in transcript] == ["user", "assistant", "tool", "assistant", "tool"]
    assert transcript[-1]["content"] == "Paris: 21 degrees celsius"
    assert caught.value.provider == "scripted" and caught.value.model == MODEL


async def test_forced_tool_choice_only_on_the_first_turn() -> None:
    llm = Scripted([calls(("c", "get_weather", {"city": "Paris"})), answer("fine.")])
    await llm.run_tools("?", tools=[get_weather], tool_choice="required", temperature=0.0)
    assert [c.tool_choice for _, c in llm.requests] == ["required", "auto"]
    assert [c.temperature for _, c in llm.requests] == [0.0, 0.0]


async def test_tool_without_function_refused_before_any_request() -> None:
    plain = Tool("lookup", "Look up.", {"type": "object", "properties": {}})
    llm = Scripted([answer("never")])
    with pytest.raises(ConfigError, match="'lookup' have no Python function"):
        await llm.run_tools("?", tools=[get_weather, plain])
    with pytest.raises(ConfigError, match="max_steps"):
        await llm.run_tools("?", tools=[get_weather], max_steps=0)
    with pytest.raises(ConfigError, match="at least one tool"):
        await llm.run_tools("?", tools=[])
    assert llm.requests == []


async def test_cancellation_propagates_into_the_running_tool() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    @tool
    async def forever() -> str:
        """Never returns."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "unreachable"

    llm = Scripted([calls(("f", "forever", {})), answer("never")])
    task = asyncio.create_task(llm.run_tools("?", tools=[forever]))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()
    assert len(llm.requests) == 1


async def test_a_text_answer_ends_at_once() -> None:
    llm = Scripted([answer("No tool needed.")])
    response = await llm.run_tools("hi", tools=[get_weather])
    assert response.text == "No tool needed."
    assert response.transcript == [{"role": "user", "content": "hi"},
                                   {"role": "assistant", "content": "No tool needed."}]



async def test_callable_objects_and_tools_written_by_hand() -> None:
    class Counter:
        """Counts."""

        def __init__(self) -> None:
            self.loop_thread = threading.get_ident()
            self.ran_in: list[int] = []

        async def __call__(self, step: int) -> int:
            self.ran_in.append(threading.get_ident())
            return step + 1

    counter = Counter()
    by_hand = Tool("count", "Count.", {"type": "object", "properties": {
        "step": {"type": "integer"}}}, function=counter)
    sync_lambda = Tool("echo", "Echo.", {"type": "object", "properties": {}},
                       function=lambda **kw: kw)
    llm = Scripted([calls(("c", "count", {"step": 1}), ("e", "echo", {"x": [1]})),
                    answer("2 and x")])
    response = await llm.run_tools("?", tools=[by_hand, sync_lambda])
    assert [m["content"] for m in response.transcript[2:4]] == ["2", '{"x": [1]}']
    assert counter.ran_in == [counter.loop_thread]  # awaited on the loop, not in a thread

# ----------------------------------------------------------------- call_with_tools

OPENAI_TOOLS = [{
    "type": "function",
    "function": {
        "name": "search_web",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                       "required": ["query"]},
    },
}]


async def test_call_with_tools_returns_synapsekit_shape_and_runs_nothing() -> None:
    llm = Scripted([calls(("call_abc", "search_web", {"query": "AI news"}))])
    result = await llm.call_with_tools(
        [{"role": "user", "content": "What happened in AI?"}], OPENAI_TOOLS)
    assert result == {
        "content": None,
        "tool_calls": [{
            "id": "call_abc",
            "type": "function",
            "function": {"name": "search_web", "arguments": '{"query": "AI news"}'},
            "name": "search_web",
            "arguments": {"query": "AI news"},
        }],
    }
    assert len(llm.requests) == 1
    sent = llm.requests[0][1].tools
    assert sent == (Tool("search_web", "Search the web",
                         OPENAI_TOOLS[0]["function"]["parameters"]),)  # type: ignore[index]
    # the dicts go back into a history as they are
    follow = Scripted([answer("Here is the news.")])
    history = [{"role": "user", "content": "What happened in AI?"},
               {"role": "assistant", "content": result["content"],
                "tool_calls": result["tool_calls"]},
               {"role": "tool", "tool_call_id": "call_abc", "content": "news..."}]
    assert await call_with_tools(follow, history, OPENAI_TOOLS) == {
        "content": "Here is the news.", "tool_calls": None}
    assert follow.requests[0][0][2]["tool_calls"] == [
        ToolCall("call_abc", "search_web", {"query": "AI news"}, 0)]


async def test_a_tool_leaving_with_a_base_exception_cancels_its_siblings() -> None:
    waiting, sibling_cancelled = asyncio.Event(), asyncio.Event()

    @tool
    async def waits() -> str:
        """Waits."""
        waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise
        return "unreachable"

    class Stop(BaseException):
        """Not an Exception: not turned into a result."""

    @tool
    async def interrupts() -> str:
        """Interrupts."""
        await waiting.wait()
        raise Stop

    llm = Scripted([calls(("w", "waits", {}), ("i", "interrupts", {})), answer("never")])
    with pytest.raises(Stop):
        await llm.run_tools("?", tools=[waits, interrupts])
    assert sibling_cancelled.is_set()


# ----------------------------------------------------------------- the real openai SDK


async def test_two_step_loop_over_the_openai_sdk_and_simulator(openai_sim: Any) -> None:
    """The loop through OpenAILLM, the real openai SDK, HTTP and the simulator's request
    validation: turn 1 replays the real tool-call capture, turn 2 answers text."""
    from synapsekit import make_llm
    from synapsekit.testing.simulators.openai_protocol import capture, text_stream

    seen: list[dict[str, Any]] = []

    @tool
    def get_weather(city: str) -> dict[str, Any]:
        """Get the current weather in a city."""
        seen.append({"city": city})
        return {"city": city, "temp_c": 21}

    openai_sim.enqueue(capture("openai/stream_tool_call.sse"),
                       text_stream(["It is ", "21 C", "."], prompt_tokens=70))
    tracer = TokenTracer()
    llm = make_llm("gpt-4o", api_key=OPENAI_KEY, base_url=openai_sim.url, tracer=tracer)
    response = await llm.run_tools("Weather in New York City?", tools=[get_weather])

    assert response.text == "It is 21 C."
    assert seen == [{"city": "New York City"}]
    call = ToolCall("call_4XzlGBLtUe9dy3GVNV4jhq7h", "get_weather", {"city": "New York City"}, 0)
    assert response.transcript == [
        {"role": "user", "content": "Weather in New York City?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call.id, "name": "get_weather",
         "content": '{"city": "New York City", "temp_c": 21}'},
        {"role": "assistant", "content": "It is 21 C."},
    ]
    bodies = [r.json() for r in openai_sim.requests]
    assert len(bodies) == 2
    assert bodies[0]["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    assert bodies[1]["messages"][-2:] == [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call.id, "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "New York City"}'}}]},
        {"role": "tool", "tool_call_id": call.id,
         "content": '{"city": "New York City", "temp_c": 21}'},
    ]
    assert [(r.purpose, r.step, r.input_tokens, r.output_tokens) for r in tracer.records] == [
        ("tool_loop", 1, 44, 16), ("tool_loop", 2, 70, 3)]
