"""The simulators ship in the package: ``python -m synapsekit.testing.simulators <protocol>``
runs one (tests/test_doc_snippets.py serves the real SDKs from all seven that way); the
captures they replay are package data (a built wheel holds every one, and a simulator run
from the unpacked wheel replays them); the cassette fixture's pytest11 entry point is
declared."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from synapsekit.testing.simulators import __main__ as cli
from synapsekit.testing.simulators.wire import WIRE
from tests.redis_server import in_ci

ROOT = Path(__file__).resolve().parents[1]


def _serve(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[int]:
    """Start ``python -m synapsekit.testing.simulators <args>``; yield its port; stop it.
    (``-m`` puts ``cwd`` first on sys.path.)"""
    proc = subprocess.Popen(
        [sys.executable, "-m", "synapsekit.testing.simulators", *args, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), (line, proc.stderr.read() if proc.stderr else "")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_lists_protocols(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m synapsekit.testing.simulators <protocol>")
    for name in ("openai", "anthropic", "gemini", "cohere", "mistral", "ollama", "bedrock"):
        assert f"\n  {name} " in out
    assert cli.main(["nope"]) == 2
    assert capsys.readouterr().err.startswith("unknown protocol 'nope'")
    with pytest.raises(SystemExit) as done:
        cli.main(["openai", "--help"])
    assert done.value.code == 0
    assert "--tokens" in capsys.readouterr().out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this tree by the project's build backend."""
    try:
        import hatchling  # noqa: F401
    except ImportError:
        if in_ci():
            pytest.fail("CI=true and hatchling (the build backend) is not installed")
        pytest.skip("hatchling (the build backend) is not installed")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT, check=True, capture_output=True,
    )
    (built,) = out.glob("synapsekit-*.whl")
    return built


def test_wheel_holds_every_capture(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", str(WIRE.relative_to(ROOT))], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout.split()
    assert len(tracked) > 70
    assert set(tracked) <= names
    for module in ("__main__.py", "openai_protocol.py", "wire.py"):
        assert f"synapsekit/testing/simulators/{module}" in names
    assert "synapsekit/testing/pytest_plugin.py" in names


def test_wheel_declares_the_pytest_plugin(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (points,) = (n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
    text = archive.read(points).decode()
    assert "[pytest11]\nsynapsekit = synapsekit.testing.pytest_plugin\n" in text


def test_unpacked_wheel_replays_its_own_captures(wheel: Path, tmp_path: Path) -> None:
    """The simulator run from the unpacked wheel (first on sys.path, not this tree) answers
    a bad key with the captured 401 body, byte for byte."""
    import httpx

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "from synapsekit.testing.simulators import wire; "
         "print(wire.WIRE)"],
        env=env, cwd=tmp_path, check=True, capture_output=True, text=True,
    ).stdout.strip()
    assert where == str(site / "synapsekit/testing/simulators/captures")
    for port in _serve("openai", env=env, cwd=tmp_path):
        with httpx.Client() as client:
            reply = client.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"authorization": "Bearer wrong"},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            )
    assert reply.status_code == 401
    assert reply.content == (WIRE / "openai/error_401.json").read_bytes()
