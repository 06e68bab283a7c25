"""Rate limiting: exact bucket semantics on virtual time, the same scenarios against the
in-process and the Redis limiter, sharing by provider and key fingerprint, and four real
processes sharing one Redis budget."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from synapsekit._redis import Backoff
from synapsekit.errors import MissingDependencyError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    TokenBucket,
    bucket_key,
    estimate_tokens,
    key_fingerprint,
    limiter_for,
)
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Message, OutputSchema
from tests.redis_faults import frozen_redis
from tests.redis_server import SLOW_MACHINE

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-ratelimit-secret-0123456789"


class VirtualTime:
    """A clock and a sleep on virtual time. :meth:`run` runs tasks and, whenever every
    one of them is asleep, jumps the clock to the earliest wake-up: exact and instant."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._seq), future))
        await future

    async def at(self, when: float) -> None:
        await self.sleep(when - self.now)

    async def run(self, *coros: Coroutine[Any, Any, Any]) -> list[Any]:
        """Run ``coros`` as tasks (started in this order) until they finish. The clock
        moves only when nothing else in the loop can run (its ready queue is empty)."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0)
            if all(task.done() for task in tasks):
                return await asyncio.gather(*tasks, return_exceptions=True)
            if loop._ready:  # type: ignore[attr-defined]  # others can still run
                continue
            when, _, future = heapq.heappop(self._sleepers)  # IndexError: a deadlock
            if not future.done():  # not a cancelled sleeper
                self.now = max(self.now, when)
                future.set_result(None)


class Released:
    """Records who was released, in which order, at which virtual time."""

    def __init__(self, vt: VirtualTime) -> None:
        self.vt = vt
        self.order: list[Any] = []
        self.times: dict[Any, float] = {}

    async def acquire(self, limiter: RateLimiter | TokenBucket, name: Any, n: int = 0) -> None:
        if isinstance(limiter, TokenBucket):
            await limiter.acquire(n or 1)
        else:
            await limiter.acquire(n)
        self.order.append(name)
        self.times[name] = self.vt.now


# --------------------------------------------------------------- virtual time, exact


async def test_starts_full_then_exactly_one_per_interval_fifo_under_1000_callers() -> None:
    vt = VirtualTime()
    limiter = MemoryRateLimiter(120, clock=vt.clock, sleep=vt.sleep)  # one per 0.5 s
    log = Released(vt)
    await vt.run(*(log.acquire(limiter, i) for i in range(1000)))
    assert log.order == list(range(1000))
    assert [log.times[i] for i in range(120)] == [0.0] * 120
    assert [log.times[120 + k - 1] for k in range(1, 881)] == [k * 60 / 120 for k in range(1, 881)]


async def test_refill_is_capped_at_capacity_after_idle() -> None:
    vt = VirtualTime()
    limiter = MemoryRateLimiter(60, clock=vt.clock, sleep=vt.sleep)
    log = Released(vt)
    await vt.run(*(log.acquire(limiter, ("first", i)) for i in range(60)))
    vt.now = 1000.0  # idle far longer than a full refill
    await vt.run(*(log.acquire(limiter, i) for i in range(62)))
    assert [log.times[i] for i in range(60)] == [1000.0] * 60
    assert (log.times[60], log.times[61]) == (1001.0, 1002.0)


async def test_partial_refill_while_idle() -> None:
    vt = VirtualTime()
    bucket = TokenBucket(60, 1.0, clock=vt.clock, sleep=vt.sleep)
    log = Released(vt)
    await vt.run(*(log.acquire(bucket, ("first", i)) for i in range(60)))
    vt.now = 30.0  # half refilled
    assert bucket.available == 30.0
    await vt.run(*(log.acquire(bucket, i) for i in range(32)))
    assert [log.times[i] for i in range(30)] == [30.0] * 30
    assert (log.times[30], log.times[31]) == (31.0, 32.0)


async def test_staggered_arrivals_are_served_in_call_order() -> None:
    vt = VirtualTime()
    limiter = MemoryRateLimiter(60, clock=vt.clock, sleep=vt.sleep)
    log = Released(vt)

    async def late(name: str, when: float) -> None:
        await vt.at(when)
        await log.acquire(limiter, name)

    await vt.run(
        *(log.acquire(limiter, i) for i in range(62)),  # 60 at 0, then 1.0, 2.0
        late("late", 0.5),  # arrives while 60 and 61 wait: served after them, at 3.0
    )
    assert log.order[-3:] == [60, 61, "late"]
    assert (log.times[60], log.times[61], log.times["late"]) == (1.0, 2.0, 3.0)


async def test_tokens_fifo_with_mixed_sizes() -> None:
    vt = VirtualTime()
    limiter = MemoryRateLimiter(None, 600, clock=vt.clock, sleep=vt.sleep)  # 10 tokens/s
    log = Released(vt)
    sizes = {"a": 400, "b": 150, "c": 50, "d": 300, "e": 10}
    await vt.run(*(log.acquire(limiter, name, n) for name, n in sizes.items()))
    assert log.order == ["a", "b", "c", "d", "e"]  # e (small) never overtakes d (big)
    assert log.times == {"a": 0.0, "b": 0.0, "c": 0.0, "d": 30.0, "e": 31.0}


async def test_cancelled_waiter_gives_its_slot_to_the_next_caller() -> None:
    vt = VirtualTime()
    limiter = MemoryRateLimiter(60, clock=vt.clock, sleep=vt.sleep)  # one per second
    log = Released(vt)

    async def scenario() -> asyncio.Task[None]:
        await asyncio.gather(*(log.acquire(limiter, i) for i in range(60)))
        waiting = {n: asyncio.ensure_future(log.acquire(limiter, n)) for n in "ABC"}  # 1, 2, 3
        await vt.at(0.5)
        waiting["B"].cancel()
        await asyncio.gather(log.acquire(limiter, "D"), log.acquire(limiter, "E"))
        await asyncio.gather(waiting["A"], waiting["C"])
        return waiting["B"]

    [cancelled] = await vt.run(scenario())
    assert cancelled.cancelled() and "B" not in log.times
    # B's slot is passed on: D gets 3.0 (shared with C, never before it), E 4.0, not 4 and 5.
    assert {n: log.times[n] for n in "ACDE"} == {"A": 1.0, "C": 3.0, "D": 3.0, "E": 4.0}
    assert log.order[-4:] == ["A", "C", "D", "E"]


async def test_cancelled_big_token_waiter_does_not_let_newcomers_overtake() -> None:
    vt = VirtualTime()
    limiter = MemoryRateLimiter(None, 600, clock=vt.clock, sleep=vt.sleep)  # 10 tokens/s

    log = Released(vt)

    async def scenario() -> asyncio.Task[None]:
        await log.acquire(limiter, "first", 600)
        big = asyncio.ensure_future(log.acquire(limiter, "big", 300))  # due at 30
        small = asyncio.ensure_future(log.acquire(limiter, "small", 10))  # due at 31
        await vt.at(1.0)
        big.cancel()  # its 300 tokens go back
        await asyncio.sleep(0)  # let the cancellation land
        await log.acquire(limiter, "newcomer", 10)  # could go at 2.0, but small is first
        await small
        return big

    [big] = await vt.run(scenario())
    assert big.cancelled()
    assert log.order == ["first", "small", "newcomer"]
    assert log.times == {"first": 0.0, "small": 31.0, "newcomer": 31.0}
    # Nothing was lost: 290 tokens at 31 s, as if "big" had never asked.
    assert limiter._tokens is not None and limiter._tokens.available == 290.0


def test_one_bucket_shared_by_threads_and_event_loops_loses_nothing() -> None:
    bucket = TokenBucket(4000, 1e-9)  # real clock, refill negligible

    def hammer() -> None:
        async def many() -> None:
            await asyncio.gather(*(bucket.acquire() for _ in range(1000)))

        asyncio.run(many())

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert bucket.available == pytest.approx(0.0, abs=1e-6)
    now = time.monotonic()
    assert bucket.reserve(1, now) > now + 1e8  # the next unit is ~1e9 s away


# ----------------------------------------------------- same scenarios, both backends


class RecordingSleep:
    """A sleep that records the delays and returns at once; or raises a cancellation
    (``cancel_next``); or, with ``hold``, waits until its task is cancelled."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.cancel_next = False
        self.hold = False
        self._recorded = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self._recorded.set()
        if self.cancel_next:
            self.cancel_next = False
            raise asyncio.CancelledError
        if self.hold:
            await asyncio.get_running_loop().create_future()

    async def wait_for(self, count: int) -> None:
        while len(self.delays) < count:
            self._recorded.clear()
            await self._recorded.wait()


