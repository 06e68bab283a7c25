"""The streaming benchmark cannot rot: for every protocol, its simulator serves the
benchmark workload to all three clients (raw SDK, synapsekit, floor) -- each answer is
checked for the exact text inside the script -- and the script runs end to end.

The figures are not checked here (they live in benchmarks/ and docs/performance.md): only
that the run finishes, prints the three clients, and writes its JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ["openai", "anthropic", "gemini", "cohere", "mistral", "ollama", "bedrock"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bench_streaming_runs(protocol: str, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_streaming.py", "--protocol", protocol, "-n", "2",
         "--rounds", "1", "--tokens", "5", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())[protocol]
    for mode in ("sequential", "concurrent"):
        assert set(figures[mode]) == {"raw SDK", "synapsekit", "floor"}
        assert figures[mode]["raw SDK"]["vs_raw"] == 1.0
        assert figures[mode]["floor"]["vs_floor"] == 1.0
    assert f"{protocol} protocol" in done.stdout


def test_the_split_benchmark_runs() -> None:
    """benchmarks/bench_split.py (what the SDK's request path costs above the floor, on
    OpenAI, Anthropic and Mistral) cannot rot: each of its three clients reads the exact
    text (checked in the script) on every protocol, sequential and concurrent."""
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_split.py", "-n", "2", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("synapsekit", "no SDK", "floor"):
        assert done.stdout.count(f"    {name} ") == 6, done.stdout  # 3 protocols x 2 modes


def test_the_layers_benchmark_runs() -> None:
    """benchmarks/bench_layers.py (synapsekit's own layers, in-process, on a recorded
    answer) cannot rot: each layer reads the simulator's exact answer (checked in the
    script) and all four rows print."""
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_layers.py", "-n", "5", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "54 SSE events" in done.stdout
    for name in ("floor", "decoder", "+ deadlines", "call path"):
        assert f"  {name} " in done.stdout, done.stdout
