"""OllamaLLM through the real ``ollama`` SDK over real HTTP, against the local simulator.

Captured NDJSON streams (captures/ollama) must give exactly their text and token counts;
the fault tests check typed errors (a 404 that says how to pull the model, a refused
connection that names the host), retries only before the first token, no token twice,
and the connection closed when the caller walks away.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConnectionError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.providers.ollama import OllamaLLM
from synapsekit.llm.types import Chunk
from synapsekit.testing.simulators.ollama_protocol import (
    OllamaSimulator,
    capture,
    error,
    malformed,
    stream_error,
    text_stream,
)
from tests.sim_fixtures import autoclose, serve, track

MODEL = "llama3.2"
CLOUD_KEY = "ollama-cloud-key-0123456789"


_local, sim = serve(lambda: OllamaSimulator(models=[MODEL, "gemma4", "qwen3:0.6b"]))
_cloud, cloud = serve(
    lambda: OllamaSimulator(models=["gpt-oss:120b"], api_key=CLOUD_KEY), name="cloud")
_closing = autoclose()


def _llm(base_url: str | None, model: str = MODEL, **fields: object) -> BaseLLM:
    llm = make_llm(f"ollama:{model}", base_url=base_url, **fields)
    return track(llm)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Capture:
    wire: str
    model: str
    text: str
    usage: tuple[int, int]
    complete: bool
    finish: str


CAPTURES = [
    Capture("stream_ok.ndjson", MODEL, "The", (26, 282), True, "stop"),
    # done_reason "stop" after a tool call: the answer's finish reason is "tool_calls"
    Capture("stream_tool_call.ndjson", MODEL, "", (169, 15), True, "tool_calls"),
    # /api/generate example re-shaped as chat lines: its done line carries no counts
    Capture("stream_generate_docs.ndjson", "gemma4", "That's a fantastic question!", (0, 0),
            False, "stop"),
]


@pytest.mark.parametrize("case", CAPTURES, ids=[c.wire for c in CAPTURES])
async def test_capture_text_and_exact_usage(case: Capture, sim: OllamaSimulator) -> None:
    sim.enqueue(capture(f"ollama/{case.wire}"))
    llm = _llm(sim.url, case.model)
    assert isinstance(llm, OllamaLLM)
    chunks = [c async for c in llm.stream_chunks("hi")]
    final = chunks[-1]
    assert "".join(c.text for c in chunks) == case.text
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == case.usage
    assert final.usage.complete is case.complete
    assert final.finish_reason == case.finish
    assert llm.tokens_used == {"input": case.usage[0], "output": case.usage[1]}
    assert len(sim.requests) == 1


async def test_generate_equals_joined_stream(sim: OllamaSimulator) -> None:
    llm = _llm(sim.url)
    sim.enqueue(text_stream(["Hal", "lo", "!"], prompt_eval_count=9, eval_count=4))
    sim.enqueue(text_stream(["Hal", "lo", "!"], prompt_eval_count=9, eval_count=4))
    tokens = [t async for t in llm.stream("hi")]
    assert tokens == ["Hal", "lo", "!"]
    assert await llm.generate("hi") == "".join(tokens)
    assert llm.tokens_used == {"input": 18, "output": 8}
    assert len(sim.requests) == 2


async def test_multi_turn_request_body(sim: OllamaSimulator) -> None:
    llm = _llm(sim.url, system_prompt="Be brief.", temperature=0.7, max_tokens=55,
               stop=["END", "STOP"], params={"top_k": 20, "seed": 7, "think": False,
                                             "keep_alive": "5m"},
               headers={"X-Trace": "t-1"})
    answer = await llm.generate_with_messages([
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2 — ünïcode"},
    ])
    assert answer == "Hello, world!"
    (request,) = sim.requests
    assert request.method == "POST" and request.path == "/api/chat"
    assert request.headers["x-trace"] == "t-1"
    assert "authorization" not in request.headers  # no key: none sent
    body = request.json()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2 — ünïcode"},
    ]
    assert body["model"] == MODEL and body["stream"] is True
    assert body["options"] == {"temperature": 0.7, "num_predict": 55, "stop": ["END", "STOP"],
                               "top_k": 20, "seed": 7}
    assert body["think"] is False and body["keep_alive"] == "5m"  # top-level chat arguments


async def test_thinking_is_kept_apart(sim: OllamaSimulator) -> None:
    sim.enqueue(text_stream(["4"], thinking=["Two plus", " two."], prompt_eval_count=5,
                            eval_count=12, model="qwen3:0.6b"))
    chunks: list[Chunk] = [c async for c in _llm(sim.url, "qwen3:0.6b").stream_chunks("2+2?")]
    assert [c.reasoning for c in chunks if c.reasoning] == ["Two plus", " two."]
    assert [c.text for c in chunks if c.text] == ["4"]
    usage = chunks[-1].usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (5, 12)


async def test_length_and_uncached_prompt(sim: OllamaSimulator) -> None:
    # no prompt_eval_count on the done line (the whole prompt was cached): input 0, still final
    sim.enqueue(text_stream(["cut"], prompt_eval_count=None, eval_count=1, done_reason="length"))
    final = [c async for c in _llm(sim.url).stream_chunks("hi")][-1]
    assert final.finish_reason == "length"
    assert final.usage is not None and final.usage.complete
    assert (final.usage.input_tokens, final.usage.output_tokens) == (0, 1)


async def test_model_not_pulled(sim: OllamaSimulator) -> None:
    llm = _llm(sim.url, "mistral-nemo", max_retries=3, retry_delay=0)
    with pytest.raises(NotFoundError) as err:
        await llm.generate("hi")
    assert type(err.value) is NotFoundError and err.value.status_code == 404
    assert "ollama pull mistral-nemo" in str(err.value)
    assert 'model "mistral-nemo" not found' in str(err.value)
    assert len(sim.requests) == 1  # never retried


async def test_captured_404_body(sim: OllamaSimulator) -> None:
    sim.enqueue(error(404))  # captures/ollama/error_404_model_not_found.json
    with pytest.raises(NotFoundError, match=r"ollama pull llama3\.2"):
        await _llm(sim.url).generate("hi")


async def test_openai_style_base_url_gets_a_hint(sim: OllamaSimulator) -> None:
    with pytest.raises(NotFoundError, match="base_url is the server root") as err:
        await _llm(sim.url + "/v1").generate("hi")
    assert "ollama pull" not in str(err.value)  # the model is there; the path is wrong
    assert sim.requests[0].path == "/v1/api/chat"


async def test_refused_connection_names_the_host() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    llm = _llm(url)
    with pytest.raises(ConnectionError) as err:
        await llm.generate("hi")
    assert f"Connection to Ollama at {url} failed" in str(err.value)
    assert "Start it with `ollama serve`" in str(err.value)


async def test_ollama_host_env(sim: OllamaSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", sim.url)
    llm = _llm(None)
    assert llm.base_url == sim.url
    assert await llm.generate("hi") == "Hello, world!"
    assert len(sim.requests) == 1
    monkeypatch.delenv("OLLAMA_HOST")
    assert _llm(None).base_url == "http://localhost:11434"


async def test_bad_key_on_the_cloud(cloud: OllamaSimulator) -> None:
    wrong = "ollama-wrong-key-987654321"
    llm = _llm(cloud.url, "gpt-oss:120b", api_key=wrong, max_retries=3, retry_delay=0)
    with pytest.raises(AuthenticationError) as err:
        await llm.generate("hi")
    assert err.value.status_code == 401 and err.value.message == "unauthorized"
    assert wrong not in str(err.value) and wrong not in repr(err.value)
    assert len(cloud.requests) == 1
    good = _llm(cloud.url, "gpt-oss:120b", api_key=CLOUD_KEY)
    assert await good.generate("hi") == "Hello, world!"
    assert cloud.requests[-1].headers["authorization"] == f"Bearer {CLOUD_KEY}"


async def test_429_with_retry_after(sim: OllamaSimulator) -> None:
    sim.enqueue(error(429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitError) as err:
        await _llm(sim.url).generate("hi")
    assert type(err.value) is RateLimitError
    assert err.value.retry_after == 7.0 and err.value.status_code == 429


async def test_429_then_200_with_one_retry(sim: OllamaSimulator) -> None:
    sim.enqueue(error(429, headers={"Retry-After": "0.1"}),
                text_stream(["ok"], prompt_eval_count=3, eval_count=1))
    llm = _llm(sim.url, max_retries=1, retry_delay=30)  # Retry-After wins over the backoff
    assert await llm.generate("hi") == "ok"
    assert len(sim.requests) == 2
    assert llm.tokens_used == {"input": 3, "output": 1}


@pytest.mark.parametrize(("status", "expected"), [
    (500, ServerError), (502, ServerError), (503, ServerError), (400, InvalidRequestError),
])
async def test_status_errors(status: int, expected: type[Exception],
                             sim: OllamaSimulator) -> None:
    sim.enqueue(error(status))
    with pytest.raises(expected) as err:
        await _llm(sim.url).generate("hi")
    assert type(err.value) is expected
    assert err.value.status_code == status  # type: ignore[attr-defined]
    assert len(sim.requests) == 1


async def test_generic_500_body(sim: OllamaSimulator) -> None:
    sim.enqueue(error(500))  # captures/ollama/error_generic_docs.json
    with pytest.raises(ServerError) as err:
        await _llm(sim.url).generate("hi")
    assert err.value.message == "the model failed to generate a response"


async def test_midstream_error_capture(sim: OllamaSimulator) -> None:
    sim.enqueue(capture("ollama/stream_error_midstream.ndjson"))
    llm = _llm(sim.url, "gemma4", max_retries=2, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == [" Yes", ".", "I", "can"]
    assert err.value.partial_text == " Yes.Ican"
    assert isinstance(err.value.__cause__, ServerError)
    assert "an error was encountered while running the model" in str(err.value)
    assert len(sim.requests) == 1


async def test_error_line_before_any_token_is_retried(sim: OllamaSimulator) -> None:
    sim.enqueue(stream_error())
    with pytest.raises(ServerError, match="an error was encountered"):
        await _llm(sim.url).generate("hi")
    sim.enqueue(stream_error(), text_stream(["fine"]))
    assert await _llm(sim.url, max_retries=1, retry_delay=0).generate("hi") == "fine"
    assert len(sim.requests) == 3


async def test_cut_after_tokens_gives_the_exact_partial_text(sim: OllamaSimulator) -> None:
    sim.enqueue(text_stream(["One", " two", " three"], cut_after=2))
    llm = _llm(sim.url, max_retries=3, retry_delay=0)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen == ["One", " two"]
    assert err.value.partial_text == "One two"
    assert isinstance(err.value.__cause__, ConnectionError)
    assert err.value.usage is not None and not err.value.usage.complete
    assert len(sim.requests) == 1


async def test_cut_before_any_token(sim: OllamaSimulator) -> None:
    sim.enqueue(text_stream(["lost"], cut_after=0))
    with pytest.raises(ConnectionError):
        await _llm(sim.url, max_retries=0).generate("hi")
    assert len(sim.requests) == 1


async def test_body_without_done_line(sim: OllamaSimulator) -> None:
    sim.enqueue(text_stream([], done=False))
    with pytest.raises(ConnectionError, match=r"finished \(no 'done' line\)"):
        await _llm(sim.url).generate("hi")
    sim.enqueue(text_stream(["a", "b"], done=False))
    with pytest.raises(StreamInterruptedError) as err:
        await _llm(sim.url).generate("hi")
    assert err.value.partial_text == "ab"


async def test_malformed_line(sim: OllamaSimulator) -> None:
    sim.enqueue(malformed(tokens_before=()))
    with pytest.raises(ServerError, match="malformed"):
        await _llm(sim.url).generate("hi")
    sim.enqueue(malformed(tokens_before=("Hi",)))
    with pytest.raises(StreamInterruptedError) as err:
        await _llm(sim.url).generate("hi")
    assert err.value.partial_text == "Hi"


async def test_complete_stream_reuses_the_connection(sim: OllamaSimulator) -> None:
    llm = _llm(sim.url)
    before = sim.connections
    for _ in range(3):
        assert await llm.generate("hi") == "Hello, world!"
    assert sim.connections - before == 1  # each body read to its end: keep-alive works
