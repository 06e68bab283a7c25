"""The price table's rows, one by one: today's models price exactly as their provider's
page says (each expected figure is worked out by hand from the row's rates), retired
models still price, every row says where and when it was checked, and every concrete
model id in models.json has a price (or is listed below with the reason it has none).

Why per row: a cost is only as good as the row behind it, and a row that silently
misses one part (a cache-write rate, a long-context tier, a regional premium) gives a
confident wrong number. docs/tracing.md ("How cost is computed") is the reader's page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from synapsekit.llm import pricing
from synapsekit.llm.types import Usage
from synapsekit.observability import TokenTracer

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT / "synapsekit" / "llm" / "prices.json"
MODELS = ROOT / "synapsekit" / "llm" / "models.json"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
M = 1_000_000

#: Concrete models.json ids that no price source lists: (provider, id) -> why.
KNOWINGLY_UNPRICED: dict[tuple[str, str], str] = {}


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # register_price in other tests must not leak in (and ours must not leak out)
    monkeypatch.setattr(pricing, "_state", pricing._Registry())


def _raw() -> dict[str, object]:
    return json.loads(PRICES.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _u(i: int = 0, o: int = 0, *, cached: int = 0, write: int = 0, write_1h: int = 0,
       reasoning: int = 0, model: str | None = None) -> Usage:
    return Usage(input_tokens=i, output_tokens=o, cached_input_tokens=cached,
                 cache_write_tokens=write, cache_write_1h_tokens=write_1h,
                 reasoning_tokens=reasoning, model=model)


# (provider, model as called, usage, row that must price it, hand-computed USD)
CASES = [
    # OpenAI GPT-6 / GPT-5.6 (cache writes 1.25x input; above 272K input: 2x input and
    # cache, 1.5x output, for the whole call)
    ("openai", "gpt-6-sol", _u(100_000, 5_000, cached=40_000, write=10_000, reasoning=2_000),
     "openai:gpt-6-sol", (50_000 * 2.0 + 40_000 * 0.2 + 10_000 * 2.5 + 5_000 * 10.0) / M),
    ("openai", "gpt-6-sol-2026-09-22", _u(272_000, 1_000), "openai:gpt-6-sol",
     (272_000 * 2.0 + 1_000 * 10.0) / M),  # 0.554: exactly 272K is not above it
    ("openai", "gpt-6-sol", _u(272_001, 1_000), "openai:gpt-6-sol",
     (272_001 * 4.0 + 1_000 * 15.0) / M),  # 1.103004
    ("openai", "gpt-6.2-astra", _u(100_000, 10_000, cached=50_000, write=10_000),
     "openai:gpt-6.2-astra", (40_000 * 8.0 + 50_000 * 0.4 + 10_000 * 10.0 + 10_000 * 40.0) / M),
    ("openai", "gpt-6.2-sol", _u(300_000, 1_000, cached=100_000), "openai:gpt-6.2-sol",
     (200_000 * 4.0 + 100_000 * 0.2 + 1_000 * 15.0) / M),  # 0.835: above 272K
    ("openai", "gpt-6-luna", _u(200_000, 100_000, cached=100_000), "openai:gpt-6-luna",
     (100_000 * 0.1 + 100_000 * 0.01 + 100_000 * 0.5) / M),  # 0.061
    ("openai", "gpt-6-luna", _u(1_000_000, 100_000, cached=500_000), "openai:gpt-6-luna",
     (500_000 * 0.2 + 500_000 * 0.02 + 100_000 * 0.75) / M),  # 0.185: the long-context tier
    ("openai", "gpt-6-astra-2026-09-03", _u(10_000, 1_000), "openai:gpt-6-astra", 0.15),
    ("openai", "gpt-6.1-sol", _u(10_000, 1_000, cached=10_000), "openai:gpt-6.1-sol",
     (10_000 * 0.1 + 1_000 * 10.0) / M),  # 0.011
    ("openai", "gpt-6.1-terra", _u(2_000, 2_000), "openai:gpt-6.1-terra",
     (2_000 * 1.0 + 2_000 * 5.0) / M),
    ("openai", "gpt-5.6", _u(1_000, 1_000), "openai:gpt-5.6-sol", (1_000 * 4.0 + 1_000 * 20.0) / M),
    ("openai", "gpt-5.6-terra-2026-07-09", _u(1_000, 1_000), "openai:gpt-5.6-terra",
     (1_000 * 2.0 + 1_000 * 12.0) / M),
    ("openai", "gpt-5.6-luna", _u(1_000, 1_000), "openai:gpt-5.6-luna",
     (1_000 * 0.2 + 1_000 * 1.2) / M),
    ("openai", "gpt-5.5-pro", _u(300_000, 1_000), "openai:gpt-5.5-pro",
     (300_000 * 60.0 + 1_000 * 270.0) / M),  # 18.27
    ("openai", "gpt-5-pro-2025-10-06", _u(1_000, 1_000), "openai:gpt-5-pro", 0.135),
    # Azure: priced by the model the response names, from the OpenAI list price
    ("azure", "prod-chat", _u(1_000, 1_000, model="gpt-6-sol-2026-09-22"), "openai:gpt-6-sol",
     (1_000 * 2.0 + 1_000 * 10.0) / M),
    # Anthropic: 5-minute and 1-hour cache writes, cache reads
    ("anthropic", "claude-opus-5-5", _u(20_000, 3_000, cached=5_000, write=4_000, write_1h=1_000),
     "anthropic:claude-opus-5-5",
     (11_000 * 4.0 + 5_000 * 0.2 + 3_000 * 5.0 + 1_000 * 8.0 + 3_000 * 20.0) / M),  # 0.128
    ("anthropic", "claude-sonnet-5-5", _u(10_000, 1_000, cached=8_000),
     "anthropic:claude-sonnet-5-5", (2_000 * 2.0 + 8_000 * 0.1 + 1_000 * 10.0) / M),
    # Haiku 5.5: every rate 5x for a prompt over 100,000 tokens (cache reads and writes count)
    ("anthropic", "claude-haiku-5-5", _u(100_000, 1_000), "anthropic:claude-haiku-5-5",
     (100_000 * 0.1 + 1_000 * 0.5) / M),  # 0.0105
    ("anthropic", "claude-haiku-5-5", _u(100_001, 1_000), "anthropic:claude-haiku-5-5",
     (100_001 * 0.5 + 1_000 * 2.5) / M),  # 0.0525005
    ("anthropic", "claude-haiku-5-5", _u(150_000, cached=50_000, write=20_000, write_1h=20_000),
     "anthropic:claude-haiku-5-5", (80_000 * 0.5 + 50_000 * 0.05 + 20_000 * 1.0) / M),
    ("anthropic", "claude-fable-5-1", _u(10_000, 100, cached=10_000), "anthropic:claude-fable-5-1",
     (10_000 * 0.25 + 100 * 50.0) / M),  # 0.0075
    ("anthropic", "claude-fable-5-2", _u(1_000, 1_000), "anthropic:claude-fable-5-2", 0.048),
    ("anthropic", "claude-mythos-5", _u(1_000, 1_000, cached=1_000), "anthropic:claude-mythos-5",
     (1_000 * 1.0 + 1_000 * 50.0) / M),
    # Bedrock: Anthropic's list price through global., +10% everywhere else
    ("bedrock", "global.anthropic.claude-opus-5-5", _u(1_000, 1_000),
     "bedrock:anthropic.claude-opus-5-5", (1_000 * 4.0 + 1_000 * 20.0) / M),
    ("bedrock", "us.anthropic.claude-opus-5-5", _u(1_000, 1_000),
     "bedrock:anthropic.claude-opus-5-5", (1_000 * 4.0 + 1_000 * 20.0) * 1.1 / M),  # 0.0264
    ("bedrock", "eu.anthropic.claude-haiku-5-5", _u(200_000), "bedrock:anthropic.claude-haiku-5-5",
     200_000 * 0.5 * 1.1 / M),  # 0.11
    ("bedrock", "amazon.nova-premier-v1:0", _u(1_000, 1_000, cached=1_000),
     "bedrock:amazon.nova-premier-v1:0", (1_000 * 0.625 + 1_000 * 12.5) / M),
    # Gemini: thinking billed as output
    ("gemini", "gemini-4-argon", _u(10_000, 1_000, cached=2_000, reasoning=500),
     "gemini:gemini-4-argon", (8_000 * 4.0 + 2_000 * 0.2 + 1_000 * 20.0) / M),  # 0.0524
    ("gemini", "models/gemini-4-hydrogen", _u(1_000, 1_000), "gemini:gemini-4-hydrogen",
     (1_000 * 1.5 + 1_000 * 7.5) / M),
    ("gemini", "gemini-3-flash-preview", _u(1_000, 1_000), "gemini:gemini-3-flash-preview", 0.0035),
    ("gemini", "gemini-3.8-flash", _u(1_000, 1_000), "gemini:gemini-3.8-flash", 0.0045),
    ("gemini", "gemini-3-pro-preview", _u(200_001, 1_000), "gemini:gemini-3-pro-preview",
     (200_001 * 4.0 + 1_000 * 18.0) / M),
    # DeepSeek V4 (peak rates)
    ("deepseek", "deepseek-v4-pro", _u(1_000_000, 10_000, cached=900_000),
     "deepseek:deepseek-v4-pro", (100_000 * 1.32 + 900_000 * 0.044 + 10_000 * 3.96) / M),
    ("deepseek", "deepseek-flash", _u(1_000, 1_000), "deepseek:deepseek-flash", 0.0015),
    ("deepseek", "deepseek-v4-flash", _u(1_000, 1_000), "deepseek:deepseek-flash", 0.0015),
    ("deepseek", "deepseek-v4-flash-vision-exp", _u(1_000, 1_000), "deepseek:deepseek-flash",
     0.0015),
    # Mistral
    ("mistral", "mistral-large-4-0", _u(1_000, 1_000, cached=1_000), "mistral:mistral-large-4",
     (1_000 * 0.07 + 1_000 * 2.1) / M),
    ("mistral", "mistral-medium-latest", _u(1_000, 1_000), "mistral:mistral-medium-3-5", 0.009),
    ("mistral", "magistral-medium-2507", _u(1_000, 1_000), "mistral:magistral-medium-2507", 0.007),
    ("mistral", "ministral-8b-latest", _u(1_000, 1_000), "mistral:ministral-3-8b-2512", 0.0003),
    # open-weight hosts
    ("groq", "qwen/qwen3.8-27b", _u(1_000, 1_000), "groq:qwen/qwen3.8-27b", 0.0048),
    ("cerebras", "qwen-3.8-27b", _u(1_000, 1_000), "cerebras:qwen-3.8-27b", 0.00248),
    ("together", "deepseek-ai/DeepSeek-V4-Pro-0813", _u(1_000, 1_000),
     "together:deepseek-ai/deepseek-v4-pro-0813", 0.00528),
    ("fireworks", "accounts/fireworks/models/glm-5p1", _u(10_000, 1_000, cached=5_000),
     "fireworks:glm-5p1", (5_000 * 1.4 + 5_000 * 0.26 + 1_000 * 4.4) / M),  # 0.0127
    # OpenRouter: vendor pass-through by OpenRouter's dotted name; its own row first
    ("openrouter", "anthropic/claude-opus-5.5", _u(1_000, 1_000), "anthropic:claude-opus-5-5",
     0.024),
    ("openrouter", "openai/gpt-6-sol", _u(1_000, 1_000), "openai:gpt-6-sol", 0.012),
    ("openrouter", "google/gemini-4-argon", _u(1_000, 1_000), "openrouter:google/gemini-4-argon",
     0.024),
]


@pytest.mark.parametrize(("provider", "model", "usage", "row", "usd"), CASES,
                         ids=[f"{c[0]}:{c[1]}:{c[2].input_tokens}" for c in CASES])
def test_todays_models_price_as_their_page_says(
        provider: str, model: str, usage: Usage, row: str, usd: float) -> None:
    cost, quote = pricing.priced(provider, model, usage)
    assert quote is not None and quote.row == row
    assert cost == pytest.approx(usd, rel=1e-12, abs=1e-15)


def test_every_row_records_its_own_source_and_checked_date() -> None:
    raw = _raw()
    updated = str(raw["updated"])
    rows = [(p, r) for p, table in raw["models"].items() for r in table]  # type: ignore[attr-defined]
    assert len(rows) > 200
    for provider, row in rows:
        where = f"{provider}:{row['ids'][0]}"
        assert str(row.get("source", "")).startswith("https://"), where
        assert DATE.match(str(row.get("checked", ""))) and row["checked"] <= updated, where
    for provider, meta in raw["providers"].items():  # type: ignore[attr-defined]
        assert DATE.match(meta["checked"]) and meta["note"], provider


def test_every_listed_id_prices_through_its_own_row() -> None:
    # names are exact: each id of a row reaches that row (no other row claims it)
    for row in pricing._rows():
        for name in row.ids:
            found = pricing.quote(row.provider, name)
            assert found is not None and found.row == f"{row.provider}:{row.ids[0]}", name


def test_retired_rows_still_price_and_carry_their_shutdown_date() -> None:
    raw = _raw()
    retired = [(p, r) for p, table in raw["models"].items()  # type: ignore[attr-defined]
               for r in table if r.get("retired")]
    assert len(retired) >= 25
    for provider, row in retired:
        for name in row["ids"]:
            cost, quote = pricing.priced(provider, name, _u(1_000, 1_000))
            assert quote is not None and quote.retired, name
            assert quote.retired_on == (row["retired"] if isinstance(row["retired"], str)
                                        else None), name
            expected = (1_000 * row["input"] + 1_000 * row["output"]) / M
            if row.get("regional_premium"):  # a bare Bedrock id is an in-region call
                expected *= 1 + row["regional_premium"]
            if isinstance(row.get("request"), dict):  # Perplexity: the default "low" fee
                expected += row["request"]["low"]
            assert cost == pytest.approx(expected, rel=1e-12), name
    chat = pricing.quote("deepseek", "deepseek-chat")
    assert chat is not None and (chat.retired, chat.retired_on) == (True, "2026-07-24")
    assert pricing.cost("deepseek", "deepseek-chat", _u(1_000, 1_000)) == pytest.approx(
        (1_000 * 0.28 + 1_000 * 0.42) / M, rel=1e-12)
    current = pricing.quote("deepseek", "deepseek-v4-pro")
    assert current is not None and (current.retired, current.retired_on) == (False, None)


def test_retired_must_be_true_or_a_date() -> None:
    meta = {"checked": "2026-01-01", "source": "https://example.com/pricing"}
    assert pricing._row("x", {"ids": ["a"], "input": 1, "output": 2, "retired": "2026-07-24"},
                        meta).retired_on == "2026-07-24"
    fallback = pricing._row("x", {"ids": ["a"], "input": 1, "output": 2}, meta)
    assert (fallback.checked, fallback.source, fallback.retired) == (
        "2026-01-01", "https://example.com/pricing", False)
    with pytest.raises(ValueError, match="retired must be"):
        pricing._row("x", {"ids": ["a"], "input": 1, "output": 2, "retired": "soon"}, meta)


def test_the_trace_shows_the_date_of_the_row_that_priced_the_call() -> None:
    tracer = TokenTracer()
    new = tracer.record(provider="anthropic", model="claude-opus-5-5", usage=_u(1_000, 1_000))
    assert (new.price_row, new.price_checked) == ("anthropic:claude-opus-5-5", "2026-12-02")
    assert new.cost_usd == pytest.approx(0.024, rel=1e-12)
    # a row checked on another day than its provider's note shows its own date
    old = tracer.record(provider="openai", model="gpt-4o", usage=_u(1_000, 1_000))
    assert _raw()["providers"]["openai"]["checked"] == "2026-12-02"  # type: ignore[index]
    assert (old.price_row, old.price_checked) == ("openai:gpt-4o", "2026-11-20")
    gone = tracer.record(provider="deepseek", model="deepseek-reasoner", usage=_u(1_000, 1_000))
    assert (gone.price_row, gone.price_checked) == ("deepseek:deepseek-reasoner", "2026-12-02")


def _concrete_model_ids() -> list[tuple[str, str]]:
    raw = json.loads(MODELS.read_text(encoding="utf-8"))
    found = set()
    for row in raw["models"]:
        for provider in row["providers"]:
            for name in row["models"]:
                if provider != "ollama" and not any(c in name for c in "*?["):
                    found.add((provider, name.lower()))
    return sorted(found)


def test_concrete_models_json_ids_are_priced() -> None:
    ids = _concrete_model_ids()
    assert ("mistral", "mistral-large-4") in ids and ("openai", "gpt-5-pro") in ids
    unpriced = [pid for pid in ids if pricing.quote(*pid) is None and pid not in KNOWINGLY_UNPRICED]
    assert unpriced == []
    # an entry here that gained a price must leave the list
    assert [pid for pid in KNOWINGLY_UNPRICED if pricing.quote(*pid) is not None] == []


@pytest.mark.parametrize(("provider", "model"), [
    ("anthropic", "claude-opus-latest"),      # floating aliases move between models
    ("gemini", "gemini-flash-latest"),
    ("openai", "gpt-sol-latest"),
    ("mistral", "magistral-medium-latest"),
    ("bedrock", "us-gov.anthropic.claude-opus-5-5"),  # GovCloud bills other prices
    ("cohere", "command-a-plus-05-2026"),     # no confirmed per-token price
    ("openrouter", "deepseek/deepseek-v4-pro"),  # OpenRouter's price is not DeepSeek's peak
])
def test_names_without_a_confirmed_price_stay_unknown(provider: str, model: str) -> None:
    assert pricing.quote(provider, model) is None
