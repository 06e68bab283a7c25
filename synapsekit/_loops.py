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


class _Slot(Generic[T]):
    """The value of one loop, the lock that makes it open once, and its guard."""

    __slots__ = ("closed", "guard", "lock", "loop", "value")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = asyncio.Lock()
        self.value: T | None = None
        self.guard: AsyncGenerator[None, None] | None = None
        self.closed = False


class PerLoop(Generic[T]):
    """One ``T`` per running event loop: ``await get()`` opens it on first use.

    ``open()`` builds a value on the calling loop; ``close(value)`` releases it, on the
    same loop. ``cross_loop=True`` says a value may also be closed from another loop (an
    aiosqlite connection, whose I/O runs on its own thread): then the values of loops
    that closed without shutting down their async generators are closed too, not just
    dropped. Thread-safe: any number of threads, each with its own loop, may share one
    PerLoop. A failing ``close`` is logged at DEBUG and never raised.
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
        self._lock = threading.Lock()
        self._slots: dict[asyncio.AbstractEventLoop, _Slot[T]] = {}
        _holders.add(self)

    def __len__(self) -> int:
        """How many values are open now (one per loop at most)."""
        with self._lock:
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
                await self._quietly_close(old)
        async with slot.lock:
            if slot.value is None:
                value = await self._open()
                if slot.closed or self._slots.get(loop) is not slot:
                    # close_all() ran meanwhile: hand this value out once, keep a new slot
                    slot, _ = self._add(loop)
                slot.value = value
                slot.guard = self._guard(slot)
                await slot.guard.__anext__()  # now the loop tracks it: closed at shutdown
            return slot.value

    async def discard(self, value: T) -> None:
        """Forget and close ``value`` if it is this loop's (e.g. a connection to a file that
        was replaced); the next :meth:`get` opens a new one."""
        slot = self._slots.get(asyncio.get_running_loop())
        if slot is not None and slot.value is value:
            await self._finish(slot)

    async def close_all(self) -> None:
        """Close every loop's value: this loop's here, another running loop's on that loop,
        a closed loop's here when ``cross_loop`` (else it is dropped). The holder stays
        usable: the next :meth:`get` opens a new value."""
        current = asyncio.get_running_loop()
        with self._lock:
            slots = list(self._slots.values())
        for slot in slots:
            if slot.loop is current:
                await self._finish(slot)
            elif not slot.loop.is_closed() and slot.loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._finish(slot), slot.loop)
                try:
                    await asyncio.wait_for(
                        asyncio.wrap_future(future), CLOSE_ELSEWHERE_TIMEOUT
                    )
                except (RuntimeError, asyncio.TimeoutError):  # that loop stopped or hangs
                    self._drop(slot)
            else:
                value = self._drop(slot)
                if value is not None and self._cross_loop:
                    await self._quietly_close(value)

    # ------------------------------------------------------------------ internals

    async def _guard(self, slot: _Slot[T]) -> AsyncGenerator[None, None]:
        """Suspended on ``slot.loop`` until the loop finalizes its async generators (or we
        close it); then closes the slot's value."""
        try:
            yield
        finally:
            value = self._drop(slot)
            if value is not None:
                await self._quietly_close(value)

    async def _finish(self, slot: _Slot[T]) -> None:
        """Close ``slot`` now, through its guard (which closes the value), on its loop."""
        guard = slot.guard
        if guard is not None:
            with contextlib.suppress(RuntimeError):  # the loop is finalizing it right now
                await guard.aclose()
        value = self._drop(slot)  # a value whose guard never started
        if value is not None:
            await self._quietly_close(value)

    def _drop(self, slot: _Slot[T]) -> T | None:
        """Forget ``slot``; its value if it was still to be closed (exactly once)."""
        with self._lock:
            if self._slots.get(slot.loop) is slot:
                del self._slots[slot.loop]
            value, slot.value = slot.value, None
            slot.closed = True
        return value

    def _add(self, loop: asyncio.AbstractEventLoop) -> tuple[_Slot[T], list[T]]:
        """The slot of ``loop`` (new if needed), and the values of closed loops to close."""
        with self._lock:
            slot = self._slots.get(loop)
            if slot is None or slot.closed:
                slot = self._slots[loop] = _Slot(loop)
            dead = [other for other in self._slots if other.is_closed()]
            stale: list[T] = []
            for other in dead:
                old = self._slots.pop(other)
                old.closed = True
                old.guard = None  # its loop is gone: it cannot be finalized any more
                if old.value is not None and self._cross_loop:
                    stale.append(old.value)
                old.value = None
        return slot, stale

    async def _quietly_close(self, value: T) -> None:
        try:
            await self._close(value)
        except Exception as exc:  # closing a broken connection must not fail the caller
            log.debug("closing %r failed: %r", value, exc)


def _forget_after_fork() -> None:
    """In a forked child (Celery's prefork pool, gunicorn): the parent's loops do not run
    here, so their values can be neither used nor closed; forget them (the child opens
    its own), and any lock a parent thread held at the fork."""
    for holder in list(_holders):
        holder._lock = threading.Lock()
        holder._slots = {}


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_after_fork)
