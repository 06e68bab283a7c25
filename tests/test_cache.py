"""Cache backends: the key, the memory LRU, the SQLite file, the Redis server.

Real files (tmp_path), real processes (subprocess), the real redis-server of the session
(``redis_url``). Every failure a cache meets at runtime must be a warning plus a miss,
never an exception to the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import synapsekit.llm.cache.codec as codec_module
import synapsekit.llm.cache.key as key_module
import synapsekit.llm.cache.sqlite as sqlite_module
from synapsekit import LLMConfig, make_llm
from synapsekit._logging import ThrottledLog
from synapsekit.errors import AuthenticationError, CacheError, MissingDependencyError
from synapsekit.llm.cache import (
    KEY_VERSION,
    CachedAnswer,
    MemoryCache,
    RedisCache,
    SQLiteCache,
    cache_key,
    credential_scope,
    open_cache,
)
from synapsekit.llm.types import Usage, build_messages
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from tests.conftest import API_KEY
from tests.redis_faults import frozen_redis
from tests.redis_server import SLOW_MACHINE

ROOT = Path(__file__).resolve().parent.parent
ANSWER = CachedAnswer(
    chunks=("Hel", "lo, ", "wörld ✓"),
    finish_reason="stop",
    usage=Usage(input_tokens=12, output_tokens=3, cached_input_tokens=4),
    metadata={"citations": ["https://example.com/a"]},
)
KEY = "ab" * 32


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "synapsekit.cache"]


def run_python(code: str, *args: str, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter; its stdout. Fails on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# --------------------------------------------------------------------------- the key

BASE = LLMConfig(
    model="gpt-4o", provider="openai", api_key="sk-secret-1", base_url="http://a/v1",
    temperature=0.2, max_tokens=100, stop=("END",), params={"seed": 1},
    api_version="2024-10-21", headers={"X-Title": "app"}, system_prompt="Be brief.",
)
TURNS = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
         {"role": "user", "content": "again"}]


CREDENTIAL = credential_scope("sk-secret-1")


def key_of(
    messages: Any = TURNS,
    *,
    credential: str = CREDENTIAL,
    endpoint: str | None = "http://a/v1",
    **changes: Any,
) -> str:
    cfg = LLMConfig(**{**BASE.__dict__, **changes})
    return cache_key(
        cfg, build_messages(messages, cfg.system_prompt), credential=credential, endpoint=endpoint
    )


@pytest.mark.parametrize(
    ("changes", "messages"),
    [
        ({"provider": "azure"}, TURNS),
        ({"endpoint": "http://b/v1"}, TURNS),
        ({"endpoint": None, "base_url": "http://b/v1"}, TURNS),
        ({"endpoint": "https://bedrock-runtime.eu-west-1.amazonaws.com"}, TURNS),
        ({"credential": credential_scope("sk-other-2")}, TURNS),
        ({"credential": credential_scope(None)}, TURNS),
        ({"credential": credential_scope("sk-secret-1", "tenant-a")}, TURNS),
        ({"model": "gpt-4o-mini"}, TURNS),
        ({"system_prompt": "Be long."}, TURNS),
        ({"system_prompt": None}, TURNS),
        ({}, [{"role": "user", "content": "hi!"}, *TURNS[1:]]),
        ({}, [TURNS[0], {"role": "assistant", "content": "hello!"}, TURNS[2]]),
        ({}, [*TURNS[:2], {"role": "user", "content": "again!"}]),
        ({}, [*TURNS[:2], {"role": "assistant", "content": "again"}]),
        ({}, TURNS[:1]),
        ({"temperature": 0.3}, TURNS),
        ({"max_tokens": 101}, TURNS),
        ({"stop": ("STOP",)}, TURNS),
        ({"stop": None}, TURNS),
        ({"params": {"seed": 2}}, TURNS),
        ({"params": {}}, TURNS),
        ({"api_version": "2025-01-01"}, TURNS),
        ({"headers": {"X-Title": "other"}}, TURNS),
        ({"headers": {"X-Title": "app", "HTTP-Referer": "https://x"}}, TURNS),
    ],
)
def test_every_input_that_shapes_the_answer_changes_the_key(
    changes: dict[str, Any], messages: Any
) -> None:
    assert key_of(messages, **changes) != key_of()


@pytest.mark.parametrize(
    "changes",
    [
        {"api_key": "sk-other-2"},  # the config's key: the credential scope is what counts
        {"api_key": None},
        {"cache_namespace": "tenant-a"},  # likewise
        {"base_url": "http://b/v1"},  # the effective endpoint is given: it wins
        {"headers": {"X-Title": "app", "Authorization": "Bearer sk-secret-1"}},
        {"headers": {"X-Title": "app", "x-api-key": "k", "X-Auth-Token": "t",
                     "Cookie": "s=1", "X-Client-Secret": "c"}},
        {"headers": {"x-title": "app"}},  # header names are case-insensitive
        {"temperature": 0.20},
        {"max_retries": 3, "timeout": 5.0, "cache": True, "cache_ttl": 9.0},
    ],
)
def test_secrets_and_non_shaping_fields_do_not_change_the_key(changes: dict[str, Any]) -> None:
    assert key_of(**changes) == key_of()


def test_key_is_hex_sha256_of_a_canonical_json_never_containing_the_api_key() -> None:
    key = key_of()
    assert len(key) == 64 and int(key, 16) >= 0 and key == key.lower()
    assert key_of(temperature=1) == key_of(temperature=1.0)
    assert key_of(params={"a": 1, "b": 2}) == key_of(params={"b": 2, "a": 1})
    assert "sk-secret-1" not in key


def test_key_version_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = key_of()
    assert KEY_VERSION == 3  # 3: tools, parts (by digest), reasoning settings joined the key
    monkeypatch.setattr(key_module, "KEY_VERSION", KEY_VERSION + 1)
    assert key_of() != before


def test_credential_scope_namespace_wins_else_a_fingerprint_never_the_key() -> None:
    scope = credential_scope("sk-secret-1")
    assert scope.startswith("key:") and len(scope) == 4 + 16 and int(scope[4:], 16) >= 0
    assert "sk-secret" not in scope and scope == credential_scope("sk-secret-1")
    assert scope != credential_scope("sk-secret-2")
    assert credential_scope(None) == "anonymous"
    assert credential_scope("sk-secret-1", "tenant-a") == "ns:tenant-a"
    assert credential_scope(None, "tenant-a") == credential_scope("sk-x", "tenant-a")
    assert credential_scope(None, "anonymous") != credential_scope(None)
    # two keys of one namespace share answers; the same key in two namespaces does not
    assert key_of(credential=credential_scope("k1", "t")) == key_of(
        credential=credential_scope("k2", "t")
    )
    assert key_of(credential=credential_scope("k1", "t")) != key_of(
        credential=credential_scope("k1", "u")
    )


# --------------------------------------------------------------------------- memory


async def test_memory_lru_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(maxsize=3)
    for name in "abc":
        await cache.set(name, CachedAnswer((name,)))
    assert (await cache.get("a")) == CachedAnswer(("a",))  # a is now the most recent
    await cache.set("d", CachedAnswer(("d",)))  # evicts b
    assert await cache.get("b") is None
    await cache.set("c", CachedAnswer(("c2",)))  # an update refreshes c; evicts nothing
    await cache.set("e", CachedAnswer(("e",)))  # evicts a (order now: a, d, c, e)
    found = {name: await cache.get(name) for name in "abcde"}
    assert {n: a.text if a else None for n, a in found.items()} == {
        "a": None, "b": None, "c": "c2", "d": "d", "e": "e"
    }
    assert cache.stats() == {"hits": 4, "misses": 3, "size": 3}


async def test_memory_ttl_with_an_injected_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(maxsize=10, ttl=10, clock=clock)
    await cache.set(KEY, ANSWER)
    clock.now += 9.999
    assert await cache.get(KEY) == ANSWER
    clock.now += 0.001
    assert await cache.get(KEY) is None
    assert cache.stats() == {"hits": 1, "misses": 1, "size": 0}
    await cache.set(KEY, ANSWER)  # a new write lives ttl seconds from now
    clock.now += 5
    assert await cache.get(KEY) == ANSWER


async def test_memory_entries_share_nothing_mutable_with_the_caller() -> None:
    cache = MemoryCache()
    metadata: dict[str, Any] = {"citations": ["x"]}
    await cache.set(KEY, CachedAnswer(("a",), "stop", None, metadata))
    metadata["citations"].append("y")
    found = await cache.get(KEY)
    assert found is not None and found.metadata == {"citations": ["x"]}


async def test_an_unstorable_answer_is_a_skipped_write_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = MemoryCache()
    await cache.set(KEY, CachedAnswer(("a",), metadata={"obj": object()}))
    assert await cache.get(KEY) is None
    [warning] = warnings_of(caplog)
    assert "write failed (skipped)" in warning and "TypeError" in warning


def test_memory_cache_from_many_threads_and_loops_counts_exactly() -> None:
    cache = MemoryCache(maxsize=10_000)

    async def worker(n: int) -> None:
        keys = [f"{n}-{i}" for i in range(200)]
        await asyncio.gather(*(cache.set(k, CachedAnswer((k,))) for k in keys))
        found = await asyncio.gather(*(cache.get(k) for k in keys))
        assert [a.text if a else None for a in found] == keys

    threads = [threading.Thread(target=asyncio.run, args=(worker(n),)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.stats() == {"hits": 1600, "misses": 0, "size": 1600}


def test_warnings_are_rate_limited_per_backend(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(0.0)
    limited = ThrottledLog(logging.getLogger("synapsekit.cache"), interval=60, clock=clock)
    for message in ("one", "two", "three"):
        limited.warning(message)
    clock.now = 60.0
    limited.warning("four")
    assert warnings_of(caplog) == ["one", "four (2 similar warnings suppressed)"]


# --------------------------------------------------------------------------- SQLite


async def test_sqlite_round_trip_stats_and_clear(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "deep" / "dir" / "cache.db")
    assert await cache.get(KEY) is None
    await cache.set(KEY, ANSWER)
    await cache.set("cd" * 32, CachedAnswer(("x",)))
    assert await cache.get(KEY) == ANSWER
    assert cache.stats() == {"hits": 1, "misses": 1, "size": 2}
    await cache.clear()
    assert cache.stats()["size"] == 0
    assert await cache.get(KEY) is None
    with sqlite3.connect(cache.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert [r[0] for r in db.execute("SELECT name FROM migrations ORDER BY name")] == [
            "m001_entries", "m002_entry_count"
        ]
    await cache.aclose()


async def test_sqlite_ttl_is_honoured_and_expired_rows_are_purged(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "c.db"
    cache = SQLiteCache(path, ttl=30, clock=clock)
    await cache.set(KEY, ANSWER)
    clock.now += 29.5
    assert await cache.get(KEY) == ANSWER
    clock.now += 0.5
    assert await cache.get(KEY) is None
    await cache.aclose()
    reopened = SQLiteCache(path, clock=clock)
    await reopened.prepare()  # purges expired rows
    assert reopened.stats()["size"] == 0
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone() == (0,)


async def test_sqlite_persists_across_two_real_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    # Process 1 writes and exits without closing the cache: it must still exit.
    run_python(
        """
        import asyncio, sys
        from synapsekit.llm.cache import CachedAnswer, SQLiteCache
        from synapsekit.llm.types import Usage
        cache = SQLiteCache(sys.argv[1])
        answer = CachedAnswer(("Hel", "lo"), "stop", Usage(5, 2), {"n": 1})
        asyncio.run(cache.set("k" * 64, answer))
        """,
        path, timeout=30,
    )
    out = run_python(
        """
        import asyncio, json, sys
        from synapsekit.llm.cache import SQLiteCache
        cache = SQLiteCache(sys.argv[1])
        hit = asyncio.run(cache.get("k" * 64))
        print(json.dumps([hit.chunks, hit.usage.input_tokens, hit.metadata, cache.stats()]))
        """,
        path, timeout=30,
    )
    assert json.loads(out) == [["Hel", "lo"], 5, {"n": 1}, {"hits": 1, "misses": 0, "size": 1}]


HAMMER = """
import asyncio, logging, sys, time
from synapsekit.llm.cache import CachedAnswer, SQLiteCache

