"""GeminiLLM through the real google-genai SDK over real HTTP, against the Gemini simulator.

Every assertion is one a broken adapter would fail: exact text and token counts from the
captures (usage is cumulative per chunk: a sum is wrong), the exact request body, the exact
exception class, and how many requests the simulator saw.
"""

from __future__ import annotations

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionError,
    ContentFilterError,
    LLMError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.providers.gemini import GeminiLLM
from synapsekit.llm.types import Chunk
from synapsekit.testing.simulators.gemini_protocol import (
    GeminiSimulator,
    bad_key,
    blocked_prompt,
    camel,
    capture,
    error,
    malformed,
    rate_limited,
    stream_error_event,
    text_stream,
)
from synapsekit.testing.simulators.server import Reply
from tests.sim_fixtures import serve, track

KEY = "AIza-sim-key-0123456789"
TURNS = [
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "Q2"},
]


_server, sim = serve(lambda: GeminiSimulator(KEY))


def _llm(sim: GeminiSimulator, **fields: object) -> BaseLLM:
    fields.setdefault("api_key", KEY)
    llm = make_llm("gemini-2.5-flash", base_url=sim.url, **fields)
    return track(llm)


# ------------------------------------------------------------------------ captures, request


@pytest.mark.parametrize(
    ("wire", "text", "reasoning_chars", "usage", "finish"),
    [
        # usage: input, output, cached, reasoning. Output = candidates + thoughts.
        ("gemini/stream_ok.sse", "The capital of Wyoming is **Cheyenne**.\n", 0, (7, 10, 0, 0),
         "stop"),
        ("gemini/stream_thinking.sse",
         "The sky is blue because tiny gas molecules in Earth's atmosphere scatter blue light "
         "from the sun more efficiently than other colors. Blue light has shorter, smaller "
         "wavelengths, causing it to be scattered in all directions, making the sky appear "
         "blue to our eyes.", 1133, (10, 48 + 540, 0, 540), "stop"),
        # finishReason STOP with a functionCall part: the answer ends with a tool call
        ("gemini/stream_function_call_thinking.sse", "", 765, (38, 6 + 168, 0, 168),
         "tool_calls"),
    ],
    ids=["ok", "thinking", "function_call_thinking"],
)
async def test_capture_text_usage_and_request(
    sim: GeminiSimulator, wire: str, text: str, reasoning_chars: int,
    usage: tuple[int, int, int, int], finish: str,
) -> None:
    sim.enqueue(capture(wire))
    llm = _llm(sim, system_prompt="Be brief.", max_tokens=77, stop=["END"])
    chunks: list[Chunk] = [c async for c in llm.stream_chunks(TURNS)]
    final = chunks[-1]
    assert "".join(c.text for c in chunks) == text
    assert sum(len(c.reasoning) for c in chunks) == reasoning_chars
    assert all(not (c.text and c.reasoning) for c in chunks)  # thoughts never in the answer
    u = final.usage
    assert u is not None and u.complete
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens) == usage
    assert final.finish_reason == finish
    assert final.metadata is not None and final.metadata["raw_finish_reason"] == "STOP"
    assert llm.tokens_used == {"input": usage[0], "output": usage[1]}

    (request,) = sim.requests
    assert request.method == "POST"
    assert request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert request.query == {"alt": "sse"}
    assert request.headers["x-goog-api-key"] == KEY
    body = request.json()
    assert body["contents"] == [
        {"parts": [{"text": "Q1"}], "role": "user"},
        {"parts": [{"text": "A1"}], "role": "model"},
        {"parts": [{"text": "Q2"}], "role": "user"},
    ]
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert body["generationConfig"] == {
        "temperature": 0.2, "maxOutputTokens": 77, "stopSequences": ["END"]
    }


async def test_thinking_capture_keeps_reasoning_apart(sim: GeminiSimulator) -> None:
    sim.enqueue(capture("gemini/stream_thinking.sse"))
    chunks = [c async for c in _llm(sim).stream_chunks("Why is the sky blue?")]
    reasoning = [c.reasoning for c in chunks if c.reasoning]
    assert len(reasoning) == 3 and reasoning[0].startswith("**Exploring Sky Color**")
    assert chunks[-1].metadata == {"response_id": "0J-HaJetAqv0jrEPwu-tsQ0",
                                   "model_version": "gemini-2.5-flash",
                                   "raw_finish_reason": "STOP"}
    sim.enqueue(capture("gemini/stream_thinking.sse"))
    tokens = [t async for t in _llm(sim).stream("Why is the sky blue?")]
    assert len(tokens) == 2 and not any("Exploring" in t for t in tokens)


