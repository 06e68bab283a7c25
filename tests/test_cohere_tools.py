"""Cohere v2 beyond text: tool calls, parallel calls, the tool loop, images, reasoning and
structured output, through the real cohere SDK over HTTP against the Cohere simulator.

Exact values come from captures/cohere/stream_tool_call.sse (two calls, one after the
other, after a 50-piece tool plan) and stream_thinking_realcapture.sse; every request body
is asserted whole where it matters, and refusals are checked to send nothing.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import InvalidInputError, InvalidRequestError, ToolCallError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.providers.cohere import CohereLLM
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Chunk, OutputSchema, ToolCall
from synapsekit.testing.simulators.cohere_protocol import (
    CohereSimulator,
    capture,
    text_stream,
    tool_stream,
)
from tests.sim_fixtures import serve, track

pytestmark = pytest.mark.filterwarnings("ignore::synapsekit.llm.pricing.UnknownModelPriceWarning")

KEY = "co-tools-key-0123456789"
MODEL = "command-a-03-2025"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
PDF = b"%PDF-1.7\n%fake\n"

SALES = Tool(
    "query_daily_sales_report",
    "Connects to a database to retrieve overall sales volumes for a given day.",
    {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]},
)
CATALOG = Tool(
    "query_product_catalog",
    "Connects to a product catalog.",
    {"type": "object", "properties": {"category": {"type": "string"}}, "required": ["category"]},
)
TOOLS = [SALES, CATALOG]
PLAN = ("I will use the query_daily_sales_report tool to find the sales summary for 29th "
        "September 2023. I will also use the query_product_catalog tool to find the details "
        "of the products in the Electronics category.")
CALLS = (
    ToolCall("query_daily_sales_report_j3f0adww9pmr", "query_daily_sales_report",
             {"day": "2023-09-29"}, 0),
    ToolCall("query_product_catalog_c66nf11r6s8g", "query_product_catalog",
             {"category": "Electronics"}, 1),
)
WIRE_TOOLS = [
    {"type": "function", "function": {
        "name": t.name, "description": t.description, "parameters": t.schema}}
    for t in TOOLS
]


_server, sim = serve(lambda: CohereSimulator(KEY))


def _llm(sim: CohereSimulator, model: str = MODEL, **fields: Any) -> BaseLLM:
    llm = make_llm(model, api_key=KEY, base_url=sim.url, system_prompt=None, **fields)
    assert isinstance(llm, CohereLLM)
    return track(llm)


def _body(sim: CohereSimulator, n: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = sim.requests[n].json()
    return body


# ------------------------------------------------------------------------ tool calls


async def test_tool_call_capture_exact_calls_usage_and_request(sim: CohereSimulator) -> None:
    sim.enqueue(capture("cohere/stream_tool_call.sse"))
    response = await _llm(sim).respond("Sales on 2023-09-29?", tools=TOOLS,
                                       tool_choice="required")
    assert response.tool_calls == CALLS
    assert response.finish_reason == "tool_calls"
    assert response.metadata["raw_finish_reason"] == "TOOL_CALL"
    assert response.text == ""
    assert response.reasoning == PLAN  # tool-plan-delta is reasoning, never the answer
    u = response.usage
    assert (u.input_tokens, u.output_tokens) == (1589, 135)
    assert (u.billed_input_tokens, u.billed_output_tokens) == (126, 84)
    assert response.message == {
        "role": "assistant", "content": "", "tool_calls": list(CALLS),
        "provider_data": {"protocol": "cohere", "content": {"tool_plan": PLAN}},
    }
    body = _body(sim)
    assert body["tools"] == WIRE_TOOLS
    assert body["tool_choice"] == "REQUIRED"
    assert "strict_tools" not in body
    assert len(sim.requests) == 1


async def test_deltas_of_the_capture_carry_ids_once_and_fragments_in_order(
    sim: CohereSimulator,
) -> None:
    sim.enqueue(capture("cohere/stream_tool_call.sse"))
    chunks: list[Chunk] = [c async for c in _llm(sim).stream_chunks("sales?", tools=TOOLS)]
    deltas = [c.tool_delta for c in chunks if c.tool_delta is not None]
    firsts = [(d.index, d.id, d.name) for d in deltas if d.id is not None]
    assert firsts == [(0, CALLS[0].id, CALLS[0].name), (1, CALLS[1].id, CALLS[1].name)]
    by_index = {i: "".join(d.arguments for d in deltas if d.index == i) for i in (0, 1)}
    assert by_index == {0: '{"day": "2023-09-29"}', 1: '{"category": "Electronics"}'}
    assert [d.index for d in deltas if d.done] == [0, 1]  # tool-call-end closes each
    assert [c.tool_call for c in chunks if c.tool_call is not None] == list(CALLS)


async def test_interleaved_parallel_calls_stay_apart(sim: CohereSimulator) -> None:
    sim.enqueue(tool_stream(
        [("c-a", "query_daily_sales_report", ['{"day"', ': "2024', '-01-02"}']),
         ("c-b", "query_product_catalog", ['{"cate', 'gory": "Toys"}'])],
        interleave=True,
    ))
    response = await _llm(sim).respond("both", tools=TOOLS)
    assert response.tool_calls == (
        ToolCall("c-a", "query_daily_sales_report", {"day": "2024-01-02"}, 0),
        ToolCall("c-b", "query_product_catalog", {"category": "Toys"}, 1),
    )
    assert response.finish_reason == "tool_calls"


async def test_two_step_tool_loop_is_accepted(sim: CohereSimulator) -> None:
    llm = _llm(sim)
    sim.enqueue(capture("cohere/stream_tool_call.sse"))
    sim.enqueue(text_stream(["Sales were ", "10000."], input_tokens=30, output_tokens=4))
    history: list[dict[str, Any]] = [{"role": "user", "content": "Sales on 2023-09-29?"}]
    first = await llm.respond(history, tools=TOOLS)
    history.append(dict(first.message))
    results = {CALLS[0].id: '{"total": 10000}', CALLS[1].id: '{"products": 3}'}
    history += [{"role": "tool", "tool_call_id": c.id, "content": results[c.id]}
                for c in first.tool_calls]
    second = await llm.respond(history, tools=TOOLS)
    assert second.text == "Sales were 10000." and second.finish_reason == "stop"
    assert len(sim.requests) == 2
    assert _body(sim)["messages"] == [
        {"role": "user", "content": "Sales on 2023-09-29?"},
        {"role": "assistant", "tool_plan": PLAN, "tool_calls": [
            {"id": CALLS[0].id, "type": "function", "function": {
                "name": "query_daily_sales_report", "arguments": '{"day": "2023-09-29"}'}},
            {"id": CALLS[1].id, "type": "function", "function": {
                "name": "query_product_catalog", "arguments": '{"category": "Electronics"}'}},
        ]},
        {"role": "tool", "tool_call_id": CALLS[0].id, "content": '{"total": 10000}'},
        {"role": "tool", "tool_call_id": CALLS[1].id, "content": '{"products": 3}'},
    ]


async def test_a_tool_result_naming_no_call_is_refused_by_the_api(sim: CohereSimulator) -> None:
    turns = [{"role": "user", "content": "x"},
             {"role": "tool", "tool_call_id": "nope", "content": "{}"}]
    with pytest.raises(InvalidRequestError, match="does not match any tool call"):
        await _llm(sim).respond(turns, tools=TOOLS)
    assert len(sim.requests) == 1


async def test_invalid_tool_json_is_a_tool_call_error(sim: CohereSimulator) -> None:
    sim.enqueue(tool_stream([("c-x", "query_product_catalog", ['{"category": ', '"Toys"'])]))
    with pytest.raises(ToolCallError) as caught:
        await _llm(sim).respond("toys", tools=TOOLS)
    err = caught.value
    assert (err.tool_name, err.tool_call_id) == ("query_product_catalog", "c-x")
    assert err.raw_arguments == '{"category": "Toys"'


async def test_strict_tools_and_tool_choice_none(sim: CohereSimulator) -> None:
    strict = Tool(SALES.name, SALES.description, SALES.parameters, strict=True)
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim).respond("x", tools=[strict, CATALOG], tool_choice="none")
    body = _body(sim)
    assert (body["strict_tools"], body["tool_choice"]) == (True, "NONE")
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim).respond("x", tools=TOOLS, tool_choice="auto")
    assert "tool_choice" not in _body(sim)  # Cohere's default; it has no AUTO value


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"tools": TOOLS, "tool_choice": {"name": "query_product_catalog"}}, "tool_choice"),
        ({"tools": TOOLS, "parallel_tool_calls": False}, "parallel_tool_calls"),
    ],
    ids=["named-choice", "parallel-off"],
)
async def test_tool_settings_cohere_lacks_are_refused_before_any_request(
    sim: CohereSimulator, overrides: dict[str, Any], match: str,
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        await _llm(sim).respond("x", **overrides)
    assert sim.requests == []


# ------------------------------------------------------------------------ images, documents


async def test_images_as_data_urls_and_urls_on_a_vision_model(sim: CohereSimulator) -> None:
    sim.enqueue(text_stream(["A chart."]))
    parts = [{"type": "text", "text": "What is this?"},
             {"type": "image", "data": PNG},
             {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]
    answer = await _llm(sim, "command-a-vision-07-2025").generate_with_messages(
        [{"role": "user", "content": parts}])
    assert answer == "A chart."
    assert _body(sim)["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
    ]}]


@pytest.mark.parametrize(
    ("model", "part", "match"),
    [
        (MODEL, {"type": "image", "data": PNG}, "does not take image"),
        ("command-a-vision-07-2025", {"type": "document", "data": PDF}, "does not take document"),
    ],
    ids=["image-to-a-text-model", "pdf"],
)
async def test_parts_cohere_cannot_take_are_refused_before_any_request(
    sim: CohereSimulator, model: str, part: dict[str, Any], match: str,
) -> None:
    turns = [{"role": "user", "content": [{"type": "text", "text": "see"}, part]}]
    with pytest.raises(InvalidInputError, match=match):
        await _llm(sim, model).respond(turns)
    assert sim.requests == []


async def test_an_image_in_a_tool_result_is_refused_before_any_request(
    sim: CohereSimulator,
) -> None:
    turns: list[dict[str, Any]] = [
             {"role": "user", "content": "x"},
             {"role": "assistant", "content": "", "tool_calls": [CALLS[0]]},
             {"role": "tool", "tool_call_id": CALLS[0].id,
              "content": [{"type": "image", "data": PNG}]}]
    with pytest.raises(InvalidInputError, match="tool result can hold text only"):
        await _llm(sim, "command-a-vision-07-2025").respond(turns, tools=TOOLS)
    assert sim.requests == []


# ------------------------------------------------------------------------ reasoning


REASONER = "command-a-reasoning-08-2025"


@pytest.mark.parametrize(
    ("settings", "thinking"),
    [
        ({"reasoning_effort": "high"}, {"type": "enabled", "token_budget": 24576}),
        ({"reasoning_effort": "minimal"}, {"type": "enabled", "token_budget": 1024}),
        ({"reasoning_budget": 500}, {"type": "enabled", "token_budget": 500}),
        ({"reasoning_budget": 100_000}, {"type": "enabled", "token_budget": 31000}),  # clamped
        ({"reasoning_effort": "none"}, {"type": "disabled"}),
        ({"reasoning_budget": 0}, {"type": "disabled"}),
    ],
    ids=["high", "minimal", "budget", "clamped", "none", "zero"],
)
async def test_reasoning_maps_to_thinking(
    sim: CohereSimulator, settings: dict[str, Any], thinking: dict[str, Any],
) -> None:
    sim.enqueue(text_stream(["4"]))
    await _llm(sim, REASONER, **settings).generate("2+2?")
    assert _body(sim)["thinking"] == thinking


async def test_reasoning_on_a_model_without_it(sim: CohereSimulator) -> None:
    with pytest.raises(InvalidInputError, match="reasoning_effort"):
        await _llm(sim, reasoning_effort="high").generate("x")
    assert sim.requests == []
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim, reasoning_effort="none").generate("x")  # off: nothing to send
    assert "thinking" not in _body(sim)


async def test_thinking_capture_is_reasoning_and_not_sent_back_without_tools(
    sim: CohereSimulator,
) -> None:
    sim.enqueue(capture("cohere/stream_thinking_realcapture.sse"))
    response = await _llm(sim, REASONER).respond("2 + 2?")
    assert response.text == "The answer to 2 + 2 is 4."
    assert len(response.reasoning) == 162 and response.reasoning.startswith("The user is")
    assert "provider_data" not in response.message


async def test_thinking_of_a_tool_turn_goes_back_as_a_thinking_item(
    sim: CohereSimulator,
) -> None:
    llm = _llm(sim, REASONER)
    sim.enqueue(tool_stream([("c-1", "query_product_catalog", ['{"category": "Toys"}'])],
                            plan=["Look it up."], thinking=["Need", " the catalog."]))
    first = await llm.respond("toys?", tools=TOOLS)
    assert first.reasoning == "Need the catalog.Look it up."
    assert first.message["provider_data"] == {"protocol": "cohere", "content": {
        "tool_plan": "Look it up.", "thinking": "Need the catalog."}}
    sim.enqueue(text_stream(["Three toys."]))
    turns = [{"role": "user", "content": "toys?"}, first.message,
             {"role": "tool", "tool_call_id": "c-1", "content": "3"}]
    await llm.respond(turns, tools=TOOLS)
    assert _body(sim)["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "thinking", "thinking": "Need the catalog."}],
        "tool_plan": "Look it up.",
        "tool_calls": [{"id": "c-1", "type": "function", "function": {
            "name": "query_product_catalog", "arguments": '{"category": "Toys"}'}}],
    }


# ------------------------------------------------------------------------ structured output


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "format": "email"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "born": {"type": "string", "format": "date"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


async def test_structured_output_request_shape(sim: CohereSimulator) -> None:
    sim.enqueue(text_stream(['{"name": "Ada", "age": 36}']))
    response = await _llm(sim).respond(
        "Generate a JSON person.", response_schema=OutputSchema("person", SCHEMA))
    assert json.loads(response.text) == {"name": "Ada", "age": 36}
    assert _body(sim)["response_format"] == {"type": "json_object", "json_schema": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "born": {"type": "string", "format": "date"},
        },
        "required": ["name", "age"],
    }}


async def test_structured_output_with_tools_is_refused_before_any_request(
    sim: CohereSimulator,
) -> None:
    with pytest.raises(InvalidInputError, match="cannot be combined with tools"):
        await _llm(sim).respond("x", tools=TOOLS, response_schema=OutputSchema("p", SCHEMA))
    assert sim.requests == []


def test_capabilities_say_what_cohere_takes() -> None:
    caps = CohereLLM.capabilities
    assert (caps.images, caps.image_urls, caps.documents, caps.tools) == (True, True, False, True)
    assert caps.tool_choices == {"auto", "none", "required"}
    assert caps.parallel_tool_calls is False
    assert (caps.structured, caps.reasoning) == ("json_schema", frozenset({"budget"}))


async def test_generate_object_reasks_after_an_invalid_answer(sim: CohereSimulator) -> None:
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    sim.enqueue(text_stream(['{"name": "Ada"}']))
    sim.enqueue(text_stream(['{"name": "Ada", "age": 36}']))
    person = await _llm(sim).generate_object("Generate a JSON person.", schema=Person)
    assert person == Person(name="Ada", age=36)
    assert len(sim.requests) == 2
    first, second = _body(sim, 0), _body(sim, 1)
    assert first["response_format"] == second["response_format"] == {
        "type": "json_object", "json_schema": _expected_person_schema(),
    }
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][1] == {"role": "assistant", "content": '{"name": "Ada"}'}
    assert "age" in second["messages"][2]["content"]


def _expected_person_schema() -> dict[str, Any]:
    return {
        "properties": {"name": {"title": "Name", "type": "string"},
                       "age": {"title": "Age", "type": "integer"}},
        "required": ["name", "age"], "title": "Person", "type": "object",
    }


async def test_run_tools_runs_both_parallel_calls_and_answers(sim: CohereSimulator) -> None:
    seen: list[tuple[str, str]] = []

    def sales(day: str) -> dict[str, int]:
        seen.append(("sales", day))
        return {"units": 250}

    async def catalog(category: str) -> str:
        seen.append(("catalog", category))
        return "3 products"

    tools = [Tool(SALES.name, SALES.description, SALES.parameters, function=sales),
             Tool(CATALOG.name, CATALOG.description, CATALOG.parameters, function=catalog)]
    sim.enqueue(capture("cohere/stream_tool_call.sse"))
    sim.enqueue(text_stream(["250 units; 3 products."]))
    final = await _llm(sim).run_tools("Sales and electronics?", tools=tools)
    assert final.text == "250 units; 3 products."
    assert sorted(seen) == [("catalog", "Electronics"), ("sales", "2023-09-29")]
    assert [m["role"] for m in final.transcript] == ["user", "assistant", "tool", "tool",
                                                      "assistant"]
    tool_turns = [m for m in _body(sim)["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_turns] == [CALLS[0].id, CALLS[1].id]
    assert json.loads(tool_turns[0]["content"]) == {"units": 250}
    assert tool_turns[1]["content"] == "3 products"
    assert len(sim.requests) == 2


async def test_strict_tools_are_trimmed_and_their_limits_refused_before_any_request(
    sim: CohereSimulator,
) -> None:
    ranged = Tool("pick", "", {"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["n"]}, strict=True)
    sim.enqueue(text_stream(["ok"]))
    await _llm(sim).respond("x", tools=[ranged])
    assert _body(sim)["tools"][0]["function"]["parameters"] == {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    loose = Tool("maybe", "", {"type": "object", "properties": {"x": {"type": "string"}}},
                 strict=True)
    with pytest.raises(InvalidInputError, match="at least one required parameter"):
        await _llm(sim).respond("x", tools=[loose])
    assert len(sim.requests) == 1


async def test_a_cache_hit_replays_the_calls_the_plan_and_provider_data(
    sim: CohereSimulator,
) -> None:
    llm = _llm(sim, cache=True)
    sim.enqueue(capture("cohere/stream_tool_call.sse"))
    first = await llm.respond("sales?", tools=TOOLS)
    again = await llm.respond("sales?", tools=TOOLS)
    assert len(sim.requests) == 1
    assert again.tool_calls == first.tool_calls == CALLS
    assert again.reasoning == PLAN
    assert again.message["provider_data"] == first.message["provider_data"]
    assert again.finish_reason == "tool_calls"
