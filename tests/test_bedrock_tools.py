"""Bedrock Converse: tools, tool results, images and PDFs, reasoning, structured output and
cache points -- the real boto3 over HTTP to the simulator, which validates each request the
way the service does (synapsekit/testing/simulators/bedrock_converse.py) and records it."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import InvalidRequestError, ToolCallError, UnsupportedFeatureError
from synapsekit.llm.providers.bedrock import BedrockLLM
from synapsekit.llm.providers.bedrock.encode import document_name
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import (
    Chunk,
    Message,
    OutputSchema,
    ToolCall,
    ToolCallDelta,
    Usage,
    build_messages,
)
from synapsekit.testing.simulators.bedrock_protocol import (
    BedrockSimulator,
    capture,
    event,
    tool_stream,
)
from synapsekit.testing.simulators.server import Reply
from tests.sim_fixtures import aws_credentials

pytestmark = pytest.mark.filterwarnings(
    "ignore::synapsekit.llm.pricing.UnknownModelPriceWarning"  # Nova 2, gpt-oss, Llama rows
)

ACCESS_KEY = "AKIASYNAPSEKITTEST02"
SECRET_KEY = "bedrock-tools-secret-key-0123456789abcdef"
REGION = "us-east-1"
HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET_37 = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
SONNET_45 = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA_2 = "us.amazon.nova-2-lite-v1:0"
NOVA_MICRO = "amazon.nova-micro-v1:0"
GPT_OSS = "openai.gpt-oss-120b-1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
SIGNATURE = "Ep0CCkgICxABGAIqQOWPB6/PmA5SW9jC6Fva"

WEATHER = Tool(
    "get_weather",
    "The current weather of a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
WEATHER_SPEC = {"toolSpec": {
    "name": "get_weather",
    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}},
                             "required": ["city"]}},
    "description": "The current weather of a city.",
}}


@pytest.fixture(scope="module")
def sim() -> Iterator[BedrockSimulator]:
    with BedrockSimulator({ACCESS_KEY: SECRET_KEY}, region=REGION) as server:
        yield server


@pytest.fixture(autouse=True)
def aws_env(
    sim: BedrockSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    aws_credentials(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY, REGION)
    sim.reset()
    yield
    assert not sim.errors


def llm_for(sim: BedrockSimulator, model: str = HAIKU, **fields: Any) -> BedrockLLM:
    llm = make_llm(model, base_url=sim.url, cache=False, **fields)
    assert isinstance(llm, BedrockLLM)
    return llm


def bodies(sim: BedrockSimulator) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in sim.requests]


async def raw_chunks(llm: BedrockLLM, prompt: Any = "hi", **fields: Any) -> list[Chunk]:
    """The decoder's own chunks (no call-path assembly)."""
    config = dataclasses.replace(llm.config, **fields) if fields else llm.config
    return [c async for c in llm._stream(build_messages(prompt, None), config)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- decode ------------------------------------------------------------------------------------


async def test_capture_tool_call_deltas_exact(sim: BedrockSimulator) -> None:
    sim.enqueue(capture("bedrock/stream_tool_call_synthetic.eventstream"))
    chunks = await raw_chunks(llm_for(sim))
    assert [c.tool_delta for c in chunks[:-1]] == [
        ToolCallDelta(0, id="tool-use-id", name="test-tool"),
        ToolCallDelta(0, arguments='{"value":'),
        ToolCallDelta(0, arguments='"Sparkle Day"}'),
        ToolCallDelta(0, done=True),
    ]
    final = chunks[-1]
    assert final.usage == Usage(input_tokens=125, output_tokens=45)
    assert final.finish_reason == "tool_calls"
    assert final.metadata == {"raw_finish_reason": "tool_use"}
    assert final.provider_data is None


async def test_capture_tool_call_through_respond(sim: BedrockSimulator) -> None:
    sim.enqueue(capture("bedrock/stream_tool_call_synthetic.jsonl"))
    response = await llm_for(sim).respond("hi")
    assert response.tool_calls == (
        ToolCall(id="tool-use-id", name="test-tool", arguments={"value": "Sparkle Day"}),
    )
    assert (response.text, response.finish_reason) == ("", "tool_calls")
    assert response.usage == Usage(input_tokens=125, output_tokens=45)
    assert response.message == {"role": "assistant", "content": "",
                                "tool_calls": list(response.tool_calls)}


async def test_parallel_calls_kept_apart_by_block(sim: BedrockSimulator) -> None:
    sim.enqueue(tool_stream(
        [("tooluse_A1", "get_weather", ['{"ci', 'ty": "Paris"}']),
         ("tooluse_B2", "get_weather", ['{"city": ', '"Oslo"}'])],
        text=["Checking ", "both."], usage={"inputTokens": 61, "outputTokens": 33},
    ))
    llm = llm_for(sim)
    response = await llm.respond("Weather in Paris and Oslo?", tools=[WEATHER])
    assert response.text == "Checking both."
    assert response.tool_calls == (
        ToolCall("tooluse_A1", "get_weather", {"city": "Paris"}, index=0),
        ToolCall("tooluse_B2", "get_weather", {"city": "Oslo"}, index=1),
    )
    assert response.usage == Usage(input_tokens=61, output_tokens=33)
    assert bodies(sim)[0]["toolConfig"] == {"tools": [WEATHER_SPEC]}


async def test_invalid_tool_json_is_a_tool_call_error(sim: BedrockSimulator) -> None:
    sim.enqueue(tool_stream([("tooluse_X", "get_weather", ['{"city": "Par'])]))
    with pytest.raises(ToolCallError) as caught:
        await llm_for(sim).respond("hi", tools=[WEATHER])
    assert caught.value.raw_arguments == '{"city": "Par'
    assert (caught.value.tool_name, caught.value.tool_call_id) == ("get_weather", "tooluse_X")


async def test_reasoning_capture_kept_with_its_signature(sim: BedrockSimulator) -> None:
    sim.enqueue(capture("bedrock/stream_reasoning.eventstream"))
    response = await llm_for(sim, SONNET_37).respond("How many r's in strawberry?")
    assert response.reasoning.startswith("Let me count the r's in \"strawberry\":")
    assert response.text.startswith("There are **3** r's")
    [block] = response.message["provider_data"]["content"]
    assert block["reasoningContent"]["reasoningText"]["text"] == response.reasoning
    assert block["reasoningContent"]["reasoningText"]["signature"].startswith("Ep0CCkgICxAB")
    assert response.message["provider_data"]["protocol"] == "bedrock"
    json.dumps(response.message["provider_data"])  # cacheable, appendable


async def test_redacted_reasoning_round_trips_as_bytes(sim: BedrockSimulator) -> None:
    secret = b"\x01\x02opaque-thought\xff"
    sim.enqueue(Reply(200, {"content-type": "application/vnd.amazon.eventstream"}, stream=[
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
            "reasoningContent": {"redactedContent": b64(secret)}}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Done."}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "end_turn"}),
        event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}}),
    ]))
    llm = llm_for(sim, SONNET_37)
    first = await llm.respond("think")
    assert first.message["provider_data"] == {
        "protocol": "bedrock",
        "content": [{"reasoningContent": {"redactedContent": b64(secret)}}],
    }
    await llm.respond([{"role": "user", "content": "think"}, first.message,
                       {"role": "user", "content": "again"}])
    sent = bodies(sim)[1]["messages"][1]["content"]
    assert sent == [{"reasoningContent": {"redactedContent": b64(secret)}}, {"text": "Done."}]


