"""Call hooks: the moments of a call, in order, exactly once, on every way out.

FakeLLM goes through the same call path as the real providers (the hooks are announced
by BaseLLM, not by a provider), so the orders and counts here hold for all of them; the
OpenTelemetry tests (tests/test_otel.py) run the same hooks against all 15 simulators.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from typing import Any

import pytest

from synapsekit import TokenTracer, make_llm
from synapsekit.errors import ConfigError, RateLimitError, ServerError
from synapsekit.llm.tools import tool
from synapsekit.llm.types import ToolCall
from synapsekit.observability import Hook, add_hook, remove_hook
from synapsekit.testing import FakeLLM


class Recorder(Hook):
    """Every moment as (name, details), plus the call objects it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def on_call_start(self, call: Any) -> None:
        self.seen.append(("start", len(call.turns)))

    def on_first_token(self, call: Any) -> None:
        self.seen.append(("first", None))

    def on_chunk(self, call: Any) -> None:
        self.seen.append(("chunk", None))

    def on_attempt_failed(self, call: Any, error: Any, will_retry: bool) -> None:
        self.seen.append(("failed", (type(error).__name__, will_retry, call.attempts)))

    def on_call_end(self, call: Any) -> None:
        usage = call.final_usage
        self.seen.append(("end", (call.error, usage.input_tokens, usage.output_tokens,
                                  call.finish_reason, call.cache_hit)))
        self.record = call.record

    def on_tool_start(self, run: Any) -> None:
        self.seen.append(("tool", run.call.name))

    def on_tool_end(self, run: Any) -> None:
        self.seen.append(("tool_end", (run.result, run.error)))

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]


async def test_a_streamed_call_in_order() -> None:
    hook, tracer = Recorder(), TokenTracer()
    llm = FakeLLM(["one two three"], tracer=tracer, system_prompt=None)
    llm.hooks = (hook,)
    assert [t async for t in llm.stream("hi")] == ["one", " two", " three"]
    assert hook.names() == ["start", "first", "chunk", "chunk", "chunk", "end"]
    assert hook.seen[0] == ("start", 1)
    assert hook.seen[-1] == ("end", (None, 1, 3, "stop", False))
    assert hook.record is tracer.records[0]  # the tracer (the first hook) made it


async def test_a_retry_then_a_final_failure() -> None:
    hook = Recorder()
    llm = FakeLLM([RateLimitError("slow down", retry_after=0), "ok"], max_retries=1,
                  retry_delay=0, system_prompt=None)
    llm.hooks = (hook,)
    assert await llm.generate("hi") == "ok"
    assert hook.seen[:2] == [("start", 1), ("failed", ("RateLimitError", True, 1))]
    assert hook.seen[-1] == ("end", (None, 1, 1, "stop", False))
    failing = FakeLLM([ServerError("down")], system_prompt=None)
    failing.hooks = (hook,)
    hook.seen.clear()
    with pytest.raises(ServerError):
        await failing.generate("hi")
    assert hook.seen == [
        ("start", 1), ("failed", ("ServerError", False, 1)),
        ("end", ("ServerError", 0, 0, None, False)),
    ]


async def test_leaving_early_and_cancelling_end_the_call_once() -> None:
    hook = Recorder()
    llm = FakeLLM(["a b c d e f"], delay=0.01)
    llm.hooks = (hook,)
    async with aclosing(llm.stream("hi")) as tokens:
        async for _ in tokens:
            break
    assert hook.names().count("end") == 1
    assert hook.seen[-1][1][0] == "GeneratorExit"
    hook.seen.clear()

    async def consume() -> None:
        async for _ in llm.stream("hi"):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.025)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hook.names().count("end") == 1
    assert hook.seen[-1][1][0] == "CancelledError"


async def test_a_cache_hit_is_announced_as_one() -> None:
    hook = Recorder()
    llm = FakeLLM(["cached answer"], cache=True, system_prompt=None)
    llm.hooks = (hook,)
    await llm.generate("hi")
    await asyncio.sleep(0)  # the store runs in the background
    hook.seen.clear()
    assert await llm.generate("hi") == "cached answer"
    assert hook.seen[0] == ("start", 1)
    assert hook.seen[-1] == ("end", (None, 0, 0, "stop", True))


async def test_a_raising_hook_is_logged_once_and_breaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Hook):
        def on_call_start(self, call: Any) -> None:
            raise RuntimeError("hook bug")

    after = Recorder()
    llm = FakeLLM(["fine"])
    llm.hooks = (Broken(), after)
    with caplog.at_level(logging.ERROR, logger="synapsekit"):
        assert await llm.generate("hi") == "fine"
        assert await llm.generate("hi") == "fine"
    logged = [r for r in caplog.records if "Broken.on_call_start" in r.getMessage()]
    assert len(logged) == 1
    assert after.names().count("end") == 2  # the hooks after it still ran


async def test_process_wide_hooks_run_after_the_llms_own() -> None:
    order: list[str] = []

    class Named(Hook):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_call_start(self, call: Any) -> None:
            order.append(self.name)

    everywhere = Named("global")
    add_hook(everywhere)
    add_hook(everywhere)  # once only
    try:
        llm, other = FakeLLM(["x"]), FakeLLM(["y"])
        llm.hooks = (Named("own"),)
        await llm.generate("hi")
        await other.generate("hi")
    finally:
        remove_hook(everywhere)
    await other.generate("hi")
    assert order == ["own", "global", "global"]


async def test_per_call_state_under_concurrency() -> None:
    class Counter(Hook):
        def __init__(self) -> None:
            self.totals: list[int] = []

        def on_chunk(self, call: Any) -> None:
            call.state[self] = call.state.get(self, 0) + 1

        def on_call_end(self, call: Any) -> None:
            self.totals.append(call.state.get(self, 0))

    counter = Counter()
    llm = FakeLLM(["w1 w2 w3 w4 w5"], delay=0.001)
    llm.hooks = (counter,)
    await asyncio.gather(*(llm.generate("hi") for _ in range(200)))
    assert counter.totals == [5] * 200


async def test_tool_runs_are_announced() -> None:
    @tool
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    @tool
    def broken(text: str) -> str:
        """Always fails."""
        raise ValueError("no")

    hook = Recorder()
    llm = FakeLLM([[ToolCall("c1", "shout", {"text": "hi"}), ToolCall("c2", "broken",
                                                                      {"text": "x"})], "done"])
    llm.hooks = (hook,)
    await llm.run_tools("go", tools=[shout, broken])
    tools = [entry for entry in hook.seen if entry[0].startswith("tool")]
    assert sorted(tools, key=str) == sorted([
        ("tool", "shout"), ("tool", "broken"), ("tool_end", ("HI", None)),
        ("tool_end", ("Error: ValueError: no", "ValueError")),
    ], key=str)


def test_hooks_given_to_make_llm_are_checked() -> None:
    hook = Recorder()
    llm = make_llm("gpt-4o-mini", api_key="sk-test-hooks", hooks=[hook])
    assert llm.hooks == (hook,)
    with pytest.raises(ConfigError, match="none of the hook methods"):
        make_llm("gpt-4o-mini", api_key="sk-test-hooks", hooks=[object()])
    with pytest.raises(ConfigError, match="a list of hook objects"):
        make_llm("gpt-4o-mini", api_key="sk-test-hooks", hooks=hook)
