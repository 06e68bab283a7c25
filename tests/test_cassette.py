"""Cassette: record the real OpenAI SDK's calls against the simulator, stop the simulator,
replay the same calls with no server and get exactly the same text, usage, cost and
``tokens_used``; an unrecorded call fails with a message naming the cassette and the key;
no secret in the file; repeated requests in order; scope by context variable."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapsekit import LLMConfig, Router, TokenTracer, Tool, make_llm
from synapsekit.errors import CassetteError, ConfigError, ConnectionError, RateLimitError
from synapsekit.llm.cache import cache_key
from synapsekit.llm.cache.memory import MemoryCache
from synapsekit.llm.types import Chunk, Message
from synapsekit.testing import Cassette
from synapsekit.testing.cassette import active
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, error, text_stream
from synapsekit.testing.simulators.openai_streams import Call, tool_stream
from tests import test_parity
from tests.test_parity import ANSWER, AWS_SECRET, IDS, PROVIDERS, _setup
from tests.test_parity import KEY as PARITY_KEY

pytest_plugins = ("pytester",)

# test_parity's fixtures: every protocol's simulator, and AWS credentials by environment.
servers = test_parity.servers
aws_env = test_parity.aws_env

KEY = "sk-cassette-secret-0123456789abcdef"
OTHER_KEY = "sk-replay-key-fedcba9876543210"
WEATHER = Tool(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}},
            "required": ["city"]},
)


def _llm(url: str, key: str = KEY, model: str = "gpt-4o-mini", **kw: Any) -> Any:
    return make_llm(LLMConfig(model=model, provider="openai", api_key=key, base_url=url, **kw))


async def _stream(llm: Any, prompt: str, **kw: Any) -> list[Chunk]:
    return [c async for c in llm.stream_chunks(prompt, **kw)]


@pytest.fixture
def sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(KEY) as server:
        yield server


async def _session(llm: Any) -> dict[str, Any]:
    """The calls both runs make: a stream, a non-streamed answer, the same request twice
    (two different answers), a tool call, and a 429 retried once."""
    streamed = await _stream(llm, "Say hello")
    answer = await llm.respond("Tell me a story about a cat", max_tokens=50)
    first = await llm.generate("Pick a number")
    second = await llm.generate("Pick a number")
    tool = await llm.respond("Weather in Paris?", tools=[WEATHER])
    retried = await llm.generate("Try again later")
    return {
        "streamed": [(c.text, c.usage, c.finish_reason) for c in streamed],
        "answer": (answer.text, answer.usage, answer.cost_usd, answer.finish_reason),
        "repeated": (first, second),
        "tool": (tool.tool_calls, tool.usage, tool.finish_reason),
        "retried": retried,
        "tokens_used": dict(llm.tokens_used),
    }


def _script(sim: OpenAISimulator) -> None:
    sim.enqueue(
        text_stream(["Hello", ",", " world", "!"], prompt_tokens=12),
        text_stream(["Once", " upon", " a", " time"], prompt_tokens=17),
        text_stream(["Seven"], prompt_tokens=5),
        text_stream(["Three"], prompt_tokens=5),
        tool_stream([Call("call_1", "get_weather", {"city": "Paris"})],
                    model="gpt-4o-mini", prompt_tokens=31, completion_tokens=9),
        error(429, headers={"retry-after": "0"}),
        text_stream(["Now", " it", " works"], prompt_tokens=6),
    )


async def test_record_then_replay_without_the_server(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    with OpenAISimulator(KEY) as sim:
        _script(sim)
        llm = _llm(sim.url, max_retries=1, retry_delay=0.0)
        with Cassette(path, mode="record") as tape:
            recorded = await _session(llm)
        await llm.aclose()
        assert len(sim.requests) == 7  # the 429 and its retry both went out
        url = sim.url
    assert tape.recorded == 7
    assert recorded["repeated"] == ("Seven", "Three")
    assert recorded["streamed"][0][0] == "Hello"
    assert recorded["tool"][0][0].arguments == {"city": "Paris"}

    # The simulator is gone: any real request would be a ConnectionError. Another key.
    llm = _llm(url, key=OTHER_KEY, max_retries=1, retry_delay=0.0)
    with Cassette(path) as tape:
        replayed = await _session(llm)
    await llm.aclose()
    assert replayed == recorded
    assert tape.replayed == 7 and tape.remaining == 0
    assert replayed["tokens_used"] == {"input": 12 + 17 + 5 + 5 + 31 + 6, "output": 4 + 4 + 1
                                       + 1 + 9 + 3}
    assert replayed["answer"][2] == recorded["answer"][2] > 0  # the same cost

    llm = _llm(url, key=OTHER_KEY)
    with pytest.raises(ConnectionError):  # outside the cassette: the network (none)
        await llm.generate("Say hello")
    await llm.aclose()


async def test_replayed_429_is_retried_like_the_original(tmp_path: Path, sim: OpenAISimulator
                                                         ) -> None:
    path = tmp_path / "retry.jsonl"
    sim.enqueue(error(429, headers={"retry-after": "0"}))
    llm = _llm(sim.url)  # no retries: the 429 reaches the caller
    with Cassette(path, mode="record"), pytest.raises(RateLimitError) as recorded:
        await llm.generate("busy?")
    with Cassette(path), pytest.raises(RateLimitError) as replayed:
        await llm.generate("busy?")
    await llm.aclose()
    assert len(sim.requests) == 1
    assert str(replayed.value) == str(recorded.value)
    assert replayed.value.status_code == 429 and replayed.value.retry_after == 0.0


async def test_unrecorded_request_names_cassette_key_model_and_prompt(
    tmp_path: Path, sim: OpenAISimulator
) -> None:
    path = tmp_path / "one.jsonl"
    llm = _llm(sim.url)
    with Cassette(path, mode="record"):
        await llm.generate("Say hello")
    config = llm.config
    turns: list[Message] = [
        {"role": "system", "content": config.system_prompt},
        {"role": "user", "content": "Write a haiku about the sea at night, please, now"},
    ]
    key = cache_key(config, turns, credential="cassette", endpoint=llm.endpoint)
    with Cassette(path), pytest.raises(CassetteError) as missing:
        await llm.generate("Write a haiku about the sea at night, please, now")
    assert str(missing.value) == (
        f"cassette {path} has no recording of request {key} (openai model 'gpt-4o-mini', "
        "prompt 'Write a haiku about the sea at night, ...'): record it with "
        "mode='record' or 'auto'"
    )
    with Cassette(path) as tape:
        await llm.generate("Say hello")
        with pytest.raises(CassetteError, match=r"has 1 recording of request [0-9a-f]{64} "
                           r"\(openai model 'gpt-4o-mini', prompt 'Say hello'\), and this is "
                           r"attempt 2: record it"):
            await llm.generate("Say hello")
    assert tape.replayed == 1
    await llm.aclose()
    assert len(sim.requests) == 1


async def test_cassette_file_holds_no_secret(tmp_path: Path, sim: OpenAISimulator) -> None:
    path = tmp_path / "secret.jsonl"
    sim.enqueue(error(401), text_stream(["fine"]))
    llm = _llm(sim.url, headers={"X-Custom-Auth": "hdr-secret-value-42"})
    with Cassette(path, mode="record"):
        with pytest.raises(Exception):  # noqa: B017 - the 401, recorded
            await llm.generate("who am I?")
        sim.api_key = KEY + "-per-call"
        await llm.generate("who am I?", api_key=KEY + "-per-call")
    await llm.aclose()
    text = path.read_text()
    assert len(text.splitlines()) == 2
    for secret in (KEY, "hdr-secret-value-42", "Bearer", "sk-cassette"):
        assert secret not in text
    for line in text.splitlines():
        entry = json.loads(line)
        assert set(entry) == {"v", "key", "seq", "provider", "model", "prompt", "chunks",
                              "error"}


async def test_auto_records_what_is_missing_and_replays_the_rest(
    tmp_path: Path, sim: OpenAISimulator
) -> None:
    path = tmp_path / "auto.jsonl"
    sim.enqueue(text_stream(["one"]), text_stream(["two"]))
    llm = _llm(sim.url)
    with Cassette(path, mode="auto") as tape:
        assert await llm.generate("first") == "one"
    assert (tape.recorded, tape.replayed, len(sim.requests)) == (1, 0, 1)
    with Cassette(path, mode="auto") as tape:
        assert await llm.generate("first") == "one"
        assert await llm.generate("second") == "two"
    assert (tape.recorded, tape.replayed, len(sim.requests)) == (1, 1, 2)
    with Cassette(path) as tape:
        assert [await llm.generate("second"), await llm.generate("first")] == ["two", "one"]
    await llm.aclose()
    assert len(sim.requests) == 2


async def test_concurrent_calls_record_and_replay_each_its_own(
    tmp_path: Path, sim: OpenAISimulator
) -> None:
    path = tmp_path / "many.jsonl"
    sim.enqueue(*(text_stream([f"answer{i}"]) for i in range(20)))
    llm = _llm(sim.url)
    prompts = [f"question {i}" for i in range(20)]
    with Cassette(path, mode="record"):
        # Tasks started inside the block are covered (they copy the context).
        recorded = await asyncio.gather(*(asyncio.create_task(llm.generate(p)) for p in prompts))
    assert sorted(recorded) == sorted(f"answer{i}" for i in range(20))
    assert len(path.read_text().splitlines()) == 20
    with Cassette(path):
        replayed = await asyncio.gather(*(llm.generate(p) for p in reversed(prompts)))
    await llm.aclose()
    assert replayed[::-1] == recorded
    assert len(sim.requests) == 20


async def test_replay_goes_through_cache_and_tracer(tmp_path: Path, sim: OpenAISimulator) -> None:
    path = tmp_path / "cache.jsonl"
    llm = _llm(sim.url)
    with Cassette(path, mode="record"):
        await llm.generate("Say hello")
    await llm.aclose()
    tracer = TokenTracer()
    cached = make_llm(LLMConfig(model="gpt-4o-mini", provider="openai", api_key=OTHER_KEY,
                                base_url=sim.url), tracer=tracer, cache=MemoryCache())
    with Cassette(path) as tape:
        assert await cached.generate("Say hello") == "Hello, world!"
        assert await cached.generate("Say hello") == "Hello, world!"  # a cache hit
    await cached.aclose()
    assert tape.replayed == 1 and cached.cache_stats["hits"] == 1
    records = tracer.records
    assert [(r.input_tokens, r.output_tokens, r.cache_hit) for r in records] == [
        (12, 4, False), (0, 0, True)
    ]
    assert len(sim.requests) == 1


async def test_router_members_are_recorded_and_fail_over_again(
    tmp_path: Path, sim: OpenAISimulator
) -> None:
    path = tmp_path / "router.jsonl"

    def router() -> Router:
        return Router([_llm(sim.url, model="gpt-4o"), _llm(sim.url)], strategy="fallback")

    sim.enqueue(error(500), text_stream(["from", " the", " second"]))
    first = router()
    with Cassette(path, mode="record") as tape:
        chunks = await _stream(first, "route me")
    assert tape.recorded == 2  # the members' attempts, not the router's
    second = router()
    with Cassette(path):
        again = await _stream(second, "route me")
    for r in (first, second):
        await r.aclose()
    assert [c.text for c in again] == [c.text for c in chunks]
    assert again[-1].metadata == chunks[-1].metadata
    assert again[-1].metadata is not None and "router_member" in again[-1].metadata
    assert len(sim.requests) == 2


def test_sync_calls_inside_the_block_are_covered(tmp_path: Path, sim: OpenAISimulator) -> None:
    path = tmp_path / "sync.jsonl"
    llm = _llm(sim.url)
    with Cassette(path, mode="record"):
        assert llm.generate_sync("Say hello") == "Hello, world!"
    with Cassette(path) as tape:
        assert llm.generate_sync("Say hello") == "Hello, world!"
    llm.close()
    assert tape.replayed == 1 and len(sim.requests) == 1


def test_bad_mode_missing_file_and_foreign_lines(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'record', 'replay' or 'auto', not 'play'"):
        Cassette(tmp_path / "x.jsonl", mode="play")  # type: ignore[arg-type]
    with pytest.raises(CassetteError, match=r"does not exist: record it first"), Cassette(
        tmp_path / "none.jsonl"
    ):
        pass
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"v": 1, "key": "k", "seq": 0, "chunks": []}\n{"not": "an entry"}\n')
    foreign = re.escape(f"{bad}:2: not a synapsekit cassette")
    with pytest.raises(CassetteError, match=foreign), Cassette(bad):
        pass


PLUGIN_TEST = '''
import pytest
from synapsekit import LLMConfig, make_llm

URL = {url!r}
KEY = {key!r}

@pytest.mark.cassette(path="{path}")
async def test_marked(cassette):
    llm = make_llm(LLMConfig(model="gpt-4o-mini", provider="openai", api_key=KEY,
                             base_url=URL))
    assert await llm.generate("Say hello") == "Hello, world!"
    assert cassette.mode == {mode!r}
    await llm.aclose()

async def test_default_path(cassette, request):
    assert cassette.path == (request.path.parent / "cassettes" / "test_plugged"
                             / "test_default_path.jsonl")
'''


def test_pytest_fixture(pytester: pytest.Pytester, sim: OpenAISimulator, tmp_path: Path) -> None:
    path = tmp_path / "plugged.jsonl"
    from importlib.metadata import entry_points

    plugged = any(e.value == "synapsekit.testing.pytest_plugin"
                  for e in entry_points(group="pytest11"))
    args = [] if plugged else ["-p", "synapsekit.testing.pytest_plugin"]
    args += ["-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function"]
    pytester.makepyfile(test_plugged=PLUGIN_TEST.format(url=sim.url, key=KEY, path=path,
                                                         mode="record"))
    result = pytester.runpytest(*args, "--cassette-mode=record", "-k", "marked")
    result.assert_outcomes(passed=1)
    assert len(sim.requests) == 1 and path.exists()
    pytester.makepyfile(test_plugged=PLUGIN_TEST.format(url=sim.url, key=OTHER_KEY, path=path,
                                                         mode="replay"))
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, errors=1)  # the default path has no recording yet
    assert "does not exist: record it first" in result.stdout.str()
    assert len(sim.requests) == 1


@pytest.mark.parametrize(("provider", "model", "protocol"), PROVIDERS, ids=IDS)
async def test_every_provider_replays_exactly(
    provider: str, model: str, protocol: str, servers: dict[str, tuple[Any, Any]],
    tmp_path: Path,
) -> None:
    """All fifteen providers: a streamed answer and a typed error, recorded through the real
    SDK, replayed chunk for chunk (and error for error) with no request reaching the server."""
    path = tmp_path / f"{provider}.jsonl"
    llm, server, module, proto = _setup(provider, model, protocol, servers)
    server.enqueue(proto.ok(module, None), module.error(429, headers={"retry-after": "3"}))
    with Cassette(path, mode="record"):
        recorded = await _stream(llm, "hi")
        with pytest.raises(RateLimitError) as first:
            await llm.generate("busy?")
    used = dict(llm.tokens_used)
    assert len(server.requests) == 2
    again, *_ = _setup(provider, model, protocol, servers)
    with Cassette(path) as tape:
        replayed = await _stream(again, "hi")
        with pytest.raises(RateLimitError) as second:
            await again.generate("busy?")
    assert replayed == recorded
    assert "".join(c.text for c in replayed) == ANSWER
    assert again.tokens_used == used == {"input": 12, "output": 4}
    assert (str(second.value), second.value.retry_after) == (str(first.value), 3.0)
    assert tape.replayed == 2 and len(server.requests) == 0  # (_setup reset the count)
    text = path.read_text()
    assert PARITY_KEY not in text and AWS_SECRET not in text


async def test_reasoning_signatures_and_tool_calls_replay(tmp_path: Path) -> None:
    """Anthropic's real captures: thinking (with its signature, which the next turn must send
    back: provider_data) and a tool call; the replayed Responses equal the recorded ones."""
    from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator, capture

    path = tmp_path / "claude.jsonl"
    key = "sk-ant-cassette-0123456789"
    with AnthropicSimulator(key) as claude_sim:
        claude_sim.enqueue(capture("anthropic/stream_thinking.sse"),
                           capture("anthropic/stream_tool_use.sse"))
        llm = make_llm(LLMConfig(model="claude-sonnet-4-6", api_key=key, base_url=claude_sim.url,
                                 params={"thinking": {"type": "adaptive"}}))
        with Cassette(path, mode="record"):
            thought = await llm.respond("GCD of 1071 and 462?")
            called = await llm.respond("Weather in Paris?", tools=[WEATHER])
        await llm.aclose()
        assert len(claude_sim.requests) == 2
    assert thought.reasoning.startswith("I need to find the GCD")
    assert thought.message.get("provider_data") is not None
    assert called.tool_calls[0].arguments == {"location": "Paris"}
    llm = make_llm(LLMConfig(model="claude-sonnet-4-6", api_key="other-key",
                             base_url=claude_sim.url, params={"thinking": {"type": "adaptive"}}))
    with Cassette(path):
        assert await llm.respond("GCD of 1071 and 462?") == thought
        assert await llm.respond("Weather in Paris?", tools=[WEATHER]) == called
    await llm.aclose()
    assert key not in path.read_text()


async def test_budget_settles_the_replayed_cost(tmp_path: Path, sim: OpenAISimulator) -> None:
    from synapsekit import Budget

    path = tmp_path / "budget.jsonl"
    llm = _llm(sim.url)
    recorded, replayed = Budget(1.0), Budget(1.0)
    with Cassette(path, mode="record"):
        await llm.generate("Say hello", budget=recorded)
    with Cassette(path):
        await llm.generate("Say hello", budget=replayed)
    await llm.aclose()
    assert replayed.spent_usd == recorded.spent_usd > 0
    assert replayed.reserved_usd == 0.0
    assert len(sim.requests) == 1


async def test_embeddings_record_and_replay(tmp_path: Path) -> None:
    from synapsekit.rag.embeddings import make_embedder

    path = tmp_path / "embed.jsonl"
    with OpenAISimulator(KEY) as server:
        embedder = make_embedder("text-embedding-3-small", api_key=KEY, base_url=server.url)
        with Cassette(path, mode="record"):
            docs = await embedder.embed(["the cat sat", "on the mat"])
            query = await embedder.embed(["where is the cat"], query=True)
        await embedder.aclose()
        assert len(server.requests) == 2
        url = server.url
    again = make_embedder("text-embedding-3-small", api_key=OTHER_KEY, base_url=url)
    with Cassette(path) as tape:
        assert await again.embed(["the cat sat", "on the mat"]) == docs
        assert await again.embed(["where is the cat"], query=True) == query
        with pytest.raises(CassetteError) as missing:
            await again.embed(["a dog"])
    await again.aclose()
    assert tape.replayed == 2
    assert again.usage == embedder.usage and again.usage["input"] > 0
    assert re.fullmatch(
        rf"cassette {re.escape(str(path))} has no recording of request [0-9a-f]{{64}} \(openai "
        r"embedding model 'text-embedding-3-small', 1 text from 'a dog'\): record it with "
        r"mode='record' or 'auto'", str(missing.value))
    assert KEY not in path.read_text()


@pytest.fixture
async def async_tape(tmp_path: Path) -> Any:
    async with Cassette(tmp_path / "fixture.jsonl", mode="record") as tape:
        yield tape
    assert active() is None  # left in the teardown's context, and undone there


async def test_an_async_fixture_can_hold_the_cassette(async_tape: Cassette, sim: OpenAISimulator
                                                      ) -> None:
    llm = _llm(sim.url)
    assert await llm.generate("Say hello") == "Hello, world!"
    await llm.aclose()
    assert async_tape.recorded == 1 and active() is async_tape
