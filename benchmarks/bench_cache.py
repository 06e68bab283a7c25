"""Cache-hit latency of each backend: what a cached call waits before its first token.

One ~1 KB answer (256 chunks of 4 characters, as a streamed answer is stored) is written
once, then read ``--gets`` times, one ``await cache.get(key)`` after another on one event
loop; the median and p95 of each get are reported in microseconds. The Redis backend
runs against a redis-server this script starts on 127.0.0.1 (skipped when the binary is
missing), the SQLite one on a file in a temporary directory.

    python benchmarks/bench_cache.py                 # 2,000 gets per backend
    python benchmarks/bench_cache.py --gets 10000 --backends memory,sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synapsekit.llm.cache import (  # noqa: E402
    Cache,
    CachedAnswer,
    MemoryCache,
    RedisCache,
    SQLiteCache,
)
from synapsekit.llm.types import Usage  # noqa: E402

ANSWER = CachedAnswer(
    chunks=tuple("abc " for _ in range(256)),
    finish_reason="stop",
    usage=Usage(input_tokens=40, output_tokens=256),
)
KEY = "0123456789abcdef" * 4


async def measure(cache: Cache, gets: int) -> tuple[float, float]:
    """Median and p95 of one get, in microseconds (after a warm-up)."""
    await cache.set(KEY, ANSWER)
    for _ in range(50):
        assert await cache.get(KEY) == ANSWER
    times: list[float] = []
    for _ in range(gets):
        start = time.perf_counter_ns()
        await cache.get(KEY)
        times.append((time.perf_counter_ns() - start) / 1000)
    await cache.aclose()
    return statistics.median(times), statistics.quantiles(times, n=20)[-1]


def build(backend: str, stack: ExitStack) -> Cache | None:
    if backend == "memory":
        return MemoryCache(maxsize=128)
    if backend == "sqlite":
        directory = stack.enter_context(tempfile.TemporaryDirectory())
        return SQLiteCache(Path(directory) / "bench.db")
    from tests.redis_server import redis_server

    try:
        url = stack.enter_context(redis_server())
    except FileNotFoundError as exc:
        print(f"redis: skipped ({exc})")
        return None
    return RedisCache(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--backends", default="memory,sqlite,redis")
    args = parser.parse_args()
    size = len(ANSWER.text.encode())
    print(f"cache hit of a {size}-byte answer ({len(ANSWER.chunks)} chunks), "
          f"{args.gets} gets per backend, Python {sys.version.split()[0]}")
    print(f"{'backend':<8} {'median us':>10} {'p95 us':>10}")
    for backend in args.backends.split(","):
        with ExitStack() as stack:
            cache = build(backend, stack)
            if cache is None:
                continue
            median, p95 = asyncio.run(measure(cache, args.gets))
            print(f"{backend:<8} {median:>10.1f} {p95:>10.1f}")


if __name__ == "__main__":
    main()
