"""Model capabilities as data (synapsekit/llm/models.py :func:`profile`): the sizes of
``models.json``'s ``limits`` rows, the provider class's capabilities narrowed by the model's
request rules, and the price of :func:`pricing.quote`; what a request needs
(:func:`needs_of`), why a model cannot serve it (:meth:`ModelProfile.why_not`) and what it
can cost at most (:meth:`ModelProfile.worst_case_usd`), with exact reasons and exact USD.

The request-validation tests go through the real openai SDK to the OpenAI simulator: what a
profile says a model cannot take is refused before any request (the simulator counts zero),
what it can take reaches the simulator once.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapsekit import LLMConfig, make_llm
from synapsekit.errors import UnsupportedFeatureError
from synapsekit.llm import models, pricing
from synapsekit.llm.content import Capabilities
from synapsekit.llm.models import (
    ModelProfile,
    RequestNeeds,
    needs_of,
    profile,
    profile_for,
    request_rules,
)
from synapsekit.llm.ratelimit import PART_TOKENS, estimate_tokens
from synapsekit.llm.registry import PROVIDERS, provider_class
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import OutputSchema, Usage
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, text_stream
from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"
WEATHER = Tool(name="weather", description="The weather in a city.",
               parameters={"type": "object", "properties": {"city": {"type": "string"}}})
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}


def _needs(**given: Any) -> RequestNeeds:
    return RequestNeeds(**{"input_tokens": 10, "max_tokens": 100, **given})


# ----------------------------------------------------------------------- the data


def test_every_limits_row_names_its_source_and_date() -> None:
    rows = models.limit_rows()
    assert len(rows) >= 12
    for row in rows:
        assert re.search(r"https?://|github|PR \d+", row["source"]), row["family"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["checked"]), row["family"]
        for name in ("context_window", "max_output"):
            value = row["limits"][name]
            assert value is None or (type(value) is int and value > 0), (row["family"], name)
        assert "*" not in row["models"][0], row["family"]  # the docs row shows a real name


def test_every_limits_row_is_reachable() -> None:
    """No size row is shadowed: each of its names, on each of its providers, gets its own
    figures (first matching limits row wins, as request rules do)."""
    for row in models.limit_rows():
        for pattern in row["models"]:
            name = pattern.replace("*", "x")
            if any(fnmatch.fnmatchcase(name, ex) for ex in row.get("exclude", [])):
                continue
            for provider in row["providers"]:
                found = models.model_limits(provider, name)
                assert found is not None and found.row == row["family"], (provider, pattern)


def test_size_rows_leave_the_request_rules_alone() -> None:
    """A limits row matches its own section only: gpt-4o keeps the ``openai`` family's
    rules, o3 the reasoning family's, and a limits-only row is no request row."""
    assert request_rules("openai", "gpt-4o").family == "openai"
    assert request_rules("openai", "o3").family == "openai-reasoning"
    assert request_rules("anthropic", "claude-opus-5").family == "claude-adaptive"
    families = {row["family"] for row in models.model_rows()}
    assert not {"gpt-4o", "gpt-4o-mini", "claude-opus-5"} & families
    assert all("request" in row for row in models.model_rows())


def test_a_limits_row_without_a_source_is_refused_at_load() -> None:
    row = {"family": "x", "limits": {"context_window": 10, "max_output": None}, "checked": "d"}
    with pytest.raises(ValueError, match="needs its source and checked"):
        models._limits_section("models[0] (x)", row)
    with pytest.raises(ValueError, match="unknown limits fields"):
        models._limits_section("models[0] (x)", {**row, "source": "s", "limits": {"ctx": 1}})
    with pytest.raises(ValueError, match="must be a positive int or null"):
        models._limits_section("w", {**row, "source": "s", "limits": {"max_output": 0}})
    found = models._limits_section("w", {**row, "source": "https://example.com"})
    assert (found.context_window, found.max_output, found.row) == (10, None, "x")


# ----------------------------------------------------------------------- profiles


def test_profile_of_gpt_4o_mini() -> None:
    found = profile("openai", "gpt-4o-mini")
    quote = pricing.quote("openai", "gpt-4o-mini")
    assert quote is not None
    assert (found.context_window, found.max_output, found.known) == (128000, 16384, True)
    assert (found.tools, found.parallel_tools, found.vision, found.pdf, found.structured,
            found.reasoning) == (True, True, True, True, True, False)
    assert found.input_usd_per_mtok == quote.price.input
    assert found.output_usd_per_mtok == quote.price.output
    assert found.quote == quote
    assert "128,000" in (found.source or "")


