"""Run one protocol simulator in the foreground: ``python -m synapsekit.testing.simulators
<protocol> [--port N] [--tokens N] [--delay S] [--api-key K] ...``.

It prints ``PORT <n>`` once it listens (``--port 0``: a free port) and serves until
killed, answering every chat request with ``--tokens`` tokens (``" tok0"``, ``" tok1"``
...), each ``--delay`` seconds apart. Point the real SDK (or synapsekit, with
``base_url=``) at it for integration tests in another process or language; the options
after the protocol are that protocol's (``python -m synapsekit.testing.simulators openai
--help``). Each module also runs on its own: ``python -m
synapsekit.testing.simulators.openai_protocol``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["PROTOCOLS", "main"]

#: protocol name -> (module, what it serves)
PROTOCOLS: dict[str, tuple[str, str]] = {
    "openai": ("openai_protocol", "OpenAI chat completions (--auth azure: Azure's layout)"),
    "openai-tools": ("openai_streams", "OpenAI chat completions, one long tool call"),
    "anthropic": ("anthropic_protocol", "Anthropic Messages"),
    "gemini": ("gemini_protocol", "Gemini generateContent / streamGenerateContent"),
    "cohere": ("cohere_protocol", "Cohere v2 chat"),
    "mistral": ("mistral_protocol", "Mistral chat completions"),
    "ollama": ("ollama_protocol", "Ollama /api/chat (NDJSON)"),
    "bedrock": ("bedrock_protocol", "Bedrock Converse / ConverseStream (event stream)"),
}


def usage() -> str:
    rows = "\n".join(f"  {name:<13} {what}" for name, (_, what) in PROTOCOLS.items())
    return (
        "usage: python -m synapsekit.testing.simulators <protocol> [--port N] [--tokens N] "
        f"[--delay S] ...\n\nprotocols:\n{rows}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in PROTOCOLS:
        sys.stderr.write(f"unknown protocol {name!r}\n\n{usage()}")
        return 2
    module = importlib.import_module(f"{__package__}.{PROTOCOLS[name][0]}")
    module.main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
