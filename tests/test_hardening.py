"""Hardening: the faults a fault-injection run and real use found, each pinned by a test.

Every test drives the real SDK over real HTTP against the simulator of its wire protocol
(synapsekit/testing/simulators) and counts what the simulator saw: requests, connections,
disconnects.

- Gemini keeps every system message (all in ``systemInstruction``, in order).
- A lone surrogate in a prompt, a message or the system prompt is an InvalidInputError
  before any request, on all fifteen providers.
- No API key in any log record at DEBUG, the SDKs' own loggers included (botocore printed
  ``Authorization: Bearer <key>`` and the SigV4 session token).
- Cancelling a Bedrock stream whose response said ``Connection: close`` wakes the read.
- Every SDK client's pool holds 300 concurrent streams at once (httpx's default is 100).
- Off the event loop: the Bedrock client is built on a worker thread; a ledger opened in a
  running loop waits for another process's write lock on its writer thread, not the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import re
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from synapsekit import LLMConfig, make_llm
from synapsekit.errors import InvalidInputError, LedgerError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.providers.bedrock import BedrockConnection, BedrockLLM
from synapsekit.observability import CallRecord, read_ledger
from synapsekit.observability.ledger import Ledger
from synapsekit.testing.simulators.bedrock_protocol import EVENTSTREAM_TYPE, event
from synapsekit.testing.simulators.server import Reply, Server
from tests.sim_fixtures import aws_credentials
from tests.test_provider_bedrock import TLSProxy, no_worker_threads

#: A distinctive key, accepted by every simulator: it must show up in no log record.
KEY = "ABSKhardeningCanaryKey0123456789abcdefXYZ"
AWS_ID, AWS_SECRET = "AKIAHARDENINGTEST000", "hardening/secret/key/0123456789abcdef"
SESSION_TOKEN = "FwoGZXIvYXdzHardeningSessionTokenCanary0123456789"
BEDROCK_MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"

# protocol -> (simulator module, factory of a started-later simulator)
SIMULATORS: dict[str, tuple[str, Callable[[Any], Server]]] = {
    "openai": ("openai_protocol", lambda m: m.OpenAISimulator(KEY)),
    "azure": ("openai_protocol", lambda m: m.OpenAISimulator(KEY, auth="azure")),
    "anthropic": ("anthropic_protocol", lambda m: m.AnthropicSimulator(KEY)),
    "gemini": ("gemini_protocol", lambda m: m.GeminiSimulator(KEY)),
    "cohere": ("cohere_protocol", lambda m: m.CohereSimulator(KEY)),
    "mistral": ("mistral_protocol", lambda m: m.MistralSimulator(KEY)),
    "ollama": ("ollama_protocol", lambda m: m.OllamaSimulator(api_key=KEY)),
    "bedrock": ("bedrock_protocol",
                lambda m: m.BedrockSimulator({AWS_ID: AWS_SECRET}, api_keys=[KEY])),
    # Perplexity's Agent API (POST /v1/agent), answering "Hello, world!" as the others do
    "perplexity": ("perplexity_agent", lambda m: m.PerplexityAgentSimulator(
        KEY, default=m.text_stream(["Hello", ",", " world", "!"]))),
}
# (provider, model, protocol): all fifteen.
PROVIDERS = [
    ("openai", "gpt-4o-mini", "openai"),
    ("azure", "my-deployment", "azure"),
    ("groq", "llama-3.3-70b-versatile", "openai"),
    ("deepseek", "deepseek-chat", "openai"),
    ("openrouter", "meta-llama/llama-3.3-70b-instruct", "openai"),
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "openai"),
    ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct", "openai"),
    ("perplexity", "sonar", "perplexity"),
    ("cerebras", "llama3.1-8b", "openai"),
    ("anthropic", "claude-sonnet-4-6", "anthropic"),
    ("gemini", "gemini-2.5-flash", "gemini"),
    ("cohere", "command-a-03-2025", "cohere"),
    ("mistral", "mistral-small-latest", "mistral"),
    ("ollama", "llama3.2", "ollama"),
    ("bedrock", BEDROCK_MODEL, "bedrock"),
]
IDS = [p for p, _, _ in PROVIDERS]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[Server, Any]]]:
    started: dict[str, tuple[Server, Any]] = {}
    try:
        for name, (module_name, build) in SIMULATORS.items():
            module = importlib.import_module(f"synapsekit.testing.simulators.{module_name}")
            started[name] = (build(module).start(), module)
        yield started
    finally:
        for server, _ in started.values():
            server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Bedrock's SigV4 credentials through AWS's own chain (the environment)."""
    aws_credentials(monkeypatch, tmp_path, AWS_ID, AWS_SECRET)


