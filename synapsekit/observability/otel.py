"""OpenTelemetry GenAI instrumentation: one line makes every synapsekit call a span.

``instrument()`` registers one process-wide hook (:mod:`synapsekit.observability.hooks`,
the mechanism the TokenTracer uses too) that turns each call into a CLIENT span named
``chat {model}`` (and each Embedder request into one named ``embeddings {model}``) and
records the GenAI client metrics, with the attribute names of the
OpenTelemetry GenAI semantic conventions as published in semantic-conventions v1.41.0
(the last release of the main repository that defines them; see docs/observability.md
for what this covers and what it leaves out). Only ``opentelemetry-api`` is imported, and
only when ``instrument()`` is called: ``pip install "synapsekit[otel]"`` plus whatever SDK
and exporter the application configures.

Why a hook and not wrapped SDK clients: the call path already knows every fact the
conventions ask for -- attempts, retries, the time to the first chunk, the normalised
finish reason, the provider's usage (partial when a stream was cut) -- and announces
each moment once. A span therefore ends on every way out (answer, error, ``break``,
cancellation) exactly when the call's trace record is written.

Nothing secret is written: no attribute, event or metric carries an API key or header
(``server.address`` is the endpoint's host name only). Message content is recorded only
with ``capture_content=True`` (``gen_ai.input.messages`` / ``gen_ai.output.messages`` /
``gen_ai.system_instructions``, and the tool-call arguments and results).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from synapsekit.observability import _otel_content as content
from synapsekit.observability import hooks

if TYPE_CHECKING:
    from synapsekit.errors import LLMError
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig
    from synapsekit.observability.hooks import CallInfo, EmbedRun, ToolRun

__all__ = ["PROVIDER_NAMES", "SEMCONV_VERSION", "instrument", "uninstrument"]

#: The semantic-conventions release whose GenAI names are emitted.
SEMCONV_VERSION = "1.41.0"
_SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

#: synapsekit provider -> the convention's well-known ``gen_ai.provider.name``; any other
#: provider is named as synapsekit names it (``openrouter``, ``ollama``, ...).
PROVIDER_NAMES: Mapping[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "cohere": "cohere",
    "groq": "groq",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
}

# The conventions' bucket boundaries: tokens 1, 4, ..., 4**13; the three timings (operation
# duration, time to first chunk, time per output chunk) 0.01 s, 0.02 s, ..., 81.92 s.
_TOKEN_BUCKETS = [4.0 ** i for i in range(14)]
_TIME_BUCKETS = [0.01 * 2 ** i for i in range(14)]

#: The GenAI client metrics: name, unit, description, advised bucket boundaries.
_METRICS = (
    ("gen_ai.client.token.usage", "{token}", "Number of input and output tokens used.",
     _TOKEN_BUCKETS),
    ("gen_ai.client.operation.duration", "s", "GenAI operation duration.", _TIME_BUCKETS),
    ("gen_ai.client.operation.time_to_first_chunk", "s",
     "Time to receive the first chunk, measured from when the client issues the generation "
     "request to when the first chunk is received in the response stream.", _TIME_BUCKETS),
    ("gen_ai.client.operation.time_per_output_chunk", "s",
     "Time per output chunk, recorded for each chunk received after the first one.",
     _TIME_BUCKETS),
)

_lock = threading.Lock()
_installed: _OTelHook | None = None


def instrument(
    tracer_provider: Any = None,
    meter_provider: Any = None,
    *,
    capture_content: bool = False,
    chunk_metrics: bool = False,
) -> None:
    """Emit a span and the GenAI metrics for every synapsekit call of this process (and an
    ``execute_tool`` span for each tool ``run_tools`` runs). ``tracer_provider`` /
    ``meter_provider``: the OpenTelemetry providers to use (default: the global ones).
    ``chunk_metrics``: also record ``gen_ai.client.operation.time_per_output_chunk``, once
    for every chunk after the first, as the conventions define it. It is off by default:
    the conventions make it a Recommended metric, to be emitted by default only if it
    can be efficiently emitted, and a histogram record costs the Python SDK tens of
    microseconds -- per chunk, about as much CPU again as the whole stream. Calling
    ``instrument()`` again replaces the previous instrumentation."""
    try:
        from opentelemetry import metrics, trace
    except ImportError as exc:
        from synapsekit.errors import MissingDependencyError

        raise MissingDependencyError(
            "opentelemetry-api", "otel", feature="OpenTelemetry instrumentation"
        ) from exc
    from synapsekit import __version__

    tracer = trace.get_tracer(
        "synapsekit", __version__, tracer_provider=tracer_provider, schema_url=_SCHEMA_URL
    )
    meter = metrics.get_meter(
        "synapsekit", __version__, meter_provider=meter_provider, schema_url=_SCHEMA_URL
    )
    global _installed
    with _lock:
        if _installed is not None:
            hooks.remove_hook(_installed)
        kind = _ChunkOTelHook if chunk_metrics else _OTelHook
        _installed = kind(tracer, meter, capture_content=capture_content)
        hooks.add_hook(_installed)


def uninstrument() -> None:
    """Stop emitting spans and metrics (calls in flight still end their spans)."""
    global _installed
    with _lock:
        if _installed is not None:
            hooks.remove_hook(_installed)
            _installed = None


class _Span:
    """One call's span-to-be and the timings its metrics need (in ``call.state[hook]``).

    The span itself is made when something needs it -- at the call's end in the common
    case, with the call's start time, or earlier for an event or a child call's parent.
    Why: a live SDK span is a dozen objects kept for the whole call; with a few hundred
    streams in flight they survive into the garbage collector's oldest generation and
    make full collections run (measured: one per 200 concurrent calls, about as costly
    as all the rest of the instrumentation). A span started at the end with an explicit
    start time is the same span to every exporter."""

    __slots__ = ("context", "first", "last", "metric", "span", "start")

    def __init__(self, context: Any) -> None:
        self.context = context  # the parent context, as it was when the call started
        self.start = time.time_ns()  # the span's start time (the SDK's clock)
        self.span: Any = None
        self.metric: dict[str, Any] | None = None  # the metrics' attributes, once built
        self.first: float | None = None  # the call's first chunk
        self.last: float | None = None  # when the previous chunk arrived


class _OTelHook:
    """The hook ``instrument()`` registers (see the module docstring)."""

    def __init__(self, tracer: Any, meter: Any, *, capture_content: bool) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._trace = trace
        self._get_current = context.get_current
        self._tracer = tracer
        self._client, self._internal = SpanKind.CLIENT, SpanKind.INTERNAL
        self._status, self._error_code = Status, StatusCode.ERROR
        self.capture_content = capture_content
        made = {
            name: _histogram(meter, name, unit, brief, buckets)
            for name, unit, brief, buckets in _METRICS
        }
        self._tokens = made["gen_ai.client.token.usage"]
        self._duration = made["gen_ai.client.operation.duration"]
        self._ttfc = made["gen_ai.client.operation.time_to_first_chunk"]
        self._per_chunk = made["gen_ai.client.operation.time_per_output_chunk"]

    def _error(self, text: str) -> Any:
        return self._status(self._error_code, text)

    # ----------------------------------------------------------------- chat spans

    def on_call_start(self, call: CallInfo) -> None:
        parent = call.parent
        found = parent.state.get(self) if parent is not None else None
        if found is not None:  # a Router's member: a child of the router's span
            context = self._trace.set_span_in_context(self._span(parent, found))
        else:
            context = self._get_current()
        call.state[self] = _Span(context)

    def on_first_token(self, call: CallInfo) -> None:
        found: _Span | None = call.state.get(self)
        if found is not None:
            found.first = call.first_token  # recorded with the rest at the end

    def on_attempt_failed(self, call: CallInfo, error: LLMError, will_retry: bool) -> None:
        found: _Span | None = call.state.get(self)
        if found is not None:
            self._span(call, found).add_event("exception", {
                "exception.type": type(error).__name__,
                "exception.message": _short(error.message),
                "synapsekit.attempt": call.attempts,
                "synapsekit.will_retry": will_retry,
            })

    def on_failover(self, call: CallInfo, member: str, error: LLMError) -> None:
        found: _Span | None = call.state.get(self)
        if found is not None:
            self._span(call, found).add_event("synapsekit.router.failover", {
                "synapsekit.router.member": member,
                "error.type": type(error).__name__,
                "exception.message": _short(error.message),
            })

    def _common(self, call: CallInfo, found: _Span) -> dict[str, Any]:
        """The attributes the span and every metric share (built once per call)."""
        common = found.metric
        if common is None:
            llm, config = call.llm, call.config
            common = found.metric = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": PROVIDER_NAMES.get(llm.provider, llm.provider),
                "gen_ai.request.model": config.model,
            }
            _add_server(common, llm, config)
        return common

    def _request(self, call: CallInfo, found: _Span) -> dict[str, Any]:
        """The span's attributes known when the call starts (a new dict)."""
        config = call.config
        attributes = dict(self._common(call, found))
        attributes["gen_ai.request.stream"] = True  # every request is streamed upstream
        if config.temperature is not None:
            attributes["gen_ai.request.temperature"] = float(config.temperature)
        if config.top_p is not None:
            attributes["gen_ai.request.top_p"] = float(config.top_p)
        if config.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = int(config.max_tokens)
        stop = config.stop
        if stop:
            attributes["gen_ai.request.stop_sequences"] = (
                [stop] if isinstance(stop, str) else [str(s) for s in stop]
            )
        if self.capture_content:
            system, rest = content.input_messages(call.turns)
            if system:
                attributes["gen_ai.system_instructions"] = json.dumps(system)
            attributes["gen_ai.input.messages"] = json.dumps(rest)
        return attributes

    def _span(self, call: CallInfo, found: _Span) -> Any:
        """The call's span, started now with the call's start time if it was not yet."""
        if found.span is None:
            found.span = self._start(call, found, self._request(call, found))
        return found.span

    def _start(self, call: CallInfo, found: _Span, attributes: dict[str, Any]) -> Any:
        return self._tracer.start_span(
            f"chat {call.config.model}", context=found.context, kind=self._client,
            attributes=attributes, start_time=found.start,
        )

    def on_call_end(self, call: CallInfo) -> None:
        found: _Span | None = call.state.pop(self, None)
        if found is None:
            return
        duration = time.perf_counter() - call.started
        metric = self._common(call, found)
        context = found.context  # the call's (given to each record: no context lookups)
        usage = call.final_usage
        metadata = call.metadata or {}
        done: dict[str, Any] = {}  # set on the span at once (one lock, not one per name)
        response_model = (usage.model if usage is not None else None) or metadata.get(
            "model_version"
        )
        if response_model:
            done["gen_ai.response.model"] = str(response_model)
            metric = {**metric, "gen_ai.response.model": str(response_model)}
        response_id = metadata.get("response_id") or metadata.get("id")
        if isinstance(response_id, str) and response_id:
            done["gen_ai.response.id"] = response_id
        if call.finish_reason:
            done["gen_ai.response.finish_reasons"] = [call.finish_reason]
        if call.cache_hit:
            done["synapsekit.cache_hit"] = True
        if found.first is not None:
            elapsed = found.first - call.started
            done["gen_ai.response.time_to_first_chunk"] = elapsed
            self._ttfc.record(elapsed, metric, context)
        if usage is not None and not call.cache_hit and (
            usage.complete or usage.input_tokens or usage.output_tokens
        ):
            done["gen_ai.usage.input_tokens"] = usage.input_tokens
            done["gen_ai.usage.output_tokens"] = usage.output_tokens
            for name, value in (
                ("gen_ai.usage.cache_read.input_tokens", usage.cached_input_tokens),
                ("gen_ai.usage.cache_creation.input_tokens", usage.cache_write_tokens),
                ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens),
            ):
                if value:
                    done[name] = value
            if not usage.complete:
                done["synapsekit.usage.complete"] = False
            self._tokens.record(
                usage.input_tokens, {**metric, "gen_ai.token.type": "input"}, context
            )
            self._tokens.record(
                usage.output_tokens, {**metric, "gen_ai.token.type": "output"}, context
            )
        if call.attempts > 1:
            done["synapsekit.attempts"] = call.attempts
        if self.capture_content and call.error is None:
            done["gen_ai.output.messages"] = json.dumps([content.output_message(call)])
        status = None
        if isinstance(call.exception, GeneratorExit):
            # The consumer left the stream (break, aclose): its choice, not a failure.
            done["synapsekit.stream.closed_early"] = True
        elif call.error is not None:
            done["error.type"] = call.error
            exc = call.exception
            message = getattr(exc, "message", None) if exc is not None else None
            status = self._error(_short(message) if message else call.error)
            metric = {**metric, "error.type": call.error}
        span = found.span
        if span is None:  # the usual way: the whole span made at once
            attributes = self._request(call, found)
            attributes.update(done)
            span = self._start(call, found, attributes)
        else:
            span.set_attributes(done)
        if status is not None:
            span.set_status(status)
        span.end()
        self._duration.record(duration, metric, context)

    # ----------------------------------------------------------------- tool spans

    def on_tool_start(self, run: ToolRun) -> None:
        call = run.call
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.id,
            "gen_ai.tool.type": "function",
        }
        if run.description:
            attributes["gen_ai.tool.description"] = run.description
        if self.capture_content:
            attributes["gen_ai.tool.call.arguments"] = json.dumps(
                dict(call.arguments), ensure_ascii=False, default=str
            )
        span = self._tracer.start_span(
            f"execute_tool {call.name}", kind=self._internal, attributes=attributes
        )
        # The tool runs inside the span (its own spans, if any, become children); the
        # token is detached in on_tool_end, in the same task.
        from opentelemetry import context

        token = context.attach(self._trace.set_span_in_context(span))
        run.state[self] = (span, token)

    def on_tool_end(self, run: ToolRun) -> None:
        found = run.state.pop(self, None)
        if found is None:
            return
        span, token = found
        from opentelemetry import context

        context.detach(token)
        if self.capture_content and run.result is not None:
            span.set_attribute("gen_ai.tool.call.result", content.text(run.result))
        if run.error is not None:
            span.set_attribute("error.type", run.error)
            span.set_status(self._error(run.error))
        span.end()

    # ----------------------------------------------------------------- embeddings spans

    def on_embed_start(self, run: EmbedRun) -> None:
        config = run.config
        metric: dict[str, Any] = {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": PROVIDER_NAMES.get(run.llm.provider, run.llm.provider),
            "gen_ai.request.model": config.model,
        }
        _add_server(metric, run.llm, config)
        attributes = dict(metric)
        if run.dimensions is not None:
            attributes["gen_ai.embeddings.dimension.count"] = run.dimensions
        if run.encoding_formats:
            attributes["gen_ai.request.encoding_formats"] = list(run.encoding_formats)
        span = self._tracer.start_span(
            f"embeddings {config.model}", kind=self._client, attributes=attributes
        )
        # A plain coroutine, not a generator: the span can be current while the request
        # runs (an HTTP client's spans become its children); detached in on_embed_end,
        # in the same task.
        from opentelemetry import context

        token = context.attach(self._trace.set_span_in_context(span))
        run.state[self] = (span, token, metric)

    def on_embed_end(self, run: EmbedRun) -> None:
        found = run.state.pop(self, None)
        if found is None:
            return
        span, token, metric = found
        from opentelemetry import context

        context.detach(token)
        for when, error in run.failures:
            span.add_event("exception", {
                "exception.type": type(error).__name__,
                "exception.message": _short(error.message),
                "synapsekit.will_retry": True,
            }, timestamp=when)
        done: dict[str, Any] = {}
        if run.input_tokens is not None:
            done["gen_ai.usage.input_tokens"] = run.input_tokens
            self._tokens.record(run.input_tokens, {**metric, "gen_ai.token.type": "input"})
        if run.dimensions is None and run.dimension_count:
            done["gen_ai.embeddings.dimension.count"] = run.dimension_count
        if run.attempts > 1:
            done["synapsekit.attempts"] = run.attempts
        if run.error is not None:
            done["error.type"] = run.error
            message = getattr(run.exception, "message", None)
            span.set_status(self._error(_short(message) if message else run.error))
            metric = {**metric, "error.type": run.error}
        span.set_attributes(done)
        span.end()
        self._duration.record(time.perf_counter() - run.started, metric)


