"""PerLoop: one value per event loop, opened once, closed with its loop.

The unit tests count opens and closes of a plain value; the resource tests use real
backends (the Redis cache and limiter against the session's redis-server, counted with
``CLIENT LIST``; the SQLite cache, whose aiosqlite connections are threads) across 100
``asyncio.run`` calls, the Flask/Celery pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit._loops import PerLoop
from synapsekit.llm.cache import CachedAnswer, RedisCache, SQLiteCache
from synapsekit.llm.ratelimit import RedisRateLimiter
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from tests.conftest import API_KEY
from tests.redis_server import SLOW_MACHINE

KEY = "ab" * 32


class Resource:
    """Counts what it opened and closed, and on which loop each close ran."""

    def __init__(self) -> None:
        self.opened: list[object] = []
        self.closed: list[object] = []
        self.closed_on_own_loop: list[bool] = []
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}

    async def open(self) -> object:
        await asyncio.sleep(0.001)  # a real open yields: concurrent callers must wait
        value = object()
        self._loops[id(value)] = asyncio.get_running_loop()
        self.opened.append(value)
        return value

    async def close(self, value: object) -> None:
        await asyncio.sleep(0)
        self.closed_on_own_loop.append(self._loops[id(value)] is asyncio.get_running_loop())
        self.closed.append(value)


def test_one_value_per_loop_opened_once_under_concurrency_and_closed_with_its_loop() -> None:
    res = Resource()
    holder: PerLoop[object] = PerLoop(res.open, res.close)

    async def call() -> tuple[bool, int]:
        values = await asyncio.gather(*(holder.get() for _ in range(100)))
        return all(v is values[0] for v in values), len(holder)

    for _ in range(100):
        assert asyncio.run(call()) == (True, 1)
    assert len(res.opened) == 100 and res.closed == res.opened
    assert all(res.closed_on_own_loop)
    assert len(holder) == 0


def test_a_loop_closed_without_shutting_down_its_generators_is_dropped_by_the_next() -> None:
    res = Resource()
    holder: PerLoop[object] = PerLoop(res.open, res.close)
    crossing = Resource()
    cross: PerLoop[object] = PerLoop(crossing.open, crossing.close, cross_loop=True)

    async def use() -> None:
        await holder.get()
        await cross.get()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(use())
    loop.close()  # no shutdown_asyncgens(): nothing could close the values there
    assert len(holder) == 1 and len(cross) == 1 and res.closed == []
    asyncio.run(use())  # a new loop: the dead loop's entries go
    assert res.closed == [res.opened[1]]  # the dead loop's value was only dropped ...
    assert crossing.closed == crossing.opened  # ... unless it can be closed from here
    assert crossing.closed_on_own_loop == [False, True]
    assert len(holder) == 0 and len(cross) == 0


def test_close_all_closes_every_loops_value_each_on_its_own_loop() -> None:
    res = Resource()
    holder: PerLoop[object] = PerLoop(res.open, res.close)
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(holder.get(), other).result(5)

        async def main() -> tuple[int, int]:
            await holder.get()
            before = len(holder)
            await holder.close_all()
            return before, len(holder)

        assert asyncio.run(main()) == (2, 0)
        assert len(res.closed) == 2 and all(res.closed_on_own_loop)
        again = asyncio.run_coroutine_threadsafe(holder.get(), other).result(5)
        assert again is res.opened[-1] and len(res.opened) == 3  # usable after close_all
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(5)
        other.close()


def test_a_failed_open_is_not_kept_and_discard_reopens() -> None:
    attempts = []

    async def flaky() -> object:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("refused")
        return object()

    closed: list[object] = []

    async def close(value: object) -> None:
        closed.append(value)

    holder: PerLoop[object] = PerLoop(flaky, close)

    async def main() -> None:
        with pytest.raises(OSError):
            await holder.get()
        first = await holder.get()
        assert await holder.get() is first
        await holder.discard(first)
        assert closed == [first] and await holder.get() is not first

    asyncio.run(main())
    assert len(attempts) == 3 and len(closed) == 2  # the last one closed with its loop


class _Owner:
    """Stands for an LLM object: in a reference cycle, holding a PerLoop."""

    def __init__(self, res: Resource) -> None:
        self.me = self
        self.holder: PerLoop[object] = PerLoop(res.open, res.close)


def test_a_collected_holder_has_its_value_closed_on_its_own_loop_and_is_not_kept() -> None:
    res = Resource()

    async def main() -> bool:
        owner = _Owner(res)
        await owner.holder.get()
        gone = weakref.ref(owner.holder)
        del owner
        gc.collect()
        for _ in range(5):  # the close runs in a task of this loop
            await asyncio.sleep(0)
        return gone() is None

    assert asyncio.run(main()) is True
    assert len(res.opened) == 1 and res.closed == res.opened and res.closed_on_own_loop == [True]


# --------------------------------------------------------------------------- real resources


def _connections(url: str) -> int:
    """Clients connected to the server, this check's own one not counted."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return len(client.client_list()) - 1
    finally:
        client.close()


