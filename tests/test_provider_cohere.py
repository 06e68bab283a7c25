"""CohereLLM through the real cohere SDK (v2 chat) over real HTTP, against the Cohere simulator.

Every assertion is one a broken adapter would fail: exact text and token counts from the
captures (``tokens`` counted, not ``billed_units``), the exact request body, the exact
exception class, and how many requests the simulator saw.
"""

from __future__ import annotations

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConnectionError,
    InvalidRequestError,
    LLMError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.types import Chunk
from synapsekit.testing.simulators.cohere_protocol import (
    CohereSimulator,
    capture,
    error,
    malformed,
    stream_error_event,
    text_stream,
)
from tests.sim_fixtures import serve, track

KEY = "co-sim-key-0123456789"
TURNS = [
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "Q2"},
]


_server, sim = serve(lambda: CohereSimulator(KEY))


def _llm(sim: CohereSimulator, **fields: object) -> BaseLLM:
    fields.setdefault("api_key", KEY)
    llm = make_llm("command-a-03-2025", base_url=sim.url, **fields)
    return track(llm)


# ------------------------------------------------------------------------ captures, request

LLMS = ("LLMs stand for Large Language Models, which are a type of neural network model "
        "specialized in processing and generating human language.")


@pytest.mark.parametrize(
    ("wire", "text", "reasoning_chars", "usage", "billed"),
    [
        # usage: input, output, cached input (all from usage.tokens / cached_tokens)
        ("cohere/stream_ok.sse", LLMS, 0, (71, 26, 0), (5, 26)),
        ("cohere/stream_ok_realcapture.sse", "The capital of France is Paris.", 0,
         (507, 10, 448), (12, 7)),
        ("cohere/stream_thinking_realcapture.sse", "The answer to 2 + 2 is 4.", 162,
         (1394, 54, 1360), (8, 50)),
    ],
    ids=["spec", "realcapture", "thinking"],
)
async def test_capture_text_usage_and_request(
    sim: CohereSimulator, wire: str, text: str, reasoning_chars: int,
    usage: tuple[int, int, int], billed: tuple[int, int],
) -> None:
    sim.enqueue(capture(wire))
    llm = _llm(sim, system_prompt="Be brief.", max_tokens=77, stop=["END"])
    chunks: list[Chunk] = [c async for c in llm.stream_chunks(TURNS)]
    final = chunks[-1]
    assert "".join(c.text for c in chunks) == text
    assert sum(len(c.reasoning) for c in chunks) == reasoning_chars
    assert all(not (c.text and c.reasoning) for c in chunks)  # thinking never in the answer
    u = final.usage
    assert u is not None and u.complete
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens) == usage
    assert final.finish_reason == "stop"
    assert final.metadata is not None
    assert final.metadata["billed_units"] == {"input_tokens": billed[0],
                                              "output_tokens": billed[1]}
    assert llm.tokens_used == {"input": usage[0], "output": usage[1]}

    (request,) = sim.requests
    assert (request.method, request.path) == ("POST", "/v2/chat")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json()
    assert body == {
        "model": "command-a-03-2025",
        "messages": [{"role": "system", "content": "Be brief."}, *TURNS],
        "max_tokens": 77,
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "stream": True,
    }


async def test_thinking_capture_streams_only_the_answer(sim: CohereSimulator) -> None:
    sim.enqueue(capture("cohere/stream_thinking_realcapture.sse"))
    tokens = [t async for t in _llm(sim).stream("2 + 2?")]
    assert tokens[:3] == ["The", " answer", " to"] and len(tokens) == 9


async def test_stream_without_done_terminator(sim: CohereSimulator) -> None:
    sim.enqueue(capture("cohere/stream_ok_realcapture.sse", done=False))
    assert await _llm(sim).generate("hi") == "The capital of France is Paris."


async def test_tool_call_capture_finishes_with_tool_calls(sim: CohereSimulator) -> None:
    sim.enqueue(capture("cohere/stream_tool_call.sse"))
    final = [c async for c in _llm(sim).stream_chunks("sales?")][-1]
    assert final.finish_reason == "tool_calls"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (1589, 135)


