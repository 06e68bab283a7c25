"""The one error-mapping layer (synapsekit/llm/providers/_errors.py).

Row by row: classification is by HTTP status first and a body's code only refines it.
Then the real bodies that the old code-first rule got wrong, through the real SDKs and
the simulators, and the HTTP library each SDK really uses.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextLengthError,
    InvalidRequestError,
    LLMError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    TimeoutError,
    error_for_status,
)
from synapsekit.llm.providers._common import http_stack
from synapsekit.llm.providers._errors import classify
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, error
from tests.conftest import API_KEY

# (status, codes, message, expected)
ROWS: list[tuple[int | None, tuple[str | None, ...], str, type[LLMError]]] = [
    # OpenAI's real missing-key 401 has type invalid_request_error: still authentication.
    (401, (None, "invalid_request_error"), "You didn't provide an API key.", AuthenticationError),
    (401, ("invalid_api_key", "invalid_request_error"), "Incorrect API key", AuthenticationError),
    (403, ("unsupported_country_region_territory", "request_forbidden"), "",
     PermissionDeniedError),
    (403, ("permission_error",), "", PermissionDeniedError),
    # DeepSeek's real 402 body says code invalid_request_error: the status wins.
    (402, ("invalid_request_error", "unknown_error"), "Insufficient Balance",
     QuotaExceededError),
    (402, (None,), "This request requires more credits", QuotaExceededError),  # OpenRouter
    (429, ("insufficient_quota",), "You exceeded your current quota", QuotaExceededError),
    (429, ("rate_limit_exceeded",), "", RateLimitError),
    (429, (None, "invalid_request_error"), "", RateLimitError),  # a code cannot override
    (400, ("context_length_exceeded", "invalid_request_error"), "", ContextLengthError),
    (400, (None, "invalid_request_error"), "prompt is too long: 208656 tokens > 200000 maximum",
     ContextLengthError),  # Anthropic
    (400, (None,), "too many tokens: total number of tokens in the prompt cannot exceed 4081",
     ContextLengthError),  # Cohere
    (400, (None,), "the input length exceeds the context length", ContextLengthError),  # Ollama
    (400, ("content_filter",), "", ContentFilterError),
    (400, (None,), "Invalid request.", InvalidRequestError),
    (404, ("model_not_found",), "", NotFoundError),
    (404, ("rate_limit_error",), "", NotFoundError),
    (408, (None,), "", TimeoutError),
    (413, ("request_too_large",), "", ContextLengthError),
    (422, (None,), "", InvalidRequestError),
    (418, (None,), "", InvalidRequestError),  # any other 4xx
    (500, ("invalid_request_error",), "", ServerError),
    (529, ("overloaded_error",), "", ServerError),
    (503, (None,), "", ServerError),
    # No status (an error event inside a 200 stream): the code decides.
    (None, ("rate_limit_error",), "", RateLimitError),
    (None, ("overloaded_error",), "", ServerError),
    (None, ("invalid_request_error",), "prompt is too long", ContextLengthError),
    (None, (None,), "the input length exceeds the context length", ContextLengthError),
    (None, (None,), "boom", ServerError),
    (200, ("rate_limit_error",), "", RateLimitError),  # an error in a successful response
]


@pytest.mark.parametrize(("status", "codes", "message", "expected"), ROWS)
def test_status_first_then_code(
    status: int | None, codes: tuple[str | None, ...], message: str, expected: type[LLMError]
) -> None:
    assert classify(status, codes, message) is expected


def test_a_provider_code_refines_only_within_the_status() -> None:
    bedrock = {"unrecognizedclientexception": AuthenticationError,
               "throttlingexception": RateLimitError}
    # Bedrock sends bad credentials as a 403: the code may narrow it to authentication...
    assert classify(403, ("UnrecognizedClientException",), "", bedrock) is AuthenticationError
    # ...but a throttling code on a 400 stays an invalid request, and the 429 a rate limit.
    assert classify(400, ("ThrottlingException",), "", bedrock) is InvalidRequestError
    assert classify(429, ("ThrottlingException",), "", bedrock) is RateLimitError
    assert classify(498, (None,), "", None, {498: AuthenticationError}) is AuthenticationError


def test_error_for_status_is_the_same_rule() -> None:
    assert error_for_status(401, None, "invalid_request_error") is AuthenticationError
    assert error_for_status(402, "invalid_request_error") is QuotaExceededError
    assert issubclass(PermissionDeniedError, AuthenticationError)  # old catches still work


@pytest.mark.parametrize(
    ("provider", "model", "status", "body", "expected"),
    [
        ("openai", "gpt-4o-mini", 401,
         {"error": {"message": "You didn't provide an API key. You need to provide your API "
                               "key in an Authorization header using Bearer auth.",
                    "type": "invalid_request_error", "param": None, "code": None}},
         AuthenticationError),
        ("deepseek", "deepseek-chat", 402,
         {"error": {"message": "Insufficient Balance", "type": "unknown_error", "param": None,
                    "code": "invalid_request_error"}},
         QuotaExceededError),
        ("openrouter", "openai/gpt-4o", 402,
         {"error": {"code": 402, "message": "This request requires more credits, or fewer "
                                            "max_tokens."}},
         QuotaExceededError),
    ],
    ids=["openai-401-no-key", "deepseek-402", "openrouter-402"],
)
async def test_real_bodies_through_the_sdk(
    provider: str, model: str, status: int, body: dict[str, object],
    expected: type[LLMError], openai_sim: OpenAISimulator,
) -> None:
    openai_sim.enqueue(error(status, body))
    llm = make_llm(f"{provider}:{model}", api_key=API_KEY, base_url=openai_sim.url,
                   max_retries=3, retry_delay=0)
    with pytest.raises(expected) as err:
        await llm.generate("hi")
    assert type(err.value) is expected
    assert err.value.status_code == status
    assert not err.value.retryable
    assert len(openai_sim.requests) == 1  # never retried


def _sdk_http_client(sdk: str) -> object:
    """The HTTP client the installed SDK itself builds (what it really sends with)."""
    if sdk == "openai":
        import openai
        return openai.AsyncOpenAI(api_key=API_KEY)._client
    if sdk == "anthropic":
        import anthropic
        return anthropic.AsyncAnthropic(api_key=API_KEY)._client
    if sdk == "cohere":
        import cohere
        return cohere.AsyncClientV2(api_key=API_KEY)._client_wrapper.httpx_client.httpx_client
    if sdk == "ollama":
        import ollama
        return ollama.AsyncClient()._client
    from mistralai.client import Mistral
    return Mistral(api_key=API_KEY).sdk_configuration.async_client


@pytest.mark.parametrize(
    ("module", "sdk"),
    [
        ("openai._base_client", "openai"),
        ("anthropic._base_client", "anthropic"),
        ("cohere.core.http_client", "cohere"),
        ("ollama._client", "ollama"),
        ("mistralai.client.basesdk", "mistral"),
    ],
)
def test_http_library_is_read_from_the_sdk(module: str, sdk: str) -> None:
    """What the installed SDK sends with, not what is installed: openai 3 sends with httpx2
    even when httpx is present (the dev extra installs it), openai 1 with httpx. The
    expectation is the package of the client class the SDK builds, so the test holds at
    the floors and at the newest versions alike."""
    client_mro = [c.__module__.split(".")[0] for c in type(_sdk_http_client(sdk)).__mro__]
    library = next(m for m in client_mro if m in ("httpx", "httpx2"))
    stack = http_stack(module)
    assert stack.module.__name__ == library
    assert all(issubclass(c, BaseException) for c in stack.timeouts + stack.transport)
    assert issubclass(stack.module.ReadTimeout, stack.timeouts)
    assert issubclass(stack.module.RemoteProtocolError, stack.transport)


def test_no_provider_module_imports_an_http_library_by_name() -> None:
    """Importing every protocol module loads neither httpx nor httpx2 by itself."""
    import subprocess

    # The packages import their protocol modules lazily: import those themselves.
    modules = ["synapsekit.llm.providers._errors", "synapsekit.llm.providers._common"] + [
        f"synapsekit.llm.providers.{p}.{part}"
        for p in ("openai_compat", "anthropic", "gemini", "cohere", "mistral", "ollama",
                  "bedrock")
        for part in ("connection", "encode", "decode", "errors")
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in ('httpx', 'httpx2') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("protocol", "provider", "model", "body"),
    [
        ("cohere_protocol", "cohere", "command-a-03-2025",
         {"id": "0d1c7a1e", "message": "too many tokens: total number of tokens in the prompt "
                                       "cannot exceed 256000 - received 300123. Try using a "
                                       "shorter prompt, or enabling prompt truncating."}),
        ("ollama_protocol", "ollama", "llama3.2",
         {"error": "the input length exceeds the context length"}),
    ],
    ids=["cohere", "ollama"],
)
async def test_context_length_through_the_sdk(
    protocol: str, provider: str, model: str, body: dict[str, object]
) -> None:
    """Cohere and Ollama say "too long" only in the message of a 400."""
    module = importlib.import_module(f"synapsekit.testing.simulators.{protocol}")
    simulator = module.CohereSimulator(API_KEY) if provider == "cohere" else (
        module.OllamaSimulator())
    with simulator as sim:
        sim.enqueue(module.error(400, body))
        llm = make_llm(f"{provider}:{model}", api_key=API_KEY if provider == "cohere" else None,
                       base_url=sim.url, max_retries=2, retry_delay=0)
        with pytest.raises(ContextLengthError) as err:
            await llm.generate("hi")
        assert err.value.status_code == 400 and err.value.provider == provider
        assert len(sim.requests) == 1