@pytest.mark.parametrize(("raw", "finish"), [
    ("guardrail_intervened", "content_filter"), ("content_filtered", "content_filter"),
    ("max_tokens", "length"), ("end_turn", "stop"),
])
async def test_stop_reasons(sim: BedrockSimulator, raw: str, finish: str) -> None:
    sim.enqueue(tool_stream([], text=["x"], stop_reason=raw))
    chunks = await raw_chunks(llm_for(sim))
    assert (chunks[-1].finish_reason, chunks[-1].metadata) == (finish, {"raw_finish_reason": raw})


# --- a tool loop -------------------------------------------------------------------------------


async def test_two_step_tool_loop(sim: BedrockSimulator) -> None:
    sim.enqueue(
        tool_stream([("tooluse_w1", "get_weather", ['{"city": "Paris"}'])]),
        tool_stream([], text=["It is 18 C in Paris."], stop_reason="end_turn"),
    )
    llm = llm_for(sim, system_prompt="Be brief.")
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await llm.respond(history, tools=[WEATHER], tool_choice="required")
    history += [first.message, {"role": "tool", "tool_call_id": "tooluse_w1",
                                "name": "get_weather", "content": '{"temp_c": 18}'}]
    second = await llm.respond(history, tools=[WEATHER])
    assert (second.text, second.finish_reason) == ("It is 18 C in Paris.", "stop")
    one, two = bodies(sim)
    assert one["toolConfig"] == {"tools": [WEATHER_SPEC], "toolChoice": {"any": {}}}
    assert two["system"] == [{"text": "Be brief."}]
    assert two["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [{"toolUse": {
            "toolUseId": "tooluse_w1", "name": "get_weather", "input": {"city": "Paris"}}}]},
        {"role": "user", "content": [{"toolResult": {
            "toolUseId": "tooluse_w1", "content": [{"text": '{"temp_c": 18}'}]}}]},
    ]
    assert len(sim.requests) == 2


