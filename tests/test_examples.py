"""The README's main job: the quickstart runs on a fresh machine with no key and no network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_streams_offline() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("SYNAPSEKIT_MODEL", None)
    out = subprocess.run(
        [sys.executable, "examples/quickstart.py"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "OPENAI_API_KEY" in out.stdout  # says which variable would use the real provider
    assert "so blue reaches your eyes from every direction." in out.stdout
    assert "tokens used: {'input': 21, 'output': 24}" in out.stdout


def _no_keys() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("SYNAPSEKIT_MODEL", None)
    return env


def test_readme_main_job_runs_on_a_fresh_machine(tmp_path: Path) -> None:
    """The README's main job: `synapsekit index docs` then `synapsekit ask`, with no key."""
    readme = (ROOT / "README.md").read_text()
    assert "synapsekit index docs --db kb.db && .venv/bin/synapsekit ask" in readme
    db = str(tmp_path / "kb.db")
    cli = [sys.executable, "-m", "synapsekit.cli"]
    index = subprocess.run([*cli, "index", "docs", "--db", db], cwd=ROOT, env=_no_keys(),
                           capture_output=True, text=True, timeout=120)
    assert index.returncode == 0, index.stderr
    ask = subprocess.run(
        [*cli, "ask", "How does synapsekit retry a failed stream?", "--db", db,
         "--model", "gpt-4o-mini"],
        cwd=ROOT, env=_no_keys(), capture_output=True, text=True, timeout=120,
    )
    assert ask.returncode == 2, ask.stderr
    # the passages themselves, readable without a key: source > heading, then the text
    assert "\n[1] docs/retries.md > Retries" in ask.stdout
    assert "\n    # Retries\n" in ask.stdout
    assert "Set OPENAI_API_KEY" in ask.stderr and "--api-key" in ask.stderr


def test_rag_quickstart_answers_offline() -> None:
    out = subprocess.run([sys.executable, "examples/rag_quickstart.py"], cwd=ROOT,
                         env=_no_keys(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "OPENAI_API_KEY" in out.stdout
    assert "StreamInterruptedError with the partial text [1]." in out.stdout
    assert "retries.md" in out.stdout