def test_an_unknown_model_has_no_sizes_and_no_price() -> None:
    found = profile("openai", "my-fine-tune")
    assert (found.known, found.context_window, found.max_output) == (False, None, None)
    assert (found.input_usd_per_mtok, found.output_usd_per_mtok, found.quote) == (None,) * 3
    assert found.tools  # the provider's say holds when the model says nothing
    assert found.worst_case_usd(_needs()) is None
    assert found.why_not(_needs(max_tokens=10**9)) is None  # unknown sizes exclude nothing


def test_a_model_only_narrows_what_its_provider_takes() -> None:
    """For every row of the table and every provider it names, each capability of the
    profile implies the provider class's."""
    for row in [*models.model_rows(), *models.limit_rows()]:
        name = row["models"][0].replace("*", "x")
        for provider in row["providers"]:
            caps = provider_class(provider).capabilities
            found = profile(provider, name)
            assert not found.vision or caps.images, (provider, name)
            assert not found.image_urls or caps.image_urls, (provider, name)
            assert not found.pdf or caps.documents, (provider, name)
            assert not found.tools or caps.tools, (provider, name)
            assert not found.parallel_tools or found.tools, (provider, name)
            assert not found.structured or caps.structured, (provider, name)
            assert not found.reasoning or caps.reasoning, (provider, name)


def test_model_rules_take_away_from_the_provider() -> None:
    assert provider_class("cohere").capabilities.images
    assert not profile("cohere", "command-a").vision  # cohere-text-only
    assert profile("cohere", "command-a-vision-07-2025").vision
    assert not profile("mistral", "codestral-2508").pdf  # mistral-text-only
    old = profile("openai", "o1-mini")
    assert (old.vision, old.tools, old.structured, old.parallel_tools) == (False,) * 4
    mini = profile("openai", "o3-mini")  # tools and schemas, no images
    assert (mini.vision, mini.tools, mini.structured, mini.family) == (
        False, True, True, "openai-reasoning")
    assert request_rules("openai", "o3-mini").efforts == ("low", "medium", "high")
    assert profile("openai", "o3").reasoning and not profile("openai", "gpt-4o").reasoning


def test_capabilities_of_a_provider_outside_the_registry() -> None:
    assert "custom" not in PROVIDERS
    bare = profile("custom", "m")
    assert (bare.tools, bare.vision, bare.structured, bare.reasoning) == (False,) * 4
    caps = Capabilities(images=True, tools=True, structured="json", reasoning=frozenset({"effort"}))
    given = profile("custom", "m", capabilities=caps)
    assert (given.tools, given.vision, given.structured, given.pdf) == (True, True, True, False)
    assert given.reasoning  # its capabilities alone describe it, as the call path checks
    assert profile("custom", "o1-mini", capabilities=caps).vision  # no registry row applies


def test_profile_for_reads_the_azure_base_model() -> None:
    config = LLMConfig(model="prod-chat", provider="azure", base_model="gpt-4o-mini")
    assert profile_for("azure", config).context_window == 128000
    assert profile_for("azure", dataclasses.replace(config, base_model=None)).known is False


def test_a_registered_price_is_seen_at_once() -> None:
    """Prices are referenced, never copied: a price registered after a profile was built
    shows in the next one."""
    assert profile("openai", "h6-registered-model").input_usd_per_mtok is None
    pricing.register_price("h6-registered-model", input=1.0, output=3.0, provider="openai")
    found = profile("openai", "h6-registered-model")
    assert (found.input_usd_per_mtok, found.output_usd_per_mtok) == (1.0, 3.0)
    assert found.worst_case_usd(_needs(input_tokens=1000, max_tokens=2000)) == 0.007


# ----------------------------------------------------------------------- why_not


def test_why_not_an_image_to_a_text_only_model() -> None:
    needs = _needs(images=True)
    assert profile("cohere", "command-a").why_not(needs) == "takes no images"
    assert profile("openai", "gpt-4o").why_not(needs) is None
    assert profile("bedrock", "amazon.nova-micro-v1:0").why_not(needs) == "takes no images"


