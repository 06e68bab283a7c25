"""The gateway beside the LiteLLM proxy, in one run, over the same upstream simulator.

    python benchmarks/bench_gateway.py [--tokens 50] [--seq 200] [--conc 400]
        [--concurrency 32] [--rounds 3] [--litellm /tmp/litellm-venv/bin/litellm]
        [--speedups DIR] [--floors]

Three targets get the same streamed request (``"stream": true``, ``include_usage``), from
the same raw httpx client in this process, rounds interleaved (direct, synapsekit,
litellm, direct, ...) so a slow moment of the shared machine hits all alike:

* **direct**: the OpenAI simulator itself (its own process), the floor;
* **synapsekit**: ``synapsekit serve`` (one uvicorn worker, its default ledger) with one
  model group pointing at the simulator and one virtual key;
* **litellm**: ``litellm --config`` (the proxy, one worker, master key, no database:
  LiteLLM needs PostgreSQL for virtual keys and spend logs, so it does *less* book-keeping
  here than synapsekit, which writes a ledger row per request);
* **speedups** (with ``--speedups DIR``): ``synapsekit serve`` again, with ``DIR`` on its
  path, a folder holding uvicorn's optional speedups (``pip install --target DIR
  httptools uvloop``, what ``uvicorn[standard]`` brings): uvicorn then parses HTTP with
  httptools and runs on uvloop. Not needed by the gateway; the row says what they give;
* **relay-sdk**, **relay-raw** (with ``--floors``): the least a Python gateway on the same
  parts does (:mod:`benchmarks.floor.relay`): a bare ASGI app on uvicorn that checks the
  key and relays the upstream's bytes, sending upstream through the openai SDK's ``post``
  (relay-sdk) or one httpx2 client (relay-raw). What they add is what the parts cost; the
  rest of synapsekit's added time is its own.

Measured: time to first token (first content delta) p50/p99 over the sequential
requests (each target's begin once every server is idle, so one still busy with the
previous target's streams slows none of them), and what each gateway adds to the direct
figure; streamed requests per second
at ``--concurrency`` streams in flight; the gateway process's CPU per streamed request
(utime + stime from ``/proc/<pid>/stat``, summed over the process and its children,
over the concurrent phase). Prints the ratios the issue sets targets for (CPU <= 1/5 of
LiteLLM's, <= 2 ms added p50 TTFT).

LiteLLM lives in its own venv (it pins its own httpx/openai/pydantic)::

    python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'

Without it (``--litellm`` not found), the synapsekit and direct rows still run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import KEY, MODEL, ROOT, expected_text, simulator

GW_KEY = "sk-gw-bench-0001"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and every live descendant, in seconds."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        one = todo.pop()
        if one in stats:
            fields = stats[one]
            total += (int(fields[11]) + int(fields[12])) / TICKS  # fields 14, 15 of stat
        todo += children.get(one, [])
    return total


def wait_ready(url: str, proc: subprocess.Popen[bytes], headers: dict[str, str],
               timeout: float = 120.0, ok: tuple[int, ...] = (200,)) -> float:
    """Seconds until ``url`` answers 200 or another ``ok`` status (the process's
    start-up time)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code in ok:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout} s")


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def synapsekit_config(sim_url: str, ledger: Path) -> str:
    return (
        f'[[models]]\nname = "fast"\nmodel = "{MODEL}"\nbase_url = "{sim_url}/v1"\n'
        'api_key_env = "SIM_KEY"\n\n'
        f'[[keys]]\nkey = "{GW_KEY}"\nname = "bench"\n\n'
        f'[storage]\nledger = "sqlite:///{ledger}"\n'
    )


def litellm_config(sim_url: str) -> str:
    return (
        "model_list:\n"
        "  - model_name: fast\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {sim_url}/v1\n"
        "      api_key: os.environ/SIM_KEY\n"
        "general_settings:\n"
        f"  master_key: {GW_KEY}\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  telemetry: false\n"
    )