async def test_generate_is_joined_stream(sim: GeminiSimulator) -> None:
    reply = text_stream(["Hello", ",", " world", "!"], prompt_tokens=12, candidates_tokens=5,
                        thoughts=["Plan."], thoughts_tokens=3, cached_tokens=4)
    sim.enqueue(reply, reply)
    llm = _llm(sim)
    assert await llm.generate("hi") == "Hello, world!"
    assert [t async for t in llm.stream("hi")] == ["Hello", ",", " world", "!"]
    assert llm.tokens_used == {"input": 24, "output": 16}  # (12, 5 + 3) twice, never summed
    assert len(sim.requests) == 2
    sim.enqueue(reply)
    final = [c async for c in llm.stream_chunks("hi")][-1]
    assert final.usage is not None
    assert (final.usage.cached_input_tokens, final.usage.reasoning_tokens) == (4, 3)


async def test_max_tokens_finish_is_length(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream(["Cut"], finish_reason="MAX_TOKENS"))
    final = [c async for c in _llm(sim).stream_chunks("hi")][-1]
    assert final.finish_reason == "length"


async def test_params_and_headers_reach_the_request(sim: GeminiSimulator) -> None:
    params = {"top_p": 0.5, "seed": 7, "thinking_config": {"thinking_budget": 0}}
    llm = _llm(sim, params=params, headers={"X-Title": "app"}, system_prompt=None)
    assert await llm.generate("hi", temperature=0.0) == "Hello, world!"
    (request,) = sim.requests
    body = camel(request.json())  # proto JSON: snake_case names are accepted too
    assert body["generationConfig"] == {
        "temperature": 0.0, "topP": 0.5, "seed": 7, "maxOutputTokens": 1024,
        "thinkingConfig": {"thinkingBudget": 0},
    }
    assert "systemInstruction" not in body
    assert request.headers["x-title"] == "app"


async def test_unknown_param_is_a_config_error_before_any_request(sim: GeminiSimulator) -> None:
    with pytest.raises(ConfigError, match="params"):
        await _llm(sim, params={"no_such_field": 1}).generate("hi")
    assert sim.requests == []


# ------------------------------------------------------------------------ errors


async def test_bad_key_is_an_authentication_error(sim: GeminiSimulator) -> None:
    wrong = "AIza-wrong-key-987654"
    llm = _llm(sim, api_key=wrong, max_retries=3)
    with pytest.raises(AuthenticationError) as err:
        await llm.generate("hi")
    assert err.value.status_code == 400  # Google answers a bad key with 400 API_KEY_INVALID
    assert err.value.code == "API_KEY_INVALID"
    assert "API key not valid" in str(err.value)
    assert wrong not in str(err.value) and wrong not in repr(err.value)
    assert len(sim.requests) == 1  # never retried


async def test_key_echoed_in_an_error_message_is_redacted(sim: GeminiSimulator) -> None:
    sim.enqueue(error(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                      "message": f"Bad request for key {KEY}."}}))
    with pytest.raises(LLMError) as err:
        await _llm(sim).generate("hi")
    assert KEY not in str(err.value) and "***" in str(err.value)
    sim.enqueue(bad_key(KEY))  # the DebugInfo detail echoes the key
    with pytest.raises(AuthenticationError) as auth:
        await _llm(sim).generate("hi")
    assert KEY not in str(auth.value)


@pytest.mark.parametrize(
    ("reply", "expected", "status"),
    [
        (error(403), PermissionDeniedError, 403),
        (error(404), NotFoundError, 404),
        (error(500), ServerError, 500),
        (error(503), ServerError, 503),
        (rate_limited(), RateLimitError, 429),
    ],
    ids=["403", "404", "500", "503", "429"],
)
async def test_typed_errors(
    sim: GeminiSimulator, reply: Reply, expected: type[LLMError], status: int
) -> None:
    sim.enqueue(reply)
    llm = _llm(sim)
    with pytest.raises(expected) as err:
        await llm.generate("hi")
    assert type(err.value) is expected
    assert err.value.status_code == status
    assert (err.value.provider, err.value.model) == ("gemini", "gemini-2.5-flash")
    assert len(sim.requests) == 1
    assert llm.tokens_used == {"input": 0, "output": 0}


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (rate_limited("26s"), 26.0),  # RetryInfo.retryDelay in the body
        (rate_limited("7.81s"), 7.81),
        (rate_limited(None, headers={"retry-after": "3"}), 3.0),  # a header, if ever sent
        (error(429, "gemini/error_429.json"), None),  # the capture as is: no hint
    ],
    ids=["26s", "fraction", "header", "capture"],
)
async def test_rate_limit_retry_after(
    sim: GeminiSimulator, reply: Reply, retry_after: float | None
) -> None:
    sim.enqueue(reply)
    with pytest.raises(RateLimitError) as err:
        await _llm(sim).generate("hi")
    assert err.value.retry_after == retry_after
    assert err.value.code == "RESOURCE_EXHAUSTED"


