"""OpenTelemetry GenAI instrumentation: the spans and metrics an SDK exporter receives.

The OpenTelemetry SDK's in-memory span exporter and metric reader stand in for a backend;
every provider runs its real SDK against its protocol simulator (the parity walk's
servers, tests/test_parity.py). Attribute names are the GenAI semantic conventions'
(semantic-conventions v1.41.0).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import pytest

from synapsekit.errors import ServerError, StreamInterruptedError
from synapsekit.llm.router import Router
from synapsekit.llm.tools import tool
from synapsekit.llm.types import ToolCall
from synapsekit.observability import otel
from synapsekit.testing import FakeLLM
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
    (per_chunk,) = points["gen_ai.client.operation.time_per_output_chunk"]
    assert per_chunk.count == 1  # the call's mean interval (chunk_metrics=True: each one)
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


async def test_break_ends_the_span(
    servers: dict[str, tuple[Server, Any]], telemetry: Otel
) -> None:
    llm, server, module, _ = _setup("openai", "gpt-4o-mini", "openai", servers)
    server.enqueue(module.text_stream([f" t{i}" for i in range(100)], delay=0.03))
    async with aclosing(llm.stream("hi")) as tokens:
        async for _ in tokens:
            break
    (span,) = telemetry.finished()  # ended at once, not when the generator is collected
    assert span.attributes["error.type"] == "GeneratorExit"
    assert span.end_time is not None


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
