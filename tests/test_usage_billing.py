"""Usage that matches the bill: Bedrock's cached input counted in, Cohere priced by what it
bills. Real SDKs over real HTTP against the simulators, exact numbers.

- Bedrock Converse's ``inputTokens`` leaves cache reads and writes out (as Anthropic's
  ``input_tokens`` does): the whole prompt is ``inputTokens + cacheReadInputTokens +
  cacheWriteInputTokens``, the two cache counts its parts.
- Cohere charges ``usage.billed_units`` (the chat template is not billed): the traced cost
  is billed units x price, while the token counts stay ``usage.tokens``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from synapsekit import TokenTracer, make_llm
from synapsekit.llm.pricing import Price, price_for
from synapsekit.llm.types import Usage
from synapsekit.testing.simulators import bedrock_protocol, cohere_protocol
from synapsekit.testing.simulators.bedrock_protocol import BedrockSimulator, decode_messages
from synapsekit.testing.simulators.cohere_protocol import CohereSimulator
from tests.sim_fixtures import aws_credentials

BEDROCK_MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
ACCESS_KEY, SECRET_KEY = "AKIABILLINGTEST00001", "billing-test-secret-key-0123456789abcd"
COHERE_KEY = "co-billing-key-0123456789"


# ------------------------------------------------------------------------------- Bedrock


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockSimulator]:
    with BedrockSimulator({ACCESS_KEY: SECRET_KEY}, region="us-east-1") as server:
        yield server


@pytest.fixture
def aws_env(bedrock: BedrockSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_credentials(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY)
    bedrock.reset()


def test_bedrock_simulator_reports_input_without_the_cache() -> None:
    reply = bedrock_protocol.text_stream(["a", "b"], input_tokens=7, cache_read=1200,
                                         cache_write=300, output_tokens=2)
    messages = decode_messages(b"".join(reply.stream or ()))
    usage = [m["payload"]["usage"] for m in messages if "usage" in m["payload"]]
    assert usage == [{"inputTokens": 7, "outputTokens": 2, "cacheReadInputTokens": 1200,
                      "cacheWriteInputTokens": 300, "totalTokens": 1509}]


@pytest.mark.usefixtures("aws_env")
async def test_bedrock_cached_usage_sums_to_the_whole_prompt(bedrock: BedrockSimulator) -> None:
    bedrock.enqueue(bedrock_protocol.text_stream(
        ["Bon", "jour"], input_tokens=7, cache_read=1200, cache_write=300, output_tokens=2))
    tracer = TokenTracer()
    llm = make_llm(BEDROCK_MODEL, base_url=bedrock.url, tracer=tracer)
    try:
        chunks = [c async for c in llm.stream_chunks("hi")]
    finally:
        await llm.aclose()
    assert "".join(c.text for c in chunks) == "Bonjour"
    assert chunks[-1].usage == Usage(input_tokens=1507, output_tokens=2,
                                     cached_input_tokens=1200, cache_write_tokens=300)
    assert llm.tokens_used == {"input": 1507, "output": 2}
    (record,) = tracer.records
    assert (record.input_tokens, record.cached_input_tokens, record.cache_write_tokens) == (
        1507, 1200, 300)
    # 7 at the input price, 1,200 at the cache-read price, 300 at the cache-write price.
    price = price_for("bedrock", BEDROCK_MODEL)
    assert price == Price(input=0.8, output=4.0, cached_input=0.08, cache_write=1.0,
                         cache_write_1h=1.6)
    assert record.cost_usd == pytest.approx((7 * 0.8 + 1200 * 0.08 + 300 * 1.0 + 2 * 4.0) / 1e6,
                                            rel=1e-12)
    assert len(bedrock.requests) == 1


@pytest.mark.usefixtures("aws_env")
async def test_bedrock_without_cache_fields(bedrock: BedrockSimulator) -> None:
    bedrock.enqueue(bedrock_protocol.text_stream(["ok"], input_tokens=25, output_tokens=1))
    llm = make_llm(BEDROCK_MODEL, base_url=bedrock.url)
    try:
        final = [c async for c in llm.stream_chunks("hi")][-1]
    finally:
        await llm.aclose()
    assert final.usage == Usage(input_tokens=25, output_tokens=1)


# -------------------------------------------------------------------------------- Cohere


@pytest.fixture(scope="module")
def _cohere() -> Iterator[CohereSimulator]:
    with CohereSimulator(COHERE_KEY) as server:
        yield server


@pytest.fixture
def cohere(_cohere: CohereSimulator) -> Iterator[CohereSimulator]:
    _cohere.reset()
    yield _cohere
    _cohere.reset()


async def test_cohere_cost_is_billed_units_times_price(cohere: CohereSimulator) -> None:
    # The real capture: tokens 507 in (448 cached) / 10 out; billed_units 12 in / 7 out.
    cohere.enqueue(cohere_protocol.capture("cohere/stream_ok_realcapture.sse"))
    tracer = TokenTracer()
    llm = make_llm("command-a-03-2025", api_key=COHERE_KEY, base_url=cohere.url, tracer=tracer)
    try:
        final = [c async for c in llm.stream_chunks("hi")][-1]
    finally:
        await llm.aclose()
    assert final.usage == Usage(input_tokens=507, output_tokens=10, cached_input_tokens=448,
                                billed_input_tokens=12, billed_output_tokens=7)
    assert llm.tokens_used == {"input": 507, "output": 10}  # tokens, as processed
    (record,) = tracer.records
    assert (record.input_tokens, record.output_tokens) == (507, 10)
    assert price_for("cohere", "command-a-03-2025") == Price(input=2.5, output=10.0)
    assert record.cost_usd == (12 * 2.5 + 7 * 10.0) / 1_000_000  # exactly 0.0001
    assert len(cohere.requests) == 1


async def test_cohere_synthesised_billed_units(cohere: CohereSimulator) -> None:
    cohere.enqueue(cohere_protocol.text_stream(
        ["Hello", "!"], usage_obj=cohere_protocol.usage(300, 2, billed_input=40,
                                                         billed_output=2)))
    tracer = TokenTracer()
    llm = make_llm("command-r-08-2024", api_key=COHERE_KEY, base_url=cohere.url, tracer=tracer)
    try:
        assert await llm.generate("hi") == "Hello!"
    finally:
        await llm.aclose()
    (record,) = tracer.records
    assert record.input_tokens == 300
    assert record.cost_usd == (40 * 0.15 + 2 * 0.6) / 1_000_000


def test_billed_counts_win_over_cache_split() -> None:
    price = Price(input=2.0, output=8.0, cached_input=0.5)
    processed = Usage(input_tokens=1000, output_tokens=10, cached_input_tokens=900)
    assert price.cost(processed) == (100 * 2.0 + 900 * 0.5 + 10 * 8.0) / 1_000_000
    billed = Usage(input_tokens=1000, output_tokens=10, cached_input_tokens=900,
                   billed_input_tokens=20, billed_output_tokens=10)
    assert price.cost(billed) == (20 * 2.0 + 10 * 8.0) / 1_000_000
    only_input = Usage(input_tokens=1000, output_tokens=10, billed_input_tokens=20)
    assert price.cost(only_input) == (20 * 2.0 + 10 * 8.0) / 1_000_000
