"""Client CPU of a Router with 3 members vs calling the member directly.

The same workload -- N streamed generations of T tokens, sequential and then concurrent --
goes through one LLM directly and through ``Router([that LLM, two more], strategy)``, whose
first choice is that LLM (so both send the same requests), against the OpenAI-protocol
simulator in a separate process; ``time.process_time()`` of this process is the clients'
CPU. Rounds are interleaved and the median reported; the ratio is what to compare.

    python benchmarks/bench_router.py                         # fallback, 200 x 50 tokens
    python benchmarks/bench_router.py --strategy round_robin  # all members on the simulator
    python benchmarks/bench_router.py --rounds 3 -n 100

Target: a Router adds <= 5% client CPU (ratio <= 1.05). The HTTP workload's ratio moves by
several percent from round to round on a busy machine, so the run also measures the
router's own cost alone: the same comparison over ``synapsekit.testing.FakeLLM`` members
(no network, no SDK), in microseconds per call, which is what the router adds to any call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmarks._common import KEY, MODEL, Workload, measure, start_simulator  # noqa: E402


def clients(url: str, strategy: str) -> dict[str, Workload]:
    from synapsekit import make_llm
    from synapsekit.llm.router import Router

    direct = make_llm(MODEL, api_key=KEY, base_url=url, system_prompt=None)
    member = make_llm(MODEL, api_key=KEY, base_url=url, system_prompt=None)
    others = [make_llm(m, api_key=KEY, base_url=url, system_prompt=None)
              for m in ("gpt-4o", "gpt-4.1-mini")]
    router = Router([member, *others], strategy)

    async def one_direct() -> str:
        return await direct.generate("Say something.")

    async def one_routed() -> str:
        return await router.generate("Say something.")

    return {"member directly": one_direct, f"Router ({strategy}, 3)": one_routed}


async def run(args: argparse.Namespace, url: str) -> None:
    workloads = clients(url, args.strategy)
    expected = "".join(f" tok{i}" for i in range(args.tokens))
    for one in workloads.values():  # warm up: imports, connection pools, lazy setup
        assert await one() == expected
        await measure(one, 20, True)
    print(f"workload: {args.n} generations (generate(), streamed from the provider) x "
          f"{args.tokens} tokens, median of {args.rounds} rounds; simulator in a separate "
          "process\n")
    for mode in ("sequential", "concurrent"):
        samples: dict[str, list[float]] = {name: [] for name in workloads}
        for _ in range(args.rounds):
            for name, one in workloads.items():
                cpu, _wall, answer = await measure(one, args.n, mode == "concurrent")
                assert answer == expected, (name, answer[:60])
                samples[name].append(cpu)
        base = statistics.median(samples["member directly"])
        print(f"{mode} ({args.n} {'at once' if mode == 'concurrent' else 'one after another'})")
        print(f"  {'client':<28}{'CPU s':>8}{'us/call':>9}{'vs direct':>11}")
        for name, rows in samples.items():
            cpu = statistics.median(rows)
            print(f"  {name:<28}{cpu:>8.3f}{cpu / args.n * 1e6:>9.0f}{cpu / base:>10.3f}x")
        print()


async def overhead_alone(n: int, rounds: int) -> None:
    """Per-call CPU of FakeLLM directly vs Router([3 FakeLLMs]): the router's own cost."""
    from synapsekit.llm.router import Router
    from synapsekit.testing import FakeLLM

    answer = "a fake answer of eight words, then it ends."
    direct = FakeLLM([answer])
    router = Router([FakeLLM([answer]), FakeLLM([answer]), FakeLLM([answer])])

    async def one_direct() -> str:
        return await direct.generate("Say something.")

    async def one_routed() -> str:
        return await router.generate("Say something.")

    workloads = {"FakeLLM directly": one_direct, "Router (fallback, 3 FakeLLMs)": one_routed}
    for one in workloads.values():
        assert await one() == answer
    samples: dict[str, list[float]] = {name: [] for name in workloads}
    for _ in range(rounds):
        for name, one in workloads.items():
            cpu, _wall, _answer = await measure(one, n, False)
            samples[name].append(cpu / n * 1e6)
    direct_us = statistics.median(samples["FakeLLM directly"])
    routed_us = statistics.median(samples["Router (fallback, 3 FakeLLMs)"])
    print(f"the router's own cost ({n} calls, no network; median of {rounds} rounds)")
    print(f"  FakeLLM directly               {direct_us:8.1f} us/call")
    print(f"  Router (fallback, 3 FakeLLMs)  {routed_us:8.1f} us/call")
    print(f"  the router adds                {routed_us - direct_us:8.1f} us/call\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="generations per round")
    parser.add_argument("--tokens", type=int, default=50, help="tokens per generation")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--strategy", default="fallback")
    args = parser.parse_args()
    asyncio.run(overhead_alone(2000, args.rounds))
    proc, url = start_simulator(args.tokens)
    url += "/v1"  # the OpenAI SDK's base URL
    try:
        asyncio.run(run(args, url))
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
