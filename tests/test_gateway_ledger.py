"""The gateway's spend ledger on its real stores, SQLite and PostgreSQL (a real server the
test session starts: tests/postgres_server.py), each test run on both.

The real openai SDK calls the gateway over HTTP; its upstream is the OpenAI protocol
simulator. Each request's one row is read back from the database and checked field by
field: key id, model asked, member used, the four token counts, cost (the price row's
arithmetic), latency, time to first token, status, and the request id the client was
given (``x-request-id``, the completion's id). A failed upstream, an abandoned stream and
the absence of every secret are checked the same way.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from synapsekit.gateway.core import CLIENT_GONE
from synapsekit.gateway.keys import KeyStore
from synapsekit.gateway.ledger import Database, SqlLedger
from synapsekit.gateway.types import LedgerRow
from synapsekit.llm import pricing
from synapsekit.llm.types import Usage
from synapsekit.testing.simulators.openai_protocol import DONE, SSE_TYPE, OpenAISimulator, error
from synapsekit.testing.simulators.server import Reply
from tests.gateway_fixtures import GatewayServer, gateway_config, member

UP_KEY = "sk-upstream-ledger-secret-7"
ALPHA = "sk-gw-ledger-alpha-0001"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(UP_KEY) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'spend.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def gw(sim: OpenAISimulator, ledger_url: str) -> Iterator[GatewayServer]:
    sim.reset()
    text = gateway_config([member("fast", "gpt-4o-mini", sim.url)],
                          [{"key": ALPHA, "name": "alpha"}], ledger=ledger_url)
    with GatewayServer(text, env={"SIM_KEY": UP_KEY}) as server:
        assert isinstance(server.gateway.ledger, SqlLedger)
        yield server


def _client(gw: GatewayServer, key: str = ALPHA) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


async def _rows(gw: GatewayServer, count: int) -> list[LedgerRow]:
    """The ledger's rows once ``count`` are there (written by the gateway's thread)."""
    ledger = gw.gateway.ledger
    assert isinstance(ledger, SqlLedger)
    deadline = time.monotonic() + 10
    while True:
        await asyncio.to_thread(ledger.flush)
        rows = await ledger.rows()
        if len(rows) >= count or time.monotonic() > deadline:
            assert len(rows) == count, rows
            assert (ledger.lost, ledger.duplicates) == (0, 0)
            return rows
        await asyncio.sleep(0.02)


def _usage_stream(tokens: list[str], *, prompt: int, cached: int, reasoning: int,
                  hang: bool = False) -> Reply:
    """An OpenAI stream whose final usage has cached and reasoning tokens (the shipped
    scripts report 0 of both); ``hang``: the tokens, then nothing until the client leaves."""
    def event(choices: list[Any], usage: dict[str, Any] | None = None) -> bytes:
        body = {"id": "chatcmpl-upstream", "object": "chat.completion.chunk",
                "created": 1, "model": "gpt-4o-mini", "choices": choices, "usage": usage}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    def delta(content: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": content, "finish_reason": finish}

    events = [event([delta({"role": "assistant", "content": ""})])]
    events += [event([delta({"content": t})]) for t in tokens]
    if not hang:
        events.append(event([delta({}, "stop")]))
        events.append(event([], {
            "prompt_tokens": prompt, "completion_tokens": len(tokens) + reasoning,
            "total_tokens": prompt + len(tokens) + reasoning,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning}}))
        events.append(DONE)
    return Reply(200, {"content-type": SSE_TYPE}, stream=events, hang=hang)


def _key_id(gw: GatewayServer) -> str:
    return gw.config.keys[0].info.id


async def test_streamed_request_is_one_exact_row(gw: GatewayServer,
                                                 sim: OpenAISimulator) -> None:
    sim.enqueue(_usage_stream(["Cached", " and", " reasoned"], prompt=2000, cached=1536,
                              reasoning=64))
    async with _client(gw) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="fast", messages=HI, stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True})
        chunks = [c async for c in raw.parse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Cached and reasoned")
    request_id = raw.headers["x-request-id"]
    assert chunks[0].id == "chatcmpl-" + request_id.removeprefix("req_")
    [row] = await _rows(gw, 1)
    assert row.request_id == request_id
    assert (row.key_id, row.api, row.model, row.member, row.stream, row.status, row.error) == (
        _key_id(gw), "openai", "fast", "openai:gpt-4o-mini", True, 200, None)
    assert (row.input_tokens, row.output_tokens, row.cached_input_tokens,
            row.reasoning_tokens, row.cache_write_tokens, row.complete) == (
        2000, 67, 1536, 64, 0, True)
    usage = Usage(input_tokens=2000, output_tokens=67, cached_input_tokens=1536,
                  reasoning_tokens=64)
    expected = pricing.cost("openai", "gpt-4o-mini", usage)
    uncached = pricing.cost("openai", "gpt-4o-mini", Usage(input_tokens=2000, output_tokens=67))
    assert expected is not None and uncached is not None and expected < uncached
    assert row.cost_usd == pytest.approx(expected, rel=1e-12)
    assert row.ttft_ms is not None and 0 < row.ttft_ms <= row.latency_ms < 10_000
    assert row.ts == pytest.approx(time.time(), abs=30)


async def test_every_request_recorded_once(gw: GatewayServer, sim: OpenAISimulator) -> None:
    """Twenty requests at once, streamed and not: twenty rows, the ids the clients got."""
    async with _client(gw) as client:
        async def one(i: int) -> str:
            if i % 2:
                raw = await client.chat.completions.with_raw_response.create(
                    model="fast", messages=HI)  # type: ignore[arg-type]
                completion = raw.parse()
                assert completion.choices[0].message.content == "Hello, world!"
                assert completion.id == "chatcmpl-" + raw.headers["x-request-id"][4:]
                return raw.headers["x-request-id"]
            streamed = await client.chat.completions.with_raw_response.create(
                model="fast", messages=HI, stream=True)  # type: ignore[arg-type]
            text = "".join([c.choices[0].delta.content or "" async for c in streamed.parse()])
            assert text == "Hello, world!"
            return streamed.headers["x-request-id"]

        ids = await asyncio.gather(*(one(i) for i in range(20)))
    rows = await _rows(gw, 20)
    assert sorted(r.request_id for r in rows) == sorted(ids) and len(set(ids)) == 20
    assert sorted(r.stream for r in rows) == [False] * 10 + [True] * 10
    price = pricing.cost("openai", "gpt-4o-mini", Usage(input_tokens=12, output_tokens=4))
    for row in rows:
        assert (row.input_tokens, row.output_tokens, row.status, row.complete) == (
            12, 4, 200, True)
        assert row.cost_usd == pytest.approx(price, rel=1e-12)
        if row.stream:
            assert row.ttft_ms is not None and 0 < row.ttft_ms <= row.latency_ms
        else:  # the client saw no first token: the whole answer came at latency_ms
            assert row.ttft_ms is None and row.latency_ms > 0
    assert len(sim.requests) == 20


async def test_failed_upstream_is_recorded_with_its_status(gw: GatewayServer,
                                                           sim: OpenAISimulator) -> None:
    sim.enqueue(error(500))
    async with _client(gw) as client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="fast", messages=HI, stream=True)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    [row] = await _rows(gw, 1)
    assert (row.status, row.error, row.model, row.key_id, row.stream) == (
        502, "AllMembersFailedError", "fast", _key_id(gw), True)
    assert (row.input_tokens, row.output_tokens, row.cost_usd, row.ttft_ms) == (0, 0, 0.0, None)
    assert row.request_id.startswith("req_") and row.latency_ms > 0
    assert len(sim.requests) == 1


async def _abandon(gw: GatewayServer, sim: OpenAISimulator) -> tuple[LedgerRow, str]:
    """The upstream sends five tokens and then nothing; the client reads them and leaves:
    the one row, and the request id the client was given."""
    sim.enqueue(_usage_stream([f" w{i}" for i in range(5)], prompt=0, cached=0, reasoning=0,
                              hang=True))
    async with _client(gw) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="fast", messages=HI, stream=True)  # type: ignore[arg-type]
        stream = raw.parse()
        text = ""
        async for chunk in stream:
            text += chunk.choices[0].delta.content or ""
            if text == " w0 w1 w2 w3 w4":
                break
        await stream.close()
    assert await sim.wait_for_disconnects_async(1, timeout=10)  # upstream closed too
    [row] = await _rows(gw, 1)
    return row, raw.headers["x-request-id"]


async def test_abandoned_stream_keeps_the_usage_seen(gw: GatewayServer,
                                                     sim: OpenAISimulator) -> None:
    """Status 499, the five tokens passed on (a lower bound: marked incomplete)."""
    row, request_id = await _abandon(gw, sim)
    assert row.request_id == request_id
    assert (row.status, row.error, row.complete, row.stream, row.member) == (
        499, CLIENT_GONE, False, True, "openai:gpt-4o-mini")
    assert (row.input_tokens, row.output_tokens) == (0, 5)
    assert row.ttft_ms is not None and 0 < row.ttft_ms <= row.latency_ms


async def test_abandoned_stream_is_priced(gw: GatewayServer, sim: OpenAISimulator) -> None:
    row, _ = await _abandon(gw, sim)
    price = pricing.cost("openai", "gpt-4o-mini", Usage(output_tokens=5))
    assert price and row.cost_usd == pytest.approx(price, rel=1e-12)


async def test_the_database_holds_no_secret(gw: GatewayServer, ledger_url: str) -> None:
    """A key made by the admin CLI's store and a key of the file are both used; neither
    secret, nor the provider key, is anywhere in the database: the keys table holds the
    hash, the rows the key's id."""
    store = KeyStore(gw.config, {}, Database(ledger_url))
    secret, info = await asyncio.to_thread(store.create, name="stored")
    async with _client(gw) as config_client, _client(gw, secret) as stored_client:
        for client in (config_client, stored_client):
            reply = await client.chat.completions.create(model="fast", messages=HI)  # type: ignore[arg-type]
            assert reply.choices[0].message.content == "Hello, world!"
    rows = await _rows(gw, 2)
    assert sorted(r.key_id for r in rows) == sorted([_key_id(gw), info.id])
    text = await asyncio.to_thread(_everything, ledger_url)
    assert info.id in text and _key_id(gw) in text  # the dump did read the rows and keys
    for said in (secret, ALPHA, UP_KEY):
        assert said not in text
    if ledger_url.startswith("sqlite:"):  # the file's bytes, the write-ahead log's too
        path = Path(ledger_url.removeprefix("sqlite:///"))
        for file in path.parent.glob(path.name + "*"):
            data = file.read_bytes()
            for said in (secret, ALPHA, UP_KEY):
                assert said.encode() not in data, file


