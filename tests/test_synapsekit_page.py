"""SynapseKit's "LLM Overview" page, its examples run as written, against the simulators.

The code inside each ``# --- page`` block is copied from the page unchanged (the page
shows ``LLMConfig(...)``'s arguments unindented; that is valid Python inside the
parentheses). The only setup is the environment a user would have: the provider's key
variable and, instead of the vendor's URL, the SDK's own base-URL variable pointing at a
local simulator of that vendor's wire protocol. Real SDKs, real HTTP, nothing patched.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

import synapsekit
from synapsekit.testing.simulators.ollama_protocol import OllamaSimulator
from synapsekit.testing.simulators.ollama_protocol import text_stream as ollama_stream
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, text_stream

ROOT = Path(__file__).resolve().parent.parent

#: The page's "Available providers" table: (class, extra, provider string).
PROVIDER_TABLE = [
    ("OpenAILLM", "openai", "openai"),
    ("AnthropicLLM", "anthropic", "anthropic"),
    ("OllamaLLM", "ollama", "ollama"),
    ("CohereLLM", "cohere", "cohere"),
    ("MistralLLM", "mistral", "mistral"),
    ("GeminiLLM", "gemini", "gemini"),
    ("BedrockLLM", "bedrock", "bedrock"),
    ("AzureOpenAILLM", "openai", "azure"),
    ("GroqLLM", "groq", "groq"),
    ("DeepSeekLLM", "openai", "deepseek"),
    ("OpenRouterLLM", "openai", "openrouter"),
    ("TogetherLLM", "openai", "together"),
    ("FireworksLLM", "openai", "fireworks"),
    ("PerplexityLLM", "openai", "perplexity"),
    ("CerebrasLLM", "openai", "cerebras"),
]

#: The page's "Auto-detection" table, one name per pattern.
DETECTION_TABLE = [
    ("claude-sonnet-4-6", "anthropic"),
    ("gemini-2.5-pro", "gemini"),
    ("command-r-plus", "cohere"),
    ("mistral-large-latest", "mistral"),
    ("open-mistral-nemo", "mistral"),
    ("deepseek-chat", "deepseek"),
    ("llama-3.3-70b-versatile", "groq"),
    ("llama3-70b-8192", "groq"),
    ("mixtral-8x7b-32768", "groq"),
    ("gemma2-9b-it", "groq"),
    ("gemma-7b-it", "groq"),
    ("meta-llama/llama-3-70b-instruct", "openrouter"),
    ("gpt-4o-mini", "openai"),
    ("o3-mini", "openai"),
]


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAISimulator]:
    """An OpenAI simulator that accepts the page's placeholder key ``sk-...``, reached
    through ``OPENAI_BASE_URL`` (the config on the page names no base_url)."""
    with OpenAISimulator("sk-...") as sim:
        monkeypatch.setenv("OPENAI_BASE_URL", sim.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-...")
        yield sim


def test_interface() -> None:
    from synapsekit import BaseLLM

    # --- page: Interface (the four methods, streaming primary)
    for name in ("stream", "generate", "stream_with_messages", "generate_with_messages"):
        method = getattr(BaseLLM, name)
        assert list(inspect.signature(method).parameters)[:2] in (
            ["self", "prompt"], ["self", "messages"]
        )
    assert inspect.iscoroutinefunction(BaseLLM.generate)
    assert inspect.iscoroutinefunction(BaseLLM.generate_with_messages)


async def test_generate_is_the_join_of_stream(openai_env: OpenAISimulator) -> None:
    from synapsekit import LLMConfig, OpenAILLM

    llm = OpenAILLM(LLMConfig(model="gpt-4o-mini", api_key="sk-..."))
    streamed = [token async for token in llm.stream("Hello!")]
    assert await llm.generate("Hello!") == "".join(streamed) == "Hello, world!"
    messages = [{"role": "user", "content": "Hello!"}]
    streamed = [token async for token in llm.stream_with_messages(messages)]
    assert await llm.generate_with_messages(messages) == "".join(streamed)


async def test_llmconfig_example_and_tokens(
    openai_env: OpenAISimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # --- page: LLMConfig
    from synapsekit import LLMConfig

    config = LLMConfig(
    model="gpt-4o-mini",
    api_key="sk-...",
    provider="openai",
    system_prompt="You are a helpful assistant.",
    temperature=0.2,
    max_tokens=1024,
    # Optional: caching and retries
    cache=False, # Enable LRU response caching
    cache_maxsize=128, # Max cached responses
    cache_backend="memory", # "memory" or "sqlite"
    max_retries=0, # Retry attempts (0 = disabled)
    retry_delay=1.0, # Initial retry delay in seconds
    # Rate limiting
    requests_per_minute=None, # Token-bucket rate limiter
    )
    # --- end page

    from synapsekit import OpenAILLM

    openai_env.enqueue(text_stream(["Hi", "!", " How", " can", " I", " help", " you", "?"],
                                   prompt_tokens=12))
    # --- page: Tokens and cost tracking
    llm = OpenAILLM(config)
    await llm.generate("Hello!")
    print(llm.tokens_used) # {"input": 12, "output": 8}
    # --- end page
    assert capsys.readouterr().out.strip() == "{'input': 12, 'output': 8}"
    body = openai_env.requests[0].json()
    assert body["model"] == "gpt-4o-mini"
    assert 1024 in (body.get("max_tokens"), body.get("max_completion_tokens"))
    assert body["temperature"] == 0.2
    assert body["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}


def test_the_same_config_positionally() -> None:
    from synapsekit import LLMConfig

    config = LLMConfig("gpt-4o-mini", "sk-...", "openai", "You are a helpful assistant.", 0.2,
                       1024, False, 128, "memory", 0, 1.0, None)
    assert config == LLMConfig(model="gpt-4o-mini", api_key="sk-...", provider="openai",
                               system_prompt="You are a helpful assistant.", temperature=0.2,
                               max_tokens=1024, cache=False, cache_maxsize=128,
                               cache_backend="memory", max_retries=0, retry_delay=1.0,
                               requests_per_minute=None)


@pytest.mark.parametrize(("class_name", "extra", "provider"), PROVIDER_TABLE)
def test_available_providers(class_name: str, extra: str, provider: str) -> None:
    cls = getattr(synapsekit, class_name)  # importable from synapsekit itself
    assert cls is getattr(synapsekit.llm, class_name)
    assert cls.provider == provider
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f"\n{extra} = [" in pyproject  # pip install synapsekit[<extra>]
    assert f"\n{provider} = [" in pyproject  # and one extra per provider string


@pytest.mark.parametrize(("model", "provider"), DETECTION_TABLE)
def test_auto_detection(model: str, provider: str) -> None:
    from synapsekit import detect_provider

    assert detect_provider(model) == provider


async def test_override_with_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    with OllamaSimulator(models=("llama3",)) as sim:
        monkeypatch.setenv("OLLAMA_HOST", sim.url)
        from synapsekit import RAG

        # --- page: Auto-detection, override with the provider= argument
        rag = RAG(model="llama3", api_key="", provider="ollama")
        # --- end page

        sim.enqueue(ollama_stream(["It", " retries", "."], prompt_eval_count=30,
                                  model="llama3"))
        await rag.aadd("synapsekit retries a failed stream only before the first token.")
        answer = await rag.ask("How does synapsekit retry?")
        assert str(answer) == "It retries."
        assert rag.llm.provider == "ollama" and rag.llm.model == "llama3"
        # The TokenTracer in RAGPipeline aggregates this across all calls.
        await rag.ask("And again?")
        summary = rag.tracer.summary()
        assert summary["calls"] == 2 and summary["total_input_tokens"] >= 30
        assert rag.llm.tokens_used["input"] == summary["total_input_tokens"]
