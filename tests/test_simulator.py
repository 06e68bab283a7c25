"""Tests of the protocol simulators themselves, driven by plain httpx (not synapsekit).

If these fail, every provider test built on the simulators is suspect, so they pin down the
wire-level promises: exact replay bytes, fault injection, disconnect detection, keep-alive, and
the OpenAI/Azure request validation.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from synapsekit.testing.simulators.openai_protocol import (
    OpenAISimulator,
    capture,
    error,
    malformed,
    stream_error_event,
    text_stream,
)
from synapsekit.testing.simulators.server import Reply, Request, Server
from synapsekit.testing.simulators.wire import read_wire, sse_events

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"authorization": "Bearer sk-test-key"}
BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**BODY, "stream": True}
USAGE = {**STREAM, "stream_options": {"include_usage": True}}


@pytest.fixture
def sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as s:
        yield s


@pytest.fixture
def azure() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(auth="azure") as s:
        yield s


def chat(
    sim: OpenAISimulator, body: Any = STREAM, headers: dict[str, str] = AUTH
) -> httpx.Response:
    return httpx.post(f"{sim.url}/chat/completions", json=body, headers=headers)


def chunks(body: bytes) -> list[Any]:
    """The JSON payload of every ``data:`` event except ``[DONE]``."""
    lines = body.decode().splitlines()
    return [json.loads(x[6:]) for x in lines if x.startswith("data: ") and x != "data: [DONE]"]


def text(body: bytes) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks(body) if c["choices"]
    )


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes and read until the server closes: to see the framing httpx hides."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while part := sock.recv(65536):
            data += part
    return data


def dechunk(data: bytes) -> list[bytes]:
    """Split a chunked body into its chunks; asserts the zero-length terminator is present."""
    out: list[bytes] = []
    while True:
        size_line, data = data.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            assert data == b"\r\n"
            return out
        out.append(data[:size])
        assert data[size : size + 2] == b"\r\n"
        data = data[size + 2 :]


# --- auth and validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer sk-wrong"}, {"authorization": "Basic sk-test-key"}],
    ids=["missing", "wrong-key", "wrong-scheme"],
)
def test_auth_failure_returns_captured_401_before_the_queue(
    sim: OpenAISimulator, headers: dict[str, str]
) -> None:
    sim.enqueue(error(500))
    r = chat(sim, headers=headers)
    assert r.status_code == 401
    assert r.content == read_wire("openai/error_401.json")
    assert r.headers["x-request-id"] == "req_1"
    assert chat(sim).status_code == 500  # the scripted reply was not consumed by the 401
    assert len(sim.requests) == 2


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b"{not json", None, None),
        ({"messages": BODY["messages"]}, None, None),
        ({**BODY, "model": ""}, None, None),
        ({**BODY, "model": 4}, "model", "invalid_type"),
        ({"model": "m"}, "messages", "missing_required_parameter"),
        ({**BODY, "messages": []}, "messages", "empty_array"),
        ({**BODY, "messages": ["hi"]}, "messages[0]", "invalid_type"),
        (
            {**BODY, "messages": [{"role": "bot", "content": "x"}]},
            "messages[0].role",
            "invalid_value",
        ),
        (
            {**BODY, "messages": [{"role": "user"}]},
            "messages[0].content",
            "missing_required_parameter",
        ),
        (
            {**BODY, "messages": [{"role": "user", "content": 3}]},
            "messages[0].content",
            "invalid_type",
        ),
        (
            {**BODY, "messages": [{"role": "tool", "content": "42"}]},
            "messages[0].tool_call_id",
            "missing_required_parameter",
        ),
        ({**BODY, "stream": "yes"}, "stream", "invalid_type"),
        ({**BODY, "stream_options": {"include_usage": True}}, "stream_options", None),
        ({**BODY, "stream": False, "stream_options": {}}, "stream_options", None),
    ],
)
def test_invalid_body_is_a_400_in_openai_shape(
    sim: OpenAISimulator, body: Any, param: str | None, code: str | None
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(f"{sim.url}/chat/completions", content=content, headers=AUTH)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", param, code)
    assert err["message"]


def test_valid_variants_are_accepted(sim: OpenAISimulator) -> None:
    messages = [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
         "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert chat(sim, {**BODY, "messages": messages}).status_code == 200
    assert chat(sim, {**BODY, "stream": None}).status_code == 200


def test_wrong_method_and_path(sim: OpenAISimulator) -> None:
    r = httpx.get(f"{sim.url}/chat/completions", headers=AUTH)
    assert r.status_code == 405
    assert r.json()["error"]["message"] == "Invalid method for URL (GET /v1/chat/completions)"
    r = httpx.post(f"{sim.url}/completions", json=BODY, headers=AUTH)
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_azure_paths_and_api_key_header(azure: OpenAISimulator) -> None:
    assert not azure.url.endswith("/v1")
    good = f"{azure.url}/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    key = {"api-key": "sk-test-key"}
    r = httpx.post(good, json={"messages": BODY["messages"]}, headers=key)  # model is optional
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "Hello, world!"
    assert azure.requests[-1].query == {"api-version": "2024-10-21"}
    not_found = {"error": {"code": "404", "message": "Resource not found"}}
    for url in (good.split("?")[0], f"{azure.url}/v1/chat/completions?api-version=1"):
        r = httpx.post(url, json=BODY, headers=key)
        assert (r.status_code, r.json()) == (404, not_found)
    for headers in (AUTH, {"api-key": "wrong"}):
        r = httpx.post(good, json=BODY, headers=headers)
        assert r.status_code == 401
        assert r.content == read_wire("openai_compatible/azure/error_401.json")


# --- replies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relpath",
    [
        "openai/stream_ok.sse",
        "openai_compatible/openrouter/stream_reasoning_realcapture.sse",
        "gemini/stream_ok.sse",
    ],
)
def test_capture_replays_byte_identically(sim: OpenAISimulator, relpath: str) -> None:
    sim.enqueue(capture(relpath))
    with httpx.stream("POST", f"{sim.url}/chat/completions", json=STREAM, headers=AUTH) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.read() == read_wire(relpath)


def test_capture_sends_one_chunk_per_event(sim: OpenAISimulator) -> None:
    relpath = "openai_compatible/openrouter/stream_reasoning_realcapture.sse"
    reply = capture(relpath)
    assert reply.stream is not None and reply.stream[0] == b": OPENROUTER PROCESSING\n\n"
    assert all(e.endswith(b"\r\n\r\n") for e in sse_events(read_wire("gemini/stream_ok.sse")))
    sim.enqueue(reply)
    body = json.dumps(STREAM).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test-key\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    head, _, rest = raw_exchange(sim.port, request).partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert b"connection: close" in head.lower()
    assert dechunk(rest) == list(reply.stream)


def test_cut_after_leaves_an_incomplete_body_after_exactly_n_events(sim: OpenAISimulator) -> None:
    sim.enqueue(text_stream(["x"] * 10, cut_after=3))
    seen: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{sim.url}/chat/completions", json=STREAM, headers=AUTH) as r,
    ):
        assert r.status_code == 200
        seen.extend(line for line in r.iter_lines() if line.startswith("data: "))
    assert len(seen) == 3
    assert sim.disconnects == 0  # the server cut it; that is not a client disconnect


@pytest.mark.asyncio
async def test_disconnect_is_noticed_promptly_despite_long_delays(sim: OpenAISimulator) -> None:
    sim.enqueue(text_stream(["slow"] * 5, delay=30.0))
    start = time.monotonic()
    async with (
        httpx.AsyncClient() as client,
        client.stream("POST", f"{sim.url}/chat/completions", json=STREAM, headers=AUTH) as r,
    ):
        assert r.status_code == 200  # headers come at once; the first piece would take 30 s
    assert await sim.wait_for_disconnects_async(1, timeout=3)
    assert time.monotonic() - start < 1.5


@pytest.mark.asyncio
async def test_client_that_stops_iterating_mid_stream_counts_as_disconnect(
    sim: OpenAISimulator,
) -> None:
    sim.enqueue(text_stream(["tok"] * 20, delay=0.05))
    async with httpx.AsyncClient() as client:
        async with client.stream(
            "POST", f"{sim.url}/chat/completions", json=STREAM, headers=AUTH
        ) as r:
            async for line in r.aiter_lines():
                if '"tok"' in line:
                    break
        assert await sim.wait_for_disconnects_async(1, timeout=3)
        r2 = await client.post(f"{sim.url}/chat/completions", json=BODY, headers=AUTH)
        assert r2.status_code == 200


def test_hang_sends_headers_then_nothing(sim: OpenAISimulator) -> None:
    sim.enqueue(Reply(200, {"content-type": "text/event-stream"}, hang=True))
    timeout = httpx.Timeout(5.0, read=0.3)
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream(
            "POST", f"{sim.url}/chat/completions", json=STREAM, headers=AUTH, timeout=timeout
        ) as r,
    ):
        assert r.status_code == 200
        r.read()
    assert sim.wait_for_disconnects(1, timeout=3)


def test_keep_alive_reuses_one_connection(sim: OpenAISimulator) -> None:
    with httpx.Client(headers=AUTH) as client:
        r1 = client.post(f"{sim.url}/chat/completions", json=BODY)
        with client.stream("POST", f"{sim.url}/chat/completions", json=STREAM) as r2:
            assert text(r2.read()) == "Hello, world!"
        r3 = client.post(f"{sim.url}/chat/completions", json=BODY)
    assert r1.json()["choices"][0]["message"]["content"] == "Hello, world!"
    assert [r1.headers["x-request-id"], r3.headers["x-request-id"]] == ["req_1", "req_3"]
    assert sim.connections == 1
    assert len(sim.requests) == 3


def test_chunked_request_body_is_accepted(sim: OpenAISimulator) -> None:
    payload = json.dumps(BODY).encode()
    parts = iter([payload[:10], payload[10:]])
    r = httpx.post(f"{sim.url}/chat/completions", content=parts, headers=AUTH)
    assert r.status_code == 200
    request = sim.requests[-1]
    assert request.headers["Transfer-Encoding"] == "chunked"
    assert request.json() == BODY


def test_queue_in_order_then_default(sim: OpenAISimulator) -> None:
    sim.enqueue(
        error(429, headers={"retry-after": "1"}),
        capture("openai/stream_ok.sse"),
        text_stream(["A", "B"]),
    )
    r = chat(sim)
    assert (r.status_code, r.headers["retry-after"]) == (429, "1")
    assert r.content == read_wire("openai/error_429.json")
    assert chat(sim).content == read_wire("openai/stream_ok.sse")
    assert text(chat(sim).content) == "AB"
    assert text(chat(sim).content) == "Hello, world!"
    assert text(chat(sim).content) == "Hello, world!"
    sim.enqueue(error(500))
    sim.reset()
    r = chat(sim)
    assert (r.status_code, r.headers["x-request-id"]) == (200, "req_1")
    assert len(sim.requests) == 1
    assert sim.connections == 1


def test_text_stream_usage_follows_stream_options(sim: OpenAISimulator) -> None:
    with_usage = chunks(chat(sim, USAGE).content)
    assert with_usage[-1]["choices"] == []
    assert with_usage[-1]["usage"]["prompt_tokens"] == 12
    assert with_usage[-1]["usage"]["completion_tokens"] == 4
    assert with_usage[-1]["usage"]["total_tokens"] == 16
    assert all(c["usage"] is None for c in with_usage[:-1])
    assert with_usage[0]["choices"][0]["delta"]["role"] == "assistant"
    assert with_usage[-2]["choices"][0]["finish_reason"] == "stop"
    assert len({c["id"] for c in with_usage}) == 1

    plain = chat(sim).content
    assert plain.endswith(b"data: [DONE]\n\n")
    assert all("usage" not in c for c in chunks(plain))

    sim.enqueue(text_stream(["a"], usage_in_final_chunk=False, completion_tokens=7))
    last = chunks(chat(sim, USAGE).content)[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == 7


def test_non_streaming_request_gets_a_json_completion(sim: OpenAISimulator) -> None:
    r = chat(sim, BODY)
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello, world!",
        "refusal": None,
        "annotations": [],
    }
    assert data["usage"]["total_tokens"] == 16
    assert set(data) == set(json.loads(read_wire("openai/nonstream_ok.json")))


def test_error_event_and_malformed_streams(sim: OpenAISimulator) -> None:
    boom = {"message": "boom", "type": "server_error", "param": None, "code": None}
    sim.enqueue(stream_error_event(boom, tokens_before=["a", "b"]), malformed())
    body = chat(sim).content
    assert not body.endswith(b"data: [DONE]\n\n")
    assert chunks(body)[-1] == {"error": boom}
    assert text(b"".join(sse_events(body)[:-1])) == "ab"
    events = sse_events(chat(sim).content)
    assert text(b"".join(events[:2])) == "Hi"
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[2].decode()[6:])


def test_error_builder_defaults() -> None:
    assert error(401).body == read_wire("openai/error_401.json")
    assert json.loads(error(500).body)["error"]["type"] == "server_error"
    assert json.loads(error(404).body)["error"]["code"] == "model_not_found"
    assert error(429, "openai_compatible/azure/error_429.json").status == 429
    assert json.loads(error(418, {"error": {"message": "teapot"}}).body)["error"]["message"]


# --- the generic server ------------------------------------------------------------------------


def test_generic_server_with_a_callable_handler() -> None:
    def handler(request: Request) -> Reply:
        if request.path == "/boom":
            raise RuntimeError("handler bug")
        body = json.dumps({"q": request.query, "h": request.headers["X-THING"]}).encode()
        return Reply(201, {"content-type": "application/json"}, body)

    with Server(handler) as server:
        r = httpx.get(f"{server.base_url}/x?a=1&b=", headers={"x-thing": "yes"})
        assert (r.status_code, r.json()) == (201, {"q": {"a": "1", "b": ""}, "h": "yes"})
        r = httpx.get(f"{server.base_url}/boom")
        assert r.status_code == 500
        assert len(server.errors) == 1


@pytest.mark.asyncio
async def test_many_concurrent_streams() -> None:
    with OpenAISimulator(default=text_stream(["t"] * 50)) as sim:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(headers=AUTH, limits=limits) as client:

            async def one() -> str:
                r = await client.post(f"{sim.url}/chat/completions", json=STREAM)
                return text(r.content)

            results = await asyncio.gather(*(one() for _ in range(100)))
    assert results == ["t" * 50] * 100


def test_main_runs_in_a_separate_process() -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "synapsekit.testing.simulators.openai_protocol",
            "--port", "0", "--tokens", "50",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "simulator did not print its port"
        line = proc.stdout.readline()
        assert line.startswith("PORT ")
        url = f"http://127.0.0.1:{int(line.split()[1])}/v1/chat/completions"
        r = httpx.post(url, json=USAGE, headers=AUTH)
        data = chunks(r.content)
        assert text(r.content) == "".join(f" tok{i}" for i in range(50))
        assert data[-1]["usage"]["completion_tokens"] == 50
    finally:
        proc.terminate()
        proc.wait(timeout=10)
