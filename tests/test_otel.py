"""OpenTelemetry GenAI instrumentation: the spans and metrics an SDK exporter receives.

The OpenTelemetry SDK's in-memory span exporter and metric reader stand in for a backend;
every provider runs its real SDK against its protocol simulator (the parity walk's
servers, tests/test_parity.py). Attribute names are the GenAI semantic conventions'
(semantic-conventions v1.41.0).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from synapsekit.errors import RateLimitError, ServerError, StreamInterruptedError
from synapsekit.llm.router import Router
from synapsekit.llm.tools import tool
from synapsekit.llm.types import ToolCall
from synapsekit.observability import otel
from synapsekit.rag.embeddings import make_embedder
from synapsekit.testing import FakeLLM
from synapsekit.testing.simulators import gemini_protocol
from synapsekit.testing.simulators.openai_protocol import embedding_vector, token_count
from synapsekit.testing.simulators.server import Server
from tests import test_parity as parity
from tests.test_parity import AWS_ID, AWS_SECRET, IDS, KEY, PROVIDERS, TOKENS, _setup

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WELL_KNOWN = {
    "openai": "openai", "azure": "azure.ai.openai", "anthropic": "anthropic",
    "bedrock": "aws.bedrock", "gemini": "gcp.gemini", "mistral": "mistral_ai",
    "cohere": "cohere", "groq": "groq", "deepseek": "deepseek", "perplexity": "perplexity",
}
SECRETS = (KEY, AWS_SECRET, AWS_ID)
# The parity walk's fixtures: its module-scoped simulators and Bedrock's AWS credentials.
servers = parity.servers
aws_env = parity.aws_env


class Otel:
    def __init__(self, capture_content: bool = False, chunk_metrics: bool = False) -> None:
        self.spans = InMemorySpanExporter()
        self.provider = sdk_trace.TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        otel.instrument(
            self.provider, self.meters, capture_content=capture_content,
            chunk_metrics=chunk_metrics,
        )

    def finished(self) -> list[Any]:
        return list(self.spans.get_finished_spans())

    def points(self) -> dict[str, list[Any]]:
        """Every metric's data points (cumulative since the reader started)."""
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Otel]:
    found = Otel()
    try:
        yield found
    finally:
        otel.uninstrument()


def _no_secret(span: Any) -> None:
    values = [str(v) for v in span.attributes.values()]
    values += [str(v) for e in span.events for v in (e.attributes or {}).values()]
    values.append(span.name)
    for value in values:
        for secret in SECRETS:
            assert secret not in value


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_chat_span_and_metrics_on_every_provider(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]],
    telemetry: Otel,
) -> None:
    llm, server, module, proto = _setup(
        provider, model, protocol, servers, temperature=0.5, max_tokens=64, top_p=0.9,
    )
    server.enqueue(proto.ok(module, None))
    assert [t async for t in llm.stream("hi", stop=["END"])] == TOKENS
    (span,) = telemetry.finished()
    assert span.name == f"chat {llm.model}"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes)
    assert attributes.pop("gen_ai.response.time_to_first_chunk") > 0
    address, port = server.url.split("//")[1].split("/")[0].split(":")  # type: ignore[attr-defined]
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": WELL_KNOWN.get(provider, provider),
        "gen_ai.request.model": llm.model,
        "gen_ai.request.stream": True,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 4,
        "server.address": address,
        "server.port": int(port),
    }
    for name in ("gen_ai.response.id", "gen_ai.response.model"):
        attributes.pop(name, None)  # where the provider names them (checked below)
    assert attributes == expected
    assert span.status.status_code is StatusCode.UNSET
    _no_secret(span)
    points = telemetry.points()
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": 12, "output": 4}
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 1 and "error.type" not in duration.attributes
    assert duration.attributes["gen_ai.provider.name"] == WELL_KNOWN.get(provider, provider)
    (first,) = points["gen_ai.client.operation.time_to_first_chunk"]
    assert first.count == 1
    # Recommended, but not efficiently emitted by the Python SDK: opt-in (chunk_metrics)
    assert "gen_ai.client.operation.time_per_output_chunk" not in points
    for point in [p for group in points.values() for p in group]:
        for secret in SECRETS:
            assert all(secret not in str(v) for v in point.attributes.values())


