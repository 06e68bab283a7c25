"""Plugin providers: what a ``synapsekit.providers`` entry point declares, and reading them.

A third-party distribution adds a provider by naming a :class:`ProviderPlugin` in that
entry-point group (docs/plugins.md). The registry imports this module only when it needs
the plugins (the first name or model the built-in table does not cover, or a listing), so
neither ``import synapsekit`` nor a process using only built-in providers pays for it.
Each plugin becomes a :class:`~synapsekit.llm.registry.ProviderSpec` row (``plugin`` names
its distribution) plus detection rules that the registry tries after its own rules. A plugin
that cannot be used is skipped with a :class:`ProviderPluginWarning`. The built-in
providers never depend on a plugin.
"""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from synapsekit.errors import ConfigError
from synapsekit.llm.registry import _BUILT_IN, ProviderSpec, _Rule

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM

__all__ = ["ENTRY_POINT_GROUP", "ProviderPlugin", "ProviderPluginWarning", "load", "plugin_class"]

#: The entry-point group a third-party provider registers in.
ENTRY_POINT_GROUP = "synapsekit.providers"
_NAME = re.compile(r"[a-z][a-z0-9_-]*")


class ProviderPluginWarning(UserWarning):
    """A plugin provider that was not registered: it failed to import, its entry point is
    not a :class:`ProviderPlugin`, or its name is taken. The message names the entry
    point and the distribution; the built-in providers are not affected."""


@dataclass(frozen=True)
class ProviderPlugin:
    """What a ``synapsekit.providers`` entry point names: one provider, as data.

    ``name``: the provider's name (``provider="acme"``, ``"acme:model"``): lower case,
    not a built-in provider's. ``llm``: its class, a :class:`~synapsekit.llm.base.BaseLLM`
    subclass whose ``provider`` is ``name``, or ``"module:Class"`` so that the class's
    module is imported only when the provider is used. ``prefixes`` / ``patterns``: model
    names it is detected from (``str.startswith`` / ``re.match`` on the lower-cased
    name), tried after every built-in rule. ``env_vars``: where the key is read, in order;
    ``key_required`` (default: when there are ``env_vars``). ``base_url`` / ``base_url_env``:
    the default endpoint and the variable overriding it. ``sdk``: the import name of the
    SDK its connection loads (``"openai"`` for a class on the OpenAI-compatible one;
    None: none beyond the plugin itself); ``install``: the pip line that installs what it
    needs (default ``pip install <its distribution>``).
    """

    name: str
    llm: str | type[BaseLLM]
    prefixes: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    env_vars: tuple[str, ...] = ()
    key_required: bool | None = None
    base_url: str | None = None
    base_url_env: str | None = None
    sdk: str | None = None
    install: str | None = None


def load() -> tuple[dict[str, ProviderSpec], tuple[_Rule, ...]]:
    """Every installed plugin's registry row and detection rules, in ``sys.path`` order;
    the ones that cannot be used are skipped with a warning."""
    from importlib.metadata import entry_points

    specs: dict[str, ProviderSpec] = {}
    rules: list[_Rule] = []
    try:
        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # unreadable installed metadata: no plugins, built-ins intact
        _skip(f"synapsekit provider plugins were not read: {type(exc).__name__}: {exc}")
        return specs, ()
    for ep in found:
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        where = f"synapsekit provider plugin {ep.name!r} ({ep.value}) from {dist}"
        try:
            # Third-party code: whatever its import raises, the built-ins must keep working.
            declared = ep.load()
            spec, own = _spec_of(declared, dist)
        except Exception as exc:  # reported as a warning, never raised
            _skip(f"{where} was not loaded: {type(exc).__name__}: {exc}")
            continue
        if spec.name in _BUILT_IN:
            _skip(f"{where} was refused: {spec.name!r} is a built-in provider, which a "
                  f"plugin cannot replace (give the plugin another name)")
        elif spec.name in specs:
            _skip(f"{where} was refused: {spec.name!r} is already registered by "
                  f"{specs[spec.name].plugin}")
        else:
            specs[spec.name] = spec
            rules.extend(own)
    return specs, tuple(rules)


def _skip(message: str) -> None:
    warnings.warn(message, ProviderPluginWarning, stacklevel=5)


def _spec_of(declared: object, dist: str) -> tuple[ProviderSpec, list[_Rule]]:
    """The registry row and detection rules of a plugin's declaration; ValueError /
    TypeError say what is wrong with it."""
    if not isinstance(declared, ProviderPlugin):
        raise TypeError(
            f"the entry point must name a synapsekit.llm.plugins.ProviderPlugin, "
            f"not {type(declared).__name__}"
        )
    d = declared
    if not isinstance(d.name, str) or not _NAME.fullmatch(d.name):
        raise ValueError(f"name {d.name!r} is not a lower-case provider name ([a-z][a-z0-9_-]*)")
    if isinstance(d.llm, str):
        module, sep, cls = d.llm.partition(":")
        if not (sep and module and cls):
            raise ValueError(f"llm {d.llm!r} is not 'module:Class'")
    elif isinstance(d.llm, type):
        module, cls = d.llm.__module__, d.llm.__qualname__
    else:
        raise TypeError(f"llm must be a class or 'module:Class', not {type(d.llm).__name__}")
    rules: list[_Rule] = [("prefix", p.lower(), d.name) for p in d.prefixes]
    rules += [("regex", re.compile(p), d.name) for p in d.patterns]  # re.error: a ValueError
    top = module.split(".")[0]
    spec = ProviderSpec(
        d.name, cls, module, d.sdk or top, d.sdk or top, tuple(d.env_vars), d.base_url,
        key_required=bool(d.env_vars) if d.key_required is None else d.key_required,
        base_url_env=d.base_url_env, plugin=dist,
        install_hint=d.install or f"pip install {dist}",
    )
    return spec, rules


_classes: dict[str, type[BaseLLM]] = {}


def plugin_class(spec: ProviderSpec) -> type[BaseLLM]:
    """A plugin's class, imported and checked on first use: a wrong one is a ConfigError
    naming the plugin, raised when that provider is used (never for another)."""
    cls = _classes.get(spec.name)
    if cls is not None:
        return cls
    from synapsekit.llm.base import BaseLLM

    where = f"provider plugin {spec.name!r} from {spec.plugin}"
    head, *rest = spec.class_name.split(".")
    try:
        found = getattr(importlib.import_module(spec.module), head)
        for part in rest:
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"{where}: cannot import {spec.module}:{spec.class_name} ({exc})"
        ) from exc
    if not (isinstance(found, type) and issubclass(found, BaseLLM)):
        raise ConfigError(f"{where}: {spec.module}:{spec.class_name} is not a BaseLLM subclass")
    if found.provider != spec.name:
        raise ConfigError(
            f"{where}: {spec.class_name}.provider is {found.provider!r}, not {spec.name!r}"
        )
    _classes[spec.name] = found
    return found
