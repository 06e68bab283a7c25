"""What every client benchmark here shares: a simulator in its own process, client CPU,
interleaved rounds and their medians, peak RSS and thread counts.

Why a separate process for the simulator: ``time.process_time()`` counts every thread of
*this* process, so the server's work must not be in it. Why interleaved rounds and
medians: the machine is shared and noisy; running client A, B, C, A, B, C... and taking
each one's median round lets a slow moment hit all clients alike, and ratios between
clients measured that way carry over between machines where seconds do not; the order
rotates by one client each round, so no client always follows the same one. Why each
round is preceded by :func:`settle` (a ``gc.collect()`` and a few unmeasured calls of the
client about to be measured): otherwise a client pays for the one before it -- its
garbage, collected inside the next round (an SDK's pydantic objects per chunk), and caches
left cold. With a fixed order and neither, synapsekit, always measured right after the raw
SDK, read 1.42x-1.45x the floor sequentially on OpenAI (1.11x with the rotation alone)
and 1.46x at 200 concurrent on Gemini (1.08x with the collection).
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KEY = "sk-bench-key"
MODEL = "gpt-4o-mini"
#: The SigV4 credentials the Bedrock simulator accepts by default.
AWS_ID, AWS_SECRET, AWS_REGION = "AKIDSIMULATOR", "simulator-secret", "us-east-1"
#: One streamed generation, consumed to its end; returns the text it read.
Workload = Callable[[], Awaitable[str]]
#: The tool the tool-call benchmarks offer (the simulators' ``--tool-fragments`` and
#: ``openai_streams`` calls name it: ``server.BENCH_TOOL``), in OpenAI's format.
SEARCH: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "search", "description": "Search the web.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                       "required": ["q"]},
    },
}


def start_simulator(
    tokens: int | None, protocol: str = "openai", *args: str, module: str | None = None,
    api_key: str | None = KEY,
) -> tuple[subprocess.Popen[str], str]:
    """Start ``synapsekit.testing.simulators.<protocol>_protocol`` (or ``module``) in its own
    process; (the process, its root URL ``http://127.0.0.1:<port>``, no path)."""
    name = module or f"synapsekit.testing.simulators.{protocol}_protocol"
    command = [sys.executable, "-m", name, "--port", "0", *args]
    if tokens is not None:  # (a simulator with its own workload options takes none)
        command += ["--tokens", str(tokens)]
    if api_key is not None:
        command += ["--api-key", api_key]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        proc.kill()
        raise RuntimeError(f"simulator {name} did not start: {line}")
    return proc, f"http://127.0.0.1:{line[1]}"


@contextmanager
def simulator(tokens: int, protocol: str = "openai", *args: str, **options: Any) -> Iterator[str]:
    """:func:`start_simulator` as a context manager: yields the root URL, stops it after."""
    proc, url = start_simulator(tokens, protocol, *args, **options)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def aws_environment() -> Iterator[None]:
    """AWS's own credential chain seeing only the simulator's keys (no profile, no
    metadata service): what a Bedrock user has, through the environment, not SDK patching."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_BEARER_TOKEN_BEDROCK"):
            os.environ.pop(name, None)
        os.environ.update({
            "AWS_ACCESS_KEY_ID": AWS_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_DEFAULT_REGION": AWS_REGION, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(Path(tmp) / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(Path(tmp) / "no-credentials"),
        })
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def expected_text(tokens: int) -> str:
    """What the simulators' default reply streams: `` tok0 tok1 ...``."""
    return "".join(f" tok{i}" for i in range(tokens))


async def measure(
    one: Workload, n: int, concurrent: bool, limit: int | None = None
) -> tuple[float, float, str]:
    """(client CPU seconds, wall seconds, one answer) for n generations: one after another,
    or all at once (at most ``limit`` at a time when given)."""
    cpu, wall = time.process_time(), time.perf_counter()
    if concurrent and limit and limit < n:
        gate = asyncio.Semaphore(limit)

        async def gated() -> str:
            async with gate:
                return await one()

        answers = await asyncio.gather(*(gated() for _ in range(n)))
    elif concurrent:
        answers = await asyncio.gather(*(one() for _ in range(n)))
    else:
        answers = [await one() for _ in range(n)]
    return time.process_time() - cpu, time.perf_counter() - wall, answers[0]


async def settle(one: Workload, n: int) -> None:
    """Before a client's measured round: collect the previous client's garbage (else it is
    collected inside this one's round) and run this client unmeasured for a twentieth of
    the round, so it starts with its own code and objects warm in the caches, not the
    previous client's."""
    gc.collect()
    for _ in range(max(1, n // 20)):
        await one()
    gc.collect()


def rotated(clients: Mapping[str, Workload], turn: int) -> list[tuple[str, Workload]]:
    """The clients in the order of round ``turn``: each round starts one client later,
    so none always runs right after the same other one (a client that follows an SDK
    heavy on allocations inherits a warmer collector and colder caches)."""
    items = list(clients.items())
    start = turn % len(items) if items else 0
    return items[start:] + items[:start]


async def interleaved(
    clients: dict[str, Workload], n: int, rounds: int, expected: str, *, concurrency: int = 1,
    around: Mapping[str, Callable[[], AbstractContextManager[None]]] | None = None,
) -> dict[str, tuple[float, float]]:
    """Each client's median (CPU s, wall s) over ``rounds`` rounds run A, B, C, A, B, C...,
    ``concurrency`` streams at a time (1: sequential); every answer checked against
    ``expected`` so no client can skip the work. ``around[name]`` is entered for that
    client's rounds only (a process-wide switch such as OTel instrumentation)."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    for turn in range(rounds):
        for name, one in rotated(clients, turn):
            with (around or {}).get(name, nullcontext)():
                await settle(one, n)
                cpu, wall, answer = await measure(one, n, concurrency > 1, concurrency)
            assert answer == expected, (name, answer[:60])
            samples[name].append((cpu, wall))
    return {
        name: (statistics.median(c for c, _ in rows), statistics.median(w for _, w in rows))
        for name, rows in samples.items()
    }


async def warm_up(clients: dict[str, Workload], expected: str, n: int = 20) -> None:
    """Imports, connection pools, lazy setup: paid once, before anything is measured."""
    for name, one in clients.items():
        answer = await one()
        assert answer == expected, (name, answer[:60])
        await measure(one, n, True)


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ThreadPeak:
    """The largest number of live threads seen while running (sampled every 5 ms on a
    thread of its own, which is counted out)."""

    def __init__(self) -> None:
        self.peak = threading.active_count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, threading.active_count() - 1)

    def __enter__(self) -> ThreadPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def split_rounds(workloads: dict[str, Workload], label: str, n: int, rounds: int) -> None:
    """The split benchmarks' run (``bench_split.py``, ``bench_gemini_split.py``): each
    workload's client CPU per call, sequential then ``n`` at once, median of interleaved
    rounds, printed as a ratio to the ``"floor"`` workload; every answer checked."""
    expected = expected_text(50)
    for one in workloads.values():
        for _ in range(10):
            assert await one() == expected
    for mode in ("sequential", "concurrent"):
        samples: dict[str, list[float]] = {name: [] for name in workloads}
        for turn in range(rounds):
            for name, one in rotated(workloads, turn):
                await settle(one, n)
                cpu = time.process_time()
                if mode == "sequential":
                    answers = [await one() for _ in range(n)]
                else:
                    answers = list(await asyncio.gather(*(one() for _ in range(n))))
                samples[name].append((time.process_time() - cpu) / n * 1e3)
                assert answers[0] == expected, (name, answers[0][:60])
        bottom = statistics.median(samples["floor"])
        print(f"  {label}{mode} ({n} x 50 tokens, median of {rounds})")
        for name, values in samples.items():
            median = statistics.median(values)
            print(f"    {name:<16}{median:7.3f} ms/call {median / bottom:6.2f}x floor")
