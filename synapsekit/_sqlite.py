"""The SQLite files synapsekit owns: where they may live, and their schema migrations.

The answer cache, the TokenTracer ledger and the RAG store each keep a ``migrations``
table (cf. simonw/llm): a migration runs once per file, in order, and is recorded by name,
so a file written by an older synapsekit opens and is upgraded in place, and a file that
records a migration this version does not know was written by a newer one and is refused
(each owner words that error for its own file).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "BUSY_RETRIES", "Migration", "apply_migrations", "busy_pause", "daemon_worker", "is_busy",
    "prepare_location", "sqlite_code",
]

#: A name and its SQL statements. Never edit a released one; append a new one.
Migration = tuple[str, tuple[str, ...]]


def apply_migrations(
    connection: sqlite3.Connection,
    migrations: Sequence[Migration],
    newer: Callable[[list[str]], Exception],
) -> None:
    """Apply the missing ``migrations``, inside the caller's write transaction.

    ``newer(unknown_names)`` builds the error raised when the file records migrations
    this version does not know.
    """
    connection.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)"
    )
    applied = {row[0] for row in connection.execute("SELECT name FROM migrations")}
    unknown = sorted(applied - {name for name, _ in migrations})
    if unknown:
        raise newer(unknown)
    for name, statements in migrations:
        if name not in applied:
            for statement in statements:
                connection.execute(statement)
            connection.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))


def prepare_location(path: str, unusable: Callable[[str], Exception]) -> None:
    """Make ``path``'s folder exist; ``unusable(reason)`` is raised when it cannot be, or
    when ``path`` is a directory."""
    if os.path.isdir(path):
        raise unusable("is a directory; name a file instead")
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise unusable(f"cannot be used: cannot create {directory}: {exc.strerror or exc}") from exc


#: How many times a statement that found the file locked by another process is tried.
BUSY_RETRIES = 8
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    return code & 0xFF if isinstance(code, int) else None


def is_busy(exc: BaseException) -> bool:
    code = sqlite_code(exc)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc)
    return "locked" in text or "busy" in text


def busy_pause(attempt: int) -> float:
    """Seconds before retry ``attempt`` of a statement that found the file busy."""
    return float(min(0.01 * 2**attempt, 0.5))


def daemon_worker(connection: Any) -> None:
    """Let the interpreter exit with an aiosqlite connection still open.

    aiosqlite (>= 0.22) runs each connection on a non-daemon thread that ends only at
    ``close()``; a process-wide cache or budget the app never closes would then keep the
    process from exiting. Every statement here is its own autocommit transaction, so a worker
    stopped at exit loses at most the write in flight, which SQLite rolls back.
    """
    thread = getattr(connection, "_thread", connection)
    if isinstance(thread, threading.Thread) and not thread.is_alive():
        thread.daemon = True
