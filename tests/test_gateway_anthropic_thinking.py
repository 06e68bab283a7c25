"""Extended thinking streamed through the gateway's Anthropic wire to an Anthropic member:
the anthropic SDK's ``stream.get_final_message()`` must hold the member's thinking blocks
with their signatures and its ``redacted_thinking`` blocks, so that the message sent back
on the tool-result turn is accepted (the simulator checks every signature and that the
turn starts with its thinking, as the real API does). The real anthropic SDK is the
client, over real HTTP; every assertion is exact.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import anthropic
import httpx
import pytest

if int(anthropic.__version__.split(".")[0]) < 2:  # as in test_gateway_anthropic.py
    pytest.skip(f"the gateway's Anthropic wire is tested with anthropic >= 2 as the client, "
                f"not {anthropic.__version__}", allow_module_level=True)

from synapsekit.gateway.core import MemoryLedger
from synapsekit.testing.simulators import anthropic_protocol as anth
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from synapsekit.testing.simulators.server import Reply
from tests.gateway_fixtures import GatewayServer, gateway_config, member

ANT_KEY = "sk-ant-upstream-secret-7"
UP_KEY = "sk-upstream-secret-8"
ALPHA = "sk-gw-alpha-0001"
HI = [{"role": "user", "content": "Weather in Paris and Rome?"}]
THINKING = {"type": "enabled", "budget_tokens": 2048}
TOOLS = [{"name": "get_weather", "description": "Weather of a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}]
REDACTED = ("EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfW"
            "XGmKDxH4mPnZ5sQ7vB5URj")


@pytest.fixture(scope="module")
def sim() -> Iterator[anth.AnthropicSimulator]:
    with anth.AnthropicSimulator(ANT_KEY) as a:
        yield a


@pytest.fixture(scope="module")
def openai_sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(UP_KEY) as o:
        yield o


@pytest.fixture(scope="module")
def gw(sim: anth.AnthropicSimulator, openai_sim: OpenAISimulator) -> Iterator[GatewayServer]:
    text = gateway_config([member("claude", "claude-haiku-4-5", sim.url, key_env="ANT_KEY"),
                           member("fast", "o4-mini", openai_sim.url)],
                          [{"key": ALPHA, "name": "alpha"}])
    with GatewayServer(text, env={"ANT_KEY": ANT_KEY, "SIM_KEY": UP_KEY},
                       ledger=MemoryLedger()) as server:
        yield server


@pytest.fixture
async def client(
    gw: GatewayServer, sim: anth.AnthropicSimulator,
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sim.reset()
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALPHA, max_retries=0) as c:
        yield c


def thinking(text: str) -> dict[str, Any]:
    """A thinking block as the simulator signs it."""
    return {"type": "thinking", "thinking": text, "signature": anth.sign(text)}


def tool_use(call_id: str, city: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": city}}


def _event(obj: dict[str, Any]) -> bytes:
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n".encode()


def answer(content: Sequence[dict[str, Any]], stop_reason: str = "tool_use") -> Reply:
    """``content`` streamed as the Messages API streams it: a thinking block as an empty
    start, its text in two ``thinking_delta`` s, then its ``signature_delta`` right before
    its ``content_block_stop``; a redacted_thinking block whole in its start; text in one
    ``text_delta``; a tool_use block's input in ``input_json_delta`` s (an empty one first)."""
    events = [_event({"type": "message_start", "message": {
        "id": "msg_01ThinkingSim000000000", "type": "message", "role": "assistant",
        "model": "claude-haiku-4-5", "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": 30, "output_tokens": 1}}})]
    for index, block in enumerate(content):
        kind = block["type"]
        deltas: list[dict[str, Any]] = []
        start: dict[str, Any]
        if kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            half = len(block["thinking"]) // 2
            deltas = [{"type": "thinking_delta", "thinking": piece}
                      for piece in (block["thinking"][:half], block["thinking"][half:]) if piece]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": block["text"]}]
        elif kind == "tool_use":
            start = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": piece}
                      for piece in ("", json.dumps(block["input"]))]
        else:
            start = dict(block)
        events.append(_event({"type": "content_block_start", "index": index,
                              "content_block": start}))
        events += [_event({"type": "content_block_delta", "index": index, "delta": delta})
                   for delta in deltas]
        events.append(_event({"type": "content_block_stop", "index": index}))
    events.append(_event({"type": "message_delta", "delta": {
        "stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": 90}}))
    events.append(_event({"type": "message_stop"}))
    return Reply(200, {"content-type": anth.SSE_TYPE}, stream=events)


