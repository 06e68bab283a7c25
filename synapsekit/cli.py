"""The ``synapsekit`` command: index files, ask questions, list providers.

    synapsekit index docs/ README.md --db kb.db
    synapsekit ask "How do retries work?" --db kb.db --model claude-haiku-4-5
    synapsekit providers

``ask`` streams the answer, then prints its sources and the call's tokens and cost. With
no API key configured it still prints the retrieved sources, names the environment
variable to set, and exits with status 2. Errors are one line on stderr (status 1),
never a traceback: they are all typed (synapsekit.errors).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from synapsekit.errors import MissingAPIKeyError, SynapseKitError

if TYPE_CHECKING:
    from synapsekit.rag.pipeline import RAG
    from synapsekit.rag.store import Hit

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except SynapseKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synapsekit", description="Index documents and ask questions about them."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="add files or directories to a store")
    index.add_argument("paths", nargs="+", metavar="PATH")
    _store_options(index)
    index.set_defaults(run=_index)

    ask = commands.add_parser("ask", help="answer a question from a store, streaming")
    ask.add_argument("question")
    _store_options(ask)
    ask.add_argument("--model", required=True, help="answering model, e.g. gpt-4o-mini")
    ask.add_argument("--provider", help="provider, when the model name does not tell")
    ask.add_argument("--base-url", help="the provider endpoint (a proxy, a local server)")
    ask.add_argument("-k", "--top-k", type=int, default=5, help="passages to retrieve")
    ask.set_defaults(run=_ask)

    providers = commands.add_parser("providers", help="list providers and what they need")
    providers.set_defaults(run=_providers)
    return parser


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="the store file, e.g. kb.db")
    parser.add_argument("--embedding-model", help="enable dense retrieval with this model")
    parser.add_argument("--embedding-base-url", help="the embedding provider's endpoint")


def _open(args: argparse.Namespace, **fields: object) -> RAG:
    from synapsekit.rag.pipeline import RAG

    return RAG(
        path=args.db,
        embedding_model=args.embedding_model,
        embedding_base_url=args.embedding_base_url,
        **fields,  # type: ignore[arg-type]
    )


def _index(args: argparse.Namespace) -> int:
    with _open(args) as rag:
        for path in args.paths:
            report = rag.add(Path(path))  # always a path here, never text to index
            for skipped, why in report.skipped:
                print(f"skipped {skipped}: {why}", file=sys.stderr)
            print(
                f"{path}: {len(report.added)} added ({report.passages} passages), "
                f"{len(report.unchanged)} unchanged"
            )
        print(f"{args.db}: {rag.store.count()} passages from {len(rag.store.sources())} sources")
    return 0


def _ask(args: argparse.Namespace) -> int:
    from synapsekit.errors import StoreError

    if not os.path.exists(args.db):
        raise StoreError(f"No store at {args.db}: run `synapsekit index PATH --db {args.db}`.")
    fields = {"model": args.model, "provider": args.provider, "base_url": args.base_url,
              "top_k": args.top_k}
    with _open(args, **fields) as rag:
        try:
            rag.llm  # noqa: B018 - built now so a missing key is known before retrieval
        except MissingAPIKeyError as exc:
            _print_sources(rag.retrieve_sync(args.question), sys.stdout)
            print(f"\nNo answer: {exc}", file=sys.stderr)
            return 2
        stream = rag.stream_sync(args.question)
        for token in stream:
            sys.stdout.write(token)
            sys.stdout.flush()
        print()
        _print_sources(stream.sources, sys.stdout)
        print(_usage_line(rag))
    return 0


def _print_sources(hits: Sequence[Hit], out: TextIO) -> None:
    from synapsekit.rag.pipeline import describe

    print("\nSources:", file=out)
    if not hits:
        print("  (no passage matched)", file=out)
    for i, hit in enumerate(hits, 1):
        print(f"  [{i}] {describe(hit)}", file=out)


def _usage_line(rag: RAG) -> str:
    summary = rag.tracer.summary()
    cost = summary["estimated_cost_usd"]
    priced = "unknown (no price for this model)" if summary["unpriced_calls"] else f"${cost:.6f}"
    return (
        f"\ntokens: {summary['total_input_tokens']} in, {summary['total_output_tokens']} out"
        f" · cost: {priced}"
    )


def _providers(args: argparse.Namespace) -> int:
    from synapsekit.llm.registry import DETECTION_RULES, PROVIDERS

    rows = [("provider", "detected from", "API key from", "install", "installed")]
    for spec in PROVIDERS.values():
        patterns = [p for _, p, name in DETECTION_RULES if name == spec.name]
        shown = [_pattern_text(p) for p in patterns[:3]] + ["…"] * (len(patterns) > 3)
        detected = ", ".join(shown) or f"{spec.name}:<model>"
        if spec.name == "openai":
            detected = "any other name"
        installed = importlib.util.find_spec(spec.import_name.split(".")[0]) is not None
        rows.append((
            spec.name,
            detected,
            " or ".join(spec.env_vars) or ("AWS credentials" if spec.name == "bedrock" else "-"),
            f'pip install "synapsekit[{spec.extra}]"',
            "yes" if installed else "no",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    print('\n"provider:model" (e.g. ollama:llama3.2) always picks the provider.')
    return 0


def _pattern_text(pattern: str) -> str:
    if pattern == "/":
        return "vendor/model"
    if pattern.startswith("(?:"):
        return "Bedrock ids (anthropic.…, us.meta.…)"
    return pattern + "*"


if __name__ == "__main__":
    sys.exit(main())
