"""Gemini beyond text, through the real google-genai SDK over HTTP to the simulator: function
calls from the capture (name, args, synthesised id, usage, thought signature), parallel calls,
a two-step tool loop the simulator accepts only with the signature carried back, images and
PDFs, parts refused before any request, reasoning mapped and clamped per model, structured
output. Every assertion is on exact values or exact request bodies.
"""

from __future__ import annotations

import base64
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
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Chunk, OutputSchema
from synapsekit.testing.simulators.gemini_protocol import (
    GeminiSimulator,
    camel,
    capture,
    function_call_stream,
    text_stream,
)
from synapsekit.testing.simulators.server import Reply
from synapsekit.testing.simulators.wire import read_wire
from tests.sim_fixtures import serve, track

KEY = "AIza-sim-key-tools"
CAPTURE = "gemini/stream_function_call_thinking.sse"
SIGNATURE = re.search(rb'"thoughtSignature": ?"([^"]+)"', read_wire(CAPTURE)).group(1).decode()  # type: ignore[union-attr]
NOW = Tool("now", "The current date and time.", {"type": "object", "properties": {}})
WEATHER = Tool("get_weather", "Weather in a city.", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
# gemini-3-flash-preview / gemini-3-pro-preview have no row in prices.json
pytestmark = pytest.mark.filterwarnings(
    "ignore::synapsekit.llm.pricing.UnknownModelPriceWarning")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"


_server, sim = serve(lambda: GeminiSimulator(KEY))


def _llm(sim: GeminiSimulator, model: str = "gemini-2.5-flash", **fields: Any) -> BaseLLM:
    llm = make_llm(model, api_key=KEY, base_url=sim.url, **fields)
    return track(llm)


def _body(sim: GeminiSimulator, n: int = -1) -> dict[str, Any]:
    """The request body as the API reads it: proto JSON takes a field's snake_case name too,
    and the SDK sends nested configs (thinking_config, parameters_json_schema) that way."""
    body: dict[str, Any] = camel(sim.requests[n].json())
    return body


def _error(reply_body: bytes) -> str:
    return str(json.loads(reply_body)["error"]["message"])


# ------------------------------------------------------------------ decoding: the capture


async def test_capture_function_call_delta_usage_and_signature(sim: GeminiSimulator) -> None:
    sim.enqueue(capture(CAPTURE))
    chunks: list[Chunk] = [c async for c in _llm(sim).stream_chunks("Days to New Year?",
                                                                   tools=[NOW])]
    deltas = [c.tool_delta for c in chunks if c.tool_delta is not None]
    assert len(deltas) == 1
    delta = deltas[0]
    assert (delta.index, delta.id, delta.name, delta.arguments, delta.done) == (
        0, "call_0", "now", "{}", True)  # Gemini 2.5 sends no id: call_<index>
    calls = [c.tool_call for c in chunks if c.tool_call is not None]
    assert [(c.id, c.name, dict(c.arguments), c.index) for c in calls] == [
        ("call_0", "now", {}, 0)]
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    assert final.metadata is not None and final.metadata["raw_finish_reason"] == "STOP"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens,
            final.usage.reasoning_tokens) == (38, 6 + 168, 168)
    data = final.provider_data
    assert data is not None and data["protocol"] == "gemini"
    parts = data["content"]
    # the two streamed thought parts are one stretch of thought (neither is signed)
    assert [sorted(p) for p in parts] == [["text", "thought"], ["functionCall", "thoughtSignature"]]
    assert parts[0]["text"].startswith("**Calculating the Days**") and len(parts[0]["text"]) == 765
    assert "**Determining the Approach**" in parts[0]["text"]
    assert parts[1] == {"functionCall": {"name": "now", "args": {}},
                        "thoughtSignature": SIGNATURE}  # byte for byte as it came
    json.dumps(data)  # JSON-serialisable: it is cached and appended to histories
    body = _body(sim)
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "now", "description": "The current date and time.",
        "parametersJsonSchema": {"type": "object", "properties": {}}}]}]
    assert "toolConfig" not in body  # no tool_choice given: the API's default (AUTO)


