"""Per-token prices, from a dated data file, so every traced call can carry its cost.

Why a data file: prices change more often than code. ``prices.json`` (next to this
module) holds one list of **price rows** per provider. A row lists the exact model ids
and aliases it covers (``ids``), its prices in USD per 1,000,000 tokens, the date it was
checked and where (``checked`` / ``source``, falling back to the provider's), and whether
the model is retired (``true`` or its shutdown date; the row is kept, so old ledgers still
price, and the quote says ``retired``). It is read lazily, on the first
lookup, never at import. docs/tracing.md ("How cost is computed") is the reader's page.

Names are never guessed. A model name (lower-cased) matches a row only when the row lists
it; ``gpt-4o-2024-05-13`` is not ``gpt-4o``, ``mistral-large-2402`` is not Mistral Large 3.
Router-style names resolve by these explicit rules, and only by them:

* ``gemini``: a leading ``models/`` (the API's resource name) is dropped;
  ``fireworks``: a leading ``accounts/fireworks/models/`` is dropped.
* ``bedrock``: one leading inference-profile prefix (:data:`BEDROCK_PROFILES`: ``us.``,
  ``eu.``, ``apac.``, ``global.``, ...) is dropped and the rest must be a Bedrock row's
  id. A row with ``regional_premium`` (Claude 4.5 and later: 10%) costs that much more on
  every call that is not made through a ``global.`` profile.
* ``azure``: priced by the model the *response* reports (``Usage.model``, e.g.
  ``gpt-4o-2024-11-20``), else by the deployment name; looked up in the Azure rows, then
  in OpenAI's (global standard deployments bill the OpenAI list price).
* ``openrouter``: OpenRouter's own rows first; else ``vendor/model`` of a vendor in
  :data:`OPENROUTER_VENDORS` is the vendor's row whose ids list ``model`` or whose
  ``openrouter`` list names the whole id (OpenRouter passes vendor prices through);
  ``:free`` variants cost 0.
* ``ollama``: local, every model costs 0.0.

A name no rule resolves is unknown: its cost is ``None`` (never a sibling's price, never
a silent 0) with one :class:`UnknownModelPriceWarning` per model and process, naming the
model and :func:`register_price`; prices registered there win over the packaged ones.

Why the split prices: :class:`~synapsekit.llm.types.Usage` counts cached input and cache
writes *inside* ``input_tokens`` and reasoning *inside* ``output_tokens``, and providers
bill each part at its own rate (all / 1,000,000)::

    cost = (input - cached - cache_write) * input   + cached * cached_input
         + (cache_write - cache_write_1h) * cache_write + cache_write_1h * cache_write_1h
         + (output - reasoning) * output            + reasoning * reasoning
         + request fee (per call)

with every rate taken from the long-context tier the call's input size falls in (a tier
``above_input_tokens: N`` applies to the whole call when ``input_tokens > N``: Anthropic
counts cache reads and writes in that size, as ``Usage.input_tokens`` does). A missing
``cached_input`` or ``cache_write`` price means the input price, a missing
``cache_write_1h`` the 5-minute ``cache_write`` price, a missing ``reasoning`` price the
output price (OpenAI, Gemini and DeepSeek bill thinking as output). A provider that
reports what it bills apart from what it processed (Cohere's ``billed_units``) sets
``Usage.billed_input_tokens`` / ``billed_output_tokens``; then
``cost = billed_input * input + billed_output * output + request fee``.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from synapsekit.errors import ConfigError

if TYPE_CHECKING:
    from synapsekit.llm.types import Usage

__all__ = [
    "BEDROCK_PROFILES",
    "OPENROUTER_VENDORS",
    "PRICES_DATE",
    "Price",
    "Quote",
    "Tier",
    "UnknownModelPriceWarning",
    "cost",
    "price_for",
    "priced",
    "prices_date",
    "quote",
    "register_price",
]

#: The date the packaged prices were last changed (YYYY-MM-DD); read on first access.
PRICES_DATE: str  # provided by the module __getattr__ below, so import does no I/O

_PER = 1_000_000.0
_DATA_FILE = "prices.json"
#: Bedrock cross-region inference-profile prefixes (geography, or ``global.``).
#: GovCloud (``us-gov.``) bills other prices and is not listed: such ids are unknown.
BEDROCK_PROFILES = ("us.", "eu.", "apac.", "jp.", "au.", "ca.", "global.")
#: OpenRouter ``vendor/`` prefixes billed at the vendor's own price (pass-through).
OPENROUTER_VENDORS: Mapping[str, str] = {
    "openai": "openai", "anthropic": "anthropic", "google": "gemini", "mistralai": "mistral",
    "cohere": "cohere", "perplexity": "perplexity",
}
#: Provider-specific leading path parts that name the same model (not guesses).
_PREFIXES: Mapping[str, str] = {"gemini": "models/", "fireworks": "accounts/fireworks/models/"}
#: Perplexity's default ``search_context_size``: the fee billed when the response names none.
_DEFAULT_SEARCH_CONTEXT = "low"


@dataclass(frozen=True, slots=True)
class Tier:
    """Rates for a call whose input is longer than ``above_input_tokens`` (they apply to
    the whole call); a part left ``None`` keeps the base rate."""

    above_input_tokens: int
    input: float | None = None
    output: float | None = None
    cached_input: float | None = None
    cache_write: float | None = None
    cache_write_1h: float | None = None
    reasoning: float | None = None


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1,000,000 tokens (``request``: USD per call). ``None`` parts bill at the
    input (cache), 5-minute cache write (1-hour write) or output (reasoning) price.

    ``request_by_search_context`` is a per-call fee by Perplexity's
    ``search_context_size`` (``("low", 0.005), ...``); ``tiers`` are long-context rates."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None
    cache_write_1h: float | None = None
    request: float | None = None
    request_by_search_context: tuple[tuple[str, float], ...] = ()
    tiers: tuple[Tier, ...] = ()

    def at(self, input_tokens: int) -> Price:
        """The rates in effect for a call with ``input_tokens`` of input (its tier)."""
        chosen = None
        for tier in self.tiers:
            if input_tokens > tier.above_input_tokens and (
                chosen is None or tier.above_input_tokens > chosen.above_input_tokens
            ):
                chosen = tier
        if chosen is None:
            return self
        parts = {name: getattr(chosen, name) for name in _TIER_PARTS
                 if getattr(chosen, name) is not None}
        return replace(self, tiers=(), **parts)

    def request_fee(self, usage: Usage) -> float:
        """The per-call fee (0.0 for a call that was never answered)."""
        if usage.input_tokens <= 0 and usage.output_tokens <= 0:
            return 0.0
        fee = self.request or 0.0
        if self.request_by_search_context:
            fees = dict(self.request_by_search_context)
            size = (usage.search_context_size or _DEFAULT_SEARCH_CONTEXT).lower()
            fee += fees.get(size, max(fees.values()))  # an unknown size: the highest fee
        return fee

    def cost(self, usage: Usage) -> float:
        """The USD cost of one call's usage (counts are clamped to be consistent).

        When the provider reported billed counts (``usage.billed_input_tokens`` /
        ``billed_output_tokens``, e.g. Cohere's ``billed_units``), those are what is
        charged: billed input at the input price, billed output at the output price.
        """
        rates = self.at(usage.input_tokens)
        fee = self.request_fee(usage)
        if usage.billed_input_tokens is not None or usage.billed_output_tokens is not None:
            billed_in = _or_count(usage.billed_input_tokens, usage.input_tokens)
            billed_out = _or_count(usage.billed_output_tokens, usage.output_tokens)
            return (billed_in * rates.input + billed_out * rates.output) / _PER + fee
        cached = min(max(usage.cached_input_tokens, 0), usage.input_tokens)
        written = min(max(usage.cache_write_tokens, 0), usage.input_tokens - cached)
        written_1h = min(max(usage.cache_write_1h_tokens, 0), written)
        reasoning = min(max(usage.reasoning_tokens, 0), usage.output_tokens)
        write_5m = _or(rates.cache_write, rates.input)
        total = (
            (usage.input_tokens - cached - written) * rates.input
            + cached * _or(rates.cached_input, rates.input)
            + (written - written_1h) * write_5m
            + written_1h * _or(rates.cache_write_1h, write_5m)
            + (usage.output_tokens - reasoning) * rates.output
            + reasoning * _or(rates.reasoning, rates.output)
        )
        return total / _PER + fee

    def scaled(self, factor: float) -> Price:
        """Every rate and fee times ``factor`` (a regional premium)."""
        def times(value: float | None) -> float | None:
            return None if value is None else value * factor

        return Price(
            **{name: times(getattr(self, name)) for name in _RATE_PARTS},  # type: ignore[arg-type]
            request_by_search_context=tuple(
                (size, fee * factor) for size, fee in self.request_by_search_context),
            tiers=tuple(
                Tier(tier.above_input_tokens,
                     **{name: times(getattr(tier, name)) for name in _TIER_PARTS})
                for tier in self.tiers),
        )


_TIER_PARTS = ("input", "output", "cached_input", "cache_write", "cache_write_1h", "reasoning")
_RATE_PARTS = (*_TIER_PARTS, "request")

FREE = Price(input=0.0, output=0.0)


@dataclass(frozen=True, slots=True)
class Quote:
    """A price and where it came from: ``row`` names the price row
    (``"provider:first id"``, ``"user:model"`` for :func:`register_price`,
    ``"ollama:local"``), ``checked`` the date that row was checked (None for a user
    price), ``rule`` how the name reached it (``"exact"``, ``"bedrock profile us.
    +10% regional"``, ``"openrouter pass-through"``, ``"azure reported model"``, ...).
    ``retired`` is set for a model the provider no longer serves (its row stays so old
    ledgers still price); ``retired_on`` is the shutdown date when the data file names one."""

    price: Price
    row: str
    checked: str | None
    source: str | None = None
    rule: str = "exact"
    retired: bool = False
    retired_on: str | None = None


class UnknownModelPriceWarning(UserWarning):
    """No price is known for a model: its calls are traced with ``cost_usd=None``."""


@dataclass(frozen=True)
class _Row:
    provider: str
    ids: tuple[str, ...]
    price: Price
    checked: str
    source: str
    retired: bool
    regional_premium: float
    openrouter: tuple[str, ...]
    note: str = ""
    retired_on: str | None = None

    def quote(self, rule: str = "exact", price: Price | None = None) -> Quote:
        return Quote(price or self.price, f"{self.provider}:{self.ids[0]}", self.checked,
                     self.source, rule, self.retired, self.retired_on)


@dataclass(frozen=True)
class _Data:
    updated: str
    rows: dict[str, list[_Row]]
    index: dict[str, dict[str, _Row]]  # provider -> id -> row
    openrouter: dict[str, _Row] = field(default_factory=dict)  # OpenRouter id -> vendor row


class _Registry:
    """Process-wide mutable state: user prices, resolved lookups, models warned about."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.user: dict[tuple[str | None, str], Price] = {}
        self.resolved: dict[tuple[str, str, str | None], Quote | None] = {}
        self.warned: set[tuple[str, str]] = set()


_state = _Registry()


def prices_date() -> str:
    """The date (YYYY-MM-DD) the packaged price table was last changed."""
    return _tables().updated


def quote(provider: str, model: str, *, reported_model: str | None = None) -> Quote | None:
    """The price of ``model`` on ``provider`` and the row it came from, or None when
    unknown (no warning). ``reported_model``: the model the response named (used for
    Azure, where ``model`` is a deployment name)."""
    reported = reported_model.lower() if reported_model and provider.lower() == "azure" else None
    key = (provider.lower(), model.strip().lower(), reported)
    state = _state
    with state.lock:
        if key in state.resolved:
            return state.resolved[key]
    found = _resolve(*key, state)
    with state.lock:
        state.resolved[key] = found
    return found


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``model`` on ``provider``, or None when unknown (no warning)."""
    found = quote(provider, model)
    return None if found is None else found.price


def priced(provider: str, model: str, usage: Usage) -> tuple[float | None, Quote | None]:
    """The USD cost of one call and the quote that priced it; ``(None, None)`` for an
    unknown model, which warns once per (provider, model) and process.

    A provider-stated bill wins: when ``usage.stated_cost_usd`` is set (Perplexity's Agent
    API, OpenRouter), it is the cost; the quote is still returned, its ``rule`` saying
    the cost was stated (None when no row lists the model: no warning, the cost is known).
    """
    found = quote(provider, model, reported_model=usage.model)
    stated = usage.stated_cost_usd
    if stated is not None:
        if found is not None:
            found = replace(found, rule=f"{found.rule}; cost stated by {provider}")
        return float(stated), found
    if found is None:
        _warn_unknown(provider, model, usage.model)
        return None, None
    return found.price.cost(usage), found


def cost(provider: str, model: str, usage: Usage) -> float | None:
    """The USD cost of one call, or None for an unknown model.

    An unknown model warns once per (provider, model) and process with
    :class:`UnknownModelPriceWarning`; it is never silently priced at 0.
    """
    return priced(provider, model, usage)[0]


def register_price(
    model: str,
    *,
    input: float,
    output: float,
    cached_input: float | None = None,
    cache_write: float | None = None,
    reasoning: float | None = None,
    cache_write_1h: float | None = None,
    request: float | None = None,
    provider: str | None = None,
) -> None:
    """Set the price of ``model`` (USD per 1M tokens; ``request`` USD per call); it wins
    over the packaged price.

    ``provider=None`` applies to the model name on every provider; a provider-specific
    registration wins over it. The name is matched exactly (lower-cased): register each
    dated snapshot you call.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"register_price: model must be a non-empty string, not {model!r}")
    if provider is not None and provider.lower() not in _tables().rows:
        raise ConfigError(
            f"register_price: unknown provider {provider!r}; valid providers are: "
            + ", ".join(sorted(_tables().rows))
        )
    price = Price(
        input=_amount("input", input),
        output=_amount("output", output),
        cached_input=_optional_amount("cached_input", cached_input),
        cache_write=_optional_amount("cache_write", cache_write),
        reasoning=_optional_amount("reasoning", reasoning),
        cache_write_1h=_optional_amount("cache_write_1h", cache_write_1h),
        request=_optional_amount("request", request),
    )
    state = _state
    with state.lock:
        state.user[(provider.lower() if provider else None, model.strip().lower())] = price
        state.resolved.clear()


def __getattr__(name: str) -> Any:
    # PRICES_DATE is read from the data file on first access, keeping import free of I/O.
    if name == "PRICES_DATE":
        return prices_date()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------- lookup


def _resolve(provider: str, model: str, reported: str | None, state: _Registry) -> Quote | None:
    if provider == "ollama":
        return Quote(FREE, "ollama:local", None, None, "local model")
    if provider == "router":  # a Router's own record (its cache hit, a call no member took)
        return Quote(FREE, "router:own", None, None, "no provider was called")
    if provider == "openrouter" and model.endswith(":free"):
        return Quote(FREE, "openrouter:free", None, None, "openrouter :free variant")
    names = [name for name in (reported, model) if name]
    with state.lock:
        user = dict(state.user)
    for name in names:
        found = user.get((provider, name)) or user.get((None, name))
        if found is not None:
            return Quote(found, f"user:{name}", None, None, "register_price")
    data = _tables()
    if provider == "bedrock":
        return _bedrock(model, data)
    if provider == "azure":
        for name in names:
            rule = "azure reported model" if name == reported else "azure deployment name"
            row = data.index["azure"].get(name)
            if row is not None:
                return row.quote(rule)
            row = data.index["openai"].get(name)
            if row is not None:
                return row.quote(f"{rule}, OpenAI list price")
        return None
    name = model
    prefix = _PREFIXES.get(provider)
    if prefix and name.startswith(prefix):
        name = name[len(prefix):]
    row = data.index.get(provider, {}).get(name)
    if row is not None:
        return row.quote()
    if provider == "openrouter":
        return _openrouter(model, data)
    return None


def _bedrock(model: str, data: _Data) -> Quote | None:
    profile = next((p for p in BEDROCK_PROFILES if model.startswith(p)), "")
    row = data.index["bedrock"].get(model[len(profile):])
    if row is None:
        return None
    rule = f"bedrock profile {profile}" if profile else "exact"
    if row.regional_premium and profile != "global.":
        premium = f"+{row.regional_premium:.0%} regional endpoint"
        return row.quote(f"{rule} {premium}", row.price.scaled(1.0 + row.regional_premium))
    return row.quote(rule)


def _openrouter(model: str, data: _Data) -> Quote | None:
    row = data.openrouter.get(model)
    if row is None:
        vendor, sep, rest = model.partition("/")
        table = OPENROUTER_VENDORS.get(vendor) if sep else None
        row = data.index[table].get(rest) if table else None
    return None if row is None else row.quote("openrouter pass-through")


def _warn_unknown(provider: str, model: str, reported: str | None) -> None:
    key = (provider, model)
    state = _state
    with state.lock:
        if key in state.warned:
            return
        state.warned.add(key)
    also = f" (the response named {reported!r})" if reported and provider == "azure" else ""
    warnings.warn(
        f"No price is known for model {model!r} on provider {provider!r}{also} (price table "
        f"of {prices_date()}; names are matched exactly): its cost is reported as None. Set "
        f"one with synapsekit.llm.pricing.register_price({model!r}, provider={provider!r}, "
        "input=..., output=...).",
        UnknownModelPriceWarning,
        stacklevel=3,
    )


# ----------------------------------------------------------------------- the data file

_ROW_FIELDS = frozenset({
    "ids", "input", "output", "cached_input", "cache_write", "cache_write_1h", "reasoning",
    "request", "tiers", "regional_premium", "retired", "checked", "source", "note", "openrouter",
})


@functools.cache
def _tables() -> _Data:
    from importlib import resources  # with the table, not with the module

    text = resources.files("synapsekit.llm").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    rows: dict[str, list[_Row]] = {}
    index: dict[str, dict[str, _Row]] = {}
    openrouter: dict[str, _Row] = {}
    for provider, entries in raw["models"].items():
        meta = raw["providers"][provider]
        rows[provider] = [_row(provider, entry, meta) for entry in entries]
        index[provider] = {}
        for row in rows[provider]:
            for name in row.ids:
                if name in index[provider]:
                    raise ValueError(f"{_DATA_FILE}: {provider} lists {name!r} in two rows")
                index[provider][name] = row
            for name in row.openrouter:
                openrouter[name] = row
    return _Data(updated=str(raw["updated"]), rows=rows, index=index, openrouter=openrouter)


def _row(provider: str, entry: dict[str, Any], meta: Mapping[str, Any]) -> _Row:
    unknown = set(entry) - _ROW_FIELDS
    ids = tuple(entry.get("ids") or ())
    if unknown or not ids or any(name != name.lower() for name in ids):
        raise ValueError(f"{_DATA_FILE}: bad row {provider}/{ids}: fields {sorted(unknown)}")
    request = entry.get("request")
    retired = entry.get("retired", False)  # true, or the shutdown date "YYYY-MM-DD"
    if not (isinstance(retired, bool) or _is_date(retired)):
        raise ValueError(f"{_DATA_FILE}: {provider}/{ids[0]}: retired must be true/false "
                         f"or a YYYY-MM-DD date, not {retired!r}")
    price = Price(
        input=float(entry["input"]),
        output=float(entry["output"]),
        **{name: _float(entry.get(name)) for name in
           ("cached_input", "cache_write", "reasoning", "cache_write_1h")},
        request=float(request) if isinstance(request, (int, float)) else None,
        request_by_search_context=tuple(
            (size, float(fee)) for size, fee in request.items()) if isinstance(request, dict)
        else (),
        tiers=tuple(
            Tier(int(tier["above_input_tokens"]),
                 **{name: _float(tier.get(name)) for name in _TIER_PARTS})
            for tier in entry.get("tiers", ())),
    )
    return _Row(
        provider=provider,
        ids=ids,
        price=price,
        checked=str(entry.get("checked") or meta["checked"]),
        source=str(entry.get("source") or meta["source"]),
        retired=retired is True or isinstance(retired, str),
        retired_on=retired if isinstance(retired, str) else None,
        regional_premium=float(entry.get("regional_premium", 0.0)),
        openrouter=tuple(entry.get("openrouter", ())),
        note=str(entry.get("note", "")),
    )


def _rows() -> Iterator[_Row]:
    """Every packaged row (for docs and the CI cross-check)."""
    for table in _tables().rows.values():
        yield from table


def _is_date(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-" and (
        value[:4] + value[5:7] + value[8:]).isdigit()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


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