def test_why_not_an_image_url_to_a_bytes_only_api() -> None:
    needs = _needs(images=True, image_urls=True)
    assert not provider_class("bedrock").capabilities.image_urls
    assert profile("bedrock", "amazon.nova-pro-v1:0").why_not(needs) == (
        "takes no image URLs (send the image bytes)")
    assert profile("openai", "gpt-4o").why_not(needs) is None


def test_why_not_tools_schema_documents_and_reasoning() -> None:
    old = profile("openai", "o1-mini")
    assert old.why_not(_needs(tools=True)) == "takes no tools"
    assert old.why_not(_needs(schema=True)) == "has no structured output"
    assert old.why_not(_needs(documents=True)) == "takes no PDF documents"
    assert profile("openai", "gpt-4o").why_not(_needs(reasoning=True)) == (
        "takes no reasoning controls")
    assert profile("openai", "o3").why_not(_needs(reasoning=True, tools=True)) is None
    assert old.why_not(_needs(images=True, tools=True, schema=True)) == (
        "takes no images; takes no tools; has no structured output")


def test_why_not_input_and_max_tokens_over_the_context_window() -> None:
    gpt4o = profile("openai", "gpt-4o")  # 128,000 in all, 16,384 out
    assert gpt4o.why_not(_needs(input_tokens=120000, max_tokens=8000)) is None  # = 128,000
    assert gpt4o.why_not(_needs(input_tokens=120001, max_tokens=8000)) == (
        "needs ~120001 input + 8000 max_tokens = 128001 tokens, over its 128000-token "
        "context window")
    assert gpt4o.why_not(_needs(input_tokens=10, max_tokens=16385)) == (
        "max_tokens=16385 is over its 16384-token output limit")
    assert profile("openai", "gpt-4.1").why_not(_needs(input_tokens=120001, max_tokens=8000)) \
        is None


def test_why_not_over_a_separate_input_limit() -> None:
    """Gemini counts input and output apart: 1,048,576 in and 65,535 out on 2.5 Pro, so a
    full input with the full output is fine, one token more of input is not."""
    pro = profile("gemini", "gemini-2.5-pro")
    assert (pro.context_window, pro.max_input, pro.max_output) == (None, 1048576, 65535)
    assert pro.why_not(_needs(input_tokens=1048576, max_tokens=65535)) is None
    assert pro.why_not(_needs(input_tokens=1048577, max_tokens=10)) == (
        "needs ~1048577 input tokens, over its 1048576-token input limit")
    argon = profile("gemini", "gemini-4-argon")  # one window for input and output
    assert (argon.context_window, argon.max_input) == (1048576, None)
    assert argon.why_not(_needs(input_tokens=1000000, max_tokens=48576)) is None
    assert argon.why_not(_needs(input_tokens=1000000, max_tokens=48577)) == (
        "needs ~1000000 input + 48577 max_tokens = 1048577 tokens, over its 1048576-token "
        "context window")


def test_input_limit_is_what_a_longer_context_means() -> None:
    """The most input a model takes at a given max_tokens: its window less the output, its
    own input limit, the smaller of both; None when neither is known."""
    assert profile("openai", "gpt-4o").input_limit(16384) == 128000 - 16384
    assert profile("openai", "gpt-4.1").input_limit(1000) == 1047576 - 1000
    assert profile("gemini", "gemini-2.5-pro").input_limit(65535) == 1048576
    assert profile("gemini", "gemini-4-argon").input_limit(65536) == 1048576 - 65536
    assert profile("openai", "my-fine-tune").input_limit(1000) is None
    longest = max(["gpt-4o", "gpt-4.1", "gpt-4o-mini"],
                  key=lambda m: profile("openai", m).input_limit(4096) or 0)
    assert longest == "gpt-4.1"


