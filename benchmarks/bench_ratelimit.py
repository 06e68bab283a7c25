"""Overhead of the rate limiter when it does not make anyone wait.

With a capacity no workload reaches, ``acquire()`` only reserves and returns, so what is
measured is the cost the limiter adds to every call: the in-process bucket (a lock and a
few float operations) and the Redis bucket (one EVALSHA round trip to a local
redis-server, started here), against a bare ``await asyncio.sleep(0)`` loop as the floor.
Each figure is the median of several rounds. An acquire that need not wait never yields
to the event loop, so it can cost less than the ``sleep(0)`` floor.

    python benchmarks/bench_ratelimit.py                 # 20,000 in-process, 2,000 Redis acquires
    python benchmarks/bench_ratelimit.py --rounds 7 --redis-n 5000
    python benchmarks/bench_ratelimit.py --no-redis

Target: the in-process acquire costs a few microseconds, invisible next to an LLM call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synapsekit.llm.ratelimit import MemoryRateLimiter, RedisRateLimiter  # noqa: E402

HUGE = 1e12  # requests (and tokens) per minute: never reached


async def per_call_us(step: Callable[[], Awaitable[None]], n: int, rounds: int) -> float:
    """Median over ``rounds`` of the microseconds one ``await step()`` takes."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            await step()
        results.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(results)


async def bench(n: int, redis_n: int, rounds: int, with_redis: bool) -> list[tuple[str, float]]:
    rows = [("await asyncio.sleep(0)", await per_call_us(lambda: asyncio.sleep(0), n, rounds))]
    rpm_only = MemoryRateLimiter(HUGE)
    both = MemoryRateLimiter(HUGE, HUGE)
    rows.append(("in-process, requests/min", await per_call_us(rpm_only.acquire, n, rounds)))
    rows.append(
        ("in-process, requests+tokens/min", await per_call_us(lambda: both.acquire(500), n, rounds))
    )
    if with_redis:
        from tests.redis_server import redis_server

        with redis_server() as url:
            limiter = RedisRateLimiter(url, "synapsekit:ratelimit:bench", HUGE, HUGE)
            await limiter.acquire()  # connect and load the script outside the timing
            rows.append(
                ("Redis, requests+tokens/min",
                 await per_call_us(lambda: limiter.acquire(500), redis_n, rounds))
            )
            await limiter.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="in-process acquires per round")
    parser.add_argument("--redis-n", type=int, default=2_000, help="Redis acquires per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    rows = asyncio.run(bench(args.n, args.redis_n, args.rounds, not args.no_redis))
    floor = rows[0][1]
    print(f"{'limiter':34} {'us/acquire':>10} {'x sleep(0)':>11}")
    for name, us in rows:
        print(f"{name:34} {us:10.2f} {us / floor:11.2f}")


if __name__ == "__main__":
    main()
