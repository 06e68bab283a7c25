"""``synapsekit keys create|list|revoke|set-budget --config gateway.toml``: the admin CLI
over the key store in the ledger database (:mod:`synapsekit.gateway.keys`).

The config is read for its ``[storage]`` only: provider keys need not be set to manage
virtual keys (the admin may run this where the gateway's secrets are not). A created
key's secret is printed once, on stdout, and never stored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator, Mapping

from synapsekit.gateway.config import load_config
from synapsekit.gateway.keys import KeyStore
from synapsekit.gateway.ledger import SqlLedger

__all__ = ["run_keys"]


class _AnyProviderKey(Mapping[str, str]):
    """The environment, with every unset variable reported as set: ``api_key_env`` checks
    pass (no provider is called here); the master key is not read."""

    def __getitem__(self, name: str) -> str:
        return os.environ.get(name, "unused")

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


def run_keys(args: argparse.Namespace) -> int:
    config = load_config(args.config, _AnyProviderKey())
    store = KeyStore(config, environ={})
    if args.action == "create":
        models = tuple(m.strip() for m in args.models.split(",")) if args.models else None
        secret, info = store.create(name=args.name, budget_usd=args.budget_usd,
                                    window=args.window, rpm=args.rpm, tpm=args.tpm,
                                    models=models)
        print(f"created {info.id}; its secret, shown once (it is not stored):")
        print(secret)
        return 0
    if args.action == "list":
        spend = _spend(store, config.ledger)
        print(f"{'id':<14} {'name':<16} {'budget':>10} {'window':<7} {'rpm':>7} {'tpm':>9} "
              f"{'spent':>12}  state")
        for info, revoked in store.list():
            budget = "-" if info.budget_usd is None else f"${info.budget_usd:g}"
            print(f"{info.id:<14} {info.name or '-':<16} {budget:>10} {info.window or '-':<7} "
                  f"{_num(info.requests_per_minute):>7} {_num(info.tokens_per_minute):>9} "
                  f"{'$' + format(spend.get(info.id, 0.0), '.6f'):>12}  "
                  f"{'revoked' if revoked else 'active'}")
        return 0
    if args.action == "revoke":
        done = store.revoke(args.id)
    else:
        done = store.set_budget(args.id, args.budget_usd, args.window)
    if not done:
        print(f"synapsekit: no such key: {args.id}", file=sys.stderr)
        return 1
    print(f"{args.action} {args.id}: done")
    return 0


def _spend(store: KeyStore, url: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for row in asyncio.run(SqlLedger(store.db).spend()):
        totals[row["key_id"]] = totals.get(row["key_id"], 0.0) + row["cost_usd"]
    return totals


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
