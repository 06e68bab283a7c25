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
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ["openai", "anthropic", "gemini", "cohere", "mistral", "ollama", "bedrock"]


FEATURE_ROWS = ["cache", "limiter", "tracer", "tool"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bench_streaming_runs(protocol: str, tmp_path: Path) -> None:
    """Plain, and the feature rows of the same run (the tool row against a second
    simulator serving the protocol's streamed call: its answer is checked in the script)."""
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_streaming.py", "--protocol", protocol, "-n", "2",
         "--rounds", "1", "--tokens", "5", "--feature", ",".join(FEATURE_ROWS),
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())[protocol]
    rows = {"raw SDK", "synapsekit", "floor"} | {f"synapsekit + {f}" for f in FEATURE_ROWS}
    for mode in ("sequential", "concurrent"):
        assert set(figures[mode]) == rows
        assert figures[mode]["raw SDK"]["vs_raw"] == 1.0
        assert figures[mode]["floor"]["vs_floor"] == 1.0
        assert all(figures[mode][f"synapsekit + {f}"]["vs_plain"] > 0 for f in FEATURE_ROWS)
    assert f"{protocol} protocol" in done.stdout


def test_the_tool_simulators_serve_the_benchmark_call() -> None:
    """Every protocol's --tool-fragments reply is one call of the benchmarks' tool with the
    exact arguments, through synapsekit (where the protocol streams fragments, as many
    deltas as asked)."""
    import asyncio

    from benchmarks._common import SEARCH, aws_environment, start_simulator
    from benchmarks.bench_streaming import PROTOCOLS as SPECS
    from synapsekit import make_llm
    from synapsekit.testing.simulators.server import bench_tool_arguments

    arguments, pieces = bench_tool_arguments(12)
    assert len(pieces) == 12 and "".join(pieces) == json.dumps(arguments, separators=(",", ":"))

    async def deltas(protocol: str, url: str) -> tuple[int, list[Any]]:
        spec = SPECS[protocol]
        llm = make_llm(spec.model, api_key=spec.key, base_url=url + spec.suffix,
                       system_prompt=None)
        seen, calls = 0, []
        async for chunk in llm.stream_chunks("Search for it.", tools=[SEARCH]):
            seen += chunk.tool_delta is not None
            if chunk.tool_call is not None:
                calls.append((chunk.tool_call.name, dict(chunk.tool_call.arguments)))
        await llm.aclose()
        return seen, calls

    # one delta per fragment, plus the call's opening (id and name: OpenAI's first
    # tool_calls delta, Anthropic's content_block_start, Cohere's tool-call-start, Bedrock's
    # contentBlockStart) and, where the wire closes a call, its closing (content_block_stop,
    # tool-call-end, contentBlockStop); a whole call is one delta
    streamed = {"openai": 1 + 12, "anthropic": 1 + 12 + 1, "cohere": 1 + 12 + 1,
                "bedrock": 1 + 12 + 1}
    with aws_environment():
        for protocol in PROTOCOLS:
            proc, url = start_simulator(None, protocol, "--tool-fragments", "12",
                                        api_key=SPECS[protocol].key)
            try:
                seen, calls = asyncio.run(deltas(protocol, url))
            finally:
                proc.terminate()
                proc.wait(10)
            assert calls == [("search", arguments)], protocol
            assert seen == streamed.get(protocol, 1), (protocol, seen)


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
