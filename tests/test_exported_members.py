"""The public surface: curated, sorted, complete, and light to import."""

from __future__ import annotations

import subprocess
import sys

import synapsekit
import synapsekit.errors
import synapsekit.llm
import synapsekit.rag


def test_all_is_resolvable() -> None:
    # Sorted as ruff's RUF022 sorts (constants, classes, then the rest), checked by CI's ruff.
    for module in (synapsekit, synapsekit.llm, synapsekit.errors, synapsekit.rag):
        names = module.__all__
        assert len(set(names)) == len(names), module.__name__
        for name in names:
            assert getattr(module, name) is not None


def test_design_api_is_importable() -> None:
    from synapsekit import (  # noqa: F401
        RAG,
        BaseLLM,
        LLMConfig,
        TokenTracer,
        detect_provider,
        make_llm,
    )
    from synapsekit.errors import (  # noqa: F401
        AuthenticationError,
        ContentFilterError,
        ContextLengthError,
        InvalidRequestError,
        LLMError,
        NotFoundError,
        RateLimitError,
        ServerError,
        StreamInterruptedError,
    )


def test_every_error_is_exported() -> None:
    errors = {
        name
        for name, value in vars(synapsekit.errors).items()
        if isinstance(value, type) and issubclass(value, Exception)
        and value.__module__ == "synapsekit.errors"
    }
    assert errors <= set(synapsekit.errors.__all__)


def test_import_loads_no_sdk_and_no_numpy() -> None:
    code = (
        "import sys, synapsekit\n"
        "from synapsekit import make_llm, LLMConfig, BaseLLM, TokenTracer, RAG\n"
        "from synapsekit.llm import GroqLLM, OpenAILLM, AzureOpenAILLM\n"
        "heavy = ['openai', 'anthropic', 'cohere', 'mistralai', 'google.genai', 'boto3',\n"
        "         'ollama', 'numpy', 'httpx', 'redis', 'aiosqlite', 'pypdf', 'sqlite3']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
