"""The issue's script on Mistral, against the simulator (real SDK over HTTP): a weather tool
run by ``run_tools`` (two steps), a pydantic object from ``generate_object`` (a first
invalid answer, then a valid re-ask), an image question, ``reasoning_effort="high"``."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from synapsekit import make_llm
from synapsekit.errors import UnsupportedFeatureError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.tools import Tool
from synapsekit.testing.simulators.mistral_protocol import MistralSimulator, capture, text_stream
from tests.sim_fixtures import serve

KEY = "mist-test-key-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


class City(BaseModel):
    name: str
    population: int


_server, sim = serve(lambda: MistralSimulator(KEY))


@pytest.fixture
async def llm(sim: MistralSimulator) -> AsyncIterator[BaseLLM]:
    chat = make_llm("mistral-small-latest", api_key=KEY, base_url=sim.url, system_prompt=None)
    yield chat
    await chat.aclose()


async def test_run_tools_two_steps(sim: MistralSimulator, llm: BaseLLM) -> None:
    seen: list[str] = []

    def weather(location: str) -> str:
        seen.append(location)
        return f"18 C and sunny in {location}"

    tool = Tool("weather", "The weather at a place",
                {"type": "object", "properties": {"location": {"type": "string"}},
                 "required": ["location"]}, function=weather)
    sim.enqueue(capture("mistral/stream_tool_call_realcapture.sse"),
                text_stream(["Sunny, ", "18 C."]))
    response = await llm.run_tools("Weather in San Francisco?", tools=[tool])
    assert seen == ["San Francisco"]
    assert response.text == "Sunny, 18 C."
    assert [m["role"] for m in response.transcript] == ["user", "assistant", "tool", "assistant"]
    assert len(sim.requests) == 2
    tool_turn = sim.requests[1].json()["messages"][2]
    assert tool_turn == {"role": "tool", "tool_call_id": "gSIMJiOkT", "name": "weather",
                         "content": "18 C and sunny in San Francisco"}


async def test_generate_object_re_asks_after_an_invalid_answer(
    sim: MistralSimulator, llm: BaseLLM
) -> None:
    sim.enqueue(text_stream(['{"name": "Paris"}']),
                text_stream(['{"name": "Paris", ', '"population": 2102650}']))
    city = await llm.generate_object("The capital of France?", schema=City)
    assert city == City(name="Paris", population=2102650)
    assert len(sim.requests) == 2
    for request in sim.requests:
        fmt = request.json()["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"
        assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    second: list[dict[str, Any]] = sim.requests[1].json()["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert "population" in second[2]["content"]


async def test_image_question_and_reasoning(sim: MistralSimulator, llm: BaseLLM) -> None:
    sim.enqueue(text_stream(["A black square."], thinking=["Looking."]))
    chat = pytest.importorskip("mistralai.client.chat")
    question: list[dict[str, Any]] = [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image", "data": PNG}]}]
    if "reasoning_effort" not in inspect.signature(chat.Chat.stream_async).parameters:
        # the floors run's mistralai 2.0 cannot send reasoning_effort: refused, not dropped
        with pytest.raises(UnsupportedFeatureError, match="pip install -U mistralai"):
            await llm.respond(question, reasoning_effort="high")
        assert sim.requests == []
        return
    response = await llm.respond(question, reasoning_effort="high")
    assert (response.text, response.reasoning) == ("A black square.", "Looking.")
    body = sim.requests[0].json()
    assert body["reasoning_effort"] == "high"
    assert body["messages"][0]["content"][1]["type"] == "image_url"
    assert body["messages"][0]["content"][1]["image_url"].startswith("data:image/png;base64,")
