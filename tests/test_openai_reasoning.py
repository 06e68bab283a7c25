"""Reasoning controls and structured output on the OpenAI protocol, per vendor: each level as
sent (clamped to what the model takes, "none" where it can switch off), accepted by the
simulator's per-vendor validation; reasoning deltas in every vendor's field; what goes back
verbatim (OpenRouter reasoning_details, DeepSeek reasoning_content of a tool-calling turn);
response_format json_schema (strict dialect) or json_object + instructions (DeepSeek)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import InvalidRequestError, UnsupportedFeatureError
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import OutputSchema, ToolCall
from synapsekit.testing.simulators.openai_checks import check_features
from synapsekit.testing.simulators.openai_protocol import (
    OpenAISimulator,
    _invalid,
    capture,
    text_stream,
)
from synapsekit.testing.simulators.openai_streams import Call, reasoning_stream
from synapsekit.testing.simulators.wire import read_wire
from tests.conftest import API_KEY

ABSENT = object()


@pytest.fixture
def sims() -> Iterator[dict[str, OpenAISimulator]]:
    started: dict[str, OpenAISimulator] = {}
    try:
        yield started
    finally:
        for sim in started.values():
            sim.stop()


def _sim(sims: dict[str, OpenAISimulator], vendor: str) -> OpenAISimulator:
    if vendor not in sims:
        sims[vendor] = (
            OpenAISimulator(API_KEY, auth="azure") if vendor == "azure"
            else OpenAISimulator(API_KEY, vendor=vendor)
        ).start()
    return sims[vendor]


async def _sent(
    sims: dict[str, OpenAISimulator], spec: str, **overrides: Any
) -> dict[str, Any]:
    """The body one call with ``overrides`` sent (the simulator accepted it)."""
    provider = spec.split(":")[0]
    sim = _sim(sims, provider)
    sim.reset()
    sim.enqueue(text_stream(["ok"]))
    llm = make_llm(spec, api_key=API_KEY, base_url=sim.url)
    assert (await llm.respond("Think.", **overrides)).text == "ok"
    body: dict[str, Any] = sim.requests[0].json()
    return body


@pytest.mark.parametrize(("spec", "setting", "field", "sent"), [
    # OpenAI / Azure: reasoning_effort, clamped per model family.
    ("openai:gpt-5.1", {"reasoning_effort": "minimal"}, "reasoning_effort", "low"),
    ("openai:gpt-5.1", {"reasoning_effort": "none"}, "reasoning_effort", "none"),
    ("openai:gpt-5.2", {"reasoning_effort": "xhigh"}, "reasoning_effort", "xhigh"),
    ("openai:gpt-5-mini", {"reasoning_effort": "none"}, "reasoning_effort", "minimal"),
    ("openai:gpt-5", {"reasoning_effort": "xhigh"}, "reasoning_effort", "high"),
    ("openai:o3-mini", {"reasoning_effort": "minimal"}, "reasoning_effort", "low"),
    ("openai:o4-mini", {"reasoning_budget": 30000}, "reasoning_effort", "high"),
    ("openai:gpt-5-pro", {"reasoning_effort": "low"}, "reasoning_effort", "high"),
    ("openai:o1-mini", {"reasoning_effort": "none"}, "reasoning_effort", ABSENT),
    ("openai:gpt-4o", {"reasoning_effort": "none"}, "reasoning_effort", ABSENT),
    ("azure:gpt-5-nano", {"reasoning_effort": "medium"}, "reasoning_effort", "medium"),
    # Groq: Qwen 3 none / default, gpt-oss low..high (never off).
    ("groq:qwen/qwen3-32b", {"reasoning_effort": "low"}, "reasoning_effort", "default"),
    ("groq:qwen/qwen3-32b", {"reasoning_effort": "none"}, "reasoning_effort", "none"),
    ("groq:openai/gpt-oss-120b", {"reasoning_effort": "none"}, "reasoning_effort", "low"),
    ("groq:openai/gpt-oss-20b", {"reasoning_effort": "xhigh"}, "reasoning_effort", "high"),
    # DeepSeek: thinking on/off + low/high/max.
    ("deepseek:deepseek-chat", {"reasoning_effort": "none"}, "thinking", {"type": "disabled"}),
    ("deepseek:deepseek-chat", {"reasoning_effort": "medium"}, "reasoning_effort", "high"),
    ("deepseek:deepseek-chat", {"reasoning_effort": "medium"}, "thinking", {"type": "enabled"}),
    ("deepseek:deepseek-reasoner", {"reasoning_effort": "xhigh"}, "reasoning_effort", "max"),
    # OpenRouter: reasoning {effort} or {max_tokens}.
    ("openrouter:anthropic/claude-sonnet-4.5", {"reasoning_effort": "high"}, "reasoning",
     {"effort": "high"}),
    ("openrouter:anthropic/claude-sonnet-4.5", {"reasoning_budget": 3000}, "reasoning",
     {"max_tokens": 3000}),
    ("openrouter:openai/o3", {"reasoning_effort": "none"}, "reasoning", {"effort": "none"}),
    # Cerebras: gpt-oss low..high; GLM thinks unless "none".
    ("cerebras:gpt-oss-120b", {"reasoning_effort": "none"}, "reasoning_effort", "low"),
    ("cerebras:zai-glm-4.7", {"reasoning_effort": "high"}, "reasoning_effort", ABSENT),
    ("cerebras:zai-glm-4.7", {"reasoning_effort": "none"}, "reasoning_effort", "none"),
    # Together / Fireworks where they have it (Perplexity's Agent API: test_perplexity_agent).
    ("together:openai/gpt-oss-120b", {"reasoning_effort": "minimal"}, "reasoning_effort", "low"),
    ("fireworks:accounts/fireworks/models/gpt-oss-120b", {"reasoning_effort": "high"},
     "reasoning_effort", "high"),
    ("fireworks:accounts/fireworks/models/deepseek-v4-pro", {"reasoning_effort": "none"},
     "reasoning_effort", "none"),
])
async def test_reasoning_setting_as_sent_and_accepted(
    sims: dict[str, OpenAISimulator], spec: str, setting: dict[str, Any], field: str, sent: Any,
) -> None:
    body = await _sent(sims, spec, **setting)
    assert body.get(field, ABSENT) == sent
    if spec.startswith(("openai:", "azure:")) and sent is not ABSENT:
        assert "temperature" not in body  # reasoning models refuse it (400 otherwise)


@pytest.mark.parametrize("spec", [
    "openai:gpt-4o", "groq:llama-3.3-70b-versatile", "cerebras:llama3.1-8b",
    "together:meta-llama/Llama-3.3-70B-Instruct-Turbo",
])
async def test_reasoning_on_a_model_without_it_refused_before_any_request(
    sims: dict[str, OpenAISimulator], spec: str
) -> None:
    sim = _sim(sims, spec.split(":")[0])
    llm = make_llm(spec, api_key=API_KEY, base_url=sim.url)
    with pytest.raises(UnsupportedFeatureError, match="takes no reasoning controls"):
        await llm.respond("Think.", reasoning_effort="high")
    assert sim.requests == []


def test_simulator_refuses_levels_a_model_refuses() -> None:
    def refused(body: dict[str, Any], model: str, vendor: str) -> bytes:
        reply = check_features({"messages": [], **body}, model, vendor, _invalid)
        assert reply is not None and reply.status == 400
        return bytes(reply.body)

    assert b"Unsupported value: 'minimal' is not supported with the 'gpt-5.1' model. " \
        b"Supported values are: 'none', 'low', 'medium', and 'high'." in refused(
            {"reasoning_effort": "minimal"}, "gpt-5.1", "openai")
    assert b"'reasoning_effort' is not supported with this model" in refused(
        {"reasoning_effort": "low"}, "gpt-4o", "openai")
    assert b"'none' is not supported" in refused({"reasoning_effort": "none"},
                                                 "gpt-oss-120b", "cerebras")
    assert b"'low' is not supported" in refused({"reasoning_effort": "low"}, "qwen/qwen3-32b",
                                                "groq")
    assert b"Only one of" in refused({"reasoning": {"effort": "low", "max_tokens": 9}}, "x",
                                     "openrouter")


async def test_temperature_never_reaches_a_reasoning_model(
    sims: dict[str, OpenAISimulator]
) -> None:
    body = await _sent(sims, "openai:o3-mini", reasoning_effort="high", temperature=0.7)
    assert "temperature" not in body and body["reasoning_effort"] == "high"


# ------------------------------------------------------------------------------ decode


@pytest.mark.parametrize(("spec", "field"), [
    ("deepseek:deepseek-reasoner", "reasoning_content"),
    ("fireworks:accounts/fireworks/models/deepseek-v4-pro", "reasoning_content"),
    ("groq:qwen/qwen3-32b", "reasoning"),
    ("cerebras:zai-glm-4.7", "reasoning"),
])
async def test_reasoning_deltas_in_each_vendors_field(
    sims: dict[str, OpenAISimulator], spec: str, field: str
) -> None:
    sim = _sim(sims, spec.split(":")[0])
    sim.reset()
    sim.enqueue(reasoning_stream(["Let", " me", " think."], ["4", "."], field=field))
    llm = make_llm(spec, api_key=API_KEY, base_url=sim.url)
    response = await llm.respond("2+2?")
    assert (response.reasoning, response.text) == ("Let me think.", "4.")
    assert response.usage.reasoning_tokens == 3
    assert "provider_data" not in response.message  # nothing to send back without tool calls


async def test_openrouter_reasoning_details_carried_back_verbatim(
    sims: dict[str, OpenAISimulator]
) -> None:
    sim = _sim(sims, "openrouter")
    sim.enqueue(capture("openai_compatible/openrouter/stream_reasoning_realcapture.sse"),
                text_stream(["Yes."]))
    llm = make_llm("openrouter:anthropic/claude-sonnet-4.5", api_key=API_KEY, base_url=sim.url)
    first = await llm.respond("2+2?", reasoning_effort="high")
    assert first.text == "2 + 2 = 4"
    assert first.reasoning == "This is a simple arithmetic question. 2+2 equals 4."
    signature = re.search(rb'"signature":"(Et0[^"]+)"', read_wire(
        "openai_compatible/openrouter/stream_reasoning_realcapture.sse"))
    assert signature is not None
    details = [{"type": "reasoning.text",
                "text": "This is a simple arithmetic question. 2+2 equals 4.",
                "signature": signature.group(1).decode(), "format": "anthropic-claude-v1",
                "index": 0}]
    assert first.message["provider_data"] == {"protocol": "openrouter",
                                              "content": {"reasoning_details": details}}
    await llm.respond([{"role": "user", "content": "2+2?"}, first.message,
                       {"role": "user", "content": "Sure?"}])
    assert sim.requests[1].json()["messages"][2] == {
        "role": "assistant", "content": "2 + 2 = 4", "reasoning_details": details}


async def test_deepseek_tool_turn_sends_reasoning_content_back(
    sims: dict[str, OpenAISimulator]
) -> None:
    sim = _sim(sims, "deepseek")
    sim.enqueue(
        reasoning_stream(["Need", " the tool."], [], model="deepseek-reasoner",
                         calls=[Call("call_00_ab12", "get_weather", {"city": "Hangzhou"})]),
        text_stream(["Sunny."]),
    )
    llm = make_llm("deepseek:deepseek-reasoner", api_key=API_KEY, base_url=sim.url)
    weather = Tool("get_weather", "", {"type": "object",
                                       "properties": {"city": {"type": "string"}}})
    first = await llm.respond("Weather in Hangzhou?", tools=[weather])
    assert first.tool_calls == (ToolCall("call_00_ab12", "get_weather", {"city": "Hangzhou"}),)
    assert first.message["provider_data"] == {
        "protocol": "deepseek", "content": {"reasoning_content": "Need the tool."}}
    history = [{"role": "user", "content": "Weather in Hangzhou?"}, first.message,
               {"role": "tool", "tool_call_id": "call_00_ab12", "content": "sunny"}]
    assert (await llm.respond(history, tools=[weather])).text == "Sunny."
    assistant = sim.requests[1].json()["messages"][2]
    assert assistant["reasoning_content"] == "Need the tool."
    # Without it (a history from elsewhere) DeepSeek's thinking mode answers 400.
    plain = {k: v for k, v in first.message.items() if k != "provider_data"}
    with pytest.raises(InvalidRequestError, match="reasoning_content in the thinking mode"):
        await llm.respond([history[0], plain, history[2]], tools=[weather])


async def test_deepseek_capture_keeps_reasoning_and_sends_nothing_back(
    sims: dict[str, OpenAISimulator]
) -> None:
    sim = _sim(sims, "deepseek")
    sim.enqueue(capture("openai_compatible/deepseek/stream_reasoning_realcapture.sse"))
    llm = make_llm("deepseek:deepseek-reasoner", api_key=API_KEY, base_url=sim.url)
    response = await llm.respond("How many r in strawberry?")
    assert len(response.reasoning) == 606 and "provider_data" not in response.message


# ------------------------------------------------------------------------------ structured

PERSON = OutputSchema("person", {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "default": 0},
                   "tags": {"type": "array", "items": {
                       "type": "object", "properties": {"k": {"type": "string"}}}}},
    "required": ["name"],
})


@pytest.mark.parametrize("provider", ["openai", "groq", "openrouter", "cerebras", "fireworks"])
async def test_response_format_json_schema_strict(
    sims: dict[str, OpenAISimulator], provider: str
) -> None:
    body = await _sent(sims, f"{provider}:some-model", response_schema=PERSON)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "person", "strict": True, "schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"type": ["integer", "null"]},
                "tags": {"type": ["array", "null"], "items": {
                    "type": "object", "properties": {"k": {"type": ["string", "null"]}},
                    "required": ["k"], "additionalProperties": False}},
            },
            "required": ["name", "age", "tags"], "additionalProperties": False}}}
    assert PERSON.schema["properties"]["age"] == {"type": "integer", "default": 0}  # untouched


async def test_response_format_not_strict_sends_the_schema_as_is(
    sims: dict[str, OpenAISimulator]
) -> None:
    loose = OutputSchema("person", PERSON.schema, strict=False, description="A person.")
    body = await _sent(sims, "openai:gpt-4o", response_schema=loose)
    assert body["response_format"]["json_schema"] == {
        "name": "person", "description": "A person.", "schema": dict(PERSON.schema),
        "strict": False}


async def test_deepseek_json_mode_with_the_schema_in_the_instructions(
    sims: dict[str, OpenAISimulator]
) -> None:
    body = await _sent(sims, "deepseek:deepseek-chat", response_schema=PERSON)
    assert body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith(
        "You are a helpful assistant.\n\nAnswer with one JSON object only")
    assert json.dumps(dict(PERSON.schema), ensure_ascii=False) in system["content"]


def test_simulator_refuses_a_non_strict_schema_marked_strict() -> None:
    body = {"messages": [], "response_format": {"type": "json_schema", "json_schema": {
        "name": "p", "strict": True, "schema": {"type": "object", "properties": {
            "a": {"type": "string"}}, "additionalProperties": False}}}}
    reply = check_features(body, "gpt-4o", "openai", _invalid)
    assert reply is not None and b"Missing 'a'" in reply.body
    body["response_format"] = {"type": "json_object"}
    reply = check_features(body, "gpt-4o", "openai", _invalid)
    assert reply is not None and b"must contain the word 'json'" in reply.body


