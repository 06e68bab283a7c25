"""Issue 11, items 1 and 6: SynapseKit's documented API as documented, and bad input named.

Every provider runs its real SDK over real HTTP against its protocol's simulator (the
servers and the AWS environment are test_parity's). Nothing here patches an SDK.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import synapsekit
import synapsekit.llm
from synapsekit import RAG, BaseLLM, LLMConfig, TokenTracer, detect_provider, make_llm
from synapsekit.errors import (
    CacheError,
    ConfigError,
    InvalidInputError,
    MissingAPIKeyError,
    RateLimitError,
    UnsupportedFileError,
)
from synapsekit.llm.models import UnsupportedParameterWarning
from synapsekit.llm.registry import PROVIDERS as REGISTRY
from synapsekit.llm.types import Chunk, Usage
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from synapsekit.testing.simulators.server import Server
from tests import test_parity
from tests.test_parity import IDS, KEY, PROVIDERS, _setup

# test_parity's fixtures: every protocol's simulator, and AWS credentials by environment.
servers = test_parity.servers
aws_env = test_parity.aws_env

PAGE_ORDER = [
    "model", "api_key", "provider", "system_prompt", "temperature", "max_tokens", "cache",
    "cache_maxsize", "cache_backend", "max_retries", "retry_delay", "requests_per_minute",
]


def _clear_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in REGISTRY.values():
        for var in spec.env_vars:
            monkeypatch.delenv(var, raising=False)
        if spec.base_url_env:
            monkeypatch.delenv(spec.base_url_env, raising=False)


# ----------------------------------------------------------------- LLMConfig


def test_positional_order_is_the_pages() -> None:
    names = [f.name for f in dataclasses.fields(LLMConfig)]
    assert names[:12] == PAGE_ORDER
    cfg = LLMConfig("gpt-4o-mini", "sk-k", "openai", "Be brief.", 0.5, 64, True, 7, "memory",
                    2, 0.5, 100)
    assert (cfg.system_prompt, cfg.base_url, cfg.temperature, cfg.max_tokens) == (
        "Be brief.", None, 0.5, 64)
    assert (cfg.cache, cfg.cache_maxsize, cfg.max_retries, cfg.requests_per_minute) == (
        True, 7, 2, 100)
    # every field the code had before is still there, after the page's twelve
    for name in ("base_url", "cache_ttl", "cache_path", "cache_namespace", "tokens_per_minute",
                 "timeout", "headers", "params", "stop", "api_version", "base_model", "top_p",
                 "rate_limit_backend", "redis_url"):
        assert name in names[12:]


async def test_positional_config_sends_its_system_prompt(
    openai_sim: OpenAISimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_sim.url)
    llm = make_llm(LLMConfig("gpt-4o-mini", "sk-test-key-0123456789", "openai", "Be brief."))
    assert await llm.generate("hi") == "Hello, world!"
    body = openai_sim.requests[0].json()
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(("typo", "meant"), [
    ("temprature", "temperature"), ("max_token", "max_tokens"), ("sytem_prompt", "system_prompt"),
    ("cache_db_pth", "cache_db_path"),
])
def test_unknown_field_is_a_config_error_with_did_you_mean(typo: str, meant: str) -> None:
    with pytest.raises(ConfigError, match=f"'{typo}'; did you mean '{meant}'") as info:
        LLMConfig(model="gpt-4o-mini", **{typo: 1})
    assert isinstance(info.value, ValueError) and not isinstance(info.value, TypeError)
    with pytest.raises(ConfigError, match=f"did you mean '{meant}'"):
        make_llm("gpt-4o-mini", api_key="k", **{typo: 1})
    with pytest.raises(ConfigError, match=f"did you mean '{meant}'"):
        dataclasses.replace(LLMConfig(model="m"), **{typo: 1})


def test_other_constructor_mistakes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="model: required"):
        LLMConfig()  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="both by position and by keyword"):
        LLMConfig("m", model="n")  # type: ignore[misc]
    with pytest.raises(ConfigError, match="positional"):
        LLMConfig(*["m"] * 40)
    with pytest.raises(ConfigError, match=r"unknown field 'zzz'\. ") as info:
        LLMConfig(model="m", zzz=1)  # type: ignore[call-arg]
    assert "did you mean" not in str(info.value)


def test_top_p_timeout_none_and_cache_db_path() -> None:
    cfg = LLMConfig(model="m", top_p=0.9, timeout=None, cache_db_path="/tmp/c.db")
    assert (cfg.top_p, cfg.timeout, cfg.cache_path) == (0.9, None, "/tmp/c.db")
    assert dataclasses.replace(cfg, cache_path="/tmp/d.db").cache_path == "/tmp/d.db"
    assert dataclasses.replace(cfg, max_tokens=5).cache_path == "/tmp/c.db"
    with pytest.raises(ConfigError, match="alias of cache_path"):
        LLMConfig(model="m", cache_path="a.db", cache_db_path="b.db")
    for bad in (1.5, -0.1, "0.9"):
        with pytest.raises(ConfigError, match="top_p"):
            LLMConfig(model="m", top_p=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="top_p"):
        LLMConfig(model="m", top_p=0.5, params={"top_p": 0.4})
    with pytest.raises(ConfigError, match="timeout"):
        LLMConfig(model="m", timeout=0)


def _top_p_sent(provider: str, body: dict[str, Any]) -> Any:
    if provider == "gemini":
        return body.get("generationConfig", {}).get("topP")
    if provider == "cohere":
        return body.get("p")
    if provider == "ollama":
        return body.get("options", {}).get("top_p")
    if provider == "bedrock":
        return body.get("inferenceConfig", {}).get("topP")
    return body.get("top_p")


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_top_p_and_no_timeout_on_every_provider(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    fields: dict[str, Any] = {"top_p": 0.75, "timeout": None}
    if provider == "anthropic":  # the current API version takes no sampling parameter
        fields["headers"] = {"anthropic-version": "2023-06-01"}
    llm, server, module, proto = _setup(provider, model, protocol, servers, **fields)
    server.enqueue(proto.ok(module, None))
    assert await llm.generate("hi") == "Hello, world!"
    assert _top_p_sent(provider, server.requests[0].json()) == 0.75


async def test_top_p_follows_the_model_table(
    openai_sim: OpenAISimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reasoning model refuses top_p as it refuses temperature: dropped, warned once."""
    llm = make_llm("o3-mini", api_key="sk-test-key-0123456789", base_url=openai_sim.url,
                   top_p=0.5, temperature=None)
    with pytest.warns(UnsupportedParameterWarning, match="top_p=0.5 is not sent.*top_p=None"):
        await llm.generate("hi")
    assert "top_p" not in openai_sim.requests[0].json()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await llm.generate("hi", top_p=0.5)  # once per model: no second warning
    # a per-call top_p reaches a model that takes it, and shapes the cache key
    plain = make_llm("gpt-4o-mini", api_key="sk-test-key-0123456789", base_url=openai_sim.url,
                     cache=True)
    await plain.generate("hi", top_p=0.25)
    await plain.generate("hi", top_p=0.5)
    assert [r.json().get("top_p") for r in openai_sim.requests[2:]] == [0.25, 0.5]