async def test_generate_is_joined_stream(sim: CohereSimulator) -> None:
    reply = text_stream(["Hello", ",", " world", "!"], input_tokens=12, output_tokens=5,
                        billed_input=3)
    sim.enqueue(reply, reply)
    llm = _llm(sim)
    assert await llm.generate("hi") == "Hello, world!"
    assert [t async for t in llm.stream("hi")] == ["Hello", ",", " world", "!"]
    assert llm.tokens_used == {"input": 24, "output": 10}
    assert len(sim.requests) == 2


async def test_billed_units_when_tokens_are_absent(sim: CohereSimulator) -> None:
    sim.enqueue(text_stream(["ok"], usage_obj={"billed_units": {"input_tokens": 4,
                                                                "output_tokens": 1}}))
    llm = _llm(sim)
    assert await llm.generate("hi") == "ok"
    assert llm.tokens_used == {"input": 4, "output": 1}


async def test_max_tokens_finish_is_length(sim: CohereSimulator) -> None:
    sim.enqueue(text_stream(["Cut"], finish_reason="MAX_TOKENS"))
    final = [c async for c in _llm(sim).stream_chunks("hi")][-1]
    assert final.finish_reason == "length"


async def test_params_and_headers_reach_the_request(sim: CohereSimulator) -> None:
    params = {"seed": 7, "p": 0.5, "thinking": {"type": "enabled", "token_budget": 100}}
    llm = _llm(sim, params=params, headers={"X-Client-Name": "app"}, system_prompt=None)
    assert await llm.generate("hi", temperature=0.0) == "Hello, world!"
    (request,) = sim.requests
    body = request.json()
    assert (body["seed"], body["p"], body["temperature"]) == (7, 0.5, 0.0)
    assert body["thinking"] == {"type": "enabled", "token_budget": 100}
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "stop_sequences" not in body
    assert request.headers["x-client-name"] == "app"


# ------------------------------------------------------------------------ errors


async def test_bad_key_is_an_authentication_error(sim: CohereSimulator) -> None:
    wrong = "co-wrong-key-987654"
    llm = _llm(sim, api_key=wrong, max_retries=3)
    with pytest.raises(AuthenticationError) as err:
        await llm.generate("hi")
    assert err.value.status_code == 401
    assert str(err.value).startswith("invalid api token")
    assert wrong not in str(err.value) and wrong not in repr(err.value)
    assert len(sim.requests) == 1  # never retried


async def test_key_echoed_in_an_error_message_is_redacted(sim: CohereSimulator) -> None:
    sim.enqueue(error(401, {"message": f"invalid api token {KEY}"}))
    with pytest.raises(AuthenticationError) as err:
        await _llm(sim).generate("hi")
    assert KEY not in str(err.value) and "***" in str(err.value)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidRequestError),
        (402, QuotaExceededError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (498, AuthenticationError),
        (500, ServerError),
        (503, ServerError),
    ],
)
async def test_typed_errors(
    sim: CohereSimulator, status: int, expected: type[LLMError]
) -> None:
    sim.enqueue(error(status))
    llm = _llm(sim)
    with pytest.raises(expected) as err:
        await llm.generate("hi")
    assert type(err.value) is expected
    assert err.value.status_code == status
    assert (err.value.provider, err.value.model) == ("cohere", "command-a-03-2025")
    assert len(sim.requests) == 1
    assert llm.tokens_used == {"input": 0, "output": 0}


async def test_429_with_retry_after(sim: CohereSimulator) -> None:
    sim.enqueue(error(429, headers={"retry-after": "7"}))
    with pytest.raises(RateLimitError) as err:
        await _llm(sim, max_retries=0).generate("hi")
    assert err.value.retry_after == 7.0
    assert "per minute request limit" in str(err.value)  # the captured body
    assert len(sim.requests) == 1


async def test_429_then_200_with_one_retry(sim: CohereSimulator) -> None:
    sim.enqueue(error(429, headers={"retry-after": "0.05"}),
                text_stream(["ok"], input_tokens=3))
    llm = _llm(sim, max_retries=1, retry_delay=30)  # the header wins over backoff
    assert await llm.generate("hi") == "ok"
    assert len(sim.requests) == 2
    assert llm.tokens_used == {"input": 3, "output": 1}


