"""TokenTracer: one record per call (tokens, latency, cost), summed on demand.

Why a tracer object apart from the LLM: an application has many LLM objects (one per
model, often one per request) but wants one bill. Any number of LLM objects, tasks and
threads may share one tracer (``make_llm(cfg, tracer=t)`` or ``llm.tracer = t``);
:meth:`TokenTracer.record` takes a lock for the append only. The base class calls it
exactly once per call, on every way out (answer, cache hit, error, a stream left early,
cancellation), plus once per retried attempt that the provider had started answering
(docs/tracing.md has the table): the tracer is the first of the call's hooks
(:mod:`synapsekit.observability.hooks`; :meth:`TokenTracer.on_call_end` and
:meth:`TokenTracer.on_attempt_failed`), so it sees calls exactly as any other hook does.
Cost comes from :mod:`synapsekit.llm.pricing`:
0.0 for a cache hit (nothing was billed), ``None`` for a model without a known price
(never a silent 0, so :meth:`summary` can say how many calls are unpriced).

With ``ledger="calls.db"`` every record is also appended to a SQLite file by a
background thread (see :mod:`synapsekit.observability.ledger`), so history survives
restarts; :meth:`TokenTracer.load` reads it back.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from synapsekit._lazy import lazy_getattr

if TYPE_CHECKING:
    from synapsekit.llm.types import Usage
    from synapsekit.observability.hooks import CallInfo
    from synapsekit.observability.ledger import Ledger
    from synapsekit.observability.record import CallRecord

__all__ = ["CallRecord", "TokenTracer", "summarize"]

# The record type is imported with the first record, not with the tracer (its module is
# mostly one large dataclass): ``from synapsekit import TokenTracer`` stays cheap.
__getattr__ = lazy_getattr(__name__, {"CallRecord": "synapsekit.observability.record"})



class TokenTracer:
    """Collects a :class:`CallRecord` per call; thread-safe, shareable by many LLMs.

    ``model`` (SynapseKit's ``TokenTracer(model="gpt-4o-mini")``) is the model of calls
    recorded without one, e.g. ``tracer.record(120, 40, 350.0)`` (input tokens, output
    tokens, latency in ms, positionally); ``summary()["model"]`` reports it.
    """

    def __init__(
        self, model: str | None = None, *, ledger: str | os.PathLike[str] | None = None
    ) -> None:
        if model is not None and (not isinstance(model, str) or not model.strip()):
            from synapsekit.errors import ConfigError

            raise ConfigError(f"model: must be a non-empty string, not {model!r}")
        self.model = model
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []
        self._ledger: Ledger | None = None
        if ledger is not None:
            from synapsekit.observability.ledger import Ledger  # sqlite3 only when asked

            self._ledger = Ledger(ledger)

    def record(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_ms: float = 0.0,
        *,
        provider: str | None = None,
        model: str | None = None,
        usage: Usage | None = None,
        ttft_ms: float | None = None,
        cache_hit: bool = False,
        error: str | None = None,
        tool_calls: int = 0,
        purpose: str | None = None,
        step: int | None = None,
        attempt: int | None = None,
    ) -> CallRecord:
        """Record one call and return its record (cost 0.0 for a cache hit).

        Two forms: SynapseKit's ``record(input_tokens, output_tokens, latency_ms)``, and
        the keyword form the LLMs use (``provider=, model=, usage=, latency_ms=,
        ttft_ms=, ...``). ``model`` defaults to the tracer's; ``provider`` to the one
        :func:`~synapsekit.detect_provider` picks for the model (it prices the call).
        ``tool_calls`` counts the answer's tool calls; ``purpose`` / ``step`` /
        ``attempt`` default to the enclosing :func:`~synapsekit.observability.call_purpose`
        block's, if any.
        """
        from synapsekit.errors import ConfigError

        if usage is None:
            from synapsekit.llm.types import Usage

            counts = {"input_tokens": input_tokens or 0, "output_tokens": output_tokens or 0}
            for name, value in counts.items():
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ConfigError(f"{name}: must be a whole number >= 0, not {value!r}")
            usage = Usage(counts["input_tokens"], counts["output_tokens"])
        elif input_tokens is not None or output_tokens is not None:
            raise ConfigError("record(): pass usage= or the token counts, not both")
        model = model or self.model
        if model is None:
            raise ConfigError(
                "record(): no model: pass model=... or build the tracer with "
                "TokenTracer(model=...)"
            )
        if provider is None:
            from synapsekit.llm.registry import detect_provider

            provider = detect_provider(model)
        # Imported with the first record, not with the class (prices, purposes and the
        # record type are only needed here).
        from synapsekit.llm import pricing
        from synapsekit.observability.purpose import current_purpose
        from synapsekit.observability.record import CallRecord

        cost_usd, quote = (0.0, None) if cache_hit else pricing.priced(provider, model, usage)
        if purpose is None:
            current = current_purpose()
            if current is not None:
                purpose, step, attempt = current.name, current.step, current.attempt
        entry = CallRecord(
            provider=provider,
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            latency_ms=float(latency_ms),
            ttft_ms=None if ttft_ms is None else float(ttft_ms),
            cache_hit=cache_hit,
            cost_usd=cost_usd,
            complete=usage.complete,
            error=error,
            timestamp=time.time(),
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            price_row=None if quote is None else quote.row,
            price_rule=None if quote is None else quote.rule,
            price_checked=None if quote is None else quote.checked,
            tool_calls=tool_calls,
            purpose=purpose,
            step=step,
            attempt=attempt,
        )
        with self._lock:
            self._records.append(entry)
        if self._ledger is not None:
            self._ledger.append(entry)
        return entry

    # ----------------------------------------------------------------- as a call hook

    def on_call_end(self, call: CallInfo) -> None:
        """The call path's hook (:mod:`synapsekit.observability.hooks`): the call's one
        record, kept as ``call.record`` for the hooks after it."""
        assert call.final_usage is not None
        call.record = self.record(**call.fields(call.final_usage, call.started, call.error))

    def on_attempt_failed(self, call: CallInfo, error: Exception, will_retry: bool) -> None:
        """A retried attempt the provider had answered (billed, then lost) is recorded
        on its own, timed from the attempt's start; a failure that ends the call is
        recorded by :meth:`on_call_end`."""
        if will_retry and call.received:
            self.record(**call.fields(call.reported(), call.attempt_started, type(error).__name__))

    @property
    def records(self) -> list[CallRecord]:
        """A copy of every record since creation or the last :meth:`reset`."""
        with self._lock:
            return list(self._records)

    @property
    def ledger(self) -> Ledger | None:
        return self._ledger

    def summary(self) -> dict[str, Any]:
        """Totals over :attr:`records` (see :func:`summarize`), and ``model``: the
        tracer's model, else the one model every record used (None for several)."""
        records = self.records
        result = summarize(records)
        models = {entry.model for entry in records}
        only = next(iter(models)) if len(models) == 1 else None
        return {"model": self.model or only, **result}

    def reset(self) -> None:
        """Forget the in-memory records (the ledger file, if any, keeps its history)."""
        with self._lock:
            self._records.clear()

    def flush(self) -> None:
        """Wait until the ledger has written every record so far (no-op without one)."""
        if self._ledger is not None:
            self._ledger.flush()

    def close(self) -> None:
        """Flush and close the ledger. Idempotent; recording after close stays in memory."""
        if self._ledger is not None:
            self._ledger.close()

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, since: float | None = None) -> TokenTracer:
        """A tracer holding the records of a ledger file (not attached to it), e.g. to
        ``summary()`` a service's history."""
        from synapsekit.observability.ledger import read_ledger

        tracer = cls()
        tracer._records = read_ledger(path, since=since)
        return tracer

    def __repr__(self) -> str:
        with self._lock:
            calls = len(self._records)
        ledger = f", ledger={str(self._ledger.path)!r}" if self._ledger else ""
        model = f"model={self.model!r}, " if self.model else ""
        return f"TokenTracer({model}calls={calls}{ledger})"


