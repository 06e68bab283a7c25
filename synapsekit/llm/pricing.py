"""Per-token prices, from a dated data file, so every traced call can carry its cost.

Why a data file: prices change more often than code. ``prices.json`` (next to this
module) holds USD per 1,000,000 tokens for the popular models of every provider, the
date it was checked, the pricing page of each provider and a note saying what could not
be verified. It is read lazily, on the first lookup, never at import.

Why the split prices: :class:`~synapsekit.llm.types.Usage` counts cached input and cache
writes *inside* ``input_tokens`` and reasoning *inside* ``output_tokens``, and providers
bill each part at its own rate::

    cost = (input - cached - cache_write) * input  + cached * cached_input
         + cache_write * cache_write               + (output - reasoning) * output
         + reasoning * reasoning                   (all / 1,000,000)

A missing ``cached_input`` or ``cache_write`` price means the input price; a missing
``reasoning`` price means the output price (OpenAI, Gemini and DeepSeek bill thinking
as output). A provider that reports what it bills apart from what it processed (Cohere's
``billed_units``) sets ``Usage.billed_input_tokens`` / ``billed_output_tokens``; then
``cost = billed_input * input + billed_output * output`` (all / 1,000,000).

Names: an exact entry wins; otherwise date / version suffixes are stripped one at a time
(``gpt-4o-2024-08-06`` -> ``gpt-4o``, ``gemini-2.5-flash-preview-05-20`` ->
``gemini-2.5-flash``), so a model never falls back to a shorter *sibling*
(``gpt-4o-mini`` is never priced as ``gpt-4o``). Azure deployments fall back to OpenAI's
table, Bedrock ``anthropic.*`` ids and OpenRouter ``vendor/model`` ids to the vendor's
table. Ollama runs locally and costs 0.0. An unknown model costs ``None`` (never a silent
0) with one :class:`UnknownModelPriceWarning` per model and process; prices registered
with :func:`register_price` win over the packaged ones.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, fields
from importlib import resources
from typing import TYPE_CHECKING, Any

from synapsekit.errors import ConfigError

if TYPE_CHECKING:
    from synapsekit.llm.types import Usage

__all__ = [
    "PRICES_DATE",
    "Price",
    "UnknownModelPriceWarning",
    "cost",
    "price_for",
    "prices_date",
    "register_price",
]

#: The date the packaged prices were checked (YYYY-MM-DD); read on first access.
PRICES_DATE: str  # provided by the module __getattr__ below, so import does no I/O

_PER = 1_000_000.0
_DATA_FILE = "prices.json"
#: Leading path parts that do not change the price.
_PREFIXES = ("models/", "accounts/fireworks/models/")
#: One trailing date / version / alias part; stripped repeatedly, never a model-name part.
_SUFFIX = re.compile(
    r"(?:-latest|-preview|-exp|-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{2}-\d{4}|-\d{2}-\d{2}"
    r"|-\d{3,4}|-v\d+|:\d+)$"
)
#: OpenRouter ``vendor/model`` ids billed at the vendor's own price (pass-through).
_OPENROUTER_VENDORS = {
    "openai": "openai", "anthropic": "anthropic", "google": "gemini", "mistralai": "mistral",
    "deepseek": "deepseek", "cohere": "cohere", "perplexity": "perplexity",
}
#: A Bedrock id: optional region / inference-profile prefix, vendor, model.
_BEDROCK_ID = re.compile(r"^(?:[a-z]{2,6}(?:-[a-z]+)?\.)?(?P<vendor>[a-z0-9]+)\.(?P<model>.+)$")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1,000,000 tokens. ``None`` parts bill at the input (cache) or output
    (reasoning) price."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None

    def cost(self, usage: Usage) -> float:
        """The USD cost of one call's usage (counts are clamped to be consistent).

        When the provider reported billed counts (``usage.billed_input_tokens`` /
        ``billed_output_tokens``, e.g. Cohere's ``billed_units``), those are what is
        charged: billed input at the input price, billed output at the output price.
        """
        if usage.billed_input_tokens is not None or usage.billed_output_tokens is not None:
            billed_in = _or_count(usage.billed_input_tokens, usage.input_tokens)
            billed_out = _or_count(usage.billed_output_tokens, usage.output_tokens)
            return (billed_in * self.input + billed_out * self.output) / _PER
        cached = min(max(usage.cached_input_tokens, 0), usage.input_tokens)
        written = min(max(usage.cache_write_tokens, 0), usage.input_tokens - cached)
        reasoning = min(max(usage.reasoning_tokens, 0), usage.output_tokens)
        total = (
            (usage.input_tokens - cached - written) * self.input
            + cached * _or(self.cached_input, self.input)
            + written * _or(self.cache_write, self.input)
            + (usage.output_tokens - reasoning) * self.output
            + reasoning * _or(self.reasoning, self.output)
        )
        return total / _PER


FREE = Price(input=0.0, output=0.0)


class UnknownModelPriceWarning(UserWarning):
    """No price is known for a model: its calls are traced with ``cost_usd=None``."""


@dataclass(frozen=True)
class _Data:
    updated: str
    tables: dict[str, dict[str, Price]]


class _Registry:
    """Process-wide mutable state: user prices, resolved lookups, models warned about."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.user: dict[tuple[str | None, str], Price] = {}
        self.resolved: dict[tuple[str, str], Price | None] = {}
        self.warned: set[tuple[str, str]] = set()


_state = _Registry()


def prices_date() -> str:
    """The date (YYYY-MM-DD) the packaged prices were checked."""
    return _tables().updated


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``model`` on ``provider``, or None when unknown (no warning)."""
    key = (provider.lower(), model.lower())
    state = _state
    with state.lock:
        if key in state.resolved:
            return state.resolved[key]
    found = _resolve(*key, state)
    with state.lock:
        state.resolved[key] = found
    return found


def cost(provider: str, model: str, usage: Usage) -> float | None:
    """The USD cost of one call, or None for an unknown model.

    An unknown model warns once per (provider, model) and process with
    :class:`UnknownModelPriceWarning`; it is never silently priced at 0.
    """
    price = price_for(provider, model)
    if price is None:
        _warn_unknown(provider, model)
        return None
    return price.cost(usage)


def register_price(
    model: str,
    *,
    input: float,
    output: float,
    cached_input: float | None = None,
    cache_write: float | None = None,
    reasoning: float | None = None,
    provider: str | None = None,
) -> None:
    """Set the price of ``model`` (USD per 1M tokens); it wins over the packaged price.

    ``provider=None`` applies to the model name on every provider; a provider-specific
    registration wins over it. Dated names fall back to a registered base name too.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"register_price: model must be a non-empty string, not {model!r}")
    if provider is not None and provider.lower() not in _tables().tables:
        raise ConfigError(
            f"register_price: unknown provider {provider!r}; valid providers are: "
            + ", ".join(sorted(_tables().tables))
        )
    price = Price(
        input=_amount("input", input),
        output=_amount("output", output),
        cached_input=_optional_amount("cached_input", cached_input),
        cache_write=_optional_amount("cache_write", cache_write),
        reasoning=_optional_amount("reasoning", reasoning),
    )
    state = _state
    with state.lock:
        state.user[(provider.lower() if provider else None, model.lower())] = price
        state.resolved.clear()


