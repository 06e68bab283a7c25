"""Client CPU of streamed generations on all seven wire protocols: the raw official SDK vs
synapsekit vs a floor client (the SDK's own HTTP library + ``json``: the practical limit),
and LiteLLM where asked.

The same workload -- N streamed generations of T tokens, one after another and then C at
a time -- goes through every client against the protocol's simulator running in a
*separate process* (``synapsekit.testing.simulators.<protocol>_protocol``), so the CPU
measured (``time.process_time()`` of this process, all threads) is the client's alone.
Clients run in interleaved rounds and each one's median round is reported, with its ratio
to the raw SDK and to the floor: compare ratios, the machine is noisy.

    python benchmarks/bench_streaming.py --protocol all            # 200 x 50 tokens, 5 rounds
    python benchmarks/bench_streaming.py --protocol cohere --rounds 9
    python benchmarks/bench_streaming.py --protocol openai --feature cache   # + a feature row
    python benchmarks/bench_streaming.py --protocol all --feature all     # + every feature row
    python benchmarks/bench_streaming.py --protocol all --thousand   # 1,000 at once
    python benchmarks/bench_streaming.py --protocol anthropic --litellm

``--feature`` adds "synapsekit + <feature>" beside plain synapsekit: ``cache`` (every call a
miss: a lookup and a store), ``limiter`` (RPM and TPM set too high to wait: the
bookkeeping), ``tracer`` (a TokenTracer pricing every call), ``otel``
(``synapsekit.observability.otel.instrument`` on the SDK's TracerProvider + BatchSpanProcessor
and MeterProvider + PeriodicExportingMetricReader, exporters that drop: see _otel.py; on
only during that client's rounds), ``tool`` (a streamed tool call instead of the text:
a second simulator of the protocol serves one call of ``search`` whose arguments are as
many 4-character fragments as the text has tokens, in the protocol's own shape -- OpenAI,
Anthropic, Cohere and Bedrock stream the fragments, Gemini, Mistral and Ollama send a call
whole, in one event -- read with ``respond(tools=[...])``, the call assembled and parsed).
A comma list (or ``all``) adds several rows to one run. A feature row's "vs plain" is its
CPU over plain synapsekit's in the same run.

``--thousand`` runs each client alone in a fresh process (so peak RSS is its own) with
1,000 streams at once, and prints wall time, client CPU, peak RSS and peak threads.

Targets (issue 16): synapsekit <= 1.0x the raw SDK and <= 1.15x the floor, sequential and
concurrent; 1,000 concurrent streams with no pool stall and no thread per stream.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext, suppress
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    KEY,
    MODEL,
    ROOT,
    SEARCH,
    ThreadPeak,
    Workload,
    aws_environment,
    expected_text,
    interleaved,
    measure,
    peak_rss_mib,
    start_simulator,
    warm_up,
)
from benchmarks._otel import otel_available, otel_on

__all__ = ["KEY", "MODEL", "PROTOCOLS", "Workload", "measure", "start_simulator"]

FEATURES = ("plain", "cache", "limiter", "tracer", "tool", "otel")


@dataclass(frozen=True)
class Protocol:
    model: str  # synapsekit's "provider:model"
    key: str | None = KEY  # the simulator's key (None: it takes none)
    suffix: str = ""  # appended to the simulator's root URL for synapsekit's base_url
    litellm: str | None = None  # LiteLLM's model name, when LiteLLM speaks the protocol
    litellm_suffix: str = ""


PROTOCOLS: dict[str, Protocol] = {
    "openai": Protocol("openai:gpt-4o-mini", suffix="/v1", litellm="openai/gpt-4o-mini",
                       litellm_suffix="/v1"),
    "anthropic": Protocol("anthropic:claude-sonnet-4-6", litellm="anthropic/claude-sonnet-4-6"),
    "gemini": Protocol("gemini:gemini-2.5-flash"),
    "cohere": Protocol("cohere:command-a-03-2025"),
    "mistral": Protocol("mistral:mistral-small-latest", litellm="mistral/mistral-small-latest",
                        litellm_suffix="/v1"),
    "ollama": Protocol("ollama:llama3.2", key=None, litellm="ollama_chat/llama3.2"),
    "bedrock": Protocol("bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0", key=None),
}
_prompts = itertools.count()


def synapsekit_client(url: str, proto: Protocol, feature: str = "plain") -> Workload:
    from synapsekit import make_llm

    fields: dict[str, Any] = {}
    if feature == "cache":
        fields = {"cache": True, "cache_maxsize": 100_000}
    elif feature == "limiter":
        fields = {"requests_per_minute": 1e9, "tokens_per_minute": 1e12}
    elif feature == "tracer":
        from synapsekit.observability import TokenTracer

        fields = {"tracer": TokenTracer()}
    llm = make_llm(proto.model, api_key=proto.key, base_url=url + proto.suffix,
                   system_prompt=None, **fields)
    if feature == "cache":
        async def one() -> str:  # a new prompt every call: the cache always misses
            return await llm.generate(f"Say something {next(_prompts)}.")
        return one

    async def plain() -> str:
        return await llm.generate("Say something.")

    return plain


def synapsekit_tool_client(url: str, proto: Protocol, tokens: int) -> Workload:
    """The ``tool`` row: the streamed call assembled and parsed by the call path; answers
    the text workload's string when the call is exactly the one served."""
    from synapsekit import make_llm
    from synapsekit.testing.simulators.server import BENCH_TOOL, bench_tool_arguments

    llm = make_llm(proto.model, api_key=proto.key, base_url=url + proto.suffix,
                   system_prompt=None)
    want = (BENCH_TOOL, bench_tool_arguments(tokens)[0])
    expected = expected_text(tokens)

    async def one() -> str:
        response = await llm.respond("Search for it.", tools=[SEARCH])
        got = [(call.name, dict(call.arguments)) for call in response.tool_calls]
        return expected if got == [want] else f"tool calls {got!r}"

    return one


