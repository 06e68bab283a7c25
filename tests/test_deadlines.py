"""Stream deadlines (``connect_timeout``, ``first_token_timeout``, ``idle_timeout``,
``total_timeout``), enforced by synapsekit on all fifteen providers.

Each test drives the real SDK over real HTTP against the simulator of its protocol, which
stalls: the first token and then silence, the stream's opening and then silence, a head
held back (slow first byte), a trickle slower than the call's total limit, or a listening
socket whose accept queue is full (a connect that never completes). The simulator's counts
say what happened upstream: requests, and disconnects (the stalled stream was closed, not
left open). Limits are 0.2-0.5 s so the whole module runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from synapsekit import LLMConfig
from synapsekit.errors import ConfigError, StreamInterruptedError, TimeoutError
from synapsekit.llm.config import SAME_AS_TIMEOUT
from synapsekit.llm.deadlines import Timeouts, timeouts
from synapsekit.testing.simulators.server import Reply, Server
from tests import test_hardening as hardening
from tests.test_provider_bedrock import no_worker_threads

PROVIDERS, IDS = hardening.PROVIDERS, hardening.IDS
servers = hardening.servers  # every protocol's simulator, started once for this module
aws_env = hardening.aws_env  # Bedrock's SigV4 credentials through AWS's own chain
TOKENS = ["Tok0x", "Tok1x"]


def _full(module: Any, tokens: list[str] = TOKENS) -> Reply:
    return module.text_stream(tokens)  # type: ignore[no-any-return]


def _shaped(
    module: Any, cut: str | None = None, tokens: list[str] = TOKENS, **changes: Any
) -> Reply:
    """The protocol's answer, changed after the simulator picked its variant (OpenAI's
    ``text_stream`` adapts to the request): ``cut="token"`` keeps the pieces up to the
    first token, ``cut="opening"`` those before it; both then hang."""
    full = _full(module, tokens)

    def adapt(request: Any) -> Reply:
        reply = full.adapt(request) if full.adapt is not None else full
        fields = dict(changes)
        if cut is not None:
            pieces = list(reply.stream or ())
            first = next(i for i, piece in enumerate(pieces) if b"Tok0x" in piece)
            fields.update(stream=pieces[: first + 1] if cut == "token" else pieces[:first],
                          hang=True)
        return dataclasses.replace(reply, adapt=None, **fields)

    return Reply(adapt=adapt)


async def _warm(llm: Any, server: Server, module: Any) -> None:
    """One answered call first, then fresh counts: the SDK client is built and the pool
    holds a connection, so the timed call measures the stall, not a cold start."""
    server.enqueue(_full(module))
    answer = await llm.generate(
        "warm up", first_token_timeout=10, idle_timeout=10, total_timeout=None
    )
    assert answer == "Tok0xTok1x"
    server.reset()


async def _disconnected(server: Server, n: int) -> bool:
    return await server.wait_for_disconnects_async(n, timeout=5)


# Each scenario runs on all fifteen providers AT ONCE (the limits run concurrently, so the
# module takes seconds, not 15 x the limits), each provider on a simulator of its own so
# the counts are its own; the test compares every provider's observations with the
# expected ones in one dict, so a failure names the providers that differ.


@pytest.fixture(scope="module")
def own() -> Iterator[dict[str, tuple[Server, Any]]]:
    """One simulator per provider (the OpenAI family would otherwise share one)."""
    started: dict[str, tuple[Server, Any]] = {}
    try:
        for provider, _, protocol in PROVIDERS:
            module_name, build = hardening.SIMULATORS[protocol]
            module = importlib.import_module(f"synapsekit.testing.simulators.{module_name}")
            started[provider] = (build(module).start(), module)
        yield started
    finally:
        for server, _ in started.values():
            server.stop()


async def _each(
    own: dict[str, tuple[Server, Any]],
    scenario: Callable[[str, str, Server, Any], Awaitable[Any]],
) -> dict[str, Any]:
    async def one(provider: str, model: str) -> tuple[str, Any]:
        server, module = own[provider]
        server.reset()
        try:
            return provider, await scenario(provider, model, server, module)
        except Exception as exc:  # shown in the dict comparison, with the provider
            return provider, f"{type(exc).__name__}: {exc}"

    pairs = await asyncio.gather(*(one(p, m) for p, m, _ in PROVIDERS))
    return dict(pairs)


def _all(value: Any) -> dict[str, Any]:
    return {provider: value for provider in IDS}


# --------------------------------------------------------------- idle


async def test_idle_timeout_interrupts_a_stalled_stream(
    own: dict[str, tuple[Server, Any]],
) -> None:
    """The first token, then silence: after ``idle_timeout`` the stream ends with
    StreamInterruptedError carrying the token already delivered, caused by a TimeoutError
    naming the limit; the upstream connection is closed (the simulator sees it go) and
    the call is not retried; Bedrock's worker thread is gone."""

    async def scenario(provider: str, model: str, server: Server, module: Any) -> Any:
        llm = hardening._llm(provider, model, server, idle_timeout=0.2, max_retries=2)
        await _warm(llm, server, module)
        server.enqueue(_shaped(module, cut="token"))
        got: list[str] = []
        started = time.monotonic()
        try:
            async for token in llm.stream("hi"):
                got.append(token)
        except StreamInterruptedError as exc:
            cause = exc.__cause__
            outcome = (exc.partial_text, type(cause).__name__, getattr(cause, "code", None),
                       str(cause).split(" (")[0])
        else:
            outcome = ("no error",)
        fast = time.monotonic() - started < 10  # 0.2 s of silence, not the 60 s default
        closed = await _disconnected(server, 1)
        await llm.aclose()
        return got, outcome, fast, closed, len(server.requests)

    observed = await _each(own, scenario)
    assert observed == _all((
        ["Tok0x"],
        ("Tok0x", "TimeoutError", "idle_timeout",
         "the stream sent nothing for idle_timeout=0.2 s"),
        True, True, 1,
    ))
    assert await no_worker_threads(2)  # Bedrock's blocked reads were woken and left


