"""Model profiles (synapsekit/llm/models.json): the request rules, row by row, and the bodies
that reach each provider's simulator because of them.

The OpenAI simulator knows which models are reasoning models on its own (not from
models.json) and refuses what the real API refuses, so a body that breaks a rule is a 400
here as it would be there; every rule is also checked in the other direction (the value
does go out where it is allowed), so each test can fail.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapsekit import LLMConfig, make_llm
from synapsekit.errors import ConfigError, InvalidRequestError
from synapsekit.llm import models
from synapsekit.llm.models import RequestRules, UnsupportedParameterWarning, request_rules
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, check_body, text_stream
from synapsekit.testing.simulators.server import Server
from tests.conftest import API_KEY
from tests.sim_fixtures import aws_credentials

REASONING = ("openai-reasoning", False, "max_completion_tokens")
OPENAI = ("openai", True, "max_completion_tokens")
DEFAULT = ("default", True, "max_tokens")

# (provider, model) -> (family, sampling, max_tokens_field): one row per case, every
# pattern of every row of models.json hit at least once (checked below).
CASES: list[tuple[str, str, tuple[str, bool, str]]] = [
    ("openai", "o1", REASONING),
    ("openai", "o1-mini", REASONING),
    ("openai", "o1-2024-12-17", REASONING),
    ("openai", "o1-pro", REASONING),
    ("openai", "o3", REASONING),
    ("openai", "o3-mini", REASONING),
    ("openai", "o3-mini-2025-01-31", REASONING),
    ("openai", "o3-pro", REASONING),
    ("openai", "o4-mini", REASONING),
    ("openai", "o4-mini-2025-04-16", REASONING),
    ("openai", "gpt-5", REASONING),
    ("openai", "gpt-5-mini", REASONING),
    ("openai", "gpt-5-nano", REASONING),
    ("openai", "gpt-5-pro", REASONING),
    ("openai", "gpt-5-2025-08-07", REASONING),
    ("openai", "gpt-5-mini-2025-08-07", REASONING),
    ("openai", "gpt-5.1", REASONING),
    ("openai", "GPT-5.4-mini", REASONING),  # names are matched lower-cased
    ("openai", "gpt-5-chat-latest", OPENAI),  # the non-reasoning chat model
    ("openai", "gpt-5-chat", OPENAI),
    ("openai", "gpt-4o", OPENAI),
    ("openai", "gpt-4.1-mini", OPENAI),
    ("openai", "o10", OPENAI),  # not o1 + a suffix
    ("openai", "gpt-50", OPENAI),
    ("azure", "o3-mini", REASONING),  # a deployment named after its model
    ("azure", "gpt-5-nano", REASONING),
    ("azure", "gpt-5-chat-latest", DEFAULT),
    ("azure", "my-deployment", DEFAULT),
    ("azure", "gpt-4o", DEFAULT),
    ("groq", "o3-mini", DEFAULT),  # the rows are per provider
    ("openrouter", "openai/o3-mini", ("openrouter", True, "max_tokens")),
    ("ollama", "gpt-5", DEFAULT),
    ("anthropic", "claude-sonnet-4-6", ("claude-4.6", True, "max_tokens")),
    ("gemini", "gemini-2.5-flash", ("gemini-2.5-flash", True, "max_tokens")),
    ("cohere", "command-a-03-2025", ("cohere-text-only", True, "max_tokens")),
    ("mistral", "magistral-medium-latest", ("magistral", True, "max_tokens")),
    ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", DEFAULT),
]


@pytest.mark.parametrize(("provider", "model", "expected"), CASES,
                         ids=[f"{p}:{m}" for p, m, _ in CASES])
def test_rules_row_by_row(provider: str, model: str, expected: tuple[str, bool, str]) -> None:
    rules = request_rules(provider, model)
    assert (rules.family, rules.sampling, rules.max_tokens_field) == expected


def test_every_row_and_pattern_is_reachable() -> None:
    """No dead row: a name made from each pattern (``*`` -> ``x``) of each row, on each of
    its providers, is given that row's family -- no earlier row of another family shadows
    it -- unless the row's own ``exclude`` takes it out."""
    import fnmatch

    for row in models.model_rows():
        for pattern in row["models"]:
            name = pattern.replace("*", "x")
            if any(fnmatch.fnmatchcase(name, ex) for ex in row.get("exclude", [])):
                continue
            for provider in row["providers"]:
                assert request_rules(provider, name).family == row["family"], (
                    provider, pattern)


