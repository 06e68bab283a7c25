"""AnthropicLLM end to end: the real ``anthropic`` SDK over real HTTP against the local
Messages API simulator (synapsekit/testing/simulators/anthropic_protocol.py), through synapsekit.

Token counts asserted here are the ones written in the captures/anthropic captures:
stream_ok.sse 11 in / 6 out, stream_ok_docs.sse 25 / 15, stream_tool_use.sse 377 / 65
(cache fields 0), stream_thinking.sse none at all.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx
import pytest

from synapsekit import LLMConfig, make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConnectionError,
    ContentFilterError,
    ContextLengthError,
    InvalidRequestError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    TimeoutError,
)
from synapsekit.llm import AnthropicLLM
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.types import Chunk
from synapsekit.testing.simulators.anthropic_protocol import (
    SSE_TYPE,
    AnthropicSimulator,
    capture,
    error,
    malformed,
    stream_error_event,
    text_stream,
)
from synapsekit.testing.simulators.server import Reply
from synapsekit.testing.simulators.wire import read_wire

KEY = "sk-ant-api03-test-0123456789abcdef"
MODEL = "claude-sonnet-4-6"
DEFAULT_TEXT = "Hello, world!"  # the simulator's default reply: 12 input tokens, 4 output


@pytest.fixture(scope="module")
def sim() -> Any:
    with AnthropicSimulator(KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(sim: AnthropicSimulator) -> Any:
    sim.reset()
    yield
    assert not sim.errors, sim.errors


def claude(sim: AnthropicSimulator, **fields: Any) -> BaseLLM:
    fields.setdefault("api_key", KEY)
    return make_llm(MODEL, base_url=sim.url, **fields)


async def collect(llm: BaseLLM, messages: Any = "Hi") -> tuple[str, str, Chunk]:
    """(answer text, reasoning text, final chunk) of one call."""
    text, thought, final = [], [], None
    async for chunk in llm.stream_chunks(messages):
        text.append(chunk.text)
        thought.append(chunk.reasoning)
        final = chunk
    assert final is not None and not final.text
    return "".join(text), "".join(thought), final


def last_body(sim: AnthropicSimulator) -> dict[str, Any]:
    body: dict[str, Any] = sim.requests[-1].json()
    return body


# --- the happy path, from the captures ------------------------------------------------------


@pytest.mark.parametrize(
    ("capture_file", "text", "tokens_in", "tokens_out", "finish"),
    [
        ("anthropic/stream_ok.sse", "Hello there!", 11, 6, "stop"),
        ("anthropic/stream_ok_docs.sse", "Hello!", 25, 15, "stop"),
        (
            "anthropic/stream_tool_use.sse",
            "I'll check the current weather in Paris for you.",
            377,
            65,
            "tool_calls",
        ),
    ],
)
async def test_capture_text_and_exact_usage(
    sim: AnthropicSimulator,
    capture_file: str,
    text: str,
    tokens_in: int,
    tokens_out: int,
    finish: str,
) -> None:
    sim.enqueue(capture(capture_file))
    llm = claude(sim)
    answer, thought, final = await collect(llm)
    assert answer == text
    assert thought == ""
    assert final.finish_reason == finish
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (tokens_in, tokens_out)
    assert (final.usage.cached_input_tokens, final.usage.cache_write_tokens) == (0, 0)
    assert final.usage.complete is True
    assert llm.tokens_used == {"input": tokens_in, "output": tokens_out}
    assert len(sim.requests) == 1


async def test_thinking_goes_to_reasoning_never_to_the_answer(sim: AnthropicSimulator) -> None:
    sim.enqueue(capture("anthropic/stream_thinking.sse"), capture("anthropic/stream_thinking.sse"))
    llm = claude(sim, params={"thinking": {"type": "adaptive"}})
    answer, thought, final = await collect(llm, "GCD of 1071 and 462?")
    assert answer == "The greatest common divisor of 1071 and 462 is **21**."
    assert thought == (
        "I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n"
        "1071 = 2 \u00d7 462 + 147\n462 = 3 \u00d7 147 + 21\n147 = 7 \u00d7 21 + 0\n\n"
        "So GCD(1071, 462) = 21"
    )
    assert "EqQB" not in answer + thought  # signature_delta ignored
    assert final.finish_reason == "stop"
    # The capture carries no usage at all: reported as incomplete, never as a silent 0.
    assert final.usage is not None and final.usage.complete is False
    assert await llm.generate("again") == answer
    assert last_body(sim)["thinking"] == {"type": "adaptive"}
    assert "temperature" not in last_body(sim)


async def test_cumulative_output_taken_not_added_and_cache_tokens(
    sim: AnthropicSimulator,
) -> None:
    sim.enqueue(
        text_stream(
            ["a", "b", "c"],
            input_tokens=5,
            output_tokens=9,
            cache_read_input_tokens=100,
            cache_creation_input_tokens=20,
            message_deltas=3,  # output_tokens 3, 6, 9: a sum would give 18
        )
    )
    llm = claude(sim)
    answer, _, final = await collect(llm)
    assert answer == "abc"
    assert final.usage is not None
    assert final.usage.input_tokens == 125  # 5 uncached + 100 cache read + 20 cache write
    assert final.usage.output_tokens == 9
    assert final.usage.cached_input_tokens == 100
    assert final.usage.cache_write_tokens == 20
    assert llm.tokens_used == {"input": 125, "output": 9}


async def test_padded_json_events_parse(sim: AnthropicSimulator) -> None:
    reply = text_stream(["pad", "ded"], input_tokens=3, output_tokens=2, pad=12)
    assert reply.stream is not None
    assert b'"message_stop"            }' in reply.stream[-1]
    sim.enqueue(reply)
    answer, _, final = await collect(claude(sim))
    assert answer == "padded"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 2)


async def test_generate_equals_joined_stream(sim: AnthropicSimulator) -> None:
    llm = claude(sim)
    generated = await llm.generate("Hi")
    streamed = "".join([t async for t in llm.stream("Hi")])
    assert generated == streamed == DEFAULT_TEXT
    assert len(sim.requests) == 2
    assert llm.tokens_used == {"input": 24, "output": 8}


# --- the request ----------------------------------------------------------------------------


async def test_multi_turn_request_body(sim: AnthropicSimulator) -> None:
    llm = claude(
        sim,
        max_tokens=77,
        stop=["END", "STOP"],
        params={"metadata": {"user_id": "u-1"}},
        headers={"x-trace-id": "trace-42"},
    )
    turns = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "2+2?"},
    ]
    assert await llm.generate_with_messages(turns) == DEFAULT_TEXT
    request = sim.requests[-1]
    assert request.method == "POST" and request.path == "/v1/messages"
    body = request.json()
    version = request.headers["anthropic-version"]
    expected = {
        "model": MODEL,
        "max_tokens": 77,
        "system": "Be terse.",
        "messages": turns[1:],
        "stop_sequences": ["END", "STOP"],
        "metadata": {"user_id": "u-1"},
        "stream": True,
    }
    if version < "2026-10-21":
        expected["temperature"] = 0.2
    assert body == expected
    key = request.headers.get("x-api-key") or request.headers["authorization"].split(" ", 1)[1]
    assert key == KEY
    assert request.headers["x-trace-id"] == "trace-42"


async def test_system_prompt_from_config(sim: AnthropicSimulator) -> None:
    llm = claude(sim, system_prompt="You are a pirate.")
    await llm.generate("Ahoy?")
    body = last_body(sim)
    assert body["system"] == "You are a pirate."
    assert body["messages"] == [{"role": "user", "content": "Ahoy?"}]


async def test_no_system_prompt_sends_no_system_field(sim: AnthropicSimulator) -> None:
    await claude(sim, system_prompt=None).generate("Hi")
    assert "system" not in last_body(sim)


async def test_temperature_follows_the_api_version(sim: AnthropicSimulator) -> None:
    # The SDK's default version (2026-10-21 for anthropic >= 2) rejects temperature at any
    # value, and the simulator enforces that: this call succeeding is part of the check.
    await claude(sim, temperature=0.7).generate("Hi")
    version = sim.requests[-1].headers["anthropic-version"]
    assert ("temperature" in last_body(sim)) == (version < "2026-10-21")
    # Pinning the older version through headers sends it (through extra_body).
    pinned = claude(sim, temperature=0.7, headers={"anthropic-version": "2023-06-01"})
    await pinned.generate("Hi")
    assert sim.requests[-1].headers["anthropic-version"] == "2023-06-01"
    assert last_body(sim)["temperature"] == 0.7
    # ... except with thinking on, where only 1 is accepted.
    sim.enqueue(capture("anthropic/stream_thinking.sse"))
    thinking = claude(
        sim,
        headers={"anthropic-version": "2023-06-01"},
        max_tokens=4096,  # above the budget, as the API requires
        params={"thinking": {"type": "enabled", "budget_tokens": 2048}},
    )
    await thinking.generate("Hi")
    assert "temperature" not in last_body(sim)
    assert len(sim.requests) == 3


async def test_class_can_be_built_directly(sim: AnthropicSimulator) -> None:
    llm = AnthropicLLM(LLMConfig(model=MODEL, api_key=KEY, base_url=sim.url))
    async with llm:
        assert await llm.generate("Hi") == DEFAULT_TEXT
    assert llm.base_url == sim.url


# --- errors ---------------------------------------------------------------------------------


async def test_bad_key_is_authentication_error_without_the_key(sim: AnthropicSimulator) -> None:
    wrong = "sk-ant-api03-WRONG-secret-987654"
    llm = claude(sim, api_key=wrong, max_retries=3)
    with pytest.raises(AuthenticationError) as info:
        await llm.generate("Hi")
    exc = info.value
    assert exc.message == "invalid x-api-key"  # captures/anthropic/error_401.json
    assert exc.status_code == 401
    assert exc.code == "authentication_error"
    assert exc.request_id == "req_011CYhr1kdGzCrPHfrhibMen"
    assert exc.provider == "anthropic" and exc.model == MODEL
    assert wrong not in str(exc) and wrong not in repr(exc)
    assert len(sim.requests) == 1  # never retried
    assert llm.tokens_used == {"input": 0, "output": 0}


async def test_echoed_key_is_redacted(sim: AnthropicSimulator) -> None:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": f"bad {KEY}"}}
    sim.enqueue(error(400, body))
    with pytest.raises(InvalidRequestError) as info:
        await claude(sim).generate("Hi")
    assert KEY not in str(info.value)
    assert info.value.message == "bad ***"


async def test_429_with_retry_after(sim: AnthropicSimulator) -> None:
    sim.enqueue(error(429, headers={"retry-after": "7"}))
    with pytest.raises(RateLimitError) as info:
        await claude(sim).generate("Hi")
    exc = info.value
    assert type(exc) is RateLimitError
    assert exc.retry_after == 7.0
    assert exc.status_code == 429
    assert exc.code == "rate_limit_error"
    assert exc.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"
    assert exc.message.startswith("This request would exceed your organization's rate limit")
    assert len(sim.requests) == 1


async def test_429_then_success_with_one_retry(sim: AnthropicSimulator) -> None:
    sim.enqueue(error(429, headers={"retry-after": "0"}))
    llm = claude(sim, max_retries=1)
    assert await llm.generate("Hi") == DEFAULT_TEXT
    assert len(sim.requests) == 2
    assert llm.tokens_used == {"input": 12, "output": 4}


@pytest.mark.parametrize(("status", "code"), [(529, "overloaded_error"), (500, "api_error")])
async def test_server_errors(sim: AnthropicSimulator, status: int, code: str) -> None:
    sim.enqueue(error(status))
    with pytest.raises(ServerError) as info:
        await claude(sim).generate("Hi")
    assert info.value.status_code == status
    assert info.value.code == code
    assert len(sim.requests) == 1


async def test_529_is_retried(sim: AnthropicSimulator) -> None:
    sim.enqueue(error(529))
    llm = claude(sim, max_retries=1, retry_delay=0.01)
    assert await llm.generate("Hi") == DEFAULT_TEXT
    assert len(sim.requests) == 2


async def test_prompt_too_long_is_context_length_error(sim: AnthropicSimulator) -> None:
    message = "prompt is too long: 208656 tokens > 200000 maximum"
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    sim.enqueue(error(400, body))
    with pytest.raises(ContextLengthError) as info:
        await claude(sim, max_retries=2).generate("Hi")
    assert info.value.message == message
    assert len(sim.requests) == 1


async def test_billing_error_is_quota_exceeded(sim: AnthropicSimulator) -> None:
    message = "Your credit balance is too low to access the Anthropic API."
    body = {"type": "error", "error": {"type": "billing_error", "message": message}}
    sim.enqueue(error(400, body))
    with pytest.raises(QuotaExceededError):
        await claude(sim, max_retries=2).generate("Hi")
    assert len(sim.requests) == 1


async def test_in_stream_overloaded_error_from_the_docs(sim: AnthropicSimulator) -> None:
    sim.enqueue(capture("anthropic/stream_error_overloaded_docs.sse"))
    with pytest.raises(ServerError) as info:
        await claude(sim).generate("Hi")
    assert info.value.message == "Overloaded"
    assert info.value.code == "overloaded_error"
    assert info.value.request_id is not None and info.value.request_id.startswith("req_sim_")
    assert len(sim.requests) == 1


async def test_in_stream_error_is_mapped_by_type(sim: AnthropicSimulator) -> None:
    sim.enqueue(stream_error_event("rate_limit_error", "Rate limited"))
    with pytest.raises(RateLimitError) as info:
        await claude(sim).generate("Hi")
    assert info.value.code == "rate_limit_error"
    sim.enqueue(stream_error_event("overloaded_error"))
    assert await claude(sim, max_retries=1, retry_delay=0.01).generate("Hi") == DEFAULT_TEXT
    assert len(sim.requests) == 3


async def test_in_stream_error_after_tokens_keeps_partial_text(sim: AnthropicSimulator) -> None:
    sim.enqueue(stream_error_event("overloaded_error", tokens_before=["Hel", "lo"]))
    got: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        async for token in claude(sim, max_retries=3).stream("Hi"):
            got.append(token)
    assert got == ["Hel", "lo"]
    assert info.value.partial_text == "Hello"
    assert isinstance(info.value.__cause__, ServerError)
    assert len(sim.requests) == 1


# --- broken streams -------------------------------------------------------------------------


async def test_cut_mid_stream_after_tokens(sim: AnthropicSimulator) -> None:
    # pieces: message_start, content_block_start, ping, "Hel", "lo" | cut
    sim.enqueue(text_stream(["Hel", "lo", " wor", "ld"], cut_after=5))
    llm = claude(sim, max_retries=3)
    with pytest.raises(StreamInterruptedError) as info:  # stream(): never retried after tokens
        [token async for token in llm.stream("Hi")]
    assert info.value.partial_text == "Hello"
    assert info.value.usage is not None and info.value.usage.complete is False
    assert isinstance(info.value.__cause__, ConnectionError)
    assert len(sim.requests) == 1


async def test_cut_before_any_token(sim: AnthropicSimulator) -> None:
    sim.enqueue(text_stream(["Hel", "lo"], cut_after=3))
    with pytest.raises(ConnectionError) as info:
        await claude(sim, max_retries=0).generate("Hi")
    assert not isinstance(info.value, StreamInterruptedError)
    assert len(sim.requests) == 1
    sim.enqueue(text_stream(["Hel", "lo"], cut_after=3))
    assert await claude(sim, max_retries=1, retry_delay=0.01).generate("Hi") == DEFAULT_TEXT
    assert len(sim.requests) == 3


async def test_clean_end_without_message_stop(sim: AnthropicSimulator) -> None:
    sim.enqueue(text_stream([], output_tokens=0, message_stop=False))
    with pytest.raises(ConnectionError):
        await claude(sim).generate("Hi")
    sim.enqueue(text_stream(["Hi"], message_stop=False))
    with pytest.raises(StreamInterruptedError) as info:
        await claude(sim).generate("Hi")
    assert info.value.partial_text == "Hi"
    assert isinstance(info.value.__cause__, ConnectionError)


async def test_malformed_event(sim: AnthropicSimulator) -> None:
    sim.enqueue(malformed(tokens_before=()))
    with pytest.raises(ServerError):
        await claude(sim).generate("Hi")
    sim.enqueue(malformed(tokens_before=("Hi",)))
    with pytest.raises(StreamInterruptedError) as info:
        await claude(sim).generate("Hi")
    assert info.value.partial_text == "Hi"


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
    ],
)
async def test_finish_reasons(sim: AnthropicSimulator, stop_reason: str, finish: str) -> None:
    sim.enqueue(text_stream(["ok"], stop_reason=stop_reason))
    answer, _, final = await collect(claude(sim))
    assert answer == "ok"
    assert final.finish_reason == finish
    assert final.metadata is not None and final.metadata["raw_finish_reason"] == stop_reason


async def test_refusal_is_content_filter(sim: AnthropicSimulator) -> None:
    sim.enqueue(text_stream([], output_tokens=0, stop_reason="refusal"))
    with pytest.raises(ContentFilterError):
        await claude(sim).generate("Hi")
    sim.enqueue(text_stream(["I can"], stop_reason="refusal"))
    with pytest.raises(StreamInterruptedError) as info:
        await claude(sim).generate("Hi")
    assert info.value.partial_text == "I can"


# --- leaving early, timeouts, no server -----------------------------------------------------


async def test_break_closes_the_connection(sim: AnthropicSimulator) -> None:
    sim.enqueue(text_stream([f"t{i} " for i in range(200)], delay=0.01))
    got = []
    async for token in claude(sim).stream("Hi"):
        got.append(token)
        if len(got) == 2:
            break
    assert got == ["t0 ", "t1 "]
    assert await sim.wait_for_disconnects_async(1, timeout=3)
    assert len(sim.requests) == 1


async def test_cancel_closes_the_connection(sim: AnthropicSimulator) -> None:
    sim.enqueue(text_stream([f"t{i} " for i in range(200)], delay=0.01))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in claude(sim).stream("Hi"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await sim.wait_for_disconnects_async(1, timeout=3)


async def test_timeout_while_streaming(sim: AnthropicSimulator) -> None:
    sim.enqueue(Reply(200, {"content-type": SSE_TYPE}, stream=[], hang=True))
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await claude(sim, timeout=0.3).generate("Hi")
    assert time.monotonic() - start < 2
    assert len(sim.requests) == 1


async def test_timeout_before_headers(sim: AnthropicSimulator) -> None:
    sim.enqueue(Reply(200, {"content-type": "application/json"}, b"{}", delay=2.0))
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await claude(sim, timeout=0.3).generate("Hi")
    assert time.monotonic() - start < 1.5


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = make_llm(MODEL, api_key=KEY, base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectionError) as info:
        await llm.generate("Hi")
    assert KEY not in str(info.value)


# --- the simulator itself behaves like the real API -----------------------------------------


def _post(
    sim: AnthropicSimulator,
    body: Any,
    *,
    path: str = "/v1/messages",
    version: str | None = "2023-06-01",
    key: str | None = KEY,
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if version:
        headers["anthropic-version"] = version
    if key:
        headers["x-api-key"] = key
    return httpx.post(sim.url + path, headers=headers, content=json.dumps(body), timeout=5)


GOOD = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        (
            {"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "Hi"}]},
            400,
            'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
            'parameter, not "system" as an input message role.',
        ),
        ({"max_tokens": None}, 400, "max_tokens: Field required"),
        ({"max_tokens": 0}, 400, "max_tokens: Input should be greater than or equal to 1"),
        ({"model": None}, 400, "model: Field required"),
        ({"messages": []}, 400, "messages: at least one message is required"),
        ({"messages": [{"role": "user", "content": 3}]}, 400, None),
        ({"stop": ["x"]}, 400, "stop: Extra inputs are not permitted"),
        ({"temperature": 1.5}, 400, None),
    ],
)
def test_simulator_rejects_like_the_api(
    sim: AnthropicSimulator, change: dict[str, Any], status: int, message: str | None
) -> None:
    sim.enqueue(capture("anthropic/stream_ok.sse"))
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    response = _post(sim, body)
    assert response.status_code == status
    error_obj = response.json()
    assert error_obj["type"] == "error"
    assert error_obj["error"]["type"] == "invalid_request_error"
    if message is not None:
        assert error_obj["error"]["message"] == message
    assert response.headers["request-id"].startswith("req_")
    # A rejected request does not consume the scripted reply.
    assert _post(sim, GOOD).content == read_wire("anthropic/stream_ok.sse")


def test_simulator_checks_headers_and_path(sim: AnthropicSimulator) -> None:
    wrong = _post(sim, GOOD, key="sk-ant-nope")
    assert wrong.status_code == 401
    assert wrong.content == read_wire("anthropic/error_401.json")
    assert wrong.headers["request-id"] == "req_011CYhr1kdGzCrPHfrhibMen"
    assert _post(sim, GOOD, key=None).status_code == 401
    assert _post(sim, GOOD, version=None).status_code == 400
    assert _post(sim, GOOD, path="/v1/chat/completions").status_code == 404
    sampling = _post(sim, {**GOOD, "temperature": 1.0}, version="2026-10-21")
    assert sampling.status_code == 400
    assert sampling.json()["error"]["message"] == "temperature: Extra inputs are not permitted"
    assert _post(sim, {**GOOD, "temperature": 1.0}, version="2023-06-01").status_code == 200


@pytest.mark.parametrize(
    "capture_file",
    [
        "anthropic/stream_ok.sse",
        "anthropic/stream_ok_docs.sse",
        "anthropic/stream_tool_use.sse",
        "anthropic/stream_thinking.sse",
        "anthropic/stream_error_overloaded_docs.sse",
    ],
)
def test_captures_replay_byte_exactly(sim: AnthropicSimulator, capture_file: str) -> None:
    sim.enqueue(capture(capture_file))
    response = _post(sim, GOOD)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == read_wire(capture_file)
