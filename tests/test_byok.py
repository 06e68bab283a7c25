"""Per-call keys (BYOK): ``generate(p, api_key=..., base_url=...)`` through the real SDKs
over real HTTP, against the simulators.

What is checked, per provider (OpenAI, Anthropic, Gemini, Cohere, Mistral, Ollama): the
simulator sees the call's key on every request of that call and the LLM's own key on the
others; the key is in no log line (SDK loggers at DEBUG included), repr, error, trace or
SQLite cache row; two keys never share a cache entry, the same key twice does; the
rate limiter is scoped by the key; 100 calls with one per-call key use one SDK client;
the pool is bounded (LRU) and closed by ``aclose()``; bad per-call input is a ConfigError
before any request.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import AuthenticationError, ConfigError, LLMError
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.cache import MemoryCache, SQLiteCache
from synapsekit.llm.tools import tool
from synapsekit.observability.tracer import TokenTracer
from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator
from synapsekit.testing.simulators.bedrock_protocol import BedrockSimulator
from synapsekit.testing.simulators.cohere_protocol import CohereSimulator
from synapsekit.testing.simulators.gemini_protocol import GeminiSimulator
from synapsekit.testing.simulators.mistral_protocol import MistralSimulator
from synapsekit.testing.simulators.ollama_protocol import OllamaSimulator
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from synapsekit.testing.simulators.openai_protocol import text_stream as openai_text
from synapsekit.testing.simulators.server import Request, Server
from tests.test_provider_bedrock import TLSProxy

OWNER = "owner-key-0000000000000000"
ALICE = "alice-key-1111111111111111"
BOB = "bob-key-22222222222222222222"
STRANGER = "stranger-key-3333333333333333"


class AnyOf:
    """The simulators compare the presented key with their ``api_key``: this one accepts
    several (the LLM's own key and the users' keys), so one simulator serves them all."""

    def __init__(self, *keys: str) -> None:
        self.keys = frozenset(keys)

    def __eq__(self, other: object) -> bool:
        return other in self.keys

    def __ne__(self, other: object) -> bool:
        return other not in self.keys

    __hash__ = None  # type: ignore[assignment]


@tool
def clock() -> str:
    """The time."""
    return "noon"


def bearer(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


@dataclass(frozen=True)
class Case:
    name: str
    model: str
    start: Callable[[], Server]
    key_of: Callable[[Request], str]
    url: Callable[[Any], str]


CASES = [
    Case("openai", "gpt-4o-mini", lambda: OpenAISimulator(OWNER), bearer, lambda s: s.url),
    Case("anthropic", "claude-sonnet-4-6", lambda: AnthropicSimulator(OWNER),
         lambda r: r.headers.get("x-api-key") or bearer(r), lambda s: s.url),
    Case("gemini", "gemini-2.5-flash", lambda: GeminiSimulator(OWNER),
         lambda r: r.headers.get("x-goog-api-key") or r.query.get("key", ""), lambda s: s.url),
    Case("cohere", "command-a-03-2025", lambda: CohereSimulator(OWNER), bearer,
         lambda s: s.url),
    Case("mistral", "mistral-small-latest", lambda: MistralSimulator(OWNER), bearer,
         lambda s: s.url),
    Case("ollama", "ollama:llama3.2",
         lambda: OllamaSimulator(models=["llama3.2"], api_key=OWNER), bearer, lambda s: s.url),
]


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Case, Any]]:
    case: Case = request.param
    with case.start() as sim:
        yield case, sim


@pytest.fixture
def world(served: tuple[Case, Any]) -> Iterator[tuple[Case, Any]]:
    case, sim = served
    sim.api_key = AnyOf(OWNER, ALICE, BOB)
    sim.reset()
    yield case, sim
    sim.reset()


_made: list[BaseLLM] = []


@pytest.fixture(autouse=True)
async def _close() -> Any:
    yield
    while _made:
        await _made.pop().aclose()


def llm_of(case: Case, sim: Any, **fields: Any) -> BaseLLM:
    fields.setdefault("api_key", OWNER)
    llm = make_llm(case.model, base_url=case.url(sim), max_retries=0, **fields)
    _made.append(llm)
    return llm


def keys_seen(case: Case, sim: Any) -> list[str]:
    return [case.key_of(r) for r in sim.requests]


# ---------------------------------------------------------------------- the call's key


async def test_the_call_key_is_sent_for_that_call_only(world: tuple[Case, Any]) -> None:
    case, sim = world
    llm = llm_of(case, sim)
    assert await llm.generate("hi", api_key=ALICE) == "Hello, world!"
    assert await llm.generate("hi") == "Hello, world!"
    assert await llm.generate("hi", api_key=BOB) == "Hello, world!"
    assert keys_seen(case, sim) == [ALICE, OWNER, BOB]


async def test_every_entry_point_takes_the_call_key(world: tuple[Case, Any]) -> None:
    case, sim = world
    llm = llm_of(case, sim)
    turns = [{"role": "user", "content": "hi"}]
    assert "".join([t async for t in llm.stream("hi", api_key=ALICE)]) == "Hello, world!"
    assert "".join([t async for t in llm.stream_with_messages(turns, api_key=ALICE)])
    assert [c async for c in llm.stream_chunks(turns, api_key=ALICE)][-1].usage is not None
    assert await llm.generate_with_messages(turns, api_key=ALICE) == "Hello, world!"
    assert (await llm.respond(turns, api_key=ALICE)).text == "Hello, world!"
    answer = await llm.run_tools(turns, tools=[clock], api_key=ALICE)  # answers: no call
    assert answer.text == "Hello, world!"
    assert keys_seen(case, sim) == [ALICE] * 6


def test_sync_entry_points_take_the_call_key(world: tuple[Case, Any]) -> None:
    case, sim = world
    llm = llm_of(case, sim)
    assert llm.generate_sync("hi", api_key=ALICE) == "Hello, world!"
    assert "".join(llm.stream_sync("hi", api_key=BOB)) == "Hello, world!"
    assert llm.respond_sync("hi", api_key=ALICE).text == "Hello, world!"
    assert keys_seen(case, sim) == [ALICE, BOB, ALICE]
    llm.close()


async def test_structured_output_takes_the_call_key(openai_sim: OpenAISimulator) -> None:
    openai_sim.api_key = AnyOf(OWNER, ALICE)  # type: ignore[assignment]
    llm = make_llm("gpt-4o-mini", api_key=OWNER, base_url=openai_sim.url)
    _made.append(llm)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    openai_sim.enqueue(openai_text(['{"n": 7}']), openai_text(['{"n":', " 8}"]))
    assert await llm.generate_object("a number", schema=schema, api_key=ALICE) == {"n": 7}
    parts = [p async for p in llm.stream_object("a number", schema=schema, api_key=ALICE)]
    assert parts[-1] == {"n": 8}
    assert [bearer(r) for r in openai_sim.requests] == [ALICE, ALICE]


# ---------------------------------------------------------------------- no leak


async def test_the_call_key_leaks_nowhere(
    world: tuple[Case, Any], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    case, sim = world
    tracer = TokenTracer()
    path = tmp_path / "cache.db"
    llm = llm_of(case, sim, tracer=tracer, cache=SQLiteCache(str(path)))
    caplog.set_level(logging.DEBUG)  # the SDKs' own loggers (httpx, openai, ...) too
    assert await llm.generate("hi", api_key=ALICE) == "Hello, world!"
    with pytest.raises(AuthenticationError) as info:  # the simulator does not know it
        await llm.generate("hi", api_key=STRANGER)
    await llm._cache.flush()  # type: ignore[union-attr]
    assert keys_seen(case, sim) == [ALICE, STRANGER]
    shown = [
        caplog.text, repr(llm), str(llm.config), repr(llm.connection),
        str(info.value), repr(info.value), repr(info.value.__dict__),
        repr(tracer.records), repr(llm._pool.get(ALICE, llm.config.base_url)),
    ]
    rows = sqlite3.connect(path).execute("SELECT key, value FROM entries").fetchall()
    assert len(rows) == 1
    shown += [repr(row) for row in rows]
    for text in shown:
        for secret in (ALICE, STRANGER):
            assert secret not in text


# ---------------------------------------------------------------------- cache and limiter


async def test_two_keys_never_share_a_cache_entry_one_key_does(
    world: tuple[Case, Any],
) -> None:
    case, sim = world
    llm = llm_of(case, sim, cache=MemoryCache())
    for key in (ALICE, BOB, ALICE, BOB):
        assert await llm.generate("same question", api_key=key) == "Hello, world!"
    await llm.generate("same question")  # the LLM's own key: a scope of its own
    await llm.generate("same question")
    assert keys_seen(case, sim) == [ALICE, BOB, OWNER]
    assert llm.cache_stats == {"hits": 3, "misses": 3, "size": 3}


async def test_the_rate_limiter_is_scoped_by_the_call_key(world: tuple[Case, Any]) -> None:
    case, sim = world
    llm = llm_of(case, sim, requests_per_minute=1)
    await asyncio.wait_for(llm.generate("hi", api_key=ALICE), 5)
    await asyncio.wait_for(llm.generate("hi", api_key=BOB), 5)  # a bucket of its own
    await asyncio.wait_for(llm.generate("hi"), 5)
    with pytest.raises(asyncio.TimeoutError):  # ALICE's bucket is empty for a minute
        await asyncio.wait_for(llm.generate("hi", api_key=ALICE), 0.5)
    assert keys_seen(case, sim) == [ALICE, BOB, OWNER]


# ---------------------------------------------------------------------- the pool


async def test_one_client_for_a_hundred_calls_with_one_key(world: tuple[Case, Any]) -> None:
    case, sim = world
    llm = llm_of(case, sim)
    for _ in range(100):
        assert await llm.generate("hi", api_key=ALICE) == "Hello, world!"
    assert len(llm._pool) == 1
    pooled = llm._pool.get(ALICE, llm.config.base_url)
    assert pooled.open_clients == 1
    assert llm.connection.open_clients == 0  # the LLM's own client was never built
    assert keys_seen(case, sim) == [ALICE] * 100
    assert sim.connections == 1  # one client: its one keep-alive connection, reused
    await llm.aclose()
    assert pooled.open_clients == 0


async def test_concurrent_calls_with_one_key_share_its_client(
    world: tuple[Case, Any],
) -> None:
    case, sim = world
    llm = llm_of(case, sim)
    answers = await asyncio.gather(*[llm.generate("hi", api_key=ALICE) for _ in range(20)])
    assert answers == ["Hello, world!"] * 20
    assert len(llm._pool) == 1
    assert keys_seen(case, sim) == [ALICE] * 20


async def test_the_pool_is_a_bounded_lru_closing_what_it_evicts(
    openai_sim: OpenAISimulator,
) -> None:
    keys = [f"user-key-{i}-000000000000" for i in range(4)]
    openai_sim.api_key = AnyOf(OWNER, *keys)  # type: ignore[assignment]
    llm = make_llm("gpt-4o-mini", api_key=OWNER, base_url=openai_sim.url)
    _made.append(llm)
    llm._pool.size = 2
    first = None
    for key in keys[:2]:
        await llm.generate("hi", api_key=key)
    first = next(iter(llm._pool._entries.values())).connection
    assert first.api_key == keys[0] and first.open_clients == 1
    await llm.generate("hi", api_key=keys[0])  # used again: now the most recent
    await llm.generate("hi", api_key=keys[2])  # evicts keys[1], the least recent
    assert [e.connection.api_key for e in llm._pool._entries.values()] == [keys[0], keys[2]]
    assert first.open_clients == 1
    await llm.generate("hi", api_key=keys[3])  # evicts keys[0]: its client is closed
    assert first.open_clients == 0
    assert len(llm._pool) == 2


async def test_a_leased_connection_is_not_evicted_mid_stream(
    openai_sim: OpenAISimulator,
) -> None:
    keys = [f"user-key-{i}-000000000000" for i in range(3)]
    openai_sim.api_key = AnyOf(OWNER, *keys)  # type: ignore[assignment]
    llm = make_llm("gpt-4o-mini", api_key=OWNER, base_url=openai_sim.url)
    _made.append(llm)
    llm._pool.size = 1
    stream = llm.stream("hi", api_key=keys[0])
    assert await stream.__anext__() == "Hello"
    await llm.generate("hi", api_key=keys[1])
    await llm.generate("hi", api_key=keys[2])  # keys[0] is held: the pool grows, for now
    assert "".join([t async for t in stream]) == ", world!"
    await llm.generate("hi", api_key=keys[2])
    assert len(llm._pool) == 1


# ---------------------------------------------------------------------- base_url per call


async def test_base_url_per_call_reaches_that_endpoint() -> None:
    with OllamaSimulator(models=["llama3.2"]) as one, OllamaSimulator(models=["llama3.2"]) as two:
        llm = make_llm("ollama:llama3.2", base_url=one.url)
        _made.append(llm)
        assert await llm.generate("hi") == "Hello, world!"
        assert await llm.generate("hi", base_url=two.url) == "Hello, world!"
        assert await llm.generate("hi", base_url=two.url) == "Hello, world!"
        assert (len(one.requests), len(two.requests)) == (1, 2)
        assert len(llm._pool) == 1


async def test_base_url_per_call_scopes_the_cache() -> None:
    with OllamaSimulator(models=["llama3.2"]) as one, OllamaSimulator(models=["llama3.2"]) as two:
        llm = make_llm("ollama:llama3.2", base_url=one.url, cache=MemoryCache())
        _made.append(llm)
        for url in (one.url, two.url, one.url, two.url):
            await llm.generate("cache me", base_url=url)
        assert (len(one.requests), len(two.requests)) == (1, 1)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"api_key": 12345}, "must be a string, not int"),
        ({"api_key": b"bytes-key-0000000000"}, "must be a string, not bytes"),
        ({"api_key": ""}, "must not be empty"),
        ({"api_key": "   "}, "must not be empty"),
        ({"api_key": None}, "must be a string, not NoneType"),
        ({"base_url": "api.example.com/v1"}, "has no scheme"),
        ({"base_url": "ftp://example.com"}, "scheme 'ftp'"),
        ({"budget": 5.0}, "must be a synapsekit Budget"),
    ],
)
async def test_bad_per_call_input_is_a_config_error_before_any_request(
    openai_sim: OpenAISimulator, overrides: dict[str, Any], message: str
) -> None:
    openai_sim.api_key = OWNER
    llm = make_llm("gpt-4o-mini", api_key=OWNER, base_url=openai_sim.url)
    _made.append(llm)
    with pytest.raises(ConfigError, match=message) as info:
        await llm.generate("hi", **overrides)
    assert "bytes-key" not in str(info.value)
    with pytest.raises(ConfigError, match=message):
        [t async for t in llm.stream("hi", **overrides)]
    assert openai_sim.requests == []


async def test_a_wrong_per_call_key_is_the_providers_auth_error(
    world: tuple[Case, Any],
) -> None:
    case, sim = world
    llm = llm_of(case, sim)
    with pytest.raises(LLMError) as info:
        await llm.generate("hi", api_key=STRANGER)
    assert isinstance(info.value, AuthenticationError) or info.value.status_code in (400, 403)
    assert STRANGER not in str(info.value)
    assert await llm.generate("hi") == "Hello, world!"  # the LLM's own key is untouched
    assert keys_seen(case, sim) == [STRANGER, OWNER]


# ---------------------------------------------------------------------- Bedrock


@pytest.fixture
def bedrock_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[BedrockSimulator, str]]:
    """A Bedrock simulator behind TLS (botocore sends a Bedrock API key over HTTPS only)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    for name in ("AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    with BedrockSimulator(api_keys=[BEDROCK_OWNER, BEDROCK_ALICE]) as sim:
        proxy = TLSProxy(sim.port, cert, key)
        yield sim, f"https://127.0.0.1:{proxy.port}"
        proxy.stopped.set()


BEDROCK_OWNER = "ABSKb3duZXIta2V5LTAwMDAwMDAwMDAwMDAwMDA="
BEDROCK_ALICE = "ABSKYWxpY2Uta2V5LTExMTExMTExMTExMTExMTE="


async def test_bedrock_takes_a_per_call_bedrock_api_key(
    bedrock_tls: tuple[BedrockSimulator, str], caplog: pytest.LogCaptureFixture
) -> None:
    sim, url = bedrock_tls
    llm = make_llm("us.anthropic.claude-3-5-haiku-20241022-v1:0", api_key=BEDROCK_OWNER,
                   base_url=url, max_retries=0)
    _made.append(llm)
    caplog.set_level(logging.DEBUG)  # botocore logs every request's headers at DEBUG
    for key in (BEDROCK_ALICE, None, BEDROCK_ALICE):
        overrides = {} if key is None else {"api_key": key}
        assert await llm.generate("hi", **overrides) == "Hello, world!"
    assert [r.headers["authorization"] for r in sim.requests] == [
        f"Bearer {BEDROCK_ALICE}", f"Bearer {BEDROCK_OWNER}", f"Bearer {BEDROCK_ALICE}"]
    assert len(llm._pool) == 1
    assert BEDROCK_ALICE not in caplog.text
