"""Model profiles: what a request to each model may carry, read from ``models.json``.

Why a data table: which parameters a model refuses is a fact about the model, not about
the protocol module that talks to it. OpenAI's reasoning models (o1, o3, o4-mini, gpt-5
and their dated / -mini / -nano / -pro variants) refuse ``max_tokens`` (they want
``max_completion_tokens``) and any ``temperature`` / ``top_p`` but the default, on
api.openai.com and on Azure alike. One row of ``models.json`` says so; a provider's
request builder asks :func:`rules_for` and follows the answer, with no ``if`` on model
names of its own. The table is read on the first lookup, never at import.

Rows are matched first to last: a row applies when the provider is one of its
``providers`` and the model name, lower-cased, matches one of its ``models`` glob
patterns and none of its ``exclude`` patterns. Fields a row leaves out come from the
table's ``defaults``. An Azure deployment name is arbitrary: it is matched as it is
(deployments are usually named after their model), and ``LLMConfig.base_model`` says
which model a deployment serves when its name does not.

What a builder does with the rules (:meth:`RequestRules.temperature`,
:meth:`RequestRules.params`):

- ``LLMConfig(temperature=None)`` sends no temperature, to any model;
- a model without ``sampling`` gets no temperature, no ``LLMConfig.top_p`` and no
  ``top_p`` / ``top_k`` from ``params`` (:meth:`RequestRules.top_p`). A temperature left
  at the config default is dropped silently; any other value (a ``top_p``, a sampling key
  in ``params``) is dropped with one
  :class:`UnsupportedParameterWarning` per provider, model and parameter, so a config
  shared by many models keeps working and the change is visible once.

A row holds a ``request`` section (the rules above), a ``limits`` section (the model's
context window and maximum output, with the ``source`` each figure was read from), or
both; each section is resolved on its own, by the first matching row that has it, so a
size row for one model never changes the request rules of its family. :func:`profile`
joins the two with the provider class's :class:`~synapsekit.llm.content.Capabilities`
(a model only narrows what its provider's API takes) and the price of
:func:`synapsekit.llm.pricing.quote` into one :class:`ModelProfile`: what the Router's
``"cheapest"`` strategy, request validation and docs/models.md are derived from.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.content import Capabilities
    from synapsekit.llm.pricing import Price, Quote
    from synapsekit.llm.types import Message

__all__ = [
    "SAMPLING_PARAMS",
    "ModelLimits",
    "ModelProfile",
    "RequestNeeds",
    "RequestRules",
    "UnsupportedParameterWarning",
    "limit_rows",
    "model_limits",
    "model_rows",
    "narrowed",
    "needs_of",
    "profile",
    "profile_for",
    "profiles_table",
    "request_rules",
    "rules_for",
    "worst_case",
]

_DATA_FILE = "models.json"
#: ``params`` keys a model without ``sampling`` never receives (besides ``temperature``).
SAMPLING_PARAMS: frozenset[str] = frozenset({"top_p", "top_k"})
MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")


class UnsupportedParameterWarning(UserWarning):
    """A parameter the model refuses was dropped from the request (once per model)."""


@dataclass(frozen=True, slots=True)
class RequestRules:
    """What a request to one model may carry.

    ``sampling``: whether ``temperature`` and ``top_p`` / ``top_k`` may be sent.
    ``max_tokens_field``: the name of the output-length field on OpenAI's protocol,
    ``"max_tokens"`` or ``"max_completion_tokens"`` (other protocols have one name).
    ``family``: the matching row of ``models.json`` (``"default"`` when none matched).
    """

    sampling: bool = True
    max_tokens_field: str = "max_tokens"
    #: How the model takes reasoning controls: ``""`` it takes none (a reasoning setting
    #: is an UnsupportedFeatureError), ``"effort"`` a level among ``efforts``, ``"budget"``
    #: a token budget within ``budget_min``..``budget_max``, ``"both"`` either.
    reasoning: str = ""
    efforts: tuple[str, ...] = ()
    budget_min: int = 0
    budget_max: int | None = None
    #: Whether reasoning can be switched off (``reasoning_effort="none"`` / budget 0).
    reasoning_off: bool = True
    #: Per-model limits under the provider's capabilities (None: the provider's say).
    images: bool | None = None
    documents: bool | None = None
    tools: bool | None = None
    #: False: the model has no structured output (no schema mode, no forced tool call).
    structured: bool | None = None
    #: False: the model returns at most one tool call per turn.
    parallel_tools: bool | None = None
    family: str = "default"
    provider: str = ""
    model: str = ""

    def temperature(self, config: LLMConfig) -> float | None:
        """The temperature to send, or None to send none."""
        value = config.temperature
        if value is None or self.sampling:
            return value
        if value != _default_temperature():
            self._warn("temperature", value)
        return None

    def top_p(self, config: LLMConfig) -> float | None:
        """``LLMConfig.top_p`` to send, or None to send none (a model without sampling
        gets none, with one warning)."""
        value = config.top_p
        if value is None or self.sampling:
            return value
        self._warn("top_p", value, field=True)
        return None

    def params(self, config: LLMConfig) -> Mapping[str, Any]:
        """``config.params`` without the keys this model refuses."""
        params = config.params
        if self.sampling or not params or SAMPLING_PARAMS.isdisjoint(params):
            return params
        for key in SAMPLING_PARAMS.intersection(params):
            self._warn(key, params[key])
        return {k: v for k, v in params.items() if k not in SAMPLING_PARAMS}

    def effort(self, config: LLMConfig) -> str | None:
        """``config.reasoning_effort`` (or one made from ``reasoning_budget``) clamped to
        the nearest level this model accepts; None: send none. ``"none"`` stays ``"none"``
        (the encoder switches reasoning off its own way)."""
        wanted = config.reasoning_effort
        if wanted is None and config.reasoning_budget is not None:
            wanted = effort_for_budget(config.reasoning_budget)
        if wanted is None or wanted == "none" or not self.efforts:
            return wanted
        return nearest(wanted, self.efforts)

    def budget(self, config: LLMConfig) -> int | None:
        """``config.reasoning_budget`` (or one made from ``reasoning_effort``, see
        :data:`EFFORT_BUDGETS`) clamped to ``budget_min``..``budget_max``; 0 means off."""
        budget = config.reasoning_budget
        if budget is None and config.reasoning_effort is not None:
            budget = EFFORT_BUDGETS[config.reasoning_effort]
        if budget is None or budget == 0:
            return budget
        budget = max(budget, self.budget_min)
        return min(budget, self.budget_max) if self.budget_max is not None else budget

    def _warn(self, name: str, value: Any, *, field: bool = False) -> None:
        key = (self.provider, self.model, name)
        with _warned_lock:
            if key in _warned:
                return
            _warned.add(key)
        fix = (
            f"pass {name}=None" if field or name == "temperature"
            else f"leave {name} out of params"
        )
        warnings.warn(
            f"{name}={value!r} is not sent to {self.model!r} on {self.provider!r}: "
            f"models of the {self.family!r} family refuse it (see docs/models.md); "
            f"{fix} to silence this warning.",
            UnsupportedParameterWarning,
            stacklevel=4,
        )


#: The token budget a reasoning level stands for on models that take a budget (Anthropic
#: ``thinking.budget_tokens``, Gemini 2.5 ``thinkingBudget``, Bedrock): the level's
#: usual size; ``"none"`` is 0 (off).
EFFORT_BUDGETS: dict[str, int] = {
    "none": 0, "minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768,
}
_EFFORT_ORDER = ("none", "minimal", "low", "medium", "high", "xhigh")


def effort_for_budget(budget: int) -> str:
    """The reasoning level whose :data:`EFFORT_BUDGETS` size is closest to ``budget``."""
    return min(EFFORT_BUDGETS, key=lambda level: abs(EFFORT_BUDGETS[level] - budget))


def nearest(level: str, accepted: tuple[str, ...]) -> str:
    """``level`` if accepted, else the accepted level nearest to it (ties: the higher)."""
    if level in accepted:
        return level
    rank = _EFFORT_ORDER.index(level)

    def distance(candidate: str) -> tuple[int, int]:
        position = _EFFORT_ORDER.index(candidate)
        return abs(position - rank), -position

    return min(accepted, key=distance)


_warned: set[tuple[str, str, str]] = set()
_warned_lock = threading.Lock()


@functools.cache
def _default_temperature() -> Any:
    """LLMConfig's default temperature: dropped without a warning (nobody chose it)."""
    from synapsekit.llm.config import LLMConfig

    return LLMConfig.__dataclass_fields__["temperature"].default