@pytest.mark.parametrize(("provider", "model", "protocol"), [
    p for p in PROVIDERS if p[0] in ("openai", "anthropic", "gemini", "bedrock")
], ids=["openai", "anthropic", "gemini", "bedrock"])
async def test_interrupted_stream_span_has_error_type_and_partial_usage(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]],
    telemetry: Otel,
) -> None:
    llm, server, module, proto = _setup(provider, model, protocol, servers)
    events = len(proto.ok(module, None).stream or ())
    server.enqueue(proto.ok(module, events - 3))
    with pytest.raises(StreamInterruptedError):
        async for _ in llm.stream("hi"):
            pass
    (span,) = telemetry.finished()
    assert span.attributes["error.type"] == "StreamInterruptedError"
    assert span.status.status_code is StatusCode.ERROR
    if provider == "anthropic":  # message_start reported the input before the cut
        assert span.attributes["gen_ai.usage.input_tokens"] == 12
        assert span.attributes["synapsekit.usage.complete"] is False
    (duration,) = telemetry.points()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "StreamInterruptedError"
    _no_secret(span)


async def test_the_span_covers_the_whole_call(
    servers: dict[str, tuple[Server, Any]], telemetry: Otel
) -> None:
    """The span is made when the call ends (no live SDK span per call in flight) with the
    call's own start time: it covers the call from its start to its end."""
    llm, server, module, _ = _setup("openai", "gpt-4o-mini", "openai", servers)
    server.enqueue(module.text_stream(TOKENS, prompt_tokens=12, delay=0.05))
    before = time.time_ns()
    assert [t async for t in llm.stream("hi")] == TOKENS
    after = time.time_ns()
    (span,) = telemetry.finished()
    assert before <= span.start_time < span.end_time <= after
    first = span.attributes["gen_ai.response.time_to_first_chunk"]
    assert span.start_time + first * 1e9 < span.end_time
    assert span.end_time - span.start_time >= 0.05 * len(TOKENS) * 1e9  # every delayed chunk
    (duration,) = telemetry.points()["gen_ai.client.operation.duration"]
    assert duration.sum == pytest.approx((span.end_time - span.start_time) / 1e9, abs=0.02)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_break_ends_the_span_without_an_error(
    provider: str, servers: dict[str, tuple[Server, Any]], telemetry: Otel
) -> None:
    """A consumer leaving the stream early chose to: the span ends at once, with no
    error status and no error.type (per the conventions' recording-errors rules), marked
    closed early and keeping the usage reported so far."""
    model = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-6"}[provider]
    llm, server, module, _ = _setup(provider, model, provider, servers)
    server.enqueue(module.text_stream([f" t{i}" for i in range(100)], delay=0.03))
    async with aclosing(llm.stream("hi")) as tokens:
        async for _ in tokens:
            break
    (span,) = telemetry.finished()  # ended at once, not when the generator is collected
    assert span.end_time is not None
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
    assert span.attributes["synapsekit.stream.closed_early"] is True
    assert "gen_ai.response.finish_reasons" not in span.attributes
    if provider == "anthropic":  # message_start's input count, kept and marked partial
        assert span.attributes["gen_ai.usage.input_tokens"] == 10
        assert span.attributes["synapsekit.usage.complete"] is False
    else:  # the OpenAI protocol reports usage only at the end: none to keep
        assert "gen_ai.usage.input_tokens" not in span.attributes
    (duration,) = telemetry.points()["gen_ai.client.operation.duration"]
    assert duration.count == 1 and "error.type" not in duration.attributes


async def test_cancelled_call_ends_the_span(
    servers: dict[str, tuple[Server, Any]], telemetry: Otel
) -> None:
    llm, server, module, _ = _setup("anthropic", "claude-sonnet-4-6", "anthropic", servers)
    server.enqueue(module.text_stream([f" t{i}" for i in range(100)], delay=0.03))

    started = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.stream("hi"):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (span,) = telemetry.finished()
    assert span.attributes["error.type"] == "CancelledError"
    assert span.attributes["gen_ai.usage.input_tokens"] == 10  # what message_start said