async def test_parallel_calls_with_wire_ids_stay_apart(sim: GeminiSimulator) -> None:
    sim.enqueue(function_call_stream(
        [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"}), ("now", {})],
        ids=["fc-1", "fc-2", "fc-3"], thoughts=["Two cities and a clock."]))
    response = await _llm(sim, "gemini-3-flash-preview").respond("Weather?",
                                                                 tools=[WEATHER, NOW])
    assert [(c.index, c.id, c.name, dict(c.arguments)) for c in response.tool_calls] == [
        (0, "fc-1", "get_weather", {"city": "Paris"}),
        (1, "fc-2", "get_weather", {"city": "Oslo"}),
        (2, "fc-3", "now", {}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.reasoning == "Two cities and a clock."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 17 + 10)


async def test_parallel_calls_in_one_chunk(sim: GeminiSimulator) -> None:
    sim.enqueue(function_call_stream(
        [("get_weather", {"city": "Rome"}), ("get_weather", {"city": "Lima"})], one_chunk=True,
        model="gemini-2.5-flash", signature=None))
    chunks = [c async for c in _llm(sim).stream_chunks("Weather?", tools=[WEATHER])]
    deltas = [c.tool_delta for c in chunks if c.tool_delta is not None]
    assert [(d.index, d.id, d.arguments) for d in deltas] == [
        (0, "call_0", '{"city": "Rome"}'), (1, "call_1", '{"city": "Lima"}')]
    assert chunks[-1].provider_data == {"protocol": "gemini", "content": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}}}]}


async def test_text_answer_without_signature_has_no_provider_data(sim: GeminiSimulator) -> None:
    sim.enqueue(capture("gemini/stream_thinking.sse"))
    response = await _llm(sim).respond("Why is the sky blue?")
    assert response.finish_reason == "stop" and response.tool_calls == ()
    assert "provider_data" not in response.message
    assert response.reasoning.startswith("**Exploring Sky Color**")


async def test_malformed_function_call_is_a_tool_call_error(sim: GeminiSimulator) -> None:
    event = {"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"},
                             "finishReason": "MALFORMED_FUNCTION_CALL",
                             "finishMessage": "Malformed function call: print(now(x=))",
                             "index": 0}],
             "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
             "modelVersion": "gemini-2.5-flash"}
    sim.enqueue(Reply(200, {"content-type": "text/event-stream"},
                      stream=[b"data: " + json.dumps(event).encode() + b"\r\n\r\n"]))
    with pytest.raises(ToolCallError) as caught:
        await _llm(sim).respond("now?", tools=[NOW])
    # read from the raw event (google-genai's Developer-API converter drops finishMessage)
    assert caught.value.raw_arguments == "Malformed function call: print(now(x=))"
    assert caught.value.code == "MALFORMED_FUNCTION_CALL"
    assert len(sim.requests) == 1  # not retried


# ------------------------------------------------------------------ the tool loop


