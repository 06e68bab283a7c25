"""The ``synapsekit`` command: index files, ask questions, list providers.

    synapsekit index docs/ README.md --db kb.db
    synapsekit ask "How do retries work?" --db kb.db --model claude-haiku-4-5
    synapsekit providers
    synapsekit serve --config gateway.toml
    synapsekit keys create --config gateway.toml --name team-a --budget-usd 50 --window month
    synapsekit --version

``index`` draws a progress bar (files, passages, rate, ETA; tqdm, from the ``cli`` extra)
when stderr is a terminal, and prints one summary line; skipped files are counted by
reason (``--verbose`` lists them). Ctrl-C stops it with status 130, keeping every file
indexed so far. ``ask`` streams the answer, then prints its sources and the call's tokens
and cost. With no API key it still does the offline part: it prints the passages it would
have sent (source, heading, text), names the environment variable to set, and exits with
status 2. Errors are one line on stderr (status 1), never a traceback: they are all typed
(synapsekit.errors).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from synapsekit.errors import MissingAPIKeyError, SynapseKitError

if TYPE_CHECKING:
    from synapsekit.rag.pipeline import RAG, Answer, IngestProgress, IngestReport
    from synapsekit.rag.store import Hit

__all__ = ["main"]

#: Exit status when an answer needs a key that is not configured.
NO_KEY = 2
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        status: int = args.run(args)
        return status
    except SynapseKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `synapsekit ask ... | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit-time flush does not fail again
        return 0


def _version() -> str:
    from synapsekit import __version__

    return f"synapsekit {__version__}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synapsekit", description="Index documents and ask questions about them."
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="add files or directories to a store")
    index.add_argument("paths", nargs="+", metavar="PATH")
    _store_options(index)
    index.add_argument("-v", "--verbose", action="store_true",
                       help="list every skipped file with its reason")
    index.set_defaults(run=_index)

    ask = commands.add_parser("ask", help="answer a question from a store, streaming")
    ask.add_argument("question")
    _store_options(ask)
    ask.add_argument("--model", required=True, help="answering model, e.g. gpt-4o-mini")
    ask.add_argument("--provider", help="provider, when the model name does not tell")
    ask.add_argument("--base-url", help="the provider endpoint (a proxy, a local server)")
    ask.add_argument(
        "--api-key",
        help="the provider's API key (default: its environment variable, e.g. "
        "OPENAI_API_KEY, ANTHROPIC_API_KEY; `synapsekit providers` lists them)",
    )
    ask.add_argument("--temperature", type=float, help="sampling temperature, e.g. 0.2")
    ask.add_argument("--max-tokens", type=int, help="most tokens in the answer")
    ask.add_argument("--system-prompt", help="instructions replacing the default ones")
    ask.add_argument("-k", "--top-k", type=int, default=5, help="passages to retrieve")
    ask.set_defaults(run=_ask)

    providers = commands.add_parser("providers", help="list providers and what they need")
    providers.set_defaults(run=_providers)

    serve = commands.add_parser(
        "serve", help="run the OpenAI- and Anthropic-compatible gateway (docs/gateway.md)"
    )
    serve.add_argument("--config", required=True, help="the gateway's TOML file")
    serve.add_argument("--host", help="address to bind (default: the config's, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: the config's, 4000)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (more than 1 needs [storage] redis_url)")
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="create, list, revoke the gateway's virtual keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key (its secret is printed once)")
    listing = actions.add_parser("list", help="the stored keys (ids, names, budgets, spend)")
    revoke = actions.add_parser("revoke", help="revoke a key: 401 from its next request on")
    budget = actions.add_parser("set-budget", help="set or remove a key's budget")
    for sub in (create, listing, revoke, budget):
        sub.add_argument("--config", required=True, help="the gateway's TOML file")
    for sub in (revoke, budget):
        sub.add_argument("id", help="the key's id, e.g. key_3f9a1c2b")
    create.add_argument("--name", help="a label for the key")
    create.add_argument("--rpm", type=float, help="requests per minute")
    create.add_argument("--tpm", type=float, help="tokens per minute")
    create.add_argument("--models", help="allowed model names, comma-separated (default all)")
    for sub in (create, budget):
        sub.add_argument("--budget-usd", type=float, help="spend limit in USD (none: no limit)")
        sub.add_argument("--window", choices=("day", "month"), help="budget window (default: "
                         "lifetime)")
    keys.set_defaults(run=_keys)
    return parser


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="the store file, e.g. kb.db")
    parser.add_argument("--embedding-model", help="enable dense retrieval with this model")
    parser.add_argument("--embedding-base-url", help="the embedding provider's endpoint")


def _open(args: argparse.Namespace, **fields: Any) -> RAG:
    from synapsekit.rag.pipeline import RAG

    return RAG(
        path=args.db,
        embedding_model=args.embedding_model,
        embedding_base_url=args.embedding_base_url,
        **fields,
    )


# --------------------------------------------------------------------------- index


def _index(args: argparse.Namespace) -> int:
    from synapsekit.errors import InvalidInputError
    from synapsekit.rag.pipeline import IngestReport

    for path in args.paths:  # all checked first: a missing path creates no store
        if not os.path.exists(path):
            raise InvalidInputError(f"{path!r} does not exist.")
    total = IngestReport()
    with _open(args) as rag:
        try:
            for path in args.paths:
                with _Bar(path) as bar:
                    report = rag.add(Path(path), progress=bar.update)
                _merge(total, report)
        except KeyboardInterrupt:
            store = rag.store
            print(
                f"interrupted: {args.db} keeps {store.count():,} passages from "
                f"{len(store.sources()):,} sources (every file finished before Ctrl-C)",
                file=sys.stderr,
            )
            return INTERRUPTED
        if args.verbose:
            for skipped, why in total.skipped:
                print(f"skipped {skipped}: {why}", file=sys.stderr)
        print(_summary(args.db, total, rag))
    return 0


class _Bar:
    """A tqdm progress bar on a terminal (files, passages, rate, ETA); nothing otherwise."""

    def __init__(self, path: str) -> None:
        self.label = Path(path).name or path  # short: the bar keeps the terminal's width
        self._bar: Any = None
        self._show = sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None

    def update(self, event: IngestProgress) -> None:
        if not self._show:
            return
        if self._bar is None:
            tqdm = importlib.import_module("tqdm").tqdm  # the cli extra; untyped

            self._bar = tqdm(
                total=event.files_total, desc=self.label, unit="file", file=sys.stderr,
                dynamic_ncols=True, postfix="0 passages",
            )
        self._bar.set_postfix_str(f"{event.passages:,} passages", refresh=False)
        self._bar.update(event.files_done - self._bar.n)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _merge(total: IngestReport, report: IngestReport) -> None:
    total.added += report.added
    total.unchanged += report.unchanged
    total.skipped += report.skipped
    total.removed += report.removed
    total.passages += report.passages
    total.embedded += report.embedded


def _summary(db: str, report: IngestReport, rag: RAG) -> str:
    parts = [
        f"{len(report.added):,} added ({report.passages:,} passages)",
        f"{len(report.unchanged):,} unchanged",
    ]
    if report.removed:
        parts.append(f"{len(report.removed):,} removed (files gone)")
    if report.embedded:
        parts.append(f"{report.embedded:,} passages embedded (they had no vector)")
    if report.skipped:
        parts.append(_skipped_summary(report.skipped))
    store = rag.store
    return (
        f"{db}: " + ", ".join(parts)
        + f" · store: {store.count():,} passages from {len(store.sources()):,} sources"
    )


def _skipped_summary(skipped: Sequence[tuple[str, str]]) -> str:
    """``5,861 skipped: .pyi`` or ``5,900 skipped: 5,861 .pyi, 39 binary file``."""
    reasons = Counter(_short_reason(why) for _, why in skipped)
    if len(reasons) == 1:
        (reason,) = reasons
        return f"{len(skipped):,} skipped: {reason}"
    shown = [f"{count:,} {reason}" for reason, count in reasons.most_common(4)]
    if len(reasons) > 4:
        shown.append(f"{sum(c for _, c in reasons.most_common()[4:]):,} other")
    return f"{len(skipped):,} skipped: " + ", ".join(shown)


def _short_reason(why: str) -> str:
    prefix = "unsupported file type "
    if why.startswith(prefix):
        return why[len(prefix):].strip("'\"")
    return "no suffix" if why == "unsupported file type" else why


# --------------------------------------------------------------------------- ask


def _ask(args: argparse.Namespace) -> int:
    from synapsekit.errors import StoreError
    from synapsekit.llm.pricing import UnknownModelPriceWarning

    if not os.path.exists(args.db):
        raise StoreError(f"No store at {args.db}: run `synapsekit index PATH --db {args.db}`.")
    # An unpriced model is said once, in the usage line, not as a Python warning.
    warnings.filterwarnings("ignore", category=UnknownModelPriceWarning)
    fields: dict[str, Any] = {
        "model": args.model, "provider": args.provider, "base_url": args.base_url,
        "api_key": args.api_key, "top_k": args.top_k, "system_prompt": args.system_prompt,
    }
    for name in ("temperature", "max_tokens"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    with _open(args, **fields) as rag:
        if args.embedding_model:  # a store indexed without one: say what it costs now
            from synapsekit.llm import _sync

            embedded = _sync.run_sync(rag.embed_missing())
            if embedded:
                print(f"embedded {embedded:,} passages that had no vector (the store was "
                      f"indexed without an embedding model)", file=sys.stderr)
        try:
            rag.llm  # noqa: B018 - built now so a missing key is known before retrieval
        except MissingAPIKeyError as exc:
            hits = rag.retrieve_sync(args.question)
            given = f"the {len(hits)} passages" if len(hits) != 1 else "the passage"
            print(f"No API key, so no answer; {given} it would be given:")
            _print_passages(hits, sys.stdout)
            print(f"\nNo answer: {_key_hint(args, exc)}", file=sys.stderr)
            return NO_KEY
        stream = rag.stream_sync(args.question)
        for token in stream:
            sys.stdout.write(token)
            sys.stdout.flush()
        print()
        _print_sources(stream.sources, sys.stdout)
        if stream.answer is not None:
            print(_usage_line(stream.answer, args.model))
    return 0


def _key_hint(args: argparse.Namespace, exc: MissingAPIKeyError) -> str:
    """Which variable to set, in the CLI's terms (not ``api_key=...``)."""
    from synapsekit.llm.registry import PROVIDERS, detect_provider

    try:
        spec = PROVIDERS.get(args.provider or detect_provider(args.model))
    except SynapseKitError:
        spec = None
    if spec is None or not spec.env_vars:
        return f"{exc} (on the command line: --api-key KEY)"
    names = spec.env_vars
    return (
        f"no API key for the {spec.name!r} provider (model {args.model!r}). "
        f"Set {' or '.join(names)} (export {names[0]}=...), or pass --api-key KEY."
    )