async def test_retry_is_a_span_event(
    servers: dict[str, tuple[Server, Any]], telemetry: Otel
) -> None:
    llm, server, module, proto = _setup(
        "openai", "gpt-4o-mini", "openai", servers, max_retries=1, retry_delay=0
    )
    server.enqueue(module.error(429, headers={"retry-after": "0"}), proto.ok(module, None))
    assert await llm.generate("hi") == "".join(TOKENS)
    (span,) = telemetry.finished()
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "RateLimitError"
    assert event.attributes["synapsekit.will_retry"] is True
    assert event.attributes["synapsekit.attempt"] == 1
    assert span.attributes["synapsekit.attempts"] == 2
    assert "error.type" not in span.attributes
    assert len(server.requests) == 2


async def test_router_failover_event_and_member_child_spans(
    servers: dict[str, tuple[Server, Any]], telemetry: Otel
) -> None:
    first, openai_server, openai_module, _ = _setup("openai", "gpt-4o-mini", "openai", servers)
    second, anthropic_server, anthropic_module, proto = _setup(
        "anthropic", "claude-sonnet-4-6", "anthropic", servers
    )
    openai_server.enqueue(openai_module.error(500))
    anthropic_server.enqueue(proto.ok(anthropic_module, None))
    router = Router([first, second])
    assert await router.generate("hi") == "".join(TOKENS)
    spans = {span.name: span for span in telemetry.finished()}
    outer = spans[f"chat {router.model}"]
    failed, answered = spans["chat gpt-4o-mini"], spans["chat claude-sonnet-4-6"]
    assert failed.parent.span_id == outer.context.span_id
    assert answered.parent.span_id == outer.context.span_id
    assert failed.attributes["error.type"] == "ServerError"
    assert "error.type" not in answered.attributes
    (event,) = outer.events
    assert event.name == "synapsekit.router.failover"
    assert event.attributes["synapsekit.router.member"] == "openai:gpt-4o-mini"
    assert event.attributes["error.type"] == ServerError.__name__
    assert len(openai_server.requests) == len(anthropic_server.requests) == 1


async def test_execute_tool_spans_in_run_tools(telemetry: Otel) -> None:
    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    llm = FakeLLM([ToolCall("call_1", "get_weather", {"city": "Paris"}), "It is sunny."])
    response = await llm.run_tools("weather?", tools=[get_weather])
    assert response.text == "It is sunny."
    spans = telemetry.finished()
    assert [s.name for s in spans] == ["chat fake-model", "execute_tool get_weather",
                                       "chat fake-model"]
    run = spans[1]
    assert run.kind is SpanKind.INTERNAL
    assert dict(run.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_1",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "The weather in a city.",
    }
    assert spans[0].attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)


async def test_content_only_when_asked(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    for capture in (False, True):
        telemetry = Otel(capture_content=capture)
        try:
            llm, server, module, proto = _setup("openai", "gpt-4o-mini", "openai", servers)
            server.enqueue(proto.ok(module, None))
            await llm.generate("hi there")
            (span,) = telemetry.finished()
        finally:
            otel.uninstrument()
        names = set(span.attributes)
        content = {"gen_ai.input.messages", "gen_ai.output.messages",
                   "gen_ai.system_instructions"}
        if not capture:
            assert not names & content
            continue
        assert span.attributes["gen_ai.system_instructions"] == (
            '[{"type": "text", "content": "Be brief."}]'
        )
        assert span.attributes["gen_ai.input.messages"] == (
            '[{"role": "user", "parts": [{"type": "text", "content": "hi there"}]}]'
        )
        assert span.attributes["gen_ai.output.messages"] == (
            '[{"role": "assistant", "parts": [{"type": "text", "content": "Hello, world!"}], '
            '"finish_reason": "stop"}]'
        )
        _no_secret(span)


async def test_uninstrument_stops_spans() -> None:
    telemetry = Otel()
    otel.uninstrument()
    llm = FakeLLM(["ok"])
    await llm.generate("hi")
    assert telemetry.finished() == []


async def test_chunk_metrics_record_every_interval(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    telemetry = Otel(chunk_metrics=True)
    try:
        llm, server, module, proto = _setup("cohere", "command-a-03-2025", "cohere", servers)
        server.enqueue(proto.ok(module, None))
        assert [t async for t in llm.stream("hi")] == TOKENS
        (per_chunk,) = telemetry.points()["gen_ai.client.operation.time_per_output_chunk"]
    finally:
        otel.uninstrument()
    assert per_chunk.count == len(TOKENS) - 1  # every chunk after the first
    assert 0 <= per_chunk.min <= per_chunk.max < 5


async def test_histograms_use_the_conventions_bucket_boundaries(
    servers: dict[str, tuple[Server, Any]],
) -> None:
    telemetry = Otel(chunk_metrics=True)
    try:
        llm, server, module, proto = _setup("openai", "gpt-4o-mini", "openai", servers)
        server.enqueue(proto.ok(module, None))
        await llm.generate("hi")
        points = telemetry.points()
    finally:
        otel.uninstrument()
    times = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
             81.92)
    tokens = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
              16777216, 67108864)
    assert {name: tuple(p.explicit_bounds) for name, (p, *_) in points.items()} == {
        "gen_ai.client.token.usage": pytest.approx(tokens),
        "gen_ai.client.operation.duration": pytest.approx(times),
        "gen_ai.client.operation.time_to_first_chunk": pytest.approx(times),
        "gen_ai.client.operation.time_per_output_chunk": pytest.approx(times),
    }