async def test_two_step_tool_loop_carries_the_signature(sim: GeminiSimulator) -> None:
    """Gemini 3 validates the signature of the first function call of the current turn:
    the simulator refuses the second request unless it comes back verbatim."""
    llm = _llm(sim, "gemini-3-flash-preview")
    sim.enqueue(capture(CAPTURE), text_stream(["It is ", "29 days."], model="gemini-3"))
    history: list[dict[str, Any]] = [{"role": "user", "content": "Days to New Year?"}]
    first = await llm.respond(history, tools=[NOW])
    assert [(c.id, c.name) for c in first.tool_calls] == [("call_0", "now")]
    history.append(dict(first.message))
    history.append({"role": "tool", "tool_call_id": "call_0", "content": "2026-12-02T15:00"})
    second = await llm.respond(history, tools=[NOW])
    assert second.text == "It is 29 days." and second.finish_reason == "stop"
    assert len(sim.requests) == 2
    sent = _body(sim, 1)["contents"]
    assert sent[0] == {"role": "user", "parts": [{"text": "Days to New Year?"}]}
    assert sent[1]["role"] == "model"
    assert sent[1]["parts"][1]["functionCall"] == {"name": "now", "args": {}}
    signature = sent[1]["parts"][1]["thoughtSignature"]  # the SDK sends url-safe base64
    assert base64.urlsafe_b64decode(signature) == base64.b64decode(SIGNATURE)
    assert sent[1]["parts"][0]["thought"] is True
    assert sent[2] == {"role": "user", "parts": [{"functionResponse": {
        "name": "now", "response": {"result": "2026-12-02T15:00"}}}]}  # no wire id: none back


async def test_loop_without_the_signature_is_refused_by_gemini_3(sim: GeminiSimulator) -> None:
    """What the real API does to a client that drops the signature (the simulator's 400)."""
    llm = _llm(sim, "gemini-3-flash-preview")
    sim.enqueue(capture(CAPTURE))
    first = await llm.respond("Days to New Year?", tools=[NOW])
    stripped = {k: v for k, v in first.message.items() if k != "provider_data"}
    stripped["provider_data"] = {"protocol": "gemini", "content": [
        {"functionCall": {"name": "now", "args": {}}}]}
    with pytest.raises(InvalidRequestError) as caught:
        await llm.respond([{"role": "user", "content": "Days to New Year?"}, stripped,
                           {"role": "tool", "tool_call_id": "call_0", "content": "x"}],
                          tools=[NOW])
    assert "missing a thought_signature" in str(caught.value)
    assert len(sim.requests) == 2


async def test_parallel_results_in_one_turn_with_wire_ids(sim: GeminiSimulator) -> None:
    llm = _llm(sim, "gemini-3-flash-preview")
    sim.enqueue(function_call_stream(
        [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})],
        ids=["fc-a", "fc-b"]), text_stream(["Mild."]))
    first = await llm.respond("Weather?", tools=[WEATHER])
    history = [{"role": "user", "content": "Weather?"}, first.message,
               {"role": "tool", "tool_call_id": "fc-b", "content": "3C"},
               {"role": "tool", "tool_call_id": "fc-a", "content": "14C"}]
    assert (await llm.respond(history, tools=[WEATHER])).text == "Mild."
    sent = _body(sim, 1)["contents"]
    assert len(sent) == 3
    assert sent[2] == {"role": "user", "parts": [
        {"functionResponse": {"id": "fc-b", "name": "get_weather",
                              "response": {"result": "3C"}}},
        {"functionResponse": {"id": "fc-a", "name": "get_weather",
                              "response": {"result": "14C"}}}]}


