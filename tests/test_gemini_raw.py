"""Gemini's raw stream: the connection takes the body of the 200 stream from google-genai and
the call parses the SSE events itself (see ``synapsekit.llm.providers.gemini.connection``).

Three things are checked against the real SDK over real HTTP to the simulator:

- the SDK contract the raw path stands on (it sends through our httpx client, checks the
  status first and yields nothing for an empty 200 body): this test fails loudly when a new
  google-genai stops doing so, before any user sees a difference;
- the raw path and the SDK-object path (``raw_stream = False``, the fallback) give the very
  same chunks, usage, provider data and errors on every kind of stream;
- what the raw path keeps that the objects drop (``finishMessage``), and that a request made
  after a call in the same task is never taken for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from synapsekit import make_llm
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.providers._raw_body import CALL, Call
from synapsekit.llm.providers.gemini import GeminiLLM
from synapsekit.llm.providers.gemini.connection import STREAM_METHOD
from synapsekit.llm.tools import Tool
from synapsekit.testing.simulators.gemini_protocol import (
    GeminiSimulator,
    blocked_prompt,
    capture,
    error,
    function_call_stream,
    malformed,
    rate_limited,
    stream_error_event,
    text_stream,
)
from synapsekit.testing.simulators.server import Reply
from tests.sim_fixtures import serve, stream_outcome, track

KEY = "AIza-sim-key-raw-0123456789"
NOW = Tool("now", "The current date and time.", {"type": "object", "properties": {}})
WEATHER = Tool("get_weather", "Weather in a city.", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
pytestmark = pytest.mark.filterwarnings(
    "ignore::synapsekit.llm.pricing.UnknownModelPriceWarning")

_server, sim = serve(lambda: GeminiSimulator(KEY))


class ObjectsLLM(GeminiLLM):
    """The fallback: the SDK keeps the body and its objects are decoded."""

    raw_stream: ClassVar[bool] = False


def _raw(sim: GeminiSimulator, model: str = "gemini-2.5-flash") -> BaseLLM:
    return track(make_llm(model, api_key=KEY, base_url=sim.url))


def _objects(sim: GeminiSimulator, model: str = "gemini-2.5-flash") -> BaseLLM:
    return track(ObjectsLLM(LLMConfig(model=model, api_key=KEY, base_url=sim.url,
                                      provider="gemini")))


# ------------------------------------------------------------- the SDK contract it stands on


async def test_sdk_sends_through_our_client_and_yields_nothing_for_a_taken_body(
    sim: GeminiSimulator,
) -> None:
    reply = text_stream(["Hello", " raw"], prompt_tokens=4)
    sim.enqueue(reply, reply)
    llm = _raw(sim)
    models = (await llm._client(llm.config)).genai.aio.models
    call = Call(STREAM_METHOD, take=True)
    CALL.set(call)
    stream = await models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
    objects = [response async for response in stream]
    assert objects == [], "google-genai read a body the connection had taken"
    assert call.body is not None and call.body.status_code == 200
    assert b"".join([piece async for piece in call.body.aiter_bytes()]) == b"".join(
        reply.stream or ())
    assert len(sim.requests) == 1
    # the same request with nothing taken: the SDK's own objects, the fallback's input
    CALL.set(Call(STREAM_METHOD, take=False))
    stream = await models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
    assert [r.text async for r in stream] == ["Hello", " raw"]


async def test_an_error_status_is_left_to_the_sdk(sim: GeminiSimulator) -> None:
    sim.enqueue(error(404, None))
    llm = _raw(sim)
    models = (await llm._client(llm.config)).genai.aio.models
    call = Call(STREAM_METHOD, take=True)
    CALL.set(call)
    sdk: Any = llm._sdk
    with pytest.raises(sdk.errors.ClientError) as caught:
        async for _ in await models.generate_content_stream(model="gemini-2.5-flash",
                                                            contents="hi"):
            pass
    assert caught.value.code == 404
    assert call.body is None


async def test_a_request_after_the_call_is_not_taken(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream(["One", " two"]), text_stream(["Later"]))
    llm = _raw(sim)
    async for _token in llm.stream("hi"):
        break  # left early: the call is over, though the task's ContextVar still names it
    models = (await llm._client(llm.config)).genai.aio.models
    stream = await models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
    assert [r.text async for r in stream] == ["Later"]


# ------------------------------------------------ the raw path and the objects agree exactly




SCENARIOS: dict[str, tuple[Callable[[], Reply], str, list[Tool] | None]] = {
    "capture_ok": (lambda: capture("gemini/stream_ok.sse"), "gemini-2.5-flash", None),
    "capture_thinking": (lambda: capture("gemini/stream_thinking.sse"), "gemini-2.5-flash",
                         None),
    "capture_call_signed": (lambda: capture("gemini/stream_function_call_thinking.sse"),
                            "gemini-2.5-flash", [NOW]),
    "parallel_calls_ids": (lambda: function_call_stream(
        [("get_weather", {"city": "Paris"}), ("now", {})], ids=["fc-1", "fc-2"],
        thoughts=["Two things."], text="Let me look."), "gemini-3-flash-preview",
        [WEATHER, NOW]),
    "calls_in_one_chunk": (lambda: function_call_stream(
        [("get_weather", {"city": "Oslo"}), ("now", {})], one_chunk=True),
        "gemini-3-flash-preview", [WEATHER, NOW]),
    "signed_text": (lambda: text_stream(["Signed", " answer"], signature="c2lnbmVkLXRleHQ=",
                                        model="gemini-3-flash-preview"),
                    "gemini-3-flash-preview", None),
    "usage_cached_thoughts": (lambda: text_stream(
        ["a", "b", "c"], thoughts=["hmm"], thoughts_tokens=12, cached_tokens=3,
        prompt_tokens=9), "gemini-2.5-flash", None),
    "max_tokens": (lambda: text_stream(["cut", " short"], finish_reason="MAX_TOKENS"),
                   "gemini-2.5-flash", None),
    "other_finish": (lambda: text_stream(["x"], finish_reason="LANGUAGE"), "gemini-2.5-flash",
                     None),
    "safety": (lambda: text_stream(["Some"], finish_reason="SAFETY"), "gemini-2.5-flash",
               None),
    "blocked_prompt": (lambda: blocked_prompt("PROHIBITED_CONTENT"), "gemini-2.5-flash", None),
    "error_event": (lambda: stream_error_event(503, "The model is overloaded."),
                    "gemini-2.5-flash", None),
    "error_event_after_tokens": (lambda: stream_error_event(tokens_before=["Par", "tial"]),
                                 "gemini-2.5-flash", None),
    "malformed": (lambda: malformed(tokens_before=()), "gemini-2.5-flash", None),
    "malformed_after_tokens": (lambda: malformed(), "gemini-2.5-flash", None),
    "no_finish_reason": (lambda: text_stream(["Half"], finish_reason=None), "gemini-2.5-flash",
                         None),
    "cut": (lambda: text_stream(["One", " two", " three"], cut_after=2), "gemini-2.5-flash",
            None),
    "rate_limited": (lambda: rate_limited("7s"), "gemini-2.5-flash", None),
    "not_json_object": (lambda: Reply(200, {"content-type": "text/event-stream"},
                                      stream=[b"data: []\r\n\r\n"]), "gemini-2.5-flash", None),
}


@pytest.mark.parametrize("name", SCENARIOS)
async def test_raw_and_objects_agree(sim: GeminiSimulator, name: str) -> None:
    make, model, tools = SCENARIOS[name]
    sim.enqueue(make(), make())
    raw = await stream_outcome(_raw(sim, model), tools)
    objects = await stream_outcome(_objects(sim, model), tools)
    assert raw == objects
    assert len(sim.requests) == 2  # one each: nothing retried, nothing sent twice
    chunks, failed, _message = raw
    assert chunks or failed  # every scenario yields something or fails


async def test_raw_exact_text_usage_and_request_count(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream(["Hello", ",", " world", "!"], prompt_tokens=7, thoughts=["t"],
                            thoughts_tokens=5))
    llm = _raw(sim)
    response = await llm.respond("hi")
    assert (response.text, response.reasoning) == ("Hello, world!", "t")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens,
            response.usage.reasoning_tokens) == (7, 4 + 5, 5)
    assert llm.tokens_used == {"input": 7, "output": 9}
    assert len(sim.requests) == 1


async def test_finish_message_reaches_the_tool_call_error_on_the_raw_path_only(
    sim: GeminiSimulator,
) -> None:
    """google-genai's Developer-API converter drops ``finishMessage``; the raw event has it."""
    import json

    from synapsekit.errors import ToolCallError

    event = {"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"},
                             "finishReason": "MALFORMED_FUNCTION_CALL",
                             "finishMessage": "Malformed function call: now(x=)"}],
             "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}
    reply = Reply(200, {"content-type": "text/event-stream"},
                  stream=[b"data: " + json.dumps(event).encode() + b"\r\n\r\n"])
    sim.enqueue(reply, reply)
    found = []
    for llm in (_raw(sim), _objects(sim)):
        with pytest.raises(ToolCallError) as caught:
            await llm.respond("now?", tools=[NOW])
        found.append(caught.value.raw_arguments)
    assert found == ["Malformed function call: now(x=)", ""]


def test_the_split_benchmark_runs() -> None:
    """benchmarks/bench_gemini_split.py (the profile of what the SDK costs above the floor)
    cannot rot: it runs end to end, each of its four clients reading the exact text."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_gemini_split.py", "-n", "2", "--rounds", "1"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("synapsekit", "SDK api client", "no SDK", "floor"):
        assert done.stdout.count(f"    {name} ") == 2, done.stdout  # sequential, concurrent