#: The models people use today: each must have both sizes from a documented source.
SIZED = [
    ("openai", "gpt-4o", 128000, 16384), ("openai", "gpt-4o-mini", 128000, 16384),
    ("openai", "gpt-4.1", 1047576, 32768), ("openai", "gpt-4.1-mini", 1047576, 32768),
    ("openai", "gpt-4.1-nano-2025-04-14", 1047576, 32768),
    ("openai", "gpt-5", 400000, 128000), ("openai", "gpt-5-mini", 400000, 128000),
    ("openai", "gpt-5.4", 1050000, 128000), ("openai", "gpt-5.4-mini", 400000, 128000),
    ("openai", "gpt-5.5", 1050000, 128000), ("openai", "gpt-6-astra", 1050000, 128000),
    ("openai", "o3", 200000, 100000), ("openai", "o4-mini", 200000, 100000),
    ("azure", "gpt-4o-mini", 128000, 16384),
    ("anthropic", "claude-opus-5", 1000000, 128000),
    ("anthropic", "claude-sonnet-5", 1000000, 128000),
    ("anthropic", "claude-opus-5-5", 1000000, 128000),
    ("anthropic", "claude-haiku-5-5", 1000000, 128000),
    ("anthropic", "claude-fable-5-1", 1000000, 128000),
    ("anthropic", "claude-opus-4-6", 1000000, 128000),
    ("anthropic", "claude-opus-4-8", 1000000, 128000),
    ("anthropic", "claude-mythos-5", 1000000, 128000),
    ("openai", "gpt-5.1", 400000, 128000), ("openai", "gpt-5.2-2025-12-11", 400000, 128000),
    ("anthropic", "claude-sonnet-4-6", 1000000, 128000),
    ("anthropic", "claude-opus-4-5-20251101", 200000, 64000),
    ("anthropic", "claude-haiku-4-5", 200000, 64000),
    ("gemini", "gemini-4-argon", 1048576, 65536),
    ("gemini", "gemini-4-hydrogen", 1048576, 65536),
    ("anthropic", "claude-opus-4-7", 1000000, 128000),
    ("bedrock", "us.anthropic.claude-opus-4-7", 1000000, 128000),  # an inference profile
    ("openai", "gpt-5.6-terra", 1050000, 128000), ("azure", "gpt-5.6-luna", 1050000, 128000),
    ("deepseek", "deepseek-v4-pro", 1048576, 393216),
    ("deepseek", "deepseek-flash", 1048576, 393216),
    ("cohere", "command-a-03-2025", 256000, 8192), ("cohere", "command-r", 128000, 4000),
]
#: Sizes documented in part (the rest unknown, never guessed).
PARTLY = [
    ("gemini", "gemini-2.5-flash", None, 65536, 1048576),
    ("gemini", "gemini-3.1-pro-preview", None, 65536, 1048576),
    ("gemini", "gemini-3-flash-preview", None, 65536, 1048576),
    ("gemini", "gemini-2.0-flash", None, 8192, 1048576),
    ("gemini", "gemini-3.8-flash", None, 65536, 1048576),
    ("gemini", "gemini-2.5-flash-lite", None, 65536, 1048576),
    ("openai", "gpt-6.1-terra", 1050000, 128000, 922000),  # both limits apply
    ("openai", "o3-mini", 200000, None, None),
    ("perplexity", "sonar", 128000, None, None), ("perplexity", "sonar-pro", 200000, None, None),
    ("groq", "llama-3.3-70b-versatile", 131072, None, None),
    ("cerebras", "gpt-oss-120b", 131072, None, None),
    ("mistral", "mistral-large-latest", 262144, None, None),
    ("mistral", "mistral-medium-latest", 262144, None, None),
]


@pytest.mark.parametrize(("provider", "model", "window", "output"), SIZED,
                         ids=[f"{p}:{m}" for p, m, _, _ in SIZED])
def test_todays_models_have_their_sizes(provider: str, model: str, window: int,
                                        output: int) -> None:
    found = profile(provider, model)
    assert found.known and found.source
    assert (found.context_window, found.max_output) == (window, output)


@pytest.mark.parametrize(("provider", "model", "window", "output", "inputs"), PARTLY,
                         ids=[f"{p}:{m}" for p, m, *_ in PARTLY])
def test_partly_documented_sizes_stay_unknown_where_unknown(
    provider: str, model: str, window: int | None, output: int | None, inputs: int | None,
) -> None:
    found = profile(provider, model)
    assert found.known
    assert (found.context_window, found.max_output, found.max_input) == (window, output, inputs)


# ----------------------------------------------------------------------- needs_of


def test_needs_of_a_plain_prompt() -> None:
    turns: list[Any] = [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "x" * 401}]
    config = LLMConfig(model="gpt-4o", max_tokens=300)
    needs = needs_of(turns, config)
    assert needs == RequestNeeds(input_tokens=103, max_tokens=300)  # ceil((9 + 401) / 4)
    assert needs.input_tokens == estimate_tokens(turns, 0)


