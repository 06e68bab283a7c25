"""Ollama's raw stream: the connection takes the body of the 200 ``/api/chat`` stream from
the ollama SDK and the call parses the NDJSON lines itself (see
``synapsekit.llm.providers._raw_body`` and ``synapsekit.llm.providers.ollama.decode``).

Checked against the real SDK over real HTTP to the simulator:

- the SDK contract the raw path stands on (it sends through our httpx client, raises for
  an error status in our hook first, and yields nothing for an empty 200 body): this test
  fails loudly when a new ollama SDK stops doing so, before any user sees a difference;
- that the raw path is the one taken (the body is taken, and a line the SDK's
  ``ChatResponse`` would refuse is read), and the SDK-object path (``raw_stream = False``,
  the fallback) gives the very same chunks, usage, provider data and errors on every kind
  of stream;
- a stream left early closes its connection at once (no garbage collector needed), an
  ``{"error": ...}`` line and a cut connection are typed errors, and no token is yielded
  twice.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from contextlib import aclosing
from typing import Any, ClassVar

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    ConnectionError,
    NotFoundError,
    ServerError,
    StreamInterruptedError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.providers._raw_body import CALL, Call
from synapsekit.llm.providers.ollama import OllamaLLM
from synapsekit.llm.providers.ollama.connection import CHAT_PATH, HTTPStatus
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Chunk, ToolCallDelta, Usage
from synapsekit.testing.simulators.ollama_protocol import (
    NDJSON_TYPE,
    OllamaSimulator,
    capture,
    error,
    malformed,
    stream_error,
    text_stream,
    tool_stream,
)
from synapsekit.testing.simulators.server import Reply
from tests.sim_fixtures import serve, stream_outcome, track

MODEL = "llama3.2"
WEATHER = Tool("get_weather", "Weather in a city.", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = Tool("get_time", "The time in a city.", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})

_server, sim = serve(lambda: OllamaSimulator())


class ObjectsLLM(OllamaLLM):
    """The fallback: the SDK keeps the body and its ``ChatResponse`` objects are decoded."""

    raw_stream: ClassVar[bool] = False


def _raw(sim: OllamaSimulator, model: str = MODEL, **fields: Any) -> BaseLLM:
    llm = make_llm(f"ollama:{model}", base_url=sim.url, system_prompt=None, **fields)
    assert type(llm) is OllamaLLM and llm.raw_stream
    return track(llm)


def _objects(sim: OllamaSimulator, model: str = MODEL, **fields: Any) -> BaseLLM:
    return track(ObjectsLLM(LLMConfig(model=model, base_url=sim.url, provider="ollama",
                                      system_prompt=None, **fields)))


def _line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _ndjson(*pieces: bytes, cut_after: int | None = None) -> Reply:
    return Reply(200, {"content-type": NDJSON_TYPE}, stream=list(pieces), cut_after=cut_after)


DONE = {"model": MODEL, "message": {"role": "assistant", "content": ""}, "done": True,
        "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2}


# ------------------------------------------------------------- the SDK contract it stands on


async def test_sdk_sends_through_our_client_and_yields_nothing_for_a_taken_body(
    sim: OllamaSimulator,
) -> None:
    reply = text_stream(["Hello", " raw"], prompt_eval_count=4)
    sim.enqueue(reply, reply)
    llm = _raw(sim)
    client = await llm._client(llm.config)
    messages = [{"role": "user", "content": "hi"}]
    async with Call(CHAT_PATH) as call:
        parts = await client.chat(model=MODEL, messages=messages, stream=True)
        objects = [part async for part in parts]
        assert objects == [], "the ollama SDK read a body the connection had taken"
        assert call.body is not None and call.body.status_code == 200
        assert b"".join([piece async for piece in call.body.aiter_bytes()]) == b"".join(
            reply.stream or ())
    assert len(sim.requests) == 1
    # the same request with nothing taken: the SDK's own objects, the fallback's input
    async with Call(CHAT_PATH, take=False) as call:
        parts = await client.chat(model=MODEL, messages=messages, stream=True)
        assert [p.message.content async for p in parts] == ["Hello", " raw", ""]
        assert call.body is None


async def test_an_error_status_is_raised_by_our_hook_and_never_taken(
    sim: OllamaSimulator,
) -> None:
    sim.enqueue(error(429, headers={"Retry-After": "7"}))
    llm = _raw(sim)
    client = await llm._client(llm.config)
    async with Call(CHAT_PATH) as call:
        with pytest.raises(HTTPStatus) as caught:
            async for _ in await client.chat(model=MODEL, messages=[], stream=True):
                pass
        assert call.body is None
    assert caught.value.status == 429 and caught.value.headers["retry-after"] == "7"


async def test_an_embedding_in_a_live_call_and_a_request_after_it_are_not_taken(
    sim: OllamaSimulator,
) -> None:
    llm = _raw(sim)
    client = await llm._client(llm.config)
    async with Call(CHAT_PATH) as call:
        embedded = await client.embed(model=MODEL, input=["a", "b"])
        assert len(embedded.embeddings) == 2 and call.body is None
    sim.enqueue(text_stream(["One", " two"]), text_stream(["Later"]))
    async for _token in llm.stream("hi"):
        break  # left early: the call is over, though the task's ContextVar still names it
    parts = await client.chat(model=MODEL, messages=[], stream=True)
    assert [p.message.content async for p in parts] == ["Later", ""]


# --------------------------------------------------------------------- the raw path is taken


async def test_the_raw_path_takes_the_body_and_reads_exact_chunks(sim: OllamaSimulator) -> None:
    sim.enqueue(text_stream(["Hello", ",", " world", "!"], thinking=["hm"], prompt_eval_count=7,
                            eval_count=5, model="qwen3:0.6b"))
    llm = _raw(sim, "qwen3:0.6b")
    chunks = [c async for c in llm.stream_chunks("hi")]
    call = CALL.get()  # set in the caller's context, as the SDK sends in it
    assert call is not None and not call.live and call.body is not None
    assert call.body.is_closed and call.opened == []
    assert chunks == [
        Chunk(reasoning="hm"), Chunk("Hello"), Chunk(","), Chunk(" world"), Chunk("!"),
        Chunk(usage=Usage(input_tokens=7, output_tokens=5), finish_reason="stop",
              metadata={"raw_finish_reason": "stop"}),
    ]
    assert llm.tokens_used == {"input": 7, "output": 5}
    assert len(sim.requests) == 1


async def test_a_line_the_sdk_objects_refuse_is_read_raw(sim: OllamaSimulator) -> None:
    """No ``ChatResponse`` is built on the raw path: a line without ``message.role`` (which
    the SDK's pydantic ``Message`` requires, and synapsekit never reads) is text there,
    and malformed through the objects."""
    line = {"model": MODEL, "message": {"content": "roleless"}, "done": False}
    make = lambda: _ndjson(_line(line), _line(DONE))  # noqa: E731
    sim.enqueue(make(), make())
    assert await _raw(sim).generate("hi") == "roleless"
    with pytest.raises(ServerError, match="malformed"):
        await _objects(sim).generate("hi")


async def test_exact_tool_calls_and_thinking_on_the_raw_path(sim: OllamaSimulator) -> None:
    sim.enqueue(tool_stream([("get_weather", {"city": "Tokyo — 東京"}), ("get_time", {})],
                            thinking=["Need", " both."], model="qwen3:0.6b"))
    llm = _raw(sim, "qwen3:0.6b")
    chunks = [c async for c in llm.stream_chunks("hi", tools=[WEATHER, TIME])]
    deltas = [c.tool_delta for c in chunks if c.tool_delta is not None]
    assert deltas == [
        ToolCallDelta(0, "call_0", "get_weather", '{"city": "Tokyo — 東京"}', True),
        ToolCallDelta(1, "call_1", "get_time", "{}", True),
    ]
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    assert final.metadata == {"raw_finish_reason": "stop"}
    assert final.provider_data == {"protocol": "ollama", "content": {"thinking": "Need both."}}
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (169, 15)


# ------------------------------------------------ the raw path and the objects agree exactly




SCENARIOS: dict[str, tuple[Callable[[], Reply], str, list[Tool] | None]] = {
    "capture_ok": (lambda: capture("ollama/stream_ok.ndjson"), MODEL, None),
    "capture_tool_call": (lambda: capture("ollama/stream_tool_call.ndjson"), MODEL, [WEATHER]),
    "capture_generate_docs": (lambda: capture("ollama/stream_generate_docs.ndjson"), "gemma4",
                              None),
    "capture_error_midstream": (lambda: capture("ollama/stream_error_midstream.ndjson"),
                                "gemma4", None),
    "thinking": (lambda: text_stream(["4"], thinking=["Two plus", " two."], prompt_eval_count=5,
                                     eval_count=12, model="qwen3:0.6b"), "qwen3:0.6b", None),
    "calls_with_thinking": (lambda: tool_stream(
        [("get_weather", {"city": "Oslo", "days": [1, 2]}), ("get_time", {"city": "Lima"})],
        thinking=["Two", " calls."], model="qwen3:0.6b"), "qwen3:0.6b", [WEATHER, TIME]),
    "length_uncached_prompt": (lambda: text_stream(["cut"], prompt_eval_count=None,
                                                   eval_count=1, done_reason="length"),
                               MODEL, None),
    "no_eval_count": (lambda: _ndjson(_line({**DONE, "message": {"role": "assistant",
                                                                  "content": "x"},
                                             "eval_count": None})), MODEL, None),
    "unicode_and_escapes": (lambda: text_stream(["ünï", "\n\"q\"\t", "😀"]), MODEL, None),
    "last_line_without_newline": (lambda: _ndjson(_line({**DONE, "done": False}),
                                                  _line(DONE).rstrip(b"\n")), MODEL, None),
    "lines_split_across_pieces": (lambda: _ndjson(
        *(lambda b: [b[i:i + 7] for i in range(0, len(b), 7)])(
            b"".join(text_stream(["a", "b", "c"]).stream or ()))), MODEL, None),
    "lines_in_one_piece": (lambda: _ndjson(b"".join(text_stream(["a", "b"]).stream or ())),
                           MODEL, None),
    "error_line_first": (lambda: stream_error(), MODEL, None),
    "error_line_after_tokens": (lambda: stream_error(["Par", "tial"]), MODEL, None),
    "malformed": (lambda: malformed(tokens_before=()), MODEL, None),
    "malformed_after_tokens": (lambda: malformed(), MODEL, None),
    "no_done_line": (lambda: text_stream(["a", "b"], done=False), MODEL, None),
    "empty_body": (lambda: text_stream([], done=False), MODEL, None),
    "cut": (lambda: text_stream(["One", " two", " three"], cut_after=2), MODEL, None),
    "cut_before_any_line": (lambda: text_stream(["lost"], cut_after=0), MODEL, None),
    "rate_limited": (lambda: error(429, headers={"Retry-After": "7"}), MODEL, None),
    "server_error": (lambda: error(500), MODEL, None),
    "not_pulled": (lambda: error(404), MODEL, None),
}


@pytest.mark.parametrize("name", SCENARIOS)
async def test_raw_and_objects_agree(sim: OllamaSimulator, name: str) -> None:
    make, model, tools = SCENARIOS[name]
    sim.enqueue(make(), make())
    raw = await stream_outcome(_raw(sim, model), tools)
    objects = await stream_outcome(_objects(sim, model), tools)
    assert raw == objects
    assert len(sim.requests) == 2  # one each: nothing retried, nothing sent twice
    chunks, failed, _message = raw
    assert chunks or failed  # every scenario yields something or fails


async def test_a_line_that_is_not_a_json_object_is_malformed(sim: OllamaSimulator) -> None:
    """(The SDK's reader fails on it with an AttributeError: "failed unexpectedly".)"""
    sim.enqueue(_ndjson(b"[]\n", _line(DONE)))
    with pytest.raises(ServerError, match="malformed"):
        await _raw(sim).generate("hi")


@pytest.mark.parametrize("message", [
    {"role": "assistant", "content": 7},
    {"role": "assistant", "content": "", "thinking": ["x"]},
    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f",
                                                                      "arguments": "{}"}}]},
    {"role": "assistant", "content": "", "tool_calls": [{"function": {"arguments": {}}}]},
    {"role": "assistant", "content": "", "tool_calls": {"function": {}}},
    None,
])
async def test_a_line_the_protocol_does_not_allow_is_malformed(
    sim: OllamaSimulator, message: Any
) -> None:
    line = {"model": MODEL, "done": False, **({} if message is None else {"message": message})}
    sim.enqueue(_ndjson(_line(line), _line(DONE)))
    with pytest.raises(ServerError, match="malformed"):
        await _raw(sim).generate("hi", tools=[WEATHER])
    assert len(sim.requests) == 1


