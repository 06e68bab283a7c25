"""The gateway's Anthropic wire (``POST /v1/messages``), with the real anthropic SDK as the
client over real HTTP, and the protocol simulators as upstreams: an Anthropic one (the
same protocol both sides) and an OpenAI one (Anthropic in, OpenAI upstream). Every
assertion is exact: text, token counts, what each simulator received, the ledger row.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import pytest

# The client under test is the anthropic SDK as gateway users run it today (>= 2, what the
# docs name). The floors venv holds the library's provider floor (0.40), an old client that
# lacks OverloadedError and `thinking=` on stream() and reads input tokens only from
# message_start, where the gateway cannot put an OpenAI member's count (docs/gateway.md).
if int(anthropic.__version__.split(".")[0]) < 2:
    pytest.skip(f"the gateway's Anthropic wire is tested with anthropic >= 2 as the client, "
                f"not {anthropic.__version__}", allow_module_level=True)

from synapsekit import errors
from synapsekit.gateway.core import MemoryLedger
from synapsekit.testing.simulators import anthropic_protocol as anth
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from synapsekit.testing.simulators.openai_streams import Call, tool_stream
from tests.gateway_fixtures import GatewayServer, gateway_config, member

UP_KEY = "sk-upstream-secret-1"
ANT_KEY = "sk-ant-upstream-secret-2"
ALPHA = "sk-gw-alpha-0001"
BETA = "sk-gw-beta-0002"  # may use "fast" only
SLOW = "sk-gw-slow-0003"  # one request a minute
BROKE = "sk-gw-broke-0004"  # a budget no request fits in
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
HI = [{"role": "user", "content": "hi"}]

Sims = tuple[anth.AnthropicSimulator, OpenAISimulator]


@pytest.fixture(scope="module")
def sims() -> Iterator[Sims]:
    with anth.AnthropicSimulator(ANT_KEY) as a, OpenAISimulator(UP_KEY) as o:
        yield a, o


@pytest.fixture(scope="module")
def gw(sims: Sims, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    a, o = sims
    text = gateway_config(
        [
            member("claude", "claude-haiku-4-5", a.url, key_env="ANT_KEY"),
            member("fast", "gpt-4o-mini", o.url),
            # upstream errors are tested here: an upstream 429 rests its member for the
            # Retry-After, which must not touch "claude"
            member("errors", "claude-haiku-4-5", a.url, key_env="ANT_KEY"),
        ],
        [{"key": ALPHA, "name": "alpha"}, {"key": BETA, "models": ["fast"]},
         {"key": SLOW, "requests_per_minute": 1}, {"key": BROKE, "budget_usd": 1e-7}],
        ledger=tmp_path_factory.mktemp("ledger") / "spend.db",
        extra="[gateway]\nmax_body_bytes = 65536\n",
    )
    with GatewayServer(text, env={"SIM_KEY": UP_KEY, "ANT_KEY": ANT_KEY},
                       ledger=MemoryLedger()) as server:
        yield server


@pytest.fixture
async def client(gw: GatewayServer, sims: Sims) -> AsyncIterator[anthropic.AsyncAnthropic]:
    for sim in sims:
        sim.reset()
    _rows(gw).clear()
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALPHA, max_retries=0) as c:
        yield c


def _rows(gw: GatewayServer) -> list[Any]:
    ledger = gw.gateway.ledger
    assert isinstance(ledger, MemoryLedger)
    return ledger.rows


async def test_streamed_text_and_usage_exact(
    client: anthropic.AsyncAnthropic, gw: GatewayServer, sims: Sims,
) -> None:
    async with client.messages.stream(model="claude", max_tokens=100, messages=HI) as stream:  # type: ignore[arg-type]
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello, world!"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 4)
    assert (final.stop_reason, final.model, final.role) == ("end_turn", "claude", "assistant")
    assert [b.type for b in final.content] == ["text"]
    sent = sims[0].requests[0].json()
    assert (sent["messages"], sent["max_tokens"], sent["stream"]) == (HI, 100, True)
    assert "system" not in sent  # no system prompt of the library's added
    [row] = _rows(gw)
    assert row.request_id == "req_" + final.id.removeprefix("msg_")
    assert (row.api, row.model, row.member, row.status, row.stream, row.key_id) == (
        "anthropic", "claude", "anthropic:claude-haiku-4-5", 200, True,
        gw.config.keys[0].info.id)
    assert (row.input_tokens, row.output_tokens, row.complete, row.error) == (12, 4, True, None)
    assert row.cost_usd > 0 and row.ttft_ms is not None


async def test_the_event_sequence_is_anthropics(gw: GatewayServer, sims: Sims) -> None:
    """The raw SSE body, read with httpx and the documented ``x-api-key`` header."""
    sims[0].reset()
    sims[0].enqueue(anth.text_stream(["Hel", "lo"], input_tokens=7, output_tokens=2,
                                     cache_read_input_tokens=3, model="claude-haiku-4-5"))
    body = {"model": "claude", "max_tokens": 50, "messages": HI, "stream": True}
    async with httpx.AsyncClient(base_url=gw.url) as http:
        reply = await http.post("/v1/messages", json=body, headers={"x-api-key": ALPHA})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in reply.text.split("\n\n") if f]
    events = []
    for frame in frames:
        name, data = frame.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert name == "event: " + event["type"]
        events.append(event)
    assert [e["type"] for e in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]
    start = events[0]["message"]
    assert start["id"] == "msg_" + reply.headers["request-id"].removeprefix("req_")
    assert (start["content"], start["stop_reason"], start["model"]) == ([], None, "claude")
    assert events[1] == {"type": "content_block_start", "index": 0,
                         "content_block": {"type": "text", "text": ""}}
    assert events[2]["delta"] == {"type": "text_delta", "text": "Hel"}
    assert events[5]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[5]["usage"] == {"input_tokens": 7, "cache_creation_input_tokens": 0,
                                  "cache_read_input_tokens": 3, "output_tokens": 2}


async def test_the_first_event_item_holds_message_start_and_the_first_token() -> None:
    """The wire's first item is what EventStream sends at once: the client's first
    token must be in it, not behind the rest of the stream."""
    from synapsekit.gateway.anthropic_wire import _render
    from synapsekit.gateway.types import GatewayRequest
    from synapsekit.llm.types import Chunk, Usage

    async def rest() -> AsyncIterator[Chunk]:
        yield Chunk("lo")
        yield Chunk(usage=Usage(input_tokens=7, output_tokens=2), finish_reason="stop")

    req = GatewayRequest(api="anthropic", model="claude", messages=[], overrides={},
                         stream=True, request_id="req_" + "cd" * 12)
    items = [item async for item in _render(Chunk("Hel"), rest(), "msg_x", req)]
    first = [frame.split("\n")[0] for frame in items[0].decode().split("\n\n") if frame]
    assert first == ["event: message_start", "event: content_block_start",
                     "event: content_block_delta"]
    assert b'"text":"Hel"' in items[0] and len(items) == 3
    assert items[2].endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


async def test_not_streamed_from_an_openai_member(
    client: anthropic.AsyncAnthropic, gw: GatewayServer, sims: Sims,
) -> None:
    """Anthropic in, OpenAI upstream: the system prompt, sampling and stop sequences
    translated; the answer a Message."""
    reply = await client.messages.with_raw_response.create(
        model="fast", max_tokens=50, system="Be brief.", messages=HI,  # type: ignore[arg-type]
        stop_sequences=["END"], extra_body={"temperature": 0.5, "top_p": 0.9},
    )
    message = await reply.parse()
    assert [(b.type, b.text) for b in message.content] == [("text", "Hello, world!")]  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence, message.model) == (
        "end_turn", None, "fast")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)
    assert message.usage.cache_read_input_tokens == 0
    assert reply.headers["x-synapsekit-member"] == "openai:gpt-4o-mini"
    sent = sims[1].requests[0].json()
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, *HI]
    assert (sent["temperature"], sent["top_p"], sent["stop"]) == (0.5, 0.9, ["END"])
    assert sent["max_completion_tokens"] == 50
    assert len(sims[0].requests) == 0
    [row] = _rows(gw)
    assert (row.api, row.stream, row.member, row.input_tokens, row.output_tokens) == (
        "anthropic", False, "openai:gpt-4o-mini", 12, 4)


async def test_streamed_from_an_openai_member(client: anthropic.AsyncAnthropic,
                                              sims: Sims) -> None:
    async with client.messages.stream(model="fast", max_tokens=50, messages=HI) as stream:  # type: ignore[arg-type]
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello, world!"
    # the input tokens an OpenAI upstream says at the end come in message_delta
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 4)
    assert final.stop_reason == "end_turn"
    assert len(sims[1].requests) == 1


async def test_system_blocks_reach_an_anthropic_upstream(
    client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    await client.messages.create(
        model="claude", max_tokens=50, messages=HI,  # type: ignore[arg-type]
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
    )
    sent = sims[0].requests[0].json()
    assert sent["system"] == "Be brief.\n\nBe kind."
    assert sent["messages"] == HI


async def test_a_system_turn_inside_messages_keeps_its_place(
    client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    """The anthropic SDK >= 2 types take ``{"role": "system"}`` turns in ``messages``."""
    history = [{"role": "system", "content": "Be brief."}, *HI]
    await client.messages.create(model="fast", max_tokens=50, messages=history)  # type: ignore[arg-type]
    assert sims[1].requests[0].json()["messages"] == history


async def test_thinking_streamed_and_signed_blocks_sent_back(
    client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    """``thinking`` is the library's reasoning budget; a streamed answer's thinking is a
    thinking block; a non-streamed one keeps the member's signature, and the history
    sent back with it passes the simulator's signature check."""
    sim = sims[0]
    sim.enqueue(
        anth.text_stream(["4"], thinking=["2+2", " is 4"], model="claude-haiku-4-5"),
        anth.text_stream(["Four"], thinking=["again"], model="claude-haiku-4-5"),
        anth.text_stream(["Done"], model="claude-haiku-4-5"),
    )
    thinking = {"type": "enabled", "budget_tokens": 2048}
    async with client.messages.stream(model="claude", max_tokens=4096, messages=HI,  # type: ignore[arg-type]
                                      thinking=thinking) as stream:  # type: ignore[arg-type]
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert (final.content[0].thinking, final.content[1].text) == ("2+2 is 4", "4")  # type: ignore[union-attr]
    assert sim.requests[0].json()["thinking"] == thinking
    whole = await client.messages.create(model="claude", max_tokens=4096, messages=HI,  # type: ignore[arg-type]
                                         thinking=thinking)  # type: ignore[arg-type]
    block = whole.content[0]
    assert (block.type, block.thinking, block.signature) == (  # type: ignore[union-attr]
        "thinking", "again", anth.sign("again"))
    history = [*HI, {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                      for b in whole.content]},
               {"role": "user", "content": "and again?"}]
    await client.messages.create(model="claude", max_tokens=4096, messages=history,  # type: ignore[arg-type]
                                 thinking=thinking)  # type: ignore[arg-type]
    sent = sim.requests[2].json()["messages"][1]["content"]
    assert sent == [{"type": "thinking", "thinking": "again", "signature": anth.sign("again")},
                    {"type": "text", "text": "Four"}]