async def test_tool_loop_with_thinking_sends_the_signed_block_back(sim: BedrockSimulator) -> None:
    thought = Reply(200, {"content-type": "application/vnd.amazon.eventstream"}, stream=[
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0,
                                    "delta": {"reasoningContent": {"text": "Need weather."}}}),
        event("contentBlockDelta", {"contentBlockIndex": 0,
                                    "delta": {"reasoningContent": {"signature": SIGNATURE}}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("contentBlockStart", {"contentBlockIndex": 1, "start": {
            "toolUse": {"toolUseId": "tooluse_t1", "name": "get_weather"}}}),
        event("contentBlockDelta", {"contentBlockIndex": 1,
                                    "delta": {"toolUse": {"input": '{"city":"Rome"}'}}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "tool_use"}),
        event("metadata", {"usage": {"inputTokens": 9, "outputTokens": 8, "totalTokens": 17}}),
    ])
    sim.enqueue(thought, tool_stream([], text=["Sunny."], stop_reason="end_turn"))
    llm = llm_for(sim, SONNET_37, max_tokens=4096, reasoning_budget=2048)
    history: list[Any] = [{"role": "user", "content": "Rome?"}]
    first = await llm.respond(history, tools=[WEATHER])
    assert first.tool_calls == (ToolCall("tooluse_t1", "get_weather", {"city": "Rome"}),)
    result = {"role": "tool", "tool_call_id": "tooluse_t1", "content": "sunny"}
    # Without the signed thinking block the service refuses the turn.
    bare = {"role": "assistant", "content": "", "tool_calls": list(first.tool_calls)}
    with pytest.raises(InvalidRequestError, match="must start with a thinking block"):
        await llm.respond([*history, bare, result], tools=[WEATHER])
    second = await llm.respond([*history, first.message, result], tools=[WEATHER])
    assert second.text == "Sunny."
    sent = bodies(sim)[-1]
    assert sent["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "Need weather.", "signature": SIGNATURE}}},
        {"toolUse": {"toolUseId": "tooluse_t1", "name": "get_weather", "input": {"city": "Rome"}}},
    ]
    assert sent["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert "temperature" not in sent["inferenceConfig"]


async def test_tool_error_result_and_merged_results(sim: BedrockSimulator) -> None:
    sim.enqueue(tool_stream([], text=["ok"], stop_reason="end_turn"))
    calls = [ToolCall("tooluse_1", "get_weather", {"city": "A"}, 0),
             ToolCall("tooluse_2", "get_weather", {"city": "B"}, 1)]
    await llm_for(sim).respond([
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "Error: KeyError: 'A'"},
        {"role": "tool", "tool_call_id": "tooluse_2", "content": "12 C"},
    ], tools=[WEATHER])
    assert bodies(sim)[0]["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "Error: KeyError: 'A'"}],
                        "status": "error"}},
        {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "12 C"}]}},
    ]}


async def test_simulator_refuses_a_result_without_its_tool_use(sim: BedrockSimulator) -> None:
    calls = [ToolCall("tooluse_1", "get_weather", {"city": "A"}, 0)]
    with pytest.raises(InvalidRequestError, match="for the following Ids: tooluse_1"):
        await llm_for(sim).respond([
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "tooluse_other", "content": "x"},
        ], tools=[WEATHER])