def test_api_key_empty_is_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_keys(monkeypatch)
    assert LLMConfig(model="m", api_key="").api_key is None
    with pytest.raises(MissingAPIKeyError, match="GROQ_API_KEY"):
        make_llm("groq:llama-3.3-70b", api_key="")
    monkeypatch.setenv("GROQ_API_KEY", "from-env")
    assert make_llm("groq:llama-3.3-70b", api_key="")._api_key == "from-env"


async def test_keyless_openai_compatible_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A local OpenAI-compatible server (vLLM, llama.cpp) at a base_url needs no key; the
    SDK refuses none, so a placeholder goes out, never to the vendor's own endpoint."""
    from synapsekit.llm.providers.openai_compat import NO_KEY

    _clear_keys(monkeypatch)
    with OpenAISimulator(NO_KEY) as sim:
        llm = make_llm("my-local-model", api_key="", base_url=sim.url)
        assert await llm.generate("hi") == "Hello, world!"
        assert sim.requests[0].headers["authorization"] == f"Bearer {NO_KEY}"
        monkeypatch.setenv("OPENAI_BASE_URL", sim.url)  # the SDK's own variable, too
        assert await make_llm("gpt-4o-mini").generate("hi") == "Hello, world!"
    with pytest.raises(MissingAPIKeyError):  # the vendor's endpoint still needs a key
        make_llm("gpt-4o-mini", base_url="https://api.openai.com/v1/")
    with pytest.raises(MissingAPIKeyError):  # so does every Azure resource
        make_llm("azure:dep", base_url="https://r.openai.azure.com")


