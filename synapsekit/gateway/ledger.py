"""The gateway's ledger: one row per request, in SQLite (one node) or PostgreSQL (several).

Why a writer thread: ``record(row)`` is called on the event loop at the end of every
request and must not wait for a disk or a database. It puts the row on a queue; one
thread takes what is queued and writes it as one transaction (a batch), so a burst costs
one commit, not one per request. ``aclose()`` drains the queue before it returns (no row
is lost at shutdown). Queries (``spend``, ``metrics``, ``dashboard``) run in a worker
thread too, on their own connection.

Why kept connections: opening a PostgreSQL connection costs a TCP handshake, a backend
process and authentication (milliseconds); the writer and the reader each keep one
(:class:`KeptConnection`; the key store's lookups keep one too), and a failure (the server
restarted, the network dropped) discards it, so the next use reconnects. A batch that
failed is tried again with backoff for :data:`RETRY_FOR` seconds; the insert ignores a
request id already there, so a batch whose commit reached the server but whose answer was
lost is not written twice (the request id is the primary key: every request is recorded
once).

The schema's migrations are named and recorded in a ``migrations`` table, the same way
synapsekit's other SQLite files are (:func:`synapsekit._sqlite.apply_migrations`); a
database written by a newer synapsekit is refused. The virtual keys the admin CLI
creates live in the same database (``keys`` table; :mod:`synapsekit.gateway.keys`).

``[storage] ledger``: ``sqlite:///spend.db`` (relative to the working directory),
``sqlite:////abs/path.db``, or ``postgresql://user@host/db`` (psycopg 3, the
``postgres`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from synapsekit._sqlite import Migration, apply_migrations
from synapsekit.errors import ConfigError, LedgerError, MissingDependencyError
from synapsekit.gateway.types import LedgerRow

if TYPE_CHECKING:
    from synapsekit.gateway.config import GatewayConfig
    from synapsekit.gateway.dashboard_page import Snapshot

__all__ = [
    "LATENCY_BUCKETS_MS", "MIGRATIONS", "Database", "KeptConnection", "SqlLedger", "open_ledger",
]

log = logging.getLogger("synapsekit.gateway")

_DAY = 86400
#: Upper bounds of the latency histogram ``/metrics`` serves, in milliseconds.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
)
_BATCH = 500
#: How long a batch the database refuses is retried (a server restart, a locked file)
#: before its rows are counted as lost and logged.
RETRY_FOR = 30.0
#: How long a query (/v1/spend, /metrics, /ui) waits for the rows queued before it to be
#: written: they are the requests its caller already got answers for. A database that is
#: refusing writes makes the query answer with what is there after this.
READ_WAIT = 2.0

#: Named migrations, applied in order and recorded. DOUBLE PRECISION: PostgreSQL's REAL
#: is 4 bytes (a cost would lose digits); SQLite reads it as REAL (8 bytes).
MIGRATIONS: tuple[Migration, ...] = (
    (
        "gateway_001_requests",
        ("""CREATE TABLE requests (
            request_id TEXT PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            day INTEGER NOT NULL,
            key_id TEXT NOT NULL,
            api TEXT NOT NULL,
            model TEXT NOT NULL,
            member TEXT,
            stream INTEGER NOT NULL,
            status INTEGER NOT NULL,
            error TEXT,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cached_input_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cost_usd DOUBLE PRECISION NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            ttft_ms DOUBLE PRECISION,
            complete INTEGER NOT NULL
        )""",
         "CREATE INDEX requests_ts ON requests (ts)",
         "CREATE INDEX requests_key_day ON requests (key_id, day)"),
    ),
    (
        "gateway_002_keys",
        ("""CREATE TABLE keys (
            id TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            name TEXT,
            budget_usd DOUBLE PRECISION,
            budget_window TEXT,
            requests_per_minute DOUBLE PRECISION,
            tokens_per_minute DOUBLE PRECISION,
            models TEXT,
            created DOUBLE PRECISION NOT NULL,
            revoked DOUBLE PRECISION
        )""",),
    ),
)

_FIELDS = tuple(f.name for f in dataclasses.fields(LedgerRow))
_COLUMNS = ("day", *_FIELDS)
_INSERT = (f"INSERT INTO requests ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(_COLUMNS))}) ON CONFLICT (request_id) DO NOTHING")


class Database:
    """Connections to the ledger database, SQLite or PostgreSQL, with one placeholder
    style (``?``) and the schema migrated on first use.

    ``exists()`` says whether there is anything to read without creating it (a SQLite
    file not there yet holds no keys and no rows).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self.path: Path | None = None
        if not self.postgres:
            if not url.startswith("sqlite://"):
                raise ConfigError(f"storage.ledger: unsupported URL scheme in {_safe(url)!r}")
            self.path = Path(unquote(url.removeprefix("sqlite://").removeprefix("/")))
        self._migrated = False
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return self.postgres or (self.path is not None and self.path.exists())

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        """A connection, migrated, closed after the block (commit on success)."""
        conn = self.open()
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def open(self) -> Any:
        """A new connection, the schema migrated; the caller closes it."""
        conn = self._open()
        try:
            self._migrate(conn)
        except BaseException:
            _close_quietly(conn)
            raise
        return conn

    def _open(self) -> Any:
        if not self.postgres:
            assert self.path is not None
            if self.path.parent != Path(""):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=10000")
            return _SqliteConn(conn)
        try:
            import psycopg
        except ImportError as exc:
            raise MissingDependencyError(
                "psycopg", "postgres", feature="The PostgreSQL gateway ledger") from exc
        try:
            return _PgConn(psycopg.connect(self.url, connect_timeout=10))
        except psycopg.Error as exc:
            raise LedgerError(f"cannot connect to the ledger {_safe(self.url)}: "
                              f"{type(exc).__name__}") from None

    def _migrate(self, conn: Any) -> None:
        if self._migrated:
            return
        with self._lock:
            conn.begin()
            if self.postgres:  # two nodes starting at once: one migrates, one waits
                conn.execute("SELECT pg_advisory_xact_lock(7301914)")
            apply_migrations(conn, MIGRATIONS, lambda unknown: LedgerError(
                f"the gateway ledger {_safe(self.url)} was written by a newer synapsekit "
                f"(migrations {unknown}); upgrade synapsekit"))
            conn.commit()
            self._migrated = True

    def __repr__(self) -> str:
        return f"Database({_safe(self.url)!r})"


