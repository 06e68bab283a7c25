"""Print the Python version and the resolved versions of the distributions that matter here.

    python ci/versions.py [LABEL]               # one line: the SDKs and their HTTP stacks
    python ci/versions.py LABEL --expect FILE   # also exit 1 unless every `name==X` pin of
                                                # FILE (ci/floors.txt) is what got installed

Only the standard library is used, so it runs in every CI venv (per-extra, floors, main).
"""

from __future__ import annotations

import importlib.metadata as metadata
import platform
import re
import sys
from pathlib import Path

#: The provider SDKs, the HTTP stacks under them, the runtime backends, the test tools.
WATCHED = (
    "synapsekit", "openai", "anthropic", "google-genai", "cohere", "mistralai", "boto3",
    "botocore", "ollama", "httpx", "httpx2", "httpcore", "httpcore2", "pydantic", "aiosqlite",
    "redis", "numpy", "pypdf", "tqdm", "starlette", "uvicorn", "psycopg", "opentelemetry-api",
    "opentelemetry-sdk", "pytest", "pytest-asyncio", "playwright",
)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _same(got: str, want: str) -> bool:
    """PEP 440 equality of plain release numbers, zero-padded: 1.60 == 1.60.0."""
    a, b = got.split("."), want.split(".")
    width = max(len(a), len(b))
    return a + ["0"] * (width - len(a)) == b + ["0"] * (width - len(b))


def installed() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[_norm(name)] = dist.version
    return found


def main(argv: list[str]) -> int:
    label = argv[1] if len(argv) > 1 and not argv[1].startswith("--") else "venv"
    have = installed()
    parts = [f"{name}=={have[name]}" for name in WATCHED if name in have]
    print(f"versions [{label}]: python=={platform.python_version()} {' '.join(parts)}")
    if "--expect" not in argv:
        return 0
    pins = Path(argv[argv.index("--expect") + 1]).read_text().splitlines()
    wrong = []
    for line in pins:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        line, _, marker = line.partition(";")
        name, _, want = line.strip().partition("==")
        got = have.get(_norm(name))
        if got is None and marker:
            continue  # a pin with an environment marker that does not hold here
        if got is None or not _same(got, want):
            wrong.append(f"{name}: want {want}, got {got}")
    if wrong:
        print(f"versions [{label}]: not the floors: {'; '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