class Backend:
    """Builds limiters of one backend. Memory: a clock that moves only in :meth:`idle`,
    so delays are exact; Redis: the server's clock, so delays are exact up to the test's
    own run time."""

    def __init__(self, url: str | None, recorder: RecordingSleep) -> None:
        self.url = url
        self.recorder = recorder
        self.now = 0.0
        self.made: list[RedisRateLimiter] = []
        #: How much shorter this backend's delays may be (see :class:`near`).
        self.early = 0.0 if url is None else 0.3

    def __call__(self, rpm: float | None = None, tpm: float | None = None) -> RateLimiter:
        if self.url is None:
            return MemoryRateLimiter(rpm, tpm, clock=lambda: self.now, sleep=self.recorder)
        key = "synapsekit:ratelimit:test"
        self.made.append(RedisRateLimiter(
            self.url, key, rpm, tpm, sleep=self.recorder, timeout=SLOW_MACHINE
        ))
        return self.made[-1]

    async def idle(self, seconds: float) -> None:
        if self.url is None:
            self.now += seconds
        else:
            await asyncio.sleep(seconds)


Make = Backend


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest, recorder: RecordingSleep) -> AsyncIterator[Make]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    backend = Backend(url, recorder)
    yield backend
    for limiter in backend.made:
        await limiter.aclose()