async def one_stream(client: httpx.AsyncClient, url: str, key: str, model: str,
                     expected: str) -> float:
    """One streamed request read to its end; its time to first content delta (s)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    try:
        async with client.stream("POST", url, json=body,
                                 headers={"authorization": f"Bearer {key}"}) as answer:
            if answer.status_code != 200:
                raise RuntimeError(
                    f"{url}: {answer.status_code} {(await answer.aread())[:300]!r}")
            async for line in answer.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                for choice in event.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        if first is None:
                            first = time.perf_counter() - started
                        parts.append(text)
    except httpx.HTTPError as exc:  # (which target failed, and how)
        raise RuntimeError(f"{url}: {type(exc).__name__} {exc}") from exc
    if "".join(parts) != expected:
        raise RuntimeError(f"{url}: wrong text {''.join(parts)[:80]!r}")
    assert first is not None
    return first


async def settle(pids: list[int], longest: float) -> None:
    """Wait (up to ``longest`` seconds) until the servers are idle: under 5% of a core
    over 0.2 s, all together. LiteLLM goes on working for seconds after a burst of
    streams (its logging and spend callbacks), which would slow whatever is timed next."""
    waited = 0.0
    while waited < longest:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(0.2)
        waited += 0.2
        if sum(cpu_seconds(pid) for pid in pids) - before < 0.01:
            return


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


async def run(targets: dict[str, tuple[str, str, str, int | None]], args: argparse.Namespace,
              expected: str) -> dict[str, dict[str, float]]:
    """targets: name -> (chat URL, key, model, server pid or None)."""
    # Idle connections are dropped after 2 s: the servers (uvicorn) close theirs after 5 s,
    # the client's default is also 5 s, and a request sent on a connection the server is
    # closing at that moment fails (ReadError) through no fault of the server.
    limits = httpx.Limits(max_connections=args.concurrency * 2,
                          max_keepalive_connections=args.concurrency * 2, keepalive_expiry=2.0)
    ttft: dict[str, list[float]] = {name: [] for name in targets}
    rps: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, list[float]] = {name: [] for name in targets}
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for url, key, model, _ in targets.values():  # warm-up: imports, pools, first paths
            await asyncio.gather(*(one_stream(client, url, key, model, expected)
                                   for _ in range(args.concurrency)))
        for _ in range(args.rounds):
            for name, (url, key, model, pid) in targets.items():
                await settle([p for *_, p in targets.values() if p], args.settle)
                for _ in range(args.seq):
                    ttft[name].append(await one_stream(client, url, key, model, expected))
                gate = asyncio.Semaphore(args.concurrency)

                async def gated(url: str = url, key: str = key, model: str = model,
                                gate: asyncio.Semaphore = gate) -> float:
                    async with gate:
                        return await one_stream(client, url, key, model, expected)

                before = cpu_seconds(pid) if pid else 0.0
                wall = time.perf_counter()
                await asyncio.gather(*(gated() for _ in range(args.conc)))
                wall = time.perf_counter() - wall
                rps[name].append(args.conc / wall)
                if pid:
                    cpu[name].append((cpu_seconds(pid) - before) / args.conc)
    return {
        name: {
            "ttft_p50_ms": pct(ttft[name], 50) * 1000, "ttft_p99_ms": pct(ttft[name], 99) * 1000,
            "rps": statistics.median(rps[name]),
            "cpu_ms_per_req": statistics.median(cpu[name]) * 1000 if cpu[name] else 0.0,
        }
        for name in targets
    }


def report(found: dict[str, dict[str, float]], startup: dict[str, float]) -> None:
    direct = found["direct"]
    print(f"{'target':<11} {'start s':>8} {'TTFT p50':>9} {'p99':>8} {'added p50':>10} "
          f"{'added p99':>10} {'req/s':>8} {'CPU ms/req':>11}")
    for name, row in found.items():
        added50 = row["ttft_p50_ms"] - direct["ttft_p50_ms"]
        added99 = row["ttft_p99_ms"] - direct["ttft_p99_ms"]
        start = f"{startup[name]:.2f}" if name in startup else "-"
        cpu = f"{row['cpu_ms_per_req']:.3f}" if name != "direct" else "-"
        print(f"{name:<11} {start:>8} {row['ttft_p50_ms']:>7.2f}ms {row['ttft_p99_ms']:>6.2f}ms "
              f"{added50:>8.2f}ms {added99:>8.2f}ms {row['rps']:>8.1f} {cpu:>11}")
    if "litellm" not in found:
        return
    theirs = found["litellm"]
    for name in ("synapsekit", "speedups"):
        if name not in found:
            continue
        ours = found[name]
        print(f"\nCPU per streamed request, {name} / litellm: "
              f"{ours['cpu_ms_per_req'] / theirs['cpu_ms_per_req']:.3f} (target <= 0.200)")
        print(f"req/s, {name} / litellm: {ours['rps'] / theirs['rps']:.2f}x")
        print(f"added TTFT p50, {name}: {ours['ttft_p50_ms'] - direct['ttft_p50_ms']:.2f} ms "
              f"(target <= 2 ms); litellm: {theirs['ttft_p50_ms'] - direct['ttft_p50_ms']:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--seq", type=int, default=200, help="sequential requests per round")
    parser.add_argument("--conc", type=int, default=400, help="concurrent requests per round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--litellm", default="/tmp/litellm-venv/bin/litellm")
    parser.add_argument("--speedups", metavar="DIR",
                        help="a folder with httptools and uvloop: adds a 'speedups' row")
    parser.add_argument("--floors", action="store_true",
                        help="adds the relay floors' rows (benchmarks/floor/relay.py)")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="most seconds to wait for idle servers before each target's "
                        "sequential requests")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    expected = expected_text(args.tokens)
    litellm = shutil.which(args.litellm)
    if litellm is None:
        print(f"LiteLLM proxy not found at {args.litellm}: its row is skipped "
              "(see this script's docstring to install it)")
    with tempfile.TemporaryDirectory() as tmp, simulator(args.tokens) as sim_url:
        work = Path(tmp)
        env = {**os.environ, "SIM_KEY": KEY, "PYTHONPATH": str(ROOT),
               "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
        (work / "litellm.yaml").write_text(litellm_config(sim_url))
        theirs_port = free_port()
        startup: dict[str, float] = {}
        targets: dict[str, tuple[str, str, str, int | None]] = {
            "direct": (f"{sim_url}/v1/chat/completions", KEY, MODEL, None)}
        with ExitStack() as running:
            for name, path in (("synapsekit", None), ("speedups", args.speedups)):
                if name == "speedups" and path is None:
                    continue
                config = work / f"{name}.toml"  # (each its own ledger)
                config.write_text(synapsekit_config(sim_url, work / f"{name}.db"))
                port = free_port()
                serve = [sys.executable, "-c", "import sys; from synapsekit.cli import main; "
                         "sys.exit(main())", "serve", "--config", str(config),
                         "--port", str(port)]
                extra = {} if path is None else {"PYTHONPATH": f"{ROOT}{os.pathsep}{path}"}
                ours = running.enter_context(process(serve, {**env, **extra},
                                                     work / f"{name}.log"))
                base = f"http://127.0.0.1:{port}"
                startup[name] = wait_ready(base + "/health", ours, {})
                targets[name] = (base + "/v1/chat/completions", GW_KEY, "fast", ours.pid)
            for name, app in (("relay-sdk", "sdk_app"), ("relay-raw", "raw_app")):
                if not args.floors:
                    continue
                port = free_port()
                relay = [sys.executable, "-m", "benchmarks.floor.relay", app, str(port)]
                floor_env = {**env, "RELAY_UPSTREAM": f"{sim_url}/v1", "RELAY_KEY": KEY,
                             "RELAY_GW_KEY": GW_KEY}
                floor = running.enter_context(process(relay, floor_env, work / f"{name}.log"))
                base = f"http://127.0.0.1:{port}"
                startup[name] = wait_ready(base + "/health", floor, {}, ok=(401,))
                targets[name] = (base + "/v1/chat/completions", GW_KEY, "fast", floor.pid)
            proxy = [litellm, "--config", str(work / "litellm.yaml"), "--host", "127.0.0.1",
                     "--port", str(theirs_port), "--num_workers", "1"] if litellm else None
            with (process(proxy, env, work / "litellm.log") if proxy
                  else _nothing()) as theirs:
                if theirs is not None:
                    base = f"http://127.0.0.1:{theirs_port}"
                    try:
                        startup["litellm"] = wait_ready(
                            base + "/health/liveliness", theirs, {}, timeout=180)
                    except RuntimeError:
                        print((work / "litellm.log").read_text()[-3000:])
                        raise
                    targets["litellm"] = (base + "/v1/chat/completions", GW_KEY, "fast",
                                          theirs.pid)
                try:
                    found = asyncio.run(run(targets, args, expected))
                except Exception:
                    for log in sorted(work.glob("*.log")):
                        print(f"--- the end of {log.name}:\n{log.read_text()[-2000:]}")
                    raise
    print(f"{args.tokens} tokens a stream; TTFT over {args.seq * args.rounds} sequential "
          f"requests; req/s and CPU over {args.conc} streams at {args.concurrency} in flight, "
          f"median of {args.rounds} interleaved rounds\n")
    report(found, startup)
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": found, "startup_s": startup}, indent=2))
    return 0


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    sys.exit(main())
