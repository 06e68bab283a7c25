"""The gateway's OpenAI wire, with the real openai SDK as the client over real HTTP, and the
protocol simulators as upstreams (an OpenAI one, a second OpenAI one failing over to an
Anthropic one: a group spanning protocols). Every assertion is exact: text, token counts,
the requests each simulator saw, the ledger row.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from synapsekit import errors
from synapsekit.gateway.config import parse_config
from synapsekit.gateway.core import MemoryLedger
from synapsekit.gateway.errors import status_for
from synapsekit.testing.simulators import anthropic_protocol as anth
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, error, text_stream
from synapsekit.testing.simulators.openai_streams import Call, tool_stream
from tests.gateway_fixtures import GatewayServer, gateway_config, member, serve_process

ROOT = Path(__file__).resolve().parent.parent
UP_KEY = "sk-upstream-secret-1"
ANT_KEY = "sk-ant-upstream-secret-2"
ALPHA = "sk-gw-alpha-0001"
BETA = "sk-gw-beta-0002"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[OpenAISimulator, OpenAISimulator, anth.AnthropicSimulator]]:
    with OpenAISimulator(UP_KEY) as a, OpenAISimulator(UP_KEY) as b, \
            anth.AnthropicSimulator(ANT_KEY) as c:
        yield a, b, c


@pytest.fixture(scope="module")
def gw(sims: tuple[OpenAISimulator, OpenAISimulator, anth.AnthropicSimulator]) -> Iterator[
    GatewayServer
]:
    a, b, c = sims
    text = gateway_config(
        [
            member("fast", "gpt-4o-mini", a.url),
            member("spans", "gpt-4o-mini", b.url),
            member("spans", "claude-haiku-4-5", c.url, key_env="ANT_KEY", max_tokens=300),
            member("limited", "gpt-4o", a.url),
            member("think", "o4-mini", a.url),
        ],
        [{"key": ALPHA, "name": "alpha"}, {"key": BETA, "models": ["fast"]}],
        extra="[gateway]\nmax_body_bytes = 65536\n",
    )
    with GatewayServer(text, env={"SIM_KEY": UP_KEY, "ANT_KEY": ANT_KEY},
                       ledger=MemoryLedger()) as server:
        yield server


@pytest.fixture
async def client(
    gw: GatewayServer, sims: tuple[OpenAISimulator, ...]
) -> AsyncIterator[openai.AsyncOpenAI]:
    for sim in sims:
        sim.reset()
    rows = _rows(gw)
    rows.clear()
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=ALPHA, max_retries=0) as c:
        yield c


def _rows(gw: GatewayServer) -> list[Any]:
    ledger = gw.gateway.ledger
    assert isinstance(ledger, MemoryLedger)
    return ledger.rows


HI = [{"role": "user", "content": "hi"}]


async def test_streamed_text_and_usage_exact(client: openai.AsyncOpenAI, gw: GatewayServer,
                                             sims: tuple[OpenAISimulator, ...]) -> None:
    stream = await client.chat.completions.create(
        model="fast", messages=HI, stream=True, stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello, world!"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (12, 4)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-")
    assert {c.model for c in chunks} == {"fast"}
    assert all(c.usage is None for c in chunks[:-1])
    assert len(sims[0].requests) == 1
    [row] = _rows(gw)
    assert row.request_id == "req_" + chunks[0].id.removeprefix("chatcmpl-")
    assert (row.key_id, row.model, row.member, row.status, row.stream) == (
        gw.config.keys[0].info.id, "fast", "openai:gpt-4o-mini", 200, True)
    assert (row.input_tokens, row.output_tokens, row.complete, row.error) == (12, 4, True, None)
    assert row.cost_usd > 0 and row.ttft_ms is not None


async def test_stream_without_include_usage_has_no_usage_chunk(
    client: openai.AsyncOpenAI,
) -> None:
    stream = await client.chat.completions.create(model="fast", messages=HI, stream=True)  # type: ignore[arg-type]
    chunks = [c async for c in stream]
    assert all(c.choices and c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello, world!"


async def test_not_streamed(client: openai.AsyncOpenAI, sims: tuple[OpenAISimulator, ...]) -> None:
    reply = await client.chat.completions.with_raw_response.create(
        model="fast", messages=HI, temperature=0.5, top_p=0.9, max_tokens=50, stop=["END"],  # type: ignore[arg-type]
    )
    completion = reply.parse()
    assert completion.object == "chat.completion" and completion.model == "fast"
    assert completion.choices[0].message.content == "Hello, world!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.total_tokens) == (12, 4, 16)
    assert completion.system_fingerprint is not None
    assert completion.system_fingerprint.startswith("fp_")
    assert reply.headers["x-synapsekit-member"] == "openai:gpt-4o-mini"
    sent = sims[0].requests[0].json()
    assert sent["messages"] == HI  # no system prompt of the library's added
    assert (sent["temperature"], sent["top_p"], sent["stop"]) == (0.5, 0.9, ["END"])
    assert sent["max_completion_tokens"] == 50


async def test_tool_call_round_trip(client: openai.AsyncOpenAI,
                                    sims: tuple[OpenAISimulator, ...]) -> None:
    sim = sims[0]
    sim.enqueue(tool_stream([Call("call_abc", "get_weather", {"city": "Paris"})]),
                text_stream(["It", " is", " sunny"]))
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    }}]
    first = await client.chat.completions.create(
        model="fast", messages=HI, tools=tools, tool_choice="auto",  # type: ignore[arg-type]
        parallel_tool_calls=False,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (  # type: ignore[union-attr]
        "call_abc", "get_weather", {"city": "Paris"})
    sent = sim.requests[0].json()
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert (sent["tool_choice"], sent["parallel_tool_calls"]) == ("auto", False)
    history = [*HI, choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": "call_abc", "content": "sunny, 21C"}]
    second = await client.chat.completions.create(model="fast", messages=history, tools=tools)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "It is sunny"
    turns = sim.requests[1].json()["messages"]
    assert turns[1]["tool_calls"][0]["id"] == "call_abc"
    assert json.loads(turns[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert turns[2] == {"role": "tool", "tool_call_id": "call_abc", "content": "sunny, 21C"}


async def test_streamed_tool_call_deltas(client: openai.AsyncOpenAI,
                                         sims: tuple[OpenAISimulator, ...]) -> None:
    sims[0].enqueue(tool_stream([Call("call_1", "lookup", {"q": "synapsekit gateway"})]))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]
    stream = await client.chat.completions.create(model="fast", messages=HI, tools=tools,  # type: ignore[arg-type]
                                                  stream=True)
    parts = [c.choices[0].delta.tool_calls async for c in stream
             if c.choices and c.choices[0].delta.tool_calls]
    first = parts[0][0]  # type: ignore[index]
    assert (first.id, first.type, first.function.name) == ("call_1", "function", "lookup")  # type: ignore[union-attr]
    arguments = "".join(p[0].function.arguments or "" for p in parts)  # type: ignore[index,union-attr]
    assert json.loads(arguments) == {"q": "synapsekit gateway"}


async def test_image_part_reaches_upstream(client: openai.AsyncOpenAI,
                                           sims: tuple[OpenAISimulator, ...]) -> None:
    url = f"data:image/png;base64,{PNG}"
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]}]
    reply = await client.chat.completions.create(model="fast", messages=messages)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "Hello, world!"
    parts = sims[0].requests[0].json()["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What is this?"}
    assert parts[1]["type"] == "image_url" and parts[1]["image_url"]["url"] == url


def test_estimate_counts_image_parts() -> None:
    """The gateway's reservation (tokens per minute, budget) counts an image part at the
    library's PART_TOKENS, not as nothing: ceil(13 / 4) + 1000 + max_tokens."""
    from synapsekit.gateway.core import estimate_tokens
    from synapsekit.gateway.openai_request import parse_chat
    from synapsekit.llm.ratelimit import PART_TOKENS

    req = parse_chat({"model": "fast", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]}]})
    assert PART_TOKENS == 1000
    assert estimate_tokens(req) == 4 + 1000 + 10