problems = []
class Record(logging.Handler):
    def emit(self, record):
        problems.append(record.getMessage())
logging.getLogger("synapsekit.cache").addHandler(Record())

async def main(proc, n, start_at):
    cache = SQLiteCache(sys.argv[1])
    await asyncio.sleep(start_at - time.time())  # all four write at the same time
    for start in range(0, n, 10):  # ten concurrent writes at a time
        await asyncio.gather(*(cache.set(f"p{proc}-{i}", CachedAnswer((f"{proc}:{i}",)))
                               for i in range(start, min(start + 10, n))))
    found = await asyncio.gather(*(cache.get(f"p{proc}-{i}") for i in range(n)))
    assert [a.text for a in found] == [f"{proc}:{i}" for i in range(n)], "lost a write"
    await cache.aclose()

asyncio.run(main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
print(len(problems), problems[:3])
"""


def test_four_processes_hammering_one_file_lose_nothing(tmp_path: Path) -> None:
    path, writes, start_at = str(tmp_path / "hammer.db"), 200, time.time() + 1.0
    procs = [
        subprocess.Popen([sys.executable, "-c", HAMMER, path, str(n), str(writes), str(start_at)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    outputs = [proc.communicate(timeout=90) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "0 []", out  # no warning: never "database is locked"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone() == (4 * writes,)
        assert db.execute("SELECT n FROM entry_count").fetchone() == (4 * writes,)
        keys = {row[0] for row in db.execute("SELECT key FROM entries")}
    assert keys == {f"p{p}-{i}" for p in range(4) for i in range(writes)}


def test_a_corrupt_file_is_moved_aside_and_a_fresh_cache_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    garbage = b"this is not a sqlite file " * 200
    path.write_bytes(garbage)
    cache = SQLiteCache(path)
    [aside] = list(tmp_path.glob("c.db.corrupt-*"))
    assert aside.read_bytes() == garbage
    assert aside.name.removeprefix("c.db.corrupt-").isdigit()
    [warning] = warnings_of(caplog)
    assert str(path) in warning and str(aside) in warning and "corrupt" in warning

    async def use() -> CachedAnswer | None:
        await cache.set(KEY, ANSWER)
        try:
            return await cache.get(KEY)
        finally:
            await cache.aclose()

    assert asyncio.run(use()) == ANSWER


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    SQLiteCache(path)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO migrations VALUES ('m003_from_the_future', 0)")
    with pytest.raises(CacheError) as err:
        SQLiteCache(path)
    assert "newer version of synapsekit" in str(err.value)
    assert "m003_from_the_future" in str(err.value) and str(path) in str(err.value)


def test_a_file_from_an_older_schema_is_migrated_and_its_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    name, statements = sqlite_module.MIGRATIONS[0]
    with sqlite3.connect(path) as db:  # what the first version wrote
        db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        for statement in statements:
            db.execute(statement)
        db.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
        db.execute("INSERT INTO entries VALUES (?, ?, 0, NULL)",
                   (KEY, codec_module.encode(ANSWER)))
    cache = SQLiteCache(path)
    assert cache.stats()["size"] == 1

    async def read() -> CachedAnswer | None:
        try:
            return await cache.get(KEY)
        finally:
            await cache.aclose()

    assert asyncio.run(read()) == ANSWER


def test_a_directory_path_is_a_cache_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(CacheError) as err:
        SQLiteCache(tmp_path)
    assert str(tmp_path) in str(err.value) and "directory" in str(err.value)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CacheError) as err:
        SQLiteCache(blocker / "cache.db")  # its parent is a file
    assert str(blocker / "cache.db") in str(err.value)


async def test_a_file_deleted_mid_run_is_a_miss_with_a_warning_then_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    cache = SQLiteCache(path)
    await cache.set(KEY, ANSWER)
    for name in ("c.db", "c.db-wal", "c.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    assert await cache.get(KEY) is None
    [warning] = warnings_of(caplog)
    assert "deleted or replaced" in warning and str(path) in warning
    await cache.set(KEY, ANSWER)
    assert await cache.get(KEY) == ANSWER and path.exists()
    assert cache.stats() == {"hits": 1, "misses": 1, "size": 1}
    await cache.aclose()


async def test_an_undecodable_row_is_a_miss_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = SQLiteCache(tmp_path / "c.db")
    await cache.set(KEY, ANSWER)
    await cache.set("cd" * 32, ANSWER)
    with sqlite3.connect(cache.path) as db:
        db.execute("UPDATE entries SET value = '{not json' WHERE key = ?", (KEY,))
        db.execute("UPDATE entries SET value = '{\"chunks\": 5}' WHERE key != ?", (KEY,))
    assert await cache.get(KEY) is None
    assert await cache.get("cd" * 32) is None
    assert cache.stats() == {"hits": 0, "misses": 2, "size": 2}
    [warning] = warnings_of(caplog)  # the second one is rate-limited
    assert "lookup failed (miss)" in warning and "JSONDecodeError" in warning
    await cache.aclose()


def test_sqlite_cache_from_several_event_loops_and_threads(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db")

    async def worker(n: int) -> list[str | None]:
        keys = [f"{n}-{i}" for i in range(100)]
        await asyncio.gather(*(cache.set(k, CachedAnswer((k,))) for k in keys))
        found = await asyncio.gather(*(cache.get(k) for k in keys))
        return [a.text if a else None for a in found]

    assert asyncio.run(worker(0)) == [f"0-{i}" for i in range(100)]  # this loop then closes
    results: dict[int, list[str | None]] = {}
    threads = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, asyncio.run(worker(n))))
        for n in (1, 2, 3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: [f"{n}-{i}" for i in range(100)] for n in (1, 2, 3)}
    assert cache.stats() == {"hits": 400, "misses": 0, "size": 400}
    asyncio.run(cache.aclose())  # closes the connections other loops opened, too
    assert len(cache._connections) == 0


async def test_built_inside_a_running_loop_the_file_is_prepared_at_first_use_off_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep" / "lazy.db"
    cache = SQLiteCache(path)  # a running loop: no file I/O here
    assert not path.parent.exists()
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = cache._prepare

    def spy() -> Any:  # records which thread prepared the file (the cache's own method)
        seen.append(threading.get_ident())
        return original()

    cache._prepare = spy  # type: ignore[method-assign]
    assert list(await asyncio.gather(cache.get(KEY), cache.get(KEY))) == [None, None]
    assert path.is_file() and len(seen) == 1 and seen[0] != loop_thread
    await cache.set(KEY, ANSWER)
    assert await cache.get(KEY) == ANSWER and len(seen) == 1
    await cache.aclose()


async def test_a_newer_schema_found_at_first_use_is_a_cache_error_of_the_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        db.execute("INSERT INTO migrations VALUES ('m999_from_the_future', 0)")
    cache = SQLiteCache(path)  # inside a running loop: not checked yet
    with pytest.raises(CacheError, match="newer version of synapsekit"):
        await cache.prepare()
    for _ in range(2):  # every lookup says so, until the file is fixed
        with pytest.raises(CacheError, match="m999_from_the_future"):
            await cache.get(KEY)
    await cache.set(KEY, ANSWER)  # a write is a logged, skipped write
    [warning] = warnings_of(caplog)
    assert "write failed (skipped)" in warning and "newer version" in warning
    path.unlink()
    assert await cache.get(KEY) is None  # fixed: the cache works from here on
    await cache.set(KEY, ANSWER)
    assert await cache.get(KEY) == ANSWER
    await cache.aclose()


async def test_set_in_background_returns_at_once_and_a_get_of_that_key_waits_for_it(
    tmp_path: Path,
) -> None:
    cache = SQLiteCache(tmp_path / "c.db")
    await cache.prepare()
    other = "cd" * 32
    await cache.set(other, ANSWER)
    blocker = sqlite3.connect(cache.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        cache.set_in_background(KEY, ANSWER)  # returns although the write cannot finish
        lookup = asyncio.ensure_future(cache.get(KEY))
        assert await cache.get(other) == ANSWER  # other keys do not wait
        await asyncio.sleep(0.3)
        assert not lookup.done()  # waiting for the pending write of its key
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert await lookup == ANSWER
    await cache.aclose()


def test_a_background_write_outlives_the_loop_that_started_it(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db")

    async def answer_and_return() -> None:
        cache.set_in_background(KEY, ANSWER)  # then asyncio.run ends, cancelling its tasks

    asyncio.run(answer_and_return())
    assert asyncio.run(cache.get(KEY)) == ANSWER  # another loop: still waits, then hits
    asyncio.run(cache.aclose())


def test_background_writes_are_flushed_when_the_interpreter_exits(tmp_path: Path) -> None:
    path = str(tmp_path / "exit.db")
    run_python(
        """
        import asyncio, sys
        from synapsekit.llm.cache import CachedAnswer, SQLiteCache
        cache = SQLiteCache(sys.argv[1])
        async def main():
            for i in range(50):
                cache.set_in_background(f"{i:064d}", CachedAnswer((str(i),)))
        asyncio.run(main())  # and exit at once
        """,
        path, timeout=30,
    )
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone() == (50,)


async def test_memory_set_in_background_stores_at_once() -> None:
    cache = MemoryCache()
    cache.set_in_background(KEY, ANSWER)
    assert cache.stats()["size"] == 1 and await cache.get(KEY) == ANSWER


def test_missing_aiosqlite_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "aiosqlite", None)  # as if not installed
    with pytest.raises(MissingDependencyError) as err:
        SQLiteCache(tmp_path / "c.db")
    assert 'pip install "synapsekit[sqlite]"' in str(err.value)
    assert "The SQLite cache" in str(err.value)


# --------------------------------------------------------------------------- open_cache


def test_open_cache_shares_one_instance_per_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cfg(**fields: Any) -> LLMConfig:
        return LLMConfig(**{"model": "gpt-4o", "cache": True, **fields})

    memory = open_cache(cfg(cache_maxsize=4321))
    assert memory is open_cache(cfg(cache_maxsize=4321, model="other", temperature=1))
    assert isinstance(memory, MemoryCache) and memory.maxsize == 4321
    assert open_cache(cfg(cache_maxsize=4321, cache_ttl=5)) is not memory
    monkeypatch.chdir(tmp_path)
    sqlite = open_cache(cfg(cache_backend="sqlite", cache_path="rel.db"))
    assert sqlite is open_cache(cfg(cache_backend="sqlite", cache_path=str(tmp_path / "rel.db")))
    assert isinstance(sqlite, SQLiteCache) and sqlite.path == str(tmp_path.resolve() / "rel.db")


def test_default_sqlite_path_honours_xdg_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = open_cache(LLMConfig(model="m", cache=True, cache_backend="sqlite"))
    assert isinstance(cache, SQLiteCache)
    assert cache.path == str((tmp_path / "xdg" / "synapsekit" / "llm-cache.db").resolve())
    assert Path(cache.path).is_file()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sqlite_module.default_cache_path() == str(
        tmp_path / "home" / ".cache" / "synapsekit" / "llm-cache.db"
    )


def test_open_cache_is_thread_safe(tmp_path: Path) -> None:
    cfg = LLMConfig(model="m", cache=True, cache_backend="sqlite",
                    cache_path=str(tmp_path / "t.db"))
    found: list[object] = []
    threads = [threading.Thread(target=lambda: found.append(open_cache(cfg))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and all(c is found[0] for c in found)


# --------------------------------------------------------------------------- Redis


async def test_redis_round_trip_size_and_layout(redis_url: str) -> None:
    import redis

    cache = RedisCache(redis_url, timeout=SLOW_MACHINE)
    assert await cache.get(KEY) is None
    await cache.set(KEY, ANSWER)
    await cache.set(KEY, ANSWER)  # an overwrite is one entry
    await cache.set("cd" * 32, CachedAnswer(("x",)))
    assert await cache.get(KEY) == ANSWER
    assert cache.stats() == {"hits": 1, "misses": 1, "size": 2}
    raw = redis.Redis.from_url(redis_url)
    name = f"synapsekit:cache:v{KEY_VERSION}:{KEY}"
    stored = raw.get(name)
    assert isinstance(stored, bytes) and json.loads(stored)["chunks"] == list(ANSWER.chunks)
    assert raw.pttl(name) == -1  # no ttl: never expires
    raw.close()
    await cache.aclose()


async def test_redis_ttl_expires_entries_and_size(redis_url: str) -> None:
    import redis

    cache = RedisCache(redis_url, ttl=0.2)
    await cache.set(KEY, ANSWER)
    raw = redis.Redis.from_url(redis_url)
    assert 0 < raw.pttl(f"synapsekit:cache:v{KEY_VERSION}:{KEY}") <= 200
    raw.close()
    assert await cache.get(KEY) == ANSWER
    assert cache.stats()["size"] == 1
    await asyncio.sleep(0.3)
    assert await cache.get(KEY) is None
    assert cache.stats() == {"hits": 1, "misses": 1, "size": 0}
    await cache.aclose()


async def test_redis_clear_removes_only_our_keys(redis_url: str) -> None:
    import redis

    raw = redis.Redis.from_url(redis_url)
    raw.set("someone:else", "keep me")
    raw.set("synapsekit:ratelimit:x", "not a cache key")
    cache = RedisCache(redis_url, timeout=SLOW_MACHINE)
    for i in range(1500):  # more than one SCAN/UNLINK batch
        await cache.set(f"{i:064x}", CachedAnswer(("x",)))
    assert cache.stats()["size"] == 1500
    await cache.clear()
    assert cache.stats()["size"] == 0
    assert sorted(raw.keys("*")) == [b"someone:else", b"synapsekit:ratelimit:x"]
    await cache.set(KEY, ANSWER)
    assert await cache.get(KEY) == ANSWER and cache.stats()["size"] == 1
    raw.close()
    await cache.aclose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redis_down_is_a_miss_with_a_warning_and_hides_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{_closed_port()}/0"
    cache = RedisCache(url)
    assert "hunter2" not in repr(cache)
    await cache.set(KEY, ANSWER)  # no exception
    assert await cache.get(KEY) is None
    assert cache.stats() == {"hits": 0, "misses": 1, "size": 0}
    [warning] = warnings_of(caplog)
    assert "ConnectionError" in warning and "write failed (skipped)" in warning
    assert "hunter2" not in warning and ":***@127.0.0.1" in warning
    with pytest.raises(CacheError) as err:  # an explicit clear() does say it failed
        await cache.clear()
    assert "hunter2" not in str(err.value)
    await cache.aclose()


async def test_redis_cache_is_shared_from_open_cache(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = LLMConfig(model="m", cache=True, cache_backend="redis", redis_url=redis_url)
    cache = open_cache(cfg)
    assert isinstance(cache, RedisCache) and cache is open_cache(cfg)
    assert open_cache(LLMConfig(model="m", cache=True, cache_backend="redis",
                                redis_url=redis_url, cache_ttl=60)) is not cache
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert open_cache(LLMConfig(model="m", cache=True, cache_backend="redis")) is cache
    await cache.set(KEY, ANSWER)
    await cache.aclose()
    assert await open_cache(cfg).get(KEY) == ANSWER  # usable again after aclose
    await cache.aclose()


def test_redis_cache_from_several_event_loops(redis_url: str) -> None:
    cache = RedisCache(redis_url, timeout=SLOW_MACHINE)

    async def worker(n: int) -> int:
        keys = [f"{n:02d}{i:062d}" for i in range(500)]  # more tasks than pooled connections
        await asyncio.gather(*(cache.set(k, CachedAnswer((k,))) for k in keys))
        found = await asyncio.gather(*(cache.get(k) for k in keys))
        await cache.aclose()  # a client is bound to its loop: close it before the loop ends
        return sum(1 for k, a in zip(keys, found, strict=True) if a is not None and a.text == k)

    assert [asyncio.run(worker(n)) for n in range(3)] == [500, 500, 500]
    assert cache.stats() == {"hits": 1500, "misses": 0, "size": 1500}


def test_a_frozen_redis_costs_one_short_timeout_per_backoff_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGSTOP the server: calls must go on as misses at full speed; the server is tried
    (a new connection, since a timed-out one is dropped) once per growing window."""
    with frozen_redis() as server:

        async def scenario() -> tuple[int, int, int, CachedAnswer | None]:
            cache = RedisCache(server.url)
            await cache.set(KEY, ANSWER)
            assert await cache.get(KEY) == ANSWER
            calls = 0
            with server.frozen():
                assert await cache.get(KEY) is None  # one timeout: the back-off starts
                before = server.connections
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    found = await asyncio.gather(*(cache.get(KEY) for _ in range(10)))
                    assert found == [None] * 10
                    cache.set_in_background(KEY, ANSWER)
                    calls += 10
                    await asyncio.sleep(0.01)
                probes = server.connections - before
            await asyncio.sleep(0.05)  # thawed: the next probe after the window succeeds
            for _ in range(200):
                hit = await cache.get(KEY)
                if hit is not None:
                    break
                await asyncio.sleep(0.05)
            await cache.aclose()
            return calls, probes, cache.backoff.failures, hit

        calls, probes, failures, hit = asyncio.run(scenario())
    # A 2 s timeout per call (the old behaviour) would allow about 10 calls; 0.25 s
    # timeouts without a back-off would open a connection per probe, hundreds of them.
    assert calls >= 300
    assert 1 <= probes <= 4  # windows of 0.25, 0.5, 1 s in 2 s: 3 retries (+1 of slack)
    assert failures == 0 and hit == ANSWER  # it recovered
    assert any("no answer within 0.25 s" in w for w in warnings_of(caplog))


def test_a_bad_redis_url_is_a_cache_error_without_the_password() -> None:
    with pytest.raises(CacheError) as err:
        RedisCache("http://:hunter2@host/0")
    assert "hunter2" not in str(err.value)


def test_cache_module_import_is_light() -> None:
    out = run_python(
        """
        import sys
        import synapsekit.llm.cache
        print(sorted(m for m in ("aiosqlite", "redis", "sqlite3") if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


@pytest.fixture(autouse=True)
def _cache_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="synapsekit.cache")


# --------------------------------------------------------------------------- isolation, end to end


@pytest.fixture(params=["memory", "sqlite", "redis"])
def own_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A cache object of one backend, built by the test and passed to make_llm."""
    if request.param == "memory":
        return MemoryCache()
    if request.param == "sqlite":
        return SQLiteCache(tmp_path / "c.db")
    return RedisCache(request.getfixturevalue("redis_url"))


async def test_another_key_never_gets_an_answer_cached_for_a_key(
    openai_sim: OpenAISimulator, own_cache: Any
) -> None:
    mine = make_llm("gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url, cache=own_cache)
    assert await mine.generate("hi") == "Hello, world!"
    assert await mine.generate("hi") == "Hello, world!"  # a hit: the write was awaited
    assert len(openai_sim.requests) == 1
    thief = make_llm("gpt-4o-mini", api_key="sk-another-key-9876543210",
                     base_url=openai_sim.url, cache=own_cache)
    with pytest.raises(AuthenticationError):  # asked the server, which refused the key
        await thief.generate("hi")
    assert len(openai_sim.requests) == 2
    # A namespace is an explicit choice to share: then the other key does get the answer.
    shared = [
        make_llm("gpt-4o-mini", api_key=key, base_url=openai_sim.url, cache=own_cache,
                 cache_namespace="team-a")
        for key in (API_KEY, "sk-another-key-9876543210")
    ]
    assert await shared[0].generate("hi") == "Hello, world!"
    assert len(openai_sim.requests) == 3  # the namespace's first answer: asked for
    assert await shared[1].generate("hi") == "Hello, world!"
    assert len(openai_sim.requests) == 3  # the other key of the namespace: a hit
    await own_cache.aclose()


async def test_two_endpoints_never_share_an_answer(openai_sim: OpenAISimulator) -> None:
    cache = MemoryCache()
    with OpenAISimulator(API_KEY) as other:
        first = make_llm("gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url, cache=cache)
        second = make_llm("gpt-4o-mini", api_key=API_KEY, base_url=other.url, cache=cache)
        assert await first.generate("hi") == await second.generate("hi") == "Hello, world!"
        assert (len(openai_sim.requests), len(other.requests)) == (1, 1)
        await second.generate("hi")
        assert len(other.requests) == 1


async def test_clear_cache_clears_the_whole_cache_it_uses_and_no_other(
    openai_sim: OpenAISimulator,
) -> None:
    shared, own = MemoryCache(), MemoryCache()
    one, two = (
        make_llm("gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url, cache=shared,
                 cache_namespace=ns)
        for ns in ("tenant-1", "tenant-2")
    )
    apart = make_llm("gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url, cache=own)
    for llm in (one, two, apart):
        await llm.generate("hi")
    assert (shared.stats()["size"], own.stats()["size"], len(openai_sim.requests)) == (2, 1, 3)
    await one.clear_cache()  # the docstring: every answer of the cache this LLM uses
    assert (shared.stats()["size"], own.stats()["size"]) == (0, 1)
    await apart.generate("hi")
    assert len(openai_sim.requests) == 3  # a cache of its own was not cleared
    await two.generate("hi")
    assert len(openai_sim.requests) == 4  # the shared one was, for both tenants