async def test_foreign_history_gets_the_documented_placeholder(sim: GeminiSimulator) -> None:
    """A tool call that came from another provider has no signature: Gemini 3 gets Google's
    documented placeholder on it, Gemini 2.5 nothing."""
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "toolu_01", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "14C"},
    ]
    sim.enqueue(text_stream(["Mild."]), text_stream(["Mild."]))
    assert (await _llm(sim, "gemini-3-pro-preview").respond(history, tools=[WEATHER])).text == (
        "Mild.")
    assert (await _llm(sim).respond(history, tools=[WEATHER])).text == "Mild."
    three, two = _body(sim, 0)["contents"][1], _body(sim, 1)["contents"][1]
    assert three == {"role": "model", "parts": [{
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": "skip_thought_signature_validator"}]}
    assert two == {"role": "model", "parts": [{
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}


async def test_tool_result_for_an_unknown_call_is_refused_before_sending(
        sim: GeminiSimulator) -> None:
    with pytest.raises(InvalidInputError, match="needs the function's name"):
        await _llm(sim).respond([{"role": "user", "content": "hi"},
                                 {"role": "tool", "tool_call_id": "nope", "content": "x"}])
    assert sim.requests == []


async def test_simulator_refuses_a_response_count_mismatch(sim: GeminiSimulator) -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "a", "function": {"name": "get_weather", "arguments": '{"city": "X"}'}},
            {"id": "b", "function": {"name": "get_weather", "arguments": '{"city": "Y"}'}}]},
        {"role": "tool", "tool_call_id": "a", "content": "1C"},
        {"role": "user", "content": "and?"},
    ]
    with pytest.raises(InvalidRequestError, match="number of function response parts"):
        await _llm(sim).respond(history, tools=[WEATHER])


# ------------------------------------------------------------------ tool_choice


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}),
    ("none", {"mode": "NONE"}),
    ("required", {"mode": "ANY"}),
    ({"name": "get_weather"}, {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
async def test_tool_choice(sim: GeminiSimulator, choice: Any, config: dict[str, Any]) -> None:
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim).respond("hi", tools=[WEATHER, NOW], tool_choice=choice)
    body = _body(sim)
    assert body["toolConfig"] == {"functionCallingConfig": config}
    assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == ["get_weather", "now"]
    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == WEATHER.schema


async def test_parallel_switch_is_refused_before_sending(sim: GeminiSimulator) -> None:
    with pytest.raises(UnsupportedFeatureError, match="parallel_tool_calls=False"):
        await _llm(sim).respond("hi", tools=[WEATHER], parallel_tool_calls=False)
    assert sim.requests == []


# ------------------------------------------------------------------ images and documents


async def test_image_and_pdf_bytes_are_inline_data(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream(["A chart."]))
    text = await _llm(sim).generate_with_messages([{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "data": PNG},
        {"type": "document", "data": base64.b64encode(PDF).decode()},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?v=2"}},
        {"type": "image", "url": "https://example.com/render"},
    ]}])
    assert text == "A chart."
    parts = _body(sim)["contents"][0]["parts"]
    assert parts[0] == {"text": "What is this?"}
    assert parts[1]["inlineData"]["mimeType"] == "image/png"
    assert base64.urlsafe_b64decode(parts[1]["inlineData"]["data"]) == PNG
    assert parts[2]["inlineData"]["mimeType"] == "application/pdf"
    assert base64.urlsafe_b64decode(parts[2]["inlineData"]["data"]) == PDF
    assert parts[3] == {"fileData": {"fileUri": "https://example.com/cat.webp?v=2",
                                     "mimeType": "image/webp"}}  # named by the URL's path
    assert parts[4] == {"fileData": {"fileUri": "https://example.com/render"}}


async def test_gif_is_refused_before_any_request(sim: GeminiSimulator) -> None:
    with pytest.raises(UnsupportedFeatureError, match="image/gif"):
        await _llm(sim).generate_with_messages([{"role": "user", "content": [
            {"type": "text", "text": "?"}, {"type": "image", "data": b"GIF89a\x01\x00"}]}])
    assert sim.requests == []


async def test_image_in_a_tool_result_is_refused_before_any_request(
        sim: GeminiSimulator) -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Look"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c", "function": {"name": "now", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "image", "data": PNG}]},
    ]
    with pytest.raises(UnsupportedFeatureError, match="text tool results only"):
        await _llm(sim).respond(history, tools=[NOW])
    assert sim.requests == []


async def test_simulator_refuses_bad_inline_data(sim: GeminiSimulator) -> None:
    """The simulator's own check, as the API answers a client that sends junk."""
    import httpx

    async with httpx.AsyncClient() as client:
        reply = await client.post(
            f"{sim.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            headers={"x-goog-api-key": KEY},
            json={"contents": [{"role": "user", "parts": [
                {"inlineData": {"mimeType": "image/png", "data": "not base64!"}}]}]})
    assert reply.status_code == 400
    assert "Base64 decoding failed" in _error(reply.content)


