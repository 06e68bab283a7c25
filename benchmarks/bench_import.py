"""Import time of synapsekit above ``import asyncio``, on the same machine.

Each statement runs in a fresh interpreter (``python -c``), timed around the import
itself with ``time.perf_counter``; the statements are interleaved round by round so a
busy machine slows them alike, and the median (and the fastest) of the rounds is
printed. The budget (issue 16) is what an async user pays on top of ``import asyncio``:
``import synapsekit`` plus every public name resolved, at most 25 ms above it.

Why the package is byte-compiled first: an installed wheel ships compiled (pip compiles
on install) and the standard library is compiled, but an editable checkout run with
``PYTHONDONTWRITEBYTECODE=1`` (as on the CI machines) compiles every module from source
on every start -- about half of the figure, and not what a user pays. ``--source`` measures
that case too.

    python benchmarks/bench_import.py               # 40 rounds
    python benchmarks/bench_import.py --rounds 10
    python benchmarks/bench_import.py --importtime  # plus the -X importtime summary
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import synapsekit

ALL_NAMES = "import synapsekit\nfor _n in synapsekit.__all__: getattr(synapsekit, _n)"
STATEMENTS = {
    "import asyncio": "import asyncio",
    "import synapsekit": "import asyncio\nimport synapsekit",
    "synapsekit + every public name": f"import asyncio\n{ALL_NAMES}",
}
BASE = "import asyncio"
BUDGET_MS = 25.0


def once(statement: str, env: dict[str, str]) -> float:
    code = (
        "import time\n"
        "start = time.perf_counter()\n"
        f"{statement}\n"
        "print(time.perf_counter() - start)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    return float(out.stdout) * 1000.0


def compiled_env(prefix: str) -> dict[str, str]:
    """An environment whose interpreters read synapsekit's byte code from ``prefix``."""
    package = Path(synapsekit.__file__).parent
    env = dict(os.environ, PYTHONPYCACHEPREFIX=prefix)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # compileall honours sys.pycache_prefix: compile into the same prefix the children read
    sys.pycache_prefix = prefix
    compileall.compile_dir(str(package), quiet=1)
    # the standard library's own byte code is beside it, not under the prefix: let the
    # children write theirs there once, then every round reads it
    subprocess.run([sys.executable, "-c", ALL_NAMES], env=env, check=True)
    return env


def importtime(env: dict[str, str], top: int = 12) -> None:
    """The modules with the largest own import time (``-X importtime``), synapsekit's and
    the standard library's it pulls in beyond asyncio."""
    statement = f"import asyncio\n{ALL_NAMES}"
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                         capture_output=True, text=True, check=True, env=env)
    rows = []
    for line in run.stderr.splitlines()[1:]:  # "import time: <own> | <cumulative> | <name>"
        own, cumulative, name = line.split("|")
        rows.append((int(own.split(":")[1]), int(cumulative), name.strip()))
    print(f"\n-X importtime: the {top} largest own times (microseconds)")
    for own, cumulative, name in sorted(rows, reverse=True)[:top]:
        print(f"  {own:7d} own {cumulative:8d} cumulative  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--source", action="store_true",
                        help="also time the uncompiled case (PYTHONDONTWRITEBYTECODE checkout)")
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synapsekit-pyc-") as prefix:
        envs = {"compiled": compiled_env(prefix)}
        if args.source:
            # as this checkout runs here: the standard library from its byte code,
            # synapsekit compiled on every start (no __pycache__ is ever written)
            envs["from source"] = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
            envs["from source"].pop("PYTHONPYCACHEPREFIX", None)
        times = {(kind, name): [] for kind in envs for name in STATEMENTS}
        for _ in range(args.rounds):
            for kind, env in envs.items():
                for name, statement in STATEMENTS.items():
                    times[kind, name].append(once(statement, env))
        for kind in envs:
            base = statistics.median(times[kind, BASE])
            print(f"{kind}:")
            for name in STATEMENTS:
                values = times[kind, name]
                median = statistics.median(values)
                above = "" if name == BASE else f"  {median - base:+6.1f} ms above asyncio"
                print(f"  {name:<34} median {median:6.1f} ms  fastest {min(values):6.1f} ms"
                      f"{above}")
        public = statistics.median(times["compiled", "synapsekit + every public name"])
        over = public - statistics.median(times["compiled", BASE])
        print(f"budget: {over:.1f} ms above import asyncio (target <= {BUDGET_MS:.0f} ms): "
              f"{'met' if over <= BUDGET_MS else 'MISSED'}")
        if args.importtime:
            importtime(envs["compiled"])


if __name__ == "__main__":
    main()