async def test_failover_across_protocols(
    client: openai.AsyncOpenAI, gw: GatewayServer,
    sims: tuple[OpenAISimulator, OpenAISimulator, anth.AnthropicSimulator],
) -> None:
    _, b, c = sims
    b.enqueue(error(500))
    c.enqueue(anth.text_stream(["Bonjour", " !"], input_tokens=9, output_tokens=3,
                               model="claude-haiku-4-5"))
    stream = await client.chat.completions.create(
        model="spans", messages=[{"role": "system", "content": "Be brief."}, *HI],  # type: ignore[list-item]
        stream=True, stream_options={"include_usage": True},
    )
    chunks = [ch async for ch in stream]
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == (
        "Bonjour !")
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (9, 3)
    assert (len(b.requests), len(c.requests)) == (1, 1)
    sent = c.requests[0].json()
    assert sent["system"] == "Be brief." and sent["messages"] == HI
    assert sent["max_tokens"] == 300
    [row] = _rows(gw)
    assert (row.member, row.input_tokens, row.output_tokens) == (
        "anthropic:claude-haiku-4-5", 9, 3)


async def test_not_streamed_cut_stream_fails_over(
    client: openai.AsyncOpenAI,
    sims: tuple[OpenAISimulator, OpenAISimulator, anth.AnthropicSimulator],
) -> None:
    """Non-streamed, nothing reached the client: a cut upstream stream fails over."""
    _, b, c = sims
    b.enqueue(text_stream(["half", " an"], cut_after=2))
    c.enqueue(anth.text_stream(["Whole", " answer"], input_tokens=9, output_tokens=2,
                               model="claude-haiku-4-5"))
    reply = await client.chat.completions.with_raw_response.create(model="spans", messages=HI)  # type: ignore[arg-type]
    completion = reply.parse()
    assert completion.choices[0].message.content == "Whole answer"
    assert reply.headers["x-synapsekit-member"] == "anthropic:claude-haiku-4-5"
    assert (len(b.requests), len(c.requests)) == (1, 1)