def rules_for(provider: str, config: LLMConfig) -> RequestRules:
    """The rules for the model ``config`` addresses: ``config.base_model`` when set (the
    model an Azure deployment serves), else ``config.model``."""
    return request_rules(provider, config.base_model or config.model)


@functools.lru_cache(maxsize=1024)
def request_rules(provider: str, model: str) -> RequestRules:
    """The :class:`RequestRules` of ``model`` on ``provider`` (first matching row wins)."""
    table = _table()
    name = model.lower()
    provider = provider.lower()
    for row in table.rows:
        if row.request is not None and provider in row.providers and row.matches(name):
            return RequestRules(**{**table.defaults, **row.request},
                                family=row.family, provider=provider, model=model)
    return RequestRules(**table.defaults, provider=provider, model=model)


def rules_table() -> str:
    """The rows of ``models.json`` as the markdown table docs/models.md shows (kept in step
    by tests/test_profiles.py; print it with ``python -m synapsekit.llm.models``)."""
    raw = _raw()
    defaults = raw["defaults"].get("request", {})

    def names(patterns: list[str]) -> str:
        return ", ".join(f"`{p}`" for p in patterns)

    def cells(family: str, providers: str, models_: str, exclude: str,
              request: Mapping[str, Any]) -> str:
        rules = RequestRules(**{**defaults, **_request_section(family, request)})
        sampling = "sent" if rules.sampling else "not sent"
        if rules.reasoning == "":
            reasoning = "none"
        else:
            parts = []
            if rules.reasoning in ("effort", "both"):
                parts.append("effort " + "/".join(rules.efforts or ("any",)))
            if rules.reasoning in ("budget", "both"):
                top = rules.budget_max if rules.budget_max is not None else "..."
                parts.append(f"budget {rules.budget_min}-{top}")
            if not rules.reasoning_off:
                parts.append("never off")
            reasoning = "; ".join(parts)
        limits = [f"no {kind.replace('_', ' ')}" for kind in
                  ("images", "documents", "tools", "structured", "parallel_tools")
                  if getattr(rules, kind) is False]
        return (f"| {family} | {providers} | {models_} | {exclude} | {sampling} | "
                f"`{rules.max_tokens_field}` | {reasoning} | {', '.join(limits)} |")

    lines = [
        "| family | providers | models | except | temperature / top_p | output-length field "
        "| reasoning | limits |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in _request_rows(raw):
        lines.append(cells(row["family"], ", ".join(row["providers"]), names(row["models"]),
                           names(row.get("exclude", [])), row.get("request", {})))
    lines.append(cells("default", "any other", "", "", {}))
    return "\n".join(lines)


def model_rows() -> list[dict[str, Any]]:
    """The rows of ``models.json`` that hold request rules, as read (for docs and tests)."""
    return [dict(row) for row in _request_rows(_raw())]


def limit_rows() -> list[dict[str, Any]]:
    """The rows of ``models.json`` that hold a ``limits`` section, as read."""
    return [dict(row) for row in _raw()["models"] if "limits" in row]


def _request_rows(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [row for row in raw["models"] if "request" in row]


# ----------------------------------------------------------------------- model profiles


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """A model's sizes as its provider documents them (None: not documented, never a
    guess), the ``models.json`` row they came from and where that row was read."""

    context_window: int | None
    max_output: int | None
    row: str
    source: str
    checked: str
    #: A separate input limit (Gemini 2.x/3.x count input and output apart; GPT-6.1 Terra
    #: takes at most 922,000 input tokens of its 1,050,000 window).
    max_input: int | None = None


@functools.lru_cache(maxsize=1024)
def model_limits(provider: str, model: str) -> ModelLimits | None:
    """The sizes of ``model`` on ``provider`` (first matching row with ``limits``), or None
    when no row describes the model."""
    name, provider = model.lower(), provider.lower()
    for row in _table().rows:
        if row.limits is not None and provider in row.providers and row.matches(name):
            return row.limits
    return None


def narrowed(caps: Capabilities, rules: RequestRules) -> Capabilities:
    """The provider's capabilities under one model's limits: a model only takes away
    (``None`` in the rules leaves the provider's say)."""
    images, documents, tools = rules.images, rules.documents, rules.tools
    if False not in (images, documents, tools, rules.structured):
        return caps
    return replace(
        caps,
        images=caps.images and images is not False,
        image_urls=caps.image_urls and images is not False,
        documents=caps.documents and documents is not False,
        tools=caps.tools and tools is not False,
        parallel_tool_calls=caps.parallel_tool_calls and tools is not False,
        tool_choices=caps.tool_choices if tools is not False else frozenset(),
        structured=caps.structured if rules.structured is not False else "",
    )


@dataclass(frozen=True, slots=True)
class RequestNeeds:
    """What one request needs of a model (:func:`needs_of`): its estimated input
    (:func:`~synapsekit.llm.ratelimit.estimate_tokens`: the messages, the tool definitions
    and the response schema), its output limit, and the features
    it uses. ``image_urls``: an image is a remote URL (some APIs take bytes only)."""

    input_tokens: int
    max_tokens: int
    tools: bool = False
    images: bool = False
    documents: bool = False
    schema: bool = False
    reasoning: bool = False
    image_urls: bool = False


def needs_of(turns: list[Message], config: LLMConfig) -> RequestNeeds:
    """The needs of a request of ``turns`` under ``config`` (turns in the canonical or
    OpenAI part shapes; a tool call or result in the history needs tools too)."""
    from synapsekit.llm.ratelimit import estimate_tokens

    images = documents = urls = False
    history_tools = False
    for turn in turns:
        if "tool_calls" in turn or turn["role"] == "tool":
            history_tools = True
        content = turn["content"]
        if isinstance(content, str):
            continue
        for part in content:
            kind = part.get("type")
            if kind in ("image", "image_url"):
                images = True
                url = part.get("url") if kind == "image" else part.get("image_url")
                if isinstance(url, Mapping):
                    url = url.get("url")
                urls = urls or (isinstance(url, str) and not url.startswith("data:"))
            elif kind in ("document", "file"):
                documents = True
    effort, budget = config.reasoning_effort, config.reasoning_budget
    return RequestNeeds(
        input_tokens=estimate_tokens(
            turns, 0, tools=config.tools, response_schema=config.response_schema
        ),
        max_tokens=config.max_tokens,
        tools=bool(config.tools) or history_tools,
        images=images,
        documents=documents,
        schema=config.response_schema is not None,
        reasoning=(effort is not None and effort != "none") or bool(budget),
        image_urls=urls,
    )


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """One model on one provider, as data: sizes (``models.json`` ``limits``), what it takes
    (the provider class's capabilities narrowed by the model's request rules), and its
    price (:func:`synapsekit.llm.pricing.quote`, never copied). ``known``: a ``limits``
    row describes the model (else the sizes are None and only the provider's say holds).
    ``reasoning``: it takes reasoning controls (``reasoning_effort`` / ``_budget``)."""

    provider: str
    model: str
    context_window: int | None
    max_output: int | None
    tools: bool
    parallel_tools: bool
    vision: bool
    pdf: bool
    structured: bool
    reasoning: bool
    input_usd_per_mtok: float | None
    output_usd_per_mtok: float | None
    known: bool
    max_input: int | None = None
    image_urls: bool = False
    family: str = "default"
    source: str | None = None
    quote: Quote | None = field(default=None, repr=False, compare=False)

    def why_not(self, needs: RequestNeeds) -> str | None:
        """None when the model can serve ``needs``, else every reason it cannot, joined by
        ``"; "``. An unknown size excludes nothing (it is not a guess either way)."""
        reasons = []
        if needs.images and not self.vision:
            reasons.append("takes no images")
        elif needs.image_urls and not self.image_urls:
            reasons.append("takes no image URLs (send the image bytes)")
        if needs.documents and not self.pdf:
            reasons.append("takes no PDF documents")
        if needs.tools and not self.tools:
            reasons.append("takes no tools")
        if needs.schema and not self.structured:
            reasons.append("has no structured output")
        if needs.reasoning and not self.reasoning:
            reasons.append("takes no reasoning controls")
        total = needs.input_tokens + needs.max_tokens
        if self.max_input is not None and needs.input_tokens > self.max_input:
            reasons.append(
                f"needs ~{needs.input_tokens} input tokens, over its {self.max_input}-token "
                "input limit"
            )
        if self.context_window is not None and total > self.context_window:
            reasons.append(
                f"needs ~{needs.input_tokens} input + {needs.max_tokens} max_tokens = {total} "
                f"tokens, over its {self.context_window}-token context window"
            )
        if self.max_output is not None and needs.max_tokens > self.max_output:
            reasons.append(
                f"max_tokens={needs.max_tokens} is over its {self.max_output}-token output limit"
            )
        return "; ".join(reasons) or None

    def input_limit(self, max_tokens: int) -> int | None:
        """The most input tokens the model takes with ``max_tokens`` of output (its input
        limit, and its context window less the output), None when neither is known: what
        to compare when choosing a model with a longer context."""
        limits = [limit for limit in (
            self.max_input,
            None if self.context_window is None else self.context_window - max_tokens,
        ) if limit is not None]
        return min(limits) if limits else None

    def worst_case_usd(self, needs: RequestNeeds) -> float | None:
        """The most a request of ``needs`` can cost: the estimated input at the input rate
        plus ``max_tokens`` at the output rate (the reasoning rate when higher), in the
        tier the input falls in, plus any per-request fee; None for an unpriced model."""
        if self.quote is None:
            return None
        return worst_case(self.quote.price, needs.input_tokens, needs.max_tokens)


def worst_case(price: Price, input_tokens: int, max_tokens: int) -> float:
    """The worst-case USD of ``input_tokens`` in and up to ``max_tokens`` out at ``price``
    (see :meth:`ModelProfile.worst_case_usd`); the one formula budgets and routing use."""
    from synapsekit.llm.types import Usage

    rates = price.at(input_tokens)
    output_rate = max(rates.output, rates.reasoning or 0.0)
    fee = price.request_fee(Usage(input_tokens, max_tokens))
    return (input_tokens * rates.input + max_tokens * output_rate) / 1e6 + fee


def profile(
    provider: str, model: str, *, capabilities: Capabilities | None = None
) -> ModelProfile:
    """The :class:`ModelProfile` of ``model`` on ``provider``. ``capabilities``: the API's
    (default: the registry class's; pass ``type(llm).capabilities`` for a provider outside
    the registry, which otherwise is taken to have none beyond text, and whose models no
    ``models.json`` row narrows, as in ``BaseLLM._check_request``)."""
    from synapsekit.llm import pricing

    base = _profile(provider.lower(), model, capabilities)
    found = pricing.quote(provider, model)  # each call: register_price may change it
    if found is None:
        return base
    return replace(base, quote=found, input_usd_per_mtok=found.price.input,
                   output_usd_per_mtok=found.price.output)


def profile_for(
    provider: str, config: LLMConfig, *, capabilities: Capabilities | None = None
) -> ModelProfile:
    """:func:`profile` of the model ``config`` addresses (``base_model`` when set, the
    model an Azure deployment serves, else ``model``)."""
    return profile(provider, config.base_model or config.model, capabilities=capabilities)


@functools.lru_cache(maxsize=1024)
def _profile(provider: str, model: str, capabilities: Capabilities | None) -> ModelProfile:
    from synapsekit.llm.content import Capabilities
    from synapsekit.llm.registry import PROVIDERS, provider_class

    known_provider = provider in PROVIDERS
    caps = capabilities
    if caps is None:
        caps = provider_class(provider).capabilities if known_provider else Capabilities()
    # As BaseLLM._check_request: a provider outside the registry (a test double, a custom
    # class) is described by its capabilities alone; models.json rows are the registry's.
    rules = (
        request_rules(provider, model) if known_provider
        else RequestRules(reasoning="both", provider=provider, model=model)
    )
    caps = narrowed(caps, rules)
    limits = model_limits(provider, model)
    return ModelProfile(
        provider=provider,
        model=model,
        context_window=limits.context_window if limits else None,
        max_output=limits.max_output if limits else None,
        tools=caps.tools,
        parallel_tools=caps.tools and rules.parallel_tools is not False,
        vision=caps.images,
        pdf=caps.documents,
        structured=bool(caps.structured),
        reasoning=bool(caps.reasoning) and rules.reasoning != "",
        input_usd_per_mtok=None,
        output_usd_per_mtok=None,
        known=limits is not None,
        max_input=limits.max_input if limits else None,
        image_urls=caps.image_urls,
        family=rules.family,
        source=limits.source if limits else None,
    )


def _first_link(source: str) -> str:
    """The first URL of a row's source as a markdown link (the full text is in the JSON)."""
    found = re.search(r"https?://([^/\s]+)[^\s;,)]*", source)
    return f"[{found.group(1)}]({found.group(0).rstrip(':.')})" if found else source.split(";")[0]


def profiles_table() -> str:
    """The ``limits`` rows as the markdown table of docs/models.md ("Model profiles"), one
    line per row and provider, the profile of the row's first model name; kept in step by
    tests/test_model_profiles.py (``python -m synapsekit.llm.models profiles``)."""

    def size(value: int | None) -> str:
        return f"{value:,}" if value is not None else "?"

    def window(found: ModelProfile) -> str:
        if found.max_input is None:
            return size(found.context_window)
        if found.context_window is None:
            return f"{size(found.max_input)} in"
        return f"{size(found.context_window)} ({size(found.max_input)} in)"

    def usd(value: float | None) -> str:
        return f"{value:g}" if value is not None else "?"

    def yes(flag: bool) -> str:
        return "yes" if flag else "—"

    lines = [
        "| provider | model | context window | max output | tools | parallel tools | vision "
        "| PDF | structured | reasoning | $ in / out per MTok | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in limit_rows():
        for provider in row["providers"]:
            found = profile(provider, row["models"][0])
            source = _first_link(str(row["source"]))
            lines.append(
                f"| {provider} | `{row['models'][0]}` | {window(found)} | "
                f"{size(found.max_output)} | {yes(found.tools)} | {yes(found.parallel_tools)} | "
                f"{yes(found.vision)} | {yes(found.pdf)} | {yes(found.structured)} | "
                f"{yes(found.reasoning)} | {usd(found.input_usd_per_mtok)} / "
                f"{usd(found.output_usd_per_mtok)} | {source} |"
            )
    return "\n".join(lines)


# ----------------------------------------------------------------------- the data file


@dataclass(frozen=True)
class _Row:
    family: str
    providers: frozenset[str]
    include: re.Pattern[str]
    exclude: re.Pattern[str] | None
    request: Mapping[str, Any] | None
    limits: ModelLimits | None

    def matches(self, name: str) -> bool:
        return bool(self.include.fullmatch(name)) and not (
            self.exclude is not None and self.exclude.fullmatch(name)
        )


@dataclass(frozen=True)
class _Table:
    defaults: Mapping[str, Any]
    rows: tuple[_Row, ...]


_REQUEST_FIELDS = frozenset(f.name for f in fields(RequestRules)) - {"family", "provider", "model"}


@functools.cache
def _raw() -> dict[str, Any]:
    from importlib import resources  # with the table, not with the module

    text = resources.files("synapsekit.llm").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@functools.cache
def _table() -> _Table:
    raw = _raw()
    defaults = _request_section("defaults", raw["defaults"].get("request", {}))
    rows = []
    for i, entry in enumerate(raw["models"]):
        where = f"models[{i}] ({entry.get('family', '?')})"
        exclude = [p.lower() for p in entry.get("exclude", [])]
        if "request" not in entry and "limits" not in entry:
            raise ValueError(f"{_DATA_FILE}: {where} has neither request nor limits")
        rows.append(_Row(
            family=str(entry["family"]),
            providers=frozenset(p.lower() for p in entry["providers"]),
            include=_patterns([p.lower() for p in entry["models"]]),
            exclude=_patterns(exclude) if exclude else None,
            request=_request_section(where, entry["request"]) if "request" in entry else None,
            limits=_limits_section(where, entry) if "limits" in entry else None,
        ))
    return _Table(defaults=defaults, rows=tuple(rows))


def _patterns(globs: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


def _request_section(where: str, section: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(section) - _REQUEST_FIELDS
    if unknown:
        raise ValueError(f"{_DATA_FILE}: {where} has unknown request fields {sorted(unknown)}")
    if "sampling" in section and not isinstance(section["sampling"], bool):
        raise ValueError(f"{_DATA_FILE}: {where}: sampling must be true or false")
    if section.get("max_tokens_field", "max_tokens") not in MAX_TOKENS_FIELDS:
        raise ValueError(f"{_DATA_FILE}: {where}: max_tokens_field must be one of "
                         f"{', '.join(MAX_TOKENS_FIELDS)}")
    if section.get("reasoning", "") not in ("", "effort", "budget", "both"):
        raise ValueError(f"{_DATA_FILE}: {where}: reasoning must be '', effort, budget or both")
    unknown_levels = set(section.get("efforts", ())) - set(_EFFORT_ORDER)
    if unknown_levels:
        raise ValueError(f"{_DATA_FILE}: {where}: unknown efforts {sorted(unknown_levels)}")
    found = dict(section)
    if "efforts" in found:
        found["efforts"] = tuple(found["efforts"])
    return found


def _limits_section(where: str, entry: Mapping[str, Any]) -> ModelLimits:
    """A row's ``limits``: known sizes are positive ints, unknown ones null; a row with any
    figure names where it was read (``source``) and when (``checked``)."""
    section = entry["limits"]
    unknown = set(section) - {"context_window", "max_output", "max_input"}
    if unknown:
        raise ValueError(f"{_DATA_FILE}: {where} has unknown limits fields {sorted(unknown)}")
    sizes: dict[str, int | None] = {}
    for name in ("context_window", "max_output", "max_input"):
        value = section.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value <= 0):
            raise ValueError(f"{_DATA_FILE}: {where}: {name} must be a positive int or null")
        sizes[name] = value
    source, checked = entry.get("source"), entry.get("checked")
    if not (isinstance(source, str) and source.strip()) or not isinstance(checked, str):
        raise ValueError(f"{_DATA_FILE}: {where}: a limits row needs its source and checked")
    return ModelLimits(row=str(entry["family"]), source=source, checked=checked, **sizes)


if __name__ == "__main__":
    import sys

    print(profiles_table() if sys.argv[1:] == ["profiles"] else rules_table())
