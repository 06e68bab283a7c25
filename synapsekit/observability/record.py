"""CallRecord: what a TokenTracer keeps of one traced call (and the ledger stores).

Its own module, imported with the first record: ``from synapsekit import TokenTracer``
does not build this large dataclass. :mod:`synapsekit.observability.tracer` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CallRecord"]


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One traced call. Token parts follow :class:`~synapsekit.llm.types.Usage`: cached
    input and cache writes are inside ``input_tokens``, reasoning inside
    ``output_tokens``. ``complete`` is False when the provider did not report final
    counts (failed, cut, abandoned or cancelled; the counts are then a lower bound).
    ``error`` is None for an answer or a cache hit, else the class name of what ended
    the call or the retried attempt: ``"ServerError"``, ``"StreamInterruptedError"``,
    ``"GeneratorExit"`` (the consumer left the stream), ``"CancelledError"`` (also
    ``wait_for`` expiry), ...

    ``price_row`` / ``price_rule`` / ``price_checked`` say where ``cost_usd`` came from
    (docs/tracing.md, "How cost is computed"). ``tool_calls`` is the number of tool calls
    the answer asked for (a tool-call turn has one or more); ``purpose`` / ``step`` /
    ``attempt`` say what the call was for (:func:`~synapsekit.observability.call_purpose`:
    ``"tool_loop"`` step 2, ``"structured_retry"`` attempt 2), None outside any."""

    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    latency_ms: float
    ttft_ms: float | None
    cache_hit: bool
    cost_usd: float | None
    complete: bool
    error: str | None
    timestamp: float
    #: The part of ``cache_write_tokens`` written with a 1-hour lifetime.
    cache_write_1h_tokens: int = 0
    #: The price row that priced the call (``"anthropic:claude-sonnet-4-5"``,
    #: ``"user:my-model"`` for register_price) and how the name reached it; None when
    #: unpriced or a cache hit.
    price_row: str | None = None
    price_rule: str | None = None
    #: The date that row was checked (YYYY-MM-DD); None for a user price.
    price_checked: str | None = None
    #: Tool calls in the answer (0: a text answer).
    tool_calls: int = 0
    #: What the call was for (see :mod:`synapsekit.observability.purpose`).
    purpose: str | None = None
    step: int | None = None
    attempt: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
