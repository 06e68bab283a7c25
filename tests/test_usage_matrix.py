"""Usage that matches the bill, for each of the 15 providers: the real SDK over real HTTP
against the simulators, exact token counts and exact USD, the cost worked out by hand here
(literal prices and arithmetic, never our pricing code's answer as the expectation).

Two tables:

- ``STREAMED``: one recorded stream per provider (captures; Together and Fireworks have no
  capture anywhere, so theirs is synthesised in their documented shape and says so): the
  :class:`Usage` our decoder produces, and the traced cost = the units the provider bills
  x the price row as it stands (the row is asserted too, so a price change shows here as
  one clear failure, not as a wrong sum).
- ``NON_STREAMED``: the usage of a provider's non-streamed response (captures
  ``nonstream_ok.json`` and the like), replayed by the simulator as that provider's stream:
  the streamed usage must equal the non-streamed one field for field. Where no
  non-streamed capture exists (Groq, OpenRouter, Together, Fireworks, Cerebras, Azure),
  the row says so in its comment.

Billing rules checked (test_usage_billing.py has Bedrock's cache sums and Cohere's
``billed_units`` on stream_ok_realcapture; not repeated here): Cohere bills
``billed_units``; Bedrock input = inputTokens + cache read + cache write; Gemini's
thoughts are output; Anthropic's ``message_delta`` usage is cumulative (taken, not added);
OpenAI's ``cached_tokens`` and ``reasoning_tokens`` are parts of prompt/completion;
DeepSeek's ``prompt_cache_hit_tokens`` is the cached part; a provider-stated bill wins
over the price row (``Usage.stated_cost_usd``): Perplexity's Agent API ``usage.cost``
(also kept as the call's ``metadata["cost"]``) and OpenRouter's ``usage.cost``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from synapsekit import Budget, TokenTracer, make_llm
from synapsekit.llm.pricing import Price, Tier, price_for
from synapsekit.llm.types import Usage
from synapsekit.testing.simulators import (
    anthropic_protocol,
    bedrock_protocol,
    cohere_protocol,
    gemini_protocol,
    mistral_protocol,
    ollama_protocol,
    openai_protocol,
    perplexity_agent,
)
from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator
from synapsekit.testing.simulators.bedrock_protocol import BedrockSimulator
from synapsekit.testing.simulators.cohere_protocol import CohereSimulator
from synapsekit.testing.simulators.gemini_protocol import GeminiSimulator
from synapsekit.testing.simulators.mistral_protocol import MistralSimulator
from synapsekit.testing.simulators.ollama_protocol import OllamaSimulator
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from synapsekit.testing.simulators.perplexity_agent import PerplexityAgentSimulator
from synapsekit.testing.simulators.server import Reply
from synapsekit.testing.simulators.wire import WIRE
from tests.conftest import API_KEY
from tests.sim_fixtures import aws_credentials

KEYS = {
    "anthropic": "sk-ant-matrix-0123456789", "gemini": "AIza-matrix-0123456789",
    "cohere": "co-matrix-0123456789", "mistral": "mist-matrix-0123456789",
    "perplexity": "pplx-matrix-0123456789",
}
ACCESS_KEY, SECRET_KEY = "AKIAMATRIXTEST000001", "matrix-test-secret-key-0123456789abcdef"
BEDROCK_MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
M = 1_000_000  # prices are USD per million tokens


def _nonstream(relpath: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WIRE / relpath).read_text())
    return data


def _openai_sse(model: str, tokens: list[str], usage: dict[str, Any]) -> Reply:
    """A chat-completions stream in OpenAI's shape (content chunks, a finish chunk, the
    ``choices: []`` usage chunk, ``[DONE]``) carrying ``usage`` exactly as given: for the
    usage fields the simulator's builder does not write (reasoning, DeepSeek's cache)."""
    base = {"id": "chatcmpl-matrix", "object": "chat.completion.chunk", "created": 1,
            "model": model}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": t},
                                    "finish_reason": None}]} for t in tokens]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": usage})
    body = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
    return Reply(200, {"content-type": openai_protocol.SSE_TYPE}, stream=body)


@dataclass(frozen=True)
class Row:
    sim: str  # which simulator serves it
    model: str  # the name given to make_llm
    reply: Callable[[], Reply]
    usage: Usage  # what our decoder must produce
    price: Price | None  # the price row as it stands (None: none / a provider-stated bill)
    cost: float | None  # the bill, worked out by hand
    priced_as: tuple[str, str] | None = None  # (provider, model) of the price row, if
    # not the row's own (Azure: the model the response names)
    metadata_cost: dict[str, Any] | None = field(default=None, hash=False)


# ------------------------------------------------------------------------- streamed rows

STREAMED: dict[str, Row] = {
    # 16 in / 300 out, both detail objects present and zero.
    "openai": Row(
        "openai", "openai:gpt-4.1-nano-2025-04-14",
        lambda: openai_protocol.capture("openai/stream_usage_details_obfuscation.sse"),
        Usage(16, 300, model="gpt-4.1-nano-2025-04-14"),
        Price(input=0.1, output=0.4, cached_input=0.025),
        (16 * 0.1 + 300 * 0.4) / M,
    ),
    # Azure prices by the model the response names (gpt-5-nano), not the deployment:
    # 15 in, 78 out of which 64 reasoning (billed as output).
    "azure": Row(
        "azure", "azure:my-gpt5-nano",
        lambda: openai_protocol.capture(
            "openai_compatible/azure/stream_content_filter_reasoning_realcapture.sse"),
        Usage(15, 78, reasoning_tokens=64, model="gpt-5-nano-2025-08-07"),
        Price(input=0.05, output=0.4, cached_input=0.005),
        (15 * 0.05 + 78 * 0.4) / M, priced_as=("openai", "gpt-5-nano-2025-08-07"),
    ),
    "groq": Row(
        "openai", "groq:llama-3.3-70b-versatile",
        lambda: openai_protocol.capture(
            "openai_compatible/groq/stream_tool_call_realcapture.sse"),
        Usage(210, 15, model="llama-3.3-70b-versatile"),
        Price(input=0.59, output=0.79),
        (210 * 0.59 + 15 * 0.79) / M,
    ),
    # prompt_cache_hit_tokens 0 / miss 18; 219 out of which 205 reasoning.
    "deepseek": Row(
        "openai", "deepseek:deepseek-reasoner",
        lambda: openai_protocol.capture(
            "openai_compatible/deepseek/stream_reasoning_realcapture.sse"),
        Usage(18, 219, reasoning_tokens=205, model="deepseek-reasoner"),
        Price(input=0.28, output=0.42, cached_input=0.028),
        (18 * 0.28 + 219 * 0.42) / M,
    ),
    # OpenRouter states its charge (usage.cost 0.000669 = 0.000129 prompt + 0.00054
    # completion): 43 x $3 + 36 x $15 per M is exactly that.
    "openrouter": Row(
        "openai", "openrouter:anthropic/claude-sonnet-4.5",
        lambda: openai_protocol.capture(
            "openai_compatible/openrouter/stream_reasoning_realcapture.sse"),
        # OpenRouter states 0.000669 (usage.cost): the row's arithmetic gives the same.
        Usage(43, 36, reasoning_tokens=13, model="anthropic/claude-sonnet-4.5",
              stated_cost_usd=0.000669),
        Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75, cache_write_1h=6.0,
              tiers=(Tier(200_000, input=6.0, output=22.5, cached_input=0.6, cache_write=7.5,
                          cache_write_1h=12.0),)),
        (43 * 3.0 + 36 * 15.0) / M,
    ),
    # No Together capture exists (captures/INDEX.md): usage in its own choices:[] chunk.
    "together": Row(
        "openai", "together:meta-llama/Llama-3.3-70B-Instruct-Turbo",
        lambda: openai_protocol.text_stream(["Hi", " there"], prompt_tokens=1200,
                                            completion_tokens=40,
                                            model="meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        Usage(1200, 40, model="meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        Price(input=0.88, output=0.88),
        (1200 * 0.88 + 40 * 0.88) / M,
    ),
    # No Fireworks capture exists: usage on the finish chunk.
    "fireworks": Row(
        "openai", "fireworks:accounts/fireworks/models/llama-v3p1-8b-instruct",
        lambda: openai_protocol.text_stream(
            ["Hi"], prompt_tokens=900, completion_tokens=12, usage_in_final_chunk=False,
            model="accounts/fireworks/models/llama-v3p1-8b-instruct"),
        Usage(900, 12, model="accounts/fireworks/models/llama-v3p1-8b-instruct"),
        Price(input=0.2, output=0.2),
        (900 * 0.2 + 12 * 0.2) / M,
    ),
    # 322 in of which 256 cached; 104 out of which 97 reasoning.
    "cerebras": Row(
        "openai", "cerebras:zai-glm-4.7",
        lambda: openai_protocol.capture(
            "openai_compatible/cerebras/stream_reasoning_tool_call_realcapture.sse"),
        Usage(322, 104, cached_input_tokens=256, reasoning_tokens=97, model="zai-glm-4.7"),
        Price(input=2.25, output=2.75),
        (322 * 2.25 + 104 * 2.75) / M,
    ),
    # The Agent API states the bill: 0.00003 cache read + 0.00002 output + 0.001 search_web.
    "perplexity": Row(
        "perplexity", "perplexity:sonar",
        lambda: perplexity_agent.capture(),
        Usage(3007, 37, cached_input_tokens=3004, model="openai/gpt-6-luna",
              stated_cost_usd=0.00105),
        # The stated bill wins over the Sonar row, which would say 3007 + 37 tokens at $1/M
        # + the $0.005 low-context request fee = 0.008044, 7.7x the bill.
        Price(input=1.0, output=1.0,
              request_by_search_context=(("low", 0.005), ("medium", 0.008), ("high", 0.012))),
        0.00105,
        metadata_cost={"cache_read_cost": 0.00003, "currency": "USD", "input_cost": 0,
                       "output_cost": 0.00002, "tool_calls_cost": 0.001,
                       "tool_calls_cost_details": {"search_web": 0.001},
                       "total_cost": 0.00105},
    ),
    # message_start input 25 / output 1, then message_delta output_tokens 15 (cumulative:
    # the total is 15, not 16).
    "anthropic": Row(
        "anthropic", "claude-opus-4-6",
        lambda: anthropic_protocol.capture("anthropic/stream_ok_docs.sse"),
        Usage(25, 15),
        Price(input=5.0, output=25.0, cached_input=0.5, cache_write=6.25,
              cache_write_1h=10.0),
        (25 * 5.0 + 15 * 25.0) / M,
    ),
    # Cumulative usageMetadata on every chunk; the last: prompt 10, candidates 48,
    # thoughts 540, total 598: output = 48 + 540 (thoughts billed as output).
    "gemini": Row(
        "gemini", "gemini-2.5-flash",
        lambda: gemini_protocol.capture("gemini/stream_thinking.sse"),
        Usage(10, 588, reasoning_tokens=540), Price(input=0.3, output=2.5, cached_input=0.03),
        (10 * 0.3 + 588 * 2.5) / M,
    ),
    # Cohere bills billed_units (8 in / 50 out), not tokens (1394 / 54, 1360 cached).
    "cohere": Row(
        "cohere", "command-a-reasoning-08-2025",
        lambda: cohere_protocol.capture("cohere/stream_thinking_realcapture.sse"),
        Usage(1394, 54, cached_input_tokens=1360, billed_input_tokens=8,
              billed_output_tokens=50),
        # No price row for command-a-reasoning-08-2025 yet (notes-H2: for H1): unknown
        # is None, never a sibling's price. At Command A's $2.50 / $10 it would be
        # (8 * 2.5 + 50 * 10.0) / M = 0.00052.
        None, None,
    ),
    "mistral": Row(
        "mistral", "mistral-small-latest",
        lambda: mistral_protocol.capture("mistral/stream_ok_realcapture.sse"),
        Usage(13, 8),  # the -latest alias is priced by the row it names (mistral-small-2603)
        Price(input=0.15, output=0.6, cached_input=0.015), (13 * 0.15 + 8 * 0.6) / M,
    ),
    # Local Ollama costs nothing: priced at 0, not unknown.
    "ollama": Row(
        "ollama", "ollama:llama3.2",
        lambda: ollama_protocol.capture("ollama/stream_ok.ndjson"),
        Usage(26, 282), Price(input=0.0, output=0.0), 0.0,
    ),
    "bedrock": Row(
        "bedrock", BEDROCK_MODEL,
        lambda: bedrock_protocol.capture("bedrock/stream_reasoning.eventstream"),
        Usage(51, 94),
        Price(input=0.8, output=4.0, cached_input=0.08, cache_write=1.0, cache_write_1h=1.6),
        (51 * 0.8 + 94 * 4.0) / M,
    ),
}


# --------------------------------------------------------------------------- simulators


@pytest.fixture(scope="module")
def _sims() -> Iterator[dict[str, Any]]:
    with ExitStack() as stack:
        yield {
            "anthropic": stack.enter_context(AnthropicSimulator(KEYS["anthropic"])),
            "gemini": stack.enter_context(GeminiSimulator(KEYS["gemini"])),
            "cohere": stack.enter_context(CohereSimulator(KEYS["cohere"])),
            "mistral": stack.enter_context(MistralSimulator(KEYS["mistral"])),
            "ollama": stack.enter_context(OllamaSimulator()),
            "bedrock": stack.enter_context(
                BedrockSimulator({ACCESS_KEY: SECRET_KEY}, region="us-east-1")),
            "perplexity": stack.enter_context(PerplexityAgentSimulator(KEYS["perplexity"])),
        }


@pytest.fixture
def sims(
    _sims: dict[str, Any], openai_sim: OpenAISimulator, azure_sim: OpenAISimulator,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    aws_credentials(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY)
    every = {**_sims, "openai": openai_sim, "azure": azure_sim}
    for server in _sims.values():
        server.reset()
    yield every
    for server in _sims.values():
        server.reset()


async def _run(row: Row, provider: str, sims: dict[str, Any]) -> tuple[Any, TokenTracer, Any]:
    sim = sims[row.sim]
    sim.enqueue(row.reply())
    tracer = TokenTracer()
    fields: dict[str, Any] = {"tracer": tracer}
    if row.sim in ("openai", "azure"):
        fields["api_key"] = API_KEY
    elif row.sim in KEYS:
        fields["api_key"] = KEYS[row.sim]
    llm = make_llm(row.model, base_url=sim.url, **fields)
    try:
        chunks = [c async for c in llm.stream_chunks("hi")]
    finally:
        await llm.aclose()
    assert len(sim.requests) == 1
    return chunks[-1], tracer, llm


@pytest.mark.parametrize("provider", list(STREAMED))
async def test_streamed_usage_is_the_bill(provider: str, sims: dict[str, Any]) -> None:
    row = STREAMED[provider]
    final, tracer, _ = await _run(row, provider, sims)
    (record,) = tracer.records
    assert final.usage == row.usage
    if row.metadata_cost is not None:  # the bill the provider states
        assert final.metadata["cost"] == row.metadata_cost
    where = row.priced_as or (provider, row.model.removeprefix(f"{provider}:"))
    assert price_for(*where) == row.price
    assert record.cost_usd == row.cost
    if row.usage.stated_cost_usd is not None:  # the row is still named: where it came from
        assert record.price_row is not None
        assert record.price_rule is not None
        assert record.price_rule.endswith(f"; cost stated by {provider}")


# ---------------------------------------------------------------------- non-streamed rows


@dataclass(frozen=True)
class Same:
    """A non-streamed response's usage (``wire_usage``, asserted equal to the file's),
    replayed by ``reply`` as the provider's stream; ``usage`` is what both must decode to."""

    sim: str
    model: str
    nonstream: str  # capture's relpath, or the upstream capture named in a README
    key: str  # where the usage sits in that JSON
    wire_usage: dict[str, Any] | int
    reply: Callable[[], Reply]
    usage: Usage


