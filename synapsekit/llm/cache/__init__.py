"""Answer caches: an in-process LRU, a SQLite file, a Redis server.

Why a cache here: the same prompt with the same settings is often asked again (retries of
a whole job, tests, a web app rebuilding its LLM object per request), and a stored answer
replayed through ``stream()`` costs nothing and arrives at once. Why three backends:
"memory" is per process and fastest, "sqlite" survives restarts and is shared by the
processes of one machine, "redis" is shared by every machine.

One module per job: :mod:`.key` (what names an answer: :func:`cache_key`,
:func:`credential_scope`), :mod:`.codec` (the stored value), :mod:`.base` (the
:class:`Cache` interface and its rules), :mod:`.memory`, :mod:`.sqlite`, :mod:`.redis`
(the backends), :mod:`.registry` (:func:`open_cache`, one shared cache per settings).
Every backend is an object you may build and pass (``make_llm(..., cache=...)``).

Optional packages (``aiosqlite``, ``redis``) and ``sqlite3`` are imported when a backend is
first built, never when this package is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapsekit._lazy import lazy_getattr

if TYPE_CHECKING:
    from synapsekit.llm.cache.base import Cache
    from synapsekit.llm.cache.codec import CachedAnswer
    from synapsekit.llm.cache.key import KEY_VERSION, cache_key, credential_scope
    from synapsekit.llm.cache.memory import MemoryCache
    from synapsekit.llm.cache.redis import RedisCache
    from synapsekit.llm.cache.registry import open_cache
    from synapsekit.llm.cache.sqlite import SQLiteCache

__all__ = [
    "KEY_VERSION",
    "Cache",
    "CachedAnswer",
    "MemoryCache",
    "RedisCache",
    "SQLiteCache",
    "cache_key",
    "credential_scope",
    "open_cache",
]

# Each name is imported on first use (PEP 562): an LLM without a cache, or with the memory
# cache, never loads the SQLite and Redis backends' code.
__getattr__ = lazy_getattr(__name__, {
    "KEY_VERSION": f"{__name__}.key",
    "Cache": f"{__name__}.base",
    "CachedAnswer": f"{__name__}.codec",
    "MemoryCache": f"{__name__}.memory",
    "RedisCache": f"{__name__}.redis",
    "SQLiteCache": f"{__name__}.sqlite",
    "cache_key": f"{__name__}.key",
    "credential_scope": f"{__name__}.key",
    "open_cache": f"{__name__}.registry",
})


def __dir__() -> list[str]:
    return __all__
