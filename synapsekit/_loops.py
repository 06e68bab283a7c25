"""PerLoop: one value (an SDK client, a connection) per running event loop.

asyncio connections are bound to the loop that opened them; an app may use one LLM
object from many loops (``asyncio.run`` per request in Flask or Celery, the ``*_sync``
wrappers' background loop, tests). A :class:`PerLoop` opens a value the first time a loop
asks for it (once, however many tasks ask at the same time), hands the same value to
every later caller on that loop, and closes it when the loop shuts down, so
``asyncio.run(llm.generate(...))`` called a thousand times leaves no client and no
socket behind.

How a value is closed with its loop: right after opening it, a small async generator
(the *guard*) is started on that loop and left suspended. asyncio keeps track of the
async generators started on a loop, and ``loop.shutdown_asyncgens()`` (which
``asyncio.run`` calls after the main coroutine, while the loop still runs) finalizes
them: the guard's ``finally`` closes the value there, on its own loop. A loop that is
closed without ``shutdown_asyncgens()`` (``new_event_loop()`` ... ``close()``) cannot
run anything any more: its entries are dropped when another loop next asks (values
marked ``cross_loop`` are closed from that loop; others are released to the garbage
collector, which closes their sockets).

Why an open value is held by this module, not only by its holder: a dropped holder (an
LLM object nobody closed) would otherwise be garbage in one cycle with its guard and its
value, and the cycle collector finalizes every object of such a cycle in the same pass:
asyncio's transports close their sockets in ``__del__`` (their fds freed, their selector
entries left), and the guard's clean-up runs later, in a task, and tells the selector to
forget the *old* fd numbers -- which by then belong to new sockets of another client, whose
reads then never wake up (requests hung with the whole answer in the socket's buffer).
So each open value is reachable from :data:`_OPEN` until it is closed; when its holder is
collected, a finalizer asks each loop to close that loop's value, in order, through its
guard. ``close`` must therefore not reference the holder's owner (a bound method of it
would keep the owner alive: its values would be closed only with their loops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["PerLoop"]

T = TypeVar("T")

log = logging.getLogger("synapsekit")

#: Seconds :meth:`PerLoop.close_all` waits for another running loop to close its value.
CLOSE_ELSEWHERE_TIMEOUT = 5.0

_holders: weakref.WeakSet[PerLoop[Any]] = weakref.WeakSet()
#: Every slot with an open value (see the module docstring), and the tasks closing the
#: values of collected holders. Reentrant: a holder collected while this thread holds the
#: lock runs its finalizer here.
_LOCK = threading.RLock()
_OPEN: set[_Slot[Any]] = set()
_CLOSING: set[asyncio.Task[None]] = set()


class _Slot(Generic[T]):
    """The value of one loop, the lock that makes it open once, its guard, how to close
    it, and its holder's table (not the holder: a slot must not keep it alive)."""

    __slots__ = ("close", "closed", "guard", "lock", "loop", "table", "value")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        table: dict[asyncio.AbstractEventLoop, _Slot[T]],
        close: Callable[[T], Awaitable[None]],
    ) -> None:
        self.loop = loop
        self.table = table
        self.close = close
        self.lock = asyncio.Lock()
        self.value: T | None = None
        self.guard: AsyncGenerator[None, None] | None = None
        self.closed = False