@pytest.fixture
def recorder() -> RecordingSleep:
    return RecordingSleep()


class near:  # a matcher: ``delays == near(1.0, 2.0)``
    """Delays within 0.05 s of ``values``; a Redis limiter's may also be up to ``early``
    seconds shorter: they are computed on the server's clock, and the test's own run time
    between the calls (long on a loaded CI machine) has already passed. Never longer."""

    def __init__(self, *values: float, early: float = 0.0) -> None:
        self.values = values
        self.early = early

    def __eq__(self, other: object) -> bool:
        return isinstance(other, list) and len(other) == len(self.values) and all(
            max(v - self.early - 0.05, v / 2) <= o <= v + 0.05
            for o, v in zip(other, self.values, strict=True)
        )

    def __repr__(self) -> str:
        return f"near{self.values} (early <= {self.early})"


async def test_backend_starts_full_then_one_per_interval(
    make: Make, recorder: RecordingSleep
) -> None:
    limiter = make(rpm=60)
    for _ in range(60):
        await limiter.acquire()
    assert recorder.delays == []
    for _ in range(3):
        await limiter.acquire()
    assert recorder.delays == near(1.0, 2.0, 3.0, early=make.early)


async def test_backend_refill_stops_at_capacity(make: Make, recorder: RecordingSleep) -> None:
    limiter = make(tpm=600)  # 10 tokens/s
    await limiter.acquire(1)
    await make.idle(0.3)  # 3 tokens come back, but only 1 fits
    await limiter.acquire(600)
    assert recorder.delays == []
    await limiter.acquire(1)  # uncapped, 2 tokens would be left
    assert recorder.delays == near(0.1, early=make.early)


async def test_backend_tokens_settle_refunds_and_takes(
    make: Make, recorder: RecordingSleep
) -> None:
    limiter = make(tpm=600)  # 10 tokens/s
    assert limiter.counts_tokens
    await limiter.acquire(500)
    await limiter.settle(500, 100)  # 400 back: 500 left
    await limiter.acquire(500)  # no wait
    assert recorder.delays == []
    await limiter.settle(500, 530)  # 30 more: -30
    await limiter.acquire(20)  # -50: 5 s
    assert recorder.delays == near(5.0, early=make.early)


