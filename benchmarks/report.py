"""The streaming benchmark's figures as docs/performance.md prints them: one Markdown table
per protocol, every client of the run as a row, ratios only (to the raw SDK, to the floor,
and a feature row's to plain synapsekit), sequential and concurrent side by side.

    python benchmarks/bench_streaming.py --protocol all --feature cache,limiter,tracer,tool \\
        --litellm --rounds 5 --json figures.json
    python benchmarks/report.py figures.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "gemini": "Gemini",
         "cohere": "Cohere", "mistral": "Mistral", "ollama": "Ollama", "bedrock": "Bedrock"}
COLUMNS = (("vs_raw", "raw SDK"), ("vs_floor", "floor"), ("vs_plain", "plain synapsekit"))


def _ratio(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else f"{value:.2f}x"


def protocol_table(name: str, figures: dict[str, Any], date: str) -> str:
    """One protocol's table: a row per client, ``seq / concurrent`` per ratio."""
    sequential, concurrent = figures["sequential"], figures["concurrent"]
    lines = [f"**{NAMES.get(name, name)}** ({figures['versions']}; {date})", "",
             "| client | " + " | ".join(f"/ {label}, seq / conc" for _, label in COLUMNS)
             + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for client, row in sequential.items():
        other = concurrent.get(client, {})
        cells = [f"{_ratio(row, key)} / {_ratio(other, key)}".strip(" /")
                 for key, _ in COLUMNS]
        bold = client == "synapsekit"
        label = f"**{client}**" if bold else client
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    date = results.get("date", "")
    return "\n\n".join(protocol_table(name, figures, date)
                       for name, figures in results.items()
                       if isinstance(figures, dict) and "sequential" in figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("figures", type=Path, help="bench_streaming.py --json output")
    args = parser.parse_args()
    print(report(json.loads(args.figures.read_text())))


if __name__ == "__main__":
    main()