# ------------------------------------------------------------------ reasoning


@pytest.mark.parametrize(("model", "settings", "thinking"), [
    ("gemini-2.5-flash", {"reasoning_budget": 5000},
     {"thinkingBudget": 5000, "includeThoughts": True}),
    ("gemini-2.5-flash", {"reasoning_budget": 100_000},
     {"thinkingBudget": 24576, "includeThoughts": True}),  # clamped to the model's max
    ("gemini-2.5-flash", {"reasoning_effort": "none"}, {"thinkingBudget": 0}),
    ("gemini-2.5-flash", {"reasoning_effort": "high"},
     {"thinkingBudget": 24576, "includeThoughts": True}),
    ("gemini-2.5-pro", {"reasoning_effort": "none"},
     {"thinkingBudget": 128}),  # 2.5 Pro cannot stop thinking: the least, no summaries
    ("gemini-2.5-pro", {"reasoning_budget": 10}, {"thinkingBudget": 128, "includeThoughts": True}),
    ("gemini-2.5-flash-lite", {"reasoning_effort": "minimal"},
     {"thinkingBudget": 1024, "includeThoughts": True}),
    ("gemini-2.5-flash-lite", {"reasoning_budget": 100},
     {"thinkingBudget": 512, "includeThoughts": True}),
    ("gemini-3-flash-preview", {"reasoning_effort": "medium"},
     {"thinkingLevel": "MEDIUM", "includeThoughts": True}),
    ("gemini-3-flash-preview", {"reasoning_effort": "none"}, {"thinkingLevel": "MINIMAL"}),
    ("gemini-3.1-pro-preview", {"reasoning_budget": 0}, {"thinkingLevel": "LOW"}),
    ("gemini-3-pro-preview", {"reasoning_effort": "medium"},
     {"thinkingLevel": "HIGH", "includeThoughts": True}),  # low/high only: ties go up
    ("gemini-3-pro-preview", {"reasoning_effort": "minimal"},
     {"thinkingLevel": "LOW", "includeThoughts": True}),
    ("gemini-3.1-pro-preview", {"reasoning_budget": 8000},
     {"thinkingLevel": "MEDIUM", "includeThoughts": True}),  # a budget as the nearest level
    ("gemini-3-pro-preview", {"reasoning_effort": "xhigh"},
     {"thinkingLevel": "HIGH", "includeThoughts": True}),
])
async def test_reasoning_maps_and_clamps(sim: GeminiSimulator, model: str,
                                         settings: dict[str, Any],
                                         thinking: dict[str, Any]) -> None:
    sim.enqueue(text_stream(["ok"], model=model))
    assert await _llm(sim, model, **settings).generate("hi") == "ok"  # the simulator accepts it
    assert _body(sim)["generationConfig"]["thinkingConfig"] == thinking


async def test_no_reasoning_setting_sends_no_thinking_config(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim).generate("hi")
    assert "thinkingConfig" not in _body(sim)["generationConfig"]


async def test_reasoning_on_a_model_that_does_not_think_is_refused(sim: GeminiSimulator) -> None:
    with pytest.raises(UnsupportedFeatureError, match="reasoning"):
        await _llm(sim, "gemini-2.0-flash", reasoning_effort="high").generate("hi")
    assert sim.requests == []


@pytest.mark.parametrize(("model", "thinking", "message"), [
    ("gemini-2.5-pro", {"thinkingBudget": 0}, "only works in thinking mode"),
    ("gemini-2.5-flash", {"thinkingBudget": 30000}, "between 1 and 24576"),
    ("gemini-2.5-flash", {"thinkingLevel": "HIGH"}, "not supported for this model"),
    ("gemini-3-pro-preview", {"thinkingLevel": "MEDIUM"}, "Supported levels: LOW, HIGH"),
    ("gemini-3-flash-preview", {"thinkingLevel": "LOW", "thinkingBudget": 10}, "only one of"),
])
async def test_simulator_refuses_what_the_api_refuses(
        sim: GeminiSimulator, model: str, thinking: dict[str, Any], message: str) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        reply = await client.post(
            f"{sim.url}/v1beta/models/{model}:streamGenerateContent?alt=sse",
            headers={"x-goog-api-key": KEY},
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                  "generationConfig": {"thinkingConfig": thinking}})
    assert reply.status_code == 400
    body = json.loads(reply.content)
    assert body["error"]["status"] == "INVALID_ARGUMENT" and body["error"]["code"] == 400
    assert message in body["error"]["message"]


