"""MistralLLM through the real ``mistralai`` SDK over real HTTP, against the local simulator.

Captured streams (captures/mistral) must give exactly their text and token counts; the
fault tests check the call path's promises: typed errors, retries only before the first
token, no token twice, the connection closed when the caller walks away.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionError,
    ContextLengthError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.providers.mistral import MistralLLM
from synapsekit.llm.types import Chunk
from synapsekit.testing.simulators.mistral_protocol import (
    MistralSimulator,
    capture,
    error,
    malformed,
    stream_error_event,
    text_stream,
)
from synapsekit.testing.simulators.server import Reply
from tests.sim_fixtures import autoclose, serve, track

KEY = "mist-test-key-0123456789"
MODEL = "mistral-small-latest"


_server, sim = serve(lambda: MistralSimulator(
    KEY, models=[MODEL, "mistral-large-latest", "magistral-medium-2507", "devstral-latest"]))


_closing = autoclose()


def _llm(sim: MistralSimulator | None, model: str = MODEL, **fields: object) -> BaseLLM:
    fields.setdefault("base_url", sim.url if sim else None)
    llm = make_llm(model, api_key=fields.pop("api_key", KEY), **fields)
    return track(llm)


@dataclass(frozen=True)
class Capture:
    wire: str
    model: str
    text: str
    reasoning: str
    usage: tuple[int, int]
    finish: str


CAPTURES = [
    Capture("stream_ok.sse", "mistral-large-latest", "384400", "", (19, 7), "stop"),
    Capture("stream_ok_realcapture.sse", MODEL, "Hello, world! This is a test response.", "",
            (13, 8), "stop"),
    # devstral-* is not in the detection rules: the provider prefix picks Mistral
    Capture("stream_padding_p_field.sse", "mistral:devstral-latest", "Some content", "", (100, 200),
            "stop"),
    Capture("stream_thinking_realcapture.sse", "magistral-medium-2507", "2 + 2 = 4",
            "The user is asking for 2+2. This is basic arithmetic. 2+2=4.", (10, 46), "stop"),
    Capture("stream_tool_call_realcapture.sse", MODEL, "", "", (124, 22), "tool_calls"),
]


@pytest.mark.parametrize("case", CAPTURES, ids=[c.wire for c in CAPTURES])
async def test_capture_text_reasoning_and_exact_usage(case: Capture, sim: MistralSimulator) -> None:
    sim.enqueue(capture(f"mistral/{case.wire}"))
    llm = _llm(sim, case.model)
    assert isinstance(llm, MistralLLM)
    chunks = [c async for c in llm.stream_chunks("hi")]
    final = chunks[-1]
    assert "".join(c.text for c in chunks) == case.text
    assert "".join(c.reasoning for c in chunks) == case.reasoning
    assert all(not (c.text and c.reasoning) for c in chunks)
    assert final.usage is not None and final.usage.complete
    assert (final.usage.input_tokens, final.usage.output_tokens) == case.usage
    assert final.finish_reason == case.finish
    assert llm.tokens_used == {"input": case.usage[0], "output": case.usage[1]}
    assert len(sim.requests) == 1


async def test_generate_equals_joined_stream(sim: MistralSimulator) -> None:
    llm = _llm(sim)
    sim.enqueue(text_stream(["Bon", "jour", " !"], prompt_tokens=9, padding=True))
    sim.enqueue(text_stream(["Bon", "jour", " !"], prompt_tokens=9, padding=True))
    tokens = [t async for t in llm.stream("hi")]
    assert tokens == ["Bon", "jour", " !"]
    assert await llm.generate("hi") == "".join(tokens)
    assert llm.tokens_used == {"input": 18, "output": 6}
    assert len(sim.requests) == 2


async def test_multi_turn_request_body(sim: MistralSimulator) -> None:
    llm = _llm(sim, system_prompt="Be brief.", temperature=0.7, max_tokens=55,
               stop=["END", "STOP"], params={"top_p": 0.9, "random_seed": 7},
               headers={"X-Trace": "t-1"})
    answer = await llm.generate_with_messages([
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2 — ünïcode"},
    ])
    assert answer == "Hello, world!"
    (request,) = sim.requests
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-trace"] == "t-1"
    body = request.json()
    # the SDK adds "prefix": false to assistant turns (its model's default)
    assert [{"role": m["role"], "content": m["content"]} for m in body["messages"]] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2 — ünïcode"},
    ]
    assert body["model"] == MODEL and body["stream"] is True
    assert body["temperature"] == 0.7 and body["max_tokens"] == 55
    assert body["stop"] == ["END", "STOP"]
    assert body["top_p"] == 0.9 and body["random_seed"] == 7
    assert "stream_options" not in body
    assert body["messages"][2].get("prefix", False) is False


async def test_base_url_with_v1_suffix(sim: MistralSimulator) -> None:
    llm = _llm(sim, base_url=sim.url + "/v1/")
    assert await llm.generate("hi") == "Hello, world!"
    assert sim.requests[0].path == "/v1/chat/completions"


async def test_unknown_param_is_a_config_error(sim: MistralSimulator) -> None:
    with pytest.raises(ConfigError, match="not_a_param"):
        await _llm(sim, params={"not_a_param": 1}).generate("hi")
    assert sim.requests == []


async def test_bad_key(sim: MistralSimulator) -> None:
    wrong = "mist-wrong-key-987654321"
    llm = _llm(sim, api_key=wrong, max_retries=3, retry_delay=0)
    with pytest.raises(AuthenticationError) as err:
        await llm.generate("hi")
    assert type(err.value) is AuthenticationError
    assert err.value.status_code == 401 and err.value.message == "Unauthorized"
    assert err.value.request_id == "corr-000001"
    assert wrong not in str(err.value) and wrong not in repr(err.value)
    assert len(sim.requests) == 1  # never retried


async def test_key_echoed_in_an_error_is_redacted(sim: MistralSimulator) -> None:
    sim.enqueue(error(401, {"message": f"Invalid key {KEY}", "request_id": "r-9"}))
    with pytest.raises(AuthenticationError) as err:
        await _llm(sim).generate("hi")
    assert KEY not in str(err.value) and "***" in str(err.value)
    assert err.value.request_id == "corr-000001"


async def test_429_with_retry_after(sim: MistralSimulator) -> None:
    sim.enqueue(error(429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitError) as err:
        await _llm(sim).generate("hi")
    assert type(err.value) is RateLimitError
    assert err.value.retry_after == 7.0 and err.value.code == "1300"
    assert err.value.message == "Rate limit exceeded"


async def test_429_then_200_with_one_retry(sim: MistralSimulator) -> None:
    sim.enqueue(error(429, headers={"Retry-After": "0.1"}), text_stream(["ok"], prompt_tokens=3))
    llm = _llm(sim, max_retries=1, retry_delay=30)  # Retry-After wins over the backoff
    assert await llm.generate("hi") == "ok"
    assert len(sim.requests) == 2
    assert llm.tokens_used == {"input": 3, "output": 1}


@pytest.mark.parametrize(("status", "expected"), [
    (500, ServerError), (502, ServerError), (503, ServerError),
    (400, InvalidRequestError), (404, NotFoundError), (403, PermissionDeniedError),
    (422, InvalidRequestError),
])
async def test_status_errors(status: int, expected: type[Exception],
                             sim: MistralSimulator) -> None:
    sim.enqueue(error(status))
    with pytest.raises(expected) as err:
        await _llm(sim).generate("hi")
    assert type(err.value) is expected
    assert err.value.status_code == status  # type: ignore[attr-defined]
    assert len(sim.requests) == 1


async def test_422_from_the_simulators_own_validation(sim: MistralSimulator) -> None:
    sim.enqueue(error(422))
    with pytest.raises(InvalidRequestError, match=r"body\.model: Field required"):
        await _llm(sim).generate("hi")


async def test_unknown_model_is_rejected(sim: MistralSimulator) -> None:
    with pytest.raises(InvalidRequestError, match="Invalid model: mistral-nope"):
        await _llm(sim, "mistral-nope").generate("hi")


async def test_context_length_message(sim: MistralSimulator) -> None:
    body = {"object": "error", "message": "Prompt contains 40000 tokens, too large for model "
            "with 32768 maximum context length", "type": "invalid_request_error",
            "param": None, "code": "3051"}
    sim.enqueue(error(400, body))
    with pytest.raises(ContextLengthError):
        await _llm(sim).generate("hi")


async def test_cut_after_tokens_gives_the_exact_partial_text(sim: MistralSimulator) -> None:
    # events: role chunk, "One", " two", then the connection drops
    sim.enqueue(text_stream(["One", " two", " three"], cut_after=3))
    llm = _llm(sim, max_retries=3, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == ["One", " two"]
    assert err.value.partial_text == "One two"
    assert isinstance(err.value.__cause__, ConnectionError)
    assert len(sim.requests) == 1


async def test_cut_before_any_token(sim: MistralSimulator) -> None:
    sim.enqueue(text_stream(["lost"], cut_after=1))
    with pytest.raises(ConnectionError):
        await _llm(sim, max_retries=0).generate("hi")
    sim.enqueue(text_stream(["lost"], cut_after=1), text_stream(["Whole", " answer"]))
    assert await _llm(sim, max_retries=1, retry_delay=0).generate("hi") == "Whole answer"
    assert len(sim.requests) == 3


async def test_stream_without_done_is_a_connection_error(sim: MistralSimulator) -> None:
    events = text_stream(["x"]).stream
    assert events is not None
    # role chunk, then the finish+usage chunk, then a clean end without "data: [DONE]"
    sim.enqueue(Reply(200, {"content-type": "text/event-stream"}, stream=[events[0], events[-2]]))
    with pytest.raises(ConnectionError, match=r"\[DONE\]"):
        await _llm(sim).generate("hi")


async def test_model_length_means_length(sim: MistralSimulator) -> None:
    sim.enqueue(text_stream(["trunc"], finish_reason="model_length"))
    final = [c async for c in _llm(sim).stream_chunks("hi")][-1]
    assert final.finish_reason == "length"


async def test_finish_reason_error_is_a_server_error(sim: MistralSimulator) -> None:
    sim.enqueue(text_stream([], finish_reason="error"))
    with pytest.raises(ServerError, match="finish_reason 'error'"):
        await _llm(sim).generate("hi")


async def test_error_event_in_a_200_stream(sim: MistralSimulator) -> None:
    event = {"message": "Service unavailable", "type": "service_unavailable", "param": None,
             "code": "3505"}
    sim.enqueue(stream_error_event(event))
    with pytest.raises(ServerError, match="Service unavailable"):
        await _llm(sim).generate("hi")
    sim.enqueue(stream_error_event(event, tokens_before=["Par", "tial"]))
    with pytest.raises(StreamInterruptedError) as err:  # stream(): never retried after tokens
        [t async for t in _llm(sim, max_retries=2, retry_delay=0).stream("hi")]
    assert err.value.partial_text == "Partial"
    assert len(sim.requests) == 2


async def test_malformed_event(sim: MistralSimulator) -> None:
    sim.enqueue(malformed(tokens_before=()))
    with pytest.raises(ServerError, match="malformed"):
        await _llm(sim).generate("hi")
    sim.enqueue(malformed(tokens_before=("Hi",)))
    with pytest.raises(StreamInterruptedError) as err:
        await _llm(sim).generate("hi")
    assert err.value.partial_text == "Hi"


async def test_synthetic_thinking_stream(sim: MistralSimulator) -> None:
    sim.enqueue(text_stream(["4", "."], thinking=["Two plus", " two."], prompt_tokens=5))
    chunks: list[Chunk] = [c async for c in _llm(sim).stream_chunks("2+2?")]
    assert [c.reasoning for c in chunks if c.reasoning] == ["Two plus", " two."]
    assert [c.text for c in chunks if c.text] == ["4", "."]
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 4


async def test_refused_connection() -> None:
    llm = _llm(None, base_url="http://127.0.0.1:9")
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:9"):
        await llm.generate("hi")


async def test_aclose_closes_the_sdk_client(sim: MistralSimulator) -> None:
    async with make_llm(MODEL, api_key=KEY, base_url=sim.url) as llm:
        assert await llm.generate("hi") == "Hello, world!"
        client = await llm._client()
    assert client.sdk_configuration.async_client is None  # the SDK's httpx client is closed


async def test_complete_stream_reuses_the_connection(sim: MistralSimulator) -> None:
    llm = _llm(sim)
    before = sim.connections
    for _ in range(3):
        assert await llm.generate("hi") == "Hello, world!"
    assert sim.connections - before == 1  # read past [DONE] to the body's end: keep-alive
