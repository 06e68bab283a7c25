"""The ``synapsekit`` command as a user runs it: real subprocesses, under a pipe and under
a pseudo-terminal (the pty module), against the OpenAI-protocol simulator.

What is checked is what a person sees: one summary line when piped, a progress bar with
files, passages, rate and ETA on a terminal, skipped files counted by reason, readable
passages and the variable to set when there is no key, status 130 and no traceback after
Ctrl-C with every finished file kept, and one short line for a model with no price.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from synapsekit import __version__
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "synapsekit.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), TERM="xterm", COLUMNS="120", **extra)
    return env


def _run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The CLI with stdout and stderr as pipes (not terminals)."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=_env(**extra),
                          cwd=ROOT, timeout=120)


class Terminal:
    """The CLI with stdin, stdout and stderr on one pseudo-terminal of 120 x 40."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.process = subprocess.Popen([*CLI, *args], stdin=slave, stdout=slave,
                                        stderr=slave, env=_env(), cwd=ROOT)
        os.close(slave)
        self.output = b""

    def read_until(self, pattern: bytes, timeout: float = 60.0) -> re.Match[bytes] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if not self._read(0.2):
                break
        return re.search(pattern, self.output)

    def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.2):
            pass
        status = self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return status, self.output.decode(errors="replace")

    def _read(self, wait: float) -> bool:
        """Read what is there; False once the terminal is closed on the other side."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return self.process.poll() is None
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            return False
        self.output += data
        return bool(data)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    for i in range(30):
        (folder / f"note{i:02}.md").write_text(
            f"# Note {i}\n\nNote {i} records that crate {i} holds {i * 7} copper bolts.\n"
        )
    for i in range(5):
        (folder / "sub" / f"stub{i}.pyi").write_text("def f() -> int: ...\n")
    for i in range(2):
        (folder / f"image{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    (folder / "blob.txt").write_bytes(b"\0\1\2 binary")
    return folder


def _sources(db: Path) -> list[str]:
    connection = sqlite3.connect(db)
    try:
        return [row[0] for row in connection.execute("SELECT source FROM sources ORDER BY 1")]
    finally:
        connection.close()


# ----------------------------------------------------------------------------- basics


def test_version() -> None:
    result = _run("--version")
    assert (result.returncode, result.stdout, result.stderr) == (
        0, f"synapsekit {__version__}\n", ""
    )


def test_a_missing_path_is_one_line_and_creates_no_store(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    result = _run("index", str(corpus), str(tmp_path / "nope"), "--db", str(db))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"error: {str(tmp_path / 'nope')!r} does not exist.\n"
    assert not db.exists()  # the existing path before it was not indexed either
    result = _run("ask", "crate 3?", "--db", str(tmp_path / "nodir" / "kb.db"),
                  "--model", "gpt-4o-mini")
    assert result.returncode == 1 and result.stderr.startswith("error: No store at")
    assert not (tmp_path / "nodir").exists()


# ----------------------------------------------------------------------------- index


def test_index_piped_prints_one_summary_line_with_skips_by_reason(
    corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "kb.db"
    result = _run("index", str(corpus), "--db", str(db))
    assert result.returncode == 0 and result.stderr == ""  # no bar, no line per file
    assert result.stdout == (
        f"{db}: 30 added (30 passages), 0 unchanged, "
        "8 skipped: 5 .pyi, 2 .png, 1 binary file · store: 30 passages from 30 sources\n"
    )
    (corpus / "note07.md").unlink()
    result = _run("index", str(corpus), "--db", str(db), "--verbose")
    assert result.stdout == (
        f"{db}: 0 added (0 passages), 29 unchanged, 1 removed (files gone), "
        "8 skipped: 5 .pyi, 2 .png, 1 binary file · store: 29 passages from 29 sources\n"
    )
    assert result.stderr.splitlines() == [
        f"skipped {corpus / 'blob.txt'}: binary file",
        *(f"skipped {corpus / f'image{i}.png'}: unsupported file type '.png'" for i in (0, 1)),
        *(f"skipped {corpus / 'sub' / f'stub{i}.pyi'}: unsupported file type '.pyi'"
          for i in range(5)),
    ]
    assert len(_sources(db)) == 29


def test_index_on_a_terminal_draws_a_progress_bar(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    terminal = Terminal("index", str(corpus), "--db", str(db))
    status, out = terminal.finish()
    assert status == 0, out
    # tqdm's bar: label, bar, files done of total, elapsed<ETA, rate, passages so far
    frames = re.findall(
        r"corpus: +(\d+)%\|[^|]*\| +(\d+)/30 \[\d\d:\d\d<(?:\d\d:\d\d|\?), +"
        r"(?:[\d.]+|\?) ?file/s, ([\d,]+) passages\]", out)
    assert frames[0] == ("0", "0", "0"), out
    assert frames[-1] == ("100", "30", "30"), out  # the last frame stays: the whole run
    assert "\r" in out  # redrawn in place, not one line per file
    assert "· store: 30 passages from 30 sources" in out
    assert "skipped " not in out  # counted, not listed


def test_ctrl_c_during_index_exits_130_and_keeps_what_was_indexed(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    words = " ".join(f"word{i}" for i in range(300))
    for i in range(3000):
        (folder / f"doc{i:04}.md").write_text(f"# Doc {i}\n\n{words} number{i}.\n")
    db = tmp_path / "kb.db"
    terminal = Terminal("index", str(folder), "--db", str(db))
    started = terminal.read_until(rb"\| *([2-9]\d|\d{3,})/3000 ")  # 20+ files done
    assert started, terminal.output.decode(errors="replace")
    terminal.process.send_signal(signal.SIGINT)
    status, out = terminal.finish()
    assert status == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    kept = _sources(db)
    assert 20 <= len(kept) < 3000, out
    assert kept == [str(folder / f"doc{i:04}.md") for i in range(len(kept))]  # in order
    connection = sqlite3.connect(db)  # every kept source is whole (3 passages each)
    per_source = dict(connection.execute("SELECT source, count(*) FROM passages GROUP BY 1"))
    connection.close()
    assert sorted(per_source) == kept and set(per_source.values()) == {3}
    assert (f"interrupted: {db} keeps {3 * len(kept):,} passages from {len(kept):,} sources"
            in out)
    result = _run("index", str(folder), "--db", str(db))  # the rest; the kept ones unchanged
    assert result.returncode == 0
    assert result.stdout.startswith(
        f"{db}: {3000 - len(kept):,} added ({3 * (3000 - len(kept)):,} passages), "
        f"{len(kept):,} unchanged")


# ----------------------------------------------------------------------------- ask


def test_ask_without_a_key_prints_the_passages_and_the_variable(
    corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "kb.db"
    assert _run("index", str(corpus), "--db", str(db)).returncode == 0
    result = _run("ask", "How many copper bolts does crate 12 hold?", "--db", str(db),
                  "--model", "gpt-4o-mini", "-k", "2")
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0] == "No API key, so no answer; the 2 passages it would be given:"
    assert lines[2] == f"[1] {corpus / 'note12.md'} > Note 12"
    assert lines[3:6] == ["    # Note 12", "", "    Note 12 records that crate 12 holds 84 "
                          "copper bolts."]
    assert result.stderr == (
        "\nNo answer: no API key for the 'openai' provider (model 'gpt-4o-mini'). "
        "Set OPENAI_API_KEY (export OPENAI_API_KEY=...), or pass --api-key KEY.\n"
    )
    assert "api_key=" not in result.stderr  # a CLI user cannot pass a Python argument


def test_ask_with_the_generation_options(
    openai_sim: OpenAISimulator, corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "kb.db"
    assert _run("index", str(corpus), "--db", str(db)).returncode == 0
    result = _run("ask", "What does crate 5 hold?", "--db", str(db), "--model", "gpt-4o-mini",
                  "--base-url", openai_sim.url, "--api-key", API_KEY, "--temperature", "0.3",
                  "--max-tokens", "40", "--system-prompt", "Be brief.", "-k", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello, world!\n\nSources:\n")
    assert f"  [1] {corpus / 'note05.md'} > Note 5\n" in result.stdout
    assert result.stdout.endswith("tokens: 12 in, 4 out · cost: $0.000004\n")
    assert result.stderr == ""
    (request,) = [r for r in openai_sim.requests if r.path.endswith("/chat/completions")]
    body = request.json()
    assert body["temperature"] == 0.3
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 40
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "crate 5 holds 35 copper bolts" in body["messages"][-1]["content"]
    assert API_KEY not in result.stdout + result.stderr


def test_a_model_with_no_price_is_one_short_line(
    openai_sim: OpenAISimulator, corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "kb.db"
    assert _run("index", str(corpus), "--db", str(db)).returncode == 0
    result = _run("ask", "crate 5?", "--db", str(db), "--model", "my-local-model",
                  "--provider", "openai", "--base-url", openai_sim.url, "-k", "1",
                  OPENAI_API_KEY=API_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no Python warning, no source line
    assert result.stdout.endswith(
        "tokens: 12 in, 4 out · cost: unknown (no price known for my-local-model)\n"
    )


def test_ask_with_an_embedding_model_on_a_lexical_store_says_it_embeds(
    openai_sim: OpenAISimulator, corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "kb.db"
    assert _run("index", str(corpus), "--db", str(db)).returncode == 0  # no embedding model
    args = ("ask", "What does crate 5 hold?", "--db", str(db), "--model", "gpt-4o-mini",
            "--base-url", openai_sim.url, "--embedding-model", "text-embedding-3-small",
            "--embedding-base-url", openai_sim.url, "-k", "1")
    result = _run(*args, OPENAI_API_KEY=API_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "embedded 30 passages that had no vector (the store was indexed without an "
        "embedding model)\n"
    )
    embedded = [r.json()["input"] for r in openai_sim.requests if r.path.endswith("/embeddings")]
    assert sum(len(batch) for batch in embedded) == 30 + 1  # the passages, then the question
    openai_sim.reset()
    again = _run(*args, OPENAI_API_KEY=API_KEY)  # the vectors are in the file now
    assert again.returncode == 0 and again.stderr == ""
    (request,) = [r for r in openai_sim.requests if r.path.endswith("/embeddings")]
    assert request.json()["input"] == ["What does crate 5 hold?"]