async def test_429_then_200_with_one_retry(sim: GeminiSimulator) -> None:
    sim.enqueue(rate_limited("0.05s"), text_stream(["ok"], prompt_tokens=3))
    llm = _llm(sim, max_retries=1, retry_delay=30)  # the server's delay wins over backoff
    assert await llm.generate("hi") == "ok"
    assert len(sim.requests) == 2
    assert llm.tokens_used == {"input": 3, "output": 1}


async def test_error_event_inside_a_200_stream(sim: GeminiSimulator) -> None:
    sim.enqueue(stream_error_event(503, "The model is overloaded."))
    with pytest.raises(ServerError, match="overloaded") as err:
        await _llm(sim).generate("hi")
    assert err.value.status_code == 503
    sim.enqueue(stream_error_event(tokens_before=["Par", "tial"]))
    with pytest.raises(StreamInterruptedError) as cut:  # stream(): never retried after tokens
        [t async for t in _llm(sim, max_retries=2, retry_delay=0).stream("hi")]
    assert cut.value.partial_text == "Partial"
    assert isinstance(cut.value.__cause__, ServerError)
    assert len(sim.requests) == 2  # one per call: never retried after tokens


async def test_malformed_event(sim: GeminiSimulator) -> None:
    sim.enqueue(malformed(tokens_before=()))
    with pytest.raises(ServerError, match="malformed"):
        await _llm(sim).generate("hi")
    sim.enqueue(malformed(tokens_before=("Hi",)))
    with pytest.raises(StreamInterruptedError) as err:
        await _llm(sim).generate("hi")
    assert err.value.partial_text == "Hi"


async def test_safety_finish_is_a_content_filter_error(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream([], finish_reason="SAFETY"))
    with pytest.raises(ContentFilterError) as err:
        await _llm(sim, max_retries=2).generate("hi")
    assert err.value.code == "SAFETY"
    sim.enqueue(text_stream(["Some", " text"], finish_reason="RECITATION"))
    with pytest.raises(StreamInterruptedError) as cut:
        await _llm(sim).generate("hi")
    assert cut.value.partial_text == "Some text"
    assert isinstance(cut.value.__cause__, ContentFilterError)
    assert len(sim.requests) == 2


async def test_blocked_prompt_is_a_content_filter_error(sim: GeminiSimulator) -> None:
    sim.enqueue(blocked_prompt("PROHIBITED_CONTENT"))
    with pytest.raises(ContentFilterError) as err:
        await _llm(sim).generate("hi")
    assert err.value.code == "PROHIBITED_CONTENT"


# ------------------------------------------------------------------------ transport faults


async def test_cut_after_tokens_is_interrupted_with_the_partial_text(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream(["One", " two", " three"], cut_after=2))
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


async def test_cut_before_any_token(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream(["lost"], cut_after=0))
    with pytest.raises(ConnectionError):
        await _llm(sim, max_retries=0).generate("hi")
    sim.enqueue(text_stream(["lost"], cut_after=0), text_stream(["Whole"], prompt_tokens=5))
    llm = _llm(sim, max_retries=1, retry_delay=0)
    assert await llm.generate("hi") == "Whole"
    assert len(sim.requests) == 3
    assert llm.tokens_used == {"input": 5, "output": 1}


async def test_body_ending_without_finish_reason(sim: GeminiSimulator) -> None:
    sim.enqueue(text_stream([], finish_reason=None))
    with pytest.raises(ConnectionError, match="finishReason"):
        await _llm(sim).generate("hi")
    sim.enqueue(text_stream(["Half", " way"], finish_reason=None))
    with pytest.raises(StreamInterruptedError) as err:
        await _llm(sim).generate("hi")
    assert err.value.partial_text == "Half way"


async def test_async_with_closes_the_client(sim: GeminiSimulator) -> None:
    async with _llm(sim) as llm:
        assert isinstance(llm, GeminiLLM)
        assert await llm.generate("hi") == "Hello, world!"
        client = await llm._client()
    assert client.http.is_closed


# ------------------------------------------------------------------------ the simulator itself


def test_simulator_rejects_what_the_api_rejects(sim: GeminiSimulator) -> None:
    import httpx

    url = f"{sim.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    ok = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    auth = {"x-goog-api-key": KEY}
    cases = [
        (httpx.post(url, json=ok), 403, "unregistered callers"),
        (httpx.post(url, json=ok, headers={"x-goog-api-key": "nope"}), 400, "API key not valid"),
        (httpx.post(url, json={"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
                    headers=auth), 400, "valid role"),
        (httpx.post(url, json={**ok, "messages": []}, headers=auth), 400,
         'Unknown name "messages"'),
        (httpx.post(url, json={"contents": []}, headers=auth), 400, "contents is not specified"),
        (httpx.post(url.replace("?alt=sse", ""), json=ok, headers=auth), 400, "alt=sse"),
    ]
    for response, status, text in cases:
        assert response.status_code == status
        assert text in response.json()["error"]["message"]
    assert httpx.post(f"{url}&key={KEY}", json=ok).status_code == 200  # ?key= works too
