"""OpenTelemetry instrumentation overhead, A/B at the finest grain: the same workload through
two synapsekit LLMs that differ only in the instrumentation, alternated call by call.

Why beside ``bench_streaming.py --feature otel``: that benchmark compares whole rounds of
200 calls, and on a shared 2-core machine two identical clients measured that way differ
by up to +-10% from one run to the next, more than the effect measured here. Alternating
single calls (sequential) or single rounds in alternating order (200 concurrent) lets a
slow moment hit both sides alike; an A/A run (both LLMs plain) shows what is left of the
noise. The instrumentation is ``instrument()``'s own hook on the SDK setup of
``_otel.py`` (BatchSpanProcessor, PeriodicExportingMetricReader, exporters that drop),
given to one LLM only (``make_llm(..., hooks=[hook])``).

    python benchmarks/bench_otel.py --protocol openai,anthropic
    python benchmarks/bench_otel.py --protocol openai -n 3000 --rounds 50
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Workload, aws_environment, expected_text, measure, simulator
from benchmarks._otel import otel_available, providers
from benchmarks.bench_streaming import PROTOCOLS


def otel_hook() -> Any:
    """The hook ``instrument()`` installs, taken out of the process-wide list."""
    from synapsekit.observability import hooks, otel

    tracer_provider, meter_provider = providers()
    otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    (hook,) = hooks.global_hooks()
    otel.uninstrument()
    return hook


def client(url: str, protocol: str, hook: Any) -> Workload:
    from synapsekit import make_llm

    proto = PROTOCOLS[protocol]
    llm = make_llm(proto.model, api_key=proto.key, base_url=url + proto.suffix,
                   system_prompt=None, hooks=None if hook is None else [hook])

    async def one() -> str:
        return await llm.generate("Say something.")

    return one


async def sequential(a: Workload, b: Workload, n: int, expected: str) -> tuple[float, float]:
    """CPU seconds per call of a and b, alternated call by call (ABBA order)."""
    cpu = [0.0, 0.0]
    for i in range(n):
        for side in ((0, 1) if i % 2 else (1, 0)):
            started = time.process_time()
            answer = await (a, b)[side]()
            cpu[side] += time.process_time() - started
            assert answer == expected
    return cpu[0] / n, cpu[1] / n


async def concurrent(
    a: Workload, b: Workload, rounds: int, at_once: int, expected: str
) -> tuple[float, float, float]:
    """CPU seconds per call of a and b over rounds of ``at_once`` calls, alternating which
    goes first; and the median of the per-round ratios b / a."""
    cpu, ratios = [0.0, 0.0], []
    for i in range(rounds):
        got = [0.0, 0.0]
        for side in ((0, 1) if i % 2 else (1, 0)):
            got[side], _wall, answer = await measure((a, b)[side], at_once, True)
            assert answer == expected
        cpu[0], cpu[1] = cpu[0] + got[0], cpu[1] + got[1]
        ratios.append(got[1] / got[0])
    calls = rounds * at_once
    return cpu[0] / calls, cpu[1] / calls, statistics.median(ratios)


async def run(args: argparse.Namespace, protocol: str, url: str) -> None:
    hook = otel_hook()
    expected = expected_text(args.tokens)
    pairs = {"A/A (both plain)": (None, None), "plain vs otel": (None, hook)}
    print(f"\n{protocol} protocol: {args.tokens}-token streams; sequential: {args.n} calls "
          f"each, alternated; concurrent: {args.rounds} rounds of {args.concurrency} each")
    for label, (first, second) in pairs.items():
        a, b = client(url, protocol, first), client(url, protocol, second)
        for one in (a, b):  # imports, pools, the SDK's first instruments: paid here
            await measure(one, 20, True)
        plain, other = await sequential(a, b, args.n, expected)
        print(f"  {label:<18} sequential  {plain * 1e6:7.0f} vs {other * 1e6:7.0f} us/call  "
              f"{other / plain:.3f}x  ({(other - plain) * 1e6:+.0f} us/call)")
        plain, other, median = await concurrent(a, b, args.rounds, args.concurrency, expected)
        print(f"  {label:<18} {args.concurrency} at once {plain * 1e6:7.0f} vs "
              f"{other * 1e6:7.0f} us/call  {other / plain:.3f}x  (median round {median:.3f}x)")


async def main_async(args: argparse.Namespace) -> None:
    for protocol in args.protocol.split(","):
        with aws_environment() if protocol == "bedrock" else nullcontext(), simulator(
            args.tokens, protocol, api_key=PROTOCOLS[protocol].key
        ) as url:
            await run(args, protocol, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--protocol", default="openai,anthropic")
    parser.add_argument("-n", type=int, default=1500, help="sequential calls per side")
    parser.add_argument("--rounds", type=int, default=30, help="concurrent rounds per side")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=50)
    args = parser.parse_args()
    reason = otel_available()
    if reason:
        raise SystemExit(reason)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