async def test_blank_lines_are_skipped_on_the_raw_path(sim: OllamaSimulator) -> None:
    """NDJSON readers skip blank lines (the SDK's objects path would call one malformed)."""
    line = {"model": MODEL, "message": {"role": "assistant", "content": "ok"}, "done": False}
    sim.enqueue(_ndjson(b"\n", _line(line), b"  \r\n", _line(DONE)))
    assert await _raw(sim).generate("hi") == "ok"


# --------------------------------------------------------- leaving early, errors, cut streams


async def test_a_stream_left_early_closes_its_connection_at_once(sim: OllamaSimulator) -> None:
    """Closed by the call itself, not by the garbage collector (which is off here)."""
    sim.enqueue(text_stream([f" t{i}" for i in range(100)], delay=0.03))
    llm = _raw(sim)
    gc.disable()
    try:
        async with aclosing(llm.stream("hi")) as tokens:
            async for _token in tokens:
                break
        assert await sim.wait_for_disconnects_async(1, 3)
        for _ in range(100):
            if not sim.open_connections:
                break
            await asyncio.sleep(0.01)
        assert sim.open_connections == 0
    finally:
        gc.enable()
    call = CALL.get()
    assert call is not None and not call.live and call.body is not None and call.body.is_closed
    assert len(sim.requests) == 1


