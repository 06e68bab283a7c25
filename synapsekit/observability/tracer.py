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

:meth:`TokenTracer.summary` reads running totals (:mod:`synapsekit.observability.totals`),
not the records: it costs the same after a million calls as after one, and with
``keep=N`` a long-running service holds only the last N records in memory while its
summary still covers every call.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
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

    ``keep``: how many of the latest records :attr:`records` holds (None: all, the
    default). A service that only reads :meth:`summary` sets it so memory stays bounded
    (a record is about 390 bytes); the summary covers every call either way.
    """

    def __init__(
        self, model: str | None = None, *, ledger: str | os.PathLike[str] | None = None,
        keep: int | None = None,
    ) -> None:
        from synapsekit.observability.totals import Totals

        if model is not None and (not isinstance(model, str) or not model.strip()):
            from synapsekit.errors import ConfigError

            raise ConfigError(f"model: must be a non-empty string, not {model!r}")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int)
                                 or keep < 0):
            from synapsekit.errors import ConfigError

            raise ConfigError(f"keep: must be a whole number >= 0 or None, not {keep!r}")
        self.model = model
        self._lock = threading.Lock()
        self._records: deque[CallRecord] = deque(maxlen=keep)
        self._totals = Totals()
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
            self._totals.add(entry)
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
        """A copy of every record since creation or the last :meth:`reset` (the latest
        ``keep`` of them when the tracer was made with ``keep``)."""
        with self._lock:
            return list(self._records)

    @property
    def ledger(self) -> Ledger | None:
        return self._ledger

    def summary(self) -> dict[str, Any]:
        """Totals over every call since creation or the last :meth:`reset` (see
        :func:`summarize`; kept as calls are recorded, so this costs the same at any
        count), and ``model``: the tracer's model, else the one model every call used
        (None for several)."""
        with self._lock:
            result = self._totals.summary()
            models = self._totals.models
        only = next(iter(models)) if len(models) == 1 else None
        return {"model": self.model or only, **result}

    def reset(self) -> None:
        """Forget the in-memory records and totals (the ledger file, if any, keeps its
        history)."""
        from synapsekit.observability.totals import Totals

        with self._lock:
            self._records.clear()
            self._totals = Totals()

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
        for entry in read_ledger(path, since=since):
            tracer._records.append(entry)
            tracer._totals.add(entry)
        return tracer

    def __repr__(self) -> str:
        with self._lock:
            calls = self._totals.calls
        ledger = f", ledger={str(self._ledger.path)!r}" if self._ledger else ""
        model = f"model={self.model!r}, " if self.model else ""
        return f"TokenTracer({model}calls={calls}{ledger})"


def summarize(records: Iterable[CallRecord]) -> dict[str, Any]:
    """Totals of ``records``: call count, tokens by kind, latency, cache hits, errors,
    incomplete calls, ``estimated_cost_usd`` (sum of known costs), ``unpriced_calls``
    (calls whose cost is None), ``tool_call_turns`` (answers that asked for tools),
    ``by_purpose`` (calls per :func:`~synapsekit.observability.call_purpose` name, e.g.
    ``{"tool_loop": 3, "structured_retry": 1}``) and ``by_model``: the same per model,
    keyed by model name (``"provider:model"`` when one model name was used on several
    providers), whose ``cost_usd`` is None if any of its calls is unpriced. Float sums are
    exact, rounded once: the result does not depend on the order calls were recorded in.
    (:meth:`TokenTracer.summary` keeps the same totals as it records.)"""
    from synapsekit.observability.totals import Totals

    totals = Totals()
    for entry in records:
        totals.add(entry)
    return totals.summary()
