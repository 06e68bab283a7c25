"""The process registry: one cache object per set of cache settings."""

from __future__ import annotations

import os
import threading
from typing import Any

from synapsekit.llm.cache.base import Cache
from synapsekit.llm.config import LLMConfig, redis_url

__all__ = ["open_cache"]

_shared: dict[tuple[Any, ...], Cache] = {}
_shared_lock = threading.Lock()


def open_cache(config: LLMConfig) -> Cache:
    """The process-wide cache for ``config`` (``cache_backend``, its location,
    ``cache_maxsize``, ``cache_ttl``), built on first use.

    The same settings return the same instance, so an app that builds a new LLM object
    per request still hits (answers stay apart by credential scope and endpoint: they
    are part of every key). Raises CacheError for a cache that cannot work, and
    MissingDependencyError when the backend's package is not installed. Built inside a
    running event loop, a SQLite cache checks its file at first use (SQLiteCache).
    """
    from synapsekit.llm.cache.sqlite import default_cache_path

    backend = config.cache_backend
    if backend == "sqlite":
        location: str | None = os.path.realpath(
            os.path.expanduser(config.cache_path or default_cache_path())
        )
    elif backend == "redis":
        location = redis_url(config.redis_url)
    else:
        location = None
    ident = (backend, location, config.cache_maxsize, config.cache_ttl)
    with _shared_lock:
        cache = _shared.get(ident)
        if cache is None:
            cache = _shared[ident] = _build(backend, location, config)
        return cache


def _build(backend: str, location: str | None, config: LLMConfig) -> Cache:
    if backend == "sqlite":
        from synapsekit.llm.cache.sqlite import SQLiteCache

        return SQLiteCache(location, config.cache_ttl)
    if backend == "redis":
        from synapsekit.llm.cache.redis import RedisCache

        return RedisCache(location, config.cache_ttl)
    from synapsekit.llm.cache.memory import MemoryCache

    return MemoryCache(config.cache_maxsize, config.cache_ttl)
