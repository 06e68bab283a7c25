"""An append-only SQLite ledger of traced calls, so a long-running service keeps its history.

Why a background writer: :meth:`TokenTracer.record` runs on the event loop after every
call, and a disk write there would block every other task. Records go into a queue; one
daemon thread drains it and inserts them in batches (one transaction per batch), so
recording costs a ``queue.put``. :meth:`Ledger.flush` waits for the queue to drain.

Why the care: several processes may append to one file (WAL journal, ``busy_timeout``
and a retry loop around "database is locked"), the schema is versioned with named,
recorded migrations (a ``migrations`` table, as in simonw/llm), a file written by a newer
synapsekit or a file that is not a SQLite database is refused with :class:`LedgerError`
naming the path, when the ledger is opened. Once running, a failed write is logged on the
``synapsekit.tracer`` logger and dropped: tracing never fails a call.

Nothing here blocks an event loop: the busy retries sleep on the writer thread, and a ledger
opened inside a running loop (``TokenTracer(ledger=...)`` in a coroutine) leaves opening
and migrating the file -- which waits while another process holds the write lock -- to
that thread as well. There, a file that cannot be used is logged, the records are dropped,
and :meth:`Ledger.flush` raises the :class:`LedgerError`.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

from synapsekit._sqlite import Migration, apply_migrations
from synapsekit.errors import LedgerError
from synapsekit.observability.record import CallRecord

__all__ = ["MIGRATIONS", "Ledger", "LedgerError", "read_ledger"]  # LedgerError: re-exported

log = logging.getLogger("synapsekit.tracer")
T = TypeVar("T")

#: Named migrations, applied in order and recorded in the ``migrations`` table.
MIGRATIONS: tuple[Migration, ...] = (
    (
        "001_create_calls",
        ("""CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cached_input_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            latency_ms REAL NOT NULL,
            ttft_ms REAL,
            cache_hit INTEGER NOT NULL,
            cost_usd REAL,
            complete INTEGER NOT NULL,
            error TEXT,
            timestamp REAL NOT NULL
        )""",),
    ),
    ("002_index_calls_timestamp", ("CREATE INDEX calls_timestamp ON calls (timestamp)",)),
    (
        "003_price_provenance",  # where each cost came from; the 1-hour cache writes
        (
            "ALTER TABLE calls ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE calls ADD COLUMN price_row TEXT",
            "ALTER TABLE calls ADD COLUMN price_rule TEXT",
            "ALTER TABLE calls ADD COLUMN price_checked TEXT",
        ),
    ),
    (
        "004_tool_calls_purpose",  # tool-call turns; what a call was for (tool loop, re-ask)
        (
            "ALTER TABLE calls ADD COLUMN tool_calls INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE calls ADD COLUMN purpose TEXT",
            "ALTER TABLE calls ADD COLUMN step INTEGER",
            "ALTER TABLE calls ADD COLUMN attempt INTEGER",
        ),
    ),
)
_COLUMNS = tuple(f.name for f in fields(CallRecord))
_INSERT = (
    f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)
_BUSY_TIMEOUT_MS = 5_000
_RETRY_FOR_S = 60.0
_BATCH = 500
_STOP = object()


class Ledger:
    """Appends :class:`CallRecord` s to a SQLite file from a background thread."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        #: Why the file could not be used, when that was found on the writer thread.
        self._failure: LedgerError | None = None
        on_loop = _in_event_loop()
        if not on_loop:  # a script: the file is checked (and refused) right here
            self._open_file()
        self._queue: queue.Queue[object] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, args=(on_loop,), name=f"synapsekit-ledger:{self.path.name}",
            daemon=True,
        )
        self._thread.start()
        _OPEN.add(self)

    def append(self, record: CallRecord) -> None:
        """Queue one record for writing; never blocks, never raises for I/O."""
        if not self._closed:
            self._queue.put(record)

    def flush(self) -> None:
        """Wait until every queued record has been written (or logged as failed).

        Raises :class:`LedgerError` if the file, opened on the writer thread because the
        ledger was made inside a running event loop, could not be used.
        """
        if self._thread.is_alive():
            self._queue.join()
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Write what is queued, stop the writer thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        _OPEN.discard(self)

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    # ------------------------------------------------------------ the writer thread

    def _open_file(self) -> None:
        with _opened(self.path, create=True) as conn:
            _migrate(conn, self.path)

    def _run(self, open_file: bool) -> None:
        conn: sqlite3.Connection | None = None
        try:
            if open_file:
                self._open_file()
            conn = _guard(self.path, lambda: _connect(self.path))
        except LedgerError as exc:  # records are taken and dropped, so flush() returns
            self._failure = exc
            log.error("synapsekit ledger: %s; no records will be written", exc)
        try:
            while True:
                batch, stop = self._take()
                if batch and conn is not None:
                    self._write(conn, batch)
                for _ in range(len(batch) + stop):
                    self._queue.task_done()
                if stop:
                    return
        finally:
            if conn is not None:
                conn.close()

    def _take(self) -> tuple[list[CallRecord], int]:
        """Block for one item, then drain up to a batch without waiting."""
        items = [self._queue.get()]
        while len(items) < _BATCH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        records = [item for item in items if isinstance(item, CallRecord)]
        return records, len(items) - len(records)

    def _write(self, conn: sqlite3.Connection, batch: Sequence[CallRecord]) -> None:
        rows = [tuple(getattr(record, c) for c in _COLUMNS) for record in batch]

        def insert() -> None:
            with _transaction(conn):
                conn.executemany(_INSERT, rows)

        try:
            _retry_busy(insert)
        except sqlite3.Error as exc:  # disk full, file removed: tracing must not fail calls
            log.warning("synapsekit ledger %s: %d records not written: %s",
                        self.path, len(rows), exc)