@pytest.mark.parametrize(("choice", "native"), [
    ("auto", {"auto": {}}), ("required", {"any": {}}),
    ({"name": "get_weather"}, {"tool": {"name": "get_weather"}}),
])
async def test_tool_choice(sim: BedrockSimulator, choice: Any, native: Any) -> None:
    sim.enqueue(tool_stream([], text=["ok"], stop_reason="end_turn"))
    await llm_for(sim).respond("hi", tools=[WEATHER], tool_choice=choice)
    assert bodies(sim)[0]["toolConfig"]["toolChoice"] == native


async def test_refused_before_any_request(sim: BedrockSimulator) -> None:
    llm = llm_for(sim)
    with pytest.raises(UnsupportedFeatureError, match="tool_choice='none'"):
        await llm.respond("hi", tools=[WEATHER], tool_choice="none")
    with pytest.raises(UnsupportedFeatureError, match="parallel_tool_calls=False"):
        await llm.respond("hi", tools=[WEATHER], parallel_tool_calls=False)
    with pytest.raises(UnsupportedFeatureError, match="not URLs"):
        await llm.respond([{"role": "user", "content": [
            {"type": "image", "url": "https://example.com/cat.png"}]}])
    with pytest.raises(UnsupportedFeatureError, match="image"):
        await llm_for(sim, NOVA_MICRO).respond([{"role": "user", "content": [
            {"type": "text", "text": "what is it?"}, {"type": "image", "data": PNG}]}])
    with pytest.raises(UnsupportedFeatureError, match="reasoning"):
        await llm_for(sim, LLAMA).respond("hi", reasoning_effort="high")
    with pytest.raises(UnsupportedFeatureError, match="forced tool while it thinks"):
        await llm_for(sim, SONNET_37, max_tokens=4096).respond(
            "hi", tools=[WEATHER], tool_choice="required", reasoning_budget=2048)
    with pytest.raises(UnsupportedFeatureError, match="raise max_tokens"):
        await llm_for(sim, SONNET_37, max_tokens=1000).respond("hi", reasoning_effort="low")
    assert sim.requests == []


# --- images and documents ----------------------------------------------------------------------


async def test_image_and_pdf_bodies(sim: BedrockSimulator) -> None:
    sim.enqueue(tool_stream([], text=["A cat."], stop_reason="end_turn"))
    await llm_for(sim).respond([{"role": "user", "content": [
        {"type": "text", "text": "Compare."},
        {"type": "image", "data": PNG, "media_type": "image/png"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(PNG)}},
        {"type": "document", "data": PDF, "media_type": "application/pdf",
         "name": "Q3 report (final).pdf"},
        {"type": "document", "data": b64(PDF), "media_type": "application/pdf"},
    ]}])
    assert bodies(sim)[0]["messages"] == [{"role": "user", "content": [
        {"text": "Compare."},
        {"image": {"format": "png", "source": {"bytes": b64(PNG)}}},
        {"image": {"format": "png", "source": {"bytes": b64(PNG)}}},
        {"document": {"format": "pdf", "name": "Q3 report (final)",
                      "source": {"bytes": b64(PDF)}}},
        {"document": {"format": "pdf", "name": "document-2", "source": {"bytes": b64(PDF)}}},
    ]}]


def test_document_names_are_sanitised() -> None:
    assert document_name("my_file.v2.pdf", 1) == "my-file-v2"
    assert document_name("  a   b\t[c]  ", 1) == "a b [c]"
    assert document_name("ÿ.pdf", 3) == "-"
    assert document_name(None, 4) == "document-4"
    assert document_name("x" * 300, 1) == "x" * 200


# --- reasoning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "fields", "sent"), [
    (SONNET_37, {"reasoning_effort": "high"}, {"thinking": {"type": "enabled",
                                                            "budget_tokens": 24576}}),
    (SONNET_37, {"reasoning_budget": 100}, {"thinking": {"type": "enabled",
                                                         "budget_tokens": 1024}}),
    (SONNET_37, {"reasoning_budget": 64000}, {"thinking": {"type": "enabled",
                                                           "budget_tokens": 31999}}),
    (SONNET_45, {"reasoning_effort": "none"}, None),
    (NOVA_2, {"reasoning_effort": "minimal"}, {"reasoningConfig": {
        "type": "enabled", "maxReasoningEffort": "low"}}),
    (NOVA_2, {"reasoning_effort": "xhigh"}, {"reasoningConfig": {
        "type": "enabled", "maxReasoningEffort": "high"}}),
    (NOVA_2, {"reasoning_budget": 0}, None),
    (GPT_OSS, {"reasoning_effort": "medium"}, {"reasoning_effort": "medium"}),
])
async def test_reasoning_mapping(
    sim: BedrockSimulator, model: str, fields: dict[str, Any], sent: Any
) -> None:
    sim.enqueue(tool_stream([], text=["ok"], stop_reason="end_turn"))
    await llm_for(sim, model, max_tokens=32000, temperature=0.3).respond("hi", **fields)
    body = bodies(sim)[0]
    assert body.get("additionalModelRequestFields") == sent
    thinking = sent is not None and "thinking" in sent
    assert ("temperature" in body["inferenceConfig"]) is not thinking


