"""The OpenTelemetry setup of the ``--feature otel`` benchmark row: what a user with OTel
enabled runs, minus the network.

Why these parts: a production setup is the SDK's ``TracerProvider`` with a
``BatchSpanProcessor`` (spans queued, exported from its own thread) and a
``MeterProvider`` with a ``PeriodicExportingMetricReader``. Both are real here; only the
exporters drop what they receive, so the figure is synapsekit's instrumentation plus the
SDK's own work, not an OTLP encoder or a socket. The metric reader collects every 5 s
(the SDK's default is 60 s), so collections fall inside the measured rounds. The
providers are built once per process; ``instrument()`` / ``uninstrument()`` switch the
instrumentation on and off around the row's own rounds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["otel_available", "otel_on"]

_providers: tuple[Any, Any] | None = None


def otel_available() -> str | None:
    """None when the otel row can run, else why not."""
    try:
        import opentelemetry.sdk.metrics
        import opentelemetry.sdk.trace  # noqa: F401

        from synapsekit.observability.otel import instrument  # noqa: F401
    except ImportError as exc:
        return f"otel row skipped: {exc}"
    return None


def providers() -> tuple[Any, Any]:
    """(TracerProvider, MeterProvider), built on first use and kept for the process."""
    global _providers
    if _providers is None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            MetricExporter,
            MetricExportResult,
            MetricsData,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class DropSpans(SpanExporter):
            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        class DropMetrics(MetricExporter):
            def export(
                self, metrics_data: MetricsData, timeout_millis: float = 10_000,
                **kwargs: Any,
            ) -> MetricExportResult:
                return MetricExportResult.SUCCESS

            def force_flush(self, timeout_millis: float = 10_000) -> bool:
                return True

            def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
                return None

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(DropSpans()))
        reader = PeriodicExportingMetricReader(DropMetrics(), export_interval_millis=5_000)
        _providers = (tracer_provider, MeterProvider(metric_readers=[reader]))
    return _providers


@contextmanager
def otel_on() -> Iterator[None]:
    """synapsekit's OTel instrumentation on the SDK providers, for one client's rounds."""
    from synapsekit.observability.otel import instrument, uninstrument

    tracer_provider, meter_provider = providers()
    instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield
    finally:
        uninstrument()