def test_nothing_imported_until_instrument_and_then_the_api_only() -> None:
    code = (
        "import sys\n"
        "from synapsekit import make_llm\n"
        "import synapsekit.observability.otel as otel\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
        "otel.instrument()\n"
        "assert 'opentelemetry.trace' in sys.modules\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry.sdk')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------------------- embeddings

EMBED_TEXTS = ["The cat sat on the mat.", "Dense retrieval needs vectors.", "third text here"]
# (case, "provider:model" or model, the parity simulator serving it, provider=, tokens
# reported, encoding formats asked for)
EMBEDDERS = [
    ("openai", "text-embedding-3-small", "openai", None, True, ("float",)),
    ("azure", "my-embedding-deployment", "azure", "azure", True, ("float",)),
    ("gemini", "gemini-embedding-001", "gemini", None, False, ()),
    ("cohere", "embed-v4.0", "cohere", None, True, ("float",)),
    ("mistral", "codestral-embed", "mistral", None, True, ()),
    ("ollama", "ollama:llama3.2", "ollama", None, True, ()),  # a model the simulator has
    ("bedrock-titan", "amazon.titan-embed-text-v2:0", "bedrock", None, True, ()),
    ("bedrock-cohere", "cohere.embed-v4:0", "bedrock", None, True, ()),
]


def _embedder(
    servers: dict[str, tuple[Server, Any]], model: str, protocol: str, provider: str | None,
    **options: Any,
) -> Any:
    server, _ = servers[protocol]
    server.reset()
    key = None if protocol == "bedrock" else KEY
    return make_embedder(model, provider=provider, api_key=key,
                         base_url=server.url, **options)  # type: ignore[attr-defined]


def _error_reply(protocol: str, module: Any) -> Any:
    zero = {"retry-after": "0"}
    if protocol == "gemini":
        return gemini_protocol.rate_limited(retry_delay="0s")
    return module.error(429, headers=zero)


@pytest.mark.parametrize(
    ("model", "protocol", "provider", "reports", "formats"),
    [case[1:] for case in EMBEDDERS], ids=[case[0] for case in EMBEDDERS],
)
async def test_embeddings_span_and_metrics_on_every_embedder(
    model: str, protocol: str, provider: str | None, reports: bool, formats: tuple[str, ...],
    servers: dict[str, tuple[Server, Any]], telemetry: Otel,
) -> None:
    embedder = _embedder(servers, model, protocol, provider)
    server, _ = servers[protocol]
    try:
        vectors = await embedder.embed(EMBED_TEXTS)
    finally:
        await embedder.aclose()
    assert vectors == [embedding_vector(t) for t in EMBED_TEXTS]
    spans = telemetry.finished()
    assert len(spans) == len(server.requests)  # one span per request (Titan: per text)
    address, port = server.url.split("//")[1].split("/")[0].split(":")  # type: ignore[attr-defined]
    per_request = [span.attributes.get("gen_ai.usage.input_tokens") for span in spans]
    for span in spans:
        assert span.name == f"embeddings {embedder.model}"
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        attributes = dict(span.attributes)
        attributes.pop("gen_ai.usage.input_tokens", None)  # per request, checked below
        expected: dict[str, Any] = {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": WELL_KNOWN.get(embedder.provider, embedder.provider),
            "gen_ai.request.model": embedder.model,
            "gen_ai.embeddings.dimension.count": len(vectors[0]),
            "server.address": address,
            "server.port": int(port),
        }
        if formats:
            expected["gen_ai.request.encoding_formats"] = formats
        assert attributes == expected
        _no_secret(span)
    words = sum(token_count(t) for t in EMBED_TEXTS)
    points = telemetry.points()
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == len(spans)
    assert duration.attributes["gen_ai.operation.name"] == "embeddings"
    assert "error.type" not in duration.attributes
    if not reports:  # Gemini's embeddings API reports no tokens: none invented
        assert per_request == [None] * len(spans)
        assert "gen_ai.client.token.usage" not in points
        return
    assert sum(per_request) == words  # type: ignore[arg-type]
    (tokens,) = points["gen_ai.client.token.usage"]
    assert tokens.attributes["gen_ai.token.type"] == "input"
    assert (tokens.sum, tokens.count) == (words, len(spans))


async def test_embeddings_requested_dimensions_and_parent_span(
    servers: dict[str, tuple[Server, Any]], telemetry: Otel,
) -> None:
    embedder = _embedder(servers, "text-embedding-3-small", "openai", None, dimensions=4)
    tracer = telemetry.provider.get_tracer("app")
    try:
        with tracer.start_as_current_span("rag query") as outer:
            assert await embedder.embed(EMBED_TEXTS[:1]) == [
                embedding_vector(EMBED_TEXTS[0], 4)
            ]
    finally:
        await embedder.aclose()
    span, app = telemetry.finished()
    assert app.name == "rag query"
    assert span.parent.span_id == outer.get_span_context().span_id
    assert span.attributes["gen_ai.embeddings.dimension.count"] == 4


async def test_embeddings_retry_is_an_event_and_failure_an_error(
    servers: dict[str, tuple[Server, Any]], telemetry: Otel,
) -> None:
    server, module = servers["openai"]
    embedder = _embedder(servers, "text-embedding-3-small", "openai", None, max_retries=1)
    server.enqueue(_error_reply("openai", module))
    try:
        await embedder.embed(EMBED_TEXTS[:1])
        server.enqueue(_error_reply("openai", module), _error_reply("openai", module))
        with pytest.raises(RateLimitError):
            await embedder.embed(EMBED_TEXTS[:1])
    finally:
        await embedder.aclose()
    assert len(server.requests) == 4
    retried, failed = telemetry.finished()
    (event,) = retried.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "RateLimitError"
    assert retried.attributes["synapsekit.attempts"] == 2
    assert "error.type" not in retried.attributes
    assert retried.status.status_code is StatusCode.UNSET
    assert failed.attributes["error.type"] == "RateLimitError"
    assert failed.status.status_code is StatusCode.ERROR
    assert "gen_ai.usage.input_tokens" not in failed.attributes
    durations = telemetry.points()["gen_ai.client.operation.duration"]
    assert sorted(p.attributes.get("error.type", "") for p in durations) == [
        "", "RateLimitError"
    ]
    _no_secret(retried)
    _no_secret(failed)


def test_the_benchmark_otel_row_runs(tmp_path: Path) -> None:
    """``bench_streaming.py --feature otel`` (the overhead figure in docs/performance.md)
    cannot rot: it runs with a real SDK setup and prints its ratio over plain synapsekit."""
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_streaming.py", "--protocol", "openai", "--feature",
         "otel", "-n", "2", "--rounds", "1", "--tokens", "5", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())["openai"]
    for mode in ("sequential", "concurrent"):
        row = figures[mode]["synapsekit + otel"]
        assert row["vs_plain"] > 0
    assert "Queue full" not in done.stderr  # every span reached the (dropping) exporter


def test_the_ab_benchmark_runs() -> None:
    """``bench_otel.py`` (the call-by-call A/B behind the same figures) runs too."""
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_otel.py", "--protocol", "openai", "-n", "4",
         "--rounds", "2", "--concurrency", "3", "--tokens", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if "us/call" in line]
    assert [line.split()[0] for line in lines] == ["A/A", "A/A", "plain", "plain"]
