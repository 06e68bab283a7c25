"""A real redis-server for the test session, on 127.0.0.1 and a free port.

Tests that need Redis take the ``redis_url`` fixture (tests/conftest.py). When the
``redis-server`` binary is missing they are skipped on a developer machine and fail under
``CI=true``: CI installs it (.ci/run), so a missing server there is a broken setup, not a
reason to pass.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

__all__ = ["SLOW_MACHINE", "redis_server"]

#: The operation timeout for tests that check what Redis stores, not how fast: the default
#: 0.25 s now and then skips a write on a loaded 2-core CI machine (a skipped write is a
#: miss, by design), which such a test would report as lost data.
SLOW_MACHINE = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server() -> Iterator[str]:
    """Start redis-server (no persistence), yield its URL, stop it afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError(
            "redis-server is not installed (apt-get install redis-server); "
            "the Redis cache and rate-limiter tests need a real server"
        )
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="synapsekit-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir, "--protected-mode", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: a test that SIGSTOPs a server must never leave pytest's process
        # group with a stopped member (an orphaned group gets SIGHUP: "Hangup").
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def served_or_skipped(server: AbstractContextManager[str]) -> Iterator[str]:
    """A session fixture's body for a real server: its URL while it runs; a server that
    cannot be started (its binary missing) skips the tests that need it, or fails them
    under CI=true."""
    try:
        with server as url:
            yield url
    except FileNotFoundError as exc:
        if in_ci():
            pytest.fail(f"CI=true and {exc}")
        pytest.skip(str(exc))
