"""Router: failover, breakers, strategies and the call path's promises, through the real
openai SDK over real HTTP against two OpenAI-protocol simulators (``sim_a``, ``sim_b``),
a dead port, and the session's real redis-server.

The simulators' default answer is "Hello, world!" with 12 input and 4 output tokens.
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    ConfigError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.router import (
    AllMembersFailedError,
    CostRouter,
    CostRouterConfig,
    FallbackChain,
    FallbackChainConfig,
    NoCapableMemberError,
    Router,
    RouterModelSpec,
)
from synapsekit.llm.router_state import MemoryRouterState, RedisRouterState
from synapsekit.llm.tools import Tool
from synapsekit.observability.tracer import TokenTracer
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, error, text_stream
from tests.conftest import API_KEY

ANSWER = "Hello, world!"
_made: list[Any] = []


@pytest.fixture(scope="module")
def _second_server() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(API_KEY) as sim:
        yield sim


@pytest.fixture
def sim_a(openai_sim: OpenAISimulator) -> OpenAISimulator:
    return openai_sim


@pytest.fixture
def sim_b(_second_server: OpenAISimulator) -> Iterator[OpenAISimulator]:
    _second_server.reset()
    yield _second_server
    _second_server.reset()


@pytest.fixture(autouse=True)
async def _close() -> Any:
    yield
    while _made:
        await _made.pop().aclose()


def llm(url: str, model: str = "gpt-4o-mini", **fields: Any) -> BaseLLM:
    fields.setdefault("api_key", API_KEY)
    made = make_llm(model, base_url=url, retry_delay=0.01, **fields)
    _made.append(made)
    return made


def router(members: list[Any], strategy: str = "fallback", **options: Any) -> Router:
    made = Router(members, strategy, **options)
    _made.append(made)
    return made


def dead_url() -> str:
    """A local port nobody listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class Clock:
    """A clock the test moves (breaker cooldowns without sleeping)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bodies(sim: OpenAISimulator) -> list[dict[str, Any]]:
    return [r.json() for r in sim.requests]


# ----------------------------------------------------------------- failover


async def test_429_then_fallback_one_request_per_member(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    sim_a.enqueue(error(429, headers={"retry-after": "7"}))
    r = router([llm(sim_a.url), llm(sim_b.url)])
    assert await r.generate("hi") == ANSWER
    assert (len(sim_a.requests), len(sim_b.requests)) == (1, 1)
    health = await r.ahealth()
    first = health["openai:gpt-4o-mini"]
    assert first.errors == 1 and first.failures == 1 and first.state == "closed"
    assert 6.0 < first.cooling_s <= 7.0  # Retry-After honoured: cooled that long
    # While it cools, the next call goes straight to the second member.
    assert await r.generate("hi") == ANSWER
    assert (len(sim_a.requests), len(sim_b.requests)) == (1, 2)
    assert r.tokens_used == {"input": 24, "output": 8}


async def test_a_cut_after_tokens_on_stream_never_reaches_the_second_member(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    sim_a.enqueue(text_stream(["One", " two", " three"], cut_after=3))
    r = router([llm(sim_a.url), llm(sim_b.url)])
    got: list[str] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async for token in r.stream("hi"):
            got.append(token)
    assert got == ["One", " two"]
    assert caught.value.partial_text == "One two"
    assert caught.value.message.count("The stream failed") == 1
    assert len(sim_a.requests) == 1 and sim_b.requests == []


async def test_generate_fails_over_a_cut_answer_nothing_was_delivered(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    sim_a.enqueue(text_stream(["One", " two", " three"], cut_after=3))
    r = router([llm(sim_a.url), llm(sim_b.url)])
    assert await r.generate("hi") == ANSWER
    assert (len(sim_a.requests), len(sim_b.requests)) == (1, 1)


async def test_5xx_and_a_dead_port_fail_over_the_members_own_retries_first(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    sim_a.enqueue(error(500), error(503))
    r = router([llm(sim_a.url, max_retries=1), llm(dead_url()), llm(sim_b.url)])
    assert await r.generate("hi") == ANSWER
    assert (len(sim_a.requests), len(sim_b.requests)) == (2, 1)  # a retried once, then b


async def test_an_invalid_request_is_not_failed_over_unless_configured(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    sim_a.enqueue(error(400))
    r = router([llm(sim_a.url), llm(sim_b.url)])
    with pytest.raises(InvalidRequestError):
        await r.generate("hi")
    assert (len(sim_a.requests), len(sim_b.requests)) == (1, 0)
    assert (await r.ahealth())["openai:gpt-4o-mini"].failures == 0  # not the member's fault
    sim_a.enqueue(error(400))
    lenient = router([llm(sim_a.url), llm(sim_b.url)], fail_over_invalid=True)
    assert await lenient.generate("hi") == ANSWER
    assert (len(sim_a.requests), len(sim_b.requests)) == (2, 1)


async def test_every_member_failing_lists_each_failure(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    sim_a.enqueue(error(500))
    sim_b.enqueue(error(429, headers={"retry-after": "3"}))
    r = router([llm(sim_a.url), llm(sim_b.url, "gpt-4o")])
    with pytest.raises(AllMembersFailedError) as caught:
        await r.generate("hi")
    exc = caught.value
    assert list(exc.failures) == ["openai:gpt-4o-mini", "openai:gpt-4o"]
    assert isinstance(exc.failures["openai:gpt-4o-mini"], ServerError)
    assert isinstance(exc.failures["openai:gpt-4o"], RateLimitError)
    assert exc.__cause__ is exc.failures["openai:gpt-4o"]
    assert exc.retry_after == 3.0 and exc.retryable
    assert API_KEY not in str(exc) and API_KEY not in repr(r)


# ----------------------------------------------------------------- circuit breakers


async def test_a_dead_endpoint_opens_the_breaker_then_one_half_open_probe(
    sim_b: OpenAISimulator,
) -> None:
    tracer = TokenTracer()
    dead = llm(dead_url())
    clock = Clock()
    r = router([dead, llm(sim_b.url)], tracer=tracer,
               state=MemoryRouterState(3, 30.0, clock=clock))
    for _ in range(20):
        assert await r.generate("hi") == ANSWER
    health = (await r.ahealth())["openai:gpt-4o-mini"]
    assert health.state == "open" and health.errors == 3  # tried threshold times, then skipped
    assert len(sim_b.requests) == 20
    failed = [rec for rec in tracer.records if rec.error is not None]
    assert len(failed) == 3 and {rec.error for rec in failed} == {"ConnectionError"}
    clock.now += 30.0
    assert (await r.ahealth())["openai:gpt-4o-mini"].state == "half_open"
    answers = await asyncio.gather(*(r.generate("hi") for _ in range(10)))
    assert answers == [ANSWER] * 10
    health = (await r.ahealth())["openai:gpt-4o-mini"]
    assert health.errors == 4 and health.state == "open"  # exactly one probe, which failed
    assert len([rec for rec in tracer.records if rec.error is not None]) == 4


async def test_a_successful_probe_closes_the_breaker(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    sim_a.enqueue(error(500), error(500))
    clock = Clock()
    r = router([llm(sim_a.url), llm(sim_b.url)], state=MemoryRouterState(2, 30.0, clock=clock))
    await r.generate("hi")
    await r.generate("hi")
    assert (await r.ahealth())["openai:gpt-4o-mini"].state == "open"
    await r.generate("hi")
    assert (len(sim_a.requests), len(sim_b.requests)) == (2, 3)
    clock.now += 30.0
    assert await r.generate("hi") == ANSWER  # the probe, answered by a
    health = (await r.ahealth())["openai:gpt-4o-mini"]
    assert (health.state, health.failures, health.successes) == ("closed", 0, 1)
    assert health.ttft_ms is not None and health.ttft_ms > 0
    assert (len(sim_a.requests), len(sim_b.requests)) == (3, 3)


async def test_two_routers_share_breaker_state_through_redis(
    sim_b: OpenAISimulator, redis_url: str
) -> None:
    dead = dead_url()
    options: dict[str, Any] = {
        "failure_threshold": 2, "cooldown": 30.0, "state": "redis", "redis_url": redis_url,
        "name": "shared-test",
    }
    first = router([llm(dead), llm(sim_b.url)], **options)
    second = router([llm(dead), llm(sim_b.url)], **options)
    await first.generate("hi")
    await first.generate("hi")
    seen = (await second.ahealth())["openai:gpt-4o-mini"]
    assert (seen.state, seen.errors, seen.failures) == ("open", 2, 2)
    for _ in range(5):
        assert await second.generate("hi") == ANSWER  # never tries the dead member
    assert (await first.ahealth())["openai:gpt-4o-mini"].errors == 2
    assert len(sim_b.requests) == 7
    lonely = router([llm(dead), llm(sim_b.url)], failure_threshold=2)  # in-process state
    await lonely.generate("hi")
    assert (await lonely.ahealth())["openai:gpt-4o-mini"].errors == 1


# ----------------------------------------------------------------- strategies


async def test_round_robin_splits_1000_concurrent_calls_evenly(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    a, b = llm(sim_a.url), llm(sim_b.url)
    r = router([a, b], "round_robin")
    answers = await asyncio.gather(*(r.generate("hi") for _ in range(1000)))
    assert answers == [ANSWER] * 1000
    assert (len(sim_a.requests), len(sim_b.requests)) == (500, 500)
    assert r.tokens_used == {"input": 12_000, "output": 4_000}
    assert a.tokens_used == b.tokens_used == {"input": 6_000, "output": 2_000}
    health = await r.ahealth()
    assert [h.in_flight for h in health.values()] == [0, 0]


async def test_weighted_follows_the_weights(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    r = router([(llm(sim_a.url), 3), (llm(sim_b.url), 1)], "weighted")
    for _ in range(8):
        await r.generate("hi")
    assert (len(sim_a.requests), len(sim_b.requests)) == (6, 2)


async def test_least_busy_spreads_concurrent_calls(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    r = router([llm(sim_a.url), llm(sim_b.url)], "least_busy")
    await asyncio.gather(*(r.generate("hi") for _ in range(10)))
    assert len(sim_a.requests) + len(sim_b.requests) == 10
    assert abs(len(sim_a.requests) - len(sim_b.requests)) <= 2


async def test_least_latency_prefers_the_faster_member(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    sim_a.default = text_stream(["Hello", ",", " world", "!"], prompt_tokens=12, delay=0.05)
    try:
        r = router([llm(sim_a.url), llm(sim_b.url)], "least_latency")
        for _ in range(6):
            await r.generate("hi")
    finally:
        sim_a.default = text_stream(["Hello", ",", " world", "!"], prompt_tokens=12)
    health = await r.ahealth()
    slow, fast = health["openai:gpt-4o-mini"], health["openai:gpt-4o-mini#2"]
    assert slow.ttft_ms is not None and fast.ttft_ms is not None
    assert slow.ttft_ms > fast.ttft_ms
    assert len(sim_a.requests) == 1 and len(sim_b.requests) == 5  # measured once, then avoided


async def test_cheapest_picks_gpt_4o_mini_over_gpt_4o(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    r = router([llm(sim_a.url, "gpt-4o"), llm(sim_b.url, "gpt-4o-mini")], "cheapest")
    response = await r.respond("hi")
    assert response.text == ANSWER
    assert (len(sim_a.requests), len(sim_b.requests)) == (0, 1)
    assert bodies(sim_b)[0]["model"] == "gpt-4o-mini"
    assert response.metadata["router_member"] == "openai:gpt-4o-mini"
    assert response.cost_usd == pytest.approx((12 * 0.15 + 4 * 0.60) / 1e6, abs=1e-15)
    assert r.selected_model == "gpt-4o-mini"


WEATHER = Tool(
    name="weather", description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]},
)


async def test_cheapest_skips_a_member_without_tools_for_a_tool_request(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    # o1-mini ($1.10 / $4.40) is cheaper than gpt-4o ($2.50 / $10) but takes no tools.
    r = router([llm(sim_a.url, "o1-mini"), llm(sim_b.url, "gpt-4o")], "cheapest")
    await r.respond("weather in Paris?", tools=[WEATHER])
    assert (len(sim_a.requests), len(sim_b.requests)) == (0, 1)
    assert bodies(sim_b)[0]["tools"][0]["function"]["name"] == "weather"
    await r.generate("hi")  # no tools: the cheaper one
    assert (len(sim_a.requests), len(sim_b.requests)) == (1, 1)


async def test_cheapest_with_no_capable_member_says_why_and_sends_nothing(
    sim_a: OpenAISimulator,
) -> None:
    import warnings

    tracer = TokenTracer()
    r = router([llm(sim_a.url, "o1-mini")], "cheapest", tracer=tracer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unknown-price warning for the router's record
        with pytest.raises(NoCapableMemberError) as caught:
            await r.generate("weather?", tools=[WEATHER])
    assert caught.value.reasons == {"openai:o1-mini": "takes no tools"}
    assert "Nothing was sent" in str(caught.value)
    assert sim_a.requests == []
    assert [(rec.provider, rec.error, rec.total_tokens) for rec in tracer.records] == [
        ("router", "NoCapableMemberError", 0),
    ]


# ----------------------------------------------------------------- the call path


async def test_a_shared_tracer_counts_each_attempt_once_with_its_member(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    tracer = TokenTracer()
    sim_a.enqueue(error(503))
    r = router([llm(sim_a.url, "gpt-4o"), llm(sim_b.url)], tracer=tracer)
    assert await r.generate("hi") == ANSWER
    records = tracer.records
    assert [(rec.provider, rec.model, rec.error) for rec in records] == [
        ("openai", "gpt-4o", "ServerError"), ("openai", "gpt-4o-mini", None),
    ]
    assert records[1].input_tokens == 12 and records[1].output_tokens == 4
    assert r.tracer is tracer and all(m.tracer is tracer for m in r.members)


async def test_a_router_cache_hit_is_traced_once_by_the_router(
    sim_a: OpenAISimulator,
) -> None:
    from synapsekit.llm.cache import MemoryCache

    tracer = TokenTracer()
    r = router([llm(sim_a.url)], tracer=tracer, cache=MemoryCache())
    assert await r.generate("hi") == ANSWER
    await asyncio.sleep(0.05)  # the store runs in the background
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the router's own record is priced: nothing billed
        assert await r.generate("hi") == ANSWER
    assert len(sim_a.requests) == 1
    assert [(rec.provider, rec.cache_hit, rec.cost_usd) for rec in tracer.records] == [
        ("openai", False, pytest.approx((12 * 0.15 + 4 * 0.60) / 1e6, abs=1e-15)),
        ("router", True, 0.0),
    ]


async def test_the_system_prompt_is_never_doubled(
    sim_a: OpenAISimulator,
) -> None:
    member = llm(sim_a.url, system_prompt="Member prompt.")
    await router([member]).generate("hi")
    await router([member], system_prompt="Router prompt.").generate("hi")
    await router([member]).generate("hi", system_prompt="Call prompt.")
    systems = [
        [m["content"] for m in body["messages"] if m["role"] in ("system", "developer")]
        for body in bodies(sim_a)
    ]
    assert systems == [["Member prompt."], ["Router prompt."], ["Call prompt."]]


async def test_per_call_overrides_and_keys_reach_the_member(
    sim_a: OpenAISimulator,
) -> None:
    member = llm(sim_a.url, api_key="sk-someone-elses-key")
    r = router([member])
    text = await r.generate("hi", temperature=0.7, max_tokens=33, api_key=API_KEY)
    assert text == ANSWER
    body = bodies(sim_a)[0]
    assert body["temperature"] == 0.7 and body["max_completion_tokens"] == 33
    assert sim_a.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_tools_respond_and_run_tools_through_a_router(
    sim_a: OpenAISimulator,
) -> None:
    from synapsekit.testing.simulators.openai_protocol import capture

    sim_a.enqueue(capture("openai/stream_tool_call.sse"))
    r = router([llm(sim_a.url)])
    response = await r.respond("weather in Paris?", tools=[WEATHER])
    assert len(response.tool_calls) == 1 and response.finish_reason == "tool_calls"


def test_the_sync_variants_work(sim_a: OpenAISimulator) -> None:
    r = Router([make_llm("gpt-4o-mini", api_key=API_KEY, base_url=sim_a.url)])
    try:
        assert r.generate_sync("hi") == ANSWER
        assert "".join(r.stream_sync("hi")) == ANSWER
        assert r.health()["openai:gpt-4o-mini"].successes == 2
    finally:
        r.close()


async def test_a_router_budget_is_reserved_at_the_members_prices(
    sim_a: OpenAISimulator,
) -> None:
    from synapsekit.errors import BudgetExceededError
    from synapsekit.llm.budget import Budget

    worst = (8 * 0.15 + 100 * 0.60) / 1e6  # "hi" + the default system prompt, max_tokens=100
    budget = Budget(limit_usd=worst * 1.5)
    r = router([llm(sim_a.url, max_tokens=100)], budget=budget)
    assert await r.generate("hi") == ANSWER
    assert budget.spent_usd == pytest.approx((12 * 0.15 + 4 * 0.60) / 1e6, abs=1e-12)
    tight = Budget(limit_usd=worst / 2)
    with pytest.raises(BudgetExceededError):
        await r.generate("hi", budget=tight)
    assert len(sim_a.requests) == 1


# ----------------------------------------------------------------- construction


def test_members_from_names_configs_and_pairs() -> None:
    from synapsekit.llm.config import LLMConfig

    r = Router([LLMConfig(model="gpt-4o-mini", api_key=API_KEY),
                (LLMConfig(model="claude-sonnet-4-5", api_key=API_KEY), 2)], "weighted")
    assert [m.provider for m in r.members] == ["openai", "anthropic"]
    assert repr(r) == (
        "Router(strategy='weighted', members=[openai:gpt-4o-mini, anthropic:claude-sonnet-4-5])"
    )
    with pytest.raises(ConfigError):
        Router([])
    with pytest.raises(ConfigError):
        Router(["gpt-4o"], "fastest")
    with pytest.raises(ConfigError):
        Router([("gpt-4o", 0)])


async def test_synapsekit_names_fallback_chain_and_cost_router(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    sim_a.enqueue(error(500))
    chain = FallbackChain(FallbackChainConfig(models=[llm(sim_a.url), llm(sim_b.url)]))
    _made.append(chain)
    assert await chain.generate("hi") == ANSWER and chain.strategy == "fallback"
    cost = CostRouter(CostRouterConfig(models=[
        RouterModelSpec(model="gpt-4o", api_key=API_KEY, base_url=sim_a.url, quality=0.9),
        RouterModelSpec(model="gpt-4o-mini", api_key=API_KEY, base_url=sim_b.url, quality=0.8),
        RouterModelSpec(model="gpt-3.5-turbo", api_key=API_KEY, base_url=sim_b.url,
                        quality=0.4),
    ], quality_threshold=0.7))
    _made.append(cost)
    assert [m.model for m in cost.members] == ["gpt-4o", "gpt-4o-mini"]
    assert await cost.generate("hi") == ANSWER
    assert cost.selected_model == "gpt-4o-mini"
    assert (len(sim_a.requests), len(sim_b.requests)) == (1, 2)


async def test_each_member_gets_the_users_own_key_for_it(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    r = router([llm(sim_a.url, api_key="sk-service-a"), llm(sim_b.url, "gpt-4o")])
    # The user's key for the first member is refused: that member fails over, and the
    # refusal is the key's fault, not the member's (its breaker does not move).
    assert await r.generate("hi", api_key={"openai:gpt-4o-mini": "sk-bad-user-key"}) == ANSWER
    assert (len(sim_a.requests), len(sim_b.requests)) == (1, 1)
    assert sim_a.requests[0].headers["authorization"] == "Bearer sk-bad-user-key"
    assert sim_b.requests[0].headers["authorization"] == f"Bearer {API_KEY}"  # its own
    health = (await r.ahealth())["openai:gpt-4o-mini"]
    assert (health.failures, health.errors) == (0, 0)
    assert await r.generate("hi", api_key={"openai": API_KEY}) == ANSWER  # by provider
    assert (len(sim_a.requests), len(sim_b.requests)) == (2, 1)
    with pytest.raises(ConfigError):
        await r.generate("hi", api_key={"openai": ""})
    assert (len(sim_a.requests), len(sim_b.requests)) == (2, 1)


async def test_two_users_keys_never_share_a_router_cache_entry(
    sim_a: OpenAISimulator,
) -> None:
    from synapsekit.llm.cache import MemoryCache

    r = router([llm(sim_a.url)], cache=MemoryCache())
    await r.generate("hi", api_key={"openai": API_KEY})
    await asyncio.sleep(0.05)
    await r.generate("hi", api_key={"openai": API_KEY})  # the same user: a hit
    assert len(sim_a.requests) == 1
    sim_a.api_key = "sk-second-user"
    try:
        await r.generate("hi", api_key={"openai": "sk-second-user"})  # another user: sent
    finally:
        sim_a.api_key = API_KEY
    assert len(sim_a.requests) == 2


def test_the_router_service_example_loses_no_request() -> None:
    """The issue's "done when": three providers, a daily budget, each user's own keys,
    one provider's outage, no request lost (examples/router_service.py, offline)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    out = subprocess.run([sys.executable, "examples/router_service.py"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "requests: 30, answered: 30, lost: 0"
    assert "requests each provider received: openai 7, anthropic 16, mistral 10" in lines
    assert any("openai:gpt-4o-mini" in line and "breaker open" in line and "errors 3" in line
               for line in lines)
    # 4 + 10 calls at $0.0000042 (gpt-4o-mini, mistral-small) + 16 at $0.000032 (haiku 4.5)
    assert lines[-1] == "spent today: $0.000571 of $5.00"


