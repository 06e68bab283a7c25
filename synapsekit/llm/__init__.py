"""The LLM layer: config, the base class, the provider registry and the 15 provider classes.

Names resolve lazily (PEP 562): ``from synapsekit.llm import GroqLLM`` imports the
OpenAI-protocol module but not the ``openai`` SDK, which is imported when a GroqLLM is
built. Provider classes are listed from the registry, so they cannot drift from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapsekit._lazy import lazy_getattr
from synapsekit.llm.registry import PROVIDERS

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.content import Capabilities
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
    from synapsekit.llm.structured import generate_structured
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
    "Capabilities": "synapsekit.llm.content",
    "Chunk": "synapsekit.llm.types",
    "LLMConfig": "synapsekit.llm.config",
    "Message": "synapsekit.llm.types",
    "OpenAICompatibleLLM": "synapsekit.llm.providers.openai_compat",
    "OutputSchema": "synapsekit.llm.types",
    "PROVIDERS": "synapsekit.llm.registry",
    "Response": "synapsekit.llm.types",
    "Tool": "synapsekit.llm.tools",
    "ToolCall": "synapsekit.llm.types",
    "ToolCallDelta": "synapsekit.llm.types",
    "Usage": "synapsekit.llm.types",
    "detect_provider": "synapsekit.llm.registry",
    "generate_structured": "synapsekit.llm.structured",
    "make_llm": "synapsekit.llm.registry",
    "tool": "synapsekit.llm.tools",
}
_LAZY = {**_CORE, **{spec.class_name: spec.module for spec in PROVIDERS.values()}}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
