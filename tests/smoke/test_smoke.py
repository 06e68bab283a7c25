"""Smoke suite: what a user who ran ``pip install "synapsekit[<extra>]"`` gets.

CI runs this file once per provider extra, each time in a fresh venv holding only
``pip install -e ".[<extra>]" pytest`` (see .ci/run and docs/testing.md), with
``SYNAPSEKIT_SMOKE_EXTRA=<extra>``: then only that provider is tested, and the venv is checked
to hold no other provider SDK and nothing from the dev extra. Without the variable (the main
suite, ``pytest -q``) every provider is tested in the one venv that has them all.

So this file imports only pytest, the standard library, synapsekit (which imports the one SDK)
and the stdlib-only simulators: no pytest-asyncio (plain test functions call ``asyncio.run``),
no httpx. Each provider streams one answer through its real SDK from its protocol's simulator:
exact text and token counts, a cut before the first token retried (exactly two requests), a cut
after two tokens raising ``StreamInterruptedError`` with exactly those two tokens.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import StreamInterruptedError
from synapsekit.llm.base import BaseLLM
from synapsekit.testing.simulators.server import Reply, Server

ENV = "SYNAPSEKIT_SMOKE_EXTRA"
KEY = "smoke-key-0123456789"
AWS_ID, AWS_SECRET = "AKIASMOKETESTKEY0000", "smoke/secret/key/0123456789"
TOKENS = ["Smoke", " test", " passed", "!"]
ANSWER = "Smoke test passed!"
INPUT_TOKENS = 12

# Import name of each provider SDK (one per protocol).
SDKS = {
    "openai": "openai", "anthropic": "anthropic", "gemini": "google.genai",
    "cohere": "cohere", "mistral": "mistralai", "bedrock": "boto3", "ollama": "ollama",
}


@dataclass(frozen=True)
class Extra:
    model: str
    protocol: str  # SDKS key; simulator module synapsekit.testing.simulators.<protocol>_protocol
    simulator: str | None = None  # another simulator module, when the vendor's API differs


OPENAI = "openai"
EXTRAS: dict[str, Extra] = {
    "openai": Extra("gpt-4o-mini", OPENAI),
    "azure": Extra("my-deployment", OPENAI),
    "groq": Extra("llama-3.3-70b-versatile", OPENAI),
    "deepseek": Extra("deepseek-chat", OPENAI),
    "openrouter": Extra("meta-llama/llama-3.3-70b-instruct", OPENAI),
    "together": Extra("meta-llama/Llama-3.3-70B-Instruct-Turbo", OPENAI),
    "fireworks": Extra("accounts/fireworks/models/llama-v3p1-8b-instruct", OPENAI),
    "perplexity": Extra("sonar", OPENAI, "perplexity_agent"),  # its Agent API, openai SDK
    "cerebras": Extra("llama3.1-8b", OPENAI),
    "anthropic": Extra("claude-sonnet-4-6", "anthropic"),
    "gemini": Extra("gemini-2.5-flash", "gemini"),
    "cohere": Extra("command-a-03-2025", "cohere"),
    "mistral": Extra("mistral-small-latest", "mistral"),
    "bedrock": Extra("us.anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock"),
    "ollama": Extra("llama3.2", "ollama"),
}

SELECTED = os.environ.get(ENV, "").strip()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
if SELECTED and SELECTED not in EXTRAS:
    raise pytest.UsageError(f"{ENV}={SELECTED!r}: not a provider extra; one of {sorted(EXTRAS)}")
NAMES = [SELECTED] if SELECTED else list(EXTRAS)


def _simulator(name: str, module: Any) -> Server:
    if name == "bedrock":
        return module.BedrockSimulator({AWS_ID: AWS_SECRET})  # type: ignore[no-any-return]
    if name == "ollama":
        return module.OllamaSimulator(api_key=KEY)  # type: ignore[no-any-return]
    if name == "perplexity":
        return module.PerplexityAgentSimulator(KEY)  # type: ignore[no-any-return]
    cls = {"openai": "OpenAISimulator", "anthropic": "AnthropicSimulator",
           "gemini": "GeminiSimulator", "cohere": "CohereSimulator",
           "mistral": "MistralSimulator"}[EXTRAS[name].protocol]
    if name == "azure":
        return module.OpenAISimulator(KEY, auth="azure")  # type: ignore[no-any-return]
    return getattr(module, cls)(KEY)  # type: ignore[no-any-return]


def _answer(name: str, module: Any, cut_after: int | None) -> Reply:
    """The four-token answer with 12 input / 4 output tokens, in the provider's wire format."""
    protocol = EXTRAS[name].protocol
    if name == "perplexity":  # the Agent API's events, usage in response.completed
        perplexity: Reply = module.text_stream(
            TOKENS, input_tokens=INPUT_TOKENS, cut_after=cut_after)
        return perplexity
    count = {"openai": "prompt_tokens", "anthropic": "input_tokens", "gemini": "prompt_tokens",
             "cohere": "input_tokens", "mistral": "prompt_tokens", "bedrock": "input_tokens",
             "ollama": "prompt_eval_count"}[protocol]
    reply: Reply = module.text_stream(TOKENS, **{count: INPUT_TOKENS}, cut_after=cut_after)
    return reply