async def test_error_finish_inside_a_200_stream(sim: CohereSimulator) -> None:
    sim.enqueue(stream_error_event("model overloaded"))
    with pytest.raises(ServerError, match="model overloaded") as err:
        await _llm(sim).generate("hi")
    assert err.value.code == "ERROR"
    sim.enqueue(stream_error_event(tokens_before=["Par", "tial"]))
    with pytest.raises(StreamInterruptedError) as cut:  # stream(): never retried after tokens
        [t async for t in _llm(sim, max_retries=2, retry_delay=0).stream("hi")]
    assert cut.value.partial_text == "Partial"
    assert isinstance(cut.value.__cause__, ServerError)
    assert len(sim.requests) == 2  # one per call: never retried after tokens


async def test_malformed_event(sim: CohereSimulator) -> None:
    sim.enqueue(malformed(tokens_before=()))
    with pytest.raises(ServerError, match="malformed"):
        await _llm(sim).generate("hi")
    sim.enqueue(malformed(tokens_before=("Hi",)))
    with pytest.raises(StreamInterruptedError) as err:
        await _llm(sim).generate("hi")
    assert err.value.partial_text == "Hi"


# ------------------------------------------------------------------------ transport faults


async def test_cut_after_tokens_is_interrupted_with_the_partial_text(sim: CohereSimulator) -> None:
    # events: message-start, content-start, "One", " two", then the connection is cut
    sim.enqueue(text_stream(["One", " two", " three"], cut_after=4))
    llm = _llm(sim, max_retries=3, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == ["One", " two"]
    assert err.value.partial_text == "One two"
    assert isinstance(err.value.__cause__, ConnectionError)
    assert err.value.usage is not None and not err.value.usage.complete
    assert len(sim.requests) == 1


async def test_cut_before_any_token(sim: CohereSimulator) -> None:
    sim.enqueue(text_stream(["lost"], cut_after=1))
    with pytest.raises(ConnectionError):
        await _llm(sim, max_retries=0).generate("hi")
    sim.enqueue(text_stream(["lost"], cut_after=1), text_stream(["Whole"], input_tokens=5))
    llm = _llm(sim, max_retries=1, retry_delay=0)
    assert await llm.generate("hi") == "Whole"
    assert len(sim.requests) == 3
    assert llm.tokens_used == {"input": 5, "output": 1}


async def test_missing_message_end(sim: CohereSimulator) -> None:
    sim.enqueue(text_stream([], finish_reason=None))  # [DONE] but no message-end
    with pytest.raises(ConnectionError, match="message-end"):
        await _llm(sim).generate("hi")
    sim.enqueue(text_stream(["Half", " way"], finish_reason=None, done=False))
    with pytest.raises(StreamInterruptedError) as err:
        await _llm(sim).generate("hi")
    assert err.value.partial_text == "Half way"


async def test_async_with_closes_the_client(sim: CohereSimulator) -> None:
    async with _llm(sim) as llm:
        assert await llm.generate("hi") == "Hello, world!"
        client = await llm._client()
    assert client._client_wrapper.httpx_client.httpx_client.is_closed


# ------------------------------------------------------------------------ the simulator itself


def test_simulator_rejects_what_the_api_rejects(sim: CohereSimulator) -> None:
    import httpx

    url = f"{sim.url}/v2/chat"
    ok = {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "hi"}],
          "stream": True}
    auth = {"authorization": f"bearer {KEY}"}  # the scheme is case-insensitive
    cases = [
        (httpx.post(url, json=ok), 401, "no api key supplied"),
        (httpx.post(url, json=ok, headers={"authorization": "Bearer nope"}), 401,
         "invalid api token"),
        (httpx.post(url, json={**ok, "model": ""}, headers=auth), 400, "model"),
        (httpx.post(url, json={**ok, "messages": [{"role": "bot", "content": "x"}]},
                    headers=auth), 400, "role"),
        (httpx.post(url, json={**ok, "stream": False}, headers=auth), 400, "stream"),
        (httpx.post(f"{sim.url}/v1/chat", json=ok, headers=auth), 404, "not found"),
    ]
    for response, status, text in cases:
        assert response.status_code == status
        assert text in response.json()["message"]
    assert httpx.post(url, json=ok, headers=auth).status_code == 200
