"""BedrockLLM: the real boto3 over real HTTP against the local ConverseStream simulator.

Credentials and region come from the environment (set with monkeypatch.setenv: that is the
AWS credential chain doing its normal work, not SDK patching). The simulator verifies every
SigV4 signature with the secret below and only accepts the region the environment names.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapsekit import LLMConfig, make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionError,
    ContentFilterError,
    ContextLengthError,
    InvalidRequestError,
    LLMError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    TimeoutError,
)
from synapsekit.llm.providers.bedrock import BedrockLLM
from synapsekit.llm.types import Chunk, ToolCall, Usage
from synapsekit.testing.simulators.bedrock_protocol import (
    EVENTSTREAM_TYPE,
    BedrockSimulator,
    capture,
    decode_messages,
    encode_message,
    error,
    event,
    malformed,
    stream_exception,
    text_stream,
)
from synapsekit.testing.simulators.server import Reply
from synapsekit.testing.simulators.wire import read_wire
from tests.sim_fixtures import aws_credentials

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
ACCESS_KEY = "AKIASYNAPSEKITTEST01"
SECRET_KEY = "bedrock-test-secret-key-0123456789abcdefgh"
API_KEY = "ABSKQmVkcm9ja0FQSUtleS1zeW5hcHNla2l0LXRlc3Q="
REGION = "us-west-2"
WORKER = "synapsekit-bedrock"


@pytest.fixture(scope="module")
def sim() -> Iterator[BedrockSimulator]:
    with BedrockSimulator({ACCESS_KEY: SECRET_KEY}, api_keys=[API_KEY], region=REGION) as server:
        yield server


@pytest.fixture(autouse=True)
def aws_env(
    sim: BedrockSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    aws_credentials(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY, REGION)
    sim.reset()
    yield
    assert not sim.errors


def llm_for(sim: BedrockSimulator, model: str = MODEL, **fields: Any) -> BedrockLLM:
    llm = make_llm(model, base_url=sim.url, **fields)
    assert isinstance(llm, BedrockLLM)
    return llm


async def chunks_of(llm: BedrockLLM, prompt: Any = "hi", **overrides: Any) -> list[Chunk]:
    return [c async for c in llm.stream_chunks(prompt, **overrides)]


def jsonl(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read_wire(f"bedrock/{name}.jsonl").splitlines()]


def deltas(name: str, kind: str) -> str:
    out = []
    for message in jsonl(name):
        delta = (message["payload"] or {}).get("delta", {})
        part = delta.get("text") if kind == "text" else delta.get("reasoningContent", {})
        out.append(part if kind == "text" else part.get("text"))
    return "".join(p for p in out if p)


async def no_worker_threads(timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith(WORKER)]:
            return True
        await asyncio.sleep(0.02)
    return False


# --- the event-stream encoding of the simulator ----------------------------------------------


VECTORS = json.loads(read_wire("bedrock/eventstream_test_vectors.json"))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_encoder_reproduces_official_vectors(vector: dict[str, Any]) -> None:
    headers = {
        name: (h["type"], h.get("value", h.get("value_utf8")))
        for name, h in vector["headers"].items()
    }
    assert encode_message(headers, vector["payload_utf8"].encode()).hex() == vector["hex"]


@pytest.mark.parametrize(
    "name", ["stream_ok", "stream_reasoning", "stream_tool_call_synthetic",
             "stream_error_throttling"]
)
def test_jsonl_reencodes_to_the_capture_byte_for_byte(name: str) -> None:
    binary = read_wire(f"bedrock/{name}.eventstream")
    assert b"".join(capture(f"bedrock/{name}.jsonl").stream or []) == binary
    assert decode_messages(binary) == jsonl(name)


# --- streaming and usage -----------------------------------------------------------------------


async def test_stream_ok_capture_text_usage_and_request(sim: BedrockSimulator) -> None:
    sim.enqueue(capture("bedrock/stream_ok.eventstream"))
    llm = llm_for(sim)
    chunks = await chunks_of(llm)
    text = "".join(c.text for c in chunks)
    assert text == deltas("stream_ok", "text")
    assert text.endswith('There are **3** r\'s in "strawberry."')
    assert chunks[-1].usage == Usage(input_tokens=22, output_tokens=55)
    assert chunks[-1].finish_reason == "stop"
    assert llm.tokens_used == {"input": 22, "output": 55}
    [request] = sim.requests
    assert request.path == "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream"
    assert BedrockSimulator.model_id(request) == MODEL
    assert request.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"
    )
    assert f"/{REGION}/bedrock/aws4_request" in request.headers["authorization"]
    assert request.headers["amz-sdk-request"] == "attempt=1; max=1"  # SDK retries are off


async def test_reasoning_capture_keeps_thinking_out_of_the_answer(sim: BedrockSimulator) -> None:
    sim.enqueue(capture("bedrock/stream_reasoning.eventstream"))
    chunks = await chunks_of(llm_for(sim))
    reasoning = "".join(c.reasoning for c in chunks)
    assert reasoning == deltas("stream_reasoning", "reasoning")
    assert reasoning.startswith("Let me count the r's in \"strawberry\":")
    assert "".join(c.text for c in chunks) == deltas("stream_reasoning", "text")
    assert chunks[-1].usage == Usage(input_tokens=51, output_tokens=94)
    sim.enqueue(capture("bedrock/stream_reasoning.eventstream"))
    assert await llm_for(sim).generate("hi") == deltas("stream_reasoning", "text")


async def test_tool_call_capture_usage_before_message_stop(sim: BedrockSimulator) -> None:
    sim.enqueue(capture("bedrock/stream_tool_call_synthetic.eventstream"))
    chunks = await chunks_of(llm_for(sim))
    assert "".join(c.text for c in chunks) == ""  # the call, not text (tests/test_bedrock_tools)
    assert [c.tool_call for c in chunks if c.tool_call] == [
        ToolCall(id="tool-use-id", name="test-tool", arguments={"value": "Sparkle Day"})
    ]
    assert chunks[-1].usage == Usage(input_tokens=125, output_tokens=45)
    assert chunks[-1].finish_reason == "tool_calls"


async def test_synthesised_stream_with_cache_usage(sim: BedrockSimulator) -> None:
    # inputTokens=3 excludes the 32 cache reads and 5 cache writes: the prompt is 40.
    sim.enqueue(text_stream(["Bon", "jour"], input_tokens=3, output_tokens=2, cache_read=32,
                            cache_write=5))
    chunks = await chunks_of(llm_for(sim))
    assert [c.text for c in chunks[:-1]] == ["Bon", "jour"]
    assert chunks[-1].usage == Usage(
        input_tokens=40, output_tokens=2, cached_input_tokens=32, cache_write_tokens=5
    )


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("max_tokens", "length"), ("stop_sequence", "stop"), ("end_turn", "stop")],
)
async def test_stop_reasons(sim: BedrockSimulator, stop_reason: str, finish: str) -> None:
    sim.enqueue(text_stream(["a"], stop_reason=stop_reason))
    chunks = await chunks_of(llm_for(sim))
    assert chunks[-1].finish_reason == finish


async def test_guardrail_stop_is_a_content_filter_error(sim: BedrockSimulator) -> None:
    sim.enqueue(text_stream([], stop_reason="guardrail_intervened"))
    with pytest.raises(ContentFilterError):
        await llm_for(sim).generate("hi")


async def test_missing_metadata_marks_usage_incomplete(sim: BedrockSimulator) -> None:
    sim.enqueue(text_stream(["ok"], metadata=False))
    chunks = await chunks_of(llm_for(sim))
    assert chunks[-1].usage == Usage(complete=False)


async def test_generate_equals_joined_stream(sim: BedrockSimulator) -> None:
    tokens = ["The", " answer", " is", " 42", "."]
    sim.enqueue(text_stream(tokens), text_stream(tokens))
    llm = llm_for(sim)
    streamed = [t async for t in llm.stream("q")]
    assert streamed == tokens
    assert await llm.generate("q") == "".join(streamed) == "The answer is 42."
    assert llm.tokens_used == {"input": 20, "output": 10}
    assert len(sim.requests) == 2


async def test_multi_turn_request_body(sim: BedrockSimulator) -> None:
    llm = llm_for(sim, max_tokens=77, temperature=0.5, stop=["END"], params={"top_k": 5})
    turns = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "Count: 1, 2"},
    ]
    assert await llm.generate_with_messages(turns) == "Hello, world!"
    body = sim.requests[0].json()
    assert body == {
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"text": "Bonjour"}]},
            {"role": "user", "content": [{"text": "Count: 1, 2"}]},
        ],
        "system": [{"text": "Answer in French."}],
        "inferenceConfig": {"maxTokens": 77, "temperature": 0.5, "stopSequences": ["END"]},
        "additionalModelRequestFields": {"top_k": 5},
    }
    await llm_for(sim, system_prompt=None).generate("plain")
    assert sim.requests[1].json() == {
        "messages": [{"role": "user", "content": [{"text": "plain"}]}],
        "inferenceConfig": {"maxTokens": 1024, "temperature": 0.2},
    }


@pytest.mark.parametrize(
    "model",
    [
        "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "apac.amazon.nova-pro-v1:0",
        "meta.llama3-1-70b-instruct-v1:0",
        "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.amazon.nova-lite-v1:0",
    ],
)
async def test_model_ids_pass_through_unchanged(sim: BedrockSimulator, model: str) -> None:
    llm = BedrockLLM(LLMConfig(model=model, base_url=sim.url))
    assert await llm.generate("hi") == "Hello, world!"
    assert BedrockSimulator.model_id(sim.requests[0]) == model


async def test_extra_headers_are_sent_and_signed(sim: BedrockSimulator) -> None:
    llm = llm_for(sim, headers={"X-Trace-Id": "trace-7"})
    assert await llm.generate("hi") == "Hello, world!"  # the simulator verified the signature
    request = sim.requests[0]
    assert request.headers["x-trace-id"] == "trace-7"
    assert "x-trace-id" in request.headers["authorization"]


async def test_event_loop_is_not_blocked(sim: BedrockSimulator) -> None:
    sim.enqueue(text_stream(["a", "b", "c", "d"], delay=0.04))  # 8 messages: ~0.3 s
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        assert await llm_for(sim).generate("hi") == "abcd"
    finally:
        task.cancel()
    assert ticks >= 12  # a blocking read on the loop would starve the ticker


# --- region and credentials --------------------------------------------------------------------


async def test_aws_region_wins_over_default_region(
    sim: BedrockSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    llm = llm_for(sim)
    assert llm.region == "eu-central-1"
    with pytest.raises(AuthenticationError) as info:  # signed for the wrong region
        await llm.generate("hi")
    assert info.value.code == "InvalidSignatureException"
    assert "/eu-central-1/bedrock/" in sim.requests[0].headers["authorization"]


def test_region_defaults_to_us_east_1(
    sim: BedrockSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert llm_for(sim).region == "us-east-1"


async def test_unknown_access_key_is_an_authentication_error(
    sim: BedrockSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    with pytest.raises(AuthenticationError) as info:
        await llm_for(sim, max_retries=3).generate("hi")
    exc = info.value
    assert exc.status_code == 403
    assert exc.code == "UnrecognizedClientException"
    assert exc.message == json.loads(read_wire("bedrock/error_401.json"))["message"]
    assert exc.request_id == sim.request_ids[0]
    assert SECRET_KEY not in str(exc)
    assert len(sim.requests) == 1  # never retried, by us or the SDK


async def test_wrong_secret_fails_the_signature(
    sim: BedrockSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-at-all-000000000000000")
    with pytest.raises(AuthenticationError) as info:
        await llm_for(sim).generate("hi")
    assert info.value.code == "InvalidSignatureException"
    assert "not-the-secret" not in str(info.value)


async def test_no_credentials_is_a_config_error(
    sim: BedrockSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(MissingAPIKeyError, match="AWS_ACCESS_KEY_ID"):
        await llm_for(sim).generate("hi")
    assert sim.requests == []


async def test_api_key_needs_https(sim: BedrockSimulator) -> None:
    with pytest.raises(ConfigError, match="HTTPS"):
        await llm_for(sim, api_key=API_KEY).generate("hi")
    assert sim.requests == []


class TLSProxy:
    """Terminates TLS on a local port and forwards the bytes to the plain-HTTP simulator, so the
    bearer path (which botocore only allows over HTTPS) reaches the simulator unchanged."""

    def __init__(self, target: int, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, name="tls-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
        self.listener.close()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", self.target))
        threading.Thread(target=self._pump, args=(upstream, tls), daemon=True).start()
        self._pump(tls, upstream)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture(scope="module")
def tls_proxy(sim: BedrockSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    proxy = TLSProxy(sim.port, cert, key)
    yield proxy, cert
    proxy.stopped.set()


async def test_api_key_is_sent_as_bearer_token(
    sim: BedrockSimulator, tls_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, cert = tls_proxy
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    url = f"https://127.0.0.1:{proxy.port}"
    llm = make_llm(MODEL, api_key=API_KEY, base_url=url)
    assert await llm.generate("hi") == "Hello, world!"
    assert sim.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    bad = "ABSKbm90LXRoZS1rZXktMDAwMDAwMDAwMDAwMDAwMDA="
    with pytest.raises(AuthenticationError) as info:
        await make_llm(MODEL, api_key=bad, base_url=url).generate("hi")
    assert info.value.status_code == 403
    assert bad not in str(info.value)


# --- errors ------------------------------------------------------------------------------------


async def test_rate_limit_with_retry_after(sim: BedrockSimulator) -> None:
    sim.enqueue(error(429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitError) as info:
        await llm_for(sim).generate("hi")
    exc = info.value
    assert exc.retry_after == 7.0
    assert exc.code == "ThrottlingException"
    assert exc.status_code == 429
    assert exc.message == json.loads(read_wire("bedrock/error_429.json"))["message"]
    assert exc.request_id == sim.request_ids[0]
    assert len(sim.requests) == 1


async def test_rate_limit_then_success_with_one_retry(sim: BedrockSimulator) -> None:
    sim.enqueue(error(429, headers={"Retry-After": "0"}), text_stream(["ok"], input_tokens=3))
    llm = llm_for(sim, max_retries=1)
    assert await llm.generate("hi") == "ok"
    assert len(sim.requests) == 2
    assert llm.tokens_used == {"input": 3, "output": 1}


@pytest.mark.parametrize(
    ("status", "code", "message", "cls"),
    [
        (500, "InternalServerException", None, ServerError),
        (503, "ServiceUnavailableException", None, ServerError),
        # Status first: a 429 is a rate limit whatever the code says (both are retried).
        (429, "ModelNotReadyException", "Model is not ready.", RateLimitError),
        (424, "ModelErrorException", None, ServerError),
        (400, "ValidationException", "The provided model identifier is invalid.",
         InvalidRequestError),
        (400, "ValidationException", "Input is too long for requested model.",
         ContextLengthError),
        (404, "ResourceNotFoundException", None, NotFoundError),
        (408, "ModelTimeoutException", None, TimeoutError),
        (403, "AccessDeniedException", "You don't have access to the model.",
         PermissionDeniedError),
    ],
)
async def test_http_errors_map_by_code(
    sim: BedrockSimulator, status: int, code: str, message: str | None, cls: type[LLMError]
) -> None:
    sim.enqueue(error(status, code, message))
    with pytest.raises(LLMError) as info:
        await llm_for(sim).generate("hi")
    assert type(info.value) is cls
    assert (info.value.status_code, info.value.code) == (status, code)
    assert info.value.request_id == sim.request_ids[0]
    assert len(sim.requests) == 1


async def test_rejected_body_is_an_invalid_request(sim: BedrockSimulator) -> None:
    with pytest.raises(InvalidRequestError, match="start with a user message"):
        await llm_for(sim).generate_with_messages([{"role": "assistant", "content": "hi"}])


async def test_in_stream_exception_capture(sim: BedrockSimulator) -> None:
    sim.enqueue(capture("bedrock/stream_error_throttling.eventstream"))
    with pytest.raises(RateLimitError) as info:
        await llm_for(sim).generate("hi")
    assert info.value.code == "throttlingException"
    assert info.value.message.startswith("Too many requests, please wait before trying again.")
    assert info.value.request_id == sim.request_ids[0]


async def test_in_stream_exception_after_tokens_interrupts(sim: BedrockSimulator) -> None:
    sim.enqueue(stream_exception("internalServerException", "boom", tokens_before=["Hel", "lo"]))
    with pytest.raises(StreamInterruptedError) as info:  # stream(): never retried after tokens
        [t async for t in llm_for(sim, max_retries=2).stream("hi")]
    assert info.value.partial_text == "Hello"
    assert isinstance(info.value.__cause__, ServerError)
    assert len(sim.requests) == 1


async def test_cut_mid_stream_after_tokens(sim: BedrockSimulator) -> None:
    sim.enqueue(text_stream(["one", " two", " three"], cut_after=3))  # messageStart + 2 tokens
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        async for token in llm_for(sim, max_retries=2).stream("hi"):
            received.append(token)
    assert info.value.partial_text == "one two" == "".join(received)
    assert info.value.usage is not None and info.value.usage.complete is False
    assert len(sim.requests) == 1


async def test_cut_before_any_token_is_a_connection_error(sim: BedrockSimulator) -> None:
    sim.enqueue(text_stream(["never"], cut_after=1))
    with pytest.raises(ConnectionError):
        await llm_for(sim, max_retries=0).generate("hi")
    assert len(sim.requests) == 1


async def test_clean_end_without_message_stop_is_a_connection_error(
    sim: BedrockSimulator,
) -> None:
    pieces = [event("messageStart", {"role": "assistant"})]
    sim.enqueue(Reply(200, {"content-type": EVENTSTREAM_TYPE}, stream=pieces))
    with pytest.raises(ConnectionError, match="messageStop"):
        await llm_for(sim).generate("hi")


async def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ConnectionError):
        await make_llm(MODEL, base_url=f"http://127.0.0.1:{port}", timeout=2).generate("hi")


async def test_malformed_frame_is_a_server_error(sim: BedrockSimulator) -> None:
    sim.enqueue(malformed(tokens_before=()))
    with pytest.raises(ServerError, match="malformed"):
        await llm_for(sim).generate("hi")


async def test_hang_after_headers_times_out(sim: BedrockSimulator) -> None:
    sim.enqueue(Reply(200, {"content-type": EVENTSTREAM_TYPE}, hang=True))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await llm_for(sim, timeout=0.3).generate("hi")
    assert time.monotonic() - started < 2
    assert await no_worker_threads()


async def test_no_response_headers_times_out(sim: BedrockSimulator) -> None:
    # 1 s, not less: building a first boto3 client can take 0.3 s on a loaded machine, and
    # then the deadline passed before the request was sent (no request seen)
    sim.enqueue(Reply(200, {"content-type": "application/json"}, b"{}", delay=4))
    with pytest.raises(TimeoutError):
        await llm_for(sim, timeout=1.0).generate("hi")
    assert len(sim.requests) == 1


# --- leaving early -----------------------------------------------------------------------------


async def test_break_closes_the_connection_and_the_worker(sim: BedrockSimulator) -> None:
    sim.enqueue(text_stream([f" t{i}" for i in range(100)], delay=0.02))
    received = []
    async for token in llm_for(sim).stream("hi"):
        received.append(token)
        break
    assert received == [" t0"]
    assert await sim.wait_for_disconnects_async(1, timeout=3)
    assert await no_worker_threads()
    assert len(sim.requests) == 1


async def test_cancel_wakes_the_blocked_read(sim: BedrockSimulator) -> None:
    opening = [event("messageStart", {"role": "assistant"}),
               event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})]
    sim.enqueue(Reply(200, {"content-type": EVENTSTREAM_TYPE}, stream=opening, hang=True))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in llm_for(sim, timeout=30).stream("hi"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    await asyncio.sleep(0.05)  # the worker is now blocked reading an event that never comes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.monotonic()
    assert await sim.wait_for_disconnects_async(1, timeout=3)
    assert time.monotonic() - started < 1  # woken at once, not after the 30 s read timeout
    assert await no_worker_threads(1)
