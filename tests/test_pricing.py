"""Prices: golden costs computed by hand, name fallback, unknown models, user prices, data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from synapsekit.errors import ConfigError
from synapsekit.llm import pricing
from synapsekit.llm.pricing import Price, UnknownModelPriceWarning, cost, price_for, register_price
from synapsekit.llm.registry import PROVIDERS
from synapsekit.llm.types import Usage

M = 1_000_000


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """User prices, resolved lookups and warned-about models start empty in every test."""
    monkeypatch.setattr(pricing, "_state", pricing._Registry())
    yield


def _data() -> dict[str, Any]:
    text = resources.files("synapsekit.llm").joinpath("prices.json").read_text("utf-8")
    raw: dict[str, Any] = json.loads(text)
    return raw


# ------------------------------------------------------------------ golden costs


def test_openai_gpt4o_cached_input_is_half_price() -> None:
    usage = Usage(input_tokens=10_000, cached_input_tokens=4_000, output_tokens=500)
    expected = (6_000 * 2.50 + 4_000 * 1.25 + 500 * 10.00) / M  # 0.025
    assert cost("openai", "gpt-4o", usage) == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx(0.025)


def test_openai_gpt41_cached_input_is_a_quarter() -> None:
    usage = Usage(input_tokens=20_000, cached_input_tokens=10_000, output_tokens=1_000)
    expected = (10_000 * 2.00 + 10_000 * 0.50 + 1_000 * 8.00) / M  # 0.033
    assert cost("openai", "gpt-4.1", usage) == pytest.approx(expected, abs=1e-15)


def test_openai_gpt5_cached_tenth_and_reasoning_billed_as_output() -> None:
    usage = Usage(input_tokens=100_000, cached_input_tokens=80_000, output_tokens=2_000,
                  reasoning_tokens=1_500)
    expected = (20_000 * 1.25 + 80_000 * 0.125 + 2_000 * 10.00) / M  # 0.055
    assert cost("openai", "gpt-5-2025-08-07", usage) == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx(0.055)


def test_o_series_reasoning_tokens_cost_output_price() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=5_000, reasoning_tokens=4_000)
    expected = (1_000 * 1.10 + 5_000 * 4.40) / M  # 0.0231
    assert cost("openai", "o3-mini", usage) == pytest.approx(expected, abs=1e-15)


def test_anthropic_cache_read_tenth_and_cache_write_one_and_a_quarter() -> None:
    usage = Usage(input_tokens=12_000, cached_input_tokens=8_000, cache_write_tokens=3_000,
                  output_tokens=700)
    # 1,000 plain input at $3, 8,000 read at $0.30, 3,000 written at $3.75, 700 out at $15
    expected = (1_000 * 3.00 + 8_000 * 0.30 + 3_000 * 3.75 + 700 * 15.00) / M  # 0.02715
    assert cost("anthropic", "claude-sonnet-4-5-20250929", usage) == pytest.approx(
        expected, abs=1e-15)
    assert cost("anthropic", "claude-sonnet-4-6", usage) == pytest.approx(expected, abs=1e-15)
    price = price_for("anthropic", "claude-sonnet-4-6")
    assert price is not None and price.cached_input == pytest.approx(0.1 * price.input)
    assert price.cache_write == pytest.approx(1.25 * price.input)


def test_gemini_flash_thoughts_billed_as_output_and_cache_read() -> None:
    usage = Usage(input_tokens=5_000, cached_input_tokens=1_000, output_tokens=3_000,
                  reasoning_tokens=2_000)
    expected = (4_000 * 0.30 + 1_000 * 0.03 + 3_000 * 2.50) / M  # 0.00873
    assert cost("gemini", "gemini-2.5-flash", usage) == pytest.approx(expected, abs=1e-15)


def test_deepseek_cache_hit_and_reasoner() -> None:
    usage = Usage(input_tokens=10_000, cached_input_tokens=6_000, output_tokens=3_000,
                  reasoning_tokens=2_500)
    expected = (4_000 * 0.28 + 6_000 * 0.028 + 3_000 * 0.42) / M  # 0.002548
    assert cost("deepseek", "deepseek-reasoner", usage) == pytest.approx(expected, abs=1e-15)
    hit_only = Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000)
    assert cost("deepseek", "deepseek-chat", hit_only) == pytest.approx(0.028, abs=1e-15)


def test_an_explicit_reasoning_price_is_used() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=1_000, reasoning_tokens=400)
    expected = (1_000 * 2.0 + 600 * 8.0 + 400 * 3.0) / M  # 0.008
    assert cost("perplexity", "sonar-deep-research", usage) == pytest.approx(expected, abs=1e-15)


def test_inconsistent_counts_are_clamped_never_negative() -> None:
    usage = Usage(input_tokens=100, cached_input_tokens=300, output_tokens=10,
                  reasoning_tokens=50)
    # all 100 input tokens billed as cached, all 10 output as (reasoning at) output price
    assert cost("openai", "gpt-4o", usage) == pytest.approx((100 * 1.25 + 10 * 10.0) / M)


# ------------------------------------------------------------------ explicit names

#: (provider, name as called, the row that must price it: "provider:first id", the rule)
ROWS = [
    # each alias and each dated snapshot that shares its row's price
    ("openai", "gpt-4o", "openai:gpt-4o", "exact"),
    ("openai", "gpt-4o-2024-08-06", "openai:gpt-4o", "exact"),
    ("openai", "GPT-4o-2024-11-20", "openai:gpt-4o", "exact"),
    ("openai", "gpt-4o-mini-2024-07-18", "openai:gpt-4o-mini", "exact"),
    ("openai", "gpt-4.1-2025-04-14", "openai:gpt-4.1", "exact"),
    ("openai", "gpt-5-2025-08-07", "openai:gpt-5", "exact"),
    ("openai", "gpt-3.5-turbo-0125", "openai:gpt-3.5-turbo", "exact"),
    # dated snapshots with a price of their own have their own row
    ("openai", "gpt-4o-2024-05-13", "openai:gpt-4o-2024-05-13", "exact"),
    ("openai", "gpt-3.5-turbo-0613", "openai:gpt-3.5-turbo-0613", "exact"),
    ("anthropic", "claude-sonnet-4-5-20250929", "anthropic:claude-sonnet-4-5", "exact"),
    ("anthropic", "claude-sonnet-4-0", "anthropic:claude-sonnet-4-20250514", "exact"),
    ("anthropic", "claude-3-5-haiku-latest", "anthropic:claude-3-5-haiku-20241022", "exact"),
    ("gemini", "models/gemini-2.5-pro", "gemini:gemini-2.5-pro", "exact"),
    ("gemini", "gemini-2.0-flash-001", "gemini:gemini-2.0-flash", "exact"),
    ("cohere", "command-a-03-2025", "cohere:command-a", "exact"),
    ("cohere", "command-r-plus-04-2024", "cohere:command-r-plus-04-2024", "exact"),
    ("mistral", "mistral-large-latest", "mistral:mistral-large-2512", "exact"),
    ("mistral", "mistral-large-2411", "mistral:mistral-large-2411", "exact"),
    ("mistral", "mistral-small-latest", "mistral:mistral-small-2603", "exact"),
    ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct",
     "fireworks:llama-v3p1-8b-instruct", "exact"),
    # router-style ids
    ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0",
     "bedrock:anthropic.claude-3-5-haiku-20241022-v1:0", "exact"),
    ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0",
     "bedrock:anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock profile us."),
    ("bedrock", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
     "bedrock:anthropic.claude-sonnet-4-5-20250929-v1:0",
     "bedrock profile eu. +10% regional endpoint"),
    ("bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
     "bedrock:anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock profile global."),
    ("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0",
     "bedrock:anthropic.claude-sonnet-4-5-20250929-v1:0", "exact +10% regional endpoint"),
    ("bedrock", "apac.amazon.nova-pro-v1:0", "bedrock:amazon.nova-pro-v1:0",
     "bedrock profile apac."),
    ("azure", "gpt-4.1-mini", "openai:gpt-4.1-mini", "azure deployment name, OpenAI list price"),
    ("azure", "gpt-4o", "azure:gpt-4o", "azure deployment name"),
    ("openrouter", "anthropic/claude-sonnet-4.5", "anthropic:claude-sonnet-4-5",
     "openrouter pass-through"),
    ("openrouter", "openai/gpt-4o-2024-08-06", "openai:gpt-4o", "openrouter pass-through"),
    ("openrouter", "google/gemini-2.5-flash", "gemini:gemini-2.5-flash",
     "openrouter pass-through"),
    ("openrouter", "mistralai/mistral-large", "openrouter:mistralai/mistral-large", "exact"),
    ("openrouter", "openai/gpt-4o-2024-05-13", "openrouter:openai/gpt-4o-2024-05-13", "exact"),
]


@pytest.mark.parametrize(("provider", "model", "row", "rule"), ROWS)
def test_each_listed_name_reaches_its_row(provider: str, model: str, row: str,
                                          rule: str) -> None:
    found = pricing.quote(provider, model)
    assert found is not None, (provider, model)
    assert (found.row, found.rule) == (row, rule)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", found.checked or "")


def test_the_issue_cases_get_their_own_price_not_a_siblings() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost("openai", "gpt-4o", usage) == pytest.approx(2.5 + 10.0)
    assert cost("openai", "gpt-4o-2024-05-13", usage) == pytest.approx(5.0 + 15.0)
    assert cost("openai", "gpt-3.5-turbo", usage) == pytest.approx(0.5 + 1.5)
    assert cost("openai", "gpt-3.5-turbo-0613", usage) == pytest.approx(1.5 + 2.0)
    assert cost("openrouter", "mistralai/mistral-large", usage) == pytest.approx(2.0 + 6.0)
    assert cost("mistral", "mistral-large-latest", usage) == pytest.approx(0.5 + 1.5)
    quote = pricing.quote("openai", "gpt-3.5-turbo-0613")
    assert quote is not None and quote.retired


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("mistral", "mistral-large-2402"),  # no verified price: unknown, never Large 3
        ("mistral", "mistral-large"),  # not a Mistral id
        ("openai", "gpt-4o-2099-01-01"),  # an unlisted snapshot is not gpt-4o
        ("openai", "gpt-4o-turbo-preview-x"),
        ("openai", "gpt-4o-audio"),
        ("anthropic", "claude-sonnet-4-7"),  # never priced as claude-sonnet-4
        ("anthropic", "claude-sonnet-4"),  # not an Anthropic id
        ("gemini", "gemini-2.5-flash-image"),  # never priced as gemini-2.5-flash
        ("gemini", "gemini-2.5-flash-preview-05-20"),
        ("azure", "my-deployment"),
        ("bedrock", "xx.anthropic.claude-3-5-haiku-20241022-v1:0"),  # not a profile prefix
        ("bedrock", "anthropic.claude-sonnet-4-5"),  # not a Bedrock id
        ("openrouter", "mistralai/mistral-large-2402"),
        ("openrouter", "someone/gpt-4o"),  # not a pass-through vendor
    ],
)
def test_names_no_row_lists_are_unknown(provider: str, model: str) -> None:
    assert price_for(provider, model) is None
    with pytest.warns(UnknownModelPriceWarning, match="register_price"):
        assert cost(provider, model, Usage(input_tokens=1, output_tokens=1)) is None


def test_azure_is_priced_by_the_model_the_response_reports() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, model="gpt-4o-2024-05-13")
    cost_usd, quote = pricing.priced("azure", "prod-chat", usage)
    assert cost_usd == pytest.approx(5.0 + 15.0)
    assert quote is not None and quote.row == "openai:gpt-4o-2024-05-13"
    assert quote.rule == "azure reported model, OpenAI list price"
    # a deployment named after one model but serving another is priced by what answered
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, model="gpt-4o-mini-2024-07-18")
    assert cost("azure", "gpt-4o", usage) == pytest.approx(0.15 + 0.6)
    # the reported model only matters on Azure
    assert cost("openai", "gpt-4o", usage) == pytest.approx(2.5 + 10.0)


def test_row_ids_are_unique_and_point_somewhere() -> None:
    seen: dict[tuple[str, str], str] = {}
    for row in pricing._rows():
        for name in row.ids:
            assert (row.provider, name) not in seen, (row.provider, name)
            seen[(row.provider, name)] = row.ids[0]
    assert len(seen) >= 190


def test_siblings_keep_their_own_price() -> None:
    mini, full = price_for("openai", "gpt-4o-mini"), price_for("openai", "gpt-4o")
    assert mini is not None and full is not None and mini != full
    assert price_for("openai", "gpt-5.4") != price_for("openai", "gpt-5")


def test_ollama_and_openrouter_free_models_cost_zero_without_warning() -> None:
    usage = Usage(input_tokens=123, output_tokens=45)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cost("ollama", "llama3.2:1b", usage) == 0.0
        assert cost("ollama", "some-local-finetune", usage) == 0.0
        assert cost("openrouter", "meta-llama/llama-3.2-3b-instruct:free", usage) == 0.0


# ------------------------------------------------------------------ unknown models


def test_unknown_model_is_none_with_exactly_one_warning() -> None:
    model = f"mystery-{uuid.uuid4().hex[:8]}"
    usage = Usage(input_tokens=10, output_tokens=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [cost("openai", model, usage) for _ in range(3)]
    assert results == [None, None, None]
    unknown = [w for w in caught if issubclass(w.category, UnknownModelPriceWarning)]
    assert len(unknown) == 1
    text = str(unknown[0].message)
    assert model in text and "register_price" in text and "openai" in text
    assert issubclass(UnknownModelPriceWarning, UserWarning)


def test_the_same_name_on_another_provider_warns_separately() -> None:
    model = f"mystery-{uuid.uuid4().hex[:8]}"
    with pytest.warns(UnknownModelPriceWarning):
        assert cost("groq", model, Usage()) is None
    with pytest.warns(UnknownModelPriceWarning):
        assert cost("together", model, Usage()) is None


# ------------------------------------------------------------------ user prices


def test_register_price_overrides_the_packaged_price() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost("openai", "gpt-4o", usage) == pytest.approx(12.5)
    register_price("gpt-4o", provider="openai", input=1.0, output=2.0)
    assert cost("openai", "gpt-4o", usage) == pytest.approx(3.0)
    # names are exact: a dated snapshot keeps its packaged row
    assert cost("openai", "gpt-4o-2024-08-06", usage) == pytest.approx(12.5)
    quote = pricing.quote("openai", "gpt-4o")
    assert quote is not None and (quote.row, quote.checked) == ("user:gpt-4o", None)
    # other providers keep theirs
    assert cost("azure", "gpt-4o", usage) == pytest.approx(12.5)


def test_register_price_without_provider_applies_everywhere_provider_specific_wins() -> None:
    usage = Usage(input_tokens=2_000_000, output_tokens=1_000_000, cached_input_tokens=1_000_000)
    register_price("house-model", input=1.0, output=4.0, cached_input=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cost("together", "house-model", usage) == pytest.approx(1.0 + 0.5 + 4.0)
        assert cost("fireworks", "house-model", usage) == pytest.approx(5.5)
    register_price("house-model", provider="fireworks", input=0.0, output=1.0)
    assert cost("fireworks", "house-model", usage) == pytest.approx(1.0)
    assert cost("together", "house-model", usage) == pytest.approx(5.5)


def test_registering_an_unknown_model_makes_it_known() -> None:
    model = f"mystery-{uuid.uuid4().hex[:8]}"
    assert price_for("azure", model) is None
    register_price(model, provider="azure", input=2.0, output=8.0, cache_write=2.5,
                   reasoning=9.0)
    assert price_for("azure", model) == Price(input=2.0, output=8.0, cache_write=2.5,
                                              reasoning=9.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input": -1.0, "output": 1.0},
        {"input": float("nan"), "output": 1.0},
        {"input": 1.0, "output": "2"},
        {"input": True, "output": 1.0},
        {"input": 1.0, "output": 1.0, "cached_input": -0.1},
        {"input": 1.0, "output": 1.0, "provider": "no-such-provider"},
    ],
)
def test_register_price_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        register_price("m", **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the data file

#: A representative default model per provider (the parity walk's models; Azure prices a
#: deployment named after its model).
DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "azure": "gpt-4o-mini",
    "groq": "llama-3.3-70b-versatile",
    "deepseek": "deepseek-chat",
    "openrouter": "meta-llama/llama-3.3-70b-instruct",
    "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "fireworks": "accounts/fireworks/models/llama-v3p1-8b-instruct",
    "perplexity": "sonar",
    "cerebras": "llama3.1-8b",
    "anthropic": "claude-sonnet-4-6",
    "gemini": "gemini-2.5-flash",
    "cohere": "command-a-03-2025",
    "mistral": "mistral-small-latest",
    "ollama": "llama3.2",
    "bedrock": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
}


def test_every_provider_in_the_registry_has_a_priced_default_model() -> None:
    assert set(DEFAULT_MODELS) == set(PROVIDERS)
    for name, spec in PROVIDERS.items():
        model = getattr(spec, "default_model", None) or DEFAULT_MODELS[name]
        assert price_for(name, model) is not None, (name, model)


def test_data_file_is_dated_sourced_and_noted_for_every_provider() -> None:
    data = _data()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(data["updated"]))
    assert pricing.PRICES_DATE == data["updated"] == pricing.prices_date()
    for section in ("providers", "models"):
        assert set(data[section]) == set(PROVIDERS), section
    for provider, meta in data["providers"].items():
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta["checked"]), provider
        assert meta["source"] and meta["note"], provider
    rates = {"input", "output", "cached_input", "cache_write", "cache_write_1h", "reasoning"}
    for table in data["models"].values():
        assert isinstance(table, list)
        for entry in table:
            assert entry["ids"] and all(n == n.lower() for n in entry["ids"]), entry
            assert set(entry) <= rates | {"ids", "request", "tiers", "regional_premium",
                                          "retired", "checked", "source", "note",
                                          "openrouter"}, entry
            assert {"input", "output"} <= set(entry), entry
            assert all(isinstance(entry[k], (int, float)) and entry[k] >= 0
                       for k in rates & set(entry))


def test_the_data_file_is_read_lazily_not_at_import() -> None:
    code = (
        "import synapsekit.llm.pricing as p\n"
        "before = p._tables.cache_info().currsize\n"
        "p.price_for('openai', 'gpt-4o')\n"
        "print(before, p._tables.cache_info().currsize)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["0", "1"]
