"""A real PostgreSQL server for the test session: a throwaway cluster in a tmp dir, on
127.0.0.1 and a free port, and a fresh database for each test that asks.

Tests that need it take the ``postgres_url`` fixture (registered in tests/conftest.py). The
cluster is made by ``initdb`` and run by ``postgres`` from the newest
``/usr/lib/postgresql/<version>/bin`` (Debian's layout; else the ones on ``PATH``), with
trust authentication on 127.0.0.1 only and its unix socket in the tmp dir, so it touches
nothing of the machine's own PostgreSQL. PostgreSQL refuses to run as root: as root, both
run as the OS user ``postgres`` (the package makes it); otherwise as the current user.
Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the tests
check what the gateway writes and reads, not what survives a power cut, and a commit costs
microseconds instead of a disk flush.

When the binaries or the driver (psycopg, the ``postgres`` extra) are missing the tests
are skipped on a developer machine and fail under ``CI=true``: CI installs them
(.ci/run), so a missing server there is a broken setup, not a reason to pass.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import free_port, in_ci, served_or_skipped

__all__ = ["fresh_database", "postgres_server", "postgres_url"]

_USER = "postgres"  # the cluster's superuser role (initdb -U), whoever runs it


def _bindir() -> Path:
    """Where initdb and postgres are: the newest Debian version folder, else ``PATH``."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name)
                      if Path(p).parent.parent.name.isdigit() else 0)
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    if found is None:
        raise FileNotFoundError(
            "PostgreSQL is not installed (apt-get install postgresql); "
            "the gateway's PostgreSQL ledger tests need a real server"
        )
    return Path(found).parent


def _runas() -> dict[str, Any]:
    """Popen arguments that run the server as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise FileNotFoundError(
            "running as root and there is no OS user 'postgres' to run PostgreSQL as "
            "(apt-get install postgresql makes it)"
        ) from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@contextmanager
def postgres_server() -> Iterator[str]:
    """Make a cluster, start it, yield the URL of its ``postgres`` database, stop it and
    delete the cluster afterwards."""
    bindir = _bindir()
    runas = _runas()
    workdir = tempfile.mkdtemp(prefix="synapsekit-pg-")
    if runas:
        os.chown(workdir, runas["user"], runas["group"])
    data = os.path.join(workdir, "data")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    proc: subprocess.Popen[bytes] | None = None
    try:
        made = subprocess.run(
            [str(bindir / "initdb"), "-D", data, "-U", _USER, "-A", "trust", "-E", "UTF8",
             "--locale=C", "--no-sync", "--no-instructions"],
            cwd=workdir, env=env, capture_output=True, timeout=120, **runas,
        )
        if made.returncode != 0:
            raise RuntimeError("initdb failed:\n" + made.stderr.decode(errors="replace"))
        port = free_port()
        proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", data, "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={workdir}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200", "-c", "logging_collector=off"],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True, **runas,
        )
        url = f"postgresql://{_USER}@127.0.0.1:{port}/postgres"
        _wait_ready(proc, url)
        yield url
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate(timeout=5)
                raise RuntimeError(
                    "postgres did not start:\n" + err.decode(errors="replace")) from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: disconnect clients, stop at once), then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server at ``server_url``, its URL; dropped after
    (``WITH (FORCE)``: connections a failed test left open do not keep it)."""
    import psycopg

    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[str]:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        if in_ci():
            pytest.fail(f"CI=true and psycopg is not installed: {exc}")
        pytest.skip("psycopg is not installed (pip install 'synapsekit[postgres]')")
    yield from served_or_skipped(postgres_server())


@pytest.fixture
def postgres_url(_postgres_server: str) -> Iterator[str]:
    """URL of a fresh, empty database on the session's real PostgreSQL server."""
    with fresh_database(_postgres_server) as url:
        yield url