# --- structured output -------------------------------------------------------------------------

PERSON = OutputSchema("Person", {"type": "object", "properties": {"name": {"type": "string"}},
                                 "required": ["name"]})


async def test_structured_output_native_on_claude_4_5(sim: BedrockSimulator) -> None:
    sim.enqueue(tool_stream([], text=['{"name": ', '"Ada"}'], stop_reason="end_turn"))
    response = await llm_for(sim, SONNET_45).respond("who?", response_schema=PERSON)
    assert response.text == '{"name": "Ada"}'
    body = bodies(sim)[0]
    assert body["outputConfig"] == {"textFormat": {"type": "json_schema", "structure": {
        "jsonSchema": {"schema": json.dumps(dict(PERSON.schema)), "name": "Person"}}}}
    assert "toolConfig" not in body


async def test_structured_output_forced_tool_elsewhere(sim: BedrockSimulator) -> None:
    sim.enqueue(tool_stream([("tooluse_s", "Person", ['{"name"', ': "Ada"}'])]))
    chunks = await raw_chunks(llm_for(sim), "who?", response_schema=PERSON)
    assert [c.text for c in chunks[:-1]] == ['{"name"', ': "Ada"}']
    assert all(c.tool_delta is None for c in chunks)
    assert chunks[-1].finish_reason == "stop"
    assert bodies(sim)[0]["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "Person", "description": "Answer with a Person object.",
                                "inputSchema": {"json": dict(PERSON.schema)}}}],
        "toolChoice": {"tool": {"name": "Person"}},
    }


async def test_generate_object_over_the_forced_tool_with_a_reask(sim: BedrockSimulator) -> None:
    sim.enqueue(tool_stream([("tooluse_s1", "Person", ['{"name": 5}'])]),
                tool_stream([("tooluse_s2", "Person", ['{"name": "Ada"}'])]))
    schema = {**PERSON.schema, "title": "Person"}
    person = await llm_for(sim).generate_object("who?", schema=schema)
    assert person == {"name": "Ada"}
    retry = bodies(sim)[1]
    assert retry["messages"][1] == {"role": "assistant", "content": [{"text": '{"name": 5}'}]}
    assert retry["toolConfig"]["toolChoice"] == {"tool": {"name": "Person"}}
    assert len(sim.requests) == 2


# --- prompt caching ----------------------------------------------------------------------------


async def test_cache_points_after_system_tools_and_the_stable_turns(
    sim: BedrockSimulator,
) -> None:
    sim.enqueue(tool_stream([], text=["ok"], stop_reason="end_turn",
                            usage={"inputTokens": 4, "outputTokens": 1,
                                   "cacheReadInputTokens": 900, "cacheWriteInputTokens": 50}))
    history: list[Message] = [
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    response = await llm_for(sim, system_prompt="S", cache_prompt=True).respond(
        history, tools=[WEATHER])
    body = bodies(sim)[0]
    point = {"cachePoint": {"type": "default"}}
    assert body["system"] == [{"text": "S"}, point]
    assert body["toolConfig"]["tools"] == [WEATHER_SPEC, point]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "one"}]},
        {"role": "assistant", "content": [{"text": "two"}, point]},
        {"role": "user", "content": [{"text": "three"}]},
    ]
    assert response.usage == Usage(input_tokens=954, output_tokens=1, cached_input_tokens=900,
                                   cache_write_tokens=50)


async def test_no_cache_points_where_the_model_has_no_prompt_caching(
    sim: BedrockSimulator,
) -> None:
    sim.enqueue(tool_stream([], text=["ok"], stop_reason="end_turn"))
    await llm_for(sim, LLAMA, system_prompt="S", cache_prompt=True).respond("hi")
    assert "cachePoint" not in json.dumps(bodies(sim)[0])


