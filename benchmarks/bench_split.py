"""Where synapsekit's CPU goes above the floor on the OpenAI, Anthropic and Mistral
protocols: the same call path and the same raw SSE decoder, the request sent two ways,
against the protocol's simulator in its own process (client CPU, median of interleaved
rounds):

- ``synapsekit``: as shipped -- the official SDK builds, authenticates and sends the
  request (openai's and anthropic's low-level ``post``, mistralai's ``chat.stream_async``)
  and synapsekit reads the raw body;
- ``no SDK``: the same request body (built by the provider's own encoder), posted with a
  plain client of the HTTP library the SDK uses, decoded by the same parser: what the call
  path and the decoder cost with no SDK at all (measured here only; not a shipped path);
- ``floor``: ``benchmarks/floor/<protocol>.py``.

synapsekit / no SDK is the SDK's request path; no SDK / floor is synapsekit's own share.
Gemini has the same split in ``bench_gemini_split.py`` (with a third row).

    python benchmarks/bench_split.py --protocol openai,anthropic,mistral --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import KEY, Workload, split_rounds, start_simulator

PROTOCOLS = ("openai", "anthropic", "mistral")
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-6",
          "mistral": "mistral-small-latest"}

def _no_sdk(protocol: str, url: str) -> Any:
    """A subclass of the protocol's LLM class whose ``_stream`` posts the body itself."""
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.models import rules_for
    from synapsekit.llm.types import Chunk, Message

    if protocol == "openai":
        from synapsekit.llm.providers.openai_compat import OpenAILLM, _wire
        from synapsekit.llm.providers.openai_compat.decode import parse as openai_parse

        class OpenAINoSdk(OpenAILLM):
            async def _stream(self, messages: list[Message],
                              config: LLMConfig) -> AsyncGenerator[Chunk, None]:
                body = self._request(messages, config)
                with self._map_errors(config) as errors:
                    async with _http(self, "openai._base_client").stream(
                        "POST", f"{url}/v1/chat/completions", json=body,
                        headers={"authorization": f"Bearer {KEY}"},
                    ) as response:
                        async for chunk in openai_parse(response, errors, _wire(type(self))):
                            yield chunk

        return OpenAINoSdk
    if protocol == "anthropic":
        from synapsekit.llm.providers.anthropic import AnthropicLLM
        from synapsekit.llm.providers.anthropic.decode import parse as anthropic_parse
        from synapsekit.llm.providers.anthropic.encode import request as anthropic_request

        class AnthropicNoSdk(AnthropicLLM):
            async def _stream(self, messages: list[Message],
                              config: LLMConfig) -> AsyncGenerator[Chunk, None]:
                plan = anthropic_request(messages, config, rules_for(self.provider, config),
                                         "2023-06-01")
                with self._map_errors(config) as errors:
                    async with _http(self, "anthropic._base_client").stream(
                        "POST", f"{url}/v1/messages", json={**plan.body, "stream": True},
                        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
                    ) as response:
                        async for chunk in anthropic_parse(response, errors, plan.text_tool):
                            yield chunk

        return AnthropicNoSdk
    from synapsekit.llm.providers.mistral import MistralLLM
    from synapsekit.llm.providers.mistral.decode import parse as mistral_parse
    from synapsekit.llm.providers.mistral.encode import request as mistral_request

    class MistralNoSdk(MistralLLM):
        async def _stream(self, messages: list[Message],
                          config: LLMConfig) -> AsyncGenerator[Chunk, None]:
            kwargs = mistral_request(self.provider, await self._client(config), messages,
                                     config)
            kwargs.pop("timeout_ms", None)
            with self._map_errors(config) as errors:
                async with _http(self, "mistralai.client.basesdk", "mistralai.basesdk").stream(
                    "POST", f"{url}/v1/chat/completions", json={**kwargs, "stream": True},
                    headers={"authorization": f"Bearer {KEY}"},
                ) as response, aclosing(mistral_parse(response, errors)) as chunks:
                    async for chunk in chunks:
                        yield chunk

    return MistralNoSdk


_CLIENTS: dict[tuple[int, str], Any] = {}


def _http(llm: Any, *sdk_modules: str) -> Any:
    """One client of the SDK's HTTP library per LLM object (this benchmark has one loop)."""
    from synapsekit.llm.providers._common import http_stack
    from synapsekit.llm.providers._pool import httpx_limits

    key = (id(llm), sdk_modules[0])
    if key not in _CLIENTS:
        http = http_stack(*sdk_modules).module
        _CLIENTS[key] = http.AsyncClient(limits=httpx_limits(http), timeout=60)
    return _CLIENTS[key]


def clients(protocol: str, url: str) -> dict[str, Workload]:
    from benchmarks import floor
    from synapsekit.llm.config import LLMConfig
    base = url + "/v1" if protocol == "openai" else url

    def workload(cls: Any) -> Workload:
        llm = cls(LLMConfig(model=MODELS[protocol], api_key=KEY, base_url=base,
                            provider=protocol, system_prompt=None))

        async def one() -> str:
            text: str = await llm.generate("Say something.")
            return text

        return one

    no_sdk = _no_sdk(protocol, url)
    return {"synapsekit": workload(no_sdk.__mro__[1]),  # the shipped class
            "no SDK": workload(no_sdk),
            "floor": floor.client(protocol, url, KEY)}


async def run(protocol: str, url: str, n: int, rounds: int) -> None:
    await split_rounds(clients(protocol, url), f"{protocol} ", n, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--protocol", default=",".join(PROTOCOLS))
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for protocol in args.protocol.split(","):
        if protocol not in PROTOCOLS:
            parser.error(f"--protocol: one of {', '.join(PROTOCOLS)}")
        proc, url = start_simulator(50, protocol, api_key=KEY)
        try:
            asyncio.run(run(protocol, url, args.n, args.rounds))
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