def litellm_client(url: str, proto: Protocol) -> Workload:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True

    async def one() -> str:
        response = await litellm.acompletion(
            model=proto.litellm, api_key=proto.key or "none", api_base=url + proto.litellm_suffix,
            stream=True, messages=[{"role": "user", "content": "Say something."}],
        )
        parts = []
        async for chunk in response:
            content = chunk.choices[0].delta.content if chunk.choices else None
            if content:
                parts.append(content)
        return "".join(parts)

    return one


def clients_for(
    protocol: str, url: str, features: list[str], litellm: bool, *,
    tool_url: str | None = None, tokens: int = 0,
) -> tuple[dict[str, Workload], dict[str, Callable[[], AbstractContextManager[None]]]]:
    """The clients of one run (name -> workload) and the contexts some need around them;
    ``tool_url``: the simulator serving the ``tool`` row's call."""
    from benchmarks import floor
    from benchmarks.raw_sdk import CLIENTS

    proto = PROTOCOLS[protocol]
    clients = {
        "raw SDK": CLIENTS[protocol](url, proto.key),
        "synapsekit": synapsekit_client(url, proto),
        "floor": floor.client(protocol, url, proto.key),
    }
    if protocol == "bedrock" and find_spec("aiobotocore") is not None:
        from benchmarks.raw_sdk import bedrock_aiobotocore

        clients["aiobotocore"] = bedrock_aiobotocore(url, proto.key)  # where installed
    around: dict[str, Callable[[], AbstractContextManager[None]]] = {}
    for feature in features:
        if feature == "otel":
            reason = otel_available()
            if reason:
                print(reason)
            else:
                clients["synapsekit + otel"] = clients["synapsekit"]  # the same LLM object
                around["synapsekit + otel"] = otel_on
        elif feature == "tool":
            assert tool_url is not None, "the tool row needs its simulator"
            clients["synapsekit + tool"] = synapsekit_tool_client(tool_url, proto, tokens)
        elif feature != "plain":
            clients[f"synapsekit + {feature}"] = synapsekit_client(url, proto, feature)
    if litellm and proto.litellm:
        clients["litellm"] = litellm_client(url, proto)
    elif litellm:
        print(f"litellm: not configured for the {protocol} protocol here")
    return clients, around


def versions(protocol: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    names = {"openai": "openai", "anthropic": "anthropic", "gemini": "google-genai",
             "cohere": "cohere", "mistral": "mistralai", "ollama": "ollama", "bedrock": "boto3"}
    out = []
    for name in (names[protocol], "httpx", "httpx2", "urllib3"):
        with suppress(PackageNotFoundError):
            out.append(f"{name} {version(name)}")
    return ", ".join(out)


def table(protocol: str, mode: str, medians: dict[str, tuple[float, float]]) -> dict[str, Any]:
    raw, bottom = medians["raw SDK"][0], medians["floor"][0]
    plain = medians["synapsekit"][0]
    print(f"  {mode}")
    print(f"    {'client':<20}{'CPU s':>8}{'wall s':>8}{'vs raw SDK':>12}{'vs floor':>10}"
          f"{'vs plain':>10}")
    out: dict[str, Any] = {}
    for name, (cpu, wall) in medians.items():
        out[name] = {"cpu": cpu, "wall": wall, "vs_raw": cpu / raw, "vs_floor": cpu / bottom}
        feature = name.startswith("synapsekit + ")  # a feature row: its cost over plain
        if feature:
            out[name]["vs_plain"] = cpu / plain
        print(f"    {name:<20}{cpu:>8.3f}{wall:>8.3f}{cpu / raw:>11.2f}x{cpu / bottom:>9.2f}x"
              + (f"{cpu / plain:>9.3f}x" if feature else ""))
    return out


async def run_protocol(
    args: argparse.Namespace, protocol: str, url: str, tool_url: str | None = None
) -> dict[str, Any]:
    clients, around = clients_for(protocol, url, args.feature, args.litellm,
                                  tool_url=tool_url, tokens=args.tokens)
    expected = expected_text(args.tokens)
    await warm_up(clients, expected)
    concurrency = args.concurrency or args.n
    print(f"\n{protocol} protocol ({versions(protocol)}): {args.n} streamed generations x "
          f"{args.tokens} tokens, median of {args.rounds} interleaved rounds")
    result: dict[str, Any] = {"versions": versions(protocol)}
    for mode in ("sequential", "concurrent"):
        medians = await interleaved(
            clients, args.n, args.rounds, expected, concurrency=(
                concurrency if mode == "concurrent" else 1), around=around,
        )
        label = mode if mode == "sequential" else f"{concurrency} concurrent"
        result[mode] = table(protocol, label, medians)
    return result


async def solo(args: argparse.Namespace) -> None:
    """One client, alone in this process: --solo NAME -n N, all at once (the 1,000 run)."""
    clients, _around = clients_for(args.protocol[0], args.url, ["plain"], False)
    one = clients[args.solo]
    expected = expected_text(args.tokens)
    assert await one() == expected
    with ThreadPeak() as threads:
        cpu, wall, answer = await measure(one, args.n, True)
    assert answer == expected
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_mib": peak_rss_mib(),
                      "threads": threads.peak}))