def _where(hit: Hit) -> str:
    """``describe(hit)``, the source relative to the current directory when below it."""
    from dataclasses import replace

    from synapsekit.rag.pipeline import describe

    try:
        relative = os.path.relpath(hit.source)
    except ValueError:  # another drive (Windows)
        relative = hit.source
    if os.path.isabs(hit.source) and not relative.startswith(".."):
        hit = replace(hit, source=relative)
    return describe(hit)


def _print_sources(hits: Sequence[Hit], out: TextIO) -> None:
    print("\nSources:", file=out)
    if not hits:
        print("  (no passage matched)", file=out)
    for i, hit in enumerate(hits, 1):
        print(f"  [{i}] {_where(hit)}", file=out)


def _print_passages(hits: Sequence[Hit], out: TextIO) -> None:
    """Each passage in full under its source and heading: readable without an LLM."""
    if not hits:
        print("\n  (no passage matched the question)", file=out)
    for i, hit in enumerate(hits, 1):
        print(f"\n[{i}] {_where(hit)}", file=out)
        for line in hit.text.strip("\n").split("\n"):
            print(f"    {line}".rstrip(), file=out)


def _usage_line(answer: Answer, model: str) -> str:
    cost = answer.cost_usd
    priced = f"${cost:.6f}" if cost is not None else f"unknown (no price known for {model})"
    return (
        f"\ntokens: {answer.usage.input_tokens} in, {answer.usage.output_tokens} out"
        f" · cost: {priced}"
    )


