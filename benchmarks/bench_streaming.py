"""Client CPU of streamed generations: the raw SDK vs synapsekit (vs LiteLLM).

The same workload -- N streamed generations of T tokens, run sequentially and then all
concurrently -- goes through each client against the OpenAI-protocol simulator running
in a *separate process*, so the CPU measured here (``time.process_time()`` of this
process, all its threads) is the client's alone. Each client is measured in rounds,
interleaved, and the median round is reported; ratios are what to compare, since these
machines are noisy.

    python benchmarks/bench_streaming.py                     # OpenAI protocol, 200 x 50 tokens
    python benchmarks/bench_streaming.py --protocol anthropic
    python benchmarks/bench_streaming.py --no-litellm --rounds 3

Targets: synapsekit <= 0.40x the raw openai SDK's client CPU, <= 0.50x the raw
anthropic SDK's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "sk-bench-key"
MODEL = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-6"
PROMPT = [{"role": "user", "content": "Say something."}]
Workload = Callable[[], Awaitable[str]]


def start_simulator(tokens: int, protocol: str = "openai") -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", f"synapsekit.testing.simulators.{protocol}_protocol", "--port", "0",
         "--tokens", str(tokens), "--api-key", KEY],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line}")
    return proc, f"http://127.0.0.1:{line[1]}" + ("/v1" if protocol == "openai" else "")


def raw_sdk(url: str) -> Workload:
    import openai

    client = openai.AsyncOpenAI(api_key=KEY, base_url=url, max_retries=0)

    async def one() -> str:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say something."}],
            stream=True, stream_options={"include_usage": True},
        )
        parts = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    return one


def raw_anthropic(url: str) -> Workload:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=url, max_retries=0)

    async def one() -> str:
        stream = await client.messages.create(
            model=CLAUDE, max_tokens=1024, messages=PROMPT, stream=True  # type: ignore[arg-type]
        )
        parts = []
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
        return "".join(parts)

    return one


def synapsekit_llm(url: str, model: str = MODEL) -> Workload:
    from synapsekit import make_llm

    llm = make_llm(model, api_key=KEY, base_url=url, system_prompt=None)

    async def one() -> str:
        return await llm.generate("Say something.")

    return one


def litellm_client(url: str, model: str = f"openai/{MODEL}") -> Workload:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True

    async def one() -> str:
        response = await litellm.acompletion(
            model=model, api_key=KEY, api_base=url, stream=True,
            messages=[{"role": "user", "content": "Say something."}],
            stream_options={"include_usage": True},
        )
        parts = []
        async for chunk in response:
            content = chunk.choices[0].delta.content if chunk.choices else None
            if content:
                parts.append(content)
        return "".join(parts)

    return one


async def measure(one: Workload, n: int, concurrent: bool) -> tuple[float, float, str]:
    """(client CPU seconds, wall seconds, one answer) for n generations."""
    cpu, wall = time.process_time(), time.perf_counter()
    if concurrent:
        answers = await asyncio.gather(*(one() for _ in range(n)))
    else:
        answers = [await one() for _ in range(n)]
    return time.process_time() - cpu, time.perf_counter() - wall, answers[0]


async def run(args: argparse.Namespace, url: str) -> None:
    if args.protocol == "anthropic":
        clients = {"raw SDK": raw_anthropic(url), "synapsekit": synapsekit_llm(url, CLAUDE)}
        if args.litellm:
            clients["litellm"] = litellm_client(url, f"anthropic/{CLAUDE}")
    else:
        clients = {"raw SDK": raw_sdk(url), "synapsekit": synapsekit_llm(url)}
        if args.litellm:
            clients["litellm"] = litellm_client(url)
    expected = "".join(f" tok{i}" for i in range(args.tokens))
    for one in clients.values():  # warm up: imports, connection pools, lazy setup
        assert await one() == expected
        await measure(one, 20, True)
    print(f"{args.protocol} protocol, raw SDK = the official {args.protocol} SDK, stream=True")
    print(f"workload: {args.n} streamed generations x {args.tokens} tokens, "
          f"median of {args.rounds} rounds; simulator in a separate process\n")
    for mode in ("sequential", "concurrent"):
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name, one in clients.items():
                cpu, wall, answer = await measure(one, args.n, mode == "concurrent")
                assert answer == expected, (name, answer[:60])
                samples[name].append((cpu, wall))
        base = statistics.median(c for c, _ in samples["raw SDK"])
        print(f"{mode} ({args.n} {'at once' if mode == 'concurrent' else 'one after another'})")
        print(f"  {'client':<16}{'CPU s':>8}{'wall s':>8}{'CPU vs raw SDK':>16}")
        for name, rows in samples.items():
            cpu = statistics.median(c for c, _ in rows)
            wall = statistics.median(w for _, w in rows)
            print(f"  {name:<16}{cpu:>8.3f}{wall:>8.3f}{cpu / base:>15.2f}x")
        print()


def import_time() -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import synapsekit\n"
        "from synapsekit import make_llm, LLMConfig\n"
        "ms = (time.perf_counter() - t) * 1000\n"
        "heavy = [m for m in ('openai', 'anthropic', 'cohere', 'mistralai', 'google.genai',\n"
        "         'boto3', 'ollama', 'numpy', 'httpx', 'pydantic') if m in sys.modules]\n"
        "print(f'{ms:.2f} {len(sys.modules)} {\",\".join(heavy) or \"-\"}')\n"
    )
    runs = []
    for _ in range(7):
        out = subprocess.run([sys.executable, "-X", "frozen_modules=on", "-c", code],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        runs.append(out.stdout.split())
    ms = statistics.median(float(r[0]) for r in runs)
    print(f"import synapsekit + make_llm, LLMConfig: {ms:.1f} ms median of 7 fresh processes; "
          f"modules loaded in all: {runs[0][1]}; heavy modules: {runs[0][2]}")
    raw = subprocess.run(
        [sys.executable, "-c", "import time; t=time.perf_counter(); import openai; "
         "print(f'{(time.perf_counter()-t)*1000:.1f}')"],
        capture_output=True, text=True, check=True,
    )
    print(f"(for scale: import openai alone takes {raw.stdout.strip()} ms)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="generations per round")
    parser.add_argument("--tokens", type=int, default=50, help="tokens per generation")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--protocol", choices=("openai", "anthropic"), default="openai")
    parser.add_argument("--no-litellm", dest="litellm", action="store_false")
    args = parser.parse_args()
    import_time()
    proc, url = start_simulator(args.tokens, args.protocol)
    try:
        asyncio.run(run(args, url))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