async def test_unknown_key_401(gw: GatewayServer, sims: tuple[OpenAISimulator, ...]) -> None:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="sk-gw-nope-9999",
                                  max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as info:
            await bad.chat.completions.create(model="fast", messages=HI)  # type: ignore[arg-type]
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert "sk-gw-nope" not in info.value.message
    assert info.value.response.headers["x-request-id"].startswith("req_")
    assert len(sims[0].requests) == 0


async def test_disallowed_model_403(gw: GatewayServer, client: openai.AsyncOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=BETA, max_retries=0) as beta:
        with pytest.raises(openai.PermissionDeniedError) as info:
            await beta.chat.completions.create(model="spans", messages=HI)  # type: ignore[arg-type]
        listed = [m.id async for m in beta.models.list()]
    assert info.value.code == "model_not_allowed" and info.value.param == "model"  # type: ignore[attr-defined]
    assert listed == ["fast"]
    [row] = _rows(gw)
    assert (row.status, row.error, row.member) == (403, "GatewayError", None)


async def test_unknown_model_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="gpt-5-nope", messages=HI)  # type: ignore[arg-type]
    assert info.value.body == {
        "message": "The model `gpt-5-nope` does not exist or you do not have access to it.",
        "type": "not_found_error", "param": "model", "code": "model_not_found",
    }


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"temperature": 3}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"response_format": {"type": "yaml"}}, "response_format.type"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"logprobs": True}, "logprobs"),
    ({"tool_choice": "required"}, None),  # the library's own check: no tools given
    ({"modalities": ["audio"]}, "modalities"),
])
async def test_bad_request_400_names_the_field(
    client: openai.AsyncOpenAI, extra: dict[str, Any], param: str,
    sims: tuple[OpenAISimulator, ...],
) -> None:
    body: dict[str, Any] = {"model": "fast", "messages": HI, **extra}
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(**body)
    assert info.value.param == param  # type: ignore[attr-defined]
    assert len(sims[0].requests) == 0


async def test_body_too_big_413(client: openai.AsyncOpenAI,
                                sims: tuple[OpenAISimulator, ...]) -> None:
    big = [{"role": "user", "content": "x" * 70_000}]
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="fast", messages=big)  # type: ignore[arg-type]
    assert info.value.status_code == 413
    assert info.value.code == "request_too_large"  # type: ignore[attr-defined]
    assert len(sims[0].requests) == 0