def test_capabilities_are_declared() -> None:
    caps = BedrockLLM.capabilities
    assert (caps.images, caps.image_urls, caps.documents, caps.tools) == (True, False, True, True)
    assert caps.tool_choices == frozenset({"auto", "required", "name"})
    assert (caps.parallel_tool_calls, caps.structured) == (False, "json_schema")
    assert caps.reasoning == frozenset({"budget", "effort"})


# --- run_tools and rich tool results -----------------------------------------------------------


async def test_run_tools_parallel_calls_then_answer(sim: BedrockSimulator) -> None:
    seen: list[str] = []

    def get_weather(city: str) -> dict[str, Any]:
        seen.append(city)
        return {"city": city, "temp_c": {"Paris": 18, "Oslo": 4}[city]}

    tool = Tool(WEATHER.name, WEATHER.description, WEATHER.parameters, function=get_weather)
    sim.enqueue(
        tool_stream([("tooluse_p", "get_weather", ['{"city": "Paris"}']),
                     ("tooluse_o", "get_weather", ['{"city": "Oslo"}'])]),
        tool_stream([], text=["Paris 18 C, Oslo 4 C."], stop_reason="end_turn"),
    )
    final = await llm_for(sim).run_tools("Paris and Oslo?", tools=[tool])
    assert final.text == "Paris 18 C, Oslo 4 C."
    assert sorted(seen) == ["Oslo", "Paris"]
    results = bodies(sim)[1]["messages"][2]
    assert results == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "tooluse_p",
                        "content": [{"text": '{"city": "Paris", "temp_c": 18}'}]}},
        {"toolResult": {"toolUseId": "tooluse_o",
                        "content": [{"text": '{"city": "Oslo", "temp_c": 4}'}]}},
    ]}
    assert len(sim.requests) == 2


async def test_tool_result_with_an_image_part(sim: BedrockSimulator) -> None:
    sim.enqueue(tool_stream([], text=["A chart."], stop_reason="end_turn"))
    calls = [ToolCall("tooluse_c", "get_weather", {"city": "A"}, 0)]
    await llm_for(sim).respond([
        {"role": "user", "content": "chart?"},
        {"role": "assistant", "content": "Drawing.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "tooluse_c", "content": [
            {"type": "text", "text": "here"}, {"type": "image", "data": PNG}]},
        {"role": "user", "content": "Describe it."},
    ], tools=[WEATHER])
    assert bodies(sim)[0]["messages"][1:] == [
        {"role": "assistant", "content": [{"text": "Drawing."}, {"toolUse": {
            "toolUseId": "tooluse_c", "name": "get_weather", "input": {"city": "A"}}}]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "tooluse_c", "content": [
                {"text": "here"}, {"image": {"format": "png", "source": {"bytes": b64(PNG)}}}]}},
            {"text": "Describe it."},
        ]},
    ]


@pytest.mark.parametrize(("model", "strict"), [(SONNET_45, True), (HAIKU, None)])
async def test_strict_tools_only_where_aws_has_them(
    sim: BedrockSimulator, model: str, strict: bool | None
) -> None:
    sim.enqueue(tool_stream([], text=["ok"], stop_reason="end_turn"))
    tool = Tool(WEATHER.name, WEATHER.description, WEATHER.parameters, strict=True)
    await llm_for(sim, model).respond("hi", tools=[tool])
    assert bodies(sim)[0]["toolConfig"]["tools"][0]["toolSpec"].get("strict") == strict


async def test_cache_hit_replays_tool_calls_and_reasoning(sim: BedrockSimulator) -> None:
    sim.enqueue(capture("bedrock/stream_reasoning.jsonl"),
                tool_stream([("tooluse_k", "get_weather", ['{"city": "Nice"}'])]))
    llm = make_llm(SONNET_37, base_url=sim.url, cache=True)
    first = await llm.respond("strawberry?")
    again = await llm.respond("strawberry?")
    assert (again.text, again.reasoning) == (first.text, first.reasoning)
    assert again.message.get("provider_data") == first.message["provider_data"]
    call = await llm.respond("Nice?", tools=[WEATHER])
    replay = await llm.respond("Nice?", tools=[WEATHER])
    assert replay.tool_calls == call.tool_calls == (
        ToolCall("tooluse_k", "get_weather", {"city": "Nice"}),)
    assert len(sim.requests) == 2
