"""Virtual keys: the ``[[keys]]`` of the config, the master key, and the keys the admin
CLI (``synapsekit keys create|list|revoke|set-budget``) writes to the ledger database.

Why hashed: a key's secret is shown once, when it is created; the file and the database
keep only ``sha256:<hex>`` of it (a leaked table gives no usable key). A secret is looked
up by its hash and the hashes compared with :func:`hmac.compare_digest`.

Why no cache: every request reads the ``keys`` table (an indexed lookup on one kept
connection: under 0.1 ms on SQLite, one round trip on PostgreSQL), so a revoked key gets
401 on its next request in every worker and on every node.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from synapsekit.errors import ConfigError
from synapsekit.gateway.config import hash_key, key_id
from synapsekit.gateway.ledger import Database, KeptConnection
from synapsekit.gateway.parts import ConfigKeys
from synapsekit.gateway.types import KeyInfo

if TYPE_CHECKING:
    from synapsekit.gateway.config import GatewayConfig

__all__ = ["KEY_PREFIX", "KeyStore", "new_secret", "open_keys"]

#: What a generated secret starts with (so it is recognisable in a leak scan).
KEY_PREFIX = "sk-gw-"
_COLUMNS = ("id, key_hash, name, budget_usd, budget_window, requests_per_minute, "
            "tokens_per_minute, models, created, revoked")
_WINDOWS = (None, "day", "month")


def new_secret() -> str:
    """A fresh key secret: the prefix and 32 random bytes, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    """Who a secret belongs to: config keys and the master key (in memory, by hash), then
    the ``keys`` table. Also the admin operations the CLI runs."""

    def __init__(self, config: GatewayConfig, environ: Mapping[str, str] | None = None,
                 db: Database | None = None) -> None:
        self.db = db if db is not None else Database(config.ledger)
        self._fixed = ConfigKeys(config, environ)
        self._reader = KeptConnection(self.db)  # (a connection per request: 0.7 ms on SQLite)
        self._models = (*config.groups, *config.embedding_models)

    async def authenticate(self, secret: str) -> KeyInfo | None:
        found = await self._fixed.authenticate(secret)
        if found is not None:
            return found
        return await asyncio.to_thread(self._stored, hash_key(secret))

    def _stored(self, digest: str) -> KeyInfo | None:
        if not self.db.exists():
            return None
        with self._reader.transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM keys WHERE key_hash = ?",
                               (digest,)).fetchone()
        if row is None or row[9] is not None or not hmac.compare_digest(row[1], digest):
            return None
        return _info(row)

    # ---- admin (the CLI)

    def create(self, *, name: str | None = None, budget_usd: float | None = None,
               window: str | None = None, rpm: float | None = None, tpm: float | None = None,
               models: tuple[str, ...] | None = None) -> tuple[str, KeyInfo]:
        """A new key: its secret (shown once, never stored) and what is stored. The
        limits are checked as the config's ``[[keys]]`` are (a key that could only fail
        its requests is refused here, not at its first request)."""
        _check_budget(budget_usd, window)
        for option, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{option}: must be a number > 0, got {value!r}")
        for model in models or ():
            if model not in self._models:
                raise ConfigError(f"models: no [[models]] entry is named {model!r} "
                                  f"(known: {', '.join(self._models)})")
        secret = new_secret()
        digest = hash_key(secret)
        info = KeyInfo(id=key_id(digest), name=name, budget_usd=budget_usd, window=window,
                       requests_per_minute=rpm, tokens_per_minute=tpm, models=models)
        with self.db.connect() as conn:
            conn.begin()
            conn.execute(f"INSERT INTO keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
                info.id, digest, name, budget_usd, window, rpm, tpm,
                ",".join(models) if models else None, time.time(), None))
        return secret, info

    def list(self) -> list[tuple[KeyInfo, bool]]:
        """Every stored key with whether it is revoked (no secrets: there are none)."""
        if not self.db.exists():
            return []
        with self.db.connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY created, id").fetchall()
        return [(_info(row), row[9] is not None) for row in rows]

    def revoke(self, ident: str) -> bool:
        """Revoke the key ``ident``; False when there is no such (unrevoked) key."""
        return self._update("UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                            (time.time(), ident))

    def set_budget(self, ident: str, budget_usd: float | None, window: str | None) -> bool:
        """Set (or, with None, remove) the key's budget; False when there is no such key."""
        _check_budget(budget_usd, window)
        return self._update("UPDATE keys SET budget_usd = ?, budget_window = ? WHERE id = ?",
                            (budget_usd, window, ident))

    def _update(self, sql: str, params: tuple[Any, ...]) -> bool:
        with self.db.connect() as conn:
            conn.begin()
            cursor = conn.execute(sql, params)
            return bool(cursor.rowcount)

    async def aclose(self) -> None:
        """Close the connection the lookups keep."""
        await asyncio.to_thread(self._reader.close)

    def __repr__(self) -> str:
        return f"KeyStore({self.db!r})"


def open_keys(config: GatewayConfig, environ: Mapping[str, str] | None = None) -> KeyStore:
    """The key store of ``config`` (what :class:`Gateway.from_config` uses); ``environ``
    holds the master key's variable (default ``os.environ``)."""
    return KeyStore(config, environ)


def _info(row: tuple[Any, ...]) -> KeyInfo:
    return KeyInfo(id=row[0], name=row[2], budget_usd=row[3], window=row[4],
                   requests_per_minute=row[5], tokens_per_minute=row[6],
                   models=tuple(row[7].split(",")) if row[7] else None)


def _check_budget(budget_usd: float | None, window: str | None) -> None:
    if budget_usd is not None and not (budget_usd >= 0 and math.isfinite(budget_usd)):
        raise ConfigError(f"budget_usd: must be a number >= 0, got {budget_usd!r}")
    if window not in _WINDOWS:
        raise ConfigError(f"window: must be 'day', 'month' or none, got {window!r}")