class _ChunkOTelHook(_OTelHook):
    """``instrument(chunk_metrics=True)``: time_per_output_chunk recorded per chunk."""

    def on_chunk(self, call: CallInfo) -> None:
        found: _Span | None = call.state.get(self)
        if found is None:
            return
        now = time.perf_counter()
        if found.last is not None:  # every chunk after the first
            self._per_chunk.record(now - found.last, self._common(call, found), found.context)
        found.last = now


def _histogram(meter: Any, name: str, unit: str, brief: str, buckets: list[float]) -> Any:
    """A histogram with the semantic conventions' advised buckets (opentelemetry-api has
    bucket advice from 1.30; our floor is 1.39.1)."""
    return meter.create_histogram(
        name, unit=unit, description=brief, explicit_bucket_boundaries_advisory=buckets
    )


def _add_server(attributes: dict[str, Any], llm: BaseLLM, config: LLMConfig) -> None:
    """``server.address`` / ``server.port`` of the endpoint the call's requests reach."""
    address, port = _server(llm._connection_for(config).base_url or llm.endpoint or "")
    if address:
        attributes["server.address"] = address
        if port is not None:
            attributes["server.port"] = port


@functools.lru_cache(maxsize=256)
def _server(url: str) -> tuple[str | None, int | None]:
    """The endpoint's host and port (never its user info, path or query)."""
    if not url:
        return None, None
    if "://" not in url:
        url = "https://" + url
    try:
        parts = urlsplit(url)
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None, None


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