# No non-streamed capture exists for Groq, OpenRouter, Together, Fireworks, Cerebras or
# Azure (captures/INDEX.md): their rows are the streamed ones above only.
NON_STREAMED: dict[str, Same] = {
    "openai": Same(
        "openai", "openai:gpt-5.4", "openai/nonstream_ok.json", "usage",
        {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                       "accepted_prediction_tokens": 0,
                                       "rejected_prediction_tokens": 0}},
        lambda: openai_protocol.text_stream(["Hello!", " How can I assist you today?"],
                                            prompt_tokens=19, completion_tokens=10,
                                            model="gpt-5.4"),
        Usage(19, 10, model="gpt-5.4"),
    ),
    # reasoning_tokens 64 of completion_tokens 87: the stream carries the same object.
    "openai-reasoning": Same(
        "openai", "openai:o3-mini", "openai/nonstream_reasoning_o3mini.json", "usage",
        {"completion_tokens": 87, "completion_tokens_details": {
            "accepted_prediction_tokens": 0, "audio_tokens": 0, "reasoning_tokens": 64,
            "rejected_prediction_tokens": 0}, "prompt_tokens": 7,
         "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
         "total_tokens": 94},
        lambda: _openai_sse("o3-mini-2025-01-31", ["Paris."],
                            _nonstream("openai/nonstream_reasoning_o3mini.json")["usage"]),
        Usage(7, 87, reasoning_tokens=64, model="o3-mini-2025-01-31"),
    ),
    # Streamed, the output count arrives in three cumulative message_delta events (2, 4,
    # 6): taken, not added (adding would give 12).
    "anthropic": Same(
        "anthropic", "claude-sonnet-4-5", "anthropic/nonstream_ok.json", "usage",
        {"input_tokens": 12, "output_tokens": 6},
        lambda: anthropic_protocol.text_stream(["Hello!"], input_tokens=12, output_tokens=6,
                                               message_deltas=3, model="claude-sonnet-4-5"),
        Usage(12, 6),
    ),
    "gemini": Same(
        "gemini", "gemini-2.0-flash", "gemini/nonstream_ok.json", "usageMetadata",
        {"promptTokenCount": 7, "candidatesTokenCount": 22, "totalTokenCount": 29,
         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}],
         "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 22}]},
        lambda: gemini_protocol.text_stream(["Mountain", " View"], prompt_tokens=7,
                                            candidates_tokens=22, model="gemini-2.0-flash"),
        Usage(7, 22),
    ),
    "cohere": Same(
        "cohere", "command-r-08-2024", "cohere/nonstream_ok.json", "usage",
        {"billed_units": {"input_tokens": 5, "output_tokens": 418},
         "tokens": {"input_tokens": 71, "output_tokens": 418}},
        lambda: cohere_protocol.text_stream(["LLMs"], usage_obj=cohere_protocol.usage(
            71, 418, billed_input=5, billed_output=418)),
        Usage(71, 418, billed_input_tokens=5, billed_output_tokens=418),
    ),
    "mistral": Same(
        "mistral", "mistral-large-latest", "mistral/nonstream_ok.json", "usage",
        {"prompt_tokens": 11, "completion_tokens": 268, "total_tokens": 279},
        lambda: mistral_protocol.text_stream(["The", " distance"], prompt_tokens=11,
                                             completion_tokens=268,
                                             model="mistral-large-latest"),
        Usage(11, 268),
    ),
    "ollama": Same(
        "ollama", "ollama:llama3.2", "ollama/nonstream_ok.json", "eval_count", 298,
        lambda: ollama_protocol.text_stream(["Hello!"], prompt_eval_count=26, eval_count=298),
        Usage(26, 298),
    ),
    # Bedrock's non-streamed Converse usage: inputTokens 22 with both cache counts 0.
    "bedrock": Same(
        "bedrock", BEDROCK_MODEL, "bedrock/nonstream_ok.json", "usage",
        {"cacheReadInputTokenCount": 0, "cacheReadInputTokens": 0,
         "cacheWriteInputTokenCount": 0, "cacheWriteInputTokens": 0, "inputTokens": 22,
         "outputTokens": 57, "serverToolUsage": {}, "totalTokens": 79},
        lambda: bedrock_protocol.text_stream(["Let me count"], input_tokens=22,
                                             output_tokens=57, cache_read=0, cache_write=0),
        Usage(22, 57),
    ),
}
#: Perplexity's non-streamed Agent API response (vercel/ai agent-web-search.json @5d9b0b0b,
#: see captures/openai_compatible/perplexity/README.md; not stored here): another call of
#: the streamed capture's prompt, with a cache write.
PERPLEXITY_NONSTREAM_USAGE: dict[str, Any] = {
    "cost": {"cache_creation_cost": 0.00015, "cache_read_cost": 0.00002, "currency": "USD",
             "input_cost": 0, "output_cost": 0.00002, "tool_calls_cost": 0.001,
             "tool_calls_cost_details": {"search_web": 0.001}, "total_cost": 0.00119},
    "input_tokens": 3007,
    "input_tokens_details": {"cache_creation_input_tokens": 1224,
                             "cache_read_input_tokens": 1780, "cached_tokens": 1780},
    "output_tokens": 36, "output_tokens_details": {"reasoning_tokens": 0},
    "tool_calls_details": {"search_web": {"cost_usd": 0.001, "invocation": 1}},
    "total_tokens": 3043,
}