_TOKEN_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens",
                 "cache_write_tokens", "reasoning_tokens")


def summarize(records: Iterable[CallRecord]) -> dict[str, Any]:
    """Totals of ``records``: call count, tokens by kind, latency, cache hits, errors,
    incomplete calls, ``estimated_cost_usd`` (sum of known costs), ``unpriced_calls``
    (calls whose cost is None), ``tool_call_turns`` (answers that asked for tools),
    ``by_purpose`` (calls per :func:`~synapsekit.observability.call_purpose` name, e.g.
    ``{"tool_loop": 3, "structured_retry": 1}``) and ``by_model``: the same per model,
    keyed by model name (``"provider:model"`` when one model name was used on several
    providers), whose ``cost_usd`` is None if any of its calls is unpriced. Float sums use
    ``math.fsum``: the result does not depend on the order calls were recorded in."""
    groups: dict[tuple[str, str], list[CallRecord]] = {}
    for entry in records:
        groups.setdefault((entry.provider, entry.model), []).append(entry)
    everything = [entry for group in groups.values() for entry in group]
    totals = _totals(everything)
    result: dict[str, Any] = {
        "calls": totals["calls"],
        **{_total_key(name): totals[name] for name in _TOKEN_FIELDS},
        "total_latency_ms": totals["latency_ms"],
        "cache_hits": totals["cache_hits"],
        "errors": totals["errors"],
        "incomplete_calls": totals["incomplete_calls"],
        "estimated_cost_usd": totals["known_cost_usd"],
        "unpriced_calls": totals["unpriced_calls"],
        "tool_call_turns": sum(entry.tool_calls > 0 for entry in everything),
        "by_purpose": _by_purpose(everything),
    }
    models = [model for _, model in groups]
    by_model: dict[str, dict[str, Any]] = {}
    for (provider, model), group in groups.items():
        key = model if models.count(model) == 1 else f"{provider}:{model}"
        part = _totals(group)
        by_model[key] = {
            "provider": provider,
            "calls": part["calls"],
            **{name: part[name] for name in _TOKEN_FIELDS},
            "latency_ms": part["latency_ms"],
            "cache_hits": part["cache_hits"],
            "cost_usd": None if part["unpriced_calls"] else part["known_cost_usd"],
        }
    result["by_model"] = by_model
    return result


def _by_purpose(records: list[CallRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in records:
        if entry.purpose is not None:
            counts[entry.purpose] = counts.get(entry.purpose, 0) + 1
    return dict(sorted(counts.items()))


def _total_key(name: str) -> str:
    return name if name == "total_tokens" else f"total_{name}"


def _totals(records: list[CallRecord]) -> dict[str, Any]:
    known = [entry.cost_usd for entry in records if entry.cost_usd is not None]
    return {
        "calls": len(records),
        **{name: sum(getattr(entry, name) for entry in records) for name in _TOKEN_FIELDS},
        "latency_ms": math.fsum(entry.latency_ms for entry in records),
        "cache_hits": sum(entry.cache_hit for entry in records),
        "errors": sum(entry.error is not None for entry in records),
        "incomplete_calls": sum(not entry.complete for entry in records),
        "known_cost_usd": math.fsum(known),
        "unpriced_calls": len(records) - len(known),
    }