TOOLS = [{"name": "get_weather", "description": "Weather of a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}]


async def test_tool_call_round_trip(client: anthropic.AsyncAnthropic, sims: Sims) -> None:
    sim = sims[0]
    sim.enqueue(anth.tool_stream([("toolu_01A", "get_weather", ['{"city":', ' "Paris"}'])],
                                 text=["Let me look."], model="claude-haiku-4-5"),
                anth.text_stream(["It", " is", " sunny"], model="claude-haiku-4-5"))
    first = await client.messages.create(
        model="claude", max_tokens=200, messages=HI, tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert first.stop_reason == "tool_use"
    text, call = first.content
    assert (text.type, text.text) == ("text", "Let me look.")  # type: ignore[union-attr]
    assert (call.type, call.id, call.name, call.input) == (  # type: ignore[union-attr]
        "tool_use", "toolu_01A", "get_weather", {"city": "Paris"})
    sent = sim.requests[0].json()
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    history = [*HI, {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                      for b in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A",
                                             "content": "sunny, 21C"}]}]
    second = await client.messages.create(model="claude", max_tokens=200, messages=history,  # type: ignore[arg-type]
                                          tools=TOOLS)
    assert second.content[0].text == "It is sunny"  # type: ignore[union-attr]
    turns = sim.requests[1].json()["messages"]
    assert turns[1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
         "input": {"city": "Paris"}}]}
    assert turns[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "sunny, 21C"}]}


