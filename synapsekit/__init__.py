"""synapsekit: a streaming-first, async-native LLM layer over fifteen providers.

Public names are imported lazily (PEP 562), so ``import synapsekit`` loads no provider
SDK and no numpy; each name is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapsekit._lazy import lazy_getattr

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.registry import detect_provider, make_llm
    from synapsekit.observability.tracer import TokenTracer
    from synapsekit.rag.pipeline import RAG

__version__ = "0.1.0"

_LAZY = {
    "BaseLLM": "synapsekit.llm.base",
    "LLMConfig": "synapsekit.llm.config",
    "detect_provider": "synapsekit.llm.registry",
    "make_llm": "synapsekit.llm.registry",
    "TokenTracer": "synapsekit.observability.tracer",
    "RAG": "synapsekit.rag.pipeline",
}

__all__ = [
    "RAG",
    "BaseLLM",
    "LLMConfig",
    "TokenTracer",
    "__version__",
    "detect_provider",
    "make_llm",
]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