def test_cases_cover_every_request_rule_family() -> None:
    """The families that change what a request carries (sampling, output-length field) are
    each checked row by row above."""
    families = {expected[0] for _, _, expected in CASES}
    shaping = {row["family"] for row in models.model_rows()
               if {"sampling", "max_tokens_field"} & set(row.get("request", {}))}
    assert shaping <= families


def test_table_defaults_are_the_dataclass_defaults() -> None:
    raw = json.loads(Path(models.__file__).with_name("models.json").read_text())
    defaults = raw["defaults"]["request"]
    plain = RequestRules()
    assert defaults == {"sampling": plain.sampling, "max_tokens_field": plain.max_tokens_field}
    # A temperature left at LLMConfig's default is dropped without a warning.
    assert LLMConfig(model="m").temperature == models._default_temperature() == 0.2


def test_base_model_picks_the_row_of_an_azure_deployment() -> None:
    plain = LLMConfig(model="prod-chat", provider="azure")
    served = dataclasses.replace(plain, base_model="o3-mini")
    assert models.rules_for("azure", plain).family == "default"
    assert models.rules_for("azure", served).family == "openai-reasoning"
    with pytest.raises(ConfigError, match="base_model: must not be empty"):
        LLMConfig(model="prod-chat", base_model=" ")


def test_temperature_none_is_valid_and_others_still_checked() -> None:
    assert LLMConfig(model="m", temperature=None).temperature is None
    with pytest.raises(ConfigError, match=r"temperature: must be between 0\.0 and 2\.0"):
        LLMConfig(model="m", temperature=3)


@pytest.mark.parametrize(("params", "name"), [
    ({"n": 2}, "n=2"), ({"candidate_count": 3}, "candidate_count=3"),
    ({"candidateCount": 2}, "candidateCount=2"), ({"num_generations": 4}, "num_generations=4"),
    ({"n": 0}, "n=0"),
])
def test_several_answers_refused_before_any_request(params: dict[str, int], name: str) -> None:
    with pytest.raises(ConfigError, match=f"params: {name} asks for several answers"):
        LLMConfig(model="gpt-4o", params=params)
    llm = make_llm("gpt-4o", api_key="k")
    with pytest.raises(ConfigError, match="several answers"):  # per-call overrides too
        llm.generate_sync("hi", params=params)


def test_one_answer_is_fine() -> None:
    assert LLMConfig(model="m", params={"n": 1, "candidate_count": None}).params["n"] == 1


# ------------------------------------------------------------- the simulator's own checks


@pytest.mark.parametrize(("model", "body", "param", "code"), [
    ("o3-mini", {"max_tokens": 5}, "max_tokens", "unsupported_parameter"),
    ("o3-mini", {"temperature": 0.2}, "temperature", "unsupported_parameter"),
    ("o4-mini", {"top_p": 0.5}, "top_p", "unsupported_parameter"),
    ("o1", {"temperature": 0.5}, "temperature", "unsupported_value"),
    ("gpt-5-nano", {"top_p": 0.9}, "top_p", "unsupported_value"),
])
def test_simulator_refuses_what_reasoning_models_refuse(
    model: str, body: dict[str, Any], param: str, code: str
) -> None:
    reply = check_body({"model": model, "messages": [{"role": "user", "content": "hi"}],
                        **body})
    assert reply is not None and reply.status == 400
    error = json.loads(reply.body)["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param,
                                                              code)
    if param == "max_tokens":
        assert error["message"] == ("Unsupported parameter: 'max_tokens' is not supported "
                                    "with this model. Use 'max_completion_tokens' instead.")


@pytest.mark.parametrize(("model", "body"), [
    ("o1", {"temperature": 1, "max_completion_tokens": 5}),  # the default value is accepted
    ("gpt-5-chat-latest", {"temperature": 0.2, "max_tokens": 5}),
    ("gpt-4o", {"temperature": 0.2, "top_p": 0.5, "max_tokens": 5}),
])
def test_simulator_accepts_what_they_accept(model: str, body: dict[str, Any]) -> None:
    assert check_body({"model": model, "messages": [{"role": "user", "content": "hi"}],
                       **body}) is None


# --------------------------------------------------------------- bodies over the wire


def _body(sim: OpenAISimulator) -> dict[str, Any]:
    (request,) = sim.requests
    body: dict[str, Any] = request.json()
    return body