async def test_streamed_tool_call_from_an_openai_member(
    client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    """OpenAI's tool-call deltas become a tool_use block with input_json_delta pieces;
    the tool result goes back to OpenAI as a tool message."""
    sims[1].enqueue(tool_stream([Call("call_1", "get_weather", {"city": "Paris"})],
                                prompt_tokens=20, completion_tokens=12))
    async with client.messages.stream(model="fast", max_tokens=100, messages=HI,  # type: ignore[arg-type]
                                      tools=TOOLS) as stream:
        pieces = [e.partial_json async for e in stream if e.type == "input_json"]
        final = await stream.get_final_message()
    [call] = final.content
    assert (call.type, call.id, call.name, call.input) == (  # type: ignore[union-attr]
        "tool_use", "call_1", "get_weather", {"city": "Paris"})
    assert len(pieces) > 1 and json.loads("".join(pieces)) == {"city": "Paris"}
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (20, 12)
    history = [*HI, {"role": "assistant", "content": [call.model_dump()]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1",
                                             "content": [{"type": "text", "text": "21C"}]}]}]
    await client.messages.create(model="fast", max_tokens=50, messages=history, tools=TOOLS)  # type: ignore[arg-type]
    turns = sims[1].requests[1].json()["messages"]
    assert turns[1]["tool_calls"][0]["id"] == "call_1"
    assert json.loads(turns[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert turns[2] == {"role": "tool", "tool_call_id": "call_1", "content": "21C"}


async def test_images_reach_the_upstreams(client: anthropic.AsyncAnthropic, sims: Sims) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]
    await client.messages.create(model="claude", max_tokens=50,  # type: ignore[arg-type]
                                 messages=[{"role": "user", "content": content}])
    assert sims[0].requests[0].json()["messages"][0]["content"] == content
    await client.messages.create(model="fast", max_tokens=50,  # type: ignore[arg-type]
                                 messages=[{"role": "user", "content": content[:2]}])
    parts = sims[1].requests[0].json()["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What is this?"}
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{PNG}"


async def test_unknown_key_is_an_authentication_error(
    gw: GatewayServer, client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key="sk-gw-nope-9999",
                                        max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as info:
            await bad.messages.create(model="claude", max_tokens=10, messages=HI)  # type: ignore[arg-type]
    assert info.value.status_code == 401
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert "sk-gw-nope" not in info.value.response.text
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")
    assert len(sims[0].requests) == 0


async def test_count_tokens_is_the_gateway_estimate_and_calls_no_upstream(
    gw: GatewayServer, client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    content: Any = [{"type": "text", "text": "What is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": PNG}}]
    found = await client.messages.count_tokens(
        model="claude", system="Be brief.", messages=[{"role": "user", "content": content}])
    # ceil(len("Be brief." + "What is this?") / 4) + one image at PART_TOKENS (1000)
    assert found.input_tokens == 6 + 1000
    text = await client.messages.count_tokens(model="fast", messages=HI)  # type: ignore[arg-type]
    assert text.input_tokens == 1  # ceil(2 / 4)
    assert [len(sim.requests) for sim in sims] == [0, 0]
    # each count is a request of the books: one row, nothing billed
    rows = _rows(gw)
    alpha = gw.config.keys[0].info.id
    assert [(r.api, r.model, r.key_id, r.status, r.member) for r in rows] == [
        ("count_tokens", "claude", alpha, 200, None), ("count_tokens", "fast", alpha, 200, None)]
    assert {(r.input_tokens, r.output_tokens, r.cost_usd) for r in rows} == {(0, 0, 0.0)}
    assert len({r.request_id for r in rows}) == 2


async def test_count_tokens_counts_the_tool_definitions_and_the_output_schema(
    client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"]}
    assert len(json.dumps(schema, separators=(",", ":"))) == 77
    tool: Any = {"name": "get_weather", "description": "The current weather of a city.",
                 "input_schema": schema}
    found = await client.messages.count_tokens(model="claude", messages=HI,  # type: ignore[arg-type]
                                               tools=[tool])
    # ceil(("hi" 2 + name 11 + description 30 + schema 77) / 4): the tool is most of it
    assert found.input_tokens == 30
    answer = {"type": "object", "properties": {"answer": {"type": "string"}}}  # 59 as JSON
    shaped = await client.messages.count_tokens(
        model="claude", messages=HI,  # type: ignore[arg-type]
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": answer}}})
    # ceil(("hi" 2 + the schema's name "response" 8 + 59) / 4)
    assert shaped.input_tokens == 18
    assert [len(sim.requests) for sim in sims] == [0, 0]


async def test_count_tokens_checks_the_key_and_the_allow_list(
    gw: GatewayServer, client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key="sk-gw-nope-9999",
                                        max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as info:
            await bad.messages.count_tokens(model="claude", messages=HI)  # type: ignore[arg-type]
    assert info.value.status_code == 401
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=BETA, max_retries=0) as beta:
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            await beta.messages.count_tokens(model="claude", messages=HI)  # type: ignore[arg-type]
    assert denied.value.body["error"] == {  # type: ignore[index]
        "type": "permission_error", "message": "This key may not use the model `claude`."}
    assert [len(sim.requests) for sim in sims] == [0, 0]
    # the refused count is recorded under its key's id; the unknown key has no row
    assert [(r.api, r.key_id, r.status, r.error) for r in _rows(gw)] == [
        ("count_tokens", gw.config.keys[1].info.id, 403, "GatewayError")]

async def test_disallowed_model_is_permission_denied(
    gw: GatewayServer, client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=BETA, max_retries=0) as beta:
        with pytest.raises(anthropic.PermissionDeniedError) as info:
            await beta.messages.create(model="claude", max_tokens=10, messages=HI)  # type: ignore[arg-type]
        with pytest.raises(anthropic.NotFoundError) as missing:
            await beta.messages.create(model="claude-nope", max_tokens=10, messages=HI)  # type: ignore[arg-type]
    assert info.value.body["error"] == {  # type: ignore[index]
        "type": "permission_error", "message": "This key may not use the model `claude`."}
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert len(sims[0].requests) == 0
    row = _rows(gw)[0]
    assert (row.status, row.model, row.member) == (403, "claude", None)


@pytest.mark.parametrize(("body", "field"), [
    ({"messages": HI}, "max_tokens"),
    ({"max_tokens": 0, "messages": HI}, "max_tokens"),
    ({"max_tokens": 10}, "messages"),
    ({"max_tokens": 10, "messages": []}, "messages"),
    ({"max_tokens": 10, "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
    ({"max_tokens": 10, "messages": [{"role": "user"}]}, "messages.0.content"),
    ({"max_tokens": 10, "messages": HI, "temperature": 3}, "temperature"),
    ({"max_tokens": 10, "messages": HI, "stop": ["x"]}, "stop"),
    ({"max_tokens": 10, "messages": HI, "stop_sequences": "x"}, "stop_sequences"),
    ({"max_tokens": 10, "messages": HI, "tools": [{"type": "web_search_20250305",
                                                   "name": "web_search"}]}, "tools.0.type"),
    ({"max_tokens": 10, "messages": HI, "tool_choice": {"type": "sometimes"}}, "tool_choice"),
    ({"max_tokens": 10, "messages": HI, "thinking": {"type": "enabled", "budget_tokens": 5}},
     "thinking.budget_tokens"),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "@@not base64@@"}}]}]},
     "messages.0.content.0"),
])
async def test_bad_request_names_the_field(
    client: anthropic.AsyncAnthropic, body: dict[str, Any], field: str, sims: Sims,
) -> None:
    """The SDK's own ``post`` (its typed ``create`` will not send a body without
    ``max_tokens``): a 400 ``invalid_request_error`` whose message starts with the field."""
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.post("/v1/messages", body={"model": "claude", **body},
                          cast_to=anthropic.types.Message)
    error = info.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"{field}: "), error["message"]
    assert len(sims[0].requests) == 0


