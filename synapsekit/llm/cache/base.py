"""The interface every cache backend implements, and what they all share.

The rules every backend keeps:

- A cache never fails a call. Once open, any runtime failure of ``get``/``set`` (disk
  full, file deleted, server down or frozen, corrupt row) is logged to the
  ``synapsekit.cache`` logger, at most once a minute per backend, and is a miss or a
  skipped write. Only opening a cache that cannot work and an explicit ``clear()`` raise
  :class:`~synapsekit.errors.CacheError`.
- One backend object may serve every LLM object of the process, from any thread and
  event loop: loop-bound connections are kept one per running loop
  (:class:`synapsekit._loops.PerLoop`) and closed with their loop.
- A store need not delay the call that produced the answer:
  :meth:`Cache.set_in_background` hands the write to the process's background loop and
  returns at once; a later ``get`` of that key, from any loop, waits for it first.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import importlib
import logging
import os
import threading
import weakref
from abc import ABC, abstractmethod
from types import ModuleType

from synapsekit._logging import ThrottledLog
from synapsekit.errors import CacheError, ConfigError, MissingDependencyError
from synapsekit.llm.cache.codec import CachedAnswer

__all__ = ["FLUSH_AT_EXIT", "Cache"]

#: Seconds the interpreter waits at exit for background writes still in flight.
FLUSH_AT_EXIT = 5.0

log = logging.getLogger("synapsekit.cache")

_with_pending: weakref.WeakSet[Cache] = weakref.WeakSet()
_with_pending_lock = threading.Lock()


class Cache(ABC):
    """A store of finished answers by :func:`~synapsekit.llm.cache.cache_key`.

    One instance may be shared by many LLM objects, threads and event loops; build one
    yourself and pass it (``make_llm(..., cache=SQLiteCache("app.db"))``) or let
    :func:`~synapsekit.llm.cache.open_cache` build the shared one of a config. ``get``
    and ``set`` never raise for a runtime failure: they log a warning and behave as a
    miss or a skipped write (a call never fails because of its cache). ``clear`` may
    raise :class:`CacheError`: the user asked for it. ``aclose`` releases connections;
    the cache stays usable and reconnects when used again.
    """

    def __init__(self) -> None:
        self._stats_lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._size = 0
        self._log = ThrottledLog(log)
        self._pending: dict[str, concurrent.futures.Future[None]] = {}
        self._writes: set[concurrent.futures.Future[None]] = set()

    async def get(self, key: str) -> CachedAnswer | None:
        """The stored answer, or None (missing, expired, or the cache failed).

        A write of ``key`` still in flight from :meth:`set_in_background` is waited for
        first, so ``generate(p); generate(p)`` hits."""
        pending = self._pending.get(key)
        if pending is not None and not pending.done():
            await _wait_for(pending)
        try:
            answer = await self._load(key)
        except CacheError:
            raise  # the cache cannot be opened at all: see the backend
        except Exception as exc:  # a cache never fails a call (class docstring)
            self._failed("lookup", "miss", exc)
            answer = None
        with self._stats_lock:
            if answer is None:
                self._misses += 1
            else:
                self._hits += 1
        return answer

    async def set(self, key: str, answer: CachedAnswer) -> None:
        """Store ``answer`` (with the cache's TTL); a failure is logged and skipped."""
        try:
            await self._store(key, answer)
        except Exception as exc:  # a cache never fails a call (class docstring)
            self._failed("write", "skipped", exc)

    def set_in_background(self, key: str, answer: CachedAnswer) -> None:
        """Schedule :meth:`set` without waiting for it.

        The write runs on the process's cache-writer event loop (a daemon thread), so it
        is not cancelled when the caller's loop ends (e.g.
        ``asyncio.run(llm.generate(p))`` returns at once); writes still in flight when
        the interpreter exits are waited for, up to :data:`FLUSH_AT_EXIT` seconds. A
        failure is logged, as for :meth:`set`.
        """
        future = asyncio.run_coroutine_threadsafe(self.set(key, answer), _writer_loop())
        with self._stats_lock:
            self._pending[key] = future
            self._writes.add(future)  # a strong reference until it is done
        with _with_pending_lock:
            _with_pending.add(self)
        future.add_done_callback(lambda done: self._written(key, done))

    async def flush(self) -> None:
        """Wait until every write started by :meth:`set_in_background` is done."""
        with self._stats_lock:
            writes = list(self._writes)
        for write in writes:
            await _wait_for(write)

    async def clear(self) -> None:
        """Remove every entry of this cache object's store, for every process using it:
        the answers of every LLM, key and namespace that share this cache (the memory
        LRU, the SQLite file, our keys on the Redis server; nothing else)."""
        await self.flush()  # a write in flight must not land after the clear
        try:
            await self._clear()
        except CacheError:
            raise
        except Exception as exc:  # re-raised as the one documented type
            raise CacheError(f"Could not clear {self!r}: {self._describe_error(exc)}") from exc
        self._size = 0

    def stats(self) -> dict[str, int]:
        """``{"hits", "misses", "size"}``: lookups of this process; ``size`` as of the last
        operation of this process (no I/O)."""
        with self._stats_lock:
            return {"hits": self._hits, "misses": self._misses, "size": self._size}

    async def aclose(self) -> None:
        """Finish the background writes and release connections; the cache reconnects if
        used again."""
        await self.flush()
        await self._release()

    async def _release(self) -> None:  # noqa: B027 - a backend without connections has none
        """Release this backend's connections."""

    @abstractmethod
    async def _load(self, key: str) -> CachedAnswer | None: ...

    @abstractmethod
    async def _store(self, key: str, answer: CachedAnswer) -> None: ...

    @abstractmethod
    async def _clear(self) -> None: ...

    def _written(self, key: str, done: concurrent.futures.Future[None]) -> None:
        with self._stats_lock:
            self._writes.discard(done)
            if self._pending.get(key) is done:
                del self._pending[key]

    def _failed(self, operation: str, outcome: str, exc: Exception) -> None:
        self._log.warning(
            "%r: cache %s failed (%s), the call goes on: %s",
            self, operation, outcome, self._describe_error(exc),
        )

    def _describe_error(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"


async def _wait_for(write: concurrent.futures.Future[None]) -> None:
    """Wait for a background write; cancelling the waiter does not cancel the write."""
    with contextlib.suppress(Exception):
        await asyncio.shield(asyncio.wrap_future(write))


_writer: tuple[int, asyncio.AbstractEventLoop] | None = None
_writer_lock = threading.Lock()


def _writer_loop() -> asyncio.AbstractEventLoop:
    """The loop background writes run on, started on first use (again in a forked child,
    where the parent's thread does not exist)."""
    global _writer
    with _writer_lock:
        if _writer is None or _writer[0] != os.getpid() or _writer[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="synapsekit-cache-writer", daemon=True
            ).start()
            _writer = (os.getpid(), loop)
        return _writer[1]


def _forget_after_fork() -> None:
    """In a forked child the parent's writes will never finish here: forget them, so a
    lookup does not wait for one."""
    global _with_pending_lock, _writer_lock
    _with_pending_lock = threading.Lock()
    _writer_lock = threading.Lock()
    for cache in list(_with_pending):
        cache._stats_lock = threading.Lock()
        cache._pending = {}
        cache._writes = set()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_after_fork)


@atexit.register
def _flush_at_exit() -> None:
    with _with_pending_lock:
        caches = list(_with_pending)
    writes = [w for cache in caches for w in list(cache._writes)]
    if writes:
        concurrent.futures.wait(writes, timeout=FLUSH_AT_EXIT)


def require(module: str, package: str, extra: str, feature: str) -> ModuleType:
    """Import an optional package, or raise MissingDependencyError naming its extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, extra, feature=feature) from exc


def check_ttl(ttl: float | None) -> float | None:
    if ttl is not None and (isinstance(ttl, bool) or not ttl > 0):
        raise ConfigError(f"cache_ttl: must be > 0 seconds or None, got {ttl!r}")
    return ttl