def test_needs_of_parts_tools_schema_and_reasoning() -> None:
    turns: list[Any] = [
        {"role": "user", "content": [
            {"type": "text", "text": "abcd" * 10},
            {"type": "image", "data": PNG, "media_type": "image/png"},
            {"type": "document", "data": PDF, "media_type": "application/pdf"},
        ]},
    ]
    config = LLMConfig(model="gpt-4o", max_tokens=50, tools=[WEATHER],
                       response_schema=OutputSchema("answer", SCHEMA),
                       reasoning_effort="high")
    # the input: ceil((text 40 + the tool's name 7, description 22 and schema 57 + the
    # response schema's name 6 and schema 59, compact JSON) / 4) = 48, and the two parts
    assert needs_of(turns, config) == RequestNeeds(
        input_tokens=48 + 2 * PART_TOKENS, max_tokens=50, tools=True, images=True,
        documents=True, schema=True, reasoning=True, image_urls=False)
    remote: list[Any] = [{"role": "user", "content": [
        {"type": "image", "url": "https://example.com/cat.png"}]}]
    assert needs_of(remote, LLMConfig(model="m")).image_urls
    openai_shape: list[Any] = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]}]
    found = needs_of(openai_shape, LLMConfig(model="m"))
    assert found.images and not found.image_urls
    history: list[Any] = [{"role": "tool", "content": "18C", "tool_call_id": "c1"}]
    assert needs_of(history, LLMConfig(model="m")).tools
    off = LLMConfig(model="m", reasoning_effort="none")
    assert not needs_of(history, off).reasoning
    assert needs_of(history, LLMConfig(model="m", reasoning_budget=2048)).reasoning


# ----------------------------------------------------------------------- worst_case_usd


def test_worst_case_usd_by_hand() -> None:
    """gpt-4o-mini at $0.15 in / $0.60 out per MTok; claude-haiku-4-5 at $1 / $5."""
    needs = _needs(input_tokens=1000, max_tokens=500)
    assert profile("openai", "gpt-4o-mini").worst_case_usd(needs) == pytest.approx(
        (1000 * 0.15 + 500 * 0.60) / 1e6, rel=1e-12, abs=0)
    assert profile("openai", "gpt-4o-mini").worst_case_usd(needs) == 0.00045
    assert profile("anthropic", "claude-haiku-4-5").worst_case_usd(needs) == pytest.approx(
        (1000 * 1.0 + 500 * 5.0) / 1e6, rel=1e-12, abs=0) == 0.0035
    assert profile("ollama", "llama3").worst_case_usd(needs) == 0.0


def test_worst_case_usd_takes_the_long_context_tier_and_the_request_fee() -> None:
    """The tier of the estimated input applies to the whole call; Perplexity's per-request
    fee (by search context size; none named: the highest) is added once."""
    gpt54 = pricing.quote("openai", "gpt-5.4")
    assert gpt54 is not None and gpt54.price.tiers
    tier = gpt54.price.tiers[0]
    big = _needs(input_tokens=tier.above_input_tokens + 1, max_tokens=1000)
    expected = ((tier.above_input_tokens + 1) * (tier.input or gpt54.price.input)
                + 1000 * (tier.output or gpt54.price.output)) / 1e6
    assert profile("openai", "gpt-5.4").worst_case_usd(big) == pytest.approx(
        expected, rel=1e-12, abs=0)
    sonar = pricing.quote("perplexity", "sonar")
    assert sonar is not None
    needs = _needs(input_tokens=1000, max_tokens=500)
    fee = sonar.price.request_fee(Usage(1000, 500))
    assert fee > 0
    assert profile("perplexity", "sonar").worst_case_usd(needs) == pytest.approx(
        (1000 * sonar.price.input + 500 * sonar.price.output) / 1e6 + fee, rel=1e-12, abs=0)


def test_worst_case_matches_the_budget_reservation() -> None:
    """One formula: the call path's reservation (spend.worst_case_usd) and the profile's
    agree for the same request."""
    from synapsekit.llm.spend import worst_case_usd

    turns: list[Any] = [{"role": "user", "content": "y" * 4000}]
    for provider, model in [("openai", "gpt-4o-mini"), ("openai", "gpt-5.4"),
                            ("perplexity", "sonar"), ("anthropic", "claude-opus-5")]:
        config = LLMConfig(model=model, max_tokens=777)
        assert profile(provider, model).worst_case_usd(needs_of(turns, config)) == (
            worst_case_usd(provider, config, turns)), model


# ----------------------------------------------------------------------- request validation


