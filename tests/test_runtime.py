"""LLMConfig's runtime features on the one call path, through the real openai SDK.

Cache, retries, rate limiter and TokenTracer must hold the same for ``stream()``,
``generate()``, the messages variants, ``stream_chunks()`` and the sync wrappers: each
test drives the simulator and asserts exact texts, tokens and request counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapsekit import LLMConfig, make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConfigError,
    ServerError,
    StreamInterruptedError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.ratelimit import MemoryRateLimiter
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import OutputSchema
from synapsekit.observability import TokenTracer
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, error, text_stream
from tests.conftest import API_KEY

HELLO = ["Hello", ",", " world", "!"]  # the simulator's default answer: 12 in, 4 out
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["memory", "sqlite", "redis"])
def cache_fields(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """LLMConfig fields of one cache backend, each on a fresh store."""
    fields: dict[str, Any] = {"cache": True, "cache_backend": request.param}
    # Caches are shared per process by their settings: a setting unique to this test gives
    # it a cache (and hit / miss counts) of its own.
    unique = 1000 + abs(hash(request.node.nodeid)) % 100_000
    if request.param == "sqlite":
        fields["cache_path"] = str(tmp_path / "cache.db")
    elif request.param == "redis":
        fields["redis_url"] = request.getfixturevalue("redis_url")
        fields["cache_ttl"] = float(unique * 1000)
    else:
        fields["cache_maxsize"] = unique
    yield fields


def _llm(sim: OpenAISimulator, **fields: Any) -> BaseLLM:
    fields.setdefault("api_key", API_KEY)
    return make_llm("gpt-4o-mini", base_url=sim.url, **fields)


async def _chunks(llm: BaseLLM, prompt: str = "hi") -> list[Any]:
    return [chunk async for chunk in llm.stream_chunks(prompt)]


# ---------------------------------------------------------------- cache on every path


async def test_stream_after_generate_is_served_from_the_cache(
    openai_sim: OpenAISimulator, cache_fields: dict[str, Any]
) -> None:
    llm = _llm(openai_sim, **cache_fields)
    assert await llm.generate("hi") == "Hello, world!"
    assert [t async for t in llm.stream("hi")] == HELLO  # replayed as the original tokens
    assert await llm.generate_with_messages([{"role": "user", "content": "hi"}]) == "Hello, world!"
    final = (await _chunks(llm))[-1]
    # a hit keeps the answer's own metadata (its response id) and says it is a hit
    assert final.metadata is not None and final.metadata["cache_hit"] is True
    assert final.metadata.keys() <= {"cache_hit", "response_id"}
    assert final.finish_reason == "stop"
    assert final.usage.input_tokens == 0 and final.usage.output_tokens == 0
    assert len(openai_sim.requests) == 1
    assert llm.tokens_used == {"input": 12, "output": 4}  # hits spend no tokens
    assert llm.cache_stats == {"hits": 3, "misses": 1, "size": 1}
    await llm.clear_cache()
    assert llm.cache_stats["size"] == 0
    assert await llm.generate("hi") == "Hello, world!"
    assert len(openai_sim.requests) == 2
    await llm.aclose()


async def test_sync_wrappers_share_the_cache(
    openai_sim: OpenAISimulator, cache_fields: dict[str, Any]
) -> None:
    llm = _llm(openai_sim, **cache_fields)
    assert llm.generate_sync("hi") == "Hello, world!"  # on the background loop
    assert list(llm.stream_sync("hi")) == HELLO
    assert [t async for t in llm.stream("hi")] == HELLO  # on this test's loop
    assert len(openai_sim.requests) == 1
    await llm.aclose()


async def test_every_input_that_shapes_the_answer_is_in_the_key(
    openai_sim: OpenAISimulator, cache_fields: dict[str, Any]
) -> None:
    llm = _llm(openai_sim, **cache_fields)
    await llm.generate("hi")
    await llm.generate("hi", temperature=0.9)
    await llm.generate("hi", system_prompt="Be terse.")
    await llm.generate("hi", max_tokens=7)
    await llm.generate("hi ")  # a different prompt
    await _llm(openai_sim, **cache_fields, params={"seed": 7}).generate("hi")
    await make_llm("gpt-4o", api_key=API_KEY, base_url=openai_sim.url, **cache_fields).generate(
        "hi"
    )
    assert len(openai_sim.requests) == 7
    await llm.generate("hi", temperature=0.9)  # each of them is now a hit
    assert len(openai_sim.requests) == 7
    other_key = _llm(openai_sim, **cache_fields, api_key="sk-another-key-9876543210")
    with pytest.raises(AuthenticationError):  # never served another key's answer: asked
        await other_key.generate("hi")
    assert len(openai_sim.requests) == 8


async def test_a_new_llm_object_per_request_still_hits(openai_sim: OpenAISimulator,
                                                       cache_fields: dict[str, Any]) -> None:
    for _ in range(3):
        async with _llm(openai_sim, **cache_fields) as llm:
            assert await llm.generate("hi") == "Hello, world!"
    assert len(openai_sim.requests) == 1


async def test_a_cut_stream_is_never_cached(
    openai_sim: OpenAISimulator, cache_fields: dict[str, Any]
) -> None:
    openai_sim.enqueue(text_stream(["One", " two", " three"], cut_after=3))
    llm = _llm(openai_sim, **cache_fields, max_retries=3, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == ["One", " two"] and err.value.partial_text == "One two"
    assert llm.cache_stats["size"] == 0
    assert [t async for t in llm.stream("hi")] == HELLO  # asked again, not replayed
    assert len(openai_sim.requests) == 2


@pytest.mark.parametrize(
    "reply",
    [
        text_stream(["Cut", " by", " max_tokens"], finish_reason="length"),
        text_stream([]),  # an empty answer
        error(500),
    ],
    ids=["length", "empty", "error"],
)
async def test_answers_that_are_not_cached(
    openai_sim: OpenAISimulator, cache_fields: dict[str, Any], reply: Any
) -> None:
    openai_sim.enqueue(reply)
    llm = _llm(openai_sim, **cache_fields)
    with contextlib.suppress(ServerError):
        await llm.generate("hi")
    assert llm.cache_stats["size"] == 0
    assert await llm.generate("hi") == "Hello, world!"
    assert len(openai_sim.requests) == 2


async def test_a_stream_left_early_is_not_cached(
    openai_sim: OpenAISimulator, cache_fields: dict[str, Any]
) -> None:
    llm = _llm(openai_sim, **cache_fields)
    async for _token in llm.stream("hi"):
        break
    openai_sim.enqueue(text_stream(["slow"], delay=5))
    task = asyncio.ensure_future(llm.generate("hi"))
    await asyncio.to_thread(openai_sim.wait_for_requests, 2)  # the slow one is in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert llm.cache_stats["size"] == 0
    assert await llm.generate("hi") == "Hello, world!"
    assert llm._cache is not None
    await llm._cache.flush()  # the store is written in the background
    assert llm.cache_stats["size"] == 1


async def test_a_cached_anthropic_answer_streams_like_the_original(tmp_path: Path) -> None:
    from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator

    with AnthropicSimulator(API_KEY) as sim:
        llm = make_llm("claude-haiku-4-5", api_key=API_KEY, base_url=sim.url, cache=True,
                       cache_backend="sqlite", cache_path=str(tmp_path / "c.db"))
        first = [t async for t in llm.stream("hi")]
        again = [t async for t in llm.stream("hi")]
        assert first == again and len(first) > 1
        assert len(sim.requests) == 1
        await llm.aclose()


def test_two_processes_share_a_sqlite_cache(openai_sim: OpenAISimulator, tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    script = textwrap.dedent(f"""
        from synapsekit import make_llm
        llm = make_llm("gpt-4o-mini", api_key={API_KEY!r}, base_url={openai_sim.url!r},
                       cache=True, cache_backend="sqlite", cache_path={str(path)!r})
        print(llm.generate_sync("hi"), llm.cache_stats["hits"])
    """)
    outputs = [
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, check=True).stdout.strip()
        for _ in range(2)
    ]
    assert outputs == ["Hello, world! 0", "Hello, world! 1"]
    assert len(openai_sim.requests) == 1


# ---------------------------------------------------------------- retries


async def test_429_with_an_http_date_retry_after_is_honoured(openai_sim: OpenAISimulator) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: waits 1-2 s
    openai_sim.enqueue(error(429, headers={"retry-after": when}))
    llm = _llm(openai_sim, max_retries=1, retry_delay=0)  # backoff alone would not wait
    start = time.monotonic()
    assert [t async for t in llm.stream("hi")] == HELLO
    assert time.monotonic() - start >= 0.9
    assert len(openai_sim.requests) == 2


async def test_overloaded_503_is_retried_on_stream(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(error(503), error(503))
    llm = _llm(openai_sim, max_retries=2, retry_delay=0)
    assert [t async for t in llm.stream("hi")] == HELLO
    assert len(openai_sim.requests) == 3
    assert llm.tokens_used == {"input": 12, "output": 4}


async def test_401_on_stream_is_tried_once(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(error(401))
    with pytest.raises(AuthenticationError):
        async for _ in _llm(openai_sim, max_retries=5, retry_delay=0).stream("hi"):
            pass
    assert len(openai_sim.requests) == 1


# ---------------------------------------------------------------- TokenTracer


async def test_tracer_records_every_path_with_cost(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    cfg = LLMConfig(model="gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url, cache=True,
                    cache_maxsize=4242)
    llm = make_llm(cfg, tracer=tracer)
    await llm.generate("one")
    [t async for t in llm.stream("two")]
    await llm.generate_with_messages([{"role": "user", "content": "three"}])
    await llm.generate("one")  # a cache hit
    records = tracer.records
    assert [r.cache_hit for r in records] == [False, False, False, True]
    assert [(r.input_tokens, r.output_tokens) for r in records] == [(12, 4)] * 3 + [(0, 0)]
    assert all(r.provider == "openai" and r.model == "gpt-4o-mini" for r in records)
    miss = records[0]
    assert miss.ttft_ms is not None and 0 < miss.ttft_ms <= miss.latency_ms
    assert miss.cost_usd is not None and miss.cost_usd > 0
    assert records[3].cost_usd == 0.0
    summary = tracer.summary()
    assert summary["calls"] == 4 and summary["cache_hits"] == 1
    assert summary["total_input_tokens"] == 36 and summary["total_output_tokens"] == 12
    assert summary["total_tokens"] == 48
    assert summary["estimated_cost_usd"] == pytest.approx(3 * miss.cost_usd)
    assert summary["by_model"]["gpt-4o-mini"]["calls"] == 4


async def test_tracer_is_settable_and_shared(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    first, second = _llm(openai_sim), make_llm("gpt-4o", api_key=API_KEY, base_url=openai_sim.url)
    first.tracer = tracer
    second.tracer = tracer
    await asyncio.gather(*(llm.generate("hi") for llm in (first, second) for _ in range(10)))
    summary = tracer.summary()
    assert summary["calls"] == 20
    assert {m: v["calls"] for m, v in summary["by_model"].items()} == {"gpt-4o-mini": 10,
                                                                      "gpt-4o": 10}


async def test_an_interrupted_stream_is_traced_as_incomplete(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    openai_sim.enqueue(text_stream(["One", " two"], cut_after=2))
    llm = make_llm("gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url, tracer=tracer)
    with pytest.raises(StreamInterruptedError):
        await llm.generate("hi")
    (record,) = tracer.records
    assert record.error == "StreamInterruptedError" and not record.complete


async def test_unknown_model_cost_is_none_not_zero(openai_sim: OpenAISimulator) -> None:
    tracer = TokenTracer()
    llm = make_llm("openai:my-finetune-xyz", api_key=API_KEY, base_url=openai_sim.url,
                   tracer=tracer)
    with pytest.warns(UserWarning, match="my-finetune-xyz"):
        await llm.generate("hi")
    assert tracer.records[0].cost_usd is None
    assert tracer.summary()["unpriced_calls"] == 1


# ---------------------------------------------------------------- rate limiter on the path


def _buckets(llm: BaseLLM) -> MemoryRateLimiter:
    limiter = llm._limiter
    assert isinstance(limiter, MemoryRateLimiter)
    return limiter


async def test_every_retry_attempt_passes_through_the_limiter(
    openai_sim: OpenAISimulator,
) -> None:
    openai_sim.enqueue(error(503), error(503))
    llm = _llm(openai_sim, max_retries=2, retry_delay=0, requests_per_minute=53)
    assert [t async for t in llm.stream("hi")] == HELLO
    available = _buckets(llm)._requests.available  # type: ignore[union-attr]
    assert 50 <= available < 51  # three attempts took three slots (refill ~0.9 per second)


async def test_tokens_per_minute_is_corrected_with_real_usage(
    openai_sim: OpenAISimulator,
) -> None:
    llm = _llm(openai_sim, tokens_per_minute=61, max_tokens=20)
    # estimate: ceil(len("You are a helpful assistant." + "hi") / 4) + max_tokens = 8 + 20
    assert await llm.generate("hi") == "Hello, world!"
    available = _buckets(llm)._tokens.available  # type: ignore[union-attr]
    assert 45 <= available < 47  # 61 - 16 real tokens (12 in + 4 out), not 61 - 28


class _Recording(MemoryRateLimiter):
    """A tokens-per-minute limiter that writes down what each attempt reserves."""

    def __init__(self) -> None:
        super().__init__(tokens_per_minute=100_000)
        self.reserved: list[int] = []

    async def acquire(self, tokens: int = 0) -> None:
        self.reserved.append(tokens)
        await super().acquire(tokens)


#: Three tools whose definitions are far bigger than the prompt: 40 + 100 + 200 characters
#: of name and description and a 100-character compact JSON schema each.
_BIG_TOOLS = [
    Tool(f"tool_{i}" + "x" * 34, "d" * 100 * (i + 1),
         {"type": "object", "properties": {"q": {"type": "string", "description": "p" * 29}}})
    for i in range(3)
]


async def test_tokens_per_minute_reserves_the_tool_definitions_too(
    openai_sim: OpenAISimulator,
) -> None:
    limiter = _Recording()
    llm = _llm(openai_sim, rate_limiter=limiter, max_tokens=20)
    assert all(len(json.dumps(t.schema, separators=(",", ":"))) == 100 for t in _BIG_TOOLS)
    assert await llm.respond("hi", tools=_BIG_TOOLS)
    assert len(openai_sim.requests[-1].json()["tools"]) == 3  # they were sent
    # ceil((len("You are a helpful assistant." + "hi") 30 + names 3 * 40 + descriptions
    # 100 + 200 + 300 + schemas 3 * 100) / 4) + max_tokens = ceil(1050 / 4) + 20
    assert limiter.reserved == [263 + 20]
    await llm.respond("hi")
    assert limiter.reserved[-1] == 8 + 20  # without tools: ceil(30 / 4) + 20


async def test_tokens_per_minute_reserves_the_response_schema_too(
    openai_sim: OpenAISimulator,
) -> None:
    limiter = _Recording()
    llm = _llm(openai_sim, rate_limiter=limiter, max_tokens=20)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    await llm.respond("hi", response_schema=OutputSchema("reply", schema, description="d" * 10))
    assert "response_format" in openai_sim.requests[-1].json()  # sent as input
    # ceil((30 + name 5 + description 10 + 59 characters of compact JSON) / 4) + 20
    assert limiter.reserved == [26 + 20]


async def test_llms_of_one_provider_and_key_share_one_bucket(
    openai_sim: OpenAISimulator,
) -> None:
    first = _llm(openai_sim, requests_per_minute=59)
    second = make_llm("gpt-4o", api_key=API_KEY, base_url=openai_sim.url, requests_per_minute=59)
    other_key = _llm(openai_sim, requests_per_minute=59, api_key="sk-another-key-9876543210")
    assert first._limiter is second._limiter
    assert other_key._limiter is not first._limiter
    await asyncio.gather(first.generate("a"), second.generate("b"))
    assert 57 <= _buckets(first)._requests.available < 58  # type: ignore[union-attr]


async def test_a_cache_hit_takes_nothing_from_the_limiter(openai_sim: OpenAISimulator) -> None:
    llm = _llm(openai_sim, requests_per_minute=47, cache=True, cache_maxsize=4747)
    for _ in range(5):
        await llm.generate("hi")
    assert 46 <= _buckets(llm)._requests.available < 47  # type: ignore[union-attr]
    assert len(openai_sim.requests) == 1


async def test_params_that_cannot_be_keyed_are_a_config_error(openai_sim: OpenAISimulator) -> None:
    llm = _llm(openai_sim, cache=True, params={"seed": object()})
    with pytest.raises(ConfigError, match="params: cannot be part of a cache key"):
        await llm.generate("hi")
    assert openai_sim.requests == []
