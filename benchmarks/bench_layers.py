"""synapsekit's own layers on the OpenAI protocol, in-process, with no network: what the
decoder, the deadline watch and the call path each add per streamed answer.

A real answer (50 tokens, 54 SSE events, with usage) is read once from the OpenAI-protocol
simulator, piece by piece as the socket gave it, and then replayed from memory through

- ``floor``: the floor client's read (``benchmarks.floor.read_text``: split on newlines,
  one ``json.loads`` per event);
- ``decoder``: ``openai_compat.decode.parse`` (the raw SSE reader and the chunk decoder);
- ``+ deadlines``: the decoder under ``Deadline.watch`` (the default ``timeout``: 60 s for
  the first token, 60 s of silence);
- ``call path``: ``generate()`` of an ``OpenAILLM`` whose stream is the recorded body
  (the call path as shipped: config, deadlines, retries, tracing, the join).

No socket, no SDK and no simulator in the timed part, so the differences are
synapsekit's own per-event and per-call cost, which the network benchmarks cannot
resolve on a noisy machine (``bench_split.py`` gives the same split over HTTP).

    python benchmarks/bench_layers.py --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import KEY, expected_text, start_simulator

TOKENS = 50


async def record(url: str) -> list[bytes]:
    """The body of one streamed answer, as the pieces the socket gave."""
    from synapsekit.llm.providers._common import http_stack

    http = http_stack("openai._base_client").module
    async with http.AsyncClient() as client, client.stream(
        "POST", f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
        json={"model": "gpt-4o-mini", "stream": True,
              "stream_options": {"include_usage": True},
              "messages": [{"role": "user", "content": "Say something."}]},
    ) as response:
        return [piece async for piece in response.aiter_bytes()]


class Recorded:
    """A response whose body is the recorded pieces (what the decoder reads of one)."""

    headers: dict[str, str] = {}

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


def workloads(pieces: list[bytes]) -> dict[str, Callable[[], Awaitable[str]]]:
    from benchmarks.floor import read_text
    from benchmarks.floor.openai import pick
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.deadlines import Deadline
    from synapsekit.llm.providers.openai_compat import OpenAILLM
    from synapsekit.llm.providers.openai_compat.decode import parse
    from synapsekit.llm.types import Chunk, Message

    config = LLMConfig(model="gpt-4o-mini", api_key=KEY, provider="openai", system_prompt=None)

    class RecordedLLM(OpenAILLM):
        async def _stream(self, messages: list[Message],
                          config: LLMConfig) -> AsyncGenerator[Chunk, None]:
            self._request(messages, config)  # the request is built as on the wire
            with self._map_errors(config) as errors:
                async for chunk in parse(Recorded(pieces), errors):
                    yield chunk

    llm = RecordedLLM(config)

    def mapper() -> Any:
        return llm._map_errors(config)  # the decoder's error mapper, as a call makes it

    async def floor() -> str:
        return await read_text(Recorded(pieces).aiter_bytes(), pick)

    async def decoder() -> str:
        return "".join([c.text async for c in parse(Recorded(pieces), mapper())])

    async def watched() -> str:
        stream = Deadline(config, "openai").watch(parse(Recorded(pieces), mapper()))
        return "".join([c.text async for c in stream])

    async def call_path() -> str:
        text: str = await llm.generate("Say something.")
        return text

    return {"floor": floor, "decoder": decoder, "+ deadlines": watched,
            "call path": call_path}


async def run(pieces: list[bytes], n: int, rounds: int) -> None:
    clients = workloads(pieces)
    expected = expected_text(TOKENS)
    for name, one in clients.items():
        for _ in range(20):
            got = await one()
            if got != expected:
                raise SystemExit(f"{name} read {got[:60]!r}, not the simulator's answer")
    times: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, one in clients.items():
            start = time.process_time()
            for _ in range(n):
                await one()
            times[name].append((time.process_time() - start) / n * 1e6)
    events = sum(piece.count(b"\n\n") for piece in pieces)
    print(f"one answer: {TOKENS} tokens, {events} SSE events, {len(pieces)} pieces; "
          f"client CPU per answer, median of {rounds} interleaved rounds of {n}")
    floor = statistics.median(times["floor"])
    for name, xs in times.items():
        median = statistics.median(xs)
        print(f"  {name:12s} {median:8.1f} us   {median / floor:5.2f}x floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    proc, url = start_simulator(TOKENS, "openai", api_key=KEY)
    try:
        pieces = asyncio.run(record(url))
    finally:
        proc.terminate()
        proc.wait(10)
    asyncio.run(run(pieces, args.n, args.rounds))


if __name__ == "__main__":
    main()