async def test_backend_clamps_tokens_to_capacity(make: Make, recorder: RecordingSleep) -> None:
    limiter = make(tpm=600)
    await limiter.acquire(10_000)  # clamped to 600: the full bucket, no wait
    await limiter.acquire(60)
    await limiter.settle(10_000, 600)  # clamped estimate 600 == actual: nothing changes
    await limiter.acquire(60)
    assert recorder.delays == near(6.0, 12.0, early=make.early)


async def test_backend_requests_and_tokens_together(
    make: Make, recorder: RecordingSleep
) -> None:
    limiter = make(rpm=60, tpm=600)
    await limiter.acquire(300)
    await limiter.acquire(300)
    await limiter.acquire(300)  # tokens in debt by 300: 30 s
    await limiter.acquire(0)  # a request slot is free, but it queues behind: 30 s
    assert recorder.delays == near(30.0, 30.0, early=make.early)


async def test_backend_cancelled_waiter_gives_back(make: Make, recorder: RecordingSleep) -> None:
    limiter = make(rpm=60)
    for _ in range(60):
        await limiter.acquire()
    recorder.cancel_next = True
    with pytest.raises(asyncio.CancelledError):
        await limiter.acquire()  # due at 1.0, cancelled
    await limiter.acquire()  # takes the freed slot: 1.0, not 2.0
    assert recorder.delays == near(1.0, 1.0, early=make.early)


async def test_backend_cancelled_big_waiter_lets_no_newcomer_overtake(
    make: Make, recorder: RecordingSleep
) -> None:
    limiter = make(tpm=600)  # 10 tokens/s
    await limiter.acquire(600)
    recorder.hold = True
    big = asyncio.ensure_future(limiter.acquire(300))  # due at 30
    await recorder.wait_for(1)
    small = asyncio.ensure_future(limiter.acquire(10))  # due at 31
    await recorder.wait_for(2)
    big.cancel()
    with pytest.raises(asyncio.CancelledError):
        await big  # its 300 tokens go back
    recorder.hold = False
    await limiter.acquire(10)  # the tokens are there at 2.0, but small goes first: 31
    assert recorder.delays == near(30.0, 31.0, 31.0, early=make.early)
    small.cancel()
    await asyncio.gather(small, return_exceptions=True)


async def test_backend_settle_without_token_limit_is_a_no_op(
    make: Make, recorder: RecordingSleep
) -> None:
    limiter = make(rpm=60)
    assert not limiter.counts_tokens
    await limiter.settle(100, 10_000)
    for _ in range(60):
        await limiter.acquire(10_000)
    assert recorder.delays == []


# ------------------------------------------------------------ estimate, fingerprint


def test_estimate_tokens() -> None:
    messages: list[Message] = [
        {"role": "system", "content": "abcd"},  # 4
        {"role": "user", "content": "héllo"},  # 5 characters, not bytes
    ]
    assert estimate_tokens(messages, 100) == 3 + 100  # ceil(9 / 4)
    assert estimate_tokens([{"role": "user", "content": "abcdefgh"}], 1) == 2 + 1
    assert estimate_tokens([{"role": "user", "content": "a"}], 7) == 1 + 7