async def test_a_complete_stream_leaves_its_connection_for_the_next_call(
    sim: OllamaSimulator,
) -> None:
    llm = _raw(sim)
    before = sim.connections
    for _ in range(3):
        assert await llm.generate("hi") == "Hello, world!"
    assert sim.connections - before == 1  # each body read to its end: keep-alive works


async def test_an_error_line_mid_stream_is_a_typed_error(sim: OllamaSimulator) -> None:
    sim.enqueue(capture("ollama/stream_error_midstream.ndjson"))
    llm = _raw(sim, "gemma4", max_retries=2, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == [" Yes", ".", "I", "can"]
    assert err.value.partial_text == " Yes.Ican"
    assert type(err.value.__cause__) is ServerError
    assert "an error was encountered while running the model" in str(err.value)
    assert len(sim.requests) == 1  # never retried after tokens reached the caller


async def test_an_error_line_before_any_token_is_retried_once(sim: OllamaSimulator) -> None:
    sim.enqueue(stream_error(), text_stream(["fine"]))
    llm = _raw(sim, max_retries=1, retry_delay=0)
    assert [t async for t in llm.stream("hi")] == ["fine"]
    assert len(sim.requests) == 2


async def test_a_model_error_line_maps_like_the_status(sim: OllamaSimulator) -> None:
    """An error object (not a string) in the line is still the SDK's ResponseError."""
    sim.enqueue(_ndjson(_line({"error": {"error": f'model "{MODEL}" not found, try pulling'}})))
    with pytest.raises(NotFoundError, match=r"ollama pull llama3\.2"):
        await _raw(sim).generate("hi")


async def test_a_cut_connection_is_a_typed_error_and_no_token_comes_twice(
    sim: OllamaSimulator,
) -> None:
    sim.enqueue(text_stream(["One", " two", " three"], cut_after=2))
    llm = _raw(sim, max_retries=3, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == ["One", " two"]
    assert err.value.partial_text == "One two"
    assert type(err.value.__cause__) is ConnectionError
    assert err.value.usage is not None and not err.value.usage.complete
    assert len(sim.requests) == 1


async def test_a_cut_inside_a_line_is_a_connection_error_not_a_malformed_line(
    sim: OllamaSimulator,
) -> None:
    line = _line({"model": MODEL, "message": {"role": "assistant", "content": "whole"},
                  "done": False})
    sim.enqueue(_ndjson(line, line[:20], cut_after=2), text_stream(["again"]))
    llm = _raw(sim, max_retries=1, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == ["whole"] and err.value.partial_text == "whole"
    assert type(err.value.__cause__) is ConnectionError
    assert len(sim.requests) == 1


async def test_a_cut_before_any_token_is_retried_and_tokens_come_once(
    sim: OllamaSimulator,
) -> None:
    sim.enqueue(text_stream(["lost"], cut_after=0), text_stream(["Hel", "lo"]))
    llm = _raw(sim, max_retries=1, retry_delay=0)
    assert [t async for t in llm.stream("hi")] == ["Hel", "lo"]
    assert len(sim.requests) == 2
