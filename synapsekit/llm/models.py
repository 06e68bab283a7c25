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
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synapsekit.llm.config import LLMConfig

__all__ = [
    "SAMPLING_PARAMS",
    "RequestRules",
    "UnsupportedParameterWarning",
    "model_rows",
    "request_rules",
    "rules_for",
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
        if provider in row.providers and row.matches(name):
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
        limits = [f"no {kind}" for kind in ("images", "documents", "tools")
                  if getattr(rules, kind) is False]
        return (f"| {family} | {providers} | {models_} | {exclude} | {sampling} | "
                f"`{rules.max_tokens_field}` | {reasoning} | {', '.join(limits)} |")

    lines = [
        "| family | providers | models | except | temperature / top_p | output-length field "
        "| reasoning | limits |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in raw["models"]:
        lines.append(cells(row["family"], ", ".join(row["providers"]), names(row["models"]),
                           names(row.get("exclude", [])), row.get("request", {})))
    lines.append(cells("default", "any other", "", "", {}))
    return "\n".join(lines)


def model_rows() -> list[dict[str, Any]]:
    """The rows of ``models.json`` as read (for docs and tests)."""
    return [dict(row) for row in _raw()["models"]]


# ----------------------------------------------------------------------- the data file


@dataclass(frozen=True)
class _Row:
    family: str
    providers: frozenset[str]
    include: re.Pattern[str]
    exclude: re.Pattern[str] | None
    request: Mapping[str, Any]

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
        rows.append(_Row(
            family=str(entry["family"]),
            providers=frozenset(p.lower() for p in entry["providers"]),
            include=_patterns([p.lower() for p in entry["models"]]),
            exclude=_patterns(exclude) if exclude else None,
            request=_request_section(where, entry.get("request", {})),
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


if __name__ == "__main__":
    print(rules_table())
