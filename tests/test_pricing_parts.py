"""Every billed part, with costs computed by hand: long-context tiers (just under and just
over the boundary), 1-hour vs 5-minute cache writes (decoded from an Anthropic capture and
from Bedrock's ``cacheDetails``), the Bedrock regional premium, Perplexity's request fee,
and the price row + date every traced call records (also in the SQLite ledger)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from synapsekit import TokenTracer
from synapsekit.llm import pricing
from synapsekit.llm.pricing import cost
from synapsekit.llm.providers import bedrock as bedrock_provider
from synapsekit.llm.providers.anthropic import decode as anthropic_decode
from synapsekit.llm.providers.openai_compat import decode as openai_decode
from synapsekit.llm.types import Usage
from synapsekit.testing.simulators.wire import WIRE

M = 1_000_000


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(pricing, "_state", pricing._Registry())
    yield


# ------------------------------------------------------------------ long-context tiers


@pytest.mark.parametrize(
    ("provider", "model", "boundary", "base", "tier"),
    [
        # (input, output, cached) per 1M: base rates, then the rates above the boundary
        ("openai", "gpt-5.4", 272_000, (2.5, 15.0, 0.25), (5.0, 22.5, 0.5)),
        ("openai", "gpt-5.5", 272_000, (5.0, 30.0, 0.5), (10.0, 45.0, 1.0)),
        ("gemini", "gemini-2.5-pro", 200_000, (1.25, 10.0, 0.125), (2.5, 15.0, 0.25)),
        ("gemini", "gemini-3.1-pro-preview", 200_000, (2.0, 12.0, 0.2), (4.0, 18.0, 0.4)),
        ("anthropic", "claude-sonnet-4-5", 200_000, (3.0, 15.0, 0.3), (6.0, 22.5, 0.6)),
        ("anthropic", "claude-sonnet-4-20250514", 200_000, (3.0, 15.0, 0.3), (6.0, 22.5, 0.6)),
    ],
)
def test_the_tier_is_chosen_by_the_calls_input_size(
    provider: str, model: str, boundary: int, base: tuple[float, float, float],
    tier: tuple[float, float, float],
) -> None:
    for size, (rate_in, rate_out, rate_cached) in ((boundary, base), (boundary + 1, tier)):
        usage = Usage(input_tokens=size, cached_input_tokens=10_000, output_tokens=2_000)
        expected = ((size - 10_000) * rate_in + 10_000 * rate_cached + 2_000 * rate_out) / M
        assert cost(provider, model, usage) == pytest.approx(expected, abs=1e-12), size


def test_300k_on_sonnet_4_5_costs_the_long_context_rate_for_the_whole_call() -> None:
    usage = Usage(input_tokens=300_000, output_tokens=1_000)
    assert cost("anthropic", "claude-sonnet-4-5", usage) == pytest.approx(
        (300_000 * 6.0 + 1_000 * 22.5) / M)  # 1.8225, not 0.915
    # a model without a tier keeps one rate at any size
    assert cost("anthropic", "claude-opus-4-6", usage) == pytest.approx(
        (300_000 * 5.0 + 1_000 * 25.0) / M)


# ------------------------------------------------------------------ cache write lifetimes


def _anthropic_capture_usage(cache_creation: dict[str, int]) -> Usage:
    """The usage our decoder builds from stream_ok.sse's message_start / message_delta
    events, with prompt-cache fields as the API sends them (``cache_creation``)."""
    usage: dict[str, object] = {}
    for line in (WIRE / "anthropic" / "stream_ok.sse").read_text().splitlines():
        if not line.startswith("data:"):
            continue
        event = json.loads(line[5:])
        if event["type"] == "message_start":
            raw = dict(event["message"]["usage"])
            raw.update(cache_creation_input_tokens=sum(cache_creation.values()),
                       cache_read_input_tokens=1_000, cache_creation=cache_creation)
            anthropic_decode.take_usage(usage, raw)
        elif event["type"] == "message_delta":
            anthropic_decode.take_usage(usage, event["usage"])
    return anthropic_decode.usage_of(usage)


def test_anthropic_one_hour_cache_writes_cost_twice_the_input_price() -> None:
    usage = _anthropic_capture_usage(
        {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 3_000})
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens) == (5_000, 3_000)
    assert usage.cached_input_tokens == 1_000
    plain = usage.input_tokens - 6_000
    # claude-sonnet-4-6: input 3, 5-minute write 3.75, 1-hour write 6, read 0.3, output 15
    expected = (plain * 3.0 + 1_000 * 0.3 + 2_000 * 3.75 + 3_000 * 6.0
                + usage.output_tokens * 15.0) / M
    assert cost("anthropic", "claude-sonnet-4-6", usage) == pytest.approx(expected, abs=1e-15)
    five_minutes = _anthropic_capture_usage({"ephemeral_5m_input_tokens": 5_000})
    assert five_minutes.cache_write_1h_tokens == 0
    assert cost("anthropic", "claude-sonnet-4-6", usage) - cost(  # type: ignore[operator]
        "anthropic", "claude-sonnet-4-6", five_minutes) == pytest.approx(3_000 * (6.0 - 3.75) / M)


def test_bedrock_cache_details_fill_the_one_hour_part() -> None:
    usage = bedrock_provider._usage({
        "inputTokens": 100, "outputTokens": 50, "cacheReadInputTokens": 400,
        "cacheWriteInputTokens": 1_000,
        "cacheDetails": [{"ttl": "5m", "inputTokens": 600}, {"ttl": "1h", "inputTokens": 400}],
    })
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (
        1_500, 1_000, 400)
    # global profile (no premium), claude-haiku-4-5: 1 in, 0.1 read, 1.25 5m, 2 1h, 5 out
    expected = (100 * 1.0 + 400 * 0.1 + 600 * 1.25 + 400 * 2.0 + 50 * 5.0) / M
    assert cost("bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0", usage) == (
        pytest.approx(expected, abs=1e-15))
    assert bedrock_provider._usage({"inputTokens": 1, "outputTokens": 1}).cache_write_1h_tokens == 0


# ------------------------------------------------------------------ Bedrock regional premium


def test_bedrock_regional_endpoints_cost_ten_percent_more_for_claude_4_5() -> None:
    usage = Usage(input_tokens=10_000, cached_input_tokens=2_000, output_tokens=1_000)
    base = (8_000 * 3.0 + 2_000 * 0.3 + 1_000 * 15.0) / M  # 0.0396
    sonnet = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert cost("bedrock", f"global.{sonnet}", usage) == pytest.approx(base, abs=1e-15)
    for regional in (f"us.{sonnet}", f"eu.{sonnet}", f"apac.{sonnet}", sonnet):
        assert cost("bedrock", regional, usage) == pytest.approx(1.1 * base, abs=1e-15)
    # older models have no premium
    older = Usage(input_tokens=1_000, output_tokens=1_000)
    assert cost("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", older) == (
        pytest.approx((1_000 * 0.8 + 1_000 * 4.0) / M))


# ------------------------------------------------------------------ Perplexity request fee


def test_perplexity_bills_a_fee_per_request_by_search_context_size() -> None:
    tokens = (1_000 * 1.0 + 2_000 * 1.0) / M  # sonar: $1 in, $1 out
    usage = Usage(input_tokens=1_000, output_tokens=2_000)
    assert cost("perplexity", "sonar", usage) == pytest.approx(tokens + 0.005)  # default low
    for size, fee in (("low", 0.005), ("medium", 0.008), ("high", 0.012)):
        sized = Usage(input_tokens=1_000, output_tokens=2_000, search_context_size=size)
        assert cost("perplexity", "sonar", sized) == pytest.approx(tokens + fee)
    pro = Usage(input_tokens=1_000, output_tokens=2_000, search_context_size="high")
    assert cost("perplexity", "sonar-pro", pro) == pytest.approx(
        (1_000 * 3.0 + 2_000 * 15.0) / M + 0.014)
    assert cost("perplexity", "sonar", Usage()) == 0.0  # nothing answered, nothing billed


def test_the_openai_protocol_decoder_keeps_model_and_search_context() -> None:
    usage = openai_decode.usage(
        {"prompt_tokens": 3, "completion_tokens": 4, "search_context_size": "medium"}, "sonar")
    assert (usage.model, usage.search_context_size) == ("sonar", "medium")
    assert openai_decode.usage({"prompt_tokens": 1}).model is None


# ------------------------------------------------------------------ provenance in the trace


def test_each_traced_call_records_its_price_row_and_date(tmp_path: Path) -> None:
    ledger = tmp_path / "calls.db"
    tracer = TokenTracer(ledger=ledger)
    usage = Usage(input_tokens=1_000, output_tokens=100, cache_write_tokens=500,
                  cache_write_1h_tokens=200)
    record = tracer.record(provider="bedrock", model="eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
                           usage=usage, latency_ms=1.0, ttft_ms=None)
    assert record.price_row == "bedrock:anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert record.price_rule == "bedrock profile eu. +10% regional endpoint"
    assert record.price_checked is not None and len(record.price_checked) == 10
    assert record.cache_write_1h_tokens == 200
    expected = 1.1 * (500 * 3.0 + 300 * 3.75 + 200 * 6.0 + 100 * 15.0) / M
    assert record.cost_usd == pytest.approx(expected, abs=1e-15)
    with pytest.warns(pricing.UnknownModelPriceWarning):
        unknown = tracer.record(provider="openai", model="gpt-nobody", usage=usage,
                                latency_ms=1.0, ttft_ms=None)
    assert (unknown.cost_usd, unknown.price_row, unknown.price_checked) == (None, None, None)
    hit = tracer.record(provider="openai", model="gpt-4o", usage=Usage(), latency_ms=0.1,
                        ttft_ms=None, cache_hit=True)
    assert (hit.cost_usd, hit.price_row) == (0.0, None)
    tracer.close()
    assert TokenTracer.load(ledger).records == [record, unknown, hit]
    with sqlite3.connect(ledger) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert "003_price_provenance" in names  # later migrations (004: tool calls) follow it


def test_a_ledger_written_before_the_migration_still_reads_and_upgrades(tmp_path: Path) -> None:
    from synapsekit.observability import ledger as ledger_module

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        for name, statements in ledger_module.MIGRATIONS[:2]:
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
        conn.execute(
            "INSERT INTO calls (provider, model, input_tokens, output_tokens, "
            "cached_input_tokens, cache_write_tokens, reasoning_tokens, latency_ms, ttft_ms, "
            "cache_hit, cost_usd, complete, error, timestamp) "
            "VALUES ('openai', 'gpt-4o', 1, 2, 0, 0, 0, 3.0, NULL, 0, 0.5, 1, NULL, 10.0)")
    (old,) = TokenTracer.load(path).records  # read without the new columns
    assert (old.model, old.price_row, old.cache_write_1h_tokens) == ("gpt-4o", None, 0)
    tracer = TokenTracer(ledger=path)  # opening for writing applies 003
    tracer.record(provider="openai", model="gpt-4o", usage=Usage(input_tokens=1),
                  latency_ms=1.0, ttft_ms=None)
    tracer.close()
    records = TokenTracer.load(path).records
    assert [r.price_row for r in records] == [None, "openai:gpt-4o"]
