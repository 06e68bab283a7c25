"""Ollama beyond text: whole tool calls, the tool loop, images, ``think`` and ``format``,
through the real ollama SDK over HTTP against the Ollama simulator.

Exact values come from captures/ollama/stream_tool_call.ndjson (one ``get_weather`` call,
``done_reason: stop``, 169 / 15 tokens); every refusal is checked to send nothing.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import InvalidInputError, InvalidRequestError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.providers.ollama import OllamaLLM
from synapsekit.llm.providers.ollama.encode import parameters
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Chunk, OutputSchema, ToolCall
from synapsekit.testing.simulators.ollama_protocol import (
    OllamaSimulator,
    capture,
    text_stream,
    tool_stream,
)
from tests.sim_fixtures import serve, track

MODEL = "llama3.2"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 16
PDF = b"%PDF-1.7\n%fake\n"
WEATHER = Tool(
    "get_weather",
    "Get the current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}},
     "required": ["city"]},
)
TIME = Tool("get_time", "The time in a city",
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


_server, sim = serve(lambda: OllamaSimulator())


def _llm(sim: OllamaSimulator, model: str = MODEL, **fields: Any) -> BaseLLM:
    llm = make_llm(f"ollama:{model}", base_url=sim.url, system_prompt=None, **fields)
    assert isinstance(llm, OllamaLLM)
    return track(llm)


def _body(sim: OllamaSimulator, n: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = sim.requests[n].json()
    return body


# ------------------------------------------------------------------------ tool calls


async def test_tool_call_capture_exact(sim: OllamaSimulator) -> None:
    sim.enqueue(capture("ollama/stream_tool_call.ndjson"))
    response = await _llm(sim).respond("Weather in Tokyo?", tools=[WEATHER])
    assert response.tool_calls == (ToolCall("call_0", "get_weather", {"city": "Tokyo"}, 0),)
    assert response.finish_reason == "tool_calls"  # Ollama itself says done_reason "stop"
    assert response.metadata["raw_finish_reason"] == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (169, 15)
    assert response.text == ""
    assert _body(sim)["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather for a city",
        "parameters": {"type": "object", "required": ["city"],
                       "properties": {"city": {"type": "string", "description": "The city"}}},
    }}]
    assert len(sim.requests) == 1


async def test_whole_calls_are_one_done_delta_each(sim: OllamaSimulator) -> None:
    sim.enqueue(tool_stream([("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Lima"})]))
    chunks: list[Chunk] = [
        c async for c in _llm(sim).stream_chunks("both", tools=[WEATHER, TIME])
    ]
    deltas = [c.tool_delta for c in chunks if c.tool_delta is not None]
    assert [(d.index, d.id, d.name, d.arguments, d.done) for d in deltas] == [
        (0, "call_0", "get_weather", '{"city": "Oslo"}', True),
        (1, "call_1", "get_time", '{"city": "Lima"}', True),
    ]
    assert [c.tool_call for c in chunks if c.tool_call is not None] == [
        ToolCall("call_0", "get_weather", {"city": "Oslo"}, 0),
        ToolCall("call_1", "get_time", {"city": "Lima"}, 1),
    ]
    assert chunks[-1].finish_reason == "tool_calls"


async def test_two_step_tool_loop_is_accepted(sim: OllamaSimulator) -> None:
    llm = _llm(sim)
    sim.enqueue(tool_stream([("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Lima"})]))
    sim.enqueue(text_stream(["Cold", " and early."], prompt_eval_count=40, eval_count=4))
    history: list[dict[str, Any]] = [{"role": "user", "content": "Oslo weather, Lima time?"}]
    first = await llm.respond(history, tools=[WEATHER, TIME])
    history.append(dict(first.message))
    history += [{"role": "tool", "tool_call_id": "call_0", "content": "-3 C"},
                {"role": "tool", "tool_call_id": "call_1", "content": "06:10"}]
    second = await llm.respond(history, tools=[WEATHER, TIME])
    assert second.text == "Cold and early." and second.finish_reason == "stop"
    assert len(sim.requests) == 2
    assert _body(sim)["messages"] == [
        {"role": "user", "content": "Oslo weather, Lima time?"},
        {"role": "assistant", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
            {"function": {"name": "get_time", "arguments": {"city": "Lima"}}},
        ]},
        {"role": "tool", "content": "-3 C", "tool_name": "get_weather"},
        {"role": "tool", "content": "06:10", "tool_name": "get_time"},
    ]


def test_the_simulator_refuses_string_arguments_like_ollama(sim: OllamaSimulator) -> None:
    import httpx

    body = {"model": MODEL, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
    ]}
    response = httpx.post(f"{sim.url}/api/chat", json=body)
    assert response.status_code == 400
    assert "cannot unmarshal string" in response.json()["error"]


@pytest.mark.parametrize("choice", ["required", "none", {"name": "get_weather"}])
async def test_tool_choices_ollama_lacks_are_refused_before_any_request(
    sim: OllamaSimulator, choice: Any,
) -> None:
    with pytest.raises(InvalidInputError, match="tool_choice"):
        await _llm(sim).respond("x", tools=[WEATHER], tool_choice=choice)
    assert sim.requests == []


async def test_tool_choice_auto_sends_nothing(sim: OllamaSimulator) -> None:
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim).respond("x", tools=[WEATHER], tool_choice="auto")
    assert "tool_choice" not in _body(sim)


def test_parameter_schemas_are_put_in_what_the_sdk_carries() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "title": "City"},
            "unit": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "kind": {"const": "metric"},
            "where": {"type": "object", "description": "A point",
                      "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
            "days": {"type": "array", "items": {"type": "integer"}, "maxItems": 7},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    assert parameters(schema) == {
        "type": "object",
        "required": ["city"],
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": ["string", "null"]},
            "kind": {"enum": ["metric"]},
            "where": {"type": "object", "description": 'A point (JSON schema: {"properties":'
                      '{"lat":{"type":"number"}},"required":["lat"]})'},
            "days": {"type": "array", "items": {"type": "integer"},
                     "description": 'JSON schema: {"maxItems":7}'},
        },
    }


async def test_adapted_schema_reaches_the_server_intact(sim: OllamaSimulator) -> None:
    nested = Tool("locate", "", {"type": "object", "properties": {
        "where": {"type": "object", "properties": {"lat": {"type": "number"}}}}})
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim).respond("x", tools=[nested])
    sent = _body(sim)["tools"][0]["function"]["parameters"]["properties"]["where"]
    assert sent == {"type": "object",
                    "description": 'JSON schema: {"properties":{"lat":{"type":"number"}}}'}


# ------------------------------------------------------------------------ images, documents


async def test_images_go_as_base64_in_the_message(sim: OllamaSimulator) -> None:
    sim.enqueue(text_stream(["A square."], model="gemma4"))
    parts = [{"type": "text", "text": "What is this?"}, {"type": "image", "data": PNG}]
    answer = await _llm(sim, "gemma4").generate_with_messages(
        [{"role": "user", "content": parts}])
    assert answer == "A square."
    assert _body(sim)["messages"] == [{"role": "user", "content": "What is this?",
                                       "images": [base64.b64encode(PNG).decode()]}]


@pytest.mark.parametrize(
    ("part", "match"),
    [
        ({"type": "image", "url": "https://example.com/a.png"}, "not URLs"),
        ({"type": "document", "data": PDF}, "does not take document"),
    ],
    ids=["image-url", "pdf"],
)
async def test_parts_ollama_cannot_take_are_refused_before_any_request(
    sim: OllamaSimulator, part: dict[str, Any], match: str,
) -> None:
    turns = [{"role": "user", "content": [{"type": "text", "text": "see"}, part]}]
    with pytest.raises(InvalidInputError, match=match):
        await _llm(sim, "gemma4").respond(turns)
    assert sim.requests == []


async def test_images_to_a_text_model_are_refused_by_the_server(sim: OllamaSimulator) -> None:
    turns = [{"role": "user", "content": [{"type": "image", "data": PNG}]}]
    with pytest.raises(InvalidRequestError, match="does not support image input"):
        await _llm(sim).respond(turns)


# ------------------------------------------------------------------------ reasoning


@pytest.mark.parametrize(
    ("model", "settings", "think"),
    [
        ("gpt-oss:20b", {"reasoning_effort": "high"}, "high"),
        ("gpt-oss:20b", {"reasoning_effort": "minimal"}, "low"),  # clamped to its levels
        ("gpt-oss:20b", {"reasoning_effort": "xhigh"}, "high"),
        ("gpt-oss:20b", {"reasoning_effort": "none"}, "low"),  # gpt-oss never stops thinking
        ("gpt-oss:20b", {"reasoning_budget": 8192}, "medium"),
        ("qwen3:0.6b", {"reasoning_effort": "low"}, True),
        ("qwen3:0.6b", {"reasoning_budget": 2048}, True),
        ("qwen3:0.6b", {"reasoning_effort": "none"}, False),
        ("qwen3:0.6b", {"reasoning_budget": 0}, False),
    ],
    ids=["oss-high", "oss-minimal", "oss-xhigh", "oss-none", "oss-budget", "qwen-low",
         "qwen-budget", "qwen-none", "qwen-zero"],
)
async def test_reasoning_maps_to_think(
    sim: OllamaSimulator, model: str, settings: dict[str, Any], think: bool | str,
) -> None:
    sim.enqueue(text_stream(["4"], model=model))
    await _llm(sim, model, **settings).generate("2+2?")
    assert _body(sim)["think"] == think


async def test_reasoning_on_a_model_that_does_not_think(sim: OllamaSimulator) -> None:
    with pytest.raises(InvalidInputError, match="reasoning_effort"):
        await _llm(sim, reasoning_effort="high").generate("x")
    assert sim.requests == []
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim, reasoning_effort="none").generate("x")
    assert "think" not in _body(sim)  # off on a model that never thinks: nothing sent


async def test_thinking_of_a_tool_turn_goes_back(sim: OllamaSimulator) -> None:
    llm = _llm(sim, "qwen3:0.6b", reasoning_effort="high")
    sim.enqueue(tool_stream([("get_weather", {"city": "Oslo"})],
                            thinking=["Need", " weather."], model="qwen3:0.6b"))
    first = await llm.respond("Oslo?", tools=[WEATHER])
    assert first.reasoning == "Need weather."
    assert first.message["provider_data"] == {"protocol": "ollama",
                                              "content": {"thinking": "Need weather."}}
    sim.enqueue(text_stream(["Cold."], model="qwen3:0.6b"))
    await llm.respond([{"role": "user", "content": "Oslo?"}, first.message,
                       {"role": "tool", "tool_call_id": "call_0", "content": "-3 C"}],
                      tools=[WEATHER])
    assert _body(sim)["messages"][1] == {
        "role": "assistant", "thinking": "Need weather.",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
    }


# ------------------------------------------------------------------------ structured output


async def test_response_schema_is_format(sim: OllamaSimulator) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}},
              "required": ["name"]}
    sim.enqueue(text_stream(['{"name": "Ada"}']))
    response = await _llm(sim).respond("A person.", response_schema=OutputSchema("p", schema))
    assert response.text == '{"name": "Ada"}'
    assert _body(sim)["format"] == schema


def test_capabilities_say_what_ollama_takes() -> None:
    caps = OllamaLLM.capabilities
    assert (caps.images, caps.image_urls, caps.documents, caps.tools) == (True, False, False, True)
    assert caps.tool_choices == frozenset({"auto"})
    assert caps.parallel_tool_calls is False
    assert (caps.structured, caps.reasoning) == ("json_schema", frozenset({"effort"}))


async def test_generate_object_reasks_after_an_invalid_answer(sim: OllamaSimulator) -> None:
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    sim.enqueue(text_stream(['{"name": "Ada", "age": "old"}']))
    sim.enqueue(text_stream(['{"name": "Ada", "age": 36}']))
    person = await _llm(sim).generate_object("A person as JSON.", schema=Person)
    assert person == Person(name="Ada", age=36)
    assert len(sim.requests) == 2
    schema = {"properties": {"name": {"title": "Name", "type": "string"},
                             "age": {"title": "Age", "type": "integer"}},
              "required": ["name", "age"], "title": "Person", "type": "object"}
    assert _body(sim, 0)["format"] == _body(sim, 1)["format"] == schema
    second = _body(sim, 1)["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1] == {"role": "assistant", "content": '{"name": "Ada", "age": "old"}'}


async def test_run_tools_with_the_capture(sim: OllamaSimulator) -> None:
    def get_weather(city: str) -> str:
        return f"{city}: 18 C"

    tool = Tool(WEATHER.name, WEATHER.description, WEATHER.parameters, function=get_weather)
    sim.enqueue(capture("ollama/stream_tool_call.ndjson"))
    sim.enqueue(text_stream(["18 C in Tokyo."]))
    final = await _llm(sim).run_tools("Weather in Tokyo?", tools=[tool])
    assert final.text == "18 C in Tokyo."
    assert _body(sim)["messages"][-1] == {"role": "tool", "content": "Tokyo: 18 C",
                                          "tool_name": "get_weather"}
    assert len(sim.requests) == 2


async def test_a_cache_hit_replays_the_call(sim: OllamaSimulator) -> None:
    llm = _llm(sim, cache=True)
    sim.enqueue(capture("ollama/stream_tool_call.ndjson"))
    first = await llm.respond("Weather in Tokyo?", tools=[WEATHER])
    again = await llm.respond("Weather in Tokyo?", tools=[WEATHER])
    assert len(sim.requests) == 1
    assert again.tool_calls == first.tool_calls == (
        ToolCall("call_0", "get_weather", {"city": "Tokyo"}, 0),)
    assert again.finish_reason == "tool_calls"