async def test_key_rate_limit_is_a_rate_limit_error_with_retry_after(
    gw: GatewayServer, client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=SLOW, max_retries=0) as slow:
        await slow.messages.create(model="claude", max_tokens=10, messages=HI)  # type: ignore[arg-type]
        with pytest.raises(anthropic.RateLimitError) as info:
            await slow.messages.create(model="claude", max_tokens=10, messages=HI)  # type: ignore[arg-type]
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert len(sims[0].requests) == 1
    assert [r.status for r in _rows(gw)] == [200, 429]


async def test_spent_budget_is_429_billing_error_and_sends_nothing(
    gw: GatewayServer, client: anthropic.AsyncAnthropic, sims: Sims,
) -> None:
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=BROKE, max_retries=0) as broke:
        with pytest.raises(anthropic.RateLimitError) as info:
            await broke.messages.create(model="claude", max_tokens=1000, messages=HI)  # type: ignore[arg-type]
    assert info.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(sims[0].requests) == 0
    [row] = _rows(gw)
    assert (row.status, row.error) == (429, "BudgetExceededError")


async def test_upstream_errors_mapped_back(client: anthropic.AsyncAnthropic, sims: Sims) -> None:
    sims[0].enqueue(anth.error(529, headers={"retry-after": "3"}),
                    anth.error(429, headers={"retry-after": "7"}))
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await client.messages.create(model="errors", max_tokens=10, messages=HI)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client.messages.create(model="errors", max_tokens=10, messages=HI, stream=True)  # type: ignore[arg-type]
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert overloaded.value.response.headers["retry-after"] == "3"
    assert limited.value.response.headers["retry-after"] == "7"
    assert len(sims[0].requests) == 2