async def test_rag_ollama_override_from_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synapsekit.testing.simulators.ollama_protocol import OllamaSimulator

    with OllamaSimulator(models=("llama3",)) as sim:
        monkeypatch.setenv("OLLAMA_HOST", sim.url)
        rag = RAG(model="llama3", api_key="", provider="ollama")
        await rag.aadd("synapsekit retries a failed stream only before the first token.")
        answer = await rag.ask("How does synapsekit retry?")
        assert str(answer) == "Hello, world!"
        assert sim.requests[0].json()["model"] == "llama3"
        assert "authorization" not in sim.requests[0].headers


# ----------------------------------------------------------------- classes and detection


def test_the_fifteen_classes_are_importable_from_synapsekit() -> None:
    names = {spec.class_name for spec in REGISTRY.values()}
    assert len(names) == 15
    assert set(synapsekit.PROVIDER_CLASSES) == names
    assert names <= set(synapsekit.__all__)
    for name in names:
        assert getattr(synapsekit, name) is getattr(synapsekit.llm, name)


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_each_class_takes_a_config(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    server, module = servers[protocol]
    server.reset()
    from tests.test_parity import PROTOCOLS

    server.enqueue(PROTOCOLS[protocol].ok(module, None))
    cls = getattr(synapsekit, REGISTRY[provider].class_name)
    key = None if provider == "bedrock" else KEY
    llm = cls(LLMConfig(model=model, api_key=key, base_url=server.url))  # type: ignore[attr-defined]
    assert await llm.generate("Hello!") == "Hello, world!"
    assert llm.tokens_used == {"input": 12, "output": 4}


@pytest.mark.parametrize(("model", "provider"), [
    ("gemma2-9b-it", "groq"), ("llama3-70b-8192", "groq"), ("llama-3.3-70b", "groq"),
    ("mixtral-8x7b-32768", "groq"), ("gemma-7b-it", "groq"), ("claude-sonnet-4-6", "anthropic"),
    ("gemini-2.5-flash", "gemini"), ("command-a-03-2025", "cohere"),
    ("mistral-large-latest", "mistral"), ("open-mistral-nemo", "mistral"),
    ("deepseek-chat", "deepseek"), ("meta-llama/llama-3-70b", "openrouter"),
    ("gpt-4o-mini", "openai"),
])
def test_detection_as_the_page_says(model: str, provider: str) -> None:
    assert detect_provider(model) == provider


def test_a_name_that_fell_through_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_keys(monkeypatch)
    with pytest.raises(MissingAPIKeyError) as info:
        make_llm("cluade-sonnet-4-6")
    assert str(info.value).startswith(
        "'cluade-sonnet-4-6' matched no provider rule, so it was sent to 'openai'; "
        "did you mean claude-sonnet-4-6?"
    )
    assert "OPENAI_API_KEY" in str(info.value)
    with pytest.raises(MissingAPIKeyError) as info:  # a known OpenAI model: no such advice
        make_llm("gpt-4o-mini")
    assert "matched no provider rule" not in str(info.value)
    with pytest.raises(MissingAPIKeyError) as info:  # an explicit provider: no such advice
        make_llm("cluade-sonnet-4-6", provider="openai")
    assert "matched no provider rule" not in str(info.value)


# ----------------------------------------------------------------- TokenTracer


def test_token_tracer_as_synapsekit_writes_it() -> None:
    tracer = TokenTracer(model="gpt-4o-mini")
    record = tracer.record(1000, 500, 120.0)
    tracer.record(200, 100, 80.0)
    assert (record.provider, record.model, record.latency_ms) == ("openai", "gpt-4o-mini", 120.0)
    assert record.cost_usd is not None and record.cost_usd > 0
    summary = tracer.summary()
    assert summary["model"] == "gpt-4o-mini"
    assert (summary["calls"], summary["total_input_tokens"], summary["total_output_tokens"]) == (
        2, 1200, 600)
    assert summary["total_latency_ms"] == 200.0
    # the keyword form the LLMs use is unchanged, and may name another model
    other = tracer.record(provider="anthropic", model="claude-haiku-4-5", usage=Usage(3, 4),
                          latency_ms=5.0, ttft_ms=1.0)
    assert (other.provider, other.input_tokens, other.ttft_ms) == ("anthropic", 3, 1.0)
    assert TokenTracer().summary()["model"] is None
    with pytest.raises(ConfigError, match="no model"):
        TokenTracer().record(1, 2, 3.0)
    with pytest.raises(ConfigError, match="input_tokens"):
        tracer.record(-1, 2, 3.0)


# ----------------------------------------------------------------- a custom provider


class PageLLM(BaseLLM):
    """A custom provider as SynapseKit's page shows it: only ``stream(prompt)``."""

    fail_first: int = 0

    def __init__(self, config: LLMConfig, **options: Any) -> None:
        super().__init__(config, **options)
        self.prompts: list[tuple[str, dict[str, Any]]] = []

    async def stream(self, prompt: str, **kwargs: Any) -> AsyncIterator[str]:  # type: ignore[override]
        self.prompts.append((prompt, kwargs))
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionResetError("peer reset")
        for word in ["echo", ": ", prompt]:
            yield word


async def test_custom_provider_overriding_stream_gets_the_call_path() -> None:
    from synapsekit.llm.cache import MemoryCache

    tracer = TokenTracer()
    llm = PageLLM(LLMConfig(model="my-model", max_retries=1, retry_delay=0),
                  tracer=tracer, cache=MemoryCache())
    llm.fail_first = 1
    assert await llm.generate("hi") == "echo: hi"  # joined, after one retried failure
    assert [t async for t in llm.stream("hi")] == ["echo", ": ", "hi"]  # a cache hit
    assert llm.cache_stats["hits"] == 1
    assert [p for p, _ in llm.prompts] == ["hi", "hi"]  # the retry; the hit sent nothing
    assert [t async for t in llm.stream("other", temperature=0.0)] == ["echo", ": ", "other"]
    assert llm.prompts[-1] == ("other", {"temperature": 0.0})  # per-call overrides passed on
    records = tracer.records
    assert len(records) == 3 and [r.cache_hit for r in records] == [False, True, False]
    assert records[0].provider == "custom" and not records[0].complete  # no usage reported
    # a conversation reaches stream(prompt) as a transcript
    text = await llm.generate_with_messages([
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"}])
    assert text == "echo: user: a\n\nassistant: b\n\nuser: c"


async def test_custom_provider_reports_usage_and_retries_typed_errors() -> None:
    class Counted(BaseLLM):
        attempts = 0

        async def stream(self, prompt: str, **kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[override]
            type(self).attempts += 1
            if type(self).attempts == 1:
                raise RateLimitError("slow down", retry_after=0)
            yield "ok"
            yield Chunk(usage=Usage(12, 8))

        async def stream_with_messages(  # type: ignore[override]
            self, messages: list[dict[str, Any]], **kwargs: Any
        ) -> AsyncIterator[str]:
            yield f"{len(messages)} messages"

    llm = Counted(LLMConfig(model="mine", max_retries=2, retry_delay=0))
    assert await llm.generate("hi") == "ok"
    assert llm.tokens_used == {"input": 12, "output": 8}
    assert Counted.attempts == 2
    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
             {"role": "user", "content": "c"}]
    assert await llm.generate_with_messages(turns) == "4 messages"  # + the system prompt
    with pytest.raises(RateLimitError):  # no retries configured: the error as raised
        Counted.attempts = 0
        await Counted(LLMConfig(model="mine")).generate("hi")


def test_a_real_provider_subclass_wrapping_stream_is_left_alone() -> None:
    from synapsekit.llm.providers.openai_compat import OpenAILLM

    class Logged(OpenAILLM):
        def stream(self, prompt: str, **overrides: Any) -> Any:
            return super().stream(prompt, **overrides)

    assert Logged._stream is OpenAILLM._stream and "stream" in Logged.__dict__


# ----------------------------------------------------------------- item 6: bad input named


@pytest.mark.parametrize(("url", "message"), [
    ("api.openai.com/v1", "has no scheme; write it as 'https://api.openai.com/v1'"),
    ("localhost:8000/v1", "has no scheme"),
    ("ftp://example.com/v1", "uses the scheme 'ftp'"),
    ("ws://127.0.0.1:9/v1", "uses the scheme 'ws'"),
    ("http:///v1", "names no host"),
])
def test_base_url_must_be_http(url: str, message: str, openai_sim: OpenAISimulator) -> None:
    with pytest.raises(ConfigError, match="base_url: .*" + message.replace("(", "\\(")):
        make_llm("gpt-4o-mini", api_key="k", base_url=url)
    with pytest.raises(ConfigError):
        RAG(model="gpt-4o-mini", base_url=url)
    assert openai_sim.requests == []


def test_header_values_must_be_strings() -> None:
    with pytest.raises(ConfigError, match="value of 'X-Retries' must be a string, not int"):
        LLMConfig(model="m", headers={"X-Retries": 3})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="header name"):
        LLMConfig(model="m", headers={3: "x"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="line break"):
        LLMConfig(model="m", headers={"X-A": "a\r\nInjected: 1"})


def test_bedrock_without_credentials_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch, servers: dict[str, tuple[Server, Any]]
) -> None:
    server, _ = servers["bedrock"]
    server.reset()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(MissingAPIKeyError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        make_llm("us.anthropic.claude-3-5-haiku-20241022-v1:0", base_url=server.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(ConfigError, match="AWS_PROFILE"):
        make_llm("bedrock:amazon.nova-lite-v1:0")
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-key")  # a Bedrock API key is enough
    make_llm("bedrock:amazon.nova-lite-v1:0")
    assert server.requests == []


def test_a_rag_store_is_not_a_cache(tmp_path: Path) -> None:
    store = tmp_path / "kb.db"
    rag = RAG(model="gpt-4o-mini", path=store)
    rag.add("a passage to index")
    with pytest.raises(CacheError, match="is a synapsekit RAG store") as info:
        make_llm("gpt-4o-mini", api_key="k", cache=True, cache_backend="sqlite",
                 cache_path=str(store))
    assert "upgrade" not in str(info.value).lower()
    assert "set cache_path to another file" in str(info.value)
    assert RAG(model="gpt-4o-mini", path=store).store.count() >= 1  # the store is untouched


def test_a_ledger_is_not_a_cache(tmp_path: Path) -> None:
    ledger = tmp_path / "calls.db"
    tracer = TokenTracer(model="gpt-4o-mini", ledger=ledger)
    tracer.record(1, 1, 1.0)
    tracer.close()
    with pytest.raises(CacheError, match="call ledger"):
        make_llm("gpt-4o-mini", api_key="k", cache=True, cache_backend="sqlite",
                 cache_db_path=str(ledger))


async def test_a_cache_path_that_is_a_rag_store_is_refused_inside_a_loop(tmp_path: Path) -> None:
    """Built inside a running loop, the file is checked on a worker thread at first use:
    the first call fails with the same CacheError, before any request."""
    store = tmp_path / "kb.db"
    connection = sqlite3.connect(store)
    connection.execute(f"PRAGMA application_id={int.from_bytes(b'SkRg', 'big')}")
    connection.execute("CREATE TABLE t (x)")
    connection.close()
    with OpenAISimulator("k") as sim:
        llm = make_llm("gpt-4o-mini", api_key="k", base_url=sim.url, cache=True,
                       cache_backend="sqlite", cache_path=str(store))
        with pytest.raises(CacheError, match="RAG store"):
            await llm.generate("hi")
        assert sim.requests == []


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("report.bin", b"\x00\x01\x02binary\xff", "'.bin' files are not supported"),
    ("notes.txt", b"PK\x03\x04\x00\x00\x00zip", "binary file"),
    ("latin.md", "caf\xe9 au lait".encode("latin-1"), "binary file"),
])
def test_a_binary_file_is_a_public_error(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    rag = RAG(model="gpt-4o-mini")
    with pytest.raises(UnsupportedFileError, match=reason) as info:
        rag.add(path)
    assert isinstance(info.value, InvalidInputError)
    assert info.value.path == str(path) and reason.startswith(info.value.reason[:6])
    assert "Supported files: " in str(info.value) or "UTF-8" in str(info.value)


def test_timeout_none_reaches_each_sdk_as_no_timeout() -> None:
    """What each SDK client is built with when ``timeout=None`` (no client timeout)."""
    llm = make_llm("gpt-4o-mini", api_key="k", timeout=None)

    async def build() -> Any:
        return await llm._client()

    client = asyncio.run(build())
    assert client.timeout is None