class PerLoop(Generic[T]):
    """One ``T`` per running event loop: ``await get()`` opens it on first use.

    ``open()`` builds a value on the calling loop; ``close(value)`` releases it, on the
    same loop (a plain function of the value: see the module docstring). ``cross_loop=True``
    says a value may also be closed from another loop (an aiosqlite connection, whose I/O
    runs on its own thread): then the values of loops that closed without shutting down
    their async generators are closed too, not just dropped. Thread-safe: any number of
    threads, each with its own loop, may share one PerLoop. A failing ``close`` is logged at
    DEBUG and never raised. A PerLoop that is garbage-collected has each loop's value
    closed on that loop soon after.
    """

    def __init__(
        self,
        open: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
        *,
        cross_loop: bool = False,
    ) -> None:
        self._open = open
        self._close = close
        self._cross_loop = cross_loop
        self._slots: dict[asyncio.AbstractEventLoop, _Slot[T]] = {}
        finalizer = weakref.finalize(self, _orphaned, self._slots)
        finalizer.atexit = False  # at exit the loops are gone; nothing is left to close
        _holders.add(self)

    def __len__(self) -> int:
        """How many values are open now (one per loop at most)."""
        with _LOCK:
            return sum(1 for slot in self._slots.values() if slot.value is not None)

    async def get(self) -> T:
        """This loop's value, opened on first use (once, under any concurrency)."""
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is not None and slot.value is not None:
            return slot.value
        if slot is None:
            slot, stale = self._add(loop)
            for old in stale:
                await _quietly_close(self._close, old)
        async with slot.lock:
            if slot.value is None:
                value = await self._open()
                if slot.closed or self._slots.get(loop) is not slot:
                    # close_all() ran meanwhile: hand this value out once, keep a new slot
                    slot, _ = self._add(loop)
                with _LOCK:
                    slot.value = value
                    _OPEN.add(slot)
                slot.guard = _guard(slot)
                await slot.guard.__anext__()  # now the loop tracks it: closed at shutdown
            return slot.value

    async def discard(self, value: T) -> None:
        """Forget and close ``value`` if it is this loop's (e.g. a connection to a file that
        was replaced); the next :meth:`get` opens a new one."""
        slot = self._slots.get(asyncio.get_running_loop())
        if slot is not None and slot.value is value:
            await _finish(slot)

    async def close_all(self) -> None:
        """Close every loop's value: this loop's here, another running loop's on that loop,
        a closed loop's here when ``cross_loop`` (else it is dropped). The holder stays
        usable: the next :meth:`get` opens a new value."""
        current = asyncio.get_running_loop()
        with _LOCK:
            slots = list(self._slots.values())
        for slot in slots:
            if slot.loop is current:
                await _finish(slot)
            elif not slot.loop.is_closed() and slot.loop.is_running():
                future = asyncio.run_coroutine_threadsafe(_finish(slot), slot.loop)
                try:
                    await asyncio.wait_for(
                        asyncio.wrap_future(future), CLOSE_ELSEWHERE_TIMEOUT
                    )
                except (RuntimeError, asyncio.TimeoutError):  # that loop stopped or hangs
                    _drop(slot)
            else:
                value = _drop(slot)
                if value is not None and self._cross_loop:
                    await _quietly_close(self._close, value)

    def _add(self, loop: asyncio.AbstractEventLoop) -> tuple[_Slot[T], list[T]]:
        """The slot of ``loop`` (new if needed), and the values of closed loops to close."""
        with _LOCK:
            slot = self._slots.get(loop)
            if slot is None or slot.closed:
                slot = self._slots[loop] = _Slot(loop, self._slots, self._close)
            dead = [other for other in self._slots if other.is_closed()]
            stale: list[T] = []
            for other in dead:
                old = self._slots.pop(other)
                _OPEN.discard(old)
                old.closed = True
                old.guard = None  # its loop is gone: it cannot be finalized any more
                if old.value is not None and self._cross_loop:
                    stale.append(old.value)
                old.value = None
        return slot, stale


# ---------------------------------------------------------------------- internals
# Module functions, not methods: a slot's guard must not reference its holder.


async def _guard(slot: _Slot[T]) -> AsyncGenerator[None, None]:
    """Suspended on ``slot.loop`` until the loop finalizes its async generators (or we
    close it); then closes the slot's value."""
    try:
        yield
    finally:
        value = _drop(slot)
        if value is not None:
            await _quietly_close(slot.close, value)


async def _finish(slot: _Slot[T]) -> None:
    """Close ``slot`` now, through its guard (which closes the value), on its loop."""
    guard = slot.guard
    if guard is not None:
        with contextlib.suppress(RuntimeError):  # the loop is finalizing it right now
            await guard.aclose()
    value = _drop(slot)  # a value whose guard never started
    if value is not None:
        await _quietly_close(slot.close, value)


def _drop(slot: _Slot[T]) -> T | None:
    """Forget ``slot``; its value if it was still to be closed (exactly once)."""
    with _LOCK:
        if slot.table.get(slot.loop) is slot:
            del slot.table[slot.loop]
        _OPEN.discard(slot)
        value, slot.value = slot.value, None
        slot.closed = True
    return value


async def _quietly_close(close: Callable[[T], Awaitable[None]], value: T) -> None:
    try:
        await close(value)
    except Exception as exc:  # closing a broken connection must not fail the caller
        log.debug("closing %r failed: %r", value, exc)


def _orphaned(table: dict[asyncio.AbstractEventLoop, _Slot[Any]]) -> None:
    """A holder was garbage-collected (this may run inside the collector, on any thread):
    have each loop close its value, on that loop, in a task. A closed loop's value is
    only dropped: nothing can run there any more."""
    with _LOCK:
        slots = list(table.values())
    for slot in slots:
        try:
            slot.loop.call_soon_threadsafe(_close_later, slot)
        except RuntimeError:  # the loop is closed
            _drop(slot)


def _close_later(slot: _Slot[Any]) -> None:
    task = slot.loop.create_task(_finish(slot))
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


def _forget_after_fork() -> None:
    """In a forked child (Celery's prefork pool, gunicorn): the parent's loops do not run
    here, so their values can be neither used nor closed; forget them (the child opens
    its own), and any lock a parent thread held at the fork."""
    global _LOCK
    _LOCK = threading.RLock()
    _OPEN.clear()
    _CLOSING.clear()
    for holder in list(_holders):
        holder._slots.clear()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_after_fork)
