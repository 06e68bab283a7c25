"""Where synapsekit's Gemini CPU goes above the floor: the same call path and the same raw
SSE decoder, with the request sent three ways, against the Gemini simulator in its own
process (client CPU, median of interleaved rounds):

- ``synapsekit``: as shipped -- google-genai's public ``generate_content_stream`` builds,
  authenticates and sends the request (its body taken raw, see
  ``synapsekit/llm/providers/gemini/connection.py``);
- ``SDK api client``: the body prebuilt, sent by google-genai's own API client
  (``client.aio._api_client.async_request_streamed``: a private name, measured here only):
  the SDK's request conversion left out, its send path kept;
- ``no SDK``: the body prebuilt, posted with synapsekit's own httpx client: what the call
  path and the decoder cost with no SDK at all;
- ``floor``: ``benchmarks/floor/gemini.py``.

    python benchmarks/bench_gemini_split.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import KEY, Workload, split_rounds, start_simulator

MODEL = "gemini-2.5-flash"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Say something."}]}],
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 1024}}


def clients(url: str) -> dict[str, Workload]:
    from benchmarks import floor
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.providers._raw_body import Call
    from synapsekit.llm.providers.gemini import GeminiLLM, decode
    from synapsekit.llm.providers.gemini.connection import STREAM_METHOD
    from synapsekit.llm.types import Chunk, Message

    async def nothing() -> AsyncIterator[Any]:
        return
        yield

    class ApiClient(GeminiLLM):
        async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
            api = (await self._client(config)).genai.aio._api_client
            errors = self._map_errors(config)
            async with Call(STREAM_METHOD) as call:
                with errors:
                    sent = await api.async_request_streamed(
                        "post", f"models/{MODEL}:streamGenerateContent?alt=sse", BODY, None)
                    async for _ in sent:  # nothing: the body was taken
                        pass
                    events = decode.events(nothing(), call, self._sdk, errors)
                    async for chunk in decode.decode(events, errors, "gemini", config.model):
                        yield chunk

    class NoSdk(GeminiLLM):
        async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
            http = (await self._client(config)).http
            errors = self._map_errors(config)
            call = Call(STREAM_METHOD, take=False)  # only holds the body read here
            with errors:
                async with http.stream(
                    "POST", f"{url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
                    content=json.dumps(BODY).encode(),
                    headers={"x-goog-api-key": KEY, "content-type": "application/json"},
                ) as response:
                    call.body = response
                    events = decode.events(nothing(), call, self._sdk, errors)
                    async for chunk in decode.decode(events, errors, "gemini", config.model):
                        yield chunk

    def workload(cls: type[GeminiLLM]) -> Workload:
        llm = cls(LLMConfig(model=MODEL, api_key=KEY, base_url=url, provider="gemini",
                            system_prompt=None))

        async def one() -> str:
            return await llm.generate("Say something.")

        return one

    return {"synapsekit": workload(GeminiLLM), "SDK api client": workload(ApiClient),
            "no SDK": workload(NoSdk), "floor": floor.client("gemini", url, KEY)}


async def run(url: str, n: int, rounds: int) -> None:
    await split_rounds(clients(url), "", n, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    proc, url = start_simulator(50, "gemini", api_key=KEY)
    try:
        asyncio.run(run(url, args.n, args.rounds))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
