"""The parts a :class:`~synapsekit.gateway.core.Gateway` is built from, as protocols, and
the in-process stand-ins it uses when the real ones (``keys``, ``limits``, ``ledger``
modules) are not installed or not wanted (tests).

Why protocols: the core calls three small interfaces and does not care whether keys live
in the file or a database, limits in memory or Redis, rows in SQLite or PostgreSQL.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from synapsekit.gateway.config import GatewayConfig, hash_key
from synapsekit.gateway.types import KeyInfo, LedgerRow

if TYPE_CHECKING:
    from synapsekit.llm.budget import Budget

__all__ = ["ConfigKeys", "KeyStore", "Ledger", "Limits", "MemoryLedger", "NoLimits"]


class KeyStore(Protocol):
    """Who a secret belongs to. ``authenticate`` returns None for an unknown or revoked
    key (the gateway answers 401); it compares in constant time."""

    async def authenticate(self, secret: str) -> KeyInfo | None: ...


class Limits(Protocol):
    """Per-key rate limits and budgets. ``admit`` answers at once: it raises a 429
    :class:`GatewayError` with ``retry_after`` rather than waiting; ``settle`` corrects
    the token estimate to what was used; ``budget`` is the key's Budget (or None)."""

    async def admit(self, key: KeyInfo, estimated_tokens: int) -> None: ...

    async def settle(self, key: KeyInfo, estimated_tokens: int, used_tokens: int) -> None: ...

    def budget(self, key: KeyInfo) -> Budget | None: ...


class Ledger(Protocol):
    """The spend ledger. ``record`` never blocks (it queues the row)."""

    def record(self, row: LedgerRow) -> None: ...


# --------------------------------------------------------------------------- fallbacks


class ConfigKeys:
    """The ``[[keys]]`` of the config file, plus the master key from the environment
    variable ``[gateway] master_key_env`` names. Compared by hash, in constant time."""

    def __init__(self, config: GatewayConfig, environ: Mapping[str, str] | None = None) -> None:
        self._keys = [(entry.key_hash, entry.info) for entry in config.keys]
        env = os.environ if environ is None else environ
        master = env.get(config.master_key_env) if config.master_key_env else None
        if master:
            self._keys.append((hash_key(master), KeyInfo(id="master", master=True)))

    async def authenticate(self, secret: str) -> KeyInfo | None:
        digest = hash_key(secret)
        found = None
        for known, info in self._keys:  # every entry compared: no early exit to time
            if hmac.compare_digest(known, digest):
                found = info
        return found


class NoLimits:
    """No rate limits and no budgets (a config without them)."""

    async def admit(self, key: KeyInfo, estimated_tokens: int) -> None:
        return None

    async def settle(self, key: KeyInfo, estimated_tokens: int, used_tokens: int) -> None:
        return None

    def budget(self, key: KeyInfo) -> Budget | None:
        return None


class MemoryLedger:
    """Rows kept in memory, newest last (tests; a gateway without a ledger database)."""

    def __init__(self) -> None:
        self.rows: list[LedgerRow] = []

    def record(self, row: LedgerRow) -> None:
        self.rows.append(row)