async def test_a_context_length_error_goes_to_a_member_with_a_longer_context(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    too_long = error(400, {"error": {
        "message": "This model's maximum context length is 128000 tokens.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded",
    }})
    sim_a.enqueue(too_long)
    # gpt-4o has the same 128k window as gpt-4o-mini: skipped; gpt-4.1-mini has ~1M.
    r = router([llm(sim_a.url), llm(sim_a.url, "gpt-4o"), llm(sim_b.url, "gpt-4.1-mini")])
    assert await r.generate("a long document ...") == ANSWER
    assert [b["model"] for b in bodies(sim_a)] == ["gpt-4o-mini"]
    assert [b["model"] for b in bodies(sim_b)] == ["gpt-4.1-mini"]
    assert (await r.ahealth())["openai:gpt-4o-mini"].failures == 0  # the request's size
    sim_a.enqueue(too_long)
    alone = router([llm(sim_a.url), llm(sim_a.url, "gpt-4o")])
    with pytest.raises(AllMembersFailedError) as caught:
        await alone.generate("a long document ...")
    assert caught.value.skipped == {"openai:gpt-4o": "its context is not longer"}


async def test_run_tools_and_generate_object_through_a_router(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    from synapsekit.testing.simulators.openai_protocol import capture

    calls: list[str] = []

    def get_weather(city: str) -> str:
        calls.append(city)
        return "sunny"

    tool = Tool(name="get_weather", description="The weather in a city.",
                parameters={"type": "object", "properties": {"city": {"type": "string"}}},
                function=get_weather)
    sim_a.enqueue(error(500))  # the first member is down: the loop runs on the second
    sim_b.enqueue(capture("openai/stream_tool_call.sse"))
    r = router([llm(sim_a.url), llm(sim_b.url)], failure_threshold=1, cooldown=60.0)
    final = await r.run_tools("Weather in New York?", tools=[tool])
    assert calls == ["New York City"] and final.text == ANSWER
    assert (len(sim_a.requests), len(sim_b.requests)) == (1, 2)
    assert [m["role"] for m in bodies(sim_b)[1]["messages"]][-2:] == ["assistant", "tool"]
    sim_b.enqueue(text_stream(['{"city": ', '"Paris"}']))
    found = await r.generate_object("Which city?", schema={
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
        "additionalProperties": False,
    })
    assert found == {"city": "Paris"}
    assert bodies(sim_b)[2]["response_format"]["type"] == "json_schema"


async def test_a_caller_leaving_the_stream_early_frees_the_member(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    tracer = TokenTracer()
    r = router([llm(sim_a.url), llm(sim_b.url)], tracer=tracer)
    stream = r.stream("hi")
    assert await stream.__anext__() == "Hello"
    await stream.aclose()
    health = (await r.ahealth())["openai:gpt-4o-mini"]
    assert (health.in_flight, health.failures, health.errors) == (0, 0, 0)
    assert [(rec.provider, rec.error) for rec in tracer.records] == [("openai", "GeneratorExit")]
    assert sim_b.requests == []


async def test_a_dead_redis_never_stops_a_call_the_process_decides_alone(
    sim_a: OpenAISimulator, sim_b: OpenAISimulator
) -> None:
    dead_redis = dead_url().replace("http://", "redis://").replace("/v1", "/0")
    sim_a.enqueue(error(500), error(500))
    r = router([llm(sim_a.url), llm(sim_b.url)], state="redis", redis_url=dead_redis,
               failure_threshold=2)
    for _ in range(4):
        assert await r.generate("hi") == ANSWER
    assert (len(sim_a.requests), len(sim_b.requests)) == (2, 4)  # opened in-process
    assert (await r.ahealth())["openai:gpt-4o-mini"].state == "open"


async def test_one_half_open_probe_between_two_routers_on_redis(
    sim_b: OpenAISimulator, redis_url: str
) -> None:
    dead = dead_url()
    clock = Clock(1_000_000.0)  # both processes' wall clocks, agreeing

    def shared() -> RedisRouterState:
        # A generous round-trip deadline: on a loaded machine the default (0.25 s) can pass,
        # and then each process rightly decides in-process and probes on its own (found by CI).
        return RedisRouterState(1, 30.0, url=redis_url, name="probe-test", clock=clock,
                                timeout=10.0)

    first = router([llm(dead), llm(sim_b.url)], state=shared())
    second = router([llm(dead), llm(sim_b.url)], state=shared())
    await first.generate("hi")
    assert (await second.ahealth())["openai:gpt-4o-mini"].state == "open"
    clock.now += 30.0
    answers = await asyncio.gather(
        *(r.generate("hi") for r in (first, second) for _ in range(5))
    )
    assert answers == [ANSWER] * 10
    health = (await first.ahealth())["openai:gpt-4o-mini"]
    assert (health.errors, health.state, health.in_flight) == (2, "open", 0)  # one probe
    assert len(sim_b.requests) == 11
    assert second.health()["openai:gpt-4o-mini"].errors == 2