@pytest.fixture
def sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(API_KEY) as server:
        yield server


async def test_what_the_profile_refuses_never_reaches_the_api(sim: OpenAISimulator) -> None:
    """The call path refuses an image, tools or a schema for o1-mini before any request, as
    its profile says; gpt-4o, whose profile takes them, gets the same request through."""
    image: list[Any] = [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image", "data": PNG}]}]
    o1 = make_llm("openai:o1-mini", api_key=API_KEY, base_url=sim.url)
    for kwargs, reason in [({}, "takes no images")]:
        assert profile("openai", "o1-mini").why_not(needs_of(image, o1.config)) == reason
        with pytest.raises(UnsupportedFeatureError):
            await o1.respond(image, **kwargs)
    with pytest.raises(UnsupportedFeatureError):
        await o1.respond("Weather in Oslo?", tools=[WEATHER])
    assert len(sim.requests) == 0
    sim.enqueue(text_stream(["A", " square."]))
    gpt4o = make_llm("openai:gpt-4o", api_key=API_KEY, base_url=sim.url)
    assert profile("openai", "gpt-4o").why_not(needs_of(image, gpt4o.config)) is None
    assert (await gpt4o.respond(image)).text == "A square."
    assert len(sim.requests) == 1
    await o1.aclose()
    await gpt4o.aclose()


@pytest.mark.parametrize(("spec", "capable"), [
    ("groq:llama-3.3-70b-versatile", False),  # text in, text out (models.json groq-text-only)
    ("groq:meta-llama/llama-4-scout-17b-16e-instruct", True),
])
async def test_an_image_to_a_text_only_model_sends_nothing(
    sim: OpenAISimulator, spec: str, capable: bool,
) -> None:
    """The issue's example: the profile says why, the call path refuses before any request;
    the vision model on the same provider gets the same request through."""
    image: list[Any] = [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image", "data": PNG}]}]
    llm = make_llm(spec, api_key=API_KEY, base_url=sim.url)
    provider, model = spec.split(":", 1)
    reason = profile(provider, model).why_not(needs_of(image, llm.config))
    try:
        if capable:
            assert reason is None
            sim.enqueue(text_stream(["A", " square."]))
            assert (await llm.respond(image)).text == "A square."
            assert len(sim.requests) == 1
        else:
            assert reason == "takes no images"
            with pytest.raises(UnsupportedFeatureError, match="does not take image parts"):
                await llm.respond(image)
            assert len(sim.requests) == 0
    finally:
        await llm.aclose()


async def test_a_schema_to_a_model_without_structured_output_sends_nothing(
    sim: OpenAISimulator,
) -> None:
    o1 = make_llm("openai:o1-mini", api_key=API_KEY, base_url=sim.url)
    try:
        assert profile("openai", "o1-mini").why_not(RequestNeeds(10, 100, schema=True)) == (
            "has no structured output")
        with pytest.raises(UnsupportedFeatureError):
            await o1.generate_object("An answer.", schema=SCHEMA)
    finally:
        await o1.aclose()
        assert len(sim.requests) == 0


# ----------------------------------------------------------------------- docs/models.md


def test_docs_profiles_table_is_generated_from_the_data() -> None:
    doc = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    start = doc.index("<!-- profiles-table")
    block = doc[doc.index("\n", start) + 1:doc.index("<!-- /profiles-table -->")].strip()
    assert block == models.profiles_table(), (
        "docs/models.md is stale: paste `python -m synapsekit.llm.models profiles`")


def test_the_docs_table_has_one_line_per_row_and_provider() -> None:
    lines = models.profiles_table().splitlines()[2:]
    assert len(lines) == sum(len(row["providers"]) for row in models.limit_rows())
    gpt4o = next(line for line in lines if line.startswith("| openai | `gpt-4o` |"))
    quote = pricing.quote("openai", "gpt-4o")
    assert quote is not None
    assert f"| 128,000 | 16,384 | yes | yes | yes | yes | yes | — | " \
           f"{quote.price.input:g} / {quote.price.output:g} |" in gpt4o


def test_json_stays_loadable_and_profiles_are_cheap() -> None:
    raw = json.loads((ROOT / "synapsekit" / "llm" / "models.json").read_text(encoding="utf-8"))
    assert {"request" in row or "limits" in row for row in raw["models"]} == {True}
    assert isinstance(profile("openai", "gpt-4o"), ModelProfile)