async def test_upstream_failure_mid_stream_is_an_error_event(
    client: anthropic.AsyncAnthropic, gw: GatewayServer, sims: Sims,
) -> None:
    sims[0].enqueue(anth.stream_error_event(tokens_before=["Hel", "lo"]))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model="claude", max_tokens=10, messages=HI) as s:  # type: ignore[arg-type]
            async for text in s.text_stream:
                seen.append(text)
    assert "".join(seen) == "Hello"
    assert info.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    [row] = _rows(gw)
    assert (row.status, row.error, row.complete) == (200, "StreamInterruptedError", False)


async def test_wire_edges_in_anthropic_shape(gw: GatewayServer, sims: Sims) -> None:
    sims[0].reset()
    async with httpx.AsyncClient(base_url=gw.url) as http:
        big = await http.post("/v1/messages", headers={"x-api-key": ALPHA}, json={
            "model": "claude", "max_tokens": 10,
            "messages": [{"role": "user", "content": "x" * 70_000}]})
        nokey = await http.post("/v1/messages", json={})
        count = await http.post("/v1/messages/count_tokens", headers={"x-api-key": ALPHA},
                                json={})
    assert (big.status_code, big.json()["error"]["type"]) == (413, "request_too_large")
    assert nokey.status_code == 401
    assert nokey.json()["error"] == {"type": "authentication_error",
                                     "message": "x-api-key header is required"}
    assert count.json()["error"] == {"type": "invalid_request_error",  # served, validated
                                     "message": "model: Field required"}
    assert count.status_code == 400
    assert len(sims[0].requests) == 0