def __getattr__(name: str) -> Any:
    # PRICES_DATE is read from the data file on first access, keeping import free of I/O.
    if name == "PRICES_DATE":
        return prices_date()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------- lookup


def _resolve(provider: str, model: str, state: _Registry) -> Price | None:
    if provider == "ollama" or (provider == "openrouter" and model.endswith(":free")):
        return FREE
    with state.lock:
        user = dict(state.user)
    if user:
        for name in _candidates(model):
            found = user.get((provider, name)) or user.get((None, name))
            if found is not None:
                return found
    tables = _tables().tables
    for table, name in _routes(provider, model):
        entries = tables.get(table, {})
        for candidate in _candidates(name):
            if candidate in entries:
                return entries[candidate]
    return None


def _routes(provider: str, model: str) -> Iterator[tuple[str, str]]:
    """(table, name) pairs to search, in order: the provider's own table, then mirrors."""
    if provider == "bedrock":
        match = _BEDROCK_ID.match(model)
        if match is None:
            yield provider, model
            return
        vendor, rest = match["vendor"], match["model"]
        yield provider, f"{vendor}.{rest}"
        if vendor == "anthropic":  # Claude on Bedrock bills Anthropic's list price
            yield "anthropic", rest
        return
    yield provider, model
    if provider == "azure":
        yield "openai", model
    elif provider == "openrouter":
        vendor, sep, rest = model.partition("/")
        if sep and vendor in _OPENROUTER_VENDORS:
            yield _OPENROUTER_VENDORS[vendor], rest


def _candidates(name: str) -> Iterator[str]:
    """``name``, then ``name`` with known prefixes and one more suffix stripped each time."""
    seen: set[str] = set()
    for base in _spellings(name):
        current = base
        while current and current not in seen:
            seen.add(current)
            yield current
            current = _SUFFIX.sub("", current)


def _spellings(name: str) -> Iterator[str]:
    yield name
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            yield name
    if "claude" in name and "." in name:  # OpenRouter writes claude-sonnet-4.5
        yield name.replace(".", "-")


def _warn_unknown(provider: str, model: str) -> None:
    key = (provider, model)
    state = _state
    with state.lock:
        if key in state.warned:
            return
        state.warned.add(key)
    warnings.warn(
        f"No price is known for model {model!r} on provider {provider!r} (prices checked "
        f"{prices_date()}): its cost is reported as None. Set one with "
        f"synapsekit.llm.pricing.register_price({model!r}, provider={provider!r}, "
        "input=..., output=...).",
        UnknownModelPriceWarning,
        stacklevel=3,
    )


# ----------------------------------------------------------------------- the data file


@functools.cache
def _tables() -> _Data:
    text = resources.files("synapsekit.llm").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    tables = {
        provider.lower(): {model.lower(): _price_entry(provider, model, entry)
                           for model, entry in models.items()}
        for provider, models in raw["models"].items()
    }
    return _Data(updated=str(raw["updated"]), tables=tables)


_PRICE_FIELDS = frozenset(f.name for f in fields(Price))


def _price_entry(provider: str, model: str, entry: dict[str, Any]) -> Price:
    unknown = set(entry) - _PRICE_FIELDS
    if unknown:
        raise ValueError(f"{_DATA_FILE}: {provider}/{model} has unknown fields {sorted(unknown)}")
    return Price(**{k: float(v) for k, v in entry.items()})


def _amount(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"register_price: {name} must be a finite number, not {value!r}")
    if value < 0:
        raise ConfigError(f"register_price: {name} must be >= 0, got {value!r}")
    return float(value)


def _optional_amount(name: str, value: Any) -> float | None:
    return None if value is None else _amount(name, value)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _or_count(value: int | None, default: int) -> int:
    return max(default if value is None else value, 0)
