"""Running totals of call records: what :meth:`TokenTracer.summary` and :func:`summarize`
report, kept up to date as calls are recorded.

Why running totals and not a sum over the records on demand: a service's tracer sees
millions of calls. Summed on demand, ``summary()`` cost 33 ms at 20,000 records and grew
with every call, and the tracer had to keep every record to answer it. Here each record
updates its (provider, model) group once, and a summary costs the same after a million
calls as after one, whether or not the records are kept (``TokenTracer(keep=...)``).

Float totals (latency, cost) are exact sums rounded once (:class:`ExactSum`, the
algorithm of :func:`math.fsum`), so a summary does not depend on the order calls were
recorded in, as ``math.fsum`` over the records did not.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synapsekit.observability.record import CallRecord

__all__ = ["TOKEN_FIELDS", "ExactSum", "Totals"]

#: The token counts summed, per call record.
TOKEN_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens",
                "cache_write_tokens", "reasoning_tokens")


class ExactSum:
    """A sum of floats kept exact, as non-overlapping partials (Shewchuk's algorithm, the
    one :func:`math.fsum` runs over a whole list), so terms can be added one at a time
    and :meth:`value` is the correctly rounded sum, whatever their order."""

    __slots__ = ("partials",)

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        partials, i = self.partials, 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                partials[i] = low
                i += 1
            x = high
        partials[i:] = [x]

    def merge(self, other: ExactSum) -> None:
        for x in other.partials:
            self.add(x)

    def value(self) -> float:
        return math.fsum(self.partials)


class _Group:
    """The totals of one (provider, model)."""

    __slots__ = ("cache_hits", "calls", "errors", "incomplete", "known_cost", "latency",
                 "purposes", "tokens", "tool_call_turns", "unpriced")

    def __init__(self) -> None:
        self.calls = self.cache_hits = self.errors = self.incomplete = 0
        self.unpriced = self.tool_call_turns = 0
        self.tokens = dict.fromkeys(TOKEN_FIELDS, 0)
        self.latency, self.known_cost = ExactSum(), ExactSum()
        self.purposes: dict[str, int] = {}

    def add(self, entry: CallRecord) -> None:
        self.calls += 1
        tokens = self.tokens
        for name in TOKEN_FIELDS:
            tokens[name] += getattr(entry, name)
        self.latency.add(entry.latency_ms)
        self.cache_hits += entry.cache_hit
        self.errors += entry.error is not None
        self.incomplete += not entry.complete
        if entry.cost_usd is None:
            self.unpriced += 1
        else:
            self.known_cost.add(entry.cost_usd)
        self.tool_call_turns += entry.tool_calls > 0
        if entry.purpose is not None:
            self.purposes[entry.purpose] = self.purposes.get(entry.purpose, 0) + 1

    def merge(self, other: _Group) -> None:
        self.calls += other.calls
        self.cache_hits += other.cache_hits
        self.errors += other.errors
        self.incomplete += other.incomplete
        self.unpriced += other.unpriced
        self.tool_call_turns += other.tool_call_turns
        for name in TOKEN_FIELDS:
            self.tokens[name] += other.tokens[name]
        self.latency.merge(other.latency)
        self.known_cost.merge(other.known_cost)
        for purpose, count in other.purposes.items():
            self.purposes[purpose] = self.purposes.get(purpose, 0) + count


class Totals:
    """Every recorded call's totals, per (provider, model); :meth:`summary` is the dict
    :func:`~synapsekit.observability.tracer.summarize` documents."""

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], _Group] = {}

    def add(self, entry: CallRecord) -> None:
        key = (entry.provider, entry.model)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        group.add(entry)

    @property
    def calls(self) -> int:
        return sum(group.calls for group in self._groups.values())

    @property
    def models(self) -> set[str]:
        return {model for _, model in self._groups}

    def summary(self) -> dict[str, Any]:
        every = _Group()
        for group in self._groups.values():
            every.merge(group)
        names = [model for _, model in self._groups]
        by_model: dict[str, dict[str, Any]] = {}
        for (provider, model), group in self._groups.items():
            key = model if names.count(model) == 1 else f"{provider}:{model}"
            by_model[key] = {
                "provider": provider,
                "calls": group.calls,
                **group.tokens,
                "latency_ms": group.latency.value(),
                "cache_hits": group.cache_hits,
                "cost_usd": None if group.unpriced else group.known_cost.value(),
            }
        return {
            "calls": every.calls,
            **{_total_key(name): every.tokens[name] for name in TOKEN_FIELDS},
            "total_latency_ms": every.latency.value(),
            "cache_hits": every.cache_hits,
            "errors": every.errors,
            "incomplete_calls": every.incomplete,
            "estimated_cost_usd": every.known_cost.value(),
            "unpriced_calls": every.unpriced,
            "tool_call_turns": every.tool_call_turns,
            "by_purpose": dict(sorted(every.purposes.items())),
            "by_model": by_model,
        }


def _total_key(name: str) -> str:
    return name if name == "total_tokens" else f"total_{name}"
