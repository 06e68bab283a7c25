"""PEP 562 lazy attributes, shared by the package's ``__init__`` modules.

Public names resolve on first use, so ``import synapsekit`` stays cheap: no provider SDK,
no numpy. A resolved name is cached in the module's globals, so later lookups are plain.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` importing ``name`` from ``names[name]`` on first access."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
