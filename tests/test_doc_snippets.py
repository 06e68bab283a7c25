"""Every ```python block of docs/*.md and README.md runs as written, offline.

A page is read top to bottom, so its blocks run in order in one namespace (a later block
may use the ``llm`` or ``rag`` an earlier one built). A block with top-level ``await`` /
``async for`` runs as an async REPL would run it (``PyCF_ALLOW_TOP_LEVEL_AWAIT``); any
other block runs as a script (``asyncio.run(main())`` included). The environment is what a
user has, pointed at local simulators: every provider's key variable, and each SDK's own
endpoint variable (``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, ``GOOGLE_GEMINI_BASE_URL``,
``CO_API_URL``, ``OLLAMA_HOST``, ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``,
``AZURE_OPENAI_ENDPOINT``), which synapsekit honours when no ``base_url`` is given. The
working directory is a scratch copy holding ``docs/`` and ``HOME`` is scratch too, so files
the snippets write (``kb.db``, ``calls.db``, ``~/.cache/...``) stay in the test.

A block that cannot run offline is marked in the markdown, on the line before its fence:
``<!-- no-run: <why> -->``. Only those are skipped; the test fails if a marker names no
reason, and reports which blocks it skipped.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synapsekit.llm.registry import PROVIDERS
from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator
from synapsekit.testing.simulators.bedrock_protocol import BedrockSimulator
from synapsekit.testing.simulators.cohere_protocol import CohereSimulator
from synapsekit.testing.simulators.gemini_protocol import GeminiSimulator
from synapsekit.testing.simulators.ollama_protocol import OllamaSimulator
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from synapsekit.testing.simulators.server import Server
from tests.sim_fixtures import aws_credentials

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
KEY = "sk-doc-snippets-0123456789"
AWS_ID, AWS_SECRET = "AKIADOCSNIPPETS00000", "doc/snippets/secret/0123456789"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
NO_RUN = re.compile(r"<!--\s*no-run:(.*?)-->\s*\Z", re.S)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    no_run: str | None  # the reason, when marked


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NO_RUN.search(before + "\n")
        reason = marker.group(1).strip() if marker else None
        found.append(Block(page.relative_to(ROOT).as_posix(),
                           text.count("\n", 0, match.start()) + 2, match.group(1), reason))
    return found


def test_the_pages_have_snippets() -> None:
    every = [block for page in PAGES for block in blocks(page)]
    assert len(every) >= 25
    for block in every:
        assert block.no_run is None or block.no_run, f"{block.page}:{block.line}: no reason"


@pytest.fixture(scope="module")
def simulators() -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for name, server in {
            "openai": OpenAISimulator(KEY),
            "azure": OpenAISimulator(KEY, auth="azure"),
            "anthropic": AnthropicSimulator(KEY),
            "gemini": GeminiSimulator(KEY),
            "cohere": CohereSimulator(KEY),
            "ollama": OllamaSimulator(),
            "bedrock": BedrockSimulator({AWS_ID: AWS_SECRET}),
        }.items():
            server.start()
            started[name] = server
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def user_env(
    simulators: dict[str, Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    for spec in PROVIDERS.values():
        for var in spec.env_vars:
            monkeypatch.setenv(var, KEY)
        server = simulators.get(spec.name)
        if spec.base_url_env and server is not None:
            monkeypatch.setenv(spec.base_url_env, server.url)  # type: ignore[attr-defined]
    aws_credentials(monkeypatch, tmp_path, AWS_ID, AWS_SECRET)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    shutil.copytree(ROOT / "docs", work / "docs")
    monkeypatch.chdir(work)
    for server in simulators.values():
        server.reset()
    return work


def run_block(block: Block, namespace: dict[str, Any]) -> None:
    name = f"{block.page}:{block.line}"
    code = compile(block.code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))  # an async REPL
    else:
        exec(code, namespace)  # a script


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_snippets_run(page: Path, user_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "__doc_snippet__"}
    skipped = []
    for block in blocks(page):
        if block.no_run:
            skipped.append(f"{block.page}:{block.line} ({block.no_run})")
            continue
        try:
            run_block(block, namespace)
        except BaseException as exc:
            pytest.fail(f"{block.page}:{block.line} fails as written: {exc!r}\n{block.code}")
    capsys.readouterr()
    if skipped:
        print("skipped, marked no-run:", "; ".join(skipped))


#: ``python -m synapsekit.testing.simulators <protocol> --port 0``, as docs/testing.md shows
#: it: the key each one accepts by default, and how synapsekit is pointed at it.
COMMANDS = [
    ("openai", "gpt-4o-mini", "sk-test-key", "/v1"),
    ("anthropic", "claude-haiku-4-5", "sk-ant-test-key", ""),
    ("gemini", "gemini-2.5-flash", "AIza-test-key", ""),
    ("cohere", "command-a-03-2025", "co-test-key", ""),
    ("mistral", "mistral-small-latest", "mistral-test-key", ""),
    ("ollama", "ollama:llama3.2", None, ""),
    ("bedrock", "bedrock:amazon.nova-lite-v1:0", None, ""),
]


@pytest.mark.parametrize(("protocol", "model", "key", "suffix"), COMMANDS,
                         ids=[c[0] for c in COMMANDS])
def test_simulator_started_as_a_command(
    protocol: str, model: str, key: str | None, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from synapsekit import make_llm

    process = subprocess.Popen(
        [sys.executable, "-m", "synapsekit.testing.simulators", protocol, "--port", "0",
         "--tokens", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "PORT <n>" once it listens
        assert line.startswith("PORT "), line
        url = f"http://127.0.0.1:{int(line.split()[1])}{suffix}"
        if protocol == "bedrock":  # the simulator's default credentials, by AWS's chain
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSIMULATOR")
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "simulator-secret")
            monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
            monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"):
                monkeypatch.delenv(name, raising=False)
        llm = make_llm(model, api_key=key, base_url=url)
        assert llm.generate_sync("hi") == " tok0 tok1 tok2"
    finally:
        process.terminate()
        process.wait(timeout=10)
