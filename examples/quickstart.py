"""Stream an answer from a provider, then show what it cost in tokens.

    python examples/quickstart.py "Why is the sky blue?"
    SYNAPSEKIT_MODEL=claude-haiku-4-5 python examples/quickstart.py   # any of the 15 providers

The provider comes from the model name. With no API key for it in the environment, the
example starts the local OpenAI-protocol simulator from the test suite and streams from
that instead, so it runs on a fresh machine with no network.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from synapsekit import make_llm
from synapsekit.errors import LLMError, MissingAPIKeyError

MODEL = os.environ.get("SYNAPSEKIT_MODEL", "gpt-4o-mini")


async def stream_answer(prompt: str, **fields: object) -> None:
    async with make_llm(MODEL, max_retries=2, **fields) as llm:
        print(f"[{type(llm).__name__} · {llm.model} · {llm.base_url}]\n")
        async for token in llm.stream(prompt):
            print(token, end="", flush=True)
        print(f"\n\ntokens used: {llm.tokens_used}")


def offline_simulator() -> tuple[object, str, str]:
    """Start the test suite's OpenAI-protocol simulator on 127.0.0.1."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, text_stream

    answer = ("Sunlight scatters off the air's molecules, and blue light, with its short "
              "wavelength, scatters the most, so blue reaches your eyes from every direction.")
    words = answer.split(" ")
    tokens = [words[0]] + [" " + w for w in words[1:]]
    sim = OpenAISimulator("sk-local-demo", default=text_stream(tokens, prompt_tokens=21))
    sim.start()
    return sim, sim.url, "sk-local-demo"


def main() -> int:
    prompt = " ".join(sys.argv[1:]) or "Why is the sky blue? One sentence."
    try:
        asyncio.run(stream_answer(prompt))
        return 0
    except MissingAPIKeyError as err:
        print(f"{err}\n-> no key, so streaming from the local simulator instead.\n")
    except LLMError as err:
        print(f"\nThe provider failed: {err}", file=sys.stderr)
        return 1
    sim, url, key = offline_simulator()
    try:
        asyncio.run(stream_answer(prompt, provider="openai", base_url=url, api_key=key))
    finally:
        sim.stop()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
