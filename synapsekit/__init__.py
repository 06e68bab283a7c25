"""synapsekit: a streaming-first, async-native LLM layer over fifteen providers.

Public names are imported lazily (PEP 562), so ``import synapsekit`` loads no provider
SDK and no numpy; each name is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapsekit._lazy import lazy_getattr

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.budget import (
        Budget,
        BudgetExceeded,
        BudgetGuard,
        BudgetLimit,
        CircuitState,
    )
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.counting import TokenCount
    from synapsekit.llm.providers.anthropic import AnthropicLLM
    from synapsekit.llm.providers.bedrock import BedrockLLM
    from synapsekit.llm.providers.cohere import CohereLLM
    from synapsekit.llm.providers.gemini import GeminiLLM
    from synapsekit.llm.providers.mistral import MistralLLM
    from synapsekit.llm.providers.ollama import OllamaLLM
    from synapsekit.llm.providers.openai_compat import (
        AzureOpenAILLM,
        CerebrasLLM,
        DeepSeekLLM,
        FireworksLLM,
        GroqLLM,
        OpenAILLM,
        OpenRouterLLM,
        PerplexityLLM,
        TogetherLLM,
    )
    from synapsekit.llm.registry import detect_provider, make_llm
    from synapsekit.llm.router import (
        CostRouter,
        CostRouterConfig,
        FallbackChain,
        FallbackChainConfig,
        Router,
        RouterModelSpec,
    )
    from synapsekit.llm.structured import generate_structured
    from synapsekit.llm.tools import Tool, tool
    from synapsekit.llm.types import Response, ToolCall
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
    "Response": "synapsekit.llm.types",
    "Tool": "synapsekit.llm.tools",
    "ToolCall": "synapsekit.llm.types",
    "generate_structured": "synapsekit.llm.structured",
    "tool": "synapsekit.llm.tools",
    "Budget": "synapsekit.llm.budget",
    "BudgetExceeded": "synapsekit.llm.budget",
    "BudgetGuard": "synapsekit.llm.budget",
    "BudgetLimit": "synapsekit.llm.budget",
    "CircuitState": "synapsekit.llm.budget",
    "CostRouter": "synapsekit.llm.router",
    "CostRouterConfig": "synapsekit.llm.router",
    "FallbackChain": "synapsekit.llm.router",
    "FallbackChainConfig": "synapsekit.llm.router",
    "Router": "synapsekit.llm.router",
    "RouterModelSpec": "synapsekit.llm.router",
    "TokenCount": "synapsekit.llm.counting",
}
#: The fifteen provider classes, as on SynapseKit's page (``from synapsekit import
#: OpenAILLM``); resolved through ``synapsekit.llm``, whose list comes from the registry
#: (a test checks the two agree). Importing one imports its class's module only: the
#: protocol modules (connection, encode, decode, errors) and the SDK load with the first
#: LLM built (tests/test_import_weight.py).
PROVIDER_CLASSES = (
    "AnthropicLLM", "AzureOpenAILLM", "BedrockLLM", "CerebrasLLM", "CohereLLM",
    "DeepSeekLLM", "FireworksLLM", "GeminiLLM", "GroqLLM", "MistralLLM", "OllamaLLM",
    "OpenAILLM", "OpenRouterLLM", "PerplexityLLM", "TogetherLLM",
)
_LAZY.update(dict.fromkeys(PROVIDER_CLASSES, "synapsekit.llm"))

__all__ = [
    "RAG",
    "AnthropicLLM",
    "AzureOpenAILLM",
    "BaseLLM",
    "BedrockLLM",
    "Budget",
    "BudgetExceeded",
    "BudgetGuard",
    "BudgetLimit",
    "CerebrasLLM",
    "CircuitState",
    "CohereLLM",
    "CostRouter",
    "CostRouterConfig",
    "DeepSeekLLM",
    "FallbackChain",
    "FallbackChainConfig",
    "FireworksLLM",
    "GeminiLLM",
    "GroqLLM",
    "LLMConfig",
    "MistralLLM",
    "OllamaLLM",
    "OpenAILLM",
    "OpenRouterLLM",
    "PerplexityLLM",
    "Response",
    "Router",
    "RouterModelSpec",
    "TogetherLLM",
    "TokenCount",
    "TokenTracer",
    "Tool",
    "ToolCall",
    "__version__",
    "detect_provider",
    "generate_structured",
    "make_llm",
    "tool",
]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