async def _streamed(client: anthropic.AsyncAnthropic) -> list[dict[str, Any]]:
    """The content of ``get_final_message()`` for one streamed request, as dicts."""
    async with client.messages.stream(model="claude", max_tokens=4096, messages=HI,  # type: ignore[arg-type]
                                      tools=TOOLS, thinking=thinking_on()) as stream:  # type: ignore[arg-type]
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    return [block.model_dump(exclude_none=True) for block in final.content]


def thinking_on() -> Any:
    return dict(THINKING)


async def _send_back(
    client: anthropic.AsyncAnthropic, sim: anth.AnthropicSimulator,
    content: list[dict[str, Any]], results: Sequence[str],
) -> list[dict[str, Any]]:
    """The tool-result turn after ``content``, through the gateway; the messages the
    simulator received (it answered: the signatures and the turn's shape passed)."""
    history = [*HI, {"role": "assistant", "content": content},
               {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": call_id, "content": "sunny"}
                   for call_id in results]}]
    done = await client.messages.create(model="claude", max_tokens=4096, messages=history,  # type: ignore[arg-type]
                                        tools=TOOLS, thinking=thinking_on())  # type: ignore[arg-type]
    assert done.content[0].text == "Sunny in both."  # type: ignore[union-attr]
    body = sim.requests[-1].json()
    assert body["thinking"] == THINKING
    sent: list[dict[str, Any]] = body["messages"]
    return sent


async def test_signed_thinking_text_and_tool_use_round_trip(
    client: anthropic.AsyncAnthropic, sim: anth.AnthropicSimulator,
) -> None:
    """The streamed final message is the member's content exactly (the thinking signed),
    and sent back unmodified it reaches the member verbatim."""
    native = [thinking("Paris first: call the tool."), {"type": "text", "text": "Checking."},
              tool_use("toolu_01P", "Paris")]
    sim.enqueue(answer(native), anth.text_stream(["Sunny in both."], model="claude-haiku-4-5"))
    content = await _streamed(client)
    assert content == native
    sent = await _send_back(client, sim, content, ["toolu_01P"])
    assert sent == [*HI, {"role": "assistant", "content": native},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_01P", "content": "sunny"}]}]


async def test_interleaved_thinking_each_block_its_own_signature(
    client: anthropic.AsyncAnthropic, sim: anth.AnthropicSimulator,
) -> None:
    """Two thinking blocks with a tool_use between them: each streamed block gets the
    signature of the member's block at its place (not one merged block, not swapped)."""
    native = [thinking("Paris first."), tool_use("toolu_01P", "Paris"),
              thinking("Now Rome, in parallel."), tool_use("toolu_01R", "Rome")]
    sim.enqueue(answer(native), anth.text_stream(["Sunny in both."], model="claude-haiku-4-5"))
    content = await _streamed(client)
    assert content == native
    sent = await _send_back(client, sim, content, ["toolu_01P", "toolu_01R"])
    assert sent[1] == {"role": "assistant", "content": native}


async def test_redacted_thinking_is_kept(
    client: anthropic.AsyncAnthropic, sim: anth.AnthropicSimulator,
) -> None:
    """A redacted_thinking block reaches the gateway only with the last chunk: the final
    message has it, whole, after the streamed blocks (the one order caveat, documented);
    every block the member sent is there, each as it was sent, and the turn sent back
    passes the member's checks."""
    native = [thinking("Let me think."), {"type": "redacted_thinking", "data": REDACTED},
              {"type": "text", "text": "Checking."}, tool_use("toolu_01P", "Paris")]
    sim.enqueue(answer(native), anth.text_stream(["Sunny in both."], model="claude-haiku-4-5"))
    content = await _streamed(client)
    assert content == [native[0], native[2], native[3], native[1]]
    sent = await _send_back(client, sim, content, ["toolu_01P"])
    assert sent[1] == {"role": "assistant", "content": content}


async def test_the_signature_events(gw: GatewayServer, sim: anth.AnthropicSimulator) -> None:
    """The raw events: a signature_delta for each thinking block by its index -- before
    the stop of the block still open at the end, as the API sends it; after its stop for
    an earlier block -- and a redacted block whole, all before message_delta."""
    sim.reset()
    native = [thinking("A."), tool_use("toolu_01P", "Paris"), thinking("B."),
              {"type": "redacted_thinking", "data": REDACTED}]
    sim.enqueue(answer(native, stop_reason="max_tokens"))
    body = {"model": "claude", "max_tokens": 4096, "messages": HI, "stream": True,
            "thinking": THINKING, "tools": TOOLS}
    async with httpx.AsyncClient(base_url=gw.url) as http:
        reply = await http.post("/v1/messages", json=body, headers={"x-api-key": ALPHA})
    events = [json.loads(frame.split("\ndata: ", 1)[1])
              for frame in reply.text.split("\n\n") if frame]
    tail = [e for e in events if e["type"] in ("content_block_start", "content_block_stop")
            or e.get("delta", {}).get("type") == "signature_delta"
            or e["type"] == "message_delta"]
    assert [(e["type"], e.get("index"), e.get("delta", e.get("content_block"))) for e in tail] == [
        ("content_block_start", 0, {"type": "thinking", "thinking": "", "signature": ""}),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, {"type": "tool_use", "id": "toolu_01P",
                                    "name": "get_weather", "input": {}}),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, {"type": "thinking", "thinking": "", "signature": ""}),
        ("content_block_delta", 2, {"type": "signature_delta", "signature": anth.sign("B.")}),
        ("content_block_stop", 2, None),
        ("content_block_delta", 0, {"type": "signature_delta", "signature": anth.sign("A.")}),
        ("content_block_start", 3, {"type": "redacted_thinking", "data": REDACTED}),
        ("content_block_stop", 3, None),
        ("message_delta", None, {"stop_reason": "max_tokens", "stop_sequence": None}),
    ]