@pytest.mark.parametrize("model", ["o3-mini", "o1", "gpt-5-nano", "o4-mini-2025-04-16"])
async def test_reasoning_model_body_is_accepted(openai_sim: OpenAISimulator, model: str) -> None:
    openai_sim.enqueue(text_stream(["Hi", "!"], model=model))
    llm = make_llm(model, api_key=API_KEY, base_url=openai_sim.url, max_tokens=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default temperature is dropped silently
        assert await llm.generate("hi") == "Hi!"
    body = _body(openai_sim)
    assert body["max_completion_tokens"] == 64
    assert not {"max_tokens", "temperature", "top_p"} & set(body)


async def test_explicit_sampling_dropped_with_one_warning(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(text_stream(["a"]), text_stream(["b"]))
    llm = make_llm("o1-2024-12-17", api_key=API_KEY, base_url=openai_sim.url, temperature=0.7,
                   params={"top_p": 0.5, "seed": 3, "reasoning_effort": "low"})
    with pytest.warns(UnsupportedParameterWarning) as caught:
        assert await llm.generate("hi") == "a"
        assert await llm.generate("hi") == "b"  # once per model and parameter
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert messages[0].startswith("temperature=0.7 is not sent to 'o1-2024-12-17' on 'openai'")
    assert messages[1].startswith("top_p=0.5 is not sent to 'o1-2024-12-17' on 'openai'")
    body = openai_sim.requests[0].json()
    assert (body["seed"], body["reasoning_effort"]) == (3, "low")
    assert not {"temperature", "top_p", "max_tokens"} & set(body)


async def test_non_reasoning_openai_model_keeps_sampling(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(text_stream(["ok"]))
    llm = make_llm("gpt-5-chat-latest", api_key=API_KEY, base_url=openai_sim.url,
                   temperature=0.4, params={"top_p": 0.9})
    assert await llm.generate("hi") == "ok"
    body = _body(openai_sim)
    assert (body["temperature"], body["top_p"], body["max_completion_tokens"]) == (0.4, 0.9,
                                                                                    1024)


async def test_per_call_temperature_none(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(text_stream(["a"]), text_stream(["b"]))
    llm = make_llm("gpt-4o", api_key=API_KEY, base_url=openai_sim.url, temperature=0.9)
    assert await llm.generate("hi", temperature=None) == "a"
    assert await llm.generate("hi") == "b"
    first, second = (r.json() for r in openai_sim.requests)
    assert "temperature" not in first and second["temperature"] == 0.9


async def test_vendor_without_the_rule_gets_the_real_400(openai_sim: OpenAISimulator) -> None:
    # Groq has no reasoning row, so the body keeps max_tokens + temperature: the simulator
    # (standing in for an API that serves o3-mini) refuses it exactly as OpenAI would.
    llm = make_llm("o3-mini", provider="groq", api_key=API_KEY, base_url=openai_sim.url)
    with pytest.raises(InvalidRequestError) as err:
        await llm.generate("hi")
    assert err.value.status_code == 400 and err.value.code == "unsupported_parameter"
    assert "max_completion_tokens" in str(err.value)
    assert len(openai_sim.requests) == 1


@pytest.fixture
def deployments(azure_sim: OpenAISimulator) -> Iterator[OpenAISimulator]:
    azure_sim.deployments.update({"prod-chat": "o3-mini", "o4-mini": "o4-mini"})
    yield azure_sim
    azure_sim.deployments.clear()


async def test_azure_deployment_named_after_its_model(deployments: OpenAISimulator) -> None:
    deployments.enqueue(text_stream(["ok"]))
    llm = make_llm("o4-mini", provider="azure", api_key=API_KEY, base_url=deployments.url)
    assert await llm.generate("hi") == "ok"
    body = _body(deployments)
    assert body["max_completion_tokens"] == 1024
    assert not {"max_tokens", "temperature"} & set(body)


async def test_azure_deployment_with_base_model(deployments: OpenAISimulator) -> None:
    llm = make_llm("prod-chat", provider="azure", api_key=API_KEY, base_url=deployments.url)
    with pytest.raises(InvalidRequestError, match="max_completion_tokens"):
        await llm.generate("hi")  # nothing says prod-chat serves o3-mini: the real 400
    deployments.reset()
    deployments.enqueue(text_stream(["ok"]))
    llm = make_llm("prod-chat", provider="azure", api_key=API_KEY, base_url=deployments.url,
                   base_model="o3-mini")
    assert await llm.generate("hi") == "ok"
    (request,) = deployments.requests
    assert request.path == "/openai/deployments/prod-chat/chat/completions"
    assert request.json()["max_completion_tokens"] == 1024
    assert "temperature" not in request.json()


# ------------------------------------------------ temperature=None on every provider


KEY = "profiles-key-0123456789"
AWS_ID, AWS_SECRET = "AKIAPROFILESTEST0000", "profiles/secret/key/0123456789"
TOKENS = ["Hello", "!"]
# protocol: (simulator module, simulator factory, 2-token answer)
PROTOCOLS: dict[str, tuple[str, Any, Any]] = {
    "openai": ("openai_protocol", lambda m: m.OpenAISimulator(KEY),
               lambda m: m.text_stream(TOKENS)),
    "azure": ("openai_protocol", lambda m: m.OpenAISimulator(KEY, auth="azure"),
              lambda m: m.text_stream(TOKENS)),
    "anthropic": ("anthropic_protocol", lambda m: m.AnthropicSimulator(KEY),
                  lambda m: m.text_stream(TOKENS)),
    "gemini": ("gemini_protocol", lambda m: m.GeminiSimulator(KEY),
               lambda m: m.text_stream(TOKENS)),
    "cohere": ("cohere_protocol", lambda m: m.CohereSimulator(KEY),
               lambda m: m.text_stream(TOKENS)),
    "mistral": ("mistral_protocol", lambda m: m.MistralSimulator(KEY),
                lambda m: m.text_stream(TOKENS)),
    "ollama": ("ollama_protocol", lambda m: m.OllamaSimulator(api_key=KEY),
               lambda m: m.text_stream(TOKENS)),
    "bedrock": ("bedrock_protocol", lambda m: m.BedrockSimulator({AWS_ID: AWS_SECRET}),
                lambda m: m.text_stream(TOKENS)),
    "perplexity": ("perplexity_agent", lambda m: m.PerplexityAgentSimulator(KEY),
                   lambda m: m.text_stream(TOKENS)),  # the Agent API, POST /v1/agent
}
PROVIDERS = [
    ("openai", "gpt-4o-mini", "openai"),
    ("azure", "my-deployment", "azure"),
    ("groq", "llama-3.3-70b-versatile", "openai"),
    ("deepseek", "deepseek-chat", "openai"),
    ("openrouter", "meta-llama/llama-3.3-70b-instruct", "openai"),
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "openai"),
    ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct", "openai"),
    ("perplexity", "sonar", "perplexity"),
    ("cerebras", "llama3.1-8b", "openai"),
    # Anthropic's current API version takes no temperature at all: pin the older one.
    ("anthropic", "claude-sonnet-4-6", "anthropic"),
    ("gemini", "gemini-2.5-flash", "gemini"),
    ("cohere", "command-a-03-2025", "cohere"),
    ("mistral", "mistral-small-latest", "mistral"),
    ("ollama", "llama3.2", "ollama"),
    ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock"),
]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[Server, Any]]]:
    started: dict[str, tuple[Server, Any]] = {}
    try:
        for name, (module_name, start, _) in PROTOCOLS.items():
            module = importlib.import_module(f"synapsekit.testing.simulators.{module_name}")
            server = start(module)
            server.start()
            started[name] = (server, module)
        yield started
    finally:
        for server, _ in started.values():
            server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Bedrock's credentials through AWS's own chain (environment, not SDK patching)."""
    aws_credentials(monkeypatch, tmp_path, AWS_ID, AWS_SECRET)


def _keys(obj: Any) -> set[str]:
    """Every key at any depth of a JSON value."""
    if isinstance(obj, dict):
        return set(obj).union(*(_keys(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(_keys(v) for v in obj))
    return set()


def _temperatures(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        found = [v for k, v in obj.items() if k == "temperature"]
        return found + [t for v in obj.values() for t in _temperatures(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in _temperatures(v)]
    return []


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS,
                         ids=[p for p, _, _ in PROVIDERS])
@pytest.mark.parametrize("temperature", [None, 0.3])
async def test_temperature_none_sends_none(
    provider: str, model: str, protocol: str, temperature: float | None,
    servers: dict[str, tuple[Server, Any]],
) -> None:
    server, module = servers[protocol]
    server.reset()
    server.enqueue(PROTOCOLS[protocol][2](module))
    headers = {"anthropic-version": "2023-06-01"} if provider == "anthropic" else {}
    llm = make_llm(f"{provider}:{model}", api_key=None if provider == "bedrock" else KEY,
                   base_url=server.url,  # type: ignore[attr-defined]
                   temperature=temperature, headers=headers)
    try:
        assert await llm.generate("hi") == "Hello!"
    finally:
        await llm.aclose()
    (request,) = server.requests
    body = request.json()
    assert {"messages", "contents", "input"} & set(body)  # the request body itself
    if temperature is None:
        assert "temperature" not in _keys(body)
    else:  # the positive control: the same path does send a temperature
        assert _temperatures(body) == [0.3]


# ----------------------------------------------------------------------- docs/models.md


def test_docs_table_matches_the_json() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "models.md").read_text()
    start = doc.index("<!-- rules-table")
    block = doc[doc.index("\n", start) + 1:doc.index("<!-- /rules-table -->")].strip()
    assert block == models.rules_table()
