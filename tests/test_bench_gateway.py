"""benchmarks/bench_gateway.py still runs (its synapsekit and direct rows; the LiteLLM proxy
is not installed in CI) and the relay floors' rows: a tiny workload, every answer's text
checked by the script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_gateway_runs_without_litellm() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gateway.py"), "--litellm",
         "/nonexistent/litellm", "--tokens", "5", "--seq", "3", "--conc", "4",
         "--concurrency", "2", "--rounds", "1", "--floors"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("LiteLLM proxy not found at /nonexistent/litellm")
    rows = {line.split()[0] for line in lines
            if line.startswith(("direct ", "synapsekit ", "relay-"))}
    assert rows == {"direct", "synapsekit", "relay-sdk", "relay-raw"}