def _sim(servers: dict[str, tuple[Server, Any]], protocol: str) -> tuple[Server, Any]:
    server, module = servers[protocol]
    server.reset()
    return server, module


def _llm(provider: str, model: str, server: Server, **fields: Any) -> BaseLLM:
    key = fields.pop("api_key", None if provider == "bedrock" else KEY)
    return make_llm(f"{provider}:{model}", api_key=key, base_url=server.base_url, **fields)


# --------------------------------------------------------------- Gemini system messages


async def test_gemini_sends_every_system_message_in_order(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    server, _ = _sim(servers, "gemini")
    llm = _llm("gemini", "gemini-2.5-flash", server, system_prompt="never used")
    answer = await llm.generate_with_messages([
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "hi"},
    ])
    assert answer == "Hello, world!"
    assert len(server.requests) == 1
    body = server.requests[0].json()
    system = body["systemInstruction"]
    assert [part["text"] for part in system["parts"]] == ["Be brief.", "Answer in French."]
    assert set(system) <= {"parts", "role"}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


async def test_gemini_system_prompt_alone_is_one_part(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    server, _ = _sim(servers, "gemini")
    await _llm("gemini", "gemini-2.5-flash", server, system_prompt="Be brief.").generate("hi")
    parts = server.requests[0].json()["systemInstruction"]["parts"]
    assert parts == [{"text": "Be brief."}]


# --------------------------------------------------------------- lone surrogates

SURROGATE_CASES: dict[str, tuple[Any, str | None, str]] = {
    # where: (messages, system_prompt, what the error names)
    "prompt": ("ab\ud800cd", None, "The prompt holds a lone surrogate '\\ud800' at position 2"),
    "message": (
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"},
         {"role": "user", "content": "x\udfffy"}],
        None,
        "messages[2] (user) content holds a lone surrogate '\\udfff' at position 1",
    ),
    "system_prompt": ("hi", "Be \udc80brief.", "system_prompt holds a lone surrogate "
                      "'\\udc80' at position 3"),
}


@pytest.mark.parametrize("where", list(SURROGATE_CASES))
@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_lone_surrogate_is_refused_before_any_request(
    provider: str, model: str, protocol: str, where: str,
    servers: dict[str, tuple[Server, Any]],
) -> None:
    server, _ = _sim(servers, protocol)
    messages, system_prompt, named = SURROGATE_CASES[where]
    llm = _llm(provider, model, server, system_prompt=system_prompt, max_retries=2)
    with pytest.raises(InvalidInputError) as err:
        await llm.generate_with_messages(messages)
    assert str(err.value).startswith(named)
    with pytest.raises(InvalidInputError):
        async for _ in llm.stream_chunks(messages):
            pass
    assert server.requests == []
    assert llm.tokens_used == {"input": 0, "output": 0}