async def test_thinking_without_text_is_signed_in_place(
    client: anthropic.AsyncAnthropic, sim: anth.AnthropicSimulator,
) -> None:
    """``display: omitted`` (the newest models' default): the thinking block streams no
    text, only its signature. Asked for thinking, the gateway opens the thinking block at
    index 0 before any chunk, so the signature lands there and the turn sent back starts
    with it, as the member checks."""
    quiet = {"type": "thinking", "thinking": "", "signature": anth.sign("")}
    native = [quiet, {"type": "text", "text": "Checking."}, tool_use("toolu_01P", "Paris")]
    sim.enqueue(answer(native), anth.text_stream(["Sunny in both."], model="claude-haiku-4-5"))
    content = await _streamed(client)
    assert content == native
    sent = await _send_back(client, sim, content, ["toolu_01P"])
    assert sent[1] == {"role": "assistant", "content": native}


async def test_thinking_the_chunks_cannot_place(
    client: anthropic.AsyncAnthropic, sim: anth.AnthropicSimulator,
) -> None:
    """The order caveat (docs/gateway.md): two thinking blocks with nothing streamed
    between them are one block in the chunks, which matches neither and stays unsigned,
    and the member's two blocks follow, signed (every block the member sent is there, as
    it sent it; only its place differs). An answer with no thinking leaves the block
    opened for it empty and unsigned (the gateway leaves such a block out when it comes
    back)."""
    native = [thinking("One. "), thinking("Two."), tool_use("toolu_01P", "Paris")]
    sim.enqueue(answer(native))
    content = await _streamed(client)
    assert content == [{"type": "thinking", "thinking": "One. Two.", "signature": ""},
                       native[2], native[0], native[1]]
    sim.enqueue(answer([{"type": "text", "text": "Checking."}, tool_use("toolu_01P", "Paris")]))
    content = await _streamed(client)
    assert content == [{"type": "thinking", "thinking": "", "signature": ""},
                       {"type": "text", "text": "Checking."}, tool_use("toolu_01P", "Paris")]


async def test_no_leading_block_without_thinking_or_for_another_protocol(
    client: anthropic.AsyncAnthropic, sim: anth.AnthropicSimulator,
    openai_sim: OpenAISimulator,
) -> None:
    """The block opened ahead is only for a request asking for thinking from a model
    whose members all speak Anthropic's protocol."""
    sim.enqueue(anth.tool_stream([("toolu_01P", "get_weather", ['{"city": "Paris"}'])],
                                 model="claude-haiku-4-5"))
    async with client.messages.stream(model="claude", max_tokens=4096, messages=HI,  # type: ignore[arg-type]
                                      tools=TOOLS) as stream:  # type: ignore[arg-type]
        final = await stream.get_final_message()
    assert [b.model_dump(exclude_none=True) for b in final.content] == [
        tool_use("toolu_01P", "Paris")]
    openai_sim.reset()
    async with client.messages.stream(model="fast", max_tokens=4096, messages=HI,  # type: ignore[arg-type]
                                      thinking=thinking_on()) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["text"]