# ------------------------------------------------------------------ structured output


async def test_structured_output_request_shape(sim: GeminiSimulator) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"]}
    sim.enqueue(text_stream(['{"city": ', '"Paris"}']))
    response = await _llm(sim).respond(
        "Capital of France?", response_schema=OutputSchema("capital", schema))
    assert json.loads(response.text) == {"city": "Paris"}
    config = _body(sim)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema
    assert "responseSchema" not in config


async def test_generate_object_reasks_after_an_invalid_answer(sim: GeminiSimulator) -> None:
    """The first answer misses a required field; the re-ask goes with the same native
    schema mode and the validated object comes from the second answer."""
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "population": {"type": "integer"}},
              "required": ["city", "population"]}
    sim.enqueue(text_stream(['{"city": "Paris"}']),
                text_stream(['{"city": "Paris", ', '"population": 2102650}']))
    found = await _llm(sim).generate_object("Paris?", schema=schema)
    assert found == {"city": "Paris", "population": 2102650}
    assert len(sim.requests) == 2
    for n in (0, 1):
        config = _body(sim, n)["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseJsonSchema"] == schema
    turns = _body(sim, 1)["contents"]
    assert [t["role"] for t in turns] == ["user", "model", "user"]
    assert turns[1]["parts"] == [{"text": '{"city": "Paris"}'}]
    assert "population" in turns[2]["parts"][0]["text"]  # says what failed


async def test_tools_with_a_schema_refused_on_2_5_sent_on_3(sim: GeminiSimulator) -> None:
    schema = OutputSchema("answer", {"type": "object", "properties": {"a": {"type": "string"}}})
    with pytest.raises(UnsupportedFeatureError, match="tools together with a response_schema"):
        await _llm(sim).respond("hi", tools=[NOW], response_schema=schema)
    assert sim.requests == []
    sim.enqueue(text_stream(['{"a": "b"}'], model="gemini-3.1-pro-preview"))
    response = await _llm(sim, "gemini-3.1-pro-preview").respond(
        "hi", tools=[NOW], response_schema=schema)
    assert response.text == '{"a": "b"}'
    body = _body(sim)
    assert body["generationConfig"]["responseJsonSchema"] == dict(schema.schema)
    assert body["tools"][0]["functionDeclarations"][0]["name"] == "now"


async def test_signed_text_answer_is_replayed_verbatim(sim: GeminiSimulator) -> None:
    """Gemini 3 signs a text answer on a last, empty part: kept, and sent back as it came."""
    signature = base64.b64encode(b"text-answer-signature").decode()
    sim.enqueue(text_stream(["Hel", "lo."], model="gemini-3.1-pro-preview", signature=signature),
                text_stream(["Fine."]))
    llm = _llm(sim, "gemini-3.1-pro-preview")
    first = await llm.respond("Hi")
    assert first.text == "Hello."
    assert first.message.get("provider_data") == {"protocol": "gemini", "content": [
        {"text": "Hello."}, {"text": "", "thoughtSignature": signature}]}
    await llm.respond([{"role": "user", "content": "Hi"}, first.message,
                       {"role": "user", "content": "How are you?"}])
    model_turn = _body(sim, 1)["contents"][1]
    assert model_turn["role"] == "model" and model_turn["parts"][0] == {"text": "Hello."}
    sent = model_turn["parts"][1]
    assert sent["text"] == "" and base64.urlsafe_b64decode(sent["thoughtSignature"]) == (
        b"text-answer-signature")