async def test_text_outside_the_bmp_is_sent_unchanged(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    server, _ = _sim(servers, "openai")
    text = "naïve 😀 — 日本語 \U0001d518"  # astral characters are not surrogates
    await _llm("openai", "gpt-4o-mini", server, system_prompt="Sé breve.").generate(text)
    messages = server.requests[0].json()["messages"]
    assert [m["content"] for m in messages] == ["Sé breve.", text]


# --------------------------------------------------------------- no key in any log line

SDK_LOGGERS = ("openai", "anthropic", "httpx", "httpx2", "httpcore", "httpcore2", "cohere",
               "fern", "mistralai", "google_genai", "google", "ollama", "botocore", "boto3",
               "urllib3", "asyncio")


class _Capture(logging.Handler):
    """Every record, as a handler formats it and as its raw attributes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, f"{self.format(record)}\n{vars(record)!r}"))


@pytest.fixture
def debug_logs() -> Iterator[_Capture]:
    """DEBUG on the root logger and on every SDK logger, one capturing handler at the root."""
    root = logging.getLogger()
    capture = _Capture()
    saved = {name: logging.getLogger(name).level for name in SDK_LOGGERS}
    root_level = root.level
    root.setLevel(logging.DEBUG)
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(root_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _leaks(capture: _Capture, *secrets: str) -> list[tuple[str, str]]:
    return [(name, line[:400]) for name, line in capture.lines if any(s in line for s in secrets)]


@pytest.fixture(scope="module")
def tls(servers: dict[str, tuple[Server, Any]],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TLSProxy, Path]]:
    """HTTPS in front of the Bedrock simulator: botocore sends an API key only over TLS."""
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
    proxy = TLSProxy(servers["bedrock"][0].port, cert, key)
    yield proxy, cert
    proxy.stopped.set()


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_no_key_in_any_log_record(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]],
    debug_logs: _Capture, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, module = _sim(servers, protocol)
    monkeypatch.setenv("MISTRAL_DEBUG", "1")  # mistralai then logs every request's headers
    fields: dict[str, Any] = {}
    if provider == "bedrock":  # a Bedrock API key: bearer auth, which needs HTTPS
        proxy, cert = request.getfixturevalue("tls")
        monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
        fields = {"api_key": KEY, "base_url": f"https://127.0.0.1:{proxy.port}"}
    llm = make_llm(f"{provider}:{model}", api_key=fields.get("api_key", KEY),
                   base_url=fields.get("base_url", server.base_url))
    server.enqueue(module.error(500))  # an error on the way too: its log lines count
    with pytest.raises(Exception):  # noqa: B017 - the type is the parity walk's business
        await llm.generate("hi")
    assert await llm.generate("hi") == "Hello, world!"
    await llm.aclose()
    assert len(server.requests) == 2
    assert len(debug_logs.lines) >= 3  # the SDK's loggers did speak at DEBUG
    assert _leaks(debug_logs, KEY) == []


async def test_no_aws_session_token_in_botocore_logs(
    servers: dict[str, tuple[Server, Any]], debug_logs: _Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SigV4 credentials: botocore logs the signed headers and the canonical request, both
    holding X-Amz-Security-Token."""
    server, _ = _sim(servers, "bedrock")
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    llm = _llm("bedrock", BEDROCK_MODEL, server)
    assert await llm.generate("hi") == "Hello, world!"
    assert server.requests[0].headers["x-amz-security-token"] == SESSION_TOKEN
    names = {name for name, _ in debug_logs.lines}
    assert {"botocore.endpoint", "botocore.auth"} <= names
    assert _leaks(debug_logs, SESSION_TOKEN, AWS_SECRET) == []


# --------------------------------------------------------------- Bedrock cancel


async def test_bedrock_cancel_wakes_the_read_after_connection_close(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    """A reply with ``Connection: close``: http.client hands the socket to the response, so
    the connection no longer has it; cancelling must still wake the blocked read."""
    server, _ = _sim(servers, "bedrock")
    opening = [event("messageStart", {"role": "assistant"}),
               event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})]
    server.enqueue(Reply(200, {"content-type": EVENTSTREAM_TYPE}, stream=opening, hang=True,
                         close=True))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in _llm("bedrock", BEDROCK_MODEL, server, timeout=30).stream("hi"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    await asyncio.sleep(0.05)  # the worker is now blocked reading an event that never comes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Woken at once: the 30 s read timeout would be far beyond these waits.
    assert await server.wait_for_disconnects_async(1, timeout=3)
    assert await no_worker_threads(2)
    assert len(server.requests) == 1


# --------------------------------------------------------------- pool sizes

CONCURRENT = 300
POOL_CASES = [
    ("cohere", "command-a-03-2025", "cohere"),
    ("gemini", "gemini-2.5-flash", "gemini"),
    ("mistral", "mistral-small-latest", "mistral"),
    ("ollama", "llama3.2", "ollama"),
    ("anthropic", "claude-sonnet-4-6", "anthropic"),
]


def _first_token_then_hang(module: Any) -> Reply:
    """The protocol's answer up to and including its first token, then silence."""
    full: Reply = module.text_stream(["Tok0x", "Tok1x"])
    pieces = list(full.stream or ())
    first = next(i for i, piece in enumerate(pieces) if b"Tok0x" in piece)
    return dataclasses.replace(full, stream=pieces[: first + 1], hang=True)


@pytest.mark.parametrize(("provider", "model", "protocol"), POOL_CASES,
                         ids=[p for p, _, _ in POOL_CASES])
async def test_pool_holds_hundreds_of_concurrent_streams(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]],
) -> None:
    """One LLM object, 300 streams at once: every one is in flight at the same moment (the
    simulator holds 300 connections, each stream got its first token). With httpx's
    default pool (100 connections) the other 200 would wait for a free connection."""
    server, module = _sim(servers, protocol)
    server.enqueue(*[_first_token_then_hang(module)] * CONCURRENT)
    llm = _llm(provider, model, server, timeout=120)
    started = 0
    everyone = asyncio.Event()

    async def consume() -> None:
        nonlocal started
        async for token in llm.stream("hi"):
            assert token == "Tok0x"
            started += 1
            if started == CONCURRENT:
                everyone.set()

    tasks = [asyncio.create_task(consume()) for _ in range(CONCURRENT)]
    try:
        with contextlib.suppress(asyncio.TimeoutError):  # then the count below tells
            await asyncio.wait_for(everyone.wait(), 60)
        assert started == CONCURRENT
        assert len(server.requests) == CONCURRENT
        assert server.connections == CONCURRENT  # all open at once: none has ended
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await llm.aclose()
    assert await server.wait_for_disconnects_async(CONCURRENT, timeout=30)


