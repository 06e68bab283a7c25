"""The gateway as several processes: `synapsekit serve` run as a user runs it, the real
openai SDK as the client, the OpenAI protocol simulator as the upstream, and real
PostgreSQL and Redis servers (started by the test session).

* two gateway nodes (two `serve` commands) writing one PostgreSQL ledger at once: after
  SIGTERM every request is there once, with exact token totals;
* `--workers 4` on Redis: one key's requests_per_minute holds across the four processes
  (the 200s within 5% of the limit, the rest 429 with Retry-After), and SIGTERM lets a
  stream in flight finish while new connections are refused, then exits 0;
* what is refused before anything listens: several workers without Redis, a Redis or a
  PostgreSQL ledger that does not answer.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from synapsekit.gateway.config import parse_config
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, text_stream
from tests.gateway_fixtures import ROOT, gateway_config, member, serve_process

UP_KEY = "sk-upstream-workers-secret-3"
ALPHA = "sk-gw-node-alpha-0001"
BETA = "sk-gw-node-beta-0002"
LIMITED = "sk-gw-limited-0003"
FREE = "sk-gw-free-0004"
RPM = 40
ENV = {"SIM_KEY": UP_KEY}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(UP_KEY) as server:
        yield server


def _config(tmp: Path, keys: list[dict[str, Any]], *, ledger: str | Path,
            extra: str = "") -> Path:
    path = tmp / "gateway.toml"
    path.write_text(gateway_config([member("fast", "gpt-4o-mini", _sim_url(tmp))], keys,
                                   ledger=ledger, extra=extra))
    return path


def _sim_url(tmp: Path) -> str:
    return (tmp / "sim_url").read_text()


def _key_ids(path: Path) -> dict[str, str]:
    config = parse_config(path.read_text(), str(path), ENV)
    return {entry.info.name or "": entry.info.id for entry in config.keys}


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then the exit status (killed after 30 s: the drain has its own timeout)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


# ---------------------------------------------------------------- two nodes, one ledger


async def test_two_gateways_write_one_postgres_ledger(
    tmp_path: Path, postgres_url: str, sim: OpenAISimulator,
) -> None:
    """200 requests at once, 100 through each node (one key each), half streamed: 200
    rows, the ids the clients were given, token totals exact, after a graceful stop."""
    sim.reset()
    replies = [text_stream([f" t{j}" for j in range(1 + i % 7)], prompt_tokens=5 + i)
               for i in range(200)]
    sim.enqueue(*replies)  # taken in arrival order, whichever node sends: exact totals
    want_in = sum(5 + i for i in range(200))
    want_out = sum(1 + i % 7 for i in range(200))
    (tmp_path / "sim_url").write_text(sim.url)
    path = _config(tmp_path, [{"key": ALPHA, "name": "alpha"}, {"key": BETA, "name": "beta"}],
                   ledger=postgres_url)
    (a, url_a, log_a), (b, url_b, log_b) = await asyncio.gather(
        asyncio.to_thread(serve_process, path, env=ENV, timeout=60),
        asyncio.to_thread(serve_process, path, env=ENV, timeout=60))
    try:
        async with openai.AsyncOpenAI(base_url=url_a + "/v1", api_key=ALPHA, max_retries=0,
                                      timeout=60) as ca, \
                openai.AsyncOpenAI(base_url=url_b + "/v1", api_key=BETA, max_retries=0,
                                   timeout=60) as cb:
            results = await asyncio.gather(*(_ask(ca if i % 2 else cb, stream=i % 4 < 2)
                                             for i in range(200)))
    finally:
        status = (_stop(a), _stop(b))
    assert status == (-signal.SIGTERM, -signal.SIGTERM)  # one worker: uvicorn re-raises it
    ids = [r[0] for r in results]
    assert len(set(ids)) == 200
    assert (sum(r[1] for r in results), sum(r[2] for r in results)) == (want_in, want_out)
    assert len(sim.requests) == 200

    import psycopg

    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT request_id, key_id, input_tokens, output_tokens, status, complete "
            "FROM requests").fetchall()
    assert len(rows) == 200
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert (sum(r[2] for r in rows), sum(r[3] for r in rows)) == (want_in, want_out)
    assert {(r[4], r[5]) for r in rows} == {(200, True)}
    names = _key_ids(path)
    by_key = {k: sum(1 for r in rows if r[1] == k) for k in (names["alpha"], names["beta"])}
    assert by_key == {names["alpha"]: 100, names["beta"]: 100}  # both nodes wrote
    for log in (log_a, log_b):
        text = b"".join(log).decode()
        assert "not written" not in text and "Traceback" not in text


async def _ask(client: openai.AsyncOpenAI, *, stream: bool) -> tuple[str, int, int]:
    """One request: the id the client was given, and the usage it was told."""
    if not stream:
        raw = await client.chat.completions.with_raw_response.create(
            model="fast", messages=HI)  # type: ignore[arg-type]
        completion = raw.parse()
        assert re.fullmatch(r"( t\d)+", completion.choices[0].message.content or "")
        assert completion.usage is not None
        return (raw.headers["x-request-id"], completion.usage.prompt_tokens,
                completion.usage.completion_tokens)
    raw_stream = await client.chat.completions.with_raw_response.create(
        model="fast", messages=HI, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True})
    chunks = [c async for c in raw_stream.parse()]
    assert re.fullmatch(r"( t\d)+", "".join(c.choices[0].delta.content or "" for c in chunks
                                            if c.choices))
    usage = chunks[-1].usage
    assert usage is not None
    return raw_stream.headers["x-request-id"], usage.prompt_tokens, usage.completion_tokens


# ---------------------------------------------------------------- four workers on Redis


class Workers:
    """`synapsekit serve --workers 4` on the session's Redis, every worker started."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: list[bytes],
                 path: Path) -> None:
        self.proc, self.url, self.log, self.path = proc, url, log, path


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, _redis_server: str,
            sim: OpenAISimulator) -> Iterator[Workers]:
    import redis

    client = redis.Redis.from_url(_redis_server)
    client.flushdb()  # no bucket of an earlier run of this module
    client.close()
    tmp = tmp_path_factory.mktemp("workers")
    (tmp / "sim_url").write_text(sim.url)
    path = _config(tmp, [{"key": LIMITED, "name": "limited", "requests_per_minute": RPM},
                         {"key": FREE, "name": "free"}],
                   ledger=tmp / "spend.db", extra=f'redis_url = "{_redis_server}"\n')
    assert path.read_text().count("[storage]") == 1  # redis_url lands in [storage]
    proc, url, log = serve_process(path, "--workers", "4", env=ENV, timeout=60)
    try:
        deadline = time.monotonic() + 90
        while sum(b"Application startup complete" in line for line in log) < 4:
            assert proc.poll() is None and time.monotonic() < deadline, b"".join(log).decode()
            time.sleep(0.05)
        yield Workers(proc, url, log, path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_four_workers_hold_one_key_rpm(workers: Workers, sim: OpenAISimulator) -> None:
    """3 x RPM requests at once through four processes: the 200s are the bucket's RPM and
    what it refilled (RPM/60 a second) while the burst ran -- within 5% of RPM for a burst
    of up to 3 s --, the rest 429 with Retry-After, and nothing of a refused request reaches
    the upstream. More than one worker served (else a per-process limit would pass too)."""
    sim.reset()
    async with openai.AsyncOpenAI(base_url=workers.url + "/v1", api_key=LIMITED,
                                  max_retries=0, timeout=60) as client:
        async def one() -> tuple[int, Any]:
            try:
                reply = await client.chat.completions.with_raw_response.create(
                    model="fast", messages=HI)  # type: ignore[arg-type]
            except openai.RateLimitError as exc:
                return 429, exc
            assert reply.parse().choices[0].message.content == "Hello, world!"
            return reply.status_code, None

        started = time.monotonic()
        results = await asyncio.gather(*(one() for _ in range(3 * RPM)))
        took = time.monotonic() - started
        serving = _workers_with_connections(workers.proc.pid, int(workers.url.rsplit(":", 1)[1]))
    ok = sum(1 for status, _ in results if status == 200)
    refused = [exc for status, exc in results if status == 429]
    assert ok + len(refused) == 3 * RPM
    refill = took * RPM / 60  # what the bucket regained meanwhile
    assert RPM <= ok <= RPM + math.ceil(refill), (ok, took)
    for exc in refused:
        assert exc.code == "rate_limit_exceeded"
        assert int(exc.response.headers["retry-after"]) >= 1
    assert len(sim.requests) == ok
    assert serving >= 2, serving


def _workers_with_connections(parent: int, port: int) -> int:
    """How many of ``parent``'s child processes hold an accepted connection on ``port``
    (Linux /proc: the sockets of each process matched with the kernel's TCP table)."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("needs Linux /proc to see which worker holds which connection")
    inodes: set[str] = set()
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":  # ESTABLISHED, accepted on our port
            inodes.add(fields[9])
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    serving = 0
    for child in children:
        fds = Path(f"/proc/{child}/fd")
        held = set()
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                held.add(target[8:-1])
        serving += bool(held & inodes)
    return serving


async def test_sigterm_drains_a_stream_refuses_new_connections_and_exits_0(
    workers: Workers, sim: OpenAISimulator,
) -> None:
    """A slow stream is in flight when the parent gets SIGTERM: it finishes, word for
    word; meanwhile a new connection is refused (not left waiting in a backlog); the
    parent exits 0 once its workers have; the ledger has the stream's row, complete."""
    sim.reset()
    tokens = [f" s{i}" for i in range(16)]
    sim.enqueue(text_stream(tokens, delay=0.1))
    host, port = workers.url.removeprefix("http://").rsplit(":", 1)
    got: list[str] = []
    refused: BaseException | None = None
    async with openai.AsyncOpenAI(base_url=workers.url + "/v1", api_key=FREE, max_retries=0,
                                  timeout=60) as client:
        stream = await client.chat.completions.create(model="fast", messages=HI, stream=True)  # type: ignore[arg-type]
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
            if len(got) == 3:
                workers.proc.send_signal(signal.SIGTERM)
            if len(got) == 5:  # draining: the port stops accepting
                refused = await asyncio.to_thread(_refused, host, int(port))
                assert workers.proc.poll() is None  # (and the stream is still in flight)
    assert "".join(got) == "".join(tokens)
    # refused, or reset by the kernel: a connection that lands in the accept queue in the
    # instant the last copy of the listening socket closes is reset (never read by any
    # worker, so safe to retry); neither waits
    assert isinstance(refused, (ConnectionRefusedError, ConnectionResetError)), refused
    assert await asyncio.to_thread(workers.proc.wait, 30) == 0
    text = b"".join(workers.log).decode()
    assert "Traceback" not in text
    import sqlite3

    ids = _key_ids(workers.path)
    with sqlite3.connect(workers.path.parent / "spend.db") as db:
        rows = db.execute("SELECT key_id, status, complete, output_tokens, request_id "
                          "FROM requests").fetchall()
    assert [r[1:4] for r in rows if r[0] == ids["free"]] == [(200, 1, 16)]
    limited = [r for r in rows if r[0] == ids["limited"]]  # the RPM test's, by 4 writers
    assert len(limited) == 3 * RPM and {r[1] for r in limited} == {200, 429}
    assert len({r[4] for r in rows}) == len(rows) == 3 * RPM + 1


def _refused(host: str, port: int) -> BaseException | None:
    """Connect until the connection is refused (a worker that has not begun its drain yet
    still answers; that is fine): the error that ended it, or None after 5 s of answers.
    A connection accepted and closed unanswered ends it with EOFError.
    A connection accepted and then left unanswered (a backlog no worker reads) ends it
    with a timeout."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                if not sock.recv(1):
                    return EOFError("accepted, then closed without an answer")
        except OSError as exc:
            return exc
        time.sleep(0.05)
    return None


# ---------------------------------------------------------------- refused at start


def _serve_refused(path: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from synapsekit.cli import main; sys.exit(main())",
         "serve", "--config", str(path), "--port", "0", *args],
        env={**os.environ, **ENV, "PYTHONPATH": str(ROOT)}, cwd=path.parent,
        capture_output=True, timeout=60)
    return done.returncode, done.stderr.decode()


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_several_workers_without_redis_are_refused(tmp_path: Path) -> None:
    (tmp_path / "sim_url").write_text("http://127.0.0.1:9/v1")
    path = _config(tmp_path, [{"key": FREE}], ledger=tmp_path / "spend.db")
    status, err = _serve_refused(path, "--workers", "2")
    assert status == 1
    assert err == (
        f"error: --workers 2 needs [storage] redis_url in {path}: without Redis each worker "
        "keeps its own rate limits, budget holds and circuit breakers, so every key would "
        "get 2 times its limits. Set redis_url or use one worker.\n")


@pytest.mark.parametrize("dead", ["redis", "postgresql"])
def test_storage_that_does_not_answer_is_refused_before_listening(
    tmp_path: Path, dead: str,
) -> None:
    """Said once by the parent, the URL without its password, and nothing listens."""
    port = _dead_port()
    (tmp_path / "sim_url").write_text("http://127.0.0.1:9/v1")
    if dead == "redis":
        path = _config(tmp_path, [{"key": FREE}], ledger=tmp_path / "spend.db",
                       extra=f'redis_url = "redis://:hunter2@127.0.0.1:{port}/0"\n')
        want = (f"error: storage.redis_url: redis://:***@127.0.0.1:{port}/0 does not answer "
                "(ConnectionError): --workers 2 shares rate limits, budgets and circuit "
                "breakers there; without it each worker would keep its own\n")
    else:
        path = _config(tmp_path, [{"key": FREE}],
                       ledger=f"postgresql://gw:hunter2@127.0.0.1:{port}/ledger")
        want = (f"error: cannot connect to the ledger postgresql://gw:***@127.0.0.1:{port}"
                "/ledger: OperationalError\n")
    status, err = _serve_refused(path, *(["--workers", "2"] if dead == "redis" else []))
    assert (status, err) == (1, want)
    assert "hunter2" not in err
