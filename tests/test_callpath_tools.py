"""The call path with tools, reasoning, parts and provider data (BaseLLM._run / respond).

A real BaseLLM subclass whose ``_stream`` yields scripted Chunks stands for a provider: the
same path every protocol goes through (capability check, cache, limiter, retries, tool-call
assembly, tracer), with exact values asserted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest

from synapsekit.errors import (
    InvalidInputError,
    ServerError,
    StreamInterruptedError,
    ToolCallError,
    UnsupportedFeatureError,
)
from synapsekit.llm import pricing
from synapsekit.llm.base import CALL_OVERRIDES, BaseLLM
from synapsekit.llm.cache import MemoryCache, cache_key
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Capabilities
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import (
    Chunk,
    Message,
    OutputSchema,
    Response,
    ToolCall,
    ToolCallDelta,
    Usage,
    build_messages,
)
from synapsekit.observability import TokenTracer, call_purpose, current_purpose

FULL = Capabilities(
    images=True, image_urls=True, documents=True, tools=True, parallel_tool_calls=True,
    tool_choices=frozenset({"auto", "none", "required", "name"}), structured="json_schema",
    reasoning=frozenset({"effort", "budget"}),
)
WEATHER = Tool(
    "get_weather", "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CLOCK = Tool("get_time", "The time in a city.",
             {"type": "object", "properties": {"city": {"type": "string"}}})
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
USAGE = Usage(input_tokens=12, output_tokens=7)
DATA = {"protocol": "scripted", "content": [{"type": "thinking", "signature": "sig-1"}]}

Script = Sequence[Chunk | BaseException]

# USD per 1M tokens, so respond()'s cost is checked against a known number.
pricing.register_price("scripted-model", input=1.0, output=2.0)


class Scripted(BaseLLM):
    """A provider whose streams are scripted: one script per request (the last repeats)."""

    provider = "scripted"
    capabilities = FULL

    def __init__(self, *scripts: Script, tracer: TokenTracer | None = None,
                 cache: MemoryCache | None = None, **fields: Any) -> None:
        super().__init__(LLMConfig(model="scripted-model", **fields), tracer=tracer,
                         cache=cache)
        self.scripts = list(scripts)
        self.requests: list[tuple[list[Message], LLMConfig]] = []

    async def _stream(
        self, messages: list[Message], config: LLMConfig
    ) -> AsyncGenerator[Chunk, None]:
        self.requests.append((messages, config))
        script = self.scripts[min(len(self.requests), len(self.scripts)) - 1]
        for item in script:
            if isinstance(item, BaseException):
                raise item
            yield item


class TextOnly(Scripted):
    provider = "textonly"
    capabilities = Capabilities()


def final(finish: str = "tool_calls", **extra: Any) -> Chunk:
    return Chunk(usage=USAGE, finish_reason=finish, **extra)


def delta(index: int, arguments: str = "", call_id: str | None = None,
          name: str | None = None, done: bool = False) -> Chunk:
    return Chunk(tool_delta=ToolCallDelta(index, call_id, name, arguments, done))


#: Two parallel calls whose fragments interleave (as OpenAI-compatible vendors send them).
INTERLEAVED: list[Chunk | BaseException] = [
    Chunk(reasoning="Two cities, "), Chunk(reasoning="two calls."),
    Chunk("Checking."),
    delta(0, "", "call_a", "get_weather"),
    delta(1, '{"ci', "call_b", "get_time"),
    delta(0, '{"city":'),
    delta(1, 'ty": "Oslo"}'),
    delta(0, ' "Paris"}'),
    final("tool_calls", metadata={"raw_finish_reason": "tool_calls"}, provider_data=DATA),
]
CALL_A = ToolCall("call_a", "get_weather", {"city": "Paris"}, 0)
CALL_B = ToolCall("call_b", "get_time", {"city": "Oslo"}, 1)


async def chunks_of(llm: BaseLLM, messages: Any = "weather?", **overrides: Any) -> list[Chunk]:
    return [chunk async for chunk in llm.stream_chunks(messages, **overrides)]


# ------------------------------------------------------------------ assembly


async def test_interleaved_deltas_are_passed_on_and_assembled_per_index() -> None:
    llm = Scripted(INTERLEAVED)
    got = await chunks_of(llm, tools=[WEATHER, CLOCK])
    deltas = [c.tool_delta for c in got if c.tool_delta is not None]
    assert deltas == [c.tool_delta for c in INTERLEAVED if isinstance(c, Chunk) and c.tool_delta]
    assert [c.tool_call for c in got if c.tool_call is not None] == [CALL_A, CALL_B]
    # Order: reasoning, text, the deltas as they came, the calls (by index), the final chunk.
    kinds = [
        "reasoning" if c.reasoning else "text" if c.text else "delta" if c.tool_delta
        else "call" if c.tool_call else "final" for c in got
    ]
    assert kinds == ["reasoning", "reasoning", "text", *["delta"] * 5, "call", "call", "final"]
    last = got[-1]
    assert last.usage == USAGE and last.finish_reason == "tool_calls"
    assert last.provider_data == DATA
    assert last.metadata == {"raw_finish_reason": "tool_calls"}


async def test_a_done_delta_closes_its_call_at_once_and_empty_arguments_are_an_empty_object(
) -> None:
    llm = Scripted([
        delta(0, '{"city": "Rome"}', "toolu_1", "get_weather"),
        delta(0, done=True),
        delta(1, "", "toolu_2", "get_time", done=True),
        final("tool_use"),
    ])
    got = await chunks_of(llm, tools=[WEATHER, CLOCK])
    kinds = ["delta" if c.tool_delta else "call" if c.tool_call else "final" for c in got]
    assert kinds == ["delta", "delta", "call", "delta", "call", "final"]
    assert got[2].tool_call == ToolCall("toolu_1", "get_weather", {"city": "Rome"}, 0)
    assert got[4].tool_call == ToolCall("toolu_2", "get_time", {}, 1)
    # An unknown finish reason with calls is "tool_calls"; the provider's own one is kept.
    assert got[-1].finish_reason == "tool_calls"
    assert got[-1].metadata == {"raw_finish_reason": "tool_use"}


async def test_a_call_without_an_id_gets_one_made_from_its_index() -> None:
    llm = Scripted([delta(0, '{"city": "Rome"}', None, "get_weather", done=True), final()])
    response = await llm.respond("x", tools=[WEATHER])
    assert response.tool_calls == (ToolCall("call_0", "get_weather", {"city": "Rome"}, 0),)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [('{"city": "Par', "not valid JSON"), ("[1, 2]", "a JSON list, not an object"),
     ('"Paris"', "a JSON str, not an object")],
)
async def test_invalid_tool_json_is_a_tool_call_error_with_the_raw_text_never_cached(
    raw: str, problem: str
) -> None:
    tracer = TokenTracer()
    cache = MemoryCache()
    llm = Scripted([delta(0, raw, "call_x", "get_weather"), final()], tracer=tracer,
                   cache=cache, max_retries=3)
    with pytest.raises(ToolCallError) as err:
        await llm.respond("x", tools=[WEATHER])
    exc = err.value
    assert exc.raw_arguments == raw and exc.tool_name == "get_weather"
    assert exc.tool_call_id == "call_x"
    assert exc.provider == "scripted" and exc.model == "scripted-model"
    assert problem in exc.message
    assert len(llm.requests) == 1  # never retried
    [record] = tracer.records
    assert record.error == "ToolCallError" and record.input_tokens == 12
    assert record.output_tokens == 7 and record.tool_calls == 0
    await cache.flush()
    assert cache.stats()["size"] == 0
    with pytest.raises(ToolCallError):  # not cached: asked again
        await chunks_of(llm, tools=[WEATHER])
    assert len(llm.requests) == 2


async def test_stream_chunks_delivers_the_deltas_before_the_error() -> None:
    llm = Scripted([delta(0, "{oops", "c1", "get_weather"), final()])
    seen: list[Chunk] = []
    with pytest.raises(ToolCallError):
        async for chunk in llm.stream_chunks("x", tools=[WEATHER]):
            seen.append(chunk)
    assert [c.tool_delta for c in seen] == [ToolCallDelta(0, "c1", "get_weather", "{oops")]


async def test_generate_and_stream_stay_text_only() -> None:
    llm = Scripted(INTERLEAVED)
    assert await llm.generate("x", tools=[WEATHER, CLOCK]) == "Checking."
    assert [t async for t in llm.stream("x", tools=[WEATHER, CLOCK])] == ["Checking."]


# ------------------------------------------------------------------ retries


async def test_no_retry_after_a_tool_delta_reached_the_caller() -> None:
    cut: list[Chunk | BaseException] = [
        delta(0, '{"city":', "call_a", "get_weather"), ServerError("cut", provider="scripted"),
    ]
    llm = Scripted(cut, INTERLEAVED, max_retries=3, retry_delay=0)
    with pytest.raises(StreamInterruptedError) as err:
        await chunks_of(llm, tools=[WEATHER, CLOCK])
    assert len(llm.requests) == 1
    assert err.value.message == (
        "The stream failed after 0 characters and fragments of 1 tool call(s) had been "
        "delivered: cut"
    )


async def test_respond_is_buffered_so_a_cut_tool_stream_is_retried() -> None:
    cut: list[Chunk | BaseException] = [
        delta(0, '{"city":', "call_a", "get_weather"), ServerError("cut", provider="scripted"),
    ]
    tracer = TokenTracer()
    llm = Scripted(cut, INTERLEAVED, max_retries=3, retry_delay=0, tracer=tracer)
    response = await llm.respond("x", tools=[WEATHER, CLOCK])
    assert response.tool_calls == (CALL_A, CALL_B)
    assert len(llm.requests) == 2
    assert [r.error for r in tracer.records] == ["ServerError", None]


async def test_a_retry_before_any_delta_is_allowed_when_streaming() -> None:
    llm = Scripted([ServerError("busy", provider="scripted")], INTERLEAVED, max_retries=1,
                   retry_delay=0)
    got = await chunks_of(llm, tools=[WEATHER, CLOCK])
    assert [c.tool_call for c in got if c.tool_call] == [CALL_A, CALL_B]
    assert len(llm.requests) == 2


# ------------------------------------------------------------------ respond()


async def test_respond_fields_are_exact() -> None:
    tracer = TokenTracer()
    llm = Scripted(INTERLEAVED, tracer=tracer)
    response = await llm.respond("weather in Paris and time in Oslo?", tools=[WEATHER, CLOCK],
                                 tool_choice="required")
    assert isinstance(response, Response)
    assert response.text == "Checking."
    assert response.tool_calls == (CALL_A, CALL_B)
    assert response.reasoning == "Two cities, two calls."
    assert response.usage == USAGE
    assert response.finish_reason == "tool_calls"
    assert response.metadata == {"raw_finish_reason": "tool_calls"}
    assert response.cost_usd == pytest.approx((12 * 1.0 + 7 * 2.0) / 1e6)
    assert response.cost_usd == pricing.priced("scripted", "scripted-model", USAGE)[0]
    assert response.cost_usd == tracer.records[0].cost_usd
    assert response.message == {
        "role": "assistant", "content": "Checking.", "tool_calls": [CALL_A, CALL_B],
        "provider_data": DATA,
    }
    assert response.transcript == []
    _, config = llm.requests[0]
    assert config.tools == (WEATHER, CLOCK) and config.tool_choice == "required"


async def test_respond_of_a_text_answer() -> None:
    llm = Scripted([Chunk("Hello "), Chunk("there."), final("stop")])
    response = await llm.respond("hi")
    assert (response.text, response.tool_calls, response.reasoning) == ("Hello there.", (), "")
    assert response.finish_reason == "stop"
    assert response.message == {"role": "assistant", "content": "Hello there."}
    assert response.metadata == {}


async def test_respond_sync() -> None:
    llm = Scripted([Chunk("ok"), final("stop")])
    response = await asyncio.to_thread(llm.respond_sync, "hi")
    assert response.text == "ok" and response.usage == USAGE


async def test_every_new_setting_is_a_per_call_override() -> None:
    assert {"tools", "tool_choice", "parallel_tool_calls", "response_schema",
            "reasoning_effort", "reasoning_budget", "cache_prompt"} <= CALL_OVERRIDES
    schema = OutputSchema("city", {"type": "object", "properties": {}})
    llm = Scripted([Chunk("{}"), final("stop")])
    openai_format = {"type": "function",
                     "function": {"name": "get_weather", "parameters": dict(WEATHER.parameters)}}
    await llm.respond("x", tools=[openai_format],
        tool_choice={"name": "get_weather"}, parallel_tool_calls=False,
        response_schema=schema, reasoning_effort="high", reasoning_budget=2048,
        cache_prompt=True)
    _, config = llm.requests[0]
    assert config.tools == (Tool("get_weather", "", dict(WEATHER.parameters)),)
    assert config.tool_choice == {"name": "get_weather"}
    assert config.parallel_tool_calls is False and config.response_schema == schema
    assert (config.reasoning_effort, config.reasoning_budget, config.cache_prompt) == (
        "high", 2048, True)
    assert llm.config.tools == ()  # the LLM's own config is untouched


@pytest.mark.parametrize(
    ("raw", "calls", "expected", "metadata"),
    [
        ("end_turn", False, "stop", {"raw_finish_reason": "end_turn"}),
        ("TOOL_CALL", True, "tool_calls", {"raw_finish_reason": "TOOL_CALL"}),
        ("stop", True, "tool_calls", {"raw_finish_reason": "stop"}),
        ("length", False, "length", None),
        ("stop", False, "stop", None),
    ],
)
async def test_finish_reasons_are_normalised_and_the_raw_one_kept(
    raw: str, calls: bool, expected: str, metadata: dict[str, str] | None
) -> None:
    script: list[Chunk | BaseException] = [Chunk("t")]
    if calls:
        script.append(delta(0, "{}", "c", "get_weather"))
    script.append(final(raw))
    got = await chunks_of(Scripted(script), tools=[WEATHER])
    assert got[-1].finish_reason == expected and got[-1].metadata == metadata


async def test_a_raw_finish_reason_the_provider_set_is_never_overwritten() -> None:
    llm = Scripted([delta(0, "{}", "c", "get_weather"),
                    final("STOP", metadata={"raw_finish_reason": "STOP", "x": 1})])
    got = await chunks_of(llm, tools=[WEATHER])
    assert got[-1].finish_reason == "tool_calls"
    assert got[-1].metadata == {"raw_finish_reason": "STOP", "x": 1}


async def test_the_history_round_trip_sends_the_assistant_turn_and_the_tool_result_back(
) -> None:
    llm = Scripted(INTERLEAVED, [Chunk("Sunny in Paris, 9:00 in Oslo."), final("stop")])
    history: list[Any] = [{"role": "user", "content": "weather and time?"}]
    first = await llm.respond(history, tools=[WEATHER, CLOCK])
    history += [
        first.message,
        {"role": "tool", "tool_call_id": "call_a", "name": "get_weather", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "9:00"}]},
    ]
    second = await llm.respond(history, tools=[WEATHER, CLOCK])
    assert second.text == "Sunny in Paris, 9:00 in Oslo." and second.finish_reason == "stop"
    sent, _ = llm.requests[1]
    assert sent == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "weather and time?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [CALL_A, CALL_B],
         "provider_data": DATA},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_a", "name": "get_weather"},
        {"role": "tool", "content": [{"type": "text", "text": "9:00"}],
         "tool_call_id": "call_b"},
    ]


# ------------------------------------------------------------------ capabilities


@pytest.mark.parametrize(
    ("overrides", "messages", "says"),
    [
        ({"tools": [WEATHER]}, "x", "does not take tools"),
        ({"tool_choice": "none"}, "x", "tool_choice='none'"),
        ({"response_schema": OutputSchema("o", {"type": "object"})}, "x", "response_schema"),
        ({"reasoning_effort": "high"}, "x", "reasoning_effort='high'"),
        ({"reasoning_budget": 4096}, "x", "reasoning_budget=4096"),
        ({}, [{"role": "user", "content": [{"type": "image", "data": PNG}]}],
         "does not take image parts"),
        ({}, [{"role": "user", "content": [{"type": "document", "data": b"%PDF-1.4 x"}]}],
         "does not take document parts"),
        ({}, [{"role": "user", "content": "q"},
              {"role": "assistant", "content": "", "tool_calls": [CALL_A]},
              {"role": "tool", "tool_call_id": "call_a", "content": "sunny"}],
         "messages[1] (assistant) holds tool calls"),
        ({}, [{"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
              {"role": "user", "content": "q"}], "messages[0] (tool) holds a tool result"),
    ],
)
async def test_what_a_text_only_provider_cannot_take_is_refused_before_any_request(
    overrides: dict[str, Any], messages: Any, says: str
) -> None:
    tracer = TokenTracer()
    llm = TextOnly([Chunk("never"), final("stop")], tracer=tracer)
    with pytest.raises(UnsupportedFeatureError) as err:
        await llm.respond(messages, **overrides)
    assert isinstance(err.value, InvalidInputError)
    assert says in str(err.value)
    assert "textonly" in str(err.value) and "scripted-model" in str(err.value)
    assert "it accepts: text" in str(err.value)
    assert llm.requests == []
    with pytest.raises(UnsupportedFeatureError):
        await chunks_of(llm, messages, **overrides)
    assert llm.requests == []


@pytest.mark.parametrize("overrides", [{"reasoning_effort": "none"}, {"reasoning_budget": 0},
                                       {"parallel_tool_calls": True}])
async def test_reasoning_off_is_always_allowed(overrides: dict[str, Any]) -> None:
    llm = TextOnly([Chunk("fine"), final("stop")])
    assert (await llm.respond("x", **overrides)).text == "fine"
    assert len(llm.requests) == 1


class Limited(Scripted):
    provider = "limited"
    capabilities = Capabilities(
        images=True, tools=True, tool_choices=frozenset({"auto", "none"}), structured="json",
        reasoning=frozenset({"effort"}),
    )


@pytest.mark.parametrize(
    ("overrides", "messages", "says"),
    [
        ({"tools": [WEATHER], "tool_choice": "required"}, "x", "tool_choice='required'"),
        ({"tools": [WEATHER], "tool_choice": {"name": "get_weather"}}, "x",
         "forcing one tool"),
        ({"tools": [WEATHER], "parallel_tool_calls": False}, "x", "parallel_tool_calls=False"),
        ({}, [{"role": "user", "content": [{"type": "image", "url": "https://x/y.png"}]}],
         "takes images as bytes, not URLs"),
    ],
)
async def test_the_limits_of_a_provider_with_tools_are_refused_naming_what_it_accepts(
    overrides: dict[str, Any], messages: Any, says: str
) -> None:
    llm = Limited([Chunk("never"), final("stop")])
    with pytest.raises(UnsupportedFeatureError) as err:
        await llm.respond(messages, **overrides)
    assert says in str(err.value)
    if overrides:
        assert ("it accepts: text, images (bytes), tools (tool_choice auto/none), "
                "structured output (json), reasoning (effort)") in str(err.value)
    assert llm.requests == []


async def test_what_the_provider_takes_goes_through() -> None:
    llm = Limited([Chunk("ok"), final("stop")])
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is it?"},
                                             {"type": "image", "data": PNG}]}]
    response = await llm.respond(messages, tools=[WEATHER], tool_choice="auto",
                                 reasoning_effort="low",
                                 response_schema=OutputSchema("o", {"type": "object"}))
    assert response.text == "ok" and len(llm.requests) == 1


async def test_a_registered_provider_follows_its_models_reasoning_rules() -> None:
    from synapsekit.llm.models import rules_for

    class Local(Scripted):
        provider = "ollama"  # a registered provider: models.json rules apply
        capabilities = FULL

    llm = Local([Chunk("ok"), final("stop")])
    model = "no-such-model-for-tests"
    llm.config = LLMConfig(model=model, provider="ollama")
    rules = rules_for("ollama", llm.config)
    if rules.reasoning:
        assert (await llm.respond("x", reasoning_effort="high")).text == "ok"
    else:
        with pytest.raises(UnsupportedFeatureError, match="takes no reasoning controls"):
            await llm.respond("x", reasoning_effort="high")
        assert llm.requests == []
    assert (await llm.respond("x", reasoning_effort="none")).text == "ok"


# ------------------------------------------------------------------ cache


async def test_a_cache_hit_replays_reasoning_tool_calls_and_provider_data_exactly() -> None:
    cache = MemoryCache()
    tracer = TokenTracer()
    llm = Scripted(INTERLEAVED, cache=cache, tracer=tracer)
    first = await llm.respond("weather?", tools=[WEATHER, CLOCK])
    await cache.flush()
    hit = await llm.respond("weather?", tools=[WEATHER, CLOCK])
    assert len(llm.requests) == 1
    assert (hit.text, hit.tool_calls, hit.reasoning, hit.finish_reason) == (
        first.text, first.tool_calls, first.reasoning, first.finish_reason)
    assert hit.message == first.message and hit.message["provider_data"] == DATA
    assert hit.metadata == {"raw_finish_reason": "tool_calls", "cache_hit": True}
    assert hit.cost_usd == 0.0 and hit.usage == Usage()
    replay = await chunks_of(llm, tools=[WEATHER, CLOCK])
    assert len(llm.requests) == 1
    assert [c.reasoning for c in replay if c.reasoning] == ["Two cities, two calls."]
    assert [c.text for c in replay if c.text] == ["Checking."]
    assert [c.tool_delta for c in replay if c.tool_delta] == [
        ToolCallDelta(0, "call_a", "get_weather", '{"city": "Paris"}', True),
        ToolCallDelta(1, "call_b", "get_time", '{"city": "Oslo"}', True),
    ]
    assert [c.tool_call for c in replay if c.tool_call] == [CALL_A, CALL_B]
    assert replay[-1].provider_data == DATA and replay[-1].finish_reason == "tool_calls"
    assert [r.cache_hit for r in tracer.records] == [False, True, True]
    assert [r.tool_calls for r in tracer.records] == [2, 2, 2]


async def test_a_cache_entry_is_per_tools() -> None:
    cache = MemoryCache()
    llm = Scripted(INTERLEAVED, cache=cache)
    await llm.respond("weather?", tools=[WEATHER, CLOCK])
    await cache.flush()
    await llm.respond("weather?", tools=[WEATHER])
    assert len(llm.requests) == 2


def key(messages: Any = "q", **fields: Any) -> str:
    config = LLMConfig(model="m", **fields)
    return cache_key(config, build_messages(messages, None), credential="anonymous",
                     endpoint=None)


def test_the_cache_key_covers_tools_choice_schema_reasoning_and_parts() -> None:
    base = key()
    assert key() == base
    variants = [
        key(tools=[WEATHER]),
        key(tools=[Tool("get_weather", "Other words.", dict(WEATHER.parameters))]),
        key(tools=[Tool("get_weather", WEATHER.description, {"type": "object"})]),
        key(tools=[Tool("get_weather", WEATHER.description, dict(WEATHER.parameters),
                        strict=True)]),
        key(tools=[WEATHER], tool_choice="required"),
        key(tools=[WEATHER], tool_choice={"name": "get_weather"}),
        key(parallel_tool_calls=False),
        key(response_schema=OutputSchema("o", {"type": "object"})),
        key(response_schema=OutputSchema("o", {"type": "object"}, strict=False)),
        key(reasoning_effort="high"),
        key(reasoning_effort="low"),
        key(reasoning_budget=1024),
        key(cache_prompt=True),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_the_cache_key_sees_image_bytes_by_digest_and_tool_turns() -> None:
    def image(data: bytes) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [{"type": "text", "text": "what?"},
                                             {"type": "image", "data": data}]}]

    one, other = key(image(PNG)), key(image(PNG + b"\x01"))
    assert one != other and key(image(PNG)) == one
    assert key(image(PNG)) != key([{"role": "user", "content": "what?"}])
    turns = [{"role": "user", "content": "q"},
             {"role": "assistant", "content": "", "tool_calls": [CALL_A]},
             {"role": "tool", "tool_call_id": "call_a", "content": "sunny"}]
    changed = [dict(t) for t in turns]
    changed[2]["tool_call_id"] = "call_b"
    args = [dict(t) for t in turns]
    args[1]["tool_calls"] = [ToolCall("call_a", "get_weather", {"city": "Rome"}, 0)]
    data = [dict(t) for t in turns]
    data[1]["provider_data"] = DATA
    named = [dict(t) for t in turns]
    named[2]["name"] = "get_weather"
    keys = {key(turns), key(changed), key(args), key(data), key(named)}
    assert len(keys) == 5


def test_the_cache_key_sees_a_part_by_its_sha256_never_its_bytes() -> None:
    import hashlib

    from synapsekit.llm.cache.key import _message

    [turn] = build_messages([{"role": "user", "content": [{"type": "image", "data": PNG}]}],
                            None)
    assert _message(turn) == {"role": "user", "content": [
        {"type": "image", "media_type": "image/png", "sha256": hashlib.sha256(PNG).hexdigest()}
    ]}


# ------------------------------------------------------------------ tracing


async def test_the_tracer_records_tool_calls_and_what_the_call_was_for() -> None:
    tracer = TokenTracer()
    llm = Scripted(INTERLEAVED, [Chunk("done"), final("stop")], tracer=tracer)
    assert current_purpose() is None
    with call_purpose("tool_loop", step=1):
        await llm.respond("x", tools=[WEATHER, CLOCK])
        with call_purpose("structured_retry", attempt=2) as inner:
            assert current_purpose() == inner
            await llm.respond("x")
        assert current_purpose() is not None and current_purpose().name == "tool_loop"  # type: ignore[union-attr]
    await llm.respond("x")
    assert current_purpose() is None
    assert [(r.tool_calls, r.purpose, r.step, r.attempt) for r in tracer.records] == [
        (2, "tool_loop", 1, None), (0, "structured_retry", None, 2), (0, None, None, None),
    ]


async def test_purposes_of_concurrent_tasks_never_mix() -> None:
    tracer = TokenTracer()
    llm = Scripted([Chunk("a"), final("stop")], tracer=tracer)

    async def one(step: int) -> None:
        with call_purpose("tool_loop", step=step):
            await asyncio.sleep(0.001 * (5 - step))
            await llm.respond("x")

    await asyncio.gather(*(one(step) for step in range(1, 5)))
    assert sorted(r.step for r in tracer.records if r.step is not None) == [1, 2, 3, 4]


def test_the_ledger_keeps_tool_calls_and_purpose(tmp_path: Any) -> None:
    path = tmp_path / "calls.db"
    tracer = TokenTracer(ledger=path)
    with call_purpose("structured_retry", attempt=3):
        tracer.record(provider="scripted", model="scripted-model", usage=USAGE,
                      tool_calls=2)
    tracer.close()
    [record] = TokenTracer.load(path).records
    assert (record.tool_calls, record.purpose, record.step, record.attempt) == (
        2, "structured_retry", None, 3)


def test_a_ledger_of_migration_003_is_migrated(tmp_path: Any) -> None:
    import sqlite3

    from synapsekit._sqlite import apply_migrations
    from synapsekit.observability.ledger import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        apply_migrations(db, MIGRATIONS[:3], lambda unknown: RuntimeError(unknown))
        db.execute(
            "INSERT INTO calls (provider, model, input_tokens, output_tokens, "
            "cached_input_tokens, cache_write_tokens, reasoning_tokens, latency_ms, cache_hit,"
            " complete, timestamp) VALUES ('p', 'm', 1, 2, 0, 0, 0, 5.0, 0, 1, 1.0)"
        )
    tracer = TokenTracer(ledger=path)
    tracer.record(provider="p", model="scripted-model", usage=USAGE, tool_calls=1,
                  purpose="tool_loop", step=2)
    tracer.close()
    old, new = TokenTracer.load(path).records
    assert (old.tool_calls, old.purpose, old.step) == (0, None, None)
    assert (new.tool_calls, new.purpose, new.step) == (1, "tool_loop", 2)


def test_cached_answer_codec_round_trips_and_refuses_a_newer_format() -> None:
    from synapsekit.llm.cache import CachedAnswer
    from synapsekit.llm.cache.codec import decode, encode

    answer = CachedAnswer(("a", "b"), "tool_calls", USAGE, {"raw_finish_reason": "x"},
                          tool_calls=(CALL_A, CALL_B), reasoning="think",
                          provider_data=DATA)  # type: ignore[arg-type]
    assert decode(encode(answer)) == answer
    old = json.dumps({"chunks": ["a"], "finish_reason": "stop", "usage": None,
                      "metadata": None})
    assert decode(old) == CachedAnswer(("a",), "stop")
    newer = json.loads(encode(answer))
    newer["v"] = 99
    with pytest.raises(ValueError):
        decode(json.dumps(newer))


# ------------------------------------------------------------------ FakeLLM


async def test_fake_llm_scripts_a_tool_loop_with_reasoning_and_provider_data() -> None:
    from synapsekit.testing import FakeLLM

    first = ToolCall("call_1", "get_weather", {"city": "Paris"})
    second = ToolCall("call_2", "get_time", {"city": "Oslo"})
    data = {"protocol": "fake", "content": ["sig"]}
    llm = FakeLLM([
        Response("", tool_calls=(first, second), reasoning="Two calls needed.",
                 message={"role": "assistant", "content": "", "provider_data": data}),
        "Sunny, 9:00.",
    ])
    response = await llm.respond("weather and time?", tools=[WEATHER, CLOCK],
                                 reasoning_effort="high")
    assert response.tool_calls == (first, ToolCall("call_2", "get_time", {"city": "Oslo"}, 1))
    assert response.reasoning == "Two calls needed." and response.finish_reason == "tool_calls"
    assert response.message["provider_data"] == data
    assert llm.configs[0].tools == (WEATHER, CLOCK) and llm.configs[0].reasoning_effort == "high"
    chunks = [c async for c in FakeLLM([first]).stream_chunks("x", tools=[WEATHER])]
    assert [c.tool_delta for c in chunks if c.tool_delta] == [
        ToolCallDelta(0, "call_1", "get_weather", '{"city":'),
        ToolCallDelta(0, None, None, ' "Paris"}'),
    ]
    assert [c.tool_call for c in chunks if c.tool_call] == [first]
    history = ["weather and time?"]
    final_answer = await llm.respond(
        [{"role": "user", "content": history[0]}, response.message,
         {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
         {"role": "tool", "tool_call_id": "call_2", "content": "9:00"}],
        tools=[WEATHER, CLOCK],
    )
    assert final_answer.text == "Sunny, 9:00." and final_answer.finish_reason == "stop"


def test_fake_llm_refuses_a_reply_it_cannot_play() -> None:
    from synapsekit.errors import ConfigError
    from synapsekit.testing import FakeLLM

    with pytest.raises(ConfigError, match="a reply is a str"):
        FakeLLM([42])  # type: ignore[list-item]