async def test_upstream_429_mapped_with_retry_after(
    client: openai.AsyncOpenAI, gw: GatewayServer, sims: tuple[OpenAISimulator, ...],
) -> None:
    limited = {"error": {"message": "Rate limit reached for gpt-4o", "type": "requests",
                         "param": None, "code": "rate_limit_exceeded"}}
    sims[0].enqueue(error(429, limited, headers={"retry-after": "7"}))
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="limited", messages=HI, stream=True)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.response.headers["retry-after-ms"] == "7000"
    assert info.value.code == "rate_limit_exceeded"  # type: ignore[attr-defined]
    assert len(sims[0].requests) == 1
    [row] = _rows(gw)
    assert (row.status, row.error, row.stream) == (429, "AllMembersFailedError", True)
    # the refusal names its ledger row
    assert info.value.response.headers["x-request-id"] == row.request_id


async def test_upstream_failure_mid_stream_is_an_error_event(
    client: openai.AsyncOpenAI, gw: GatewayServer, sims: tuple[OpenAISimulator, ...],
) -> None:
    sims[0].enqueue(text_stream(["one", " two", " three"], cut_after=3))
    stream = await client.chat.completions.create(model="fast", messages=HI, stream=True)  # type: ignore[arg-type]
    seen: list[str] = []
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "one two"
    assert "upstream stream failed" in info.value.message
    [row] = _rows(gw)
    assert (row.status, row.error, row.complete) == (200, "StreamInterruptedError", False)


async def test_serve_the_example_config_drains_on_sigterm_and_logs_no_secret(
    tmp_path: Any,
) -> None:
    """`synapsekit serve --config examples/gateway.toml` (its simulator's port swapped for
    this one's) as a real process: the example key works; SIGTERM mid-stream stops
    accepting connections, lets the stream in flight finish, then the process exits (by
    the signal, as uvicorn does). Its log names the key's id only."""
    tokens = [f" t{i}" for i in range(12)]
    with OpenAISimulator(UP_KEY, default=text_stream(tokens, delay=0.05)) as sim:
        example = (ROOT / "examples" / "gateway.toml").read_text()
        assert example.count("http://127.0.0.1:8100/v1") == 2
        path = tmp_path / "gateway.toml"
        path.write_text(example.replace("http://127.0.0.1:8100/v1", sim.url))
        key = "sk-gw-alpha-example"
        proc, url, log = serve_process(path, env={"OPENAI_API_KEY": UP_KEY})
        try:
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key,
                                          max_retries=0) as c:
                stream = await c.chat.completions.create(model="fast", messages=HI,  # type: ignore[arg-type]
                                                         stream=True)
                got = []
                async for chunk in stream:
                    got.append(chunk.choices[0].delta.content or "")
                    if len(got) == 3:
                        proc.send_signal(signal.SIGTERM)
                    if len(got) == 6:  # mid-stream: the port no longer accepts
                        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key,
                                                      max_retries=0) as late:
                            with pytest.raises(openai.APIConnectionError):
                                await late.chat.completions.create(model="fast", messages=HI)  # type: ignore[arg-type]
                assert "".join(got) == "".join(tokens)
            # uvicorn re-raises the signal once it has shut down gracefully
            assert proc.wait(timeout=15) == -signal.SIGTERM
        finally:
            if proc.poll() is None:
                proc.kill()
        text = b"".join(log).decode()
        key_id = parse_config(path.read_text(), str(path), {"OPENAI_API_KEY": UP_KEY}
                              ).keys[0].info.id
        assert f" {key_id} POST /v1/chat/completions 200 " in text
        assert key not in text and UP_KEY not in text and "authorization" not in text.lower()
        assert len(sim.requests) == 1
        assert sim.requests[0].json()["model"] == "gpt-4o-mini"


async def test_abandoned_stream_is_recorded_at_once_and_upstream_closed(
    client: openai.AsyncOpenAI, gw: GatewayServer, sims: tuple[OpenAISimulator, ...],
) -> None:
    sims[0].enqueue(text_stream([f" w{i}" for i in range(40)], delay=0.02))
    stream = await client.chat.completions.create(model="fast", messages=HI, stream=True)  # type: ignore[arg-type]
    got = 0
    async for _chunk in stream:
        got += 1
        if got == 4:
            break
    await stream.close()
    assert await sims[0].wait_for_disconnects_async(1, timeout=5)
    rows = _rows(gw)
    for _ in range(200):
        if rows:
            break
        await asyncio.sleep(0.01)
    [row] = rows
    assert (row.status, row.error, row.complete, row.stream) == (
        499, "ClientDisconnected", False, True)
    assert 3 <= row.output_tokens < 40  # the chunks passed on: a lower bound, not a 0


