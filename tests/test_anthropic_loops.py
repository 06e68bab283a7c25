"""The issue's script on Anthropic, against the simulator (real SDK over HTTP): a weather tool
run by ``run_tools`` (two steps, from the real capture; and with thinking on, where the
second request is accepted only because the signature came back), a pydantic object from
``generate_object`` (a first invalid answer, then a valid re-ask; native structured output
and the forced-tool route), an image question with ``reasoning_effort="high"``, and a cache
hit that replays tool calls and the thinking ``provider_data``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from synapsekit import make_llm
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import ToolCall
from synapsekit.testing.simulators.anthropic_protocol import (
    AnthropicSimulator,
    capture,
    sign,
    text_stream,
    tool_stream,
)
from tests.sim_fixtures import serve

KEY = "sk-ant-api03-test-0123456789abcdef"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
CAPTURE_ID = "toolu_01NRLabsLyVHZPKxbKvkfSMn"


class City(BaseModel):
    name: str
    population: int


_server, sim = serve(lambda: AnthropicSimulator(KEY), check_errors=True)


@pytest.fixture
async def llm(sim: AnthropicSimulator) -> AsyncIterator[BaseLLM]:
    chat = make_llm("claude-sonnet-4-6", api_key=KEY, base_url=sim.url, system_prompt=None)
    yield chat
    await chat.aclose()


def weather_tool(seen: list[str]) -> Tool:
    def get_weather(location: str) -> str:
        seen.append(location)
        return f"18 C and sunny in {location}"

    return Tool("get_weather", "The weather at a place",
                {"type": "object", "properties": {"location": {"type": "string"}},
                 "required": ["location"]}, function=get_weather)


def bodies(sim: AnthropicSimulator) -> list[dict[str, Any]]:
    return [r.json() for r in sim.requests]


async def test_run_tools_two_steps_from_the_capture(
    sim: AnthropicSimulator, llm: BaseLLM
) -> None:
    seen: list[str] = []
    sim.enqueue(capture("anthropic/stream_tool_use.sse"), text_stream(["Sunny, ", "18 C."]))
    final = await llm.run_tools("Weather in Paris?", tools=[weather_tool(seen)])
    assert seen == ["Paris"]
    assert final.text == "Sunny, 18 C."
    assert final.finish_reason == "stop"
    assert len(sim.requests) == 2
    assert bodies(sim)[1]["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "I'll check the current weather in Paris for you."},
            {"type": "tool_use", "id": CAPTURE_ID, "name": "get_weather",
             "input": {"location": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": CAPTURE_ID,
             "content": "18 C and sunny in Paris"}]},
    ]
    assert [t["role"] for t in final.transcript] == ["user", "assistant", "tool", "assistant"]


async def test_run_tools_with_thinking_carries_the_signature(sim: AnthropicSimulator) -> None:
    seen: list[str] = []
    thought = "Paris: call the weather tool."
    sim.enqueue(
        tool_stream([("toolu_P", "get_weather", ['{"location": ', '"Paris"}'])],
                    thinking=[thought]),
        text_stream(["Sunny."], thinking=["Done."]),
    )
    chat = make_llm("claude-sonnet-4-6", api_key=KEY, base_url=sim.url, system_prompt=None,
                    max_tokens=8192)
    final = await chat.run_tools("Weather in Paris?", tools=[weather_tool(seen)],
                                 reasoning_budget=4096)
    await chat.aclose()
    assert seen == ["Paris"]
    assert final.text == "Sunny."
    second = bodies(sim)[1]
    assert second["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert second["messages"][1]["content"][0] == {
        "type": "thinking", "thinking": thought, "signature": sign(thought)}
    assert len(sim.requests) == 2  # accepted: the simulator checked the signature


async def test_generate_object_native_reasks_after_an_invalid_answer(
    sim: AnthropicSimulator, llm: BaseLLM
) -> None:
    sim.enqueue(text_stream(['{"name": "Paris"}']),
                text_stream(['{"name": "Paris", ', '"population": 2102650}']))
    city = await llm.generate_object("The biggest French city?", schema=City)
    assert city == City(name="Paris", population=2102650)
    first, second = bodies(sim)
    for sent in (first, second):
        assert sent["output_config"]["format"]["type"] == "json_schema"
        schema = sent["output_config"]["format"]["schema"]
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) == {"name", "population"}
    assert len(second["messages"]) == 3  # the question, the invalid answer, the re-ask
    assert second["messages"][1] == {"role": "assistant", "content": '{"name": "Paris"}'}
    assert "population" in json.dumps(second["messages"][2])


async def test_generate_object_forced_tool_on_an_older_model(sim: AnthropicSimulator) -> None:
    chat = make_llm("claude-sonnet-4-20250514", api_key=KEY, base_url=sim.url,
                    system_prompt=None)
    sim.enqueue(
        tool_stream([("toolu_1", "City", ['{"name": "Paris"}'])]),
        tool_stream([("toolu_2", "City", ['{"name": "Paris", "population": 2102650}'])]),
    )
    city = await chat.generate_object("The biggest French city?", schema=City)
    await chat.aclose()
    assert city == City(name="Paris", population=2102650)
    first, second = bodies(sim)
    assert first["tool_choice"] == {"type": "tool", "name": "City"}
    assert [t["name"] for t in first["tools"]] == ["City"]
    # the invalid answer went back as text (no dangling tool_use), then the re-ask
    assert second["messages"][1] == {"role": "assistant", "content": '{"name": "Paris"}'}
    assert len(sim.requests) == 2


async def test_image_question_with_high_effort(sim: AnthropicSimulator, llm: BaseLLM) -> None:
    sim.enqueue(text_stream(["A black square."], thinking=["Tiny PNG."]))
    response = await llm.respond(
        [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                      {"type": "image", "data": PNG}]}],
        reasoning_effort="high",
    )
    assert response.text == "A black square."
    assert response.reasoning == "Tiny PNG."
    sent = bodies(sim)[0]
    assert sent["thinking"] == {"type": "adaptive"}
    assert sent["output_config"] == {"effort": "high"}
    assert sent["messages"][0]["content"][1]["source"]["media_type"] == "image/png"


async def test_cache_hit_replays_tool_calls_and_thinking(
    sim: AnthropicSimulator, tmp_path: Any
) -> None:
    chat = make_llm("claude-sonnet-4-6", api_key=KEY, base_url=sim.url, system_prompt=None,
                    max_tokens=4096, cache=True)
    sim.enqueue(tool_stream([("toolu_K", "get_weather", ['{"location": "Oslo"}'])],
                            thinking=["Oslo."]))
    tool = weather_tool([])
    first = await chat.respond("Oslo?", tools=[tool], reasoning_budget=2048)
    again = await chat.respond("Oslo?", tools=[tool], reasoning_budget=2048)
    await chat.aclose()
    assert len(sim.requests) == 1
    assert again.tool_calls == first.tool_calls == (
        ToolCall("toolu_K", "get_weather", {"location": "Oslo"}, 0),)
    assert again.reasoning == "Oslo."
    assert again.message.get("provider_data") == first.message.get("provider_data")
    assert again.metadata.get("cache_hit") is True
