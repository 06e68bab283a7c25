"""Acme speaks the OpenAI chat-completions protocol: the provider is the OpenAI-compatible
implementation under another name, with Acme's capabilities."""

from typing import ClassVar

from synapsekit.llm.content import Capabilities
from synapsekit.llm.providers.openai_compat import OpenAICompatibleLLM
from synapsekit.llm.providers.openai_compat.encode import Vendor


class AcmeLLM(OpenAICompatibleLLM):
    provider = "acme"
    vendor = Vendor("acme")
    capabilities: ClassVar[Capabilities] = Capabilities(
        tools=True, tool_choices=frozenset({"auto", "none"}), note="Acme: text and tools"
    )