async def test_structured_output_and_reasoning_effort_pass_through(
    client: openai.AsyncOpenAI, sims: tuple[OpenAISimulator, ...],
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}
    sims[0].enqueue(text_stream(['{"city":', ' "Paris"}']))
    reply = await client.chat.completions.create(
        model="think", messages=HI, reasoning_effort="low",
        response_format={"type": "json_schema",  # type: ignore[arg-type]
                         "json_schema": {"name": "place", "schema": schema, "strict": True}},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"city": "Paris"}
    sent = sims[0].requests[0].json()
    assert sent["reasoning_effort"] == "low"
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "place"
    assert sent["response_format"]["json_schema"]["schema"]["properties"] == schema["properties"]


async def test_health_and_models(gw: GatewayServer, client: openai.AsyncOpenAI) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as http:
        health = await http.get("/health")
        unauth = await http.get("/v1/models")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "models": {
        "fast": {"members": 1, "open": 0}, "spans": {"members": 2, "open": 0},
        "limited": {"members": 1, "open": 0}, "think": {"members": 1, "open": 0}}}
    assert unauth.status_code == 401
    assert unauth.json()["error"]["code"] == "missing_api_key"
    assert [m.id async for m in client.models.list()] == ["fast", "spans", "limited", "think"]


async def test_chunked_body_over_the_limit_is_413(gw: GatewayServer,
                                                  sims: tuple[OpenAISimulator, ...]) -> None:
    async def body() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield b'{"model": "fast", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}]}'

    async with httpx.AsyncClient(base_url=gw.url) as http:
        reply = await http.post("/v1/chat/completions", content=body(),
                                headers={"authorization": f"Bearer {ALPHA}"})
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "request_too_large"
    assert len(sims[0].requests) == 0


async def test_bad_json_and_other_key_headers(gw: GatewayServer,
                                              sims: tuple[OpenAISimulator, ...]) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as http:
        bad = await http.post("/v1/chat/completions", content=b'{"model": "fast",',
                              headers={"authorization": f"Bearer {ALPHA}"})
        listed = [await http.get("/v1/models", headers={name: ALPHA})
                  for name in ("x-api-key", "api-key")]
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_json"
    assert bad.json()["error"]["message"].startswith(
        "We could not parse the JSON body of your request: ")
    assert [r.status_code for r in listed] == [200, 200]
    assert len(sims[0].requests) == 0


async def test_unknown_path_and_method_in_openai_shape(gw: GatewayServer) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as http:
        nowhere = await http.post("/v1/completions", json={})
        wrong = await http.get("/v1/chat/completions")
    assert (nowhere.status_code, wrong.status_code) == (404, 405)
    assert nowhere.json() == {"error": {"message": "Invalid URL (POST /v1/completions)",
                                        "type": "invalid_request_error", "param": None,
                                        "code": None}}
    assert wrong.json()["error"]["message"] == "Invalid URL (GET /v1/chat/completions)"


class _BrokenKeys:
    async def authenticate(self, secret: str) -> Any:
        raise RuntimeError("the key store is down")


async def test_a_failure_of_the_gateway_itself_is_an_openai_shaped_500(
    sims: tuple[OpenAISimulator, ...],
) -> None:
    text = gateway_config([member("fast", "gpt-4o-mini", sims[0].url)])
    with GatewayServer(text, env={"SIM_KEY": UP_KEY}, keys=_BrokenKeys()) as broken:
        async with openai.AsyncOpenAI(base_url=broken.url + "/v1", api_key=ALPHA,
                                      max_retries=0) as c:
            with pytest.raises(openai.InternalServerError) as info:
                await c.chat.completions.create(model="fast", messages=HI)  # type: ignore[arg-type]
    assert info.value.body == {"message": "The gateway failed to handle the request.",
                               "type": "server_error", "param": None, "code": "internal_error"}
    assert "down" not in info.value.response.text


