"""Lazy names, shared by the package: PEP 562 module attributes and deferred class attributes.

Public names resolve on first use, so ``import synapsekit`` stays cheap: no provider SDK,
no numpy, and none of a provider's protocol modules (encode, decode, errors, connection)
until an LLM of that provider is built. A resolved name is cached where it was looked up,
so later lookups are plain attribute reads.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

T_co = TypeVar("T_co", covariant=True)


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` importing ``name`` from ``names[name]`` on first access."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = _imported(module, name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


class Deferred(Generic[T_co]):
    """A class attribute imported on its first read: ``name`` of module ``module`` (a
    dotted ``name`` reads on: ``"AzureConnection.DEFAULT_API_VERSION"``).

    Why: a provider class names its connection class (``connection_class``), which lives
    in the provider's protocol package; importing that at class definition would load the
    protocol for every user who only imports the class. On the first read the descriptor
    replaces itself on the class that defined it, so every later read (and every subclass)
    sees the plain value. Declare the attribute's type in the annotation (not evaluated at
    run time, so the class named may stay a ``TYPE_CHECKING`` import)::

        connection_class: Deferred[type[OpenAIConnection]] = Deferred(
            f"{__name__}.connection", "OpenAIConnection"
        )
    """

    __slots__ = ("attribute", "module", "name", "owner")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name
        self.owner: type | None = None
        self.attribute = name

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.owner, self.attribute = owner, attribute

    def __get__(self, instance: object | None, owner: type | None = None) -> T_co:
        value: T_co = _imported(self.module, self.name)
        setattr(self.owner or owner, self.attribute, value)
        return value

    def __repr__(self) -> str:
        return f"Deferred({self.module!r}, {self.name!r})"


def lazy_pattern(pattern: str, flags: int = 0) -> Callable[[], re.Pattern[str]]:
    """A regular expression compiled on its first use, not at import (compiling one costs
    about as much as importing a small module): ``_WORD = lazy_pattern(r"\\w+")``, then
    ``_WORD().match(text)``."""
    return functools.cache(functools.partial(re.compile, pattern, flags))


def _imported(module: str, name: str) -> Any:
    # The import statement's own path (not importlib.import_module): ``-X importtime``
    # reports what a lazy name loads only when it is imported this way.
    __import__(module)
    value = sys.modules[module]
    for part in name.split("."):  # a dotted name: an attribute of a class of the module
        value = getattr(value, part)
    return value
