"""Parity: all fifteen providers, one parametrised walk, the same promises.

Each provider runs its real SDK over real HTTP against the simulator of its own wire
protocol. The same script (a four-token answer with known usage, typed errors, a cut
mid-stream, an early exit) must give the same observable behaviour through synapsekit,
whatever the protocol underneath. The per-provider test files go deeper into each wire
format; this file is where a provider that drifts from the others shows up.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConnectionError,
    LLMError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    TimeoutError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.testing.simulators.server import Reply, Server
from tests.sim_fixtures import aws_credentials

KEY = "parity-key-0123456789"
AWS_ID, AWS_SECRET = "AKIAPARITYTESTKEY000", "parity/secret/key/0123456789"
TOKENS = ["Hello", ",", " world", "!"]
ANSWER = "Hello, world!"


@dataclass(frozen=True)
class Protocol:
    module: str
    start: Callable[[Any], Server]  # the simulator class -> a started server
    ok: Callable[[Any, int], Reply]  # (module, cut_after) -> a 4-token answer, 12 in / 4 out
    auth_status: int = 401


PROTOCOLS: dict[str, Protocol] = {
    "openai": Protocol(
        "openai_protocol", lambda m: m.OpenAISimulator(KEY),
        lambda m, cut: m.text_stream(TOKENS, prompt_tokens=12, cut_after=cut)),
    "azure": Protocol(
        "openai_protocol", lambda m: m.OpenAISimulator(KEY, auth="azure"),
        lambda m, cut: m.text_stream(TOKENS, prompt_tokens=12, cut_after=cut)),
    "anthropic": Protocol(
        "anthropic_protocol", lambda m: m.AnthropicSimulator(KEY),
        lambda m, cut: m.text_stream(TOKENS, input_tokens=12, cut_after=cut)),
    "gemini": Protocol(
        "gemini_protocol", lambda m: m.GeminiSimulator(KEY),
        lambda m, cut: m.text_stream(TOKENS, prompt_tokens=12, cut_after=cut)),
    "cohere": Protocol(
        "cohere_protocol", lambda m: m.CohereSimulator(KEY),
        lambda m, cut: m.text_stream(TOKENS, input_tokens=12, cut_after=cut)),
    "mistral": Protocol(
        "mistral_protocol", lambda m: m.MistralSimulator(KEY),
        lambda m, cut: m.text_stream(TOKENS, prompt_tokens=12, cut_after=cut)),
    "ollama": Protocol(
        "ollama_protocol", lambda m: m.OllamaSimulator(api_key=KEY),
        lambda m, cut: m.text_stream(TOKENS, prompt_eval_count=12, cut_after=cut)),
    "perplexity": Protocol(
        "perplexity_agent", lambda m: m.PerplexityAgentSimulator(KEY),
        lambda m, cut: m.text_stream(TOKENS, input_tokens=12, cut_after=cut)),
    "bedrock": Protocol(
        "bedrock_protocol", lambda m: m.BedrockSimulator({AWS_ID: AWS_SECRET}),
        lambda m, cut: m.text_stream(TOKENS, input_tokens=12, cut_after=cut),
        auth_status=403),
}
# (provider, model, protocol): the eight OpenAI-protocol vendors share one simulator;
# Perplexity speaks its Agent API (``POST /v1/agent``: Sonar chat completions were retired).
PROVIDERS = [
    ("openai", "gpt-4o-mini", "openai"),
    ("azure", "my-deployment", "azure"),
    ("groq", "llama-3.3-70b-versatile", "openai"),
    ("deepseek", "deepseek-chat", "openai"),
    ("openrouter", "meta-llama/llama-3.3-70b-instruct", "openai"),
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "openai"),
    ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct", "openai"),
    ("perplexity", "sonar", "perplexity"),
    ("cerebras", "llama3.1-8b", "openai"),
    ("anthropic", "claude-sonnet-4-6", "anthropic"),
    ("gemini", "gemini-2.5-flash", "gemini"),
    ("cohere", "command-a-03-2025", "cohere"),
    ("mistral", "mistral-small-latest", "mistral"),
    ("ollama", "llama3.2", "ollama"),
    ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock"),
]
IDS = [p for p, _, _ in PROVIDERS]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[Server, Any]]]:
    started: dict[str, tuple[Server, Any]] = {}
    try:
        for name, proto in PROTOCOLS.items():
            module = importlib.import_module(f"synapsekit.testing.simulators.{proto.module}")
            server = proto.start(module)
            server.start()
            started[name] = (server, module)
        yield started
    finally:
        for server, _ in started.values():
            server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Bedrock's credentials through AWS's own chain (environment, not SDK patching)."""
    aws_credentials(monkeypatch, tmp_path, AWS_ID, AWS_SECRET)