def _everything(url: str) -> str:
    """Every value of every table of the database, as text."""
    db = Database(url)
    out: list[str] = []
    with db.connect() as conn:
        if db.postgres:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public'").fetchall()]
        else:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
        assert {"requests", "keys", "migrations"} <= set(tables)
        for table in tables:
            out += [repr(tuple(r)) for r in conn.execute(f"SELECT * FROM {table}").fetchall()]
    return "\n".join(out)


# ---------------------------------------------------------------- the writer itself


def _row(n: int, **fields: Any) -> LedgerRow:
    return LedgerRow(ts=time.time(), request_id=f"req_{n:024x}", key_id="key_0000abcd",
                     api="openai", model="fast", member="openai:gpt-4o-mini", stream=True,
                     status=200, error=None, input_tokens=n, output_tokens=1, **fields)


@pytest.fixture
async def ledger(ledger_url: str) -> Any:
    found = SqlLedger(Database(ledger_url))
    await found.start()
    found.record(_row(0))  # the file or the tables exist from here on
    await asyncio.to_thread(found.flush)
    yield found
    await found.aclose()


async def test_record_never_waits_for_a_locked_database(ledger: SqlLedger,
                                                        ledger_url: str) -> None:
    """Another client holds the requests table (PostgreSQL: an exclusive lock; SQLite: the
    write lock). Recording 500 rows on the event loop takes no time and the loop keeps
    running; the rows are all written once the lock is released, none lost."""
    holder, count = await asyncio.to_thread(_lock_table, ledger_url)
    gaps: list[float] = []
    ticking = True

    async def heartbeat() -> None:
        last = time.perf_counter()
        while ticking:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    try:
        started = time.perf_counter()
        for n in range(1, 501):
            ledger.record(_row(n))
            if n % 50 == 0:
                await asyncio.sleep(0.02)  # the writer has its batch and waits on the lock
        spent = time.perf_counter() - started - 10 * 0.02
        await asyncio.sleep(0.3)
        assert count() == 1  # still held: nothing of the 500 written yet
    finally:
        await asyncio.to_thread(holder.close)
        ticking = False
        await beat
    assert spent < 0.5  # (generous: 500 queue puts)
    assert max(gaps) < 0.5  # the loop never waited for the database
    await asyncio.to_thread(ledger.flush)
    rows = await ledger.rows()
    assert [r.input_tokens for r in rows] == list(range(501))
    assert (ledger.lost, ledger.duplicates) == (0, 0)


