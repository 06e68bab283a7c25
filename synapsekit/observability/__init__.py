"""Observability: the TokenTracer (tokens, latency and cost per call) and its ledger, the
call hooks everything observing calls uses (:mod:`~synapsekit.observability.hooks`), and
the OpenTelemetry instrumentation (:mod:`~synapsekit.observability.otel`, imported only
when used).

Names resolve lazily (PEP 562), like the package's other ``__init__`` modules:
``from synapsekit.observability import TokenTracer`` imports neither sqlite3 nor the
price data; the ledger module is imported only when a tracer is given a ledger file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapsekit._lazy import lazy_getattr

if TYPE_CHECKING:
    from synapsekit.errors import LedgerError
    from synapsekit.observability.hooks import (
        CallInfo,
        EmbedRun,
        Hook,
        ToolRun,
        add_hook,
        remove_hook,
    )
    from synapsekit.observability.ledger import Ledger, read_ledger
    from synapsekit.observability.purpose import CallPurpose, call_purpose, current_purpose
    from synapsekit.observability.record import CallRecord
    from synapsekit.observability.tracer import TokenTracer, summarize

_LAZY = {
    "CallInfo": "synapsekit.observability.hooks",
    "EmbedRun": "synapsekit.observability.hooks",
    "Hook": "synapsekit.observability.hooks",
    "ToolRun": "synapsekit.observability.hooks",
    "add_hook": "synapsekit.observability.hooks",
    "remove_hook": "synapsekit.observability.hooks",
    "CallPurpose": "synapsekit.observability.purpose",
    "CallRecord": "synapsekit.observability.record",
    "Ledger": "synapsekit.observability.ledger",
    "LedgerError": "synapsekit.errors",
    "TokenTracer": "synapsekit.observability.tracer",
    "call_purpose": "synapsekit.observability.purpose",
    "current_purpose": "synapsekit.observability.purpose",
    "read_ledger": "synapsekit.observability.ledger",
    "summarize": "synapsekit.observability.tracer",
}

__all__ = [
    "CallInfo",
    "CallPurpose",
    "CallRecord",
    "EmbedRun",
    "Hook",
    "Ledger",
    "LedgerError",
    "TokenTracer",
    "ToolRun",
    "add_hook",
    "call_purpose",
    "current_purpose",
    "read_ledger",
    "remove_hook",
    "summarize",
]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