def _setup(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]],
    **fields: Any,
) -> tuple[BaseLLM, Server, Any, Protocol]:
    server, module = servers[protocol]
    server.reset()
    key = None if provider == "bedrock" else KEY
    llm = make_llm(f"{provider}:{model}", api_key=key, base_url=server.url,  # type: ignore[attr-defined]
                   system_prompt="Be brief.", **fields)
    return llm, server, module, PROTOCOLS[protocol]


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_same_answer_same_usage(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    llm, server, module, proto = _setup(provider, model, protocol, servers)
    server.enqueue(proto.ok(module, None), proto.ok(module, None))
    assert [t async for t in llm.stream("hi")] == TOKENS
    final = [c async for c in llm.stream_chunks([{"role": "user", "content": "hi"}])][-1]
    assert final.finish_reason == "stop"
    assert final.usage is not None and final.usage.complete
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 4)
    assert llm.tokens_used == {"input": 24, "output": 8}
    assert len(server.requests) == 2
    assert "Be brief." in server.requests[0].body.decode()  # the system prompt went out


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
@pytest.mark.parametrize(("status", "expected"), [
    ("auth", AuthenticationError), (429, RateLimitError), (500, ServerError),
])
async def test_same_typed_errors(
    provider: str, model: str, protocol: str, status: int | str, expected: type[LLMError],
    servers: dict[str, tuple[Server, Any]],
) -> None:
    llm, server, module, proto = _setup(provider, model, protocol, servers)
    code = proto.auth_status if status == "auth" else int(status)
    server.enqueue(module.error(code, headers={"retry-after": "3"}))
    with pytest.raises(expected) as err:
        await llm.generate("hi")
    assert err.value.provider == provider
    assert err.value.status_code == code
    if expected is RateLimitError:
        assert err.value.retry_after == 3.0
    assert KEY not in str(err.value) and AWS_SECRET not in str(err.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_same_retry_then_success(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    llm, server, module, proto = _setup(provider, model, protocol, servers, max_retries=1)
    server.enqueue(module.error(429, headers={"retry-after": "0"}), proto.ok(module, None))
    assert await llm.generate("hi") == ANSWER
    assert len(server.requests) == 2


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_same_cut_mid_stream(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    llm, server, module, proto = _setup(provider, model, protocol, servers, max_retries=2,
                                        retry_delay=0)
    full = proto.ok(module, None)
    events = len(full.stream or ())
    server.enqueue(proto.ok(module, events - 3))  # cut near the end, after some text
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as err:
        async for token in llm.stream("hi"):
            seen.append(token)
    assert seen and err.value.partial_text == "".join(seen)
    assert ANSWER.startswith(err.value.partial_text)
    assert err.value.usage is not None and not err.value.usage.complete
    assert len(server.requests) == 1  # never retried after tokens were delivered


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_same_early_exit_closes_the_connection(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    llm, server, module, _ = _setup(provider, model, protocol, servers)
    server.enqueue(module.text_stream([f" t{i}" for i in range(100)], delay=0.03))
    async for _ in llm.stream("hi"):
        break
    assert await asyncio.to_thread(server.wait_for_disconnects, 1, 3)
    # what the provider reported before the exit: Anthropic's message_start counts the input
    reported = {"input": 10, "output": 1} if protocol == "anthropic" else {"input": 0, "output": 0}
    for _ in range(100):  # recorded when the loop's finalizer has closed the generator
        if llm.tokens_used == reported:
            break
        await asyncio.sleep(0.01)
    assert llm.tokens_used == reported


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_same_cancellation_closes_the_connection(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    llm, server, module, _ = _setup(provider, model, protocol, servers)
    server.enqueue(module.text_stream([f" t{i}" for i in range(100)], delay=0.03))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.stream("hi"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(server.wait_for_disconnects, 1, 3)


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_same_timeouts(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    llm, server, module, proto = _setup(provider, model, protocol, servers, timeout=0.3)
    content_type = proto.ok(module, None).headers["content-type"]
    server.enqueue(Reply(200, {"content-type": content_type}, stream=[], hang=True))
    with pytest.raises(TimeoutError) as err:  # headers, then silence
        await llm.generate("hi")
    assert isinstance(err.value, builtins.TimeoutError)
    server.enqueue(module.text_stream(["late"], delay=2.0))  # a token slower than the timeout
    with pytest.raises(TimeoutError):
        await llm.generate("hi")


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_same_exact_accounting_under_concurrency(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    llm, server, module, proto = _setup(provider, model, protocol, servers)
    server.enqueue(*(proto.ok(module, None) for _ in range(50)))
    answers = await asyncio.gather(*(llm.generate(f"q{i}") for i in range(50)))
    assert answers == [ANSWER] * 50
    assert llm.tokens_used == {"input": 50 * 12, "output": 50 * 4}
    assert len(server.requests) == 50


def _non_object_event(protocol: str, module: Any, payload: bytes) -> Reply:
    """One stream event whose payload is valid JSON but not an object, in each protocol's
    own framing; nothing follows it."""
    if protocol == "bedrock":
        headers = {":event-type": "contentBlockDelta", ":content-type": "application/json",
                   ":message-type": "event"}
        return Reply(200, {"content-type": "application/vnd.amazon.eventstream"},
                     stream=[module.encode_message(headers, payload)])
    if protocol == "ollama":
        return Reply(200, {"content-type": "application/x-ndjson"}, stream=[payload + b"\n"])
    content_type = PROTOCOLS[protocol].ok(module, None).headers["content-type"]
    return Reply(200, {"content-type": content_type}, stream=[b"data: " + payload + b"\n\n"])


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
@pytest.mark.parametrize("payload", [b"[]", b"null", b"5", b'"text"'])
async def test_same_non_object_event_is_a_server_error(
    provider: str, model: str, protocol: str, payload: bytes,
    servers: dict[str, tuple[Server, Any]],
) -> None:
    """Valid JSON that is not an object is a ServerError (typed, retried before the first
    token), never an AttributeError from inside a parser or an SDK."""
    llm, server, module, proto = _setup(provider, model, protocol, servers)
    server.enqueue(_non_object_event(protocol, module, payload))
    with pytest.raises(ServerError) as err:
        await llm.generate("hi")
    assert err.value.provider == provider
    retrying, _, _, _ = _setup(provider, model, protocol, servers, max_retries=1, retry_delay=0)
    server.enqueue(_non_object_event(protocol, module, payload), proto.ok(module, None))
    assert await retrying.generate("hi") == ANSWER  # retried: the second attempt answers
    assert len(server.requests) == 2


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_same_refused_connection_is_a_connection_error(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Server, Any]]
) -> None:
    """Nothing listens at the endpoint: a typed, retried ConnectionError on every provider."""
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago, and is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = None if provider == "bedrock" else KEY
    llm = make_llm(f"{provider}:{model}", api_key=key, base_url=f"http://127.0.0.1:{port}",
                   timeout=5)
    with pytest.raises(ConnectionError) as err:
        await llm.generate("hi")
    assert err.value.provider == provider
    assert err.value.retryable
    assert KEY not in str(err.value)
