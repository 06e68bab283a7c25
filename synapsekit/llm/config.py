"""LLMConfig: everything that configures one LLM, validated when it is built.

A config is a frozen value: per-call overrides (``llm.generate(p, temperature=0)``) make a
new one with :func:`dataclasses.replace`, which validates again, so no call ever runs
with a value that was never checked. The API key is kept out of ``repr``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from synapsekit.errors import ConfigError

__all__ = ["CACHE_BACKENDS", "LLMConfig"]

CACHE_BACKENDS = ("memory", "sqlite", "redis")


@dataclass(frozen=True)
class LLMConfig:
    """Configuration of one LLM.

    ``provider`` is detected from ``model`` when not given (see
    :func:`synapsekit.detect_provider`); ``api_key=None`` reads the provider's usual
    environment variable; ``base_url`` overrides the provider's endpoint. ``stop`` and
    ``params`` (extra generation parameters sent as-is, e.g. ``{"top_p": 0.9,
    "seed": 7}``) shape the answer like temperature does. ``headers`` adds HTTP headers
    (e.g. OpenRouter's ``HTTP-Referer``); ``api_version`` is the API version of providers
    that version their endpoint (Azure OpenAI's ``api-version``, Gemini's ``v1beta``).
    """

    model: str
    api_key: str | None = field(default=None, repr=False)
    provider: str | None = None
    base_url: str | None = None
    system_prompt: str | None = "You are a helpful assistant."
    temperature: float = 0.2
    max_tokens: int = 1024
    stop: tuple[str, ...] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    cache: bool = False
    cache_backend: str = "memory"
    cache_maxsize: int = 128
    cache_ttl: float | None = None
    cache_path: str | None = None
    max_retries: int = 0
    retry_delay: float = 1.0
    requests_per_minute: float | None = None
    timeout: float = 60.0
    headers: Mapping[str, str] = field(default_factory=dict)
    api_version: str | None = None

    def __post_init__(self) -> None:
        _check_str("model", self.model, empty_ok=False)
        for name in ("api_key", "provider", "base_url", "system_prompt", "cache_path"):
            value = getattr(self, name)
            if value is not None:
                _check_str(name, value, empty_ok=name == "system_prompt")
        if self.provider is not None:
            from synapsekit.llm.registry import PROVIDERS  # pure data, cheap

            if self.provider not in PROVIDERS:
                raise ConfigError(
                    f"provider: unknown provider {self.provider!r}; valid providers are: "
                    + ", ".join(sorted(PROVIDERS))
                )
        _check_number("temperature", self.temperature, low=0.0, high=2.0)
        _check_int("max_tokens", self.max_tokens, low=1)
        _check_int("cache_maxsize", self.cache_maxsize, low=1)
        _check_int("max_retries", self.max_retries, low=0)
        _check_number("retry_delay", self.retry_delay, low=0.0)
        _check_number("timeout", self.timeout, low=0.0, open_low=True)
        if self.cache_ttl is not None:
            _check_number("cache_ttl", self.cache_ttl, low=0.0, open_low=True)
        if self.requests_per_minute is not None:
            _check_number("requests_per_minute", self.requests_per_minute, low=0, open_low=True)
        if not isinstance(self.cache, bool):
            raise ConfigError(f"cache: must be True or False, not {self.cache!r}")
        if self.cache_backend not in CACHE_BACKENDS:
            raise ConfigError(
                f"cache_backend: {self.cache_backend!r} is not a cache backend; "
                f"choose one of: {', '.join(CACHE_BACKENDS)}"
            )
        if self.stop is not None:
            if isinstance(self.stop, str):
                object.__setattr__(self, "stop", (self.stop,))
            elif isinstance(self.stop, Sequence) and all(isinstance(s, str) for s in self.stop):
                object.__setattr__(self, "stop", tuple(self.stop))
            else:
                raise ConfigError(
                    f"stop: must be a string or a list of strings, not {self.stop!r}"
                )
        for name in ("params", "headers"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name}: must be a dict, not {type(value).__name__}")
        reserved = {"model", "messages", "stream", "temperature", "max_tokens", "stop"}
        clash = reserved.intersection(self.params)
        if clash:
            raise ConfigError(
                f"params: {', '.join(sorted(clash))} must be set as LLMConfig fields, not in params"
            )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' if f.name == 'api_key' else repr(getattr(self, f.name))}"
            for f in fields(self)
            if f.name != "api_key" or self.api_key is not None
        )
        return f"LLMConfig({shown})"


def _check_str(name: str, value: Any, *, empty_ok: bool) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: must be a string, not {type(value).__name__}")
    if not empty_ok and not value.strip():
        raise ConfigError(f"{name}: must not be empty")


def _check_number(
    name: str, value: Any, *, low: float, high: float | None = None, open_low: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name}: must be a number, not {value!r}")
    too_low = value <= low if open_low else value < low
    if too_low or (high is not None and value > high):
        bound = f"> {low}" if open_low else f">= {low}"
        rule = f"between {low} and {high}" if high is not None else bound
        raise ConfigError(f"{name}: must be {rule}, got {value!r}")


def _check_int(name: str, value: Any, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: must be a whole number, not {value!r}")
    if value < low:
        raise ConfigError(f"{name}: must be >= {low}, got {value!r}")