def _sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def test_100_asyncio_runs_on_one_redis_cache_and_limiter_leave_no_connection(
    redis_url: str,
) -> None:
    cache = RedisCache(redis_url, timeout=SLOW_MACHINE)
    limiter = RedisRateLimiter(redis_url, requests_per_minute=100_000)
    sockets_before, connections_before = _sockets(), _connections(redis_url)

    async def request(i: int) -> int:
        await limiter.acquire()
        await cache.set(f"{i:064d}", CachedAnswer((str(i),)))
        found = await asyncio.gather(*(cache.get(f"{i:064d}") for _ in range(5)))
        assert [a.text if a else None for a in found] == [str(i)] * 5
        return _connections(redis_url) - connections_before

    during = [asyncio.run(request(i)) for i in range(100)]
    assert min(during) >= 2  # each run had the cache's and the limiter's connections open
    assert _connections(redis_url) == connections_before  # each closed them with its loop
    assert len(cache._clients) == 0 and len(limiter._clients) == 0
    assert _sockets() == sockets_before
    assert cache.stats()["hits"] == 500


def test_100_asyncio_runs_on_one_sqlite_cache_leave_no_connection_thread(
    tmp_path: Path,
) -> None:
    cache = SQLiteCache(tmp_path / "c.db")

    def connection_threads() -> int:
        """aiosqlite's connection threads (other tests' helper threads may come and go).

        aiosqlite < 0.21 makes the connection itself a Thread subclass; later versions run a
        plain Thread whose target is an aiosqlite function: count both."""

        def from_aiosqlite(t: threading.Thread) -> bool:
            target = getattr(t, "_target", None)
            owner = type(t) if target is None else target
            return str(getattr(owner, "__module__", "")).startswith("aiosqlite")

        return sum(1 for t in threading.enumerate() if from_aiosqlite(t))

    threads_before = connection_threads()

    async def request(i: int) -> int:
        await cache.set(f"{i:064d}", CachedAnswer((str(i),)))
        assert await cache.get(f"{i:064d}") == CachedAnswer((str(i),))
        return connection_threads()

    during = [asyncio.run(request(i)) for i in range(100)]
    assert min(during) > threads_before  # an aiosqlite connection (a thread) per run ...
    # ... closed when its loop ended (aiosqlite < 0.21 does not join the thread on close:
    # it ends a moment later, so wait for it, briefly)
    deadline = time.monotonic() + 2.0
    while connection_threads() > threads_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert connection_threads() == threads_before
    assert len(cache._connections) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_neither_waits_for_nor_closes_the_parents_loops(tmp_path: Path) -> None:
    """Celery's prefork pool: the parent used the cache (its writer loop holds a
    connection, a write is pending behind another process's lock), then forks. The child's
    lookups and aclose() must not wait for the parent's loops, which do not run there."""
    import sqlite3
    import time

    cache = SQLiteCache(tmp_path / "c.db")
    asyncio.run(cache.set("cd" * 32, CachedAnswer(("warm",))))
    blocker = sqlite3.connect(cache.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        cache.set_in_background(KEY, CachedAnswer(("parent",)))  # pending: the file is locked
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                async def child() -> bool:
                    missing = await asyncio.wait_for(cache.get(KEY), 10)
                    warm = await asyncio.wait_for(cache.get("cd" * 32), 10)
                    await asyncio.wait_for(cache.aclose(), 10)
                    return missing is None and warm == CachedAnswer(("warm",))

                code = 0 if asyncio.run(child()) else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 30
        while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        if done == (0, 0):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        assert os.waitstatus_to_exitcode(done[1]) == 0
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert asyncio.run(cache.get(KEY)) == CachedAnswer(("parent",))  # the parent's went in
    asyncio.run(cache.aclose())


async def test_dropped_llms_close_their_sockets_in_order_and_the_next_llms_calls_all_answer(
    openai_sim: OpenAISimulator,
) -> None:
    """LLM objects dropped without ``aclose()``: the cycle collector used to finalize their
    idle sockets' transports before their client was closed; the close then unregistered
    the *old* fd numbers from the selector, which new sockets had taken -- their reads
    never woke up (calls hung with the answer in the socket's buffer). 200 at once each,
    as when it was found."""

    def llm() -> Any:
        return make_llm("gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url,
                        system_prompt=None)

    async def burst(model: Any) -> list[str]:
        return await asyncio.wait_for(
            asyncio.gather(*(model.generate("hi") for _ in range(200))), 30
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(2):
            dropped = [llm(), llm()]
            for model in dropped:
                assert await burst(model) == ["Hello, world!"] * 200
            del dropped, model
            gc.collect()
            survivor = llm()
            assert await burst(survivor) == ["Hello, world!"] * 200
            await survivor.aclose()
    assert [str(w.message) for w in caught if "unclosed" in str(w.message)] == []
    for _ in range(500):  # the server notices the closes within moments
        if not openai_sim.open_connections:
            break
        await asyncio.sleep(0.02)
    assert openai_sim.open_connections == 0  # the dropped LLMs' pools were closed too
    assert len(openai_sim.requests) == 2 * 3 * 200