async def test_connections_have_nagle_off(gw: GatewayServer) -> None:
    """Nagle on would hold a stream's first event until the client's delayed ACK (~40 ms
    on a keep-alive connection); the fixture's socket is made without IPPROTO_TCP, as
    uvicorn's own is for several workers, so asyncio leaves Nagle on: the protocol does it."""
    async with httpx.AsyncClient(base_url=gw.url) as http:
        assert (await http.get("/health")).status_code == 200
        connections = list(gw.server_state.connections)
        assert connections
        for connection in connections:
            sock = connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


async def test_a_response_head_leaves_in_one_write_with_the_first_body_bytes() -> None:
    """Two writes would wake the client on the head, before the first token is written."""
    from synapsekit.gateway._nodelay import _HeadWithBody

    class Transport:
        def __init__(self) -> None:
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.writes.append(bytes(data))

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

    real = Transport()
    held = _HeadWithBody(real)  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert real.writes == []
    held.write(b"5\r\nfirst\r\n")
    held.write(b"4\r\nnext\r\n")
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\n5\r\nfirst\r\n", b"4\r\nnext\r\n"]
    held.write(b"HTTP/1.1 404 Not Found\r\n\r\n")  # no body in this turn: sent at its end
    await asyncio.sleep(0)
    assert real.writes[-1] == b"HTTP/1.1 404 Not Found\r\n\r\n" and len(real.writes) == 3
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    held.close()  # nothing held back past a close
    assert real.writes[-1] == b"HTTP/1.1 200 OK\r\n\r\n" and real.closed
    assert held.is_closing()


async def _asgi_stream(events: Any, send: Any) -> None:
    from synapsekit.gateway.http import EventStream

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    await EventStream(events, media_type="text/event-stream")(scope, receive, send)


