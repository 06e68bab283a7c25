"""Import time of synapsekit next to ``import asyncio``, on the same machine.

Each statement runs in a fresh interpreter (``python -c``), timed around the import
itself with ``time.perf_counter``; the statements are interleaved round by round so a
busy machine slows them alike, and the median (and the fastest) of the rounds is
printed. Ratios are what to compare: absolute figures move with the machine.

    python benchmarks/bench_import.py             # 40 rounds
    python benchmarks/bench_import.py --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

STATEMENTS = {
    "import asyncio": "import asyncio",
    "import synapsekit": "import synapsekit",
    "from synapsekit import make_llm, LLMConfig, RAG":
        "from synapsekit import make_llm, LLMConfig, RAG",
}


def once(statement: str) -> float:
    code = (
        "import time\n"
        "start = time.perf_counter()\n"
        f"{statement}\n"
        "print(time.perf_counter() - start)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    for _ in range(args.rounds):
        for name, statement in STATEMENTS.items():
            times[name].append(once(statement))
    base = statistics.median(times["import asyncio"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<50} median {median:6.1f} ms  fastest {min(values):6.1f} ms  "
              f"{median / base:4.2f}x import asyncio")


if __name__ == "__main__":
    main()
