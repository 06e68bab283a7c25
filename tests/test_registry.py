"""The provider table: detection rules row by row, make_llm, and the table against pyproject."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tomllib

import synapsekit.llm as llm_pkg
from synapsekit import LLMConfig, detect_provider, make_llm
from synapsekit.errors import ConfigError, MissingAPIKeyError, MissingDependencyError
from synapsekit.llm.registry import DETECTION_RULES, PROVIDERS, provider_class, providers_markdown

ROOT = Path(__file__).resolve().parent.parent

# One row per rule (and the tricky neighbours of each): model -> provider.
DETECTION = [
    ("claude-sonnet-4-6", "anthropic"),
    ("claude-haiku-4-5-20251001", "anthropic"),
    ("gemini-2.5-flash", "gemini"),
    ("command-r-plus", "cohere"),
    ("command-a-03-2025", "cohere"),
    ("mistral-large-latest", "mistral"),
    ("open-mistral-nemo", "mistral"),
    ("codestral-latest", "mistral"),
    ("ministral-8b-latest", "mistral"),
    ("magistral-medium-latest", "mistral"),
    ("pixtral-12b-2409", "mistral"),
    ("devstral-small-latest", "mistral"),
    ("voxtral-mini-latest", "mistral"),
    ("open-mixtral-8x22b", "mistral"),
    ("deepseek-chat", "deepseek"),
    ("deepseek-reasoner", "deepseek"),
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock"),
    ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "bedrock"),
    ("eu.amazon.nova-pro-v1:0", "bedrock"),
    ("apac.meta.llama3-2-90b-instruct-v1:0", "bedrock"),
    ("amazon.titan-text-express-v1", "bedrock"),
    ("meta.llama3-70b-instruct-v1:0", "bedrock"),
    ("mistral.mistral-large-2402-v1:0", "bedrock"),
    ("cohere.command-r-plus-v1:0", "bedrock"),
    ("ai21.jamba-1-5-large-v1:0", "bedrock"),
    ("us-gov.anthropic.claude-3-haiku-20240307-v1:0", "bedrock"),
    ("sonar", "perplexity"),
    ("sonar-pro", "perplexity"),
    ("accounts/fireworks/models/llama-v3p1-70b-instruct", "fireworks"),
    ("llama-3.3-70b-versatile", "groq"),
    ("mixtral-8x7b-32768", "groq"),
    ("gemma-7b-it", "groq"),
    ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "openrouter"),
    ("anthropic/claude-sonnet-4.5", "openrouter"),
    ("deepseek/deepseek-r1", "openrouter"),
    ("gpt-4o-mini", "openai"),
    ("o3-mini", "openai"),
    ("some-unknown-model", "openai"),
    # provider:model prefixes win over every rule
    ("ollama:llama3.2:1b", "ollama"),
    ("groq:llama-3.3-70b", "groq"),
    ("together:meta-llama/Llama-3-70b", "together"),
    ("cerebras:llama3.1-8b", "cerebras"),
    ("azure:my-deployment", "azure"),
    ("bedrock:anthropic.claude-v2", "bedrock"),
    # a colon that is not a provider prefix is part of the name
    ("my-model:latest", "openai"),
    # prefix match as on the SynapseKit page (llama*, mixtral*, gemma*): Groq's names;
    # an Ollama tag such as llama3.2:1b needs provider="ollama" or "ollama:llama3.2:1b"
    ("gemma2-9b-it", "groq"),
    ("llama3-70b-8192", "groq"),
    ("llama3.2:1b", "groq"),
]


@pytest.mark.parametrize(("model", "provider"), DETECTION)
def test_detect_provider(model: str, provider: str) -> None:
    assert detect_provider(model) == provider


def test_every_rule_is_exercised() -> None:
    hit = {provider for _, provider in DETECTION}
    assert {p for _, _, p in DETECTION_RULES} <= hit


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_detect_provider_rejects_non_names(bad: object) -> None:
    with pytest.raises(ConfigError):
        detect_provider(bad)  # type: ignore[arg-type]


def test_fifteen_providers_and_their_classes_are_exported() -> None:
    assert len(PROVIDERS) == 15
    for spec in PROVIDERS.values():
        cls = getattr(llm_pkg, spec.class_name)
        assert cls is provider_class(spec.name)
        assert cls.provider == spec.name
        assert spec.class_name in llm_pkg.__all__


def test_registry_matches_pyproject_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert project["dependencies"] == [], "the core install carries no provider SDK"
    everything = {req.split(">")[0].split("=")[0] for req in extras["all"]}
    for spec in PROVIDERS.values():
        names = {req.split(">")[0].split("=")[0] for req in extras[spec.extra]}
        assert names == {spec.package, *spec.also}, spec.name
        assert {spec.package, *spec.also} <= everything
    backends = {  # runtime backends and RAG extras, not providers
        "sqlite": {"aiosqlite"}, "redis": {"redis"}, "rag": {"numpy"}, "pdf": {"pypdf"},
        "cli": {"tqdm"},  # the CLI's progress bar
        "structured": {"jsonschema", "pydantic"},  # generate_object's validators
        "gateway": {"starlette", "uvicorn", "tomli"},  # `synapsekit serve` (tomli: Python 3.10)
        "postgres": {"psycopg[binary]"},  # the gateway's PostgreSQL ledger and key store
        "otel": {"opentelemetry-api"},  # OpenTelemetry instrumentation: the API only
    }
    for extra, packages in backends.items():
        assert {req.split(">")[0] for req in extras[extra]} == packages
        assert packages <= everything
    assert set(extras) == set(PROVIDERS) | set(backends) | {"all", "dev"}


def test_docs_tables_are_generated_from_the_registry() -> None:
    text = (ROOT / "docs" / "providers.md").read_text()
    begin, end = "<!-- generated by providers_markdown() -->\n", "<!-- end generated -->"
    assert begin in text and end in text
    section = text.split(begin, 1)[1].split(end, 1)[0]
    assert section == providers_markdown(), (
        "docs/providers.md is stale: paste synapsekit.llm.registry.providers_markdown()"
    )


def test_make_llm_shorthand_and_config_agree() -> None:
    a = make_llm("groq:llama-3.3-70b", api_key="k")
    b = make_llm(LLMConfig(model="llama-3.3-70b", api_key="k"))
    assert type(a).__name__ == type(b).__name__ == "GroqLLM"
    assert a.config == b.config
    assert a.model == "llama-3.3-70b"
    assert a.base_url == "https://api.groq.com/openai/v1"


def test_explicit_provider_wins_over_detection() -> None:
    llm = make_llm("claude-sonnet-4-6", provider="openrouter", api_key="k")
    assert type(llm).__name__ == "OpenRouterLLM"


def test_base_url_overrides_default() -> None:
    llm = make_llm("sonar", api_key="k", base_url="http://127.0.0.1:9/")
    assert llm.base_url == "http://127.0.0.1:9/"
    assert make_llm("sonar", api_key="k").base_url == "https://api.perplexity.ai"


def test_unknown_provider_lists_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        make_llm("gpt-4o", provider="openaii", api_key="k")
    assert isinstance(err.value, ValueError)
    for name in PROVIDERS:
        assert name in str(err.value)


def test_make_llm_rejects_wrong_types() -> None:
    with pytest.raises(ConfigError, match="LLMConfig or a model name"):
        make_llm(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "env"),
    [("gpt-4o", "OPENAI_API_KEY"), ("llama-3.3-70b", "GROQ_API_KEY"),
     ("sonar", "PERPLEXITY_API_KEY"), ("deepseek-chat", "DEEPSEEK_API_KEY"),
     ("x/y", "OPENROUTER_API_KEY")],
)
def test_missing_key_names_the_env_var(
    model: str, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for spec in PROVIDERS.values():
        for var in spec.env_vars:
            monkeypatch.delenv(var, raising=False)
    with pytest.raises(MissingAPIKeyError, match=env):
        make_llm(model)
    monkeypatch.setenv(env, "from-env")
    assert make_llm(model)._api_key == "from-env"


def test_azure_needs_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        make_llm("azure:gpt-4o", api_key="k")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com")
    assert make_llm("azure:gpt-4o", api_key="k").base_url == "https://r.openai.azure.com"


def test_missing_sdk_names_the_pip_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # makes `import openai` fail
    with pytest.raises(MissingDependencyError) as err:
        make_llm("llama-3.3-70b", api_key="k")
    assert 'pip install "synapsekit[groq]"' in str(err.value)
    assert isinstance(err.value, ImportError)


def test_class_refuses_a_config_for_another_provider() -> None:
    from synapsekit.llm import GroqLLM

    with pytest.raises(ConfigError, match="GroqLLM"):
        GroqLLM(LLMConfig(model="gpt-4o", provider="openai", api_key="k"))
    assert GroqLLM(LLMConfig(model="llama-3.3-70b", api_key="k")).config.provider == "groq"