@pytest.mark.parametrize("name", list(NON_STREAMED))
async def test_streamed_equals_non_streamed(name: str, sims: dict[str, Any]) -> None:
    row = NON_STREAMED[name]
    assert _nonstream(row.nonstream)[row.key] == row.wire_usage  # the literal is the file's
    provider = name.split("-")[0]
    final, _, _ = await _run(Row(row.sim, row.model, row.reply, row.usage, None, None),
                             provider, sims)
    assert final.usage == row.usage


async def test_perplexity_streamed_equals_non_streamed(sims: dict[str, Any]) -> None:
    reply = perplexity_agent.usage_stream(["The official TypeScript website"],
                                          PERPLEXITY_NONSTREAM_USAGE, model="openai/gpt-6-luna")
    row = Row("perplexity", "perplexity:fast", lambda: reply,
              Usage(3007, 36, cached_input_tokens=1780, cache_write_tokens=1224,
                    model="openai/gpt-6-luna", stated_cost_usd=0.00119), None, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a preset has no price row, but the bill is stated
        final, tracer, _ = await _run(row, "perplexity", sims)
    assert final.usage == row.usage
    assert final.metadata["cost"]["total_cost"] == 0.00119
    assert sims["perplexity"].requests[0].json()["preset"] == "fast"
    (record,) = tracer.records
    assert (record.cost_usd, record.price_row) == (0.00119, None)


@pytest.mark.parametrize(("extra", "cost"), [
    ({"cost": 0.0042, "is_byok": False}, 0.0042),  # the stated bill, not the row's 0.000669
    ({"cost": 0.0, "is_byok": False}, 0.0),  # stated as nothing: nothing
    # BYOK: usage.cost is only OpenRouter's fee (the upstream bills the key's owner)
    ({"cost": 0.00003, "is_byok": True}, (43 * 3.0 + 36 * 15.0) / M),
    ({}, (43 * 3.0 + 36 * 15.0) / M),  # nothing stated: the row prices it
])
async def test_openrouter_stated_cost_wins_over_the_row(
    extra: dict[str, Any], cost: float, sims: dict[str, Any],
) -> None:
    usage = {"prompt_tokens": 43, "completion_tokens": 36, "total_tokens": 79, **extra}
    model = "anthropic/claude-sonnet-4.5"
    stated = None if "cost" not in extra or extra.get("is_byok") else extra["cost"]
    row = Row("openai", f"openrouter:{model}", lambda: _openai_sse(model, ["4"], usage),
              Usage(43, 36, model=model, stated_cost_usd=stated), None, cost)
    final, tracer, llm = await _run(row, "openrouter", sims)
    assert final.usage == row.usage
    (record,) = tracer.records
    assert record.cost_usd == cost
    assert record.price_row == "anthropic:claude-sonnet-4-5"  # still named
    assert record.price_rule.endswith("; cost stated by openrouter") is (stated is not None)
    sims["openai"].enqueue(_openai_sse(model, ["4"], usage))
    budget = Budget(limit_usd=1.0)
    response = await llm.respond("hi", budget=budget)  # Response.cost_usd: the same priced()
    assert response.cost_usd == cost
    assert budget.spent_usd == pytest.approx(cost, abs=1e-9)  # settled with it too


async def test_deepseek_cache_hit_is_the_cached_part(sims: dict[str, Any]) -> None:
    """DeepSeek's own cache fields (no capture with a hit exists; the documented shape):
    prompt_cache_hit_tokens is the cached part of prompt_tokens, billed at the hit price."""
    usage = {"prompt_tokens": 1200, "completion_tokens": 50, "total_tokens": 1250,
             "prompt_cache_hit_tokens": 1024, "prompt_cache_miss_tokens": 176}
    row = Row("openai", "deepseek:deepseek-chat",
              lambda: _openai_sse("deepseek-chat", ["Hi"], usage),
              Usage(1200, 50, cached_input_tokens=1024, model="deepseek-chat"), None, None)
    final, tracer, _ = await _run(row, "deepseek", sims)
    assert final.usage == row.usage
    assert price_for("deepseek", "deepseek-chat") == Price(input=0.28, output=0.42,
                                                          cached_input=0.028)
    (record,) = tracer.records
    assert record.cost_usd == (176 * 0.28 + 1024 * 0.028 + 50 * 0.42) / M
