"""LLMConfig validation and message validation: bad input fails before any request."""

from __future__ import annotations

import pytest

from synapsekit import LLMConfig
from synapsekit.errors import ConfigError, InvalidInputError
from synapsekit.llm.types import build_messages
from synapsekit.testing import FakeLLM


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("temperature", -0.1, "temperature: must be between 0.0 and 2.0"),
        ("temperature", 2.5, "temperature: must be between 0.0 and 2.0"),
        ("temperature", "hot", "temperature: must be a number"),
        ("temperature", float("nan"), "temperature: must be a number"),
        ("max_tokens", 0, "max_tokens: must be >= 1"),
        ("max_tokens", 1.5, "max_tokens: must be a whole number"),
        ("max_tokens", True, "max_tokens: must be a whole number"),
        ("cache_backend", "disk", "cache_backend: 'disk' is not a cache backend"),
        ("timeout", -1, "timeout: must be > 0"),
        ("timeout", 0, "timeout: must be > 0"),
        ("max_retries", -1, "max_retries: must be >= 0"),
        ("cache_maxsize", 0, "cache_maxsize: must be >= 1"),
        ("cache_ttl", 0, "cache_ttl: must be > 0"),
        ("requests_per_minute", 0, "requests_per_minute: must be > 0"),
        ("provider", "nope", "valid providers are: anthropic, azure"),
        ("model", "", "model: must not be empty"),
        ("model", 5, "model: must be a string"),
        ("stop", 5, "stop: must be a string or a list"),
        ("params", {"temperature": 1}, "params: temperature must be set as LLMConfig fields"),
        ("cache", "yes", "cache: must be True or False"),
    ],
)
def test_invalid_field_names_field_and_reason(field: str, value: object, needle: str) -> None:
    kwargs = {"model": "gpt-4o", field: value}
    with pytest.raises(ConfigError) as err:
        LLMConfig(**kwargs)  # type: ignore[arg-type]
    assert needle in str(err.value)
    assert isinstance(err.value, ValueError)


def test_valid_edges_and_defaults() -> None:
    cfg = LLMConfig(model="m", temperature=0, max_tokens=1, stop="END", cache_ttl=None)
    assert cfg.temperature == 0 and cfg.stop == ("END",)
    assert LLMConfig(model="m", temperature=2.0).temperature == 2.0
    assert cfg.system_prompt == "You are a helpful assistant."


def test_api_key_never_in_repr() -> None:
    cfg = LLMConfig(model="gpt-4o", api_key="sk-very-secret-123")
    assert "sk-very-secret-123" not in repr(cfg)
    assert "api_key=***" in repr(cfg)
    assert "sk-very-secret-123" not in str(cfg)


def test_prompt_becomes_user_turn_after_system_prompt() -> None:
    assert build_messages("hi", "Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert build_messages("hi", None) == [{"role": "user", "content": "hi"}]


def test_explicit_system_message_wins() -> None:
    turns = [{"role": "system", "content": "Mine."}, {"role": "user", "content": "q"}]
    assert build_messages(turns, "Config's.") == turns


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ("", "prompt is empty"),
        ("   ", "prompt is empty"),
        ([], "messages is empty"),
        ({"role": "user", "content": "x"}, "not dict"),
        (b"bytes", "not bytes"),
        (42, "not int"),
        (["hi"], "messages[0] must be a dict"),
        ([{"role": "robot", "content": "x"}], "messages[0] has role 'robot'"),
        ([{"role": "user"}],
         "messages[0] (user) content must be a string or a list of parts, not NoneType"),
        ([{"role": "user", "content": "ok"}, {"role": "assistant", "content": " "}],
         "messages[1] (assistant) has empty content"),
        ([{"role": "system", "content": "only"}], "only system messages"),
    ],
)
def test_bad_messages_fail_before_any_request(messages: object, needle: str) -> None:
    llm = FakeLLM(["never"])
    with pytest.raises(InvalidInputError) as err:
        llm.generate_with_messages_sync(messages)  # type: ignore[arg-type]
    assert needle in str(err.value)
    assert llm.calls == []


def test_per_call_overrides_are_validated() -> None:
    llm = FakeLLM(["ok"])
    with pytest.raises(ConfigError, match="temperature"):
        llm.generate_sync("q", temperature=5)
    with pytest.raises(ConfigError, match="not a per-call setting"):
        llm.generate_sync("q", model="other")
    assert llm.generate_sync("q", temperature=0, system_prompt="Terse.") == "ok"
    assert llm.calls[-1][0] == {"role": "system", "content": "Terse."}
