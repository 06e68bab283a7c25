"""The in-process answer cache: an LRU with an optional TTL."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from synapsekit.errors import ConfigError
from synapsekit.llm.cache.base import Cache, check_ttl
from synapsekit.llm.cache.codec import CachedAnswer, decode, encode

__all__ = ["MemoryCache"]


class MemoryCache(Cache):
    """An LRU of ``maxsize`` answers in this process, each kept ``ttl`` seconds (None:
    until evicted). O(1) per operation under one lock; ``clock`` is injectable.

    Build one to give a group of LLM objects their own cache
    (``make_llm(..., cache=MemoryCache(1000, ttl=600))``). A write does no I/O, so
    :meth:`set_in_background` stores at once."""

    def __init__(
        self,
        maxsize: int = 128,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigError(f"cache_maxsize: must be a whole number >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.ttl = check_ttl(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[CachedAnswer, float]] = OrderedDict()

    def set_in_background(self, key: str, answer: CachedAnswer) -> None:
        try:
            self._put(key, answer)
        except Exception as exc:  # a cache never fails a call
            self._failed("write", "skipped", exc)

    async def _load(self, key: str) -> CachedAnswer | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            answer, expires = entry
            if self._clock() >= expires:
                del self._entries[key]
                self._size = len(self._entries)
                return None
            self._entries.move_to_end(key)
            return answer

    async def _store(self, key: str, answer: CachedAnswer) -> None:
        self._put(key, answer)

    def _put(self, key: str, answer: CachedAnswer) -> None:
        # Through JSON, as the other backends: a value that could not be stored there is
        # not stored here either, and the entry shares nothing mutable with the caller.
        stored = decode(encode(answer))
        expires = self._clock() + self.ttl if self.ttl is not None else math.inf
        with self._lock:
            self._entries[key] = (stored, expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            self._size = len(self._entries)

    async def _clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __repr__(self) -> str:
        return f"MemoryCache(maxsize={self.maxsize}, ttl={self.ttl})"