REUSED = [case for case in POOL_CASES if case[0] != "cohere"]  # cohere: see the lead's notes


@pytest.mark.parametrize(("provider", "model", "protocol"), REUSED, ids=[p for p, _, _ in REUSED])
async def test_aclose_closes_the_pooled_connections(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]],
) -> None:
    """The clients we give the SDKs are closed with them (mistralai leaves a client it
    was given open): after aclose() the simulator holds no connection."""
    server, _ = _sim(servers, protocol)
    llm = _llm(provider, model, server)
    assert await llm.generate("hi") == "Hello, world!"
    assert _open_connections(server) == 1  # kept alive in the pool
    await llm.aclose()
    for _ in range(100):
        if _open_connections(server) == 0:
            break
        await asyncio.sleep(0.02)
    assert _open_connections(server) == 0


def _open_connections(server: Server) -> int:
    return len(server._open)  # the simulator's live connections (test-side code)


# --------------------------------------------------------------- off the event loop


async def test_bedrock_client_is_built_off_the_event_loop(
    servers: dict[str, tuple[Server, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, _ = _sim(servers, "bedrock")
    built_on: list[int] = []

    class ProbeConnection(BedrockConnection):
        def build(self) -> Any:
            built_on.append(threading.get_ident())
            return super().build()

    class Probe(BedrockLLM):
        connection_class = ProbeConnection

    llm = Probe(LLMConfig(model=BEDROCK_MODEL, base_url=server.base_url))
    assert llm.region == "us-east-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # read once: the client still agrees
    assert await llm.generate("hi") == "Hello, world!"
    assert await llm.generate("hi") == "Hello, world!"
    assert built_on and threading.get_ident() not in built_on
    assert len(built_on) == 1
    assert llm.region == "us-east-1"
    assert len(server.requests) == 2  # the simulator accepts only us-east-1 signatures


def _record(latency: float) -> CallRecord:
    return CallRecord(
        provider="openai", model="gpt-4o", input_tokens=1, output_tokens=2,
        cached_input_tokens=0, cache_write_tokens=0, reasoning_tokens=0,
        latency_ms=latency, ttft_ms=None, cache_hit=False, cost_usd=None, complete=True,
        error=None, timestamp=1.0,
    )


async def test_ledger_opened_in_a_loop_waits_for_the_lock_off_the_loop(tmp_path: Path) -> None:
    """Another process holds the write lock: opening (migrating) the ledger waits for it
    on the writer thread; the constructor returns while the lock is still held."""
    path = tmp_path / "calls.db"
    await asyncio.to_thread(lambda: Ledger(path).close())  # the file exists, in WAL mode
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a second process would hold it
    released = threading.Event()

    def release() -> None:
        holder.execute("COMMIT")
        released.set()

    timer = threading.Timer(1.5, release)
    timer.start()
    try:
        ledger = Ledger(path)  # on the loop: must not wait for the lock here
        assert not released.is_set()
        ledger.append(_record(7.0))
        await asyncio.to_thread(ledger.flush)
        assert released.is_set()
        ledger.close()
    finally:
        timer.cancel()
        timer.join()
        if not released.is_set():
            release()
        holder.close()
    assert [r.latency_ms for r in read_ledger(path)] == [7.0]


async def test_ledger_opened_in_a_loop_reports_an_unusable_file_at_flush(
    tmp_path: Path,
) -> None:
    path = tmp_path / "calls.db"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    ledger = Ledger(path)  # no file I/O on the loop: the writer thread finds it out
    ledger.append(_record(1.0))
    with pytest.raises(LedgerError, match=re.escape(str(path))):
        await asyncio.to_thread(ledger.flush)
    ledger.close()
    assert path.read_bytes().startswith(b"this is not a database")



def test_the_sharded_pools_share_one_tls_context_per_process() -> None:
    """Cohere and Ollama clients (httpx) spread connections over SHARDS pools, and a client
    is built per event loop: each pool loading the CA bundle itself made every
    ``asyncio.run(llm.generate(...))`` cost 1-1.5 s (found in the suite's durations)."""
    import httpx

    from synapsekit.llm.providers import _pool

    contexts = set()
    for _ in range(2):  # two clients, as two event loops build them
        transport = _pool.httpx_transport(httpx)
        contexts |= {id(shard._pool._ssl_context) for shard in transport._shards}
    assert len(transport._shards) == _pool.SHARDS > 1
    assert len(contexts) == 1
