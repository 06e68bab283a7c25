"""Client CPU per event of a streamed tool call vs a streamed text answer, and vs the raw SDK.

Two OpenAI-protocol simulators run in separate processes on 127.0.0.1: one streams a text
answer of N token events (``synapsekit.testing.simulators.openai_protocol --tokens N``), the other
one tool call whose arguments arrive in N fragments (``synapsekit.testing.simulators.openai_streams
--fragments N``, the shape of the real capture). The same number of events goes through:

- synapsekit, ``stream_chunks()`` of the text answer (every text chunk consumed);
- synapsekit, ``stream_chunks(tools=[...])`` of the tool call (every delta consumed, the
  call assembled and parsed by the call path: the ``Chunk(tool_call=...)`` at the end);
- the raw openai SDK on both streams (``stream=True``; for the tool call it concatenates
  the fragments per index and ``json.loads`` them at the end, what a user must write).

CPU is ``time.process_time()`` of this process (the simulators are elsewhere), in rounds
interleaved between clients, median round reported; compare the ratios, not the seconds.

    python benchmarks/bench_tool_stream.py                 # 100 streams x 400 events, 5 rounds
    python benchmarks/bench_tool_stream.py -n 50 --events 200 --rounds 3

Targets: a tool call costs no more client CPU per event than a text answer through
synapsekit (ratio <= ~1.0), and synapsekit's ratio to the raw SDK on the tool stream stays
within its ratio on the text stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import SEARCH, start_simulator

KEY = "sk-bench-key"
MODEL = "gpt-4o-mini"
PROMPT = "Search for it."
#: One stream, consumed: returns what it read (checked once, so every client does the work).
Workload = Callable[[], Awaitable[Any]]


def synapsekit_text(url: str) -> Workload:
    from synapsekit import make_llm

    llm = make_llm(MODEL, api_key=KEY, base_url=url, system_prompt=None)

    async def one() -> str:
        parts = [chunk.text async for chunk in llm.stream_chunks(PROMPT) if chunk.text]
        return "".join(parts)

    return one


def synapsekit_tool(url: str) -> Workload:
    from synapsekit import make_llm

    llm = make_llm(MODEL, api_key=KEY, base_url=url, system_prompt=None)

    async def one() -> Any:
        calls = []
        fragments = 0
        async for chunk in llm.stream_chunks(PROMPT, tools=[SEARCH]):
            if chunk.tool_delta is not None:
                fragments += 1
            elif chunk.tool_call is not None:
                calls.append(chunk.tool_call)
        return [(c.id, c.name, dict(c.arguments)) for c in calls]

    return one


def raw_text(url: str) -> Workload:
    import openai

    client = openai.AsyncOpenAI(api_key=KEY, base_url=url, max_retries=0)

    async def one() -> str:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True,
            stream_options={"include_usage": True},
        )
        parts = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    return one


def raw_tool(url: str) -> Workload:
    import openai

    client = openai.AsyncOpenAI(api_key=KEY, base_url=url, max_retries=0)

    async def one() -> Any:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True,
            stream_options={"include_usage": True}, tools=[SEARCH],  # type: ignore[list-item]
        )
        calls: dict[int, list[Any]] = {}
        async for chunk in stream:
            if not chunk.choices:
                continue
            for call in chunk.choices[0].delta.tool_calls or ():
                entry = calls.setdefault(call.index, [None, None, []])
                if call.id:
                    entry[0] = call.id
                if call.function is not None:
                    if call.function.name:
                        entry[1] = call.function.name
                    if call.function.arguments:
                        entry[2].append(call.function.arguments)
        return [(i, n, json.loads("".join(a))) for _, (i, n, a) in sorted(calls.items())]

    return one


async def measure(one: Workload, n: int) -> tuple[float, Any]:
    """Client CPU seconds of ``n`` streams run concurrently, and one result."""
    cpu = time.process_time()
    results = await asyncio.gather(*(one() for _ in range(n)))
    return time.process_time() - cpu, results[0]


async def run(args: argparse.Namespace, text_url: str, tool_url: str) -> dict[str, float]:
    clients = {
        "synapsekit text": synapsekit_text(text_url),
        "synapsekit tool call": synapsekit_tool(tool_url),
        "raw SDK text": raw_text(text_url),
        "raw SDK tool call": raw_tool(tool_url),
    }
    expected: dict[str, Any] = {}
    for name, one in clients.items():  # warm up; the expected result of each
        expected[name] = await one()
        await measure(one, 10)
    assert expected["synapsekit text"] == expected["raw SDK text"]
    [(call_id, tool_name, arguments)] = expected["synapsekit tool call"]
    assert expected["raw SDK tool call"] == [(call_id, tool_name, arguments)]
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(args.rounds):
        for name, one in clients.items():
            cpu, result = await measure(one, args.n)
            assert result == expected[name], name
            samples[name].append(cpu)
    events = args.n * args.events
    per_event = {name: statistics.median(rows) / events * 1e6 for name, rows in samples.items()}
    print(f"OpenAI protocol; {args.n} concurrent streams x {args.events} events "
          f"(text tokens or tool-argument fragments), median of {args.rounds} rounds; "
          "simulators in separate processes\n")
    print(f"  {'client':<22}{'CPU s':>8}{'µs/event':>10}")
    for name, rows in samples.items():
        print(f"  {name:<22}{statistics.median(rows):>8.3f}{per_event[name]:>10.2f}")
    ratios = {
        "tool / text (synapsekit)": per_event["synapsekit tool call"]
        / per_event["synapsekit text"],
        "tool / text (raw SDK)": per_event["raw SDK tool call"] / per_event["raw SDK text"],
        "synapsekit / raw SDK, text": per_event["synapsekit text"] / per_event["raw SDK text"],
        "synapsekit / raw SDK, tool call": per_event["synapsekit tool call"]
        / per_event["raw SDK tool call"],
    }
    print()
    for name, value in ratios.items():
        print(f"  {name:<34}{value:>6.2f}x")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="concurrent streams per round")
    parser.add_argument("--events", type=int, default=400,
                        help="text tokens / tool-argument fragments per stream")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    text, text_url = start_simulator(args.events)
    tool, tool_url = start_simulator(
        None, "openai", "--fragments", str(args.events),
        module="synapsekit.testing.simulators.openai_streams",
    )
    text_url, tool_url = text_url + "/v1", tool_url + "/v1"
    try:
        asyncio.run(run(args, text_url, tool_url))
    finally:
        for proc in (text, tool):
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