def _piece_with(reply: Reply, token: str) -> int:
    """Index of the first wire piece (SSE event, NDJSON line, event-stream message) that
    carries ``token`` as a JSON string."""
    needle = json.dumps(token).encode()
    for i, piece in enumerate(reply.stream or ()):
        if needle in piece:
            return i
    raise AssertionError(f"no piece of the scripted answer carries {token!r}")


def _installed(module: str) -> bool:
    """Whether ``module`` (dotted names too) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package (google.genai without google)
        return False


@pytest.fixture(params=NAMES)
def extra(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    sdk = SDKS[EXTRAS[name].protocol]
    if not _installed(sdk):
        message = f"the {name} extra's SDK ({sdk}) is not installed"
        if SELECTED or IN_CI:
            pytest.fail(f"{message}: pip install -e \".[{name}]\"")
        pytest.skip(message)
    yield name


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Bedrock's credentials through AWS's own chain (environment variables)."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))


@pytest.fixture
def sim(extra: str, aws_env: None) -> Iterator[tuple[Server, Any]]:
    spec = EXTRAS[extra]
    module = importlib.import_module(
        f"synapsekit.testing.simulators.{spec.simulator or spec.protocol + '_protocol'}")
    server = _simulator(extra, module)
    server.start()
    try:
        yield server, module
    finally:
        server.stop()


def _llm(extra: str, server: Server, **fields: Any) -> BaseLLM:
    key = None if extra == "bedrock" else KEY
    return make_llm(f"{extra}:{EXTRAS[extra].model}", api_key=key,
                    base_url=server.url,  # type: ignore[attr-defined]
                    timeout=20.0, retry_delay=0, **fields)


async def _collect(llm: BaseLLM) -> list[str]:
    return [token async for token in llm.stream("hi")]


def test_stream_exact_text_and_usage(extra: str, sim: tuple[Server, Any]) -> None:
    server, module = sim
    server.enqueue(_answer(extra, module, None))
    llm = _llm(extra, server)
    assert asyncio.run(_collect(llm)) == TOKENS
    assert llm.tokens_used == {"input": INPUT_TOKENS, "output": len(TOKENS)}
    assert len(server.requests) == 1


def test_cut_before_first_token_is_retried(extra: str, sim: tuple[Server, Any]) -> None:
    server, module = sim
    before_text = _piece_with(_answer(extra, module, None), TOKENS[0])
    server.enqueue(_answer(extra, module, before_text), _answer(extra, module, None))
    llm = _llm(extra, server, max_retries=1)
    assert asyncio.run(_collect(llm)) == TOKENS  # nothing yielded twice
    assert len(server.requests) == 2
    # tokens_used counts what the provider reported, the cut attempt's too: Anthropic's
    # message_start (12 in, 1 out) came before the cut; the others report at the end.
    cut = (INPUT_TOKENS, 1) if EXTRAS[extra].protocol == "anthropic" else (0, 0)
    assert llm.tokens_used == {"input": INPUT_TOKENS + cut[0], "output": len(TOKENS) + cut[1]}


def test_cut_after_tokens_raises_with_the_partial_text(
    extra: str, sim: tuple[Server, Any]
) -> None:
    server, module = sim
    after_two = _piece_with(_answer(extra, module, None), TOKENS[1]) + 1
    server.enqueue(_answer(extra, module, after_two))
    llm = _llm(extra, server, max_retries=2)
    seen: list[str] = []

    async def consume() -> None:
        async for token in llm.stream("hi"):
            seen.append(token)

    with pytest.raises(StreamInterruptedError) as err:
        asyncio.run(consume())
    assert seen == TOKENS[:2]
    assert err.value.partial_text == "".join(TOKENS[:2])
    assert err.value.provider == extra
    assert KEY not in str(err.value) and AWS_SECRET not in str(err.value)
    assert len(server.requests) == 1  # never retried once tokens reached the caller


if SELECTED:

    def test_venv_holds_only_this_extra() -> None:
        """The per-extra venv is what ``pip install synapsekit[<extra>]`` gives: its SDK, no
        other provider SDK, nothing from the dev extra."""
        own = SDKS[EXTRAS[SELECTED].protocol]
        others = sorted(m for m in SDKS.values() if m != own and _installed(m))
        dev = sorted(m for m in ("pytest_asyncio", "litellm", "mypy", "ruff")
                     if _installed(m))
        assert (others, dev) == ([], []), f"the {SELECTED} venv holds more than its extra"
