"""Index this repository's docs, then ask a question about them, streaming the answer.

    python examples/rag_quickstart.py "How does synapsekit retry a failed stream?"
    SYNAPSEKIT_MODEL=claude-haiku-4-5 python examples/rag_quickstart.py   # any provider

The store is in memory and retrieval is BM25 (SQLite FTS5): no embedding model, nothing
downloaded. With no API key for the model, the retrieved sources are still shown, and
the answer is streamed from the test suite's local OpenAI-protocol simulator instead, so
the example runs on a fresh machine with no network.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from synapsekit import RAG
from synapsekit.errors import MissingAPIKeyError

ROOT = Path(__file__).resolve().parent.parent
MODEL = os.environ.get("SYNAPSEKIT_MODEL", "gpt-4o-mini")


async def answer(question: str, **fields: object) -> None:
    async with RAG(model=MODEL, top_k=4, **fields) as rag:  # type: ignore[arg-type]
        report = await rag.aadd(ROOT / "docs")
        print(f"indexed {len(report.added)} files, {report.passages} passages\n")
        stream = rag.stream(question)  # its own sources, usage and cost
        try:
            async for token in stream:
                print(token, end="", flush=True)
        except MissingAPIKeyError as err:
            print("Sources that would be sent:")
            for i, hit in enumerate(await rag.retrieve(question), 1):
                print(f"  [{i}] {Path(hit.source).name} > {hit.metadata.get('heading', '')}")
            raise err
        print("\n\nSources:")
        for i, hit in enumerate(stream.sources, 1):
            print(f"  [{i}] {Path(hit.source).name} > {hit.metadata.get('heading', '')}")
        summary = rag.tracer.summary()
        print(f"\ntokens: {summary['total_input_tokens']} in, "
              f"{summary['total_output_tokens']} out")


def main() -> int:
    question = " ".join(sys.argv[1:]) or "How does synapsekit retry a failed stream?"
    try:
        asyncio.run(answer(question))
        return 0
    except MissingAPIKeyError as err:
        print(f"\n{err}\n-> no key, so answering from the local simulator instead.\n")
    sys.path.insert(0, str(ROOT))
    from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, text_stream

    reply = "It retries only before the first token [1]; after that it raises "
    words = (reply + "StreamInterruptedError with the partial text [1].").split(" ")
    sim = OpenAISimulator("sk-local-demo", default=text_stream(
        [words[0]] + [" " + w for w in words[1:]], prompt_tokens=900))
    with sim:
        asyncio.run(answer(question, provider="openai", base_url=sim.url,
                           api_key="sk-local-demo"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