def thousand(args: argparse.Namespace, protocol: str, url: str) -> dict[str, Any]:
    """1,000 concurrent streams per client, each client in a fresh process."""
    out: dict[str, Any] = {}
    print(f"\n{protocol}: {args.thousand_n} concurrent streams x {args.tokens} tokens, "
          f"one fresh process per client")
    print(f"    {'client':<12}{'wall s':>8}{'CPU s':>8}{'peak RSS MiB':>14}{'threads':>9}")
    names = ["raw SDK", "synapsekit", "floor"]
    if protocol == "bedrock" and find_spec("aiobotocore") is not None:
        names.append("aiobotocore")
    for name in names:
        done = subprocess.run(
            [sys.executable, __file__, "--protocol", protocol, "--url", url, "--solo", name,
             "-n", str(args.thousand_n), "--tokens", str(args.tokens)],
            capture_output=True, text=True, cwd=ROOT, timeout=600,
        )
        if done.returncode:
            print(f"    {name:<12} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        out[name] = row
        print(f"    {name:<12}{row['wall']:>8.2f}{row['cpu']:>8.2f}{row['rss_mib']:>14.0f}"
              f"{row['threads']:>9}")
    return out


async def run_all(args: argparse.Namespace, names: list[str], results: dict[str, Any]) -> None:
    """Every protocol in one event loop, each against its own simulator process; the SDK
    clients of a protocol are collected (and their pools closed) before the next starts."""
    for protocol in names:
        key = PROTOCOLS[protocol].key
        procs = [start_simulator(args.tokens, protocol, api_key=key)]
        if "tool" in args.feature and not args.thousand:  # the tool row's own simulator
            procs.append(start_simulator(None, protocol, "--tool-fragments",
                                         str(args.tokens), api_key=key))
        urls = [url for _, url in procs]
        try:
            if args.thousand:
                results[protocol] = {"thousand": await asyncio.to_thread(
                    thousand, args, protocol, urls[0])}
            else:
                results[protocol] = await run_protocol(args, protocol, *urls)
            gc.collect()  # SDK clients close their pools from __del__: on this loop
            await asyncio.sleep(0.05)
        finally:
            for proc, _ in procs:
                proc.terminate()
                proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--protocol", default="openai",
                        help=f"one of {', '.join(PROTOCOLS)}, a comma list, or all")
    parser.add_argument("-n", type=int, default=200, help="generations per round")
    parser.add_argument("--tokens", type=int, default=50, help="tokens per generation")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=0,
                        help="streams at once in the concurrent runs (default: -n)")
    parser.add_argument("--feature", default="plain",
                        help=f"one of {', '.join(FEATURES)}, a comma list, or all")
    parser.add_argument("--litellm", action="store_true", help="add LiteLLM where it applies")
    parser.add_argument("--thousand", action="store_true",
                        help="only the 1,000-concurrent run: wall, peak RSS, threads")
    parser.add_argument("--thousand-n", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--url", help=argparse.SUPPRESS)  # --solo: the running simulator
    parser.add_argument("--solo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = list(PROTOCOLS) if args.protocol == "all" else args.protocol.split(",")
    unknown = [name for name in names if name not in PROTOCOLS]
    if unknown:
        parser.error(f"unknown protocol {', '.join(unknown)}")
    args.protocol = names
    features = list(FEATURES) if args.feature == "all" else args.feature.split(",")
    wrong = [name for name in features if name not in FEATURES]
    if wrong:
        parser.error(f"unknown feature {', '.join(wrong)}")
    args.feature = features
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "args": vars(args) | {
        "json": str(args.json)}}
    with ExitStack() as stack:
        stack.enter_context(aws_environment() if "bedrock" in names else nullcontext())
        if args.solo:
            asyncio.run(solo(args))
            return
        asyncio.run(run_all(args, names, results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
