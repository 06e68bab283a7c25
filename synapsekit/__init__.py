"""synapsekit: a streaming-first, async-native LLM layer over fifteen providers.

Public names are imported lazily (PEP 562), so ``import synapsekit`` loads no provider
SDK and no numpy; each name is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.registry import detect_provider, make_llm

__version__ = "0.1.0"

_LAZY = {
    "BaseLLM": "synapsekit.llm.base",
    "LLMConfig": "synapsekit.llm.config",
    "detect_provider": "synapsekit.llm.registry",
    "make_llm": "synapsekit.llm.registry",
}

__all__ = ["BaseLLM", "LLMConfig", "__version__", "detect_provider", "make_llm"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'synapsekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
