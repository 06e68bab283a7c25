"""Mistral tools, content parts, structured output and reasoning, through the real
``mistralai`` SDK over HTTP to the local simulator (which validates requests like the API).

Exact values from the real capture (stream_tool_call_realcapture.sse: one whole call
``gSIMJiOkT`` / ``weather`` / ``{"location": "San Francisco"}``, 124 + 22 tokens, no
``index``) and from the request bodies the simulator recorded.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    InvalidInputError,
    InvalidRequestError,
    ToolCallError,
    UnsupportedFeatureError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.providers.mistral import MistralLLM
from synapsekit.llm.providers.mistral.encode import mistral_id
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Chunk, OutputSchema, ToolCall, ToolCallDelta, build_messages
from synapsekit.testing.simulators.mistral_protocol import (
    MistralSimulator,
    capture,
    check_body,
    text_stream,
    tool_call_stream,
)
from synapsekit.testing.simulators.server import Reply
from tests.sim_fixtures import autoclose, serve, track

#: What the installed SDK can send (the floors run has mistralai 2.0: no reasoning_effort,
#: no ThinkChunk.signature); the newest SDK has both.
_SDK_CHAT = pytest.importorskip("mistralai.client.chat")
_SDK_MODELS = pytest.importorskip("mistralai.client.models")
SENDS_EFFORT = "reasoning_effort" in inspect.signature(_SDK_CHAT.Chat.stream_async).parameters
SENDS_SIGNATURE = "signature" in _SDK_MODELS.ThinkChunk.model_fields

KEY = "mist-test-key-0123456789"
MODEL = "mistral-small-latest"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
WEATHER = Tool(
    "weather",
    "The weather at a place",
    {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)
TIME = Tool("local_time", "The time at a place",
            {"type": "object", "properties": {"city": {"type": "string"}}})


_server, sim = serve(lambda: MistralSimulator(KEY))


_closing = autoclose()


def _llm(sim: MistralSimulator, model: str = MODEL, **fields: Any) -> BaseLLM:
    fields.setdefault("system_prompt", None)  # exact bodies: no default system turn
    llm = make_llm(model, api_key=KEY, base_url=sim.url, **fields)
    return track(llm)


def _body(sim: MistralSimulator, n: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = sim.requests[n].json()
    return body


async def _chunks(llm: BaseLLM, messages: Any) -> list[Chunk]:
    return [c async for c in llm._stream(build_messages(messages, None), llm.config)]


# --- decode ------------------------------------------------------------------------------------


async def test_capture_tool_call_decodes_to_one_whole_delta(sim: MistralSimulator) -> None:
    sim.enqueue(capture("mistral/stream_tool_call_realcapture.sse"))
    chunks = await _chunks(_llm(sim, tools=[WEATHER]), "weather in SF?")
    deltas = [c.tool_delta for c in chunks if c.tool_delta is not None]
    assert deltas == [ToolCallDelta(0, "gSIMJiOkT", "weather", '{"location": "San Francisco"}')]
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    assert final.metadata == {
        "raw_finish_reason": "tool_calls", "response_id": "b3999b8c93e04e11bcbff7bcab829667"
    }
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (124, 22)
    assert final.provider_data is None
    assert "".join(c.text for c in chunks) == ""


async def test_capture_tool_call_through_respond(sim: MistralSimulator) -> None:
    sim.enqueue(capture("mistral/stream_tool_call_realcapture.sse"))
    response = await _llm(sim).respond("weather in SF?", tools=[WEATHER])
    assert response.tool_calls == (
        ToolCall("gSIMJiOkT", "weather", {"location": "San Francisco"}, 0),)
    assert response.finish_reason == "tool_calls"
    assert response.metadata["raw_finish_reason"] == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (124, 22)
    assert response.text == ""
    assert response.message["tool_calls"] == list(response.tool_calls)
    assert len(sim.requests) == 1


async def test_parallel_whole_calls_in_one_chunk_stay_apart(sim: MistralSimulator) -> None:
    calls = [("aB3dE5gH7", "weather", '{"location": "Paris"}'),
             ("Zz9Yy8Xx7", "weather", '{"location": "Lyon"}'),
             ("Qq1Ww2Ee3", "local_time", '{"city": "Nice"}')]
    sim.enqueue(tool_call_stream(calls, prompt_tokens=80, completion_tokens=41))
    response = await _llm(sim).respond("three things", tools=[WEATHER, TIME])
    assert response.tool_calls == (
        ToolCall("aB3dE5gH7", "weather", {"location": "Paris"}, 0),
        ToolCall("Zz9Yy8Xx7", "weather", {"location": "Lyon"}, 1),
        ToolCall("Qq1Ww2Ee3", "local_time", {"city": "Nice"}, 2),
    )
    assert (response.usage.input_tokens, response.usage.output_tokens) == (80, 41)
    assert response.finish_reason == "tool_calls"


async def test_parallel_incremental_interleaved_calls_stay_apart(sim: MistralSimulator) -> None:
    calls = [("aB3dE5gH7", "weather", '{"location": "San Francisco, CA"}'),
             ("Zz9Yy8Xx7", "local_time", '{"city": "Reykjavik"}')]
    sim.enqueue(tool_call_stream(calls, pieces=3, text=["Let me check."]))
    llm = _llm(sim, tools=[WEATHER, TIME])
    chunks = await _chunks(llm, "two things")
    deltas = [c.tool_delta for c in chunks if c.tool_delta is not None]
    assert [(d.index, d.id, d.name) for d in deltas[:2]] == [
        (0, "aB3dE5gH7", "weather"), (1, "Zz9Yy8Xx7", "local_time")]
    assert all(d.id is None and d.name is None for d in deltas[2:])
    for index, (_, _, arguments) in enumerate(calls):
        assert "".join(d.arguments for d in deltas if d.index == index) == arguments
    sim.enqueue(tool_call_stream(calls, pieces=3, text=["Let me check."]))
    response = await llm.respond("two things")
    assert response.text == "Let me check."
    assert [(c.index, c.id, c.name, dict(c.arguments)) for c in response.tool_calls] == [
        (0, "aB3dE5gH7", "weather", {"location": "San Francisco, CA"}),
        (1, "Zz9Yy8Xx7", "local_time", {"city": "Reykjavik"}),
    ]


async def test_a_call_without_an_id_gets_call_index(sim: MistralSimulator) -> None:
    sim.enqueue(tool_call_stream([("", "weather", '{"location": "Oslo"}')]))
    response = await _llm(sim).respond("?", tools=[WEATHER])
    assert response.tool_calls == (ToolCall("call_0", "weather", {"location": "Oslo"}, 0),)


async def test_arguments_as_an_object_and_junk_entries(sim: MistralSimulator) -> None:
    events = [
        b'data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":null,"tool_calls":['
        b'"junk",{"id":"aB3dE5gH7","function":{"name":"weather","arguments":'
        b'{"location":"Bern"}}}]},"finish_reason":"tool_calls"}],'
        b'"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\n\n',
        b"data: [DONE]\n\n",
    ]
    sim.enqueue(Reply(200, {"content-type": "text/event-stream"}, stream=events))
    response = await _llm(sim).respond("?", tools=[WEATHER])
    assert response.tool_calls == (ToolCall("aB3dE5gH7", "weather", {"location": "Bern"}, 0),)
    assert (response.usage.input_tokens, response.usage.output_tokens) == (5, 3)


async def test_invalid_tool_json_is_a_tool_call_error(sim: MistralSimulator) -> None:
    sim.enqueue(tool_call_stream([("aB3dE5gH7", "weather", '{"location": "San')]))
    with pytest.raises(ToolCallError) as caught:
        await _llm(sim).respond("?", tools=[WEATHER])
    assert caught.value.raw_arguments == '{"location": "San'
    assert caught.value.tool_name == "weather"
    assert caught.value.tool_call_id == "aB3dE5gH7"


async def test_model_length_is_length_and_raw_kept(sim: MistralSimulator) -> None:
    sim.enqueue(text_stream(["cut"], finish_reason="model_length"))
    chunks = await _chunks(_llm(sim), "hi")
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].metadata is not None
    assert chunks[-1].metadata["raw_finish_reason"] == "model_length"


async def test_a_cache_hit_replays_tool_calls_and_thinking(
    sim: MistralSimulator, tmp_path: Any
) -> None:
    sim.enqueue(tool_call_stream([("aB3dE5gH7", "weather", '{"location": "Oslo"}')],
                                 thinking=["Need the weather."]))
    llm = _llm(sim, tools=[WEATHER], cache=True, cache_backend="sqlite",
               cache_path=str(tmp_path / "answers.db"))
    first = await llm.respond("Weather in Oslo?")
    again = await llm.respond("Weather in Oslo?")
    assert len(sim.requests) == 1
    assert again.tool_calls == first.tool_calls == (
        ToolCall("aB3dE5gH7", "weather", {"location": "Oslo"}, 0),)
    assert again.reasoning == "Need the weather."
    assert again.message.get("provider_data") == first.message["provider_data"]
    assert again.finish_reason == "tool_calls"


# --- thinking ----------------------------------------------------------------------------------


async def test_thinking_capture_is_reasoning_and_provider_data(sim: MistralSimulator) -> None:
    sim.enqueue(capture("mistral/stream_thinking_realcapture.sse"))
    response = await _llm(sim, "magistral-medium-2507").respond("2+2?")
    assert response.reasoning == "The user is asking for 2+2. This is basic arithmetic. 2+2=4."
    assert response.text == "2 + 2 = 4"
    assert response.message["provider_data"] == {
        "protocol": "mistral",
        "content": [
            {"type": "thinking", "thinking": [{"type": "text", "text": response.reasoning}]},
            {"type": "text", "text": "2 + 2 = 4"},
        ],
    }
    assert (response.usage.input_tokens, response.usage.output_tokens) == (10, 46)


async def test_thinking_with_signature_goes_back_verbatim(sim: MistralSimulator) -> None:
    sim.enqueue(text_stream(["Four."], thinking=["Two and ", "two."], signature="c2lnLTE=",
                            model=MODEL))
    llm = _llm(sim)
    first = await llm.respond("2+2?")
    assert first.reasoning == "Two and two."
    expected: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "Two and two."}],
         "signature": "c2lnLTE="},
        {"type": "text", "text": "Four."},
    ]
    assert first.message["provider_data"] == {"protocol": "mistral", "content": expected}
    await llm.respond([{"role": "user", "content": "2+2?"}, first.message,
                       {"role": "user", "content": "and 3+3?"}])
    sent = _body(sim, 1)["messages"][1]
    assert sent["role"] == "assistant"
    if not SENDS_SIGNATURE:  # the old SDK's ThinkChunk drops the field it does not know
        del expected[0]["signature"]
    assert sent["content"] == expected


# --- encode: tools, tool results, ids ---------------------------------------------------------


async def test_tools_tool_choice_and_parallel_switch_request_shape(sim: MistralSimulator) -> None:
    strict = Tool("lookup", "", {"type": "object", "properties": {"q": {"type": "string"}},
                                 "required": ["q"], "additionalProperties": False},
                  strict=True)
    llm = _llm(sim)
    cases: list[tuple[Any, Any]] = [
        ("auto", "auto"), ("none", "none"), ("required", "any"),
        ({"name": "weather"}, {"type": "function", "function": {"name": "weather"}}),
    ]
    for given, _ in cases:
        sim.enqueue(text_stream(["ok"]))
        await llm.respond("hi", tools=[WEATHER, strict], tool_choice=given,
                          parallel_tool_calls=False)
    for n, (_, sent) in enumerate(cases):
        body = _body(sim, n)
        assert body["tool_choice"] == sent
        assert body["parallel_tool_calls"] is False
        assert body["tools"] == [
            {"type": "function", "function": {
                "name": "weather", "description": "The weather at a place",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]}}},
            {"type": "function", "function": {
                "name": "lookup", "strict": True,
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                               "required": ["q"], "additionalProperties": False}}},
        ]
    sim.enqueue(text_stream(["ok"]))
    await llm.respond("hi", tools=[WEATHER])
    assert "parallel_tool_calls" not in _body(sim, 4)
    assert "tool_choice" not in _body(sim, 4)


async def test_two_step_tool_loop_through_respond(sim: MistralSimulator) -> None:
    sim.enqueue(capture("mistral/stream_tool_call_realcapture.sse"))
    sim.enqueue(text_stream(["It is ", "sunny."], prompt_tokens=160))
    llm = _llm(sim, tools=[WEATHER])
    history: list[Any] = [{"role": "user", "content": "Weather in SF?"}]
    first = await llm.respond(history)
    history.append(first.message)
    for call in first.tool_calls:
        history.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 18 C"})
    second = await llm.respond(history)
    assert second.text == "It is sunny."
    assert second.finish_reason == "stop"
    assert len(sim.requests) == 2
    assert _body(sim, 1)["messages"] == [
        {"role": "user", "content": "Weather in SF?"},
        {"role": "assistant", "content": "", "prefix": False, "tool_calls": [
            {"id": "gSIMJiOkT", "type": "function", "index": 0,
             "function": {"name": "weather", "arguments": '{"location": "San Francisco"}'}}]},
        {"role": "tool", "tool_call_id": "gSIMJiOkT", "name": "weather",
         "content": "sunny, 18 C"},
    ]


async def test_tool_loop_with_thinking_sends_the_thinking_back(sim: MistralSimulator) -> None:
    sim.enqueue(tool_call_stream([("aB3dE5gH7", "weather", '{"location": "Oslo"}')],
                                 thinking=["Need the ", "weather."]))
    sim.enqueue(text_stream(["Cold."]))
    llm = _llm(sim, tools=[WEATHER])
    first = await llm.respond("Weather in Oslo?")
    assert first.reasoning == "Need the weather."
    assert first.tool_calls == (ToolCall("aB3dE5gH7", "weather", {"location": "Oslo"}, 0),)
    second = await llm.respond([{"role": "user", "content": "Weather in Oslo?"}, first.message,
                                {"role": "tool", "tool_call_id": "aB3dE5gH7", "content": "-5 C"}])
    assert second.text == "Cold."
    assistant = _body(sim, 1)["messages"][1]
    assert assistant["content"] == [
        {"type": "thinking", "thinking": [{"type": "text", "text": "Need the weather."}]}]
    assert [c["id"] for c in assistant["tool_calls"]] == ["aB3dE5gH7"]


async def test_other_providers_ids_are_mapped_consistently(sim: MistralSimulator) -> None:
    sim.enqueue(text_stream(["Done."]))
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "", "tool_calls": [
            ToolCall("toolu_01VpEm654HvfMoRcrE3Hgdc6", "weather", {"location": "Paris"}, 0),
            ToolCall("call_0", "weather", {"location": "Rome"}, 1)]},
        {"role": "tool", "tool_call_id": "toolu_01VpEm654HvfMoRcrE3Hgdc6", "content": "rain"},
        {"role": "tool", "tool_call_id": "call_0", "content": "sun", "name": "weather"},
    ]
    response = await _llm(sim).respond(history, tools=[WEATHER])
    assert response.text == "Done."
    sent = _body(sim)["messages"]
    first, second = mistral_id("toolu_01VpEm654HvfMoRcrE3Hgdc6"), mistral_id("call_0")
    assert [c["id"] for c in sent[1]["tool_calls"]] == [first, second]
    assert [sent[2]["tool_call_id"], sent[3]["tool_call_id"]] == [first, second]
    assert all(re.fullmatch(r"[A-Za-z0-9]{9}", i) for i in (first, second)) and first != second
    assert mistral_id("gSIMJiOkT") == "gSIMJiOkT"
    assert mistral_id("call_0") == second  # stable: the same id maps the same way every time


async def test_tool_result_parts_are_sent_as_chunks(sim: MistralSimulator) -> None:
    sim.enqueue(text_stream(["A chart."]))
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "chart?"},
        {"role": "assistant", "content": "", "tool_calls": [
            ToolCall("aB3dE5gH7", "weather", {"location": "Paris"}, 0)]},
        {"role": "tool", "tool_call_id": "aB3dE5gH7",
         "content": [{"type": "text", "text": "here"}, {"type": "image", "data": PNG}]},
    ]
    await _llm(sim).respond(history, tools=[WEATHER])
    assert _body(sim)["messages"][2]["content"] == [
        {"type": "text", "text": "here"},
        {"type": "image_url",
         "image_url": "data:image/png;base64,iVBORw0KGgoAAAAAAAAAAAAAAAAAAAAA"},
    ]


# --- encode: parts ------------------------------------------------------------------------------


async def test_images_and_pdf_bodies(sim: MistralSimulator) -> None:
    sim.enqueue(text_stream(["A cat."]))
    await _llm(sim).respond([{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "data": PNG},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "document", "data": PDF, "name": "report.pdf"},
    ]}])
    assert _body(sim)["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url",
         "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        {"type": "image_url", "image_url": "https://example.com/cat.jpg"},
        {"type": "document_url", "document_name": "report.pdf",
         "document_url": "data:application/pdf;base64," + base64.b64encode(PDF).decode()},
    ]


async def test_a_part_the_model_cannot_take_is_refused_before_any_request(
    sim: MistralSimulator,
) -> None:
    llm = _llm(sim, "codestral-latest")
    with pytest.raises(InvalidInputError, match="does not take image parts"):
        await llm.respond([{"role": "user", "content": [
            {"type": "text", "text": "What is this?"}, {"type": "image", "data": PNG}]}])
    with pytest.raises(InvalidInputError, match="does not take document parts"):
        await llm.respond([{"role": "user", "content": [
            {"type": "text", "text": "Summarise"}, {"type": "document", "data": PDF}]}])
    assert sim.requests == []


# --- structured output, reasoning ---------------------------------------------------------------


async def test_structured_output_request_shape(sim: MistralSimulator) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"]}
    sim.enqueue(text_stream(['{"city": ', '"Paris"}']))
    response = await _llm(sim).respond(
        "Capital of France?",
        response_schema=OutputSchema("capital", schema, strict=True, description="A city"),
    )
    assert json.loads(response.text) == {"city": "Paris"}
    assert _body(sim)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "capital", "schema": {**schema, "additionalProperties": False},
                        "strict": True, "description": "A city"},
    }
    nested = {"type": "object", "properties": {"at": {"type": "object", "properties": {
        "lat": {"type": "number"}}}, "tags": {"type": "array", "items": {"type": "object"}}}}
    sim.enqueue(text_stream(['{"at": {"lat": 1}, "tags": []}']))
    await _llm(sim).respond("Where?", response_schema=OutputSchema("place", nested, strict=False))
    assert _body(sim, 1)["response_format"]["json_schema"] == {
        "name": "place", "schema": nested, "strict": False}
    sim.enqueue(text_stream(['{"at": {"lat": 1}, "tags": []}']))
    await _llm(sim).respond("Where?", response_schema=OutputSchema("place", nested))
    closed = _body(sim, 2)["response_format"]["json_schema"]["schema"]
    assert closed["additionalProperties"] is False
    assert closed["properties"]["at"]["additionalProperties"] is False
    assert closed["properties"]["tags"]["items"] == {"type": "object",
                                                     "additionalProperties": False}
    assert "additionalProperties" not in nested  # the caller's schema is not changed


@pytest.mark.parametrize(
    ("model", "settings", "sent"),
    [
        (MODEL, {"reasoning_effort": "high"}, {"reasoning_effort": "high"}),
        (MODEL, {"reasoning_effort": "low"}, {"reasoning_effort": "high"}),
        (MODEL, {"reasoning_effort": "minimal"}, {"reasoning_effort": "high"}),
        (MODEL, {"reasoning_effort": "none"}, {"reasoning_effort": "none"}),
        (MODEL, {"reasoning_budget": 0}, {"reasoning_effort": "none"}),
        (MODEL, {"reasoning_budget": 9000}, {"reasoning_effort": "high"}),
        ("mistral-large-4-0", {"reasoning_effort": "minimal"}, {"reasoning_effort": "low"}),
        ("mistral-large-4-0", {"reasoning_effort": "xhigh"}, {"reasoning_effort": "high"}),
        ("mistral-large-4-0", {"reasoning_effort": "medium"}, {"reasoning_effort": "medium"}),
        ("magistral-medium-2507", {"reasoning_effort": "high"}, {"prompt_mode": "reasoning"}),
        ("mistral-large-latest", {"reasoning_effort": "none"}, {}),
        (MODEL, {}, {}),
    ],
)
async def test_reasoning_settings_mapped_and_clamped(
    sim: MistralSimulator, model: str, settings: dict[str, Any], sent: dict[str, Any]
) -> None:
    sim.enqueue(text_stream(["ok"], model=model))
    if "reasoning_effort" in sent and not SENDS_EFFORT:
        with pytest.raises(UnsupportedFeatureError, match="upgrade it"):
            await _llm(sim, model, **settings).respond("hi")
        assert sim.requests == []
        return
    await _llm(sim, model, **settings).respond("hi")
    body = _body(sim)
    assert {k: body[k] for k in ("reasoning_effort", "prompt_mode") if k in body} == sent


@pytest.mark.parametrize(
    ("model", "settings"),
    [("mistral-large-latest", {"reasoning_effort": "high"}),
     ("codestral-latest", {"reasoning_budget": 2048}),
     ("magistral-medium-2507", {"reasoning_effort": "none"})],
)
async def test_reasoning_a_model_cannot_take_is_refused_before_any_request(
    sim: MistralSimulator, model: str, settings: dict[str, Any]
) -> None:
    with pytest.raises(UnsupportedFeatureError):
        await _llm(sim, model, **settings).respond("hi")
    assert sim.requests == []


def test_capabilities() -> None:
    caps = MistralLLM.capabilities
    assert (caps.images, caps.image_urls, caps.documents, caps.tools,
            caps.parallel_tool_calls) == (True, True, True, True, True)
    assert caps.tool_choices == frozenset({"auto", "none", "required", "name"})
    assert caps.structured == "json_schema"
    assert caps.reasoning == frozenset({"effort"})


# --- the simulator refuses what the API refuses ------------------------------------------------


def _status_and_body(body: dict[str, Any]) -> tuple[int, Any]:
    reply = check_body(body)
    assert reply is not None
    return reply.status, json.loads(reply.body)


def test_simulator_refuses_bad_tool_call_ids_and_orphan_results() -> None:
    user = {"role": "user", "content": "hi"}
    call = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_abc", "type": "function", "function": {"name": "w", "arguments": "{}"}}]}
    assert _status_and_body({"model": MODEL, "messages": [user, call, {
        "role": "tool", "tool_call_id": "call_abc", "content": "x"}]}) == (400, {
            "object": "error", "message": "Tool call id was call_abc but must be a-z, A-Z, 0-9, "
            "with a length of 9.", "type": "invalid_function_call", "param": None,
            "code": "3280"})
    ok = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "aB3dE5gH7", "type": "function", "function": {"name": "w", "arguments": "{}"}}]}
    status, body = _status_and_body({"model": MODEL, "messages": [user, ok, {
        "role": "tool", "tool_call_id": "Zz9Yy8Xx7", "content": "x"}]})
    assert (status, body["message"], body["code"]) == (
        400, "Unexpected tool call id Zz9Yy8Xx7 in tool results", "3230")
    status, body = _status_and_body({"model": MODEL, "messages": [user, ok, {
        "role": "tool", "tool_call_id": "aB3dE5gH7", "content": "x"}, user]})
    assert (status, body["message"]) == (400, "Unexpected role 'user' after role 'tool'")
    assert check_body({"model": MODEL, "messages": [user, ok, {
        "role": "tool", "tool_call_id": "aB3dE5gH7", "content": "x"}]}) is None


def test_simulator_refuses_bad_tool_choice_tools_parts_and_formats() -> None:
    base = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    tool = {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
    status, body = _status_and_body({**base, "tools": [tool], "tool_choice": "required!"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "tool_choice", "enum"]
    status, body = _status_and_body({**base, "tools": [tool], "tool_choice": {
        "type": "function", "function": {"name": "other"}}})
    assert status == 400
    status, body = _status_and_body({**base, "tools": [
        {"type": "function", "function": {"name": "w"}}]})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "tools", 0, "function",
                                                          "parameters"]
    status, _ = _status_and_body({**base, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": "data:image/png;base64,@@@"}]}]})
    assert status == 400
    status, _ = _status_and_body({**base, "messages": [{"role": "user", "content": [
        {"type": "document_url", "document_url": "data:text/plain;base64,aGk="}]}]})
    assert status == 400
    status, body = _status_and_body({**base, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x"}}})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "response_format",
                                                          "json_schema", "schema"]
    status, _ = _status_and_body({**base, "reasoning_effort": "extreme"})
    assert status == 422
    status, body = _status_and_body({**base, "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]})
    assert status == 400 and body["code"] == "3230"


async def test_the_api_refusal_reaches_the_caller_typed(sim: MistralSimulator) -> None:
    # a history that ends on an assistant turn: the API's 400, typed, one request
    with pytest.raises(InvalidRequestError, match="Expected last role User or Tool"):
        await _llm(sim).respond([{"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": "Hello"}])
    assert len(sim.requests) == 1
