"""The eight chat-completions providers, each through the real openai SDK over real HTTP.

One parametrised walk checks parity (captured streams, usage, typed errors) for all eight
(Perplexity, whose Sonar chat completions were retired, speaks its Agent API:
tests/test_perplexity_agent.py checks the same on ``POST /v1/agent``);
the tests after it check the call path's promises on the OpenAI row: no token twice,
retries only before the first token, cancellation closing the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConnectionError,
    ContentFilterError,
    InvalidRequestError,
    LLMError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    TimeoutError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.types import Chunk
from synapsekit.testing.simulators.openai_protocol import (
    OpenAISimulator,
    capture,
    error,
    malformed,
    stream_error_event,
    text_stream,
)
from tests.conftest import API_KEY


@dataclass(frozen=True)
class Case:
    provider: str
    model: str
    wire: str | None  # a capture, or None for a synthesised stream (no capture exists)
    text: str
    usage: tuple[int, int, int, int]  # input, output, cached input, reasoning
    finish: str
    reasoning_chars: int = 0


WEATHER = (
    "I'm unable to provide real-time weather updates. To get the current weather in San "
    "Francisco, I recommend checking a reliable weather website or a weather app."
)
FAMILY = [
    Case("openai", "gpt-4o", "openai/stream_ok.sse", WEATHER, (14, 30, 0, 0), "stop"),
    Case("azure", "my-gpt5-nano", "openai_compatible/azure/stream_content_filter_reasoning_"
         "realcapture.sse", "Capital of Denmark.", (15, 78, 0, 64), "stop"),
    Case("groq", "llama-3.3-70b-versatile", "openai_compatible/groq/stream_tool_call_"
         "realcapture.sse", "", (210, 15, 0, 0), "tool_calls"),
    Case("deepseek", "deepseek-reasoner", "openai_compatible/deepseek/stream_reasoning_"
         "realcapture.sse", 'The word "strawberry" contains three "r"s.', (18, 219, 0, 205),
         "stop", reasoning_chars=606),
    Case("openrouter", "anthropic/claude-sonnet-4.5", "openai_compatible/openrouter/"
         "stream_reasoning_realcapture.sse", "2 + 2 = 4", (43, 36, 0, 13), "stop",
         reasoning_chars=51),
    Case("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", None, "Hi from Together.",
         (9, 3, 0, 0), "stop"),
    Case("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct", None,
         "Hi from Fireworks.", (9, 3, 0, 0), "stop"),
    Case("cerebras", "zai-glm-4.7", "openai_compatible/cerebras/stream_reasoning_tool_call_"
         "realcapture.sse", "", (322, 104, 256, 97), "tool_calls", reasoning_chars=423),
]
IDS = [c.provider for c in FAMILY]


def _sim(case: Case, openai_sim: OpenAISimulator, azure_sim: OpenAISimulator) -> OpenAISimulator:
    return azure_sim if case.provider == "azure" else openai_sim


def _llm(case: Case, sim: OpenAISimulator, **fields: object) -> BaseLLM:
    return make_llm(f"{case.provider}:{case.model}", api_key=API_KEY, base_url=sim.url, **fields)


def _reply(case: Case):  # type: ignore[no-untyped-def]
    if case.wire:
        return capture(case.wire)
    words = case.text.split(" ")
    tokens = [words[0]] + [" " + w for w in words[1:]]
    # Together's usage in its own choices:[] chunk, Fireworks' on the finish chunk:
    # placement is unverified for both, so each is tested with one of the two.
    return text_stream(tokens, prompt_tokens=case.usage[0],
                       usage_in_final_chunk=case.provider == "together")


@pytest.mark.parametrize("case", FAMILY, ids=IDS)
async def test_stream_text_usage_and_request(
    case: Case, openai_sim: OpenAISimulator, azure_sim: OpenAISimulator
) -> None:
    sim = _sim(case, openai_sim, azure_sim)
    sim.enqueue(_reply(case))
    llm = _llm(case, sim, system_prompt="Be brief.", max_tokens=77, stop=["END"])
    chunks: list[Chunk] = [c async for c in llm.stream_chunks(
        [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
         {"role": "user", "content": "Q2"}]
    )]
    final = chunks[-1]
    assert "".join(c.text for c in chunks) == case.text
    assert sum(len(c.reasoning) for c in chunks) == case.reasoning_chars
    assert all(not c.reasoning for c in chunks if c.text)  # reasoning never in the answer
    assert final.usage is not None and final.usage.complete
    u = final.usage
    got = (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens)
    assert got == case.usage
    assert final.finish_reason == case.finish
    assert llm.tokens_used == {"input": case.usage[0], "output": case.usage[1]}

    (request,) = sim.requests
    body = request.json()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
    ]
    assert body["stream"] is True
    assert body["temperature"] == 0.2 and body["stop"] == ["END"]
    assert body["max_completion_tokens" if case.provider == "openai" else "max_tokens"] == 77
    assert body["stream_options"] == {"include_usage": True}
    if case.provider == "azure":
        assert request.path == f"/openai/deployments/{case.model}/chat/completions"
        assert request.query["api-version"] == "2024-10-21"
        assert request.headers["api-key"] == API_KEY
    else:
        assert request.path == "/v1/chat/completions"
        assert body["model"] == case.model
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert "x-stainless-retry-count" not in request.headers or \
        request.headers["x-stainless-retry-count"] == "0"


@pytest.mark.parametrize("case", FAMILY, ids=IDS)
async def test_generate_is_joined_stream(
    case: Case, openai_sim: OpenAISimulator, azure_sim: OpenAISimulator
) -> None:
    sim = _sim(case, openai_sim, azure_sim)
    sim.enqueue(text_stream(["Hello", ",", " world", "!"], prompt_tokens=12))
    sim.enqueue(text_stream(["Hello", ",", " world", "!"], prompt_tokens=12))
    llm = _llm(case, sim)
    assert await llm.generate("hi") == "Hello, world!"
    assert [t async for t in llm.stream("hi")] == ["Hello", ",", " world", "!"]
    assert llm.tokens_used == {"input": 24, "output": 8}
    assert len(sim.requests) == 2


@pytest.mark.parametrize("case", FAMILY, ids=IDS)
@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (401, {}, AuthenticationError),
        (402, {}, QuotaExceededError),
        (403, {}, PermissionDeniedError),
        (404, {}, NotFoundError),
        (400, {}, InvalidRequestError),
        (429, {"retry-after": "7"}, RateLimitError),
        (500, {}, ServerError),
        (503, {}, ServerError),
    ],
)
async def test_typed_errors(
    case: Case,
    status: int,
    headers: dict[str, str],
    expected: type[LLMError],
    openai_sim: OpenAISimulator,
    azure_sim: OpenAISimulator,
) -> None:
    sim = _sim(case, openai_sim, azure_sim)
    body = "openai_compatible/azure/error_429.json" if (case.provider, status) == (
        "azure", 429) else None
    sim.enqueue(error(status, body, headers=headers))
    llm = _llm(case, sim)
    with pytest.raises(expected) as err:
        await llm.generate("hi")
    assert type(err.value) is expected
    assert err.value.status_code == status
    assert err.value.provider == case.provider
    assert err.value.request_id and err.value.request_id.startswith("req_")
    assert err.value.retry_after == (7.0 if status == 429 else None)
    assert API_KEY not in str(err.value) and API_KEY not in repr(err.value)
    assert len(sim.requests) == 1
    assert llm.tokens_used == {"input": 0, "output": 0}


async def test_wrong_key_is_rejected_by_the_simulator(openai_sim: OpenAISimulator) -> None:
    llm = make_llm("gpt-4o", api_key="sk-wrong-key-987654", base_url=openai_sim.url)
    with pytest.raises(AuthenticationError) as err:
        await llm.generate("hi")
    assert err.value.code == "invalid_api_key"
    assert "sk-wrong-key-987654" not in str(err.value)


async def test_key_echoed_by_the_server_is_redacted(openai_sim: OpenAISimulator) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {API_KEY}. Bad.",
                      "type": "invalid_request_error", "code": "invalid_api_key"}}
    openai_sim.enqueue(error(401, echo))
    with pytest.raises(AuthenticationError) as err:
        await make_llm("gpt-4o", api_key=API_KEY, base_url=openai_sim.url).generate("hi")
    assert API_KEY not in str(err.value) and "***" in str(err.value)


async def test_quota_429_is_not_a_plain_rate_limit(openai_sim: OpenAISimulator) -> None:
    quota = {"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota",
                       "code": "insufficient_quota"}}
    openai_sim.enqueue(error(429, quota))
    llm = make_llm("gpt-4o", api_key=API_KEY, base_url=openai_sim.url, max_retries=3,
                   retry_delay=0)
    with pytest.raises(QuotaExceededError):
        await llm.generate("hi")
    assert len(openai_sim.requests) == 1  # waiting does not refill a quota


async def test_context_length_by_code(openai_sim: OpenAISimulator) -> None:
    body = {"error": {"message": "This model's maximum context length is 8192 tokens.",
                      "type": "invalid_request_error", "code": "context_length_exceeded"}}
    openai_sim.enqueue(error(400, body))
    with pytest.raises(InvalidRequestError) as err:
        await make_llm("gpt-4o", api_key=API_KEY, base_url=openai_sim.url).generate("hi")
    assert type(err.value).__name__ == "ContextLengthError"


# ---------------------------------------------------------------- faults on the OpenAI row


def _openai(sim: OpenAISimulator, **fields: object) -> BaseLLM:
    return make_llm("gpt-4o-mini", api_key=API_KEY, base_url=sim.url, **fields)


async def test_error_event_inside_a_200_stream_before_tokens(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(stream_error_event({"message": "The server had an error.",
                                           "type": "server_error", "code": None}))
    with pytest.raises(ServerError) as err:
        await _openai(openai_sim).generate("hi")
    assert "The server had an error." in str(err.value)


async def test_error_event_after_tokens_interrupts(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(stream_error_event({"message": "boom", "type": "server_error"},
                                          tokens_before=["Par", "tial"]))
    llm = _openai(openai_sim, max_retries=2, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == ["Par", "tial"]
    assert err.value.partial_text == "Partial"
    assert isinstance(err.value.__cause__, ServerError)
    assert err.value.usage is not None and not err.value.usage.complete
    assert len(openai_sim.requests) == 1  # never retried once tokens were out


async def test_openrouter_midstream_error_capture(openai_sim: OpenAISimulator) -> None:
    wire = "openai_compatible/openrouter/stream_error_midstream_realcapture.sse"
    llm = make_llm("openrouter:minimax/minimax-m2:free", api_key=API_KEY, base_url=openai_sim.url)
    openai_sim.enqueue(capture(wire))
    with pytest.raises(InvalidRequestError, match="Token limit reached") as err:
        await llm.generate("hi")  # only reasoning came before: no answer text was delivered
    assert err.value.status_code == 400
    openai_sim.enqueue(capture(wire))
    with pytest.raises(StreamInterruptedError) as cut:
        async for _ in llm.stream_chunks("hi"):  # reasoning did reach this caller
            pass
    assert cut.value.partial_text == ""


async def test_malformed_event(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(malformed(tokens_before=()))
    with pytest.raises(ServerError, match="malformed"):
        await _openai(openai_sim).generate("hi")
    openai_sim.enqueue(malformed(tokens_before=("Hi",)))
    with pytest.raises(StreamInterruptedError) as err:
        await _openai(openai_sim).generate("hi")
    assert err.value.partial_text == "Hi"


async def test_cut_after_tokens_never_yields_twice(openai_sim: OpenAISimulator) -> None:
    # events: role chunk, "One", " two", then the connection is cut
    openai_sim.enqueue(text_stream(["One", " two", " three"], cut_after=3))
    llm = _openai(openai_sim, max_retries=3, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == ["One", " two"]
    assert err.value.partial_text == "One two"
    assert isinstance(err.value.__cause__, ConnectionError)
    assert len(openai_sim.requests) == 1


async def test_cut_before_first_token_is_retried_on_stream(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(text_stream(["lost"], cut_after=1),
                       text_stream(["Whole", " answer"], prompt_tokens=5))
    llm = _openai(openai_sim, max_retries=1, retry_delay=0)
    assert [t async for t in llm.stream("hi")] == ["Whole", " answer"]
    assert len(openai_sim.requests) == 2
    assert llm.tokens_used == {"input": 5, "output": 2}


async def test_cut_before_first_token_without_retries(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(text_stream(["lost"], cut_after=1))
    with pytest.raises(ConnectionError):
        await _openai(openai_sim).generate("hi")


async def test_429_then_200_honours_retry_after(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(error(429, headers={"retry-after": "0.2"}), text_stream(["ok"]))
    llm = _openai(openai_sim, max_retries=2, retry_delay=30)  # the header wins over backoff
    start = asyncio.get_running_loop().time()
    assert await llm.generate("hi") == "ok"
    assert 0.2 <= asyncio.get_running_loop().time() - start < 5
    assert len(openai_sim.requests) == 2


async def test_401_is_tried_once(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(error(401))
    with pytest.raises(AuthenticationError):
        await _openai(openai_sim, max_retries=5, retry_delay=0).generate("hi")
    assert len(openai_sim.requests) == 1


async def test_slow_token_hits_timeout(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(text_stream(["late"], delay=2.0))
    with pytest.raises(TimeoutError) as err:
        await _openai(openai_sim, timeout=0.3).generate("hi")
    assert isinstance(err.value, builtins_timeout())


def builtins_timeout() -> type[BaseException]:
    import builtins

    return builtins.TimeoutError


async def test_content_filter_finish_is_an_error(openai_sim: OpenAISimulator) -> None:
    openai_sim.enqueue(text_stream([], finish_reason="content_filter"))
    with pytest.raises(ContentFilterError):
        await _openai(openai_sim).generate("hi")


async def test_concurrent_calls_account_exactly(openai_sim: OpenAISimulator) -> None:
    llm = _openai(openai_sim)
    answers = await asyncio.gather(*(llm.generate(f"q{i}") for i in range(200)))
    assert set(answers) == {"Hello, world!"}
    assert llm.tokens_used == {"input": 200 * 12, "output": 200 * 4}
    assert len(openai_sim.requests) == 200


def test_generate_sync_outside_and_inside_a_loop(openai_sim: OpenAISimulator) -> None:
    llm = _openai(openai_sim)
    assert llm.generate_sync("hi") == "Hello, world!"
    assert list(llm.stream_sync("hi")) == ["Hello", ",", " world", "!"]

    async def notebook_cell() -> str:
        return llm.generate_sync("hi")  # a running loop in this thread

    assert asyncio.run(notebook_cell()) == "Hello, world!"
    llm.close()


async def test_async_with_closes_the_client(openai_sim: OpenAISimulator) -> None:
    async with _openai(openai_sim) as llm:
        assert await llm.generate("hi") == "Hello, world!"
        client = await llm._client()
    assert client.is_closed()


async def test_params_and_headers_reach_the_request(openai_sim: OpenAISimulator) -> None:
    llm = _openai(openai_sim, params={"seed": 7, "top_p": 0.5}, headers={"X-Title": "sk-app"})
    assert await llm.generate("hi", temperature=0.0) == "Hello, world!"
    (request,) = openai_sim.requests
    body = request.json()
    assert (body["seed"], body["top_p"], body["temperature"]) == (7, 0.5, 0.0)
    assert request.headers["x-title"] == "sk-app"


async def test_sequential_calls_reuse_one_connection(openai_sim: OpenAISimulator) -> None:
    llm = _openai(openai_sim)
    for _ in range(3):
        assert await llm.generate("hi") == "Hello, world!"
    assert openai_sim.connections == 1  # the body is read to its end, so keep-alive works