def _serve(args: argparse.Namespace) -> int:
    from synapsekit.gateway.server import serve

    serve(args.config, host=args.host, port=args.port, workers=args.workers)
    return 0


def _keys(args: argparse.Namespace) -> int:
    from synapsekit.gateway.admin import run_keys

    return run_keys(args)


def _providers(args: argparse.Namespace) -> int:
    from synapsekit.llm.registry import all_providers, detection_rules

    rules = detection_rules()  # the plugins' rules too; any plugin that failed has warned
    rows = [("provider", "detected from", "API key from", "install", "installed", "from")]
    for spec in all_providers().values():
        patterns = [(kind, p) for kind, p, name in rules if name == spec.name]
        shown = [_pattern_text(*k) for k in patterns[:3]] + ["…"] * (len(patterns) > 3)
        detected = ", ".join(shown) or f"{spec.name}:<model>"
        if spec.name == "openai":
            detected = "any other name"
        installed = importlib.util.find_spec(spec.import_name.split(".")[0]) is not None
        rows.append((
            spec.name,
            detected,
            " or ".join(spec.env_vars) or ("AWS credentials" if spec.name == "bedrock" else "-"),
            spec.install,
            "yes" if installed else "no",
            f"plugin {spec.plugin}" if spec.plugin else "built-in",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    print('\n"provider:model" (e.g. ollama:llama3.2) always picks the provider.')
    return 0


def _pattern_text(kind: str, pattern: str) -> str:
    if kind == "contains":
        return "vendor/model" if pattern == "/" else f"*{pattern}*"
    if kind == "regex":
        if pattern.startswith("(?:[a-z]{2,6}"):  # the built-in Bedrock rule
            return "Bedrock ids (anthropic.…, us.meta.…)"
        return f"/{pattern}/"
    return pattern + "*"


if __name__ == "__main__":
    sys.exit(main())