def read_ledger(
    path: str | os.PathLike[str], *, since: float | None = None
) -> list[CallRecord]:
    """Every record in a ledger file (optionally only those with ``timestamp >= since``)."""
    where, args = ("WHERE timestamp >= ?", (since,)) if since is not None else ("", ())
    ledger_path = Path(path).expanduser()
    with _opened(ledger_path, create=False) as conn:
        _check_version(conn, ledger_path, _applied(conn, ledger_path))
        # A file of an older version lacks later columns: they read as their defaults.
        present = {row[1] for row in _guard(
            ledger_path, lambda: conn.execute("PRAGMA table_info(calls)").fetchall())}
        columns = [c for c in _COLUMNS if c in present]
        rows = _guard(ledger_path, lambda: conn.execute(
            f"SELECT {', '.join(columns)} FROM calls {where} ORDER BY id", args
        ).fetchall())
    return [_record(columns, row) for row in rows]


# ------------------------------------------------------------------- sqlite helpers


_OPEN: weakref.WeakSet[Ledger] = weakref.WeakSet()


@atexit.register
def _close_open_ledgers() -> None:
    # Queued records of a ledger the program never closed are written before exit.
    for ledger in list(_OPEN):
        ledger.close()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    return conn


@contextmanager
def _opened(path: Path, *, create: bool) -> Iterator[sqlite3.Connection]:
    if not create and not path.is_file():
        raise LedgerError(f"No ledger file at {path}.")
    if create:
        _guard(path, lambda: path.parent.mkdir(parents=True, exist_ok=True))
    conn = _guard(path, lambda: _connect(path))
    try:
        yield conn
    finally:
        conn.close()


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    _retry_busy(lambda: _guard(path, lambda: conn.execute("PRAGMA journal_mode = WAL")))

    def apply() -> None:
        with _transaction(conn, immediate=True):
            apply_migrations(conn, MIGRATIONS, lambda unknown: _newer(path, unknown))

    _retry_busy(lambda: _guard(path, apply))


def _applied(conn: sqlite3.Connection, path: Path) -> set[str]:
    try:
        rows = conn.execute("SELECT name FROM migrations").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise LedgerError(f"{path} is a SQLite file but not a synapsekit ledger.") from exc
        raise
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, exc) from exc
    return {name for (name,) in rows}


def _check_version(conn: sqlite3.Connection, path: Path, done: set[str]) -> None:
    unknown = sorted(done - {name for name, _ in MIGRATIONS})
    if unknown:
        raise _newer(path, unknown)


def _newer(path: Path, unknown: list[str]) -> LedgerError:
    return LedgerError(
        f"{path} was written by a newer synapsekit (migrations {unknown}); "
        "upgrade synapsekit to use it."
    )


@contextmanager
def _transaction(conn: sqlite3.Connection, *, immediate: bool = False) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _retry_busy(action: Callable[[], T]) -> T:
    """Run ``action``, retrying while another process holds the write lock."""
    deadline = time.monotonic() + _RETRY_FOR_S
    delay = 0.01
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _guard(path: Path, action: Callable[[], T]) -> T:
    """Run ``action``, turning a file that cannot be used into a LedgerError naming it."""
    try:
        return action()
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            raise  # retried by the caller
        raise _unusable(path, exc) from exc
    except (sqlite3.DatabaseError, OSError) as exc:
        raise _unusable(path, exc) from exc


def _unusable(path: Path, exc: BaseException) -> LedgerError:
    return LedgerError(f"Cannot use {path} as a synapsekit ledger: {exc}")


def _record(columns: Sequence[str], row: Sequence[object]) -> CallRecord:
    values = dict(zip(columns, row, strict=True))
    values["cache_hit"] = bool(values["cache_hit"])
    values["complete"] = bool(values["complete"])
    return CallRecord(**values)  # type: ignore[arg-type]
