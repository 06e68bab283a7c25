"""Tool calls on the OpenAI protocol, through the real openai SDK over HTTP to the simulator:
the real captures (OpenAI, Groq, Cerebras), parallel calls interleaved, a long call, the legacy
function_call, tool_choice / parallel_tool_calls / strict tools as sent, a two-step tool loop
accepted by the simulator's validation, invalid arguments -> ToolCallError."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import InvalidRequestError, ToolCallError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Chunk, ToolCall, ToolCallDelta
from synapsekit.testing.simulators.openai_checks import check_features
from synapsekit.testing.simulators.openai_protocol import (
    OpenAISimulator,
    _invalid,
    capture,
    text_stream,
)
from synapsekit.testing.simulators.openai_streams import Call, long_tool_call, tool_stream
from synapsekit.testing.simulators.server import Reply
from tests.conftest import API_KEY

WEATHER = Tool(
    "get_weather", "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"},
                                      "unit": {"type": "string", "enum": ["C", "F"]}},
     "required": ["city"]},
)
TIME = Tool("get_time", "The time in a timezone.",
            {"type": "object", "properties": {"timezone": {"type": "string"}},
             "required": ["timezone"]})
NYC_ID = "call_4XzlGBLtUe9dy3GVNV4jhq7h"


@pytest.fixture
def sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(API_KEY) as server:
        yield server


def _llm(sim: OpenAISimulator, spec: str = "openai:gpt-4o", **fields: Any) -> BaseLLM:
    return make_llm(spec, api_key=API_KEY, base_url=sim.url, **fields)


async def _chunks(llm: BaseLLM, prompt: str = "Weather in NYC?", **overrides: Any) -> list[Chunk]:
    return [c async for c in llm.stream_chunks(prompt, **overrides)]


def _accepted(sim: OpenAISimulator) -> None:
    """Every request the simulator saw passed its validation (none answered 400)."""
    for request in sim.requests:
        body = request.json()
        assert check_features(body, body["model"], sim.vendor, _invalid) is None


async def test_openai_capture_tool_call_ids_arguments_usage_and_request(
    sim: OpenAISimulator,
) -> None:
    sim.enqueue(capture("openai/stream_tool_call.sse"))
    llm = _llm(sim)
    response = await llm.respond("Weather in NYC?", tools=[WEATHER])
    assert response.tool_calls == (ToolCall(NYC_ID, "get_weather", {"city": "New York City"}),)
    assert response.text == "" and response.finish_reason == "tool_calls"
    assert "raw_finish_reason" not in response.metadata  # only when it differs from ours
    assert (response.usage.input_tokens, response.usage.output_tokens) == (44, 16)
    assert response.message["tool_calls"] == list(response.tool_calls)
    (request,) = sim.requests
    assert request.json()["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city.",
        "parameters": dict(WEATHER.parameters)}}]
    assert "tool_choice" not in request.json() and "parallel_tool_calls" not in request.json()


async def test_capture_deltas_first_carries_id_and_name(sim: OpenAISimulator) -> None:
    sim.enqueue(capture("openai/stream_tool_call.sse"))
    chunks = await _chunks(_llm(sim), tools=[WEATHER])
    deltas = [c.tool_delta for c in chunks if c.tool_delta is not None]
    assert deltas[0] == ToolCallDelta(0, NYC_ID, "get_weather", "")
    assert all(d.id is None and d.name is None and d.index == 0 for d in deltas[1:])
    assert [d.arguments for d in deltas[1:]] == ['{"', "city", '":"', "New", " York", " City",
                                                 '"}']
    (done,) = [c.tool_call for c in chunks if c.tool_call is not None]
    assert done == ToolCall(NYC_ID, "get_weather", {"city": "New York City"})
    assert chunks[-1].finish_reason == "tool_calls"


async def test_interleaved_parallel_calls_stay_apart(sim: OpenAISimulator) -> None:
    sim.enqueue(capture("openai_compatible/synthetic/stream_parallel_tool_calls_interleaved.sse"))
    llm = _llm(sim)
    response = await llm.respond("Weather and time in NYC?", tools=[WEATHER, TIME],
                                 parallel_tool_calls=True)
    assert response.tool_calls == (
        ToolCall(NYC_ID, "get_weather", {"city": "New York City"}, 0),
        ToolCall("call_Zb3hQwX0pYtN8e2LmR5vKc1s", "get_time",
                 {"timezone": "America/New_York"}, 1),
    )
    assert (response.usage.input_tokens, response.usage.output_tokens) == (66, 41)
    assert sim.requests[0].json()["parallel_tool_calls"] is True


@pytest.mark.parametrize(("provider", "model", "wire", "call", "usage"), [
    ("groq", "llama-3.3-70b-versatile", "openai_compatible/groq/stream_tool_call_realcapture.sse",
     ToolCall("tk85n1k4m", "weather", {}), (210, 15, 0, 0)),
    ("cerebras", "zai-glm-4.7",
     "openai_compatible/cerebras/stream_reasoning_tool_call_realcapture.sse",
     ToolCall("bbd2b9d98", "nonUsefulTool", {}), (322, 104, 256, 97)),
])
async def test_vendor_captures_whole_call_in_one_delta(
    sim: OpenAISimulator, provider: str, model: str, wire: str, call: ToolCall,
    usage: tuple[int, int, int, int],
) -> None:
    sim.enqueue(capture(wire))
    tool = Tool(call.name, "", {"type": "object", "properties": {}})
    response = await _llm(sim, f"{provider}:{model}").respond("go", tools=[tool])
    assert response.tool_calls == (call,)
    assert response.finish_reason == "tool_calls"
    u = response.usage
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens) == usage
    assert len(response.reasoning) == (423 if provider == "cerebras" else 0)


@pytest.mark.parametrize(("choice", "sent"), [
    ("auto", "auto"), ("none", "none"), ("required", "required"),
    ({"name": "get_time"}, {"type": "function", "function": {"name": "get_time"}}),
])
async def test_tool_choice_as_sent(sim: OpenAISimulator, choice: Any, sent: Any) -> None:
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim).respond("hi", tools=[WEATHER, TIME], tool_choice=choice,
                            parallel_tool_calls=False)
    body = sim.requests[0].json()
    assert body["tool_choice"] == sent and body["parallel_tool_calls"] is False
    _accepted(sim)


async def test_two_step_tool_loop_history_accepted(sim: OpenAISimulator) -> None:
    sim.enqueue(capture("openai/stream_tool_call.sse"), text_stream(["It is", " sunny."]))
    llm = _llm(sim)
    history: list[Any] = [{"role": "user", "content": "Weather in NYC?"}]
    first = await llm.respond(history, tools=[WEATHER])
    history += [first.message,
                {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "22 C"}]
    second = await llm.respond(history, tools=[WEATHER])
    assert second.text == "It is sunny." and second.finish_reason == "stop"
    assert len(sim.requests) == 2
    assert sim.requests[1].json()["messages"][-2:] == [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": NYC_ID, "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "New York City"}'}}]},
        {"role": "tool", "tool_call_id": NYC_ID, "content": "22 C"},
    ]
    _accepted(sim)


async def test_tool_result_without_matching_call_is_the_real_400(sim: OpenAISimulator) -> None:
    llm = _llm(sim)
    with pytest.raises(InvalidRequestError, match="must be a response to a preceeding message"):
        await llm.respond([
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_a", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_b", "content": "22 C"},
        ], tools=[WEATHER])
    assert len(sim.requests) == 1


async def test_strict_tool_sent_in_strict_dialect_and_accepted(sim: OpenAISimulator) -> None:
    strict = Tool(WEATHER.name, WEATHER.description, WEATHER.parameters, strict=True)
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim).respond("hi", tools=[strict])
    function = sim.requests[0].json()["tools"][0]["function"]
    assert function["strict"] is True
    assert function["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"},
                       "unit": {"type": ["string", "null"], "enum": ["C", "F"]}},
        "required": ["city", "unit"], "additionalProperties": False,
    }
    _accepted(sim)


async def test_simulator_refuses_non_strict_schema_marked_strict() -> None:
    function = {"name": "f", "strict": True,
                "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}],
                            "tools": [{"type": "function", "function": function}]}
    reply = check_features(body, "gpt-4o", "openai", _invalid)
    assert isinstance(reply, Reply) and reply.status == 400
    assert b"'additionalProperties' is required to be supplied and to be false" in reply.body
    body["tools"][0]["function"]["name"] = "bad name"
    reply = check_features(body, "gpt-4o", "openai", _invalid)
    assert reply is not None and b"tools[0].function.name" in reply.body
    body["tools"][0]["function"] = {"name": "f", "parameters": {"type": "string"}}
    reply = check_features(body, "gpt-4o", "openai", _invalid)
    assert reply is not None and b"schema must be a JSON Schema of 'type: \\\"object\\\"'" in (
        reply.body)
    body["tools"][0]["function"] = {"name": "f"}
    body["tool_choice"] = {"type": "function", "function": {"name": "g"}}
    reply = check_features(body, "gpt-4o", "openai", _invalid)
    assert reply is not None and b"function 'g' is not one of the tools" in reply.body


async def test_invalid_arguments_json_is_a_tool_call_error(sim: OpenAISimulator) -> None:
    sim.enqueue(tool_stream([Call("call_bad", "get_weather", '{"city": "Par')]))
    with pytest.raises(ToolCallError) as caught:
        await _llm(sim).respond("Weather in Paris?", tools=[WEATHER])
    assert caught.value.raw_arguments == '{"city": "Par'
    assert (caught.value.tool_name, caught.value.tool_call_id) == ("get_weather", "call_bad")


async def test_long_call_of_many_fragments(sim: OpenAISimulator) -> None:
    sim.enqueue(long_tool_call(400))
    chunks = await _chunks(_llm(sim), tools=[Tool("search", "", {"type": "object"})])
    deltas = [c.tool_delta for c in chunks if c.tool_delta is not None]
    assert len(deltas) == 401  # the opening delta + 400 argument fragments
    (done,) = [c.tool_call for c in chunks if c.tool_call is not None]
    assert done.id == "call_bench0001" and len(done.arguments["q"]) == 1600 - len('{"q":""}')


async def test_wire_index_from_another_base_and_text_before_calls(sim: OpenAISimulator) -> None:
    sim.enqueue(tool_stream(
        [Call("c1", "get_weather", {"city": "Oslo"}), Call("c2", "get_time", {"timezone": "UTC"})],
        text=["Checking", "..."], wire_index_base=3, interleave=True, fragment=3,
        finish_reason="stop", usage_on_finish=True,
    ))
    response = await _llm(sim).respond("go", tools=[WEATHER, TIME])
    assert response.text == "Checking..."
    assert response.tool_calls == (ToolCall("c1", "get_weather", {"city": "Oslo"}, 0),
                                   ToolCall("c2", "get_time", {"timezone": "UTC"}, 1))
    assert response.finish_reason == "tool_calls"  # the vendor said "stop" with calls
    assert response.metadata["raw_finish_reason"] == "stop"


async def test_legacy_function_call_is_a_tool_call(sim: OpenAISimulator) -> None:
    from synapsekit.testing.simulators.openai_protocol import DONE, SSE_TYPE, _Chunks

    c = _Chunks("gpt-4o", obfuscation=False)
    events = [c.delta({"role": "assistant", "content": None,
                       "function_call": {"name": "get_weather", "arguments": ""}}),
              c.delta({"function_call": {"arguments": '{"city":'}}),
              c.delta({"function_call": {"arguments": '"Rome"}'}}),
              c.delta({}, "function_call"), DONE]
    sim.enqueue(Reply(200, {"content-type": SSE_TYPE}, stream=events))
    response = await _llm(sim).respond("Rome?", tools=[WEATHER])
    assert response.tool_calls == (ToolCall("call_0", "get_weather", {"city": "Rome"}),)
    assert response.finish_reason == "tool_calls"
    assert response.metadata["raw_finish_reason"] == "function_call"


async def test_refusal_is_text_and_metadata(sim: OpenAISimulator) -> None:
    from synapsekit.testing.simulators.openai_protocol import DONE, SSE_TYPE, _Chunks

    c = _Chunks("gpt-4o", obfuscation=False)
    events = [c.delta({"role": "assistant", "content": None, "refusal": ""}),
              c.delta({"refusal": "I can't"}), c.delta({"refusal": " help."}),
              c.delta({}, "stop"), DONE]
    sim.enqueue(Reply(200, {"content-type": SSE_TYPE}, stream=events))
    response = await _llm(sim).respond("?")
    assert response.text == "I can't help."
    assert response.metadata["refusal"] == "I can't help."
