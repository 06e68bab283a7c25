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
