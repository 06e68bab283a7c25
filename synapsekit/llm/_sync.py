"""Run coroutines from synchronous code, also inside a running event loop (notebooks).

One daemon thread runs one event loop for all sync calls of the process; coroutines are
handed to it with ``run_coroutine_threadsafe``, each run in the caller's context variables
(so an active cassette or trace context covers a sync call too). Reusing one loop (never
``asyncio.run`` per call) keeps SDK connection pools, which are bound to the loop that made
them, alive between calls, and it works the same whether or not the caller's thread has a
loop.
A forked child (Celery prefork, multiprocessing) starts its own: the parent's loop thread
does not exist there.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid = 0  # the process that started _loop
#: How long an interrupted sync call waits for the cancelled coroutine's clean-up (seconds).
CANCEL_GRACE = 10.0


def sync_loop() -> asyncio.AbstractEventLoop:
    """The shared background loop of this process, started on first use."""
    global _loop, _pid
    with _lock:
        if _loop is None or _loop.is_closed() or _pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="synapsekit-sync", daemon=True
            ).start()
            _loop, _pid = loop, os.getpid()
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the background loop and return its result."""
    loop = sync_loop()
    if _running_loop() is loop:
        coro.close()
        raise RuntimeError("a synapsekit *_sync method was called from its own sync loop")
    ended = threading.Event()
    future = asyncio.run_coroutine_threadsafe(
        _in_context(coro, contextvars.copy_context(), ended), loop
    )
    try:
        return future.result()
    except BaseException:
        future.cancel()  # Ctrl-C or a caller's timeout: stop the request too
        # ... and let its clean-up run before the caller goes on: a stream's close, a store
        # write already under way (it lands whole, so what the caller reads next is true)
        ended.wait(CANCEL_GRACE)
        raise


async def _in_context(
    coro: Coroutine[Any, Any, T], context: contextvars.Context, ended: threading.Event
) -> T:
    """Run ``coro`` as a task of the caller's context variables (an active cassette, a
    trace context), not the loop thread's; cancelling this cancels it. ``ended`` is set
    once it is over, its clean-up included."""
    task = context.run(asyncio.ensure_future, coro)
    task.add_done_callback(lambda _: ended.set())
    return await task


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code, one item at a time, closing it if left early."""
    async def step() -> tuple[bool, T | None]:
        try:
            return True, await agen.__anext__()
        except StopAsyncIteration:
            return False, None

    finished = False
    try:
        while True:
            more, item = run_sync(step())
            if not more:
                finished = True
                return
            yield item  # type: ignore[misc]
    finally:
        aclose = getattr(agen, "aclose", None)
        if not finished and aclose is not None:
            run_sync(aclose())


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