def test_the_sync_client(gw: GatewayServer, sims: Sims) -> None:
    sims[0].reset()
    with anthropic.Anthropic(base_url=gw.url, api_key=ALPHA, max_retries=0) as c:
        message = c.messages.create(model="claude", max_tokens=20, messages=HI)  # type: ignore[arg-type]
        with c.messages.stream(model="claude", max_tokens=20, messages=HI) as stream:  # type: ignore[arg-type]
            streamed = "".join(stream.text_stream)
    assert message.content[0].text == streamed == "Hello, world!"  # type: ignore[union-attr]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)
    assert len(sims[0].requests) == 2



async def test_abandoned_stream_is_recorded_once_and_upstream_closed(
    client: anthropic.AsyncAnthropic, gw: GatewayServer, sims: Sims,
) -> None:
    sims[0].enqueue(anth.text_stream([f" w{i}" for i in range(40)], input_tokens=17,
                                     model="claude-haiku-4-5", delay=0.02))
    async with client.messages.stream(model="claude", max_tokens=100, messages=HI) as s:  # type: ignore[arg-type]
        got = 0
        async for _text in s.text_stream:
            got += 1
            if got == 4:
                break
    assert await sims[0].wait_for_disconnects_async(1, timeout=10)
    rows = _rows(gw)
    for _ in range(500):
        if rows:
            break
        await asyncio.sleep(0.01)
    [row] = rows
    assert (row.status, row.error, row.complete, row.input_tokens) == (
        499, "ClientDisconnected", False, 17)
    assert 3 <= row.output_tokens < 40


@pytest.mark.parametrize(("exc", "status", "kind"), [
    (errors.ServerError("busy", status_code=529, code="overloaded_error"), 529,
     "overloaded_error"),
    (errors.ServerError("busy", code="overloaded_error"), 529, "overloaded_error"),
    (errors.ServerError("boom", status_code=500), 502, "api_error"),
    (errors.TimeoutError("slow"), 504, "timeout_error"),
    (errors.BudgetExceededError(limit_usd=1.0, spent_usd=1.0, reserved_usd=0.0,
                                requested_usd=0.1), 429, "billing_error"),
    (errors.RateLimitError("slow", retry_after=2.0), 429, "rate_limit_error"),
    (errors.ContextLengthError("too long"), 400, "invalid_request_error"),
    (errors.AllMembersFailedError("none", failures={}, skipped={"a": "open"},
                                  retry_after=4.0), 529, "overloaded_error"),
    (RuntimeError("bug"), 500, "api_error"),
])
def test_anthropic_error_types(exc: BaseException, status: int, kind: str) -> None:
    from synapsekit.gateway.anthropic_wire import error_type
    from synapsekit.gateway.errors import status_for

    assert error_type(status_for(exc)) == (status, kind)