def test_estimate_tokens_counts_tool_definitions_and_the_response_schema() -> None:
    hi: list[Message] = [{"role": "user", "content": "hi"}]  # 2
    # name 5 + description 6 + {"type":"object","properties":{}} 33 (Tool.schema: what the
    # encoders send, "properties" filled in)
    plain = Tool("clock", "Time ?")
    assert estimate_tokens(hi, 10, tools=[plain]) == 12 + 10  # ceil(46 / 4)
    # non-ASCII counts as characters like the text (ensure_ascii would make "é" 6);
    # a nested mapping that is not a dict, and a tuple, are JSON's object and array
    odd = Tool("geo", "", MappingProxyType({
        "type": "object", "properties": MappingProxyType({"é": {"enum": ("a", "b")}}),
    }))
    text = '{"type":"object","properties":{"é":{"enum":["a","b"]}}}'
    assert estimate_tokens(hi, 0, tools=[odd]) == -(-(2 + 3 + len(text)) // 4) == 15
    schema = OutputSchema("answer", {"type": "string"}, description="Say it.")
    # 2 + name 6 + description 7 + {"type":"string"} 17
    assert estimate_tokens(hi, 5, response_schema=schema) == 8 + 5
    both = estimate_tokens(hi, 5, tools=(plain, odd), response_schema=schema)
    assert both == -(-(2 + 44 + 3 + len(text) + 30) // 4) + 5 == 34 + 5
    assert estimate_tokens(hi, 5, tools=(), response_schema=None) == estimate_tokens(hi, 5)


def test_estimate_tokens_counts_the_tool_calls_a_tool_loop_sends_back() -> None:
    """Step two of a tool loop resends the model's call and carries its result: the call's
    id, name and arguments (compact JSON, non-ASCII kept) and the result's tool_call_id
    count like text; before, only "hi" and the result's content did (2 tokens)."""
    from synapsekit.llm.types import ToolCall

    call = ToolCall("call_1", "get_weather", {"city": "Zürich", "days": [1, 2]})
    turns: list[Message] = [
        {"role": "user", "content": "hi"},  # 2
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},  # 5 + 6
    ]
    arguments = '{"city":"Zürich","days":[1,2]}'
    assert len(arguments) == 30
    # 2 + (id 6 + name 11 + 30) + (5 + 6) = 60 characters
    assert estimate_tokens(turns, 0) == 15
    assert estimate_tokens(turns, 100) == 115


def test_key_fingerprint_hides_the_key() -> None:
    fp = key_fingerprint(KEY)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp == key_fingerprint(KEY) != key_fingerprint(KEY + "x")
    assert KEY not in fp and KEY[-8:] not in fp
    assert key_fingerprint(None) == "anonymous"


# ---------------------------------------------------------------------- sharing


def config(**kw: Any) -> LLMConfig:
    return LLMConfig(model=kw.pop("model", "gpt-4o-mini"), **kw)


def test_limiter_for_shares_by_backend_provider_key_and_limits() -> None:
    assert limiter_for(config(), "openai", KEY) is None
    one = limiter_for(config(requests_per_minute=60), "openai", KEY)
    assert isinstance(one, MemoryRateLimiter) and not one.counts_tokens
    same = limiter_for(
        config(model="gpt-4o", temperature=0.9, requests_per_minute=60.0), "openai", KEY
    )
    assert same is one
    others = [
        limiter_for(config(requests_per_minute=60), "openai", KEY + "-other"),
        limiter_for(config(requests_per_minute=60), "groq", KEY),
        limiter_for(config(requests_per_minute=61), "openai", KEY),
        limiter_for(config(requests_per_minute=60, tokens_per_minute=1000), "openai", KEY),
        limiter_for(config(requests_per_minute=60), "openai", None),
        limiter_for(config(requests_per_minute=60), "openai", KEY, "http://127.0.0.1:9/v1"),
        # one Bedrock key in two regions: two budgets
        limiter_for(config(requests_per_minute=60), "bedrock", KEY,
                    "https://bedrock-runtime.us-east-1.amazonaws.com"),
        limiter_for(config(requests_per_minute=60), "bedrock", KEY,
                    "https://bedrock-runtime.eu-west-1.amazonaws.com"),
    ]
    assert len({id(one), *map(id, others)}) == 9
    assert limiter_for(config(requests_per_minute=60), "openai", KEY, None) is one
    assert limiter_for(
        config(requests_per_minute=60), "openai", KEY, "http://127.0.0.1:9/v1"
    ) is others[5]
    assert others[3] is not None and others[3].counts_tokens
    assert KEY not in repr(one)


def test_limiter_for_is_thread_safe() -> None:
    cfg = config(requests_per_minute=7)
    found: list[RateLimiter | None] = []
    threads = [
        threading.Thread(target=lambda: found.append(limiter_for(cfg, "openai", "thread-key")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and len({id(x) for x in found}) == 1


def test_bucket_key_names_provider_endpoint_key_and_limits_never_the_secrets() -> None:
    url = "https://user:url-secret@gw.internal/v1"
    name = bucket_key("azure", url, KEY, 500, 200_000.5)
    fp = key_fingerprint(url)
    assert name == f"synapsekit:ratelimit:azure:{fp}:{key_fingerprint(KEY)}:500:200000.5"
    assert "url-secret" not in name and KEY not in name
    assert bucket_key("ollama", None, None, None, 60) == (
        "synapsekit:ratelimit:ollama:default:anonymous:none:60"
    )


def test_user_built_redis_limiter_defaults_its_key_from_provider_endpoint_and_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:pw-secret@10.0.0.9:6390/2")
    limiter = RedisRateLimiter(requests_per_minute=60, provider="openai",
                               endpoint="http://127.0.0.1:9/v1", api_key=KEY)
    assert limiter.key == bucket_key("openai", "http://127.0.0.1:9/v1", KEY, 60, None)
    assert "10.0.0.9:6390/2" in repr(limiter) and "pw-secret" not in repr(limiter)
    assert KEY not in repr(limiter)
    bare = RedisRateLimiter(requests_per_minute=60)
    assert bare.key == "synapsekit:ratelimit:custom:default:anonymous:60:none"
    assert RedisRateLimiter(None, "mine", 60).key == "mine"


# ------------------------------------------------------------------------- Redis


async def test_redis_limiter_key_ttl_and_sharing(redis_url: str) -> None:
    import redis.asyncio

    cfg = config(requests_per_minute=60, rate_limit_backend="redis", redis_url=redis_url)
    limiter = limiter_for(cfg, "openai", KEY)
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter_for(config(model="gpt-4o", requests_per_minute=60, rate_limit_backend="redis",
                              redis_url=redis_url), "openai", KEY) is limiter
    await limiter.acquire()
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = await client.keys("*")
        assert keys == [f"synapsekit:ratelimit:openai:default:{key_fingerprint(KEY)}:60:none"]
        assert 0 < await client.pttl(keys[0]) <= 2000  # 1 s to refill + 1 s margin
        level = await client.hget(keys[0], "rlevel")
        assert float(str(level)) == pytest.approx(59.0, abs=0.1)
    finally:
        await client.aclose()
        await limiter.aclose()


async def test_two_redis_limiters_share_one_budget(redis_url: str) -> None:
    sleeps = RecordingSleep()
    one, two = (
        RedisRateLimiter(
            redis_url, "synapsekit:ratelimit:shared", 60, sleep=sleeps, timeout=SLOW_MACHINE
        )
        for _ in range(2)
    )
    for _ in range(30):
        await one.acquire()
        await two.acquire()
    assert sleeps.delays == []
    await two.acquire()
    await one.acquire()
    assert sleeps.delays == near(1.0, 2.0, early=0.3)
    await one.aclose()
    await two.aclose()


async def test_redis_down_falls_back_in_process_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends
    url = f"redis://:hunter2-password@127.0.0.1:{port}/0"
    sleeps = RecordingSleep()
    limiter = RedisRateLimiter(url, "synapsekit:ratelimit:down", 60, sleep=sleeps)
    assert "hunter2" not in repr(limiter)
    with caplog.at_level(logging.WARNING, logger="synapsekit.ratelimit"):
        for _ in range(62):
            await limiter.acquire()
    assert sleeps.delays == near(1.0, 2.0)  # the in-process bucket
    warnings = [r for r in caplog.records if r.name == "synapsekit.ratelimit"]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert f"127.0.0.1:{port}" in text and "in this process only" in text
    assert "hunter2" not in text
    await limiter.aclose()


def test_a_frozen_redis_falls_back_in_process_trying_it_once_per_growing_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGSTOP the server: acquires go on in-process at full speed, and the server is
    tried (a new connection: a timed-out one is dropped) once per back-off window."""
    with frozen_redis() as server:

        async def scenario() -> tuple[int, int, int, int]:
            limiter = RedisRateLimiter(server.url, requests_per_minute=60_000)
            await limiter.acquire()
            calls = 0
            with server.frozen():
                await limiter.acquire()  # one timeout: the back-off starts
                before = server.connections
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    await asyncio.gather(*(limiter.acquire() for _ in range(10)))
                    calls += 10
                    await asyncio.sleep(0.01)
                probes = server.connections - before
            await asyncio.sleep(0.05)
            for _ in range(200):  # thawed: a probe after the window succeeds
                await limiter.acquire()
                if not limiter.backoff.down:
                    break
                await asyncio.sleep(0.05)
            failures = limiter.backoff.failures
            await limiter.aclose()
            return calls, probes, failures, len(limiter._clients)

        with caplog.at_level(logging.WARNING, logger="synapsekit.ratelimit"):
            calls, probes, failures, clients = asyncio.run(scenario())
    assert calls >= 300  # a 5 s socket timeout per try (the old one) allows ~10
    assert 1 <= probes <= 4  # windows of 0.25, 0.5, 1 s in 2 s: 3 retries (+1 of slack)
    assert failures == 0 and clients == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "synapsekit.ratelimit"]
    assert len(warnings) == 1 and "no answer within 0.25 s" in warnings[0]


def test_backoff_doubles_per_failed_probe_counts_a_burst_once_and_resets() -> None:
    now = [0.0]
    backoff = Backoff(0.25, 2.0, clock=lambda: now[0])
    assert backoff.allow() and not backoff.down
    for _ in range(32):  # 32 calls in flight when the server froze: one failure
        backoff.failed()
    assert backoff.failures == 1 and backoff.window() == 0.25
    assert not backoff.allow()
    now[0] = 0.25
    assert backoff.allow()  # the probe
    assert not backoff.allow()  # nobody else while it runs
    backoff.failed()
    assert backoff.failures == 2 and backoff.window() == 0.5
    for t, expected in ((0.7, False), (0.75, True)):
        now[0] = t
        assert backoff.allow() is expected
    for _ in range(5):
        backoff.failed()
        now[0] += 10
        assert backoff.allow()
    assert backoff.window() == 2.0  # capped
    backoff.succeeded()
    assert not backoff.down and backoff.allow() and backoff.allow()


def test_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingDependencyError, match=r"Redis rate limiter.*synapsekit\[redis\]"):
        RedisRateLimiter("redis://localhost:6379/0", "k", 60)


def test_import_does_not_import_redis() -> None:
    code = "import sys, synapsekit.llm.ratelimit; print('redis' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


CHILD = r"""
import asyncio, json, sys, time
from synapsekit.llm.ratelimit import RedisRateLimiter

async def main(url, key, workers):
    limiter = RedisRateLimiter(url, key, requests_per_minute=600, timeout=5.0)
    await limiter.acquire()  # connected (on a busy machine, 4 processes connecting at once
    print("READY", flush=True)  # must not look like a frozen server)
    deadline = float(sys.stdin.readline())
    grants = []

    async def worker():
        while (left := deadline - time.time()) > 0:
            try:
                await asyncio.wait_for(limiter.acquire(), left)
            except asyncio.TimeoutError:
                return
            grants.append(time.time())

    await asyncio.gather(*(worker() for _ in range(workers)))
    await limiter.aclose()
    print(json.dumps(grants), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_four_processes_share_one_redis_budget(redis_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_url, "synapsekit:ratelimit:hammer", "8"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    deadline = time.time() + 2.5
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{deadline}\n")
        proc.stdin.flush()
    results = [proc.communicate(timeout=30)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    per_process = [json.loads(out) for out in results]
    assert all(per_process)  # every process got some
    grants = sorted(t for times in per_process for t in times if t <= deadline)
    start = grants[0]
    expected = 600 + 10 * (deadline - start)  # capacity + rate * elapsed
    assert abs(len(grants) - expected) <= 0.05 * expected
    steady = sum(1 for t in grants if t > start + 1.0)  # after the initial burst
    assert abs(steady - 10 * (deadline - start - 1.0)) <= 3