# --------------------------------------------------------------- first token


@pytest.mark.parametrize("fault", ["opening then silence", "slow first byte"])
async def test_first_token_timeout_is_retried(
    fault: str, own: dict[str, tuple[Server, Any]],
) -> None:
    """No token within ``first_token_timeout`` (the events before it sent, or no response
    head at all): nothing reached the caller, so the attempt is retried, and the second
    request's answer is the call's. Exactly two requests; the stalled one was closed."""

    async def scenario(provider: str, model: str, server: Server, module: Any) -> Any:
        stall = (_shaped(module, cut="opening") if fault == "opening then silence"
                 else _shaped(module, head_delay=30.0))
        # idle_timeout=3 is the SDKs' read backstop: botocore's worker thread, blocked before
        # the response head, cannot be woken (docs/timeouts.md) and ends at that backstop.
        # first_token_timeout=2: the retry opens a new connection while fifteen providers run
        # at once; on a loaded 2-core machine 0.3 s and then 1 s (Bedrock at its floors,
        # beside the main suite) were too short for it (found by CI).
        llm = hardening._llm(provider, model, server, first_token_timeout=2.0, idle_timeout=3,
                             max_retries=1, retry_delay=0)
        await _warm(llm, server, module)
        server.enqueue(stall, _full(module))
        started = time.monotonic()
        answer = await llm.respond("hi")
        fast = time.monotonic() - started < 10  # not the 60 s default
        closed = await _disconnected(server, 1)
        await llm.aclose()
        # the usage is the second attempt's
        return answer.text, answer.usage.output_tokens, fast, len(server.requests), closed

    observed = await _each(own, scenario)
    assert observed == _all(("Tok0xTok1x", 2, True, 2, True))