class _SqliteConn:
    """sqlite3 in autocommit mode with explicit transactions (BEGIN IMMEDIATE)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.raw = conn

    def begin(self) -> None:
        if not self.raw.in_transaction:
            self.raw.execute("BEGIN IMMEDIATE")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """The rows changed."""
        return int(self.raw.executemany(sql, rows).rowcount)

    def commit(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()


class _PgConn:
    """A psycopg 3 connection speaking ``?`` placeholders (the SQL here has no ``?``
    inside literals)."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def begin(self) -> None:
        return None  # psycopg opens a transaction at the first statement

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql.replace("?", "%s"), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """The rows changed (psycopg sums them over the statements)."""
        with self.raw.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)
            return int(cur.rowcount)

    def commit(self) -> None:
        self.raw.commit()

    def rollback(self) -> None:
        self.raw.rollback()

    def close(self) -> None:
        self.raw.close()


class KeptConnection:
    """One connection of a :class:`Database`, kept open between uses: opened (and the
    schema migrated) at the first use, discarded when a use fails (the next one
    reconnects), so a server restart costs one failed try, not a dead ledger. Uses are
    serialised (a DB-API connection is not shared by threads at once)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Any = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """The kept connection for one transaction, committed after the block."""
        with self._lock:
            if self._conn is None:
                self._conn = self.db.open()
            conn = self._conn
            try:
                yield conn
                conn.commit()
            except BaseException:
                self._conn = None
                _close_quietly(conn)
                raise

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            _close_quietly(conn)


def _close_quietly(conn: Any) -> None:
    """Roll back and close ``conn``, which may be broken already (nothing to report)."""
    with contextlib.suppress(Exception):
        conn.rollback()
    with contextlib.suppress(Exception):
        conn.close()


class SqlLedger:
    """The ledger on a :class:`Database`: ``record`` queues, a thread writes in batches."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: queue.SimpleQueue[LedgerRow | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._writer = KeptConnection(db)
        self._reader = KeptConnection(db)
        self.lost = 0  # rows a failing database could not take (logged)
        self.duplicates = 0  # rows offered twice (a bug of the caller; logged, kept once)
        # Read-your-writes: a query first waits for the rows queued before it (how many
        # were queued, how many the writer has dealt with, written or lost).
        self._done = threading.Condition()
        self._queued = 0
        self._handled = 0

    # ---- writing

    def record(self, row: LedgerRow) -> None:
        """Queue ``row``; the writer thread stores it (never blocks the caller)."""
        with self._done:
            self._queued += 1
        self._queue.put(row)
        if self._thread is None:
            self._start()

    async def start(self) -> None:
        """Start the writer; a PostgreSQL ledger is connected and migrated now (a wrong URL
        fails the start), a SQLite file is made at the first row."""
        if self.db.postgres:
            await asyncio.to_thread(self._prepare)
        self._start()

    async def aclose(self) -> None:
        """Write every queued row, stop the writer, close the connections."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        self.flush()
        self._writer.close()
        self._reader.close()

    def flush(self) -> None:
        """Block until every row queued so far is written (tests, the CLI, ``aclose``).

        A row queued while the writer was stopping (a request cancelled at the end of a
        graceful shutdown finishes its books then) is written here too."""
        while True:
            with self._start_lock:
                thread = self._thread
            if thread is not None:
                if thread.is_alive():
                    self._queue.put(None)
                    thread.join()
                with self._start_lock:
                    if self._thread is thread:
                        self._thread = None
            if self._queue.empty():
                return
            self._start()

    def _prepare(self) -> None:
        with self._writer.transaction():
            pass

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="gateway-ledger", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[LedgerRow] = []
            item = self._queue.get()
            while True:
                if item is None:
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= _BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self._write(batch)
                finally:
                    with self._done:
                        self._handled += len(batch)
                        self._done.notify_all()

    def _caught_up(self, queued: int, timeout: float) -> None:
        """Wait (in a worker thread) until the first ``queued`` rows were dealt with, at
        most ``timeout`` seconds: a query then sees the requests answered before it."""
        with self._done:
            self._done.wait_for(lambda: self._handled >= queued, timeout)

    def _write(self, batch: list[LedgerRow]) -> None:
        rows = [(int(r.ts // _DAY), *(_value(getattr(r, f)) for f in _FIELDS)) for r in batch]
        deadline = time.monotonic() + RETRY_FOR
        pause = 0.05
        retry = False
        while True:
            try:
                with self._writer.transaction() as conn:
                    conn.begin()
                    written = conn.executemany(_INSERT, rows)
                if written < len(rows) and not retry:  # (a retry: the last try's commit)
                    self.duplicates += len(rows) - written
                    log.error("gateway ledger: %d rows recorded twice, kept once",
                              len(rows) - written)
                return
            except Exception as exc:  # a locked file or a restarting server: try again
                if time.monotonic() + pause > deadline:
                    self.lost += len(batch)
                    log.error("gateway ledger: %d rows not written (%s)", len(batch),
                              type(exc).__name__)
                    return
                if not retry:  # (once a batch: a restarting server fails many tries)
                    log.warning("gateway ledger: writing %d rows failed (%s), trying again "
                                "for up to %gs", len(batch), type(exc).__name__, RETRY_FOR)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
                retry = True

    # ---- reading

    async def rows(self, *, since: float = 0.0, until: float | None = None,
                   key_id: str | None = None) -> list[LedgerRow]:
        """The rows from ``since`` to ``until`` (one key's when ``key_id``), oldest first."""
        sql, params = _where(since, until, key_id)
        found = await self._query(f"SELECT {', '.join(_FIELDS)} FROM requests{sql} "
                                  "ORDER BY ts, request_id", params)
        return [_row(values) for values in found]

    async def spend(self, *, since: float = 0.0, until: float | None = None,
                    key_id: str | None = None) -> list[dict[str, Any]]:
        """Requests, tokens and cost grouped by key, model and UTC day."""
        sql, params = _where(since, until, key_id)
        found = await self._query(
            "SELECT key_id, model, day, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
            "SUM(cached_input_tokens), SUM(cost_usd), "
            f"SUM(CASE WHEN error IS NULL THEN 0 ELSE 1 END) FROM requests{sql} "
            "GROUP BY key_id, model, day ORDER BY day, key_id, model", params)
        return [{
            "key_id": k, "model": m, "date": time.strftime("%Y-%m-%d", time.gmtime(d * _DAY)),
            "requests": int(n), "errors": int(e), "input_tokens": int(i),
            "output_tokens": int(o), "cached_input_tokens": int(c), "cost_usd": float(cost),
        } for k, m, d, n, i, o, c, cost, e in found]

    async def metrics(self) -> list[tuple[Any, ...]]:
        """Per (model, key_id, status, error): requests, the token sums, cost, latency
        sum and the cumulative latency bucket counts (:data:`LATENCY_BUCKETS_MS`)."""
        buckets = ", ".join(f"SUM(CASE WHEN latency_ms <= {b} THEN 1 ELSE 0 END)"
                            for b in LATENCY_BUCKETS_MS)
        return await self._query(
            "SELECT model, key_id, status, error, COUNT(*), SUM(input_tokens), "
            "SUM(output_tokens), SUM(cached_input_tokens), SUM(reasoning_tokens), "
            f"SUM(cost_usd), SUM(latency_ms), {buckets} FROM requests "
            "GROUP BY model, key_id, status, error ORDER BY model, key_id, status, error", ())

    async def dashboard(self, *, since: float, now: float) -> Snapshot:
        """The /ui snapshot (``synapsekit.gateway.dashboard``) of the rows since ``since``."""
        from synapsekit.gateway.dashboard import snapshot_of_rows

        return snapshot_of_rows(await self.rows(since=since), since=since, now=now)

    async def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._done:
            queued = self._queued

        def run() -> list[tuple[Any, ...]]:
            if self._thread is not None:
                self._caught_up(queued, READ_WAIT)
            if not self.db.exists():
                return []
            with self._reader.transaction() as conn:
                return [tuple(r) for r in conn.execute(sql, params).fetchall()]

        return await asyncio.to_thread(run)

    def __repr__(self) -> str:
        return f"SqlLedger({self.db!r})"


def open_ledger(config: GatewayConfig) -> SqlLedger:
    """The ledger ``[storage] ledger`` names (what :class:`Gateway.from_config` uses)."""
    return SqlLedger(Database(config.ledger))


def database_of(config: GatewayConfig) -> Database:
    """The database ``[storage] ledger`` names (shared with the key store)."""
    return Database(config.ledger)


def ledger_folder(config: GatewayConfig) -> str:
    """Where files beside the ledger go (the budgets' SQLite file): the ledger's folder,
    or the working directory for a PostgreSQL ledger."""
    db = Database(config.ledger)
    return str(db.path.parent) if db.path is not None else os.getcwd()


def _where(since: float, until: float | None, key_id: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = ["ts >= ?"]
    params: list[Any] = [float(since)]
    if until is not None:
        clauses.append("ts < ?")
        params.append(float(until))
    if key_id is not None:
        clauses.append("key_id = ?")
        params.append(key_id)
    return " WHERE " + " AND ".join(clauses), params


def _value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _row(values: Sequence[Any]) -> LedgerRow:
    data = dict(zip(_FIELDS, values, strict=True))
    data["stream"] = bool(data["stream"])
    data["complete"] = bool(data["complete"])
    return LedgerRow(**data)


def _safe(url: str) -> str:
    """``url`` without its password (error messages, reprs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