async def test_other_finish_reasons_are_stop_with_the_raw_kept(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream(["Hm"], finish_reason="OTHER"))
    response = await _llm(sim).respond("hi")
    assert response.finish_reason == "stop"
    assert response.metadata["raw_finish_reason"] == "OTHER"


async def test_run_tools_loop_on_gemini_3(sim: GeminiSimulator) -> None:
    """run_tools over Gemini 3: the tool runs, its result goes back as a functionResponse
    with the wire id, and the signed call is replayed (the simulator checks both)."""
    seen: list[str] = []

    def get_weather(city: str) -> str:
        seen.append(city)
        return f"{city}: 14C"

    tool = Tool("get_weather", "Weather in a city.", WEATHER.parameters, function=get_weather)
    sim.enqueue(function_call_stream([("get_weather", {"city": "Paris"})], ids=["fc-9"]),
                text_stream(["Paris is mild."], model="gemini-3-flash-preview"))
    response = await _llm(sim, "gemini-3-flash-preview").run_tools("Weather in Paris?",
                                                                   tools=[tool])
    assert response.text == "Paris is mild." and seen == ["Paris"]
    assert [m["role"] for m in response.transcript] == ["user", "assistant", "tool", "assistant"]
    sent = _body(sim, 1)["contents"]
    assert sent[1]["parts"][0]["thoughtSignature"]
    assert sent[2] == {"role": "user", "parts": [{"functionResponse": {
        "id": "fc-9", "name": "get_weather", "response": {"result": "Paris: 14C"}}}]}


async def test_pydantic_object_and_image_question_with_high_reasoning(
        sim: GeminiSimulator) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    sim.enqueue(text_stream(['{"name": "Oslo", "population": 709037}']),
                text_stream(["A cat."], thoughts=["Looking at the picture."]))
    llm = _llm(sim)
    city = await llm.generate_object("Capital of Norway?", schema=City)
    assert city == City(name="Oslo", population=709037)
    schema = _body(sim, 0)["generationConfig"]["responseJsonSchema"]
    assert schema["properties"]["population"]["type"] == "integer"
    assert sorted(schema["required"]) == ["name", "population"]
    answer = await llm.respond([{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image", "data": PNG}]}],
        reasoning_effort="high")
    assert (answer.text, answer.reasoning) == ("A cat.", "Looking at the picture.")
    body = _body(sim, 1)
    assert body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 24576, "includeThoughts": True}
    assert body["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "image/png"


async def test_a_cache_hit_replays_the_call_thoughts_and_signature(
        sim: GeminiSimulator, tmp_path: Any) -> None:
    """An SQLite cache hit gives the same call, reasoning and provider_data (the signed parts),
    so a loop continued from a cached answer is still accepted by Gemini 3."""
    sim.enqueue(capture(CAPTURE), text_stream(["29 days."], model="gemini-3-flash-preview"))
    llm = _llm(sim, "gemini-3-flash-preview", tools=[NOW], cache=True, cache_backend="sqlite",
               cache_path=str(tmp_path / "answers.db"))
    first = await llm.respond("Days to New Year?")
    again = await llm.respond("Days to New Year?")
    assert len(sim.requests) == 1
    assert again.tool_calls == first.tool_calls
    assert [(c.id, c.name, dict(c.arguments)) for c in again.tool_calls] == [("call_0", "now", {})]
    assert again.reasoning == first.reasoning and len(again.reasoning) == 765
    assert again.message.get("provider_data") == first.message["provider_data"]
    assert again.finish_reason == "tool_calls"
    follow = await llm.respond([{"role": "user", "content": "Days to New Year?"},
                                again.message,
                                {"role": "tool", "tool_call_id": "call_0", "content": "Dec 2"}])
    assert follow.text == "29 days." and len(sim.requests) == 2  # accepted: signature intact
