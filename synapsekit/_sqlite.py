"""The SQLite files synapsekit owns: where they may live, and their schema migrations.

The answer cache, the TokenTracer ledger and the RAG store each keep a ``migrations``
table (cf. simonw/llm): a migration runs once per file, in order, and is recorded by name,
so a file written by an older synapsekit opens and is upgraded in place, and a file that
records a migration this version does not know was written by a newer one and is refused
(each owner words that error for its own file).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

__all__ = ["Migration", "apply_migrations", "prepare_location"]

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