async def test_first_token_timeout_without_retries_raises_timeout(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    server, module = hardening._sim(servers, "openai")
    server.enqueue(_shaped(module, cut="opening"))
    llm = hardening._llm("openai", "gpt-4o-mini", server, first_token_timeout=0.2)
    with pytest.raises(TimeoutError) as err:
        await llm.generate("hi")
    assert err.value.code == "first_token_timeout"
    assert str(err.value).startswith("no first token within first_token_timeout=0.2 s")
    assert len(server.requests) == 1
    assert await _disconnected(server, 1)


# --------------------------------------------------------------- total


async def test_total_timeout_cuts_a_trickling_stream(own: dict[str, tuple[Server, Any]]) -> None:
    """Every piece arrives within ``idle_timeout``, but the whole answer would take longer
    than ``total_timeout``: the stream is cut at the total limit."""

    async def scenario(provider: str, model: str, server: Server, module: Any) -> Any:
        llm = hardening._llm(provider, model, server, idle_timeout=2, total_timeout=0.35)
        await _warm(llm, server, module)
        tokens = [f"Tok{i}x" for i in range(8)]  # 8+ pieces, 0.15 s each: > 1.2 s in all
        server.enqueue(_shaped(module, tokens=tokens, delay=0.15))
        started = time.monotonic()
        try:
            async for _ in llm.stream("hi"):
                pass
        except (StreamInterruptedError, TimeoutError) as exc:
            cause = exc.__cause__ if isinstance(exc, StreamInterruptedError) else exc
            outcome = (type(cause).__name__, getattr(cause, "code", None),
                       "total_timeout of 0.35 s reached" in str(cause))
        else:
            outcome = ("no error",)
        elapsed = time.monotonic() - started
        closed = await _disconnected(server, 1)
        await llm.aclose()
        return outcome, 0.3 < elapsed < 10, len(server.requests), closed

    observed = await _each(own, scenario)
    assert observed == _all((("TimeoutError", "total_timeout", True), True, 1, True))


async def test_total_timeout_bounds_the_retries(own: dict[str, tuple[Server, Any]]) -> None:
    """Every attempt stalls before its first token and would be retried ten times; the
    total limit ends the call: each attempt's request was closed, and no attempt began
    after the limit (0.2 s each: three requests, two on a slow machine)."""

    async def scenario(provider: str, model: str, server: Server, module: Any) -> Any:
        llm = hardening._llm(provider, model, server, first_token_timeout=0.2, idle_timeout=1,
                             total_timeout=0.6, max_retries=10, retry_delay=0)  # 1: see above
        await _warm(llm, server, module)
        server.enqueue(*[_shaped(module, cut="opening")] * 11)
        started = time.monotonic()
        try:
            await llm.generate("hi")
            code = "no error"
        except TimeoutError as exc:
            code = str(exc.code)
        elapsed = time.monotonic() - started
        sent = len(server.requests)
        closed = await _disconnected(server, sent)
        await llm.aclose()
        return code, 0.55 < elapsed < 10, sent, closed

    observed = await _each(own, scenario)
    sent = {provider: seen[2] for provider, seen in observed.items() if len(seen) == 4}
    assert all(n in (2, 3) for n in sent.values()), sent
    assert observed == {p: ("total_timeout", True, sent.get(p), True) for p in IDS}


async def test_backoff_past_the_total_timeout_is_not_slept(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    """A 429 asking for a 30 s wait, with 1 s of the call left: the call gives up at once
    with the provider's own error instead of sleeping past its limit."""
    from synapsekit.errors import RateLimitError

    server, module = hardening._sim(servers, "openai")
    server.enqueue(module.error(429, headers={"retry-after": "30"}))
    llm = hardening._llm("openai", "gpt-4o-mini", server, total_timeout=1, max_retries=3)
    started = time.monotonic()
    with pytest.raises(RateLimitError):
        await llm.generate("hi")
    assert time.monotonic() - started < 0.9
    assert len(server.requests) == 1


# --------------------------------------------------------------- connect


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A listening socket whose accept queue is full: a new connect never completes (the
    kernel drops its SYN), as with a firewalled or overloaded host."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the queue of one
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        filler.close()
        listener.close()


async def test_connect_timeout_reaches_the_sdk(blackhole: str) -> None:
    """``connect_timeout`` is the SDK's connect limit (only the SDK can tell connecting
    from waiting): a connect that never completes fails after it, as a TimeoutError,
    though every other limit is 30 s."""
    from synapsekit import make_llm

    async def one(provider: str, model: str) -> tuple[str, Any]:
        key = None if provider == "bedrock" else hardening.KEY
        llm = make_llm(f"{provider}:{model}", api_key=key, base_url=blackhole, timeout=30,
                       connect_timeout=0.2)
        started = time.monotonic()
        try:
            await llm.generate("hi")
            outcome = "no error"
        except Exception as exc:
            outcome = type(exc).__name__
        await llm.aclose()
        return provider, (outcome, time.monotonic() - started < 10)  # not the 30 s

    observed = dict(await asyncio.gather(*(one(p, m) for p, m, _ in PROVIDERS)))
    assert observed == _all(("TimeoutError", True))


async def test_first_token_timeout_also_bounds_the_connect(blackhole: str) -> None:
    """With no connect limit, the first-token limit still ends a connect that hangs."""
    from synapsekit import make_llm

    llm = make_llm("openai:gpt-4o-mini", api_key=hardening.KEY, base_url=blackhole,
                   connect_timeout=None, first_token_timeout=0.2)
    with pytest.raises(TimeoutError) as err:
        await llm.generate("hi")
    assert err.value.code == "first_token_timeout"
    await llm.aclose()


# --------------------------------------------------------------- what is not cut


async def test_a_slow_consumer_is_not_cut_and_the_answer_is_cached(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    """The idle limit is the provider's silence, not the consumer's: a consumer that
    takes 0.3 s per token under a 0.1 s idle limit gets the whole answer (and the cache
    stores it, as any complete answer)."""
    server, module = hardening._sim(servers, "openai")
    server.enqueue(_full(module))
    llm = hardening._llm("openai", "gpt-4o-mini", server, idle_timeout=0.1, cache=True,
                         cache_maxsize=9431)
    got = []
    async for token in llm.stream("a slow reader"):
        got.append(token)
        await asyncio.sleep(0.3)
    assert got == TOKENS
    assert await llm.generate("a slow reader") == "Tok0xTok1x"
    assert llm.cache_stats["hits"] == 1 and len(server.requests) == 1


async def test_an_interrupted_stream_is_not_cached(servers: dict[str, tuple[Server, Any]]) -> None:
    server, module = hardening._sim(servers, "openai")
    server.enqueue(_shaped(module, cut="token"), _full(module))
    llm = hardening._llm("openai", "gpt-4o-mini", server, idle_timeout=0.2, cache=True,
                         cache_maxsize=9432)
    with pytest.raises(StreamInterruptedError):
        async for _ in llm.stream("stalls"):
            pass
    assert await llm.generate("stalls") == "Tok0xTok1x"  # asked upstream again
    assert len(server.requests) == 2 and llm.cache_stats["hits"] == 0


async def test_cancelling_the_caller_is_a_cancel_not_a_timeout(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    """A task cancelled while a deadline is armed stays cancelled (the watch takes back
    only its own cancellations)."""
    server, module = hardening._sim(servers, "openai")
    server.enqueue(_shaped(module, cut="token"))
    llm = hardening._llm("openai", "gpt-4o-mini", server, idle_timeout=5)
    stream = llm.stream("hi")
    assert await stream.__anext__() == "Tok0x"
    waiting = asyncio.ensure_future(stream.__anext__())  # armed: waiting on the provider
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await stream.aclose()
    assert await _disconnected(server, 1)


# --------------------------------------------------------------- config


def test_the_first_three_default_to_timeout() -> None:
    cfg = LLMConfig(model="m", timeout=7)
    assert cfg.idle_timeout is SAME_AS_TIMEOUT
    assert timeouts(cfg) == Timeouts(7, 7, 7, None)
    assert timeouts(dataclasses.replace(cfg, timeout=3)) == Timeouts(3, 3, 3, None)
    cfg = LLMConfig(model="m", timeout=7, connect_timeout=1, idle_timeout=None,
                    total_timeout=30)
    assert timeouts(cfg) == Timeouts(1, 7, None, 30)
    assert timeouts(cfg).read is None  # no idle limit: the SDK gets no read limit either
    assert timeouts(LLMConfig(model="m", first_token_timeout=90, idle_timeout=5)).read == 90
    assert timeouts(LLMConfig(model="m", timeout=None)) == Timeouts(None, None, None, None)
    assert "idle_timeout=SAME_AS_TIMEOUT" in repr(LLMConfig(model="m"))


@pytest.mark.parametrize("name", ["connect_timeout", "first_token_timeout", "idle_timeout",
                                  "total_timeout"])
def test_limits_must_be_positive(name: str) -> None:
    for bad in (0, -1, "5"):
        with pytest.raises(ConfigError, match=f"{name}: must be"):
            LLMConfig(model="m", **{name: bad})


def test_no_limit_means_no_watch() -> None:
    """With every limit off, the provider's iterator is used as it is (no wrapper)."""
    from synapsekit.llm.deadlines import Deadline

    async def check() -> None:
        cfg = LLMConfig(model="m", timeout=None)
        chunks: Any = object()
        assert Deadline(cfg, "openai").watch(chunks) is chunks

    asyncio.run(check())


async def _paced(delays: list[float]) -> Any:
    """Chunks of text, each after its delay (a provider's stream, in-process)."""
    from synapsekit.llm.types import Chunk

    for i, delay in enumerate(delays):
        await asyncio.sleep(delay)
        yield Chunk(f"t{i}")


def _read(cfg: LLMConfig, delays: list[float], per_task: bool = False) -> tuple[list[str], Any]:
    """What a consumer reads of the watched ``_paced(delays)`` and the error it ends with;
    ``per_task``: each chunk awaited in a task of its own (``asyncio.wait_for`` on Python
    3.11), so the timer must cancel the task waiting now, not the first one."""
    from synapsekit.llm.deadlines import Deadline

    async def run() -> tuple[list[str], Any]:
        got: list[str] = []
        stream = Deadline(cfg, "openai").watch(_paced(delays))
        try:
            while True:
                step = anext(stream)
                chunk = await (asyncio.ensure_future(step) if per_task else step)
                got.append(chunk.text)
        except StopAsyncIteration:
            return got, None
        except TimeoutError as exc:
            return got, exc

    return asyncio.run(run())


@pytest.mark.parametrize("per_task", [False, True], ids=["one-task", "task-per-chunk"])
def test_idle_limit_is_per_silence_not_per_stream(per_task: bool) -> None:
    """Ten gaps of 0.6x the idle limit pass (the timer, armed once, follows each chunk),
    then a silence of 3x the limit is cut after about one limit, in whichever task waits."""
    cfg = LLMConfig(model="m", timeout=None, idle_timeout=0.1)
    started = time.monotonic()
    got, error = _read(cfg, [0.0] + [0.06] * 10 + [0.3], per_task)
    elapsed = time.monotonic() - started
    assert got == [f"t{i}" for i in range(11)]
    assert isinstance(error, TimeoutError) and error.code == "idle_timeout"
    assert "11 chunk(s)" in str(error)
    assert 0.6 + 0.1 <= elapsed < 0.6 + 0.25  # cut one limit after the last chunk, not 0.3


def test_total_limit_cuts_inside_a_healthy_stream() -> None:
    """Chunks every 0.05 s never trip the 0.2 s idle limit; the 0.35 s total limit cuts the
    stream inside its eighth gap, with the total named."""
    cfg = LLMConfig(model="m", timeout=None, idle_timeout=0.2, total_timeout=0.35)
    got, error = _read(cfg, [0.0] + [0.05] * 20)
    assert 6 <= len(got) <= 8
    assert isinstance(error, TimeoutError) and error.code == "total_timeout"


def test_a_consumer_slower_than_the_idle_limit_is_not_cut() -> None:
    """The consumer holds each chunk 0.15 s (over the 0.1 s idle limit: the timer fires
    meanwhile with nobody waiting and lapses), the provider answers at once, and nothing is
    cut; then the provider stalls and the next wait, timed anew, is cut after one limit."""
    from synapsekit.llm.deadlines import Deadline

    async def run() -> tuple[list[str], float, Any]:
        cfg = LLMConfig(model="m", timeout=None, idle_timeout=0.1)
        got, waited = [], 0.0
        try:
            async for chunk in Deadline(cfg, "openai").watch(_paced([0.0] * 5 + [1.0])):
                got.append(chunk.text)
                await asyncio.sleep(0.15)
                waited = time.monotonic()
        except TimeoutError as exc:
            return got, time.monotonic() - waited, exc
        return got, 0.0, None

    got, stalled, error = asyncio.run(run())
    assert got == ["t0", "t1", "t2", "t3", "t4"]
    assert isinstance(error, TimeoutError) and error.code == "idle_timeout"
    assert 0.1 <= stalled < 0.3


def test_the_watch_clock_is_the_loops() -> None:
    """The hot loop reads ``time.monotonic`` only where ``loop.time`` is the standard
    library's (which returns exactly that); a loop with its own clock (uvloop's) keeps it,
    since the timer is scheduled on that clock."""
    from synapsekit.llm.deadlines import _clock

    class OwnClock(asyncio.SelectorEventLoop):
        def time(self) -> float:
            return 42.0

    plain, own = asyncio.new_event_loop(), OwnClock()
    try:
        assert _clock(plain) is time.monotonic
        assert _clock(own)() == 42.0
    finally:
        plain.close()
        own.close()
