"""Client CPU of the whole call path with every LLMConfig runtime feature on vs off.

"on" = cache (every call a miss: a lookup and a store), rate limiter (requests and tokens
per minute, set high enough never to wait), retries armed (max_retries=2) and a
TokenTracer pricing every call. "off" = none of them. Same workload, same simulator (a
separate process, so the CPU measured is the client's alone), rounds interleaved, median
reported. Target: "on" costs <= 10% more client CPU than "off" (memory cache).

    python benchmarks/bench_runtime.py                    # 200 x 50 tokens, 5 rounds
    python benchmarks/bench_runtime.py --backends memory,sqlite,redis
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import KEY, MODEL, Workload, measure, start_simulator  # noqa: E402

_prompts = itertools.count()


def client(url: str, **fields: Any) -> Workload:
    from synapsekit import make_llm
    from synapsekit.observability import TokenTracer

    tracer = TokenTracer() if fields.pop("tracer", False) else None
    llm = make_llm(MODEL, api_key=KEY, base_url=url, system_prompt=None, tracer=tracer, **fields)

    async def one() -> str:  # a new prompt every call: the cache always misses
        return await llm.generate(f"Say something {next(_prompts)}.")

    return one


def features(backend: str, stack: ExitStack) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "cache": True, "cache_backend": backend, "cache_maxsize": 100_000,
        "requests_per_minute": 1e9, "tokens_per_minute": 1e12,
        "max_retries": 2, "tracer": True,
    }
    if backend == "sqlite":
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        fields["cache_path"] = str(Path(tmp) / "bench-cache.db")
    elif backend == "redis":
        from tests.redis_server import redis_server

        fields["redis_url"] = stack.enter_context(redis_server())
    return fields


async def run(args: argparse.Namespace, url: str, stack: ExitStack) -> None:
    clients = {"features off": client(url)}
    for backend in args.backends.split(","):
        clients[f"on ({backend} cache)"] = client(url, **features(backend, stack))
    expected = "".join(f" tok{i}" for i in range(args.tokens))
    for one in clients.values():  # warm up: imports, connections, price table
        assert await one() == expected
        await measure(one, 20, True)
    print(f"workload: {args.n} streamed generations x {args.tokens} tokens, "
          f"median of {args.rounds} rounds; simulator in a separate process\n")
    for mode in ("sequential", "concurrent"):
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name, one in clients.items():
                cpu, _, answer = await measure(one, args.n, mode == "concurrent")
                assert answer == expected, (name, answer[:60])
                samples[name].append(cpu)
        base = statistics.median(samples["features off"])
        print(f"{mode}")
        print(f"  {'client':<22}{'CPU s':>8}{'vs off':>9}")
        for name, cpus in samples.items():
            cpu = statistics.median(cpus)
            print(f"  {name:<22}{cpu:>8.3f}{cpu / base:>8.2f}x")
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="generations per round")
    parser.add_argument("--tokens", type=int, default=50, help="tokens per generation")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="memory,sqlite",
                        help="cache backends to measure with features on (memory,sqlite,redis)")
    args = parser.parse_args()
    proc, url = start_simulator(args.tokens)
    url += "/v1"  # the OpenAI SDK's base URL
    try:
        with ExitStack() as stack:
            asyncio.run(run(args, url, stack))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