def _lock_table(url: str) -> tuple[Any, Any]:
    """A connection holding the requests table's write lock, and a counter of its rows
    (read inside the holder's transaction)."""
    import sqlite3

    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None,
                               check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
    else:
        import psycopg

        conn = psycopg.connect(url)
        conn.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
    return conn, lambda: conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]


async def test_a_row_recorded_twice_is_kept_once_and_counted(ledger: SqlLedger) -> None:
    """The request id is the primary key: a second row with it is kept out (and counted as
    the caller's bug), without losing the rows batched with it."""
    ledger.record(_row(1))
    ledger.record(_row(1, cost_usd=9.0))
    ledger.record(_row(2))
    await asyncio.to_thread(ledger.flush)
    rows = await ledger.rows()
    assert [(r.input_tokens, r.cost_usd) for r in rows] == [(0, 0.0), (1, 0.0), (2, 0.0)]
    assert (ledger.lost, ledger.duplicates) == (0, 1)


async def test_postgres_writer_keeps_one_connection_and_reconnects(
    postgres_url: str,
) -> None:
    """Batch after batch goes through one server connection; when the server ends it (a
    restart, a failover, an idle timeout), the next batch reconnects and nothing is lost."""
    import psycopg

    ledger = SqlLedger(Database(postgres_url))
    await ledger.start()
    name = postgres_url.rsplit("/", 1)[1]

    def backends() -> list[int]:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            return [r[0] for r in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid()", (name,)).fetchall()]

    async def settled(done: Any) -> list[int]:
        """The backends once ``done(backends)`` (a backend leaves the list when its
        process has exited, a moment after its connection ended)."""
        deadline = time.monotonic() + 10
        while not done(found := await asyncio.to_thread(backends)):
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.02)
        return found

    try:
        for n in range(5):
            ledger.record(_row(n))
            await asyncio.to_thread(ledger.flush)
            if n == 0:
                [first] = await asyncio.to_thread(backends)
        assert await asyncio.to_thread(backends) == [first]  # one connection, kept
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone() == (
                True,)
        await settled(lambda found: found == [])
        for n in range(5, 8):
            ledger.record(_row(n))
            await asyncio.to_thread(ledger.flush)
        [second] = await asyncio.to_thread(backends)  # one new connection, kept
        assert second != first
        rows = await ledger.rows()
        assert [r.input_tokens for r in rows] == list(range(8))
        assert (ledger.lost, ledger.duplicates) == (0, 0)
    finally:
        await ledger.aclose()
    await settled(lambda found: found == [])  # aclose closed what it kept
