"""The LLM layer: config, the base class, the provider registry and the 15 provider classes.

Names resolve lazily (PEP 562): ``from synapsekit.llm import GroqLLM`` imports the class
only; the OpenAI protocol's modules and the ``openai`` SDK are imported when a GroqLLM is
built. Provider classes are listed from the registry, so they cannot drift from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapsekit._lazy import lazy_getattr
from synapsekit.llm.registry import PROVIDERS

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.budget import Budget
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.content import Capabilities
    from synapsekit.llm.counting import TokenCount
    from synapsekit.llm.providers.openai_compat import (
        AzureOpenAILLM,
        CerebrasLLM,
        DeepSeekLLM,
        FireworksLLM,
        GroqLLM,
        OpenAICompatibleLLM,
        OpenAILLM,
        OpenRouterLLM,
        PerplexityLLM,
        TogetherLLM,
    )
    from synapsekit.llm.registry import detect_provider, make_llm
    from synapsekit.llm.router import CostRouter, FallbackChain, Router
    from synapsekit.llm.structured import generate_object, generate_structured, stream_object
    from synapsekit.llm.tool_loop import run_tools
    from synapsekit.llm.tools import Tool, tool
    from synapsekit.llm.types import (
        Chunk,
        Message,
        OutputSchema,
        Response,
        ToolCall,
        ToolCallDelta,
        Usage,
    )

_CORE = {
    "BaseLLM": "synapsekit.llm.base",
    "Budget": "synapsekit.llm.budget",
    "Capabilities": "synapsekit.llm.content",
    "Chunk": "synapsekit.llm.types",
    "CostRouter": "synapsekit.llm.router",
    "FallbackChain": "synapsekit.llm.router",
    "LLMConfig": "synapsekit.llm.config",
    "Message": "synapsekit.llm.types",
    "OpenAICompatibleLLM": "synapsekit.llm.providers.openai_compat",
    "OutputSchema": "synapsekit.llm.types",
    "PROVIDERS": "synapsekit.llm.registry",
    "Response": "synapsekit.llm.types",
    "Router": "synapsekit.llm.router",
    "TokenCount": "synapsekit.llm.counting",
    "Tool": "synapsekit.llm.tools",
    "ToolCall": "synapsekit.llm.types",
    "ToolCallDelta": "synapsekit.llm.types",
    "Usage": "synapsekit.llm.types",
    "detect_provider": "synapsekit.llm.registry",
    "generate_object": "synapsekit.llm.structured",
    "generate_structured": "synapsekit.llm.structured",
    "make_llm": "synapsekit.llm.registry",
    "run_tools": "synapsekit.llm.tool_loop",
    "stream_object": "synapsekit.llm.structured",
    "tool": "synapsekit.llm.tools",
}
_LAZY = {**_CORE, **{spec.class_name: spec.module for spec in PROVIDERS.values()}}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