async def test_event_stream_keeps_order_under_a_slow_client_and_closes_when_it_leaves() -> None:
    closed: list[int] = []
    sent: list[bytes] = []

    async def events(n: int) -> AsyncIterator[bytes]:
        try:
            for i in range(n):
                if i % 50 == 0:
                    await asyncio.sleep(0)  # an upstream read
                yield b"e%d;" % i
        finally:
            closed.append(n)

    async def slow(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])
            await asyncio.sleep(0.001)

    await _asgi_stream(events(1000), slow)
    assert b"".join(sent) == b"".join(b"e%d;" % i for i in range(1000))
    assert 2 < len(sent) < 1000  # coalesced, but not all held back until the end
    assert closed == [1000]

    async def gone(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            raise OSError("the client left")

    # Starlette >= 0.42 raises ClientDisconnect; older ones let the OSError out (maybe in
    # an exception group, from their disconnect-listener task group)
    with pytest.raises(Exception):  # noqa: B017
        await _asgi_stream(events(10**6), gone)
    assert closed == [1000, 10**6]  # the generator was closed at once, not left to the GC


async def test_event_stream_sends_the_first_item_before_producing_the_rest() -> None:
    """The first item (the opening events and the first token) leaves at once, not after
    the body has run through all an upstream burst brought."""
    produced: list[int] = []
    sent: list[tuple[bytes, int]] = []

    async def events() -> AsyncIterator[bytes]:
        yield b"first;"
        for i in range(100):  # already read: no await between them
            produced.append(i)
            yield b"e%d;" % i

    async def record(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append((message["body"], len(produced)))

    await _asgi_stream(events(), record)
    assert sent[0] == (b"first;", 0)
    assert b"".join(body for body, _ in sent) == b"first;" + b"".join(
        b"e%d;" % i for i in range(100))
    assert len(sent) == 3  # the first item, the rest coalesced, the end


async def test_the_first_event_item_holds_the_role_and_the_first_token() -> None:
    from synapsekit.gateway.openai_wire import _Ids, _render
    from synapsekit.gateway.types import GatewayRequest
    from synapsekit.llm.types import Chunk, Usage

    async def rest() -> AsyncIterator[Chunk]:
        yield Chunk(" world")
        yield Chunk(usage=Usage(input_tokens=3, output_tokens=2), finish_reason="stop")

    req = GatewayRequest(api="openai", model="fast", messages=[], overrides={}, stream=True,
                         request_id="req_" + "ab" * 12)
    items = [item async for item in _render(Chunk("Hello"), rest(), _Ids(req), True)]
    head = [json.loads(line[6:]) for line in items[0].decode().split("\n\n") if line]
    assert [h["choices"][0]["delta"] for h in head] == [
        {"role": "assistant", "content": "", "refusal": None}, {"content": "Hello"}]
    assert len(items) == 3  # the opening + "Hello"; " world"; finish + usage + [DONE]
    assert items[2].endswith(b"data: [DONE]\n\n") and b'"completion_tokens":2' in items[2]


@pytest.mark.parametrize(("exc", "status", "code"), [
    (errors.BudgetExceededError(limit_usd=1.0, spent_usd=1.0, reserved_usd=0.0,
                                requested_usd=0.1), 429, "insufficient_quota"),
    (errors.QuotaExceededError("no credit"), 429, "insufficient_quota"),
    (errors.RateLimitError("slow", retry_after=3.0), 429, "rate_limit_exceeded"),
    (errors.PermissionDeniedError("no"), 502, "upstream_auth"),
    (errors.AuthenticationError("bad key"), 502, "upstream_auth"),
    (errors.ContextLengthError("too long"), 400, "context_length_exceeded"),
    (errors.ContentFilterError("blocked"), 400, "content_filter"),
    (errors.InvalidRequestError("bad"), 400, "invalid_request"),
    (errors.UnsupportedFeatureError("no images"), 400, "invalid_request"),
    (errors.NotFoundError("no model"), 404, "model_not_found"),
    (errors.TimeoutError("slow"), 504, "upstream_timeout"),
    (errors.ConnectionError("down"), 502, "upstream_error"),
    (errors.ServerError("500"), 502, "upstream_error"),
    (errors.StreamInterruptedError("cut", partial_text="x"), 502, "upstream_interrupted"),
    (errors.AllMembersFailedError("none", failures={}, skipped={"a": "open"},
                                  retry_after=4.0), 503, "no_member_available"),
    (RuntimeError("bug"), 500, "internal_error"),
])
def test_status_for(exc: BaseException, status: int, code: str) -> None:
    mapped = status_for(exc)
    assert (mapped.status, mapped.code) == (status, code)
    if code == "rate_limit_exceeded":
        assert mapped.retry_after == 3.0
    said = getattr(exc, "message", str(exc))
    assert (mapped.message == said) == (status in (400, 404))  # 5xx/429: the gateway's words


def test_status_for_all_failed_is_the_last_failure() -> None:
    last = errors.RateLimitError("slow", retry_after=9.0)
    exc = errors.AllMembersFailedError(
        "all", failures={"a": errors.ServerError("x"), "b": last}, skipped={})
    exc.__cause__ = last
    mapped = status_for(exc)
    assert (mapped.status, mapped.code, mapped.retry_after) == (429, "rate_limit_exceeded", 9.0)


async def test_abandoned_stream_keeps_the_input_tokens_said_early(
    client: openai.AsyncOpenAI, gw: GatewayServer,
    sims: tuple[OpenAISimulator, OpenAISimulator, anth.AnthropicSimulator],
) -> None:
    """Anthropic says the input tokens in message_start: a stream abandoned after a few
    chunks is recorded with them, and the chunks passed on as a lower bound of output."""
    _, b, c = sims
    b.enqueue(error(500))
    c.enqueue(anth.text_stream([f" w{i}" for i in range(40)], input_tokens=17,
                               model="claude-haiku-4-5", delay=0.02))
    stream = await client.chat.completions.create(model="spans", messages=HI, stream=True)  # type: ignore[arg-type]
    got = 0
    async for _chunk in stream:
        got += 1
        if got == 4:
            break
    await stream.close()
    assert await c.wait_for_disconnects_async(1, timeout=5)
    rows = _rows(gw)
    for _ in range(200):
        if rows:
            break
        await asyncio.sleep(0.01)
    [row] = rows
    assert (row.status, row.member, row.input_tokens, row.complete) == (
        499, "anthropic:claude-haiku-4-5", 17, False)
    assert 3 <= row.output_tokens < 40
