"""Budgets in the call path: the worst case is reserved before a request, the real cost
settled after it; through the real openai SDK over real HTTP against the simulator, and
across four processes on one Redis budget (a real redis-server).

The numbers: gpt-4o-mini costs $0.15 / $0.60 per million input / output tokens; the prompt
"hi" with the default system prompt ("You are a helpful assistant.", 28 characters) is
estimated at ceil(28 / 4) + ceil(2 / 4) = 8 input tokens and ``max_tokens=100``, so a call
reserves (8 x 0.15 + 100 x 0.60) / 1e6 = $0.0000612; the simulator's default answer uses 12
input and 4 output tokens: (12 x 0.15 + 4 x 0.60) / 1e6 = $0.0000042.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from typing import Any

import pytest

from synapsekit import LLMConfig, make_llm
from synapsekit.errors import (
    BudgetExceededError,
    ServerError,
    StreamInterruptedError,
    UnpricedModelError,
)
from synapsekit.llm.budget import Budget
from synapsekit.llm.cache import MemoryCache
from synapsekit.llm.providers.openai_compat import OpenAILLM
from synapsekit.llm.spend import worst_case_usd
from synapsekit.llm.types import Message
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, error, text_stream
from tests.conftest import API_KEY

WORST = (8 * 0.15 + 100 * 0.60) / 1e6
COST = (12 * 0.15 + 4 * 0.60) / 1e6
EXACT = 1e-12

_made: list[Any] = []


@pytest.fixture(autouse=True)
async def _close() -> Any:
    yield
    while _made:
        await _made.pop().aclose()


def llm_of(sim: OpenAISimulator, budget: Budget | None = None, **fields: Any) -> Any:
    fields.setdefault("max_tokens", 100)
    llm = make_llm("gpt-4o-mini", api_key=API_KEY, base_url=sim.url, budget=budget,
                   retry_delay=0.01, **fields)
    _made.append(llm)
    return llm


def test_the_worst_case_is_input_estimate_plus_max_tokens() -> None:
    config = LLMConfig(model="gpt-4o-mini", provider="openai", max_tokens=100)
    turns = [Message(role="system", content="You are a helpful assistant."),
             Message(role="user", content="hi")]
    assert worst_case_usd("openai", config, turns) == pytest.approx(WORST, abs=EXACT)
    long = [Message(role="user", content="x" * 4000)]  # 1,000 estimated input tokens
    assert worst_case_usd("openai", config, long) == pytest.approx(
        (1000 * 0.15 + 100 * 0.60) / 1e6, abs=EXACT)


def test_a_tiered_price_reserves_at_the_tier_of_the_estimated_input() -> None:
    from synapsekit.llm import pricing

    config = LLMConfig(model="gemini-2.5-pro", provider="gemini", max_tokens=100)
    price = pricing.price_for("gemini", "gemini-2.5-pro")
    assert price is not None and price.tiers
    tier = price.tiers[0]
    over = tier.above_input_tokens + 4  # estimated tokens just above the tier's threshold
    long = [Message(role="user", content="x" * (over * 4))]
    rates = price.at(over)
    assert rates.input != price.input
    assert worst_case_usd("gemini", config, long) == pytest.approx(
        (over * rates.input + 100 * max(rates.output, rates.reasoning or 0.0)) / 1e6,
        abs=EXACT)


# ---------------------------------------------------------------------- before the call


async def test_a_call_that_does_not_fit_sends_nothing(openai_sim: OpenAISimulator) -> None:
    budget = Budget(limit_usd=WORST * 0.999)
    llm = llm_of(openai_sim, budget)
    with pytest.raises(BudgetExceededError) as info:
        await llm.generate("hi")
    assert info.value.requested_usd == pytest.approx(WORST, abs=EXACT)
    with pytest.raises(BudgetExceededError):
        [t async for t in llm.stream("hi")]
    with pytest.raises(BudgetExceededError):
        await llm.respond("hi")
    assert openai_sim.requests == []
    assert budget.spent_usd == 0.0
    assert llm.tokens_used == {"input": 0, "output": 0}


async def test_a_call_that_fits_exactly_is_sent_and_settled_to_its_cost(
    openai_sim: OpenAISimulator,
) -> None:
    budget = Budget(limit_usd=WORST)
    llm = llm_of(openai_sim, budget)
    assert await llm.generate("hi") == "Hello, world!"
    assert await budget.aspent() == pytest.approx(COST, abs=EXACT)
    assert budget.remaining_usd == pytest.approx(WORST - COST, abs=EXACT)
    with pytest.raises(BudgetExceededError):  # WORST no longer fits
        await llm.generate("hi")
    assert len(openai_sim.requests) == 1


async def test_a_cache_hit_reserves_nothing(openai_sim: OpenAISimulator) -> None:
    budget = Budget(limit_usd=WORST)
    llm = llm_of(openai_sim, budget, cache=MemoryCache())
    assert await llm.generate("hi") == "Hello, world!"
    for _ in range(3):  # WORST would not fit any more: hits need none
        assert await llm.generate("hi") == "Hello, world!"
    assert len(openai_sim.requests) == 1
    assert await budget.aspent() == pytest.approx(COST, abs=EXACT)


async def test_the_calls_budget_wins_over_the_llms(openai_sim: OpenAISimulator) -> None:
    own, call = Budget(limit_usd=1.0), Budget(limit_usd=1.0)
    llm = llm_of(openai_sim, own)
    await llm.generate("hi", budget=call)
    await llm.generate("hi")
    assert await call.aspent() == pytest.approx(COST, abs=EXACT)
    assert await own.aspent() == pytest.approx(COST, abs=EXACT)
    with pytest.raises(BudgetExceededError):
        await llm.generate("hi", budget=Budget(limit_usd=WORST / 2))
    assert len(openai_sim.requests) == 2


async def test_baseLLM_takes_a_budget(openai_sim: OpenAISimulator) -> None:
    budget = Budget(limit_usd=1.0)
    llm = OpenAILLM(LLMConfig(model="gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url,
                              max_tokens=100), budget=budget)
    _made.append(llm)
    assert llm.budget is budget
    await llm.generate("hi")
    assert await budget.aspent() == pytest.approx(COST, abs=EXACT)


async def test_an_unpriced_model_is_refused_unless_allowed(
    openai_sim: OpenAISimulator,
) -> None:
    llm = make_llm("my-own-finetune", provider="openai", api_key=API_KEY,
                   base_url=openai_sim.url, budget=Budget(limit_usd=1.0))
    _made.append(llm)
    with pytest.raises(UnpricedModelError, match="allow_unpriced"):
        await llm.generate("hi")
    assert openai_sim.requests == []
    allowed = Budget(limit_usd=1.0, allow_unpriced=True)
    with pytest.warns(UserWarning, match="No price is known"):
        assert await llm.generate("hi", budget=allowed) == "Hello, world!"
    assert await allowed.aspent() == 0.0
    assert len(openai_sim.requests) == 1


# ---------------------------------------------------------------------- after the call


async def test_every_billed_attempt_is_settled(openai_sim: OpenAISimulator) -> None:
    budget = Budget(limit_usd=1.0)
    llm = llm_of(openai_sim, budget, max_retries=2)
    # A 500 (nothing answered: not billed), then a stream cut after a token (answered,
    # no usage reported: its worst case is kept), then the answer.
    openai_sim.enqueue(error(500), text_stream(["Hello", ", world!"], cut_after=2))
    assert await llm.generate("hi") == "Hello, world!"
    assert len(openai_sim.requests) == 3
    assert await budget.aspent() == pytest.approx(WORST + COST, abs=EXACT)


async def test_a_failed_call_settles_what_was_billed(openai_sim: OpenAISimulator) -> None:
    budget = Budget(limit_usd=1.0)
    llm = llm_of(openai_sim, budget, max_retries=0)
    openai_sim.enqueue(error(500))
    with pytest.raises(ServerError):
        await llm.generate("hi")
    assert await budget.aspent() == 0.0
    assert budget.remaining_usd == pytest.approx(1.0, abs=EXACT)


async def test_a_stream_settles_when_it_ends(openai_sim: OpenAISimulator) -> None:
    budget = Budget(limit_usd=1.0)
    llm = llm_of(openai_sim, budget)
    stream = llm.stream("hi")
    assert await stream.__anext__() == "Hello"
    assert budget.remaining_usd == pytest.approx(1.0 - WORST, abs=EXACT)  # held meanwhile
    assert "".join([t async for t in stream]) == ", world!"
    assert await budget.aspent() == pytest.approx(COST, abs=EXACT)
    assert budget.remaining_usd == pytest.approx(1.0 - COST, abs=EXACT)


async def test_an_interrupted_stream_keeps_its_reservation(
    openai_sim: OpenAISimulator,
) -> None:
    budget = Budget(limit_usd=1.0)
    llm = llm_of(openai_sim, budget)
    openai_sim.enqueue(text_stream(["Hello", ", world!"], cut_after=2))
    with pytest.raises(StreamInterruptedError):
        [t async for t in llm.stream("hi")]
    assert await budget.aspent() == pytest.approx(WORST, abs=EXACT)  # no usage reported


async def test_an_abandoned_stream_keeps_its_reservation(
    openai_sim: OpenAISimulator,
) -> None:
    budget = Budget(limit_usd=1.0)
    llm = llm_of(openai_sim, budget)
    stream = llm.stream("hi")
    assert await stream.__anext__() == "Hello"
    await stream.aclose()
    assert await budget.aspent() == pytest.approx(WORST, abs=EXACT)
    assert budget.remaining_usd == pytest.approx(1.0 - WORST, abs=EXACT)


async def test_a_cancelled_stream_keeps_its_reservation(openai_sim: OpenAISimulator) -> None:
    budget = Budget(limit_usd=1.0)
    llm = llm_of(openai_sim, budget)
    openai_sim.enqueue(text_stream(["Hello", ", world!"], delay=0.2))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.stream("hi"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await budget.aspent() == pytest.approx(WORST, abs=EXACT)


# ---------------------------------------------------------------------- concurrency


async def test_fifty_concurrent_calls_never_overspend(openai_sim: OpenAISimulator) -> None:
    budget = Budget(limit_usd=10.5 * WORST)  # room for 10 reservations
    llm = llm_of(openai_sim, budget)
    openai_sim.enqueue(*[text_stream(["Hello", ", world!"], prompt_tokens=12,
                                     completion_tokens=4, delay=0.1)] * 50)
    results = await asyncio.gather(*[llm.generate("hi") for _ in range(50)],
                                   return_exceptions=True)
    answered = [r for r in results if r == "Hello, world!"]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert (len(answered), len(refused)) == (10, 40)
    assert len(openai_sim.requests) == 10
    assert await budget.aspent() == pytest.approx(10 * COST, abs=EXACT)
    assert await budget.aspent() <= budget.limit_usd


async def test_calls_in_turn_stop_at_the_limit(openai_sim: OpenAISimulator) -> None:
    limit = 2 * WORST
    budget = Budget(limit_usd=limit)
    llm = llm_of(openai_sim, budget)
    sent = 0
    while True:
        try:
            await llm.generate("hi")
        except BudgetExceededError:
            break
        sent += 1
    # Each call settles at COST; the last one sent still had WORST of room.
    expected = int((limit - WORST) // COST) + 1
    assert sent == expected == len(openai_sim.requests)
    spent = await budget.aspent()
    assert spent == pytest.approx(expected * COST, abs=1e-11)
    assert spent <= limit < spent + WORST


def _process(base_url: str, redis_url: str, limit: float, calls: int, barrier: Any) -> list[int]:
    """One of four processes: ``calls`` concurrent calls on the shared Redis budget."""

    async def run() -> list[int]:
        budget = Budget(limit_usd=limit, backend="redis", redis_url=redis_url,
                        name="h4-four-processes")
        llm = make_llm("gpt-4o-mini", api_key=API_KEY, base_url=base_url, max_tokens=100,
                       budget=budget)
        await asyncio.to_thread(barrier.wait)
        results = await asyncio.gather(*[llm.generate("hi") for _ in range(calls)],
                                       return_exceptions=True)
        await llm.aclose()
        answered = sum(1 for r in results if r == "Hello, world!")
        refused = sum(1 for r in results if isinstance(r, BudgetExceededError))
        return [answered, refused]

    return asyncio.run(run())


def test_four_processes_on_one_redis_budget_never_overspend(
    openai_sim: OpenAISimulator, redis_url: str
) -> None:
    limit = 10.5 * WORST
    openai_sim.enqueue(*[text_stream(["Hello", ", world!"], prompt_tokens=12,
                                     completion_tokens=4, delay=0.4)] * 50)
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(4)
    with context.Pool(4) as pool:
        jobs = [pool.apply_async(_process, (openai_sim.url, redis_url, limit, n, barrier))
                for n in (13, 13, 12, 12)]
        counts = [job.get(timeout=120) for job in jobs]
    answered = sum(c[0] for c in counts)
    refused = sum(c[1] for c in counts)
    assert (answered, refused) == (10, 40)
    assert len(openai_sim.requests) == 10
    spent = asyncio.run(Budget(limit_usd=limit, backend="redis", redis_url=redis_url,
                               name="h4-four-processes").aspent())
    assert spent == pytest.approx(10 * COST, abs=1e-9)
    assert spent <= limit


async def test_an_interrupted_stream_settles_what_the_provider_reported() -> None:
    """Anthropic reports the input tokens (and 1 output token) in ``message_start``: a
    stream cut after a token settles those, $3 / $15 per million: (10 x 3 + 1 x 15) / 1e6."""
    from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator
    from synapsekit.testing.simulators.anthropic_protocol import text_stream as claude_text

    with AnthropicSimulator(API_KEY) as sim:
        budget = Budget(limit_usd=1.0)
        llm = make_llm("claude-sonnet-4-6", api_key=API_KEY, base_url=sim.url,
                       max_tokens=100, budget=budget)
        _made.append(llm)
        # message_start, content_block_start, ping, "Hello": then the connection drops
        sim.enqueue(claude_text(["Hello", ", world!"], input_tokens=10, cut_after=4))
        with pytest.raises(StreamInterruptedError):
            [t async for t in llm.stream("hi")]
        assert len(sim.requests) == 1
        assert await budget.aspent() == pytest.approx((10 * 3.0 + 1 * 15.0) / 1e6, abs=EXACT)
        await llm.aclose()
