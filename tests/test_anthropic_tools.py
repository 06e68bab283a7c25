"""Anthropic: tools, tool results, content parts, thinking (budget / adaptive, signatures
carried back), structured output and prompt caching, with the real ``anthropic`` SDK over
HTTP to the simulator (synapsekit/testing/simulators/anthropic_protocol.py + anthropic_rules.py),
which
validates requests the way the real API does. Every assertion is an exact value: names,
ids, arguments, usage, finish reasons, request bodies and request counts."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from synapsekit import LLMConfig, make_llm
from synapsekit.errors import InvalidRequestError, ToolCallError, UnsupportedFeatureError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Chunk, OutputSchema, ToolCall, ToolCallDelta
from synapsekit.testing.simulators.anthropic_protocol import (
    AnthropicSimulator,
    capture,
    sign,
    text_stream,
    tool_stream,
)

KEY = "sk-ant-api03-test-0123456789abcdef"
WEATHER = Tool(
    "get_weather",
    "Get the current weather in a given location",
    {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x01" * 8
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF"
CAPTURE_ID = "toolu_01NRLabsLyVHZPKxbKvkfSMn"
CAPTURE_TEXT = "I'll check the current weather in Paris for you."


@pytest.fixture(scope="module")
def sim() -> Any:
    with AnthropicSimulator(KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(sim: AnthropicSimulator) -> Any:
    sim.reset()
    yield
    assert not sim.errors, sim.errors


def claude(sim: AnthropicSimulator, model: str = "claude-sonnet-4-6", **fields: Any) -> BaseLLM:
    fields.setdefault("api_key", KEY)
    return make_llm(model, base_url=sim.url, **fields)


def body(sim: AnthropicSimulator, n: int = -1) -> dict[str, Any]:
    found: dict[str, Any] = sim.requests[n].json()
    return found


async def chunks(llm: BaseLLM, messages: Any, **overrides: Any) -> list[Chunk]:
    return [c async for c in llm.stream_chunks(messages, **overrides)]


# ------------------------------------------------------------------ tool calls, decoded


async def test_capture_tool_call_through_respond(sim: AnthropicSimulator) -> None:
    sim.enqueue(capture("anthropic/stream_tool_use.sse"))
    response = await claude(sim).respond("Weather in Paris?", tools=[WEATHER])
    assert response.text == CAPTURE_TEXT
    assert response.tool_calls == (ToolCall(CAPTURE_ID, "get_weather", {"location": "Paris"}, 0),)
    assert response.finish_reason == "tool_calls"
    assert response.metadata["raw_finish_reason"] == "tool_use"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (377, 65)
    assert response.message["tool_calls"] == list(response.tool_calls)
    sent = body(sim)
    assert sent["tools"] == [{
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                         "required": ["location"]},
    }]
    assert "tool_choice" not in sent
    assert len(sim.requests) == 1


async def test_capture_tool_deltas_in_order(sim: AnthropicSimulator) -> None:
    sim.enqueue(capture("anthropic/stream_tool_use.sse"))
    found = await chunks(claude(sim), "Weather in Paris?", tools=[WEATHER])
    deltas = [c.tool_delta for c in found if c.tool_delta is not None]
    assert deltas == [
        ToolCallDelta(0, CAPTURE_ID, "get_weather"),
        ToolCallDelta(0, arguments='{"locati'),
        ToolCallDelta(0, arguments='on": "P'),
        ToolCallDelta(0, arguments="ar"),
        ToolCallDelta(0, arguments='is"}'),
        ToolCallDelta(0, done=True),
    ]
    calls = [c.tool_call for c in found if c.tool_call is not None]
    assert calls == [ToolCall(CAPTURE_ID, "get_weather", {"location": "Paris"}, 0)]
    final = found[-1]
    assert final.finish_reason == "tool_calls"
    # no thinking: the whole content goes back as provider_data, in order
    assert final.provider_data == {"protocol": "anthropic", "content": [
        {"type": "text", "text": CAPTURE_TEXT},
        {"type": "tool_use", "id": CAPTURE_ID, "name": "get_weather",
         "input": {"location": "Paris"}},
    ]}


async def test_parallel_calls_kept_apart(sim: AnthropicSimulator) -> None:
    sim.enqueue(tool_stream([
        ("toolu_A", "get_weather", ['{"location":', ' "Paris"}']),
        ("toolu_B", "get_weather", ['{"locat', 'ion": "Oslo"}']),
    ], text=["Both."]))
    response = await claude(sim).respond("Paris and Oslo?", tools=[WEATHER])
    assert response.tool_calls == (
        ToolCall("toolu_A", "get_weather", {"location": "Paris"}, 0),
        ToolCall("toolu_B", "get_weather", {"location": "Oslo"}, 1),
    )
    assert response.text == "Both."


async def test_invalid_tool_json_is_a_tool_call_error(sim: AnthropicSimulator) -> None:
    sim.enqueue(tool_stream([("toolu_X", "get_weather", ['{"location": "Par'])]))
    with pytest.raises(ToolCallError) as caught:
        await claude(sim).respond("Weather?", tools=[WEATHER])
    assert caught.value.raw_arguments == '{"location": "Par'
    assert caught.value.tool_name == "get_weather"
    assert caught.value.tool_call_id == "toolu_X"


# ------------------------------------------------------------------- tools, encoded


@pytest.mark.parametrize(("choice", "parallel", "wire"), [
    ("auto", None, {"type": "auto"}),
    ("none", None, {"type": "none"}),
    ("required", None, {"type": "any"}),
    ({"name": "get_weather"}, None, {"type": "tool", "name": "get_weather"}),
    ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
])
async def test_tool_choice_and_parallel_switch(
    sim: AnthropicSimulator, choice: Any, parallel: bool | None, wire: dict[str, Any]
) -> None:
    await claude(sim).respond("Hi", tools=[WEATHER], tool_choice=choice,
                              parallel_tool_calls=parallel)
    assert body(sim)["tool_choice"] == wire


async def test_strict_tool_schema_is_closed(sim: AnthropicSimulator) -> None:
    strict = Tool("lookup", "Look up", {"type": "object", "properties": {
        "q": {"type": "string"}, "filters": {"type": "object", "properties": {
            "year": {"type": "integer"}}}}, "required": ["q"]}, strict=True)
    await claude(sim).respond("Hi", tools=[strict])
    assert body(sim)["tools"] == [{
        "name": "lookup", "description": "Look up", "strict": True,
        "input_schema": {"type": "object", "additionalProperties": False, "required": ["q"],
                         "properties": {"q": {"type": "string"}, "filters": {
                             "type": "object", "additionalProperties": False,
                             "properties": {"year": {"type": "integer"}}}}},
    }]


async def test_two_step_loop_sends_tool_use_and_merged_results(sim: AnthropicSimulator) -> None:
    llm = claude(sim)
    sim.enqueue(tool_stream([("toolu_A", "get_weather", ['{"location": "Paris"}']),
                             ("toolu_B", "get_weather", ['{"location": "Oslo"}'])]))
    first = await llm.respond("Paris and Oslo?", tools=[WEATHER])
    history: list[Any] = [
        {"role": "user", "content": "Paris and Oslo?"},
        first.message,
        {"role": "tool", "tool_call_id": "toolu_A", "name": "get_weather", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_B", "name": "get_weather", "content": "4C"},
    ]
    sim.enqueue(text_stream(["Paris 18C, Oslo 4C."]))
    second = await llm.respond(history, tools=[WEATHER])
    assert second.text == "Paris 18C, Oslo 4C."
    assert body(sim)["messages"] == [
        {"role": "user", "content": "Paris and Oslo?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_A", "name": "get_weather",
             "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "toolu_B", "name": "get_weather",
             "input": {"location": "Oslo"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_A", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_B", "content": "4C"},
        ]},
    ]
    assert len(sim.requests) == 2


async def test_history_without_provider_data_builds_tool_use(sim: AnthropicSimulator) -> None:
    history: list[Any] = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_9", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"location": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": [{"type": "text", "text": "21C"}]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    await claude(sim).respond(history, tools=[WEATHER])
    assert body(sim)["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_9", "name": "get_weather",
             "input": {"location": "Rome"}}]},
        {"role": "user", "content": [  # the result first, the user's text after it
            {"type": "tool_result", "tool_use_id": "call_9",
             "content": [{"type": "text", "text": "21C"}]},
            {"type": "text", "text": "And tomorrow?"}]},
    ]


async def test_tool_result_without_tool_use_is_rejected_like_the_api(
    sim: AnthropicSimulator,
) -> None:
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Checking."},
        {"role": "tool", "tool_call_id": "toolu_nope", "content": "21C"},
    ]
    with pytest.raises(InvalidRequestError, match="unexpected `tool_use_id` found in "
                       "`tool_result` blocks: toolu_nope"):
        await claude(sim).respond(history, tools=[WEATHER])


# --------------------------------------------------------------- thinking, signatures


async def test_thinking_tool_loop_carries_the_signature_back(sim: AnthropicSimulator) -> None:
    llm = claude(sim, "claude-sonnet-4-5", max_tokens=4096)
    thought = ["The user wants Paris. ", "I should call the tool."]
    sim.enqueue(tool_stream([("toolu_T", "get_weather", ['{"location": "Paris"}'])],
                            thinking=thought, model="claude-sonnet-4-5"))
    first = await llm.respond("Weather in Paris?", tools=[WEATHER], reasoning_budget=2048)
    assert first.reasoning == "".join(thought)
    thinking_block = {"type": "thinking", "thinking": "".join(thought),
                      "signature": sign("".join(thought))}
    assert first.message["provider_data"] == {"protocol": "anthropic", "content": [
        thinking_block,
        {"type": "tool_use", "id": "toolu_T", "name": "get_weather",
         "input": {"location": "Paris"}},
    ]}
    assert body(sim)["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    history: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        first.message,
        {"role": "tool", "tool_call_id": "toolu_T", "content": "18C and sunny"},
    ]
    sim.enqueue(text_stream(["It is 18C and sunny."]))
    second = await llm.respond(history, tools=[WEATHER], reasoning_budget=2048)
    assert second.text == "It is 18C and sunny."
    assert body(sim)["messages"][1] == {"role": "assistant", "content": [
        thinking_block,
        {"type": "tool_use", "id": "toolu_T", "name": "get_weather",
         "input": {"location": "Paris"}},
    ]}
    assert len(sim.requests) == 2

    # The same turn without its thinking block, or with another signature: the API's 400s.
    bare = {"role": "assistant", "content": "", "tool_calls": first.message["tool_calls"]}
    with pytest.raises(InvalidRequestError, match="Expected `thinking` or "
                       "`redacted_thinking`, but found `tool_use`"):
        await llm.respond([history[0], bare, history[2]], tools=[WEATHER],
                          reasoning_budget=2048)
    forged = dict(first.message)
    forged["provider_data"] = {"protocol": "anthropic", "content": [
        {**thinking_block, "signature": "EqForged"}, first.message["provider_data"]["content"][1]]}
    with pytest.raises(InvalidRequestError, match="Invalid `signature` in `thinking` block"):
        await llm.respond([history[0], forged, history[2]], tools=[WEATHER],
                          reasoning_budget=2048)
    assert len(sim.requests) == 4


async def test_capture_thinking_signature_and_text(sim: AnthropicSimulator) -> None:
    sim.enqueue(capture("anthropic/stream_thinking.sse"))
    response = await claude(sim, "claude-opus-4-8").respond("GCD of 1071 and 462?")
    assert response.reasoning == (
        "I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n"
        "1071 = 2 \u00d7 462 + 147\n462 = 3 \u00d7 147 + 21\n147 = 7 \u00d7 21 + 0\n\n"
        "So GCD(1071, 462) = 21"
    )
    assert response.text == "The greatest common divisor of 1071 and 462 is **21**."
    assert response.message["provider_data"] == {"protocol": "anthropic", "content": [
        {"type": "thinking", "thinking": response.reasoning,
         "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b..."},
        {"type": "text", "text": response.text},
    ]}
    json.dumps(response.message["provider_data"])  # JSON-serialisable


async def test_redacted_thinking_goes_back_verbatim(sim: AnthropicSimulator) -> None:
    llm = claude(sim, "claude-sonnet-4-5", max_tokens=4096)
    sim.enqueue(tool_stream([("toolu_R", "get_weather", ['{"location": "Lima"}'])],
                            thinking=["Hmm."], redacted="EmwKAhgBEgy3va3pzix/LafPsn4a"))
    first = await llm.respond("Lima?", tools=[WEATHER], reasoning_budget=1024)
    sim.enqueue(text_stream(["Warm."]))
    await llm.respond([{"role": "user", "content": "Lima?"}, first.message,
                       {"role": "tool", "tool_call_id": "toolu_R", "content": "25C"}],
                      tools=[WEATHER], reasoning_budget=1024)
    assert [b["type"] for b in body(sim)["messages"][1]["content"]] == [
        "thinking", "redacted_thinking", "tool_use"]
    assert body(sim)["messages"][1]["content"][1] == {
        "type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}


# ------------------------------------------------------------------ reasoning mapping


@pytest.mark.filterwarnings("ignore::synapsekit.llm.pricing.UnknownModelPriceWarning")
@pytest.mark.parametrize(("model", "settings", "max_tokens", "thinking", "output_config"), [
    # budget models: effort -> its budget size, clamped below max_tokens, >= 1024
    ("claude-sonnet-4-5", {"reasoning_effort": "high"}, 8000,
     {"type": "enabled", "budget_tokens": 7999}, None),
    ("claude-sonnet-4-5", {"reasoning_effort": "low"}, 8000,
     {"type": "enabled", "budget_tokens": 2048}, None),
    ("claude-sonnet-4-5", {"reasoning_budget": 500}, 4096,
     {"type": "enabled", "budget_tokens": 1024}, None),
    ("claude-3-7-sonnet-20250219", {"reasoning_budget": 3000}, 4096,
     {"type": "enabled", "budget_tokens": 3000}, None),
    ("claude-sonnet-4-5", {"reasoning_effort": "none"}, 4096, None, None),
    ("claude-sonnet-4-5", {"reasoning_budget": 0}, 4096, None, None),
    # 4.6: an effort is adaptive thinking (xhigh is "max" there); a budget stays a budget
    ("claude-sonnet-4-6", {"reasoning_effort": "high"}, 1024, {"type": "adaptive"},
     {"effort": "high"}),
    ("claude-opus-4-6", {"reasoning_effort": "xhigh"}, 1024, {"type": "adaptive"},
     {"effort": "max"}),
    ("claude-sonnet-4-6", {"reasoning_budget": 3000}, 4096,
     {"type": "enabled", "budget_tokens": 3000}, None),
    # adaptive-only models: levels clamped to what they take
    ("claude-opus-4-7", {"reasoning_effort": "minimal"}, 1024, {"type": "adaptive"},
     {"effort": "low"}),
    ("claude-opus-4-7", {"reasoning_effort": "xhigh"}, 1024, {"type": "adaptive"},
     {"effort": "xhigh"}),
    ("claude-opus-4-7", {"reasoning_budget": 30000}, 1024, {"type": "adaptive"},
     {"effort": "xhigh"}),
    ("claude-mythos-5", {"reasoning_effort": "none"}, 1024, {"type": "adaptive"},
     {"effort": "low"}),  # thinking cannot be switched off there: the lowest effort
])
async def test_reasoning_mapping(
    sim: AnthropicSimulator, model: str, settings: dict[str, Any], max_tokens: int,
    thinking: dict[str, Any] | None, output_config: dict[str, Any] | None,
) -> None:
    await claude(sim, model, max_tokens=max_tokens).respond("Hi", **settings)
    sent = body(sim)
    assert sent.get("thinking") == thinking
    assert sent.get("output_config") == output_config


async def test_temperature_dropped_with_thinking_on_old_api_version(
    sim: AnthropicSimulator,
) -> None:
    llm = claude(sim, "claude-sonnet-4-5", max_tokens=4096, temperature=0.5,
                 headers={"anthropic-version": "2023-06-01"})
    await llm.respond("Hi")
    assert body(sim)["temperature"] == 0.5
    await llm.respond("Hi", reasoning_budget=2048)
    assert "temperature" not in body(sim)
    assert body(sim)["thinking"] == {"type": "enabled", "budget_tokens": 2048}


@pytest.mark.parametrize(("model", "fields", "settings", "message"), [
    ("claude-3-5-haiku-latest", {}, {"reasoning_effort": "high"}, "takes no reasoning"),
    ("claude-sonnet-4-5", {"max_tokens": 1024}, {"reasoning_budget": 2048},
     "raise max_tokens"),
    ("claude-sonnet-4-5", {"max_tokens": 4096},
     {"reasoning_budget": 2048, "tools": [WEATHER], "tool_choice": "required"},
     "thinking cannot be combined with tool_choice='required'"),
])
async def test_refused_before_any_request(
    sim: AnthropicSimulator, model: str, fields: dict[str, Any], settings: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(UnsupportedFeatureError, match=message):
        await claude(sim, model, **fields).respond("Hi", **settings)
    assert len(sim.requests) == 0


# --------------------------------------------------------------------- content parts


async def test_image_and_pdf_blocks_exact(sim: AnthropicSimulator) -> None:
    content = [
        {"type": "text", "text": "What are these?"},
        {"type": "image", "data": PNG},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "document", "data": base64.b64encode(PDF).decode(), "name": "report.pdf"},
    ]
    await claude(sim).respond([{"role": "user", "content": content}])
    assert body(sim)["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What are these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": base64.b64encode(PNG).decode()}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "title": "report.pdf",
         "source": {"type": "base64", "media_type": "application/pdf",
                    "data": base64.b64encode(PDF).decode()}},
    ]}]


async def test_a_part_no_provider_takes_is_refused_before_any_request(
    sim: AnthropicSimulator,
) -> None:
    from synapsekit.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="not an image type"):
        await claude(sim).respond([{"role": "user", "content": [
            {"type": "image", "data": PNG, "media_type": "image/bmp"}]}])
    assert len(sim.requests) == 0


async def test_image_media_type_mismatch_is_the_apis_400(sim: AnthropicSimulator) -> None:
    # bytes that are not what media_type says: the API checks, and so does the simulator
    with pytest.raises(InvalidRequestError, match="Image does not match the provided media "
                       "type image/jpeg"):
        await claude(sim).respond([{"role": "user", "content": [
            {"type": "image", "data": PNG, "media_type": "image/jpeg"}]}])


# ------------------------------------------------------------------ structured output


SCHEMA = OutputSchema("city", {"type": "object", "properties": {"name": {"type": "string"}},
                               "required": ["name"]})


async def test_structured_output_native_on_newer_models(sim: AnthropicSimulator) -> None:
    sim.enqueue(text_stream(['{"name": ', '"Paris"}']))
    response = await claude(sim).respond("A city?", response_schema=SCHEMA)
    assert response.text == '{"name": "Paris"}'
    assert body(sim)["output_config"] == {"format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
        "additionalProperties": False}}}
    assert "tools" not in body(sim)


async def test_structured_output_forced_tool_on_older_models(sim: AnthropicSimulator) -> None:
    sim.enqueue(tool_stream([("toolu_S", "city", ['{"name": ', '"Paris"}'])],
                            model="claude-sonnet-4-20250514"))
    response = await claude(sim, "claude-sonnet-4-20250514").respond(
        "A city?", response_schema=SCHEMA)
    assert response.text == '{"name": "Paris"}'
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"
    sent = body(sim)
    assert sent["tools"] == [{"name": "city", "description": "Give the answer as the city "
                              "object.", "input_schema": SCHEMA.schema}]
    assert sent["tool_choice"] == {"type": "tool", "name": "city"}
    assert "output_config" not in sent


# ------------------------------------------------------------------------ prompt cache


async def test_cache_prompt_marks_system_tools_and_the_stable_turn(
    sim: AnthropicSimulator,
) -> None:
    history = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Weather?"},
    ]
    await claude(sim, cache_prompt=True).respond(history, tools=[WEATHER])
    sent = body(sim)
    mark = {"type": "ephemeral"}
    assert sent["system"] == [{"type": "text", "text": "You are terse.", "cache_control": mark}]
    assert sent["tools"][-1]["cache_control"] == mark
    assert sent["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello.",
                                           "cache_control": mark}]},
        {"role": "user", "content": "Weather?"},
    ]


async def test_cache_prompt_never_marks_thinking(sim: AnthropicSimulator) -> None:
    llm = claude(sim, "claude-sonnet-4-5", max_tokens=4096, cache_prompt=True)
    sim.enqueue(tool_stream([("toolu_C", "get_weather", ['{"location": "Bern"}'])],
                            thinking=["Bern."]))
    first = await llm.respond("Bern?", tools=[WEATHER], reasoning_budget=1024)
    await llm.respond([{"role": "user", "content": "Bern?"}, first.message,
                       {"role": "tool", "tool_call_id": "toolu_C", "content": "9C"}],
                      tools=[WEATHER], reasoning_budget=1024)
    content = body(sim)["messages"][1]["content"]
    assert "cache_control" not in content[0]
    assert content[1]["cache_control"] == {"type": "ephemeral"}
    assert first.message["provider_data"]["content"][1].get("cache_control") is None


def test_simulator_counts_cache_breakpoints() -> None:
    from synapsekit.testing.simulators.anthropic_protocol import check_body

    mark = {"type": "ephemeral"}
    blocks = [{"type": "text", "text": f"p{i}", "cache_control": mark} for i in range(5)]
    found = check_body({"model": "m", "max_tokens": 10,
                        "messages": [{"role": "user", "content": blocks}]})
    assert found is not None and found.status == 400
    assert json.loads(found.body)["error"] == {
        "type": "invalid_request_error",
        "message": "A maximum of 4 blocks with cache_control may be provided. Found 5."}


def test_config_fields_exist() -> None:
    assert LLMConfig(model="m", cache_prompt=True).cache_prompt


# ------------------------------------------------- the simulator refuses what the API does


def _user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


_PNG64 = base64.b64encode(PNG).decode()
_USE = {"role": "assistant", "content": [
    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]}
_RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
_TOOL = {"name": "get_weather", "input_schema": {"type": "object"}}


@pytest.mark.parametrize(("extra", "messages", "message"), [
    ({"tools": [{"name": "get weather", "input_schema": {"type": "object"}}]}, None,
     "tools.0.custom.name: String should match pattern"),
    ({"tools": [{"name": "t"}]}, None, "tools.0.custom.input_schema: Field required"),
    ({"tools": [_TOOL, _TOOL]}, None, "Tool names must be unique."),
    ({"tools": [{**_TOOL, "strict": True, "input_schema": {"type": "object",
                                                          "properties": {}}}]}, None,
     "'additionalProperties' must be explicitly set to false"),
    ({"tools": [_TOOL], "tool_choice": {"type": "required"}}, None,
     "Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"),
    ({"tool_choice": {"type": "any"}}, None,
     "tool_choice may only be specified while providing tools."),
    ({"tools": [_TOOL], "tool_choice": {"type": "any"},
      "thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}, None,
     "Thinking may not be enabled when tool_choice forces tool use."),
    ({"thinking": {"type": "enabled", "budget_tokens": 1000}}, None,
     "budget_tokens: Input should be greater than or equal to 1024"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 2048}, None,
     "`max_tokens` must be greater than `thinking.budget_tokens`"),
    ({"output_config": {"effort": "extreme"}}, None, "output_config.effort: Input should be"),
    ({"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
     None, "'additionalProperties' must be explicitly set to false"),
    ({}, [_user({"type": "image", "source": {"type": "base64", "media_type": "image/bmp",
                                             "data": _PNG64}})],
     "media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"),
    ({}, [_user({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "not base64!"}})],
     "The image data is not valid base64."),
    ({}, [_user({"type": "document", "source": {"type": "base64",
                                                "media_type": "application/pdf",
                                                "data": _PNG64}})],
     "The PDF specified was not valid."),
    ({}, [_user({"type": "text", "text": "q"}), _USE,
          _user({"type": "text", "text": "first"}, _RESULT)],
     "`tool_result` blocks must come first"),
    ({}, [_user({"type": "text", "text": "q"}), _USE, _user({"type": "text", "text": "x"})],
     "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048},
     [_user({"type": "text", "text": "q"}), _USE, _user(_RESULT)],
     "Expected `thinking` or `redacted_thinking`, but found `tool_use`"),
    ({}, [_user({"type": "text", "text": "q"}),
          {"role": "assistant", "content": [{"type": "thinking", "thinking": "x",
                                             "signature": "made-up"}]}],
     "Invalid `signature` in `thinking` block"),
])
def test_simulator_rejects_like_the_api(
    extra: dict[str, Any], messages: list[dict[str, Any]] | None, message: str
) -> None:
    from synapsekit.testing.simulators.anthropic_protocol import check_body

    sent: dict[str, Any] = {"model": "m", "max_tokens": 10,
                            "messages": messages or [{"role": "user", "content": "hi"}], **extra}
    found = check_body(sent)
    assert found is not None and found.status == 400
    error = json.loads(found.body)
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]


async def test_server_tool_block_kept_with_its_streamed_input(sim: AnthropicSimulator) -> None:
    events = list(text_stream(["Searching."]).stream or ())
    start = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    extra = [
        b"event: content_block_start\ndata: " + json.dumps(
            {"type": "content_block_start", "index": 1, "content_block": start}).encode()
        + b"\n\n",
        b"event: content_block_delta\ndata: " + json.dumps(
            {"type": "content_block_delta", "index": 1, "delta": {
                "type": "input_json_delta", "partial_json": '{"query": "paris"}'}}).encode()
        + b"\n\n",
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n',
    ]
    at = len(events) - 2  # before message_delta, message_stop
    from synapsekit.testing.simulators.server import Reply

    sim.enqueue(Reply(200, {"content-type": "text/event-stream"},
                      stream=[*events[:at], *extra, *events[at:]]))
    response = await claude(sim).respond("Search")
    assert response.tool_calls == ()  # a server tool is not the caller's to run
    assert response.text == "Searching."
    assert response.message["provider_data"]["content"] == [
        {"type": "text", "text": "Searching."},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
         "input": {"query": "paris"}},
    ]
