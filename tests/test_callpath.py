"""The call path (BaseLLM): one trace record on every way out, generate()'s retry of a
cut stream, provider prefixes, the effective endpoint, objects passed in, and SDK clients
released with their event loop.

Real SDKs over real HTTP against the protocol simulators; every test counts exactly
(records, tokens, requests the simulator saw, sockets the process holds).
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from synapsekit import LLMConfig, make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConfigError,
    StreamInterruptedError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.cache import Cache, CachedAnswer, MemoryCache
from synapsekit.llm.ratelimit import MemoryRateLimiter
from synapsekit.llm.types import Usage
from synapsekit.observability import CallRecord, TokenTracer
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, error, text_stream
from tests.conftest import API_KEY
from tests.sim_fixtures import aws_credentials

HELLO = "Hello, world!"  # the simulator's default answer: 12 in, 4 out
OTHER_KEY = "sk-another-key-9876543210"


def _llm(sim: OpenAISimulator, tracer: TokenTracer | None = None, **fields: Any) -> BaseLLM:
    fields.setdefault("api_key", API_KEY)
    return make_llm("gpt-4o-mini", base_url=sim.url, tracer=tracer, **fields)


def _tokens(record: CallRecord) -> tuple[int, int]:
    return record.input_tokens, record.output_tokens


async def _records(tracer: TokenTracer, n: int) -> list[CallRecord]:
    """The records once there are ``n`` (a stream left without aclosing() is closed by the
    loop's async-generator finalizer, a moment after the ``break``)."""
    for _ in range(200):
        if len(tracer.records) >= n:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # and no more than n arrive
    return tracer.records


# ---------------------------------------------------------------- item 7: every way out


async def test_a_finished_call_is_one_complete_record(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    llm = _llm(openai_sim, tracer)
    assert "".join([t async for t in llm.stream("hi")]) == HELLO
    (record,) = tracer.records
    assert _tokens(record) == (12, 4) and record.complete and record.error is None
    assert record.ttft_ms is not None and 0 < record.ttft_ms <= record.latency_ms
    assert llm.tokens_used == {"input": 12, "output": 4}


async def test_a_failure_before_any_token_is_one_record_with_its_type(
    openai_sim: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(error(401))
    llm = _llm(openai_sim, tracer, max_retries=3, retry_delay=0)
    with pytest.raises(AuthenticationError):
        await llm.generate("hi")
    (record,) = tracer.records
    assert record.error == "AuthenticationError"
    assert _tokens(record) == (0, 0) and record.complete is False  # none reported
    assert record.ttft_ms is None
    assert llm.tokens_used == {"input": 0, "output": 0}
    assert len(openai_sim.requests) == 1


async def test_retried_failures_before_any_token_are_one_record(
    openai_sim: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(error(503), error(503))
    llm = _llm(openai_sim, tracer, max_retries=2, retry_delay=0)
    assert await llm.generate("hi") == HELLO
    (record,) = tracer.records  # the 503s answered nothing: no records of their own
    assert _tokens(record) == (12, 4) and record.complete and record.error is None
    assert len(openai_sim.requests) == 3


async def test_the_last_failure_after_retries_is_one_record(
    openai_sim: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(error(503), error(503))
    llm = _llm(openai_sim, tracer, max_retries=1, retry_delay=0)
    with pytest.raises(Exception) as err:
        await llm.generate("hi")
    (record,) = tracer.records
    assert record.error == type(err.value).__name__ == "ServerError"
    assert len(openai_sim.requests) == 2


async def test_a_stream_cut_after_tokens_is_one_incomplete_record(
    openai_sim: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(text_stream(["One", " two", " three"], cut_after=3))
    llm = _llm(openai_sim, tracer, max_retries=3, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == ["One", " two"] and err.value.partial_text == "One two"
    assert err.value.usage is not None and err.value.usage.complete is False
    (record,) = tracer.records
    assert record.error == "StreamInterruptedError" and record.complete is False
    assert record.ttft_ms is not None
    assert len(openai_sim.requests) == 1  # stream(): never retried after the first token


async def test_a_failure_keeps_the_partial_usage_the_provider_reported() -> None:
    from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator
    from synapsekit.testing.simulators.anthropic_protocol import text_stream as claude_stream

    tokens = ["Hel", "lo", " wor", "ld"]
    tracer = TokenTracer()
    with AnthropicSimulator(API_KEY) as sim:  # message_start: 12 in, 1 out; cut after "lo"
        sim.enqueue(claude_stream(tokens, input_tokens=12, cut_after=5))
        llm = make_llm("claude-sonnet-4-6", api_key=API_KEY, base_url=sim.url, tracer=tracer,
                       max_retries=1, retry_delay=0)
        with pytest.raises(StreamInterruptedError) as err:
            [t async for t in llm.stream("Hi")]
        (record,) = tracer.records
        assert _tokens(record) == (12, 1) and record.complete is False
        assert err.value.usage == Usage(input_tokens=12, output_tokens=1, complete=False)
        assert llm.tokens_used == {"input": 12, "output": 1}

        tracer.reset()
        sim.enqueue(claude_stream(tokens, input_tokens=12, cut_after=5),
                    claude_stream(tokens, input_tokens=12))
        assert await llm.generate("Hi") == "Hello world"
        lost, answer = tracer.records
        assert (lost.error, _tokens(lost), lost.complete) == ("ConnectionError", (12, 1), False)
        assert (answer.error, _tokens(answer), answer.complete) == (None, (12, 4), True)
        assert llm.tokens_used == {"input": 12 + 24, "output": 1 + 1 + 4}
        assert len(sim.requests) == 3
        await llm.aclose()


async def test_an_abandoned_stream_is_one_record_and_closes_upstream(
    openai_sim: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(text_stream(["a", "b", "c", "d", "e", "f"], delay=0.2))
    llm = _llm(openai_sim, tracer)
    async for _token in llm.stream("hi"):
        break  # no aclosing(): the loop's finalizer closes the generator
    (record,) = await _records(tracer, 1)
    assert record.error == "GeneratorExit" and record.complete is False
    assert _tokens(record) == (0, 0) and record.ttft_ms is not None
    assert await openai_sim.wait_for_disconnects_async(1, 5)
    assert llm.tokens_used == {"input": 0, "output": 0}


async def test_a_stream_closed_with_aclosing_is_one_record(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(text_stream(["a", "b", "c", "d"], delay=0.2))
    llm = _llm(openai_sim, tracer)
    async with aclosing(llm.stream_chunks("hi")) as chunks:
        async for _chunk in chunks:
            break
    (record,) = tracer.records  # recorded by the time aclose() returns
    assert record.error == "GeneratorExit" and record.complete is False
    assert await openai_sim.wait_for_disconnects_async(1, 5)


async def test_leaving_at_the_final_chunk_is_still_one_record(
    openai_sim: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    llm = _llm(openai_sim, tracer)
    async with aclosing(llm.stream_chunks("hi")) as chunks:
        async for chunk in chunks:
            if chunk.usage is not None:
                break  # the call was already recorded, complete
    (record,) = tracer.records
    assert _tokens(record) == (12, 4) and record.complete and record.error is None


async def test_a_cancelled_call_is_one_record(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(text_stream(["slow"] * 5, delay=0.5))
    llm = _llm(openai_sim, tracer)
    task = asyncio.ensure_future(llm.generate("hi"))
    await asyncio.to_thread(openai_sim.wait_for_requests, 1)
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = await _records(tracer, 1)
    assert record.error == "CancelledError" and record.complete is False
    assert _tokens(record) == (0, 0)
    assert await openai_sim.wait_for_disconnects_async(1, 5)


async def test_wait_for_expiry_is_one_record(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(text_stream(["slow"] * 5, delay=1.0))
    llm = _llm(openai_sim, tracer)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(llm.generate("hi"), 0.5)
    (record,) = await _records(tracer, 1)
    assert record.error == "CancelledError" and record.complete is False
    assert await openai_sim.wait_for_disconnects_async(1, 5)


async def test_a_call_refused_before_any_request_is_one_zero_record(
    openai_sim: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    llm = _llm(openai_sim, tracer)
    with pytest.raises(ConfigError):
        await llm.generate("hi", colour="blue")  # not a per-call setting
    (record,) = tracer.records
    assert record.error == "ConfigError" and _tokens(record) == (0, 0)
    assert record.complete is True  # nothing was sent, so nothing can have been billed
    assert openai_sim.requests == []


async def test_an_abandoned_cache_replay_is_one_hit_record(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    llm = _llm(openai_sim, tracer, cache=MemoryCache())
    assert await llm.generate("hi") == HELLO
    async with aclosing(llm.stream("hi")) as tokens:
        async for _token in tokens:
            break
    first, hit = tracer.records
    assert first.cache_hit is False and _tokens(first) == (12, 4)
    assert hit.cache_hit is True and hit.error == "GeneratorExit" and hit.cost_usd == 0.0
    assert len(openai_sim.requests) == 1


async def test_many_concurrent_mixed_exits_leave_one_record_each(
    openai_sim: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    llm = _llm(openai_sim, tracer)

    async def leave_early() -> None:
        async with aclosing(llm.stream("hi")) as tokens:
            async for _token in tokens:
                break

    calls = [llm.generate("hi") if i % 2 else leave_early() for i in range(400)]
    await asyncio.gather(*calls)
    records = tracer.records
    assert len(records) == 400
    assert sum(r.error is None for r in records) == 200
    assert sum(r.error == "GeneratorExit" for r in records) == 200
    assert llm.tokens_used == {"input": 200 * 12, "output": 200 * 4}


# ---------------------------------------------------------------- item 8: generate retries


async def test_generate_retries_a_stream_cut_after_tokens(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(text_stream(["One", " two", " three"], cut_after=3))
    llm = _llm(openai_sim, tracer, max_retries=1, retry_delay=0)
    assert await llm.generate("hi") == HELLO  # never "One two" + the retried answer
    assert len(openai_sim.requests) == 2
    lost, answer = tracer.records
    assert lost.error == "ConnectionError" and lost.complete is False  # the lost attempt
    assert _tokens(lost) == (0, 0) and lost.ttft_ms is not None
    assert answer.error is None and answer.complete and _tokens(answer) == (12, 4)
    assert llm.tokens_used == {"input": 12, "output": 4}


async def test_generate_with_messages_retries_a_cut_too(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(text_stream(["One"], cut_after=2), text_stream(["Two"], cut_after=2))
    llm = _llm(openai_sim, max_retries=2, retry_delay=0)
    text = await llm.generate_with_messages([{"role": "user", "content": "hi"}])
    assert text == HELLO
    assert len(openai_sim.requests) == 3


async def test_generate_without_retries_left_raises_the_partial_text(
    openai_sim: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(text_stream(["One", " two"], cut_after=3),
                       text_stream(["Uno", " dos"], cut_after=3))
    llm = _llm(openai_sim, tracer, max_retries=1, retry_delay=0)
    with pytest.raises(StreamInterruptedError) as err:
        await llm.generate("hi")
    assert err.value.partial_text == "Uno dos"
    assert [r.error for r in tracer.records] == ["ConnectionError", "StreamInterruptedError"]
    assert len(openai_sim.requests) == 2


async def test_a_retried_cut_answer_is_cached_once_complete(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(text_stream(["One", " two"], cut_after=2))
    llm = _llm(openai_sim, cache=MemoryCache(), max_retries=1, retry_delay=0)
    assert await llm.generate("hi") == HELLO
    assert [t async for t in llm.stream("hi")] == ["Hello", ",", " world", "!"]
    assert len(openai_sim.requests) == 2


# ---------------------------------------------------------------- item 11: prefixes

PREFIXES = [
    # (make_llm arguments, provider, model sent)
    (("ollama:mistral:7b",), {}, "ollama", "mistral:7b"),
    (("ollama:llama3.2:1b",), {}, "ollama", "llama3.2:1b"),
    (("ollama:ollama:x",), {}, "ollama", "ollama:x"),  # at most one prefix is taken off
    (("mistral:7b",), {"provider": "ollama"}, "ollama", "mistral:7b"),
    (("llama3.2:1b",), {"provider": "ollama"}, "ollama", "llama3.2:1b"),
    (("ollama:llama3.2",), {"provider": "ollama"}, "ollama", "llama3.2"),
    (("openai:gpt-4o",), {}, "openai", "gpt-4o"),
    (("openai:ft:gpt-4o-mini:org:custom:abc",), {}, "openai", "ft:gpt-4o-mini:org:custom:abc"),
    (("groq:llama-3.3-70b",), {}, "groq", "llama-3.3-70b"),
    (("anthropic:claude-sonnet-4-6",), {}, "anthropic", "claude-sonnet-4-6"),
    (("mistral:mistral-small-latest",), {}, "mistral", "mistral-small-latest"),
    (("bedrock:anthropic.claude-v2:1",), {}, "bedrock", "anthropic.claude-v2:1"),
    (("claude-sonnet-4-6",), {}, "anthropic", "claude-sonnet-4-6"),
]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_credentials(monkeypatch, tmp_path, "AKIAPARITYTESTKEY000", "parity/secret/key/0123456789")


@pytest.mark.parametrize(("args", "fields", "provider", "model"), PREFIXES,
                         ids=[a[0] + str(f or "") for a, f, _, _ in PREFIXES])
def test_provider_prefix_rows(
    args: tuple[str], fields: dict[str, str], provider: str, model: str, aws_env: None
) -> None:
    llm = make_llm(*args, api_key="k", **fields)
    assert (llm.provider, llm.model, llm.config.provider) == (provider, model, provider)


def test_a_provider_class_strips_only_its_own_prefix() -> None:
    from synapsekit.llm.providers.ollama import OllamaLLM
    from synapsekit.llm.providers.openai_compat import OpenAILLM

    assert OllamaLLM(LLMConfig(model="mistral:7b")).model == "mistral:7b"
    assert OllamaLLM(LLMConfig(model="ollama:mistral:7b")).model == "mistral:7b"
    assert OllamaLLM(LLMConfig(model="groq:thing", provider="ollama")).model == "groq:thing"
    assert OpenAILLM(LLMConfig(model="openai:gpt-4o", api_key="k")).model == "gpt-4o"
    with pytest.raises(ConfigError, match="speaks to 'ollama'"):
        OllamaLLM(LLMConfig(model="llama3.2", provider="groq"))


async def test_ollama_sends_mistral_7b_unchanged() -> None:
    from synapsekit.testing.simulators.ollama_protocol import OllamaSimulator

    with OllamaSimulator(models=("mistral:7b",)) as sim:
        llm = make_llm("ollama:mistral:7b", base_url=sim.url)
        assert await llm.generate("hi") == HELLO
        assert [r.json()["model"] for r in sim.requests] == ["mistral:7b"]
        await llm.aclose()


# ---------------------------------------------------------------- item 9: effective endpoint


@pytest.fixture
def no_endpoint_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OLLAMA_HOST", "AZURE_OPENAI_ENDPOINT",
                 "CO_API_URL", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_openai_base_url_is_honoured(
    openai_sim: OpenAISimulator, no_endpoint_env: pytest.MonkeyPatch
) -> None:
    no_endpoint_env.setenv("OPENAI_BASE_URL", openai_sim.url)
    llm = make_llm("gpt-4o-mini", api_key=API_KEY)  # no base_url
    assert llm.endpoint == llm.base_url == openai_sim.url
    assert await llm.generate("hi") == HELLO
    assert len(openai_sim.requests) == 1
    await llm.aclose()
    given = make_llm("gpt-4o-mini", api_key=API_KEY, base_url="http://127.0.0.1:9/v1")
    assert given.endpoint == "http://127.0.0.1:9/v1"  # base_url wins over the variable


def test_endpoint_defaults_and_variables(
    no_endpoint_env: pytest.MonkeyPatch, aws_env: None
) -> None:
    assert make_llm("gpt-4o-mini", api_key="k").endpoint == "https://api.openai.com/v1"
    assert make_llm("groq:x", api_key="k").endpoint == "https://api.groq.com/openai/v1"
    assert make_llm("ollama:x").endpoint == "http://localhost:11434"
    assert make_llm("claude-sonnet-4-6", api_key="k").endpoint is None  # the SDK's default
    no_endpoint_env.setenv("OPENAI_BASE_URL", "http://proxy.local/v1")
    assert make_llm("groq:x", api_key="k").endpoint == "https://api.groq.com/openai/v1"
    no_endpoint_env.setenv("OLLAMA_HOST", "http://gpu-box:11434")
    assert make_llm("ollama:x").endpoint == "http://gpu-box:11434"
    no_endpoint_env.setenv("ANTHROPIC_BASE_URL", "http://gateway.local")
    assert make_llm("claude-sonnet-4-6", api_key="k").endpoint == "http://gateway.local"
    no_endpoint_env.setenv("AZURE_OPENAI_ENDPOINT", "https://res-a.openai.azure.com")
    assert make_llm("azure:dep", api_key="k").endpoint == "https://res-a.openai.azure.com"
    bedrock = make_llm("bedrock:amazon.nova-lite-v1:0")
    assert bedrock.endpoint == "https://bedrock-runtime.us-east-1.amazonaws.com"
    no_endpoint_env.setenv("AWS_REGION", "eu-west-1")
    bedrock = make_llm("bedrock:amazon.nova-lite-v1:0")
    assert bedrock.endpoint == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    custom = make_llm("bedrock:amazon.nova-lite-v1:0", base_url="http://127.0.0.1:9")
    assert custom.endpoint == "http://127.0.0.1:9#eu-west-1"


@pytest.mark.parametrize("provider", ["anthropic", "ollama", "azure"])
async def test_each_endpoint_variable_reaches_the_simulator(
    provider: str, no_endpoint_env: pytest.MonkeyPatch
) -> None:
    from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator
    from synapsekit.testing.simulators.ollama_protocol import OllamaSimulator

    if provider == "anthropic":
        sim: Any = AnthropicSimulator(API_KEY)
        var, model = "ANTHROPIC_BASE_URL", "claude-sonnet-4-6"
    elif provider == "ollama":
        sim, var, model = OllamaSimulator(), "OLLAMA_HOST", "ollama:llama3.2"
    else:
        sim = OpenAISimulator(API_KEY, auth="azure")
        var, model = "AZURE_OPENAI_ENDPOINT", "azure:my-deployment"
    with sim:
        no_endpoint_env.setenv(var, sim.url)
        llm = make_llm(model, api_key=API_KEY)
        assert llm.endpoint == sim.url
        assert await llm.generate("hi") == HELLO
        assert len(sim.requests) == 1
        await llm.aclose()


async def test_two_keys_sharing_a_prompt_never_share_an_answer(
    openai_sim: OpenAISimulator,
) -> None:
    shared = MemoryCache()
    first = _llm(openai_sim, cache=shared)
    second = _llm(openai_sim, cache=shared, api_key=OTHER_KEY)
    assert await first.generate("hi") == HELLO
    with pytest.raises(AuthenticationError):  # asked with its own key, not served the cache
        await second.generate("hi")
    assert len(openai_sim.requests) == 2
    assert openai_sim.requests[1].headers["authorization"] == f"Bearer {OTHER_KEY}"
    assert await _llm(openai_sim, cache=shared).generate("hi") == HELLO  # same key: a hit
    assert len(openai_sim.requests) == 2


async def test_the_default_cache_is_scoped_by_key_too(openai_sim: OpenAISimulator) -> None:
    fields: dict[str, Any] = {"cache": True, "cache_maxsize": 9191}
    assert await _llm(openai_sim, **fields).generate("hi") == HELLO
    with pytest.raises(AuthenticationError):
        await _llm(openai_sim, api_key=OTHER_KEY, **fields).generate("hi")
    assert len(openai_sim.requests) == 2


async def test_the_endpoint_is_part_of_the_cache_key(openai_sim: OpenAISimulator) -> None:
    shared = MemoryCache()
    by_ip = make_llm("gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url, cache=shared)
    by_name = make_llm("gpt-4o-mini", api_key=API_KEY, cache=shared,
                       base_url=openai_sim.url.replace("127.0.0.1", "localhost"))
    assert await by_ip.generate("hi") == await by_name.generate("hi") == HELLO
    assert len(openai_sim.requests) == 2
    await by_ip.generate("hi")
    await by_name.generate("hi")
    assert len(openai_sim.requests) == 2


def test_rate_limit_buckets_are_scoped_by_endpoint(
    no_endpoint_env: pytest.MonkeyPatch, aws_env: None
) -> None:
    a = make_llm("gpt-4o-mini", api_key="k", base_url="http://a.local/v1", requests_per_minute=7)
    b = make_llm("gpt-4o-mini", api_key="k", base_url="http://b.local/v1", requests_per_minute=7)
    again = make_llm("gpt-4o", api_key="k", base_url="http://a.local/v1", requests_per_minute=7)
    assert a._limiter is not None and a._limiter is again._limiter
    assert b._limiter is not a._limiter
    east = make_llm("bedrock:amazon.nova-lite-v1:0", requests_per_minute=7)
    no_endpoint_env.setenv("AWS_REGION", "eu-west-1")
    west = make_llm("bedrock:amazon.nova-lite-v1:0", requests_per_minute=7)
    assert east._limiter is not None and west._limiter is not east._limiter


# ---------------------------------------------------------------- objects passed in


async def test_a_cache_object_and_a_limiter_object_are_used_as_given(
    openai_sim: OpenAISimulator,
) -> None:
    cache = MemoryCache(10)
    limiter = MemoryRateLimiter(requests_per_minute=31)
    one = _llm(openai_sim, cache=cache, rate_limiter=limiter)
    two = make_llm("gpt-4o", api_key=API_KEY, base_url=openai_sim.url, cache=cache,
                   rate_limiter=limiter, requests_per_minute=1000)
    assert one._cache is cache and two._cache is cache
    assert one._limiter is limiter and two._limiter is limiter
    await one.generate("hi")
    await one.generate("hi")  # a hit: takes nothing from the limiter
    await two.generate("hi")
    assert len(openai_sim.requests) == 2
    assert cache.stats() == {"hits": 1, "misses": 2, "size": 2}
    assert 29 <= limiter._requests.available < 30  # type: ignore[union-attr]


def test_cache_true_is_the_config_switch_and_other_values_are_refused(
    openai_sim: OpenAISimulator,
) -> None:
    on = _llm(openai_sim, cache=True)
    assert on.config.cache is True and isinstance(on._cache, Cache)
    off = _llm(openai_sim, cache=False)
    assert off.config.cache is False and off._cache is None
    with pytest.raises(ConfigError, match="cache: must be a synapsekit Cache"):
        _llm(openai_sim, cache="memory")
    with pytest.raises(ConfigError, match="rate_limiter"):
        _llm(openai_sim, rate_limiter=60)


class _HeldStore(MemoryCache):
    """A memory cache whose writes wait until the test releases them (the base class's
    background write, not MemoryCache's instant one)."""

    set_in_background = Cache.set_in_background

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    async def _store(self, key: str, answer: CachedAnswer) -> None:
        await asyncio.to_thread(self.release.wait, 30)
        await super()._store(key, answer)


async def test_the_cache_store_does_not_delay_the_final_chunk(
    openai_sim: OpenAISimulator,
) -> None:
    cache = _HeldStore()
    llm = _llm(openai_sim, cache=cache)
    try:
        final = (await asyncio.wait_for(_collect(llm), 10))[-1]  # the store is still held
        assert final.usage is not None and final.usage.output_tokens == 4
        assert cache.stats()["size"] == 0
    finally:
        cache.release.set()
    assert await llm.generate("hi") == HELLO  # waits for the pending write, then hits
    assert len(openai_sim.requests) == 1


async def _collect(llm: BaseLLM) -> list[Any]:
    return [chunk async for chunk in llm.stream_chunks("hi")]


# ---------------------------------------------------------------- item 10: clients per loop


def _sockets_to(port: int) -> int:
    """Sockets this process holds that are connected to 127.0.0.1:``port`` (any state:
    an established or half-closed connection still holds its file descriptor)."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            ours.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in ours:
                count += 1
    return count


def _sockets_left(port: int) -> int:
    """:func:`_sockets_to` once the process is done closing (Bedrock closes a finished
    stream on its worker thread, a moment after the call returns): at most 2 s."""
    for _ in range(100):
        count = _sockets_to(port)
        if count == 0:
            break
        time.sleep(0.02)
    return count


def _live(cls_name: str) -> int:
    """Objects of the SDK client class ``module.Class`` alive now."""
    gc.collect()
    module, name = cls_name.rsplit(".", 1)
    return sum(
        1 for obj in gc.get_objects()
        if type(obj).__name__ == name and type(obj).__module__.startswith(module)
    )


@pytest.fixture
def protocol_server(request: pytest.FixtureRequest) -> Iterator[tuple[Any, str, str]]:
    name = request.param
    if name == "openai":
        server: Any = OpenAISimulator(API_KEY)
        model, client_class = "gpt-4o-mini", "openai.AsyncOpenAI"
    elif name == "anthropic":
        from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator

        server, model, client_class = AnthropicSimulator(API_KEY), "claude-sonnet-4-6", \
            "anthropic.AsyncAnthropic"
    elif name == "ollama":
        from synapsekit.testing.simulators.ollama_protocol import OllamaSimulator

        server, model, client_class = OllamaSimulator(), "ollama:llama3.2", "ollama.AsyncClient"
    elif name == "mistral":
        from synapsekit.testing.simulators.mistral_protocol import MistralSimulator

        server, model, client_class = MistralSimulator(API_KEY), "mistral-small-latest", \
            "mistralai.Mistral"
    elif name == "cohere":
        from synapsekit.testing.simulators.cohere_protocol import CohereSimulator

        server, model, client_class = CohereSimulator(API_KEY), "command-a-03-2025", \
            "cohere.client_v2.AsyncClientV2"
    else:  # boto3: a blocking client, built in a worker thread (client_blocks)
        from synapsekit.testing.simulators.bedrock_protocol import BedrockSimulator

        request.getfixturevalue("aws_env")
        server = BedrockSimulator({"AKIAPARITYTESTKEY000": "parity/secret/key/0123456789"})
        model = "bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0"
        client_class = "botocore.client.BedrockRuntime"
    with server:
        yield server, model, client_class


@pytest.mark.parametrize(
    "protocol_server", ["openai", "anthropic", "ollama", "mistral", "cohere", "bedrock"],
    indirect=True,
)
def test_a_hundred_asyncio_runs_leave_one_client_at_most_and_no_socket(
    protocol_server: tuple[Any, str, str],
) -> None:
    server, model, client_class = protocol_server
    key = None if model.startswith("bedrock:") else API_KEY
    llm = make_llm(model, api_key=key, base_url=server.url)
    before = _live(client_class)
    for i in range(100):
        assert asyncio.run(llm.generate("hi")) == HELLO
        assert llm.connection.open_clients == 0  # closed when its loop shut down
        if i % 25 == 0:
            assert _sockets_left(server.port) == 0
            assert _live(client_class) - before <= 1
    assert _sockets_left(server.port) == 0
    assert _live(client_class) - before <= 1
    assert len(server.requests) == 100


async def test_a_cache_namespace_shares_answers_across_keys(openai_sim: OpenAISimulator) -> None:
    shared = MemoryCache()
    first = _llm(openai_sim, cache=shared, cache_namespace="team-a")
    second = _llm(openai_sim, cache=shared, cache_namespace="team-a", api_key=OTHER_KEY)
    elsewhere = _llm(openai_sim, cache=shared, cache_namespace="team-b", api_key=OTHER_KEY)
    assert await first.generate("hi") == HELLO
    assert await second.generate("hi") == HELLO  # the namespace, not the key, scopes it
    assert len(openai_sim.requests) == 1
    with pytest.raises(AuthenticationError):
        await elsewhere.generate("hi")
    assert len(openai_sim.requests) == 2
