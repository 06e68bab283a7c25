"""Token counting before a call (issue 13 item 7): ``await llm.count_tokens(...)``.

Each provider's real SDK sends its counting request over HTTP to the simulator, which
answers by the rule of synapsekit/testing/simulators/count_rule.py (one token per word of the
counted
JSON's string values), so the counts below are exact, and the recorded body shows what was
counted (system prompt, tools). The chat endpoint is never reached."""

from __future__ import annotations

import json
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import AuthenticationError, UnsupportedFeatureError
from synapsekit.llm.counting import TokenCount, chat_tokens, tiktoken_for
from synapsekit.llm.providers.bedrock.count import foundation_model
from synapsekit.llm.providers.cohere.count import pieces
from synapsekit.llm.ratelimit import estimate_tokens
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import build_messages
from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator
from synapsekit.testing.simulators.bedrock_protocol import BedrockSimulator
from synapsekit.testing.simulators.cohere_protocol import CohereSimulator
from synapsekit.testing.simulators.count_rule import tokens
from synapsekit.testing.simulators.gemini_protocol import GeminiSimulator
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from tests.sim_fixtures import aws_credentials, serve, track

ANTHROPIC_KEY = "sk-ant-api03-count-0123456789abcdef"
GEMINI_KEY = "AIza-count-key-0123456789"
COHERE_KEY = "co-count-key-0123456789"
OPENAI_KEY = "sk-count-0123456789abcdef"
ACCESS_KEY = "AKIASYNAPSEKITCOUNT1"
SECRET_KEY = "bedrock-count-secret-key-0123456789abcdef"
REGION = "us-east-1"

WEATHER = Tool(
    "get_weather",
    "The current weather of a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PROMPT = "Hello there world"  # 3 words
SYSTEM = "Be brief."  # 2 words

_anthropic_server, anthropic_sim = serve(
    lambda: AnthropicSimulator(ANTHROPIC_KEY), name="anthropic_sim", check_errors=True
)
_gemini_server, gemini_sim = serve(
    lambda: GeminiSimulator(GEMINI_KEY), name="gemini_sim", check_errors=True
)
_cohere_server, cohere_sim = serve(
    lambda: CohereSimulator(COHERE_KEY), name="cohere_sim", check_errors=True
)
_openai_server, openai_sim = serve(lambda: OpenAISimulator(OPENAI_KEY), name="openai_sim")
_bedrock_server, bedrock_sim = serve(
    lambda: BedrockSimulator({ACCESS_KEY: SECRET_KEY}, region=REGION), name="bedrock_sim",
    check_errors=True,
)


def paths(sim: Any) -> list[str]:
    return [r.path for r in sim.requests]


# ------------------------------------------------------------------------ TokenCount


def test_token_count_is_an_int_that_says_how_it_was_counted() -> None:
    count = TokenCount(42, exact=True, method="anthropic count_tokens")
    assert isinstance(count, int) and count == 42 and count + 1 == 43
    assert (count.exact, count.method) == (True, "anthropic count_tokens")
    assert repr(count) == "TokenCount(42, exact=True, method='anthropic count_tokens')"
    again = pickle.loads(pickle.dumps(count))
    assert (again, again.exact, again.method) == (42, True, "anthropic count_tokens")
    assert json.dumps({"n": count}) == '{"n": 42}'


# ------------------------------------------------------------------------ Anthropic


async def test_anthropic_counts_with_its_endpoint_system_prompt_and_tools(
    anthropic_sim: AnthropicSimulator,
) -> None:
    llm = track(make_llm("claude-sonnet-4-6", api_key=ANTHROPIC_KEY, base_url=anthropic_sim.url,
                         system_prompt=SYSTEM))
    plain = await llm.count_tokens(PROMPT)
    # "user" + 3 words of the prompt + 2 of the system prompt
    assert (plain, plain.exact, plain.method) == (6, True, "anthropic count_tokens")
    with_tools = await llm.count_tokens(PROMPT, tools=[WEATHER])
    # + the tool: name 1, description 6, schema "object" "string" "city" 3
    assert with_tools == 16 and with_tools.exact
    assert paths(anthropic_sim) == ["/v1/messages/count_tokens"] * 2
    first, second = (r.json() for r in anthropic_sim.requests)
    assert first == {"model": "claude-sonnet-4-6", "system": SYSTEM,
                     "messages": [{"role": "user", "content": PROMPT}]}
    assert second["tools"][0]["name"] == "get_weather" and second["system"] == SYSTEM
    assert "max_tokens" not in second and "stream" not in second


async def test_anthropic_count_of_a_conversation_matches_the_rule(
    anthropic_sim: AnthropicSimulator,
) -> None:
    llm = track(make_llm("claude-sonnet-4-6", api_key=ANTHROPIC_KEY, base_url=anthropic_sim.url))
    turns = [{"role": "system", "content": "You are terse."},
             {"role": "user", "content": "Name a colour."},
             {"role": "assistant", "content": "Blue."},
             {"role": "user", "content": "Another one, please."}]
    count = await llm.count_tokens(turns)
    assert count == tokens(anthropic_sim.requests[0].json()) == 3 + 4 + 2 + 4


async def test_a_rejected_key_is_an_authentication_error_without_the_key(
    anthropic_sim: AnthropicSimulator,
) -> None:
    wrong = "sk-ant-api03-wrong-key-000000000000"
    llm = track(make_llm("claude-sonnet-4-6", api_key=wrong, base_url=anthropic_sim.url))
    with pytest.raises(AuthenticationError) as info:
        await llm.count_tokens(PROMPT)
    assert info.value.status_code == 401 and info.value.provider == "anthropic"
    assert wrong not in str(info.value) and wrong not in repr(info.value)
    # the call's own key (per-call BYOK) is used for the count too
    count = await llm.count_tokens(PROMPT, api_key=ANTHROPIC_KEY)
    # "user" + 3 + the default system prompt "You are a helpful assistant." 5
    assert count == 9 and paths(anthropic_sim) == ["/v1/messages/count_tokens"] * 2


async def test_a_throttled_count_is_a_rate_limit_error_sent_once(
    anthropic_sim: AnthropicSimulator,
) -> None:
    from synapsekit.errors import RateLimitError
    from synapsekit.testing.simulators.anthropic_protocol import error

    anthropic_sim.enqueue(error(429, headers={"retry-after": "7"}))
    llm = track(make_llm("claude-sonnet-4-6", api_key=ANTHROPIC_KEY, base_url=anthropic_sim.url))
    with pytest.raises(RateLimitError) as info:
        await llm.count_tokens(PROMPT)
    assert info.value.retry_after == 7.0
    assert paths(anthropic_sim) == ["/v1/messages/count_tokens"]  # not retried


async def test_a_request_the_provider_cannot_take_is_refused_before_sending(
    openai_sim: OpenAISimulator,
) -> None:
    llm = track(make_llm("deepseek:deepseek-chat", api_key=OPENAI_KEY, base_url=openai_sim.url))
    image = {"type": "image", "media_type": "image/png", "data": b"\x89PNG\r\n\x1a\n"}
    with pytest.raises(UnsupportedFeatureError):
        await llm.count_tokens([{"role": "user", "content": [image]}])
    assert openai_sim.requests == []


# ------------------------------------------------------------------------ Gemini


async def test_gemini_counts_the_whole_generate_request(gemini_sim: GeminiSimulator) -> None:
    llm = track(make_llm("gemini-2.5-flash", api_key=GEMINI_KEY, base_url=gemini_sim.url,
                         system_prompt=SYSTEM))
    count = await llm.count_tokens(PROMPT, tools=[WEATHER])
    assert (count.exact, count.method) == (True, "gemini countTokens")
    assert paths(gemini_sim) == ["/v1beta/models/gemini-2.5-flash:countTokens"]
    sent = gemini_sim.requests[0].json()["generateContentRequest"]
    assert sent["model"] == "models/gemini-2.5-flash"
    assert sent["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert sent["contents"] == [{"role": "user", "parts": [{"text": PROMPT}]}]
    assert sent["generationConfig"]["maxOutputTokens"] == 1024  # the generate request's own
    # "user" 1 + prompt 3 + system 2 + the tool: name 1, description 6, schema 3
    assert count == tokens(sent) == 16
    plain = await llm.count_tokens(PROMPT)
    sent = gemini_sim.requests[1].json()["generateContentRequest"]
    assert plain == tokens(sent) and "tools" not in sent


async def test_gemini_bad_key_is_typed(gemini_sim: GeminiSimulator) -> None:
    llm = track(make_llm("gemini-2.5-flash", api_key="AIza-wrong-key-000000",
                         base_url=gemini_sim.url))
    with pytest.raises(AuthenticationError):
        await llm.count_tokens(PROMPT)
    assert len(gemini_sim.requests) == 1


# ------------------------------------------------------------------------ Cohere


async def test_cohere_tokenizes_the_text_and_says_it_is_not_a_chat_count(
    cohere_sim: CohereSimulator,
) -> None:
    llm = track(make_llm("command-a-03-2025", api_key=COHERE_KEY, base_url=cohere_sim.url,
                         system_prompt=SYSTEM))
    count = await llm.count_tokens(PROMPT)
    assert (count, count.exact, count.method) == (5, False, "cohere tokenize (text only)")
    assert paths(cohere_sim) == ["/v1/tokenize"]
    assert cohere_sim.requests[0].json() == {"text": f"{SYSTEM}\n{PROMPT}",
                                             "model": "command-a-03-2025"}
    with_tools = await llm.count_tokens(PROMPT, tools=[WEATHER])
    sent = cohere_sim.requests[1].json()["text"]
    assert '"get_weather"' in sent and with_tools == len(sent.split())


async def test_cohere_text_over_the_endpoint_limit_goes_in_pieces(
    cohere_sim: CohereSimulator,
) -> None:
    llm = track(make_llm("command-a-03-2025", api_key=COHERE_KEY, base_url=cohere_sim.url))
    prompt = "word " * 30_000  # 150,000 characters, 30,000 words
    count = await llm.count_tokens(prompt)
    assert count == 30_000 + 5  # and the default system prompt's 5 words
    sizes = [len(r.json()["text"]) for r in cohere_sim.requests]
    assert len(sizes) == 3 and max(sizes) <= 65_536
    assert sum(sizes) == len("You are a helpful assistant.\n" + prompt)
    assert "".join(pieces("ab " * 10, limit=8)) == "ab " * 10


async def test_cohere_bad_key_is_typed(cohere_sim: CohereSimulator) -> None:
    llm = track(make_llm("command-a-03-2025", api_key="co-wrong-0000", base_url=cohere_sim.url))
    with pytest.raises(AuthenticationError):
        await llm.count_tokens(PROMPT)


# ------------------------------------------------------------------------ Bedrock


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_credentials(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY, REGION)


@pytest.mark.usefixtures("aws_env")
async def test_bedrock_counts_the_converse_input(bedrock_sim: BedrockSimulator) -> None:
    model = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    llm = track(make_llm(model, base_url=bedrock_sim.url, cache=False, system_prompt=SYSTEM))
    count = await llm.count_tokens(PROMPT, tools=[WEATHER])
    assert (count.exact, count.method) == (True, "bedrock CountTokens")
    assert paths(bedrock_sim) == [
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/count-tokens"
    ]
    converse = bedrock_sim.requests[0].json()["input"]["converse"]
    assert converse["system"] == [{"text": SYSTEM}]
    assert converse["messages"] == [{"role": "user", "content": [{"text": PROMPT}]}]
    assert converse["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    # "user" 1 + prompt 3 + system 2 + the tool: name 1, description 6, schema 3
    assert count == tokens(converse) == 16


@pytest.mark.usefixtures("aws_env")
async def test_bedrock_bad_credentials_are_typed(
    bedrock_sim: BedrockSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    llm = track(make_llm("anthropic.claude-3-5-haiku-20241022-v1:0", base_url=bedrock_sim.url,
                         cache=False))
    with pytest.raises(AuthenticationError):
        await llm.count_tokens(PROMPT)


def test_foundation_model_of_an_inference_profile() -> None:
    assert foundation_model("us.anthropic.claude-3-5-haiku-20241022-v1:0") == (
        "anthropic.claude-3-5-haiku-20241022-v1:0")
    assert foundation_model("global.anthropic.claude-sonnet-4-5-20250929-v1:0") == (
        "anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert foundation_model("amazon.nova-micro-v1:0") == "amazon.nova-micro-v1:0"
    arn = "arn:aws:bedrock:us-east-1::foundation-model/us.x.y"
    assert foundation_model(arn) == arn


# ------------------------------------------------------------------------ local counting


@pytest.fixture
def proxy_trap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[int]]:
    """An empty tiktoken cache and every proxy variable pointing at a local socket that
    counts connections: a download attempt would show as one (and fail fast)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    seen: list[int] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            seen.append(1)
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    yield seen
    listener.close()


async def test_openai_without_the_encoding_file_is_an_estimate_and_never_downloads(
    openai_sim: OpenAISimulator, proxy_trap: list[int], tmp_path: Path
) -> None:
    llm = track(make_llm("openai:gpt-4o", api_key=OPENAI_KEY, base_url=openai_sim.url,
                         system_prompt=SYSTEM))
    started = time.perf_counter()
    count = await llm.count_tokens(PROMPT)
    assert time.perf_counter() - started < 1.0
    # ceil((9 + 17) / 4)
    assert (count, count.exact, count.method) == (7, False, "estimate")
    assert count == estimate_tokens(build_messages(PROMPT, SYSTEM), 0)
    with_tools = await llm.count_tokens(PROMPT, tools=[WEATHER])
    schema = json.dumps(dict(WEATHER.parameters), separators=(",", ":"))
    # the tool's name, description and schema (77 characters of JSON) join the text's 26
    assert len(schema) == 77
    assert with_tools == -(-(26 + len("get_weather") + len("The current weather of a city.")
                             + len(schema)) // 4) == 36
    # a file that is not the published one is not used (tiktoken would fetch it again)
    (tmp_path / "tiktoken").mkdir()
    (tmp_path / "tiktoken" / "fb374d419588a4632f3f557e76b4b70aebbca790").write_bytes(b"x")
    assert tiktoken_for("gpt-4o") is None
    assert proxy_trap == [] and openai_sim.requests == []


@pytest.mark.parametrize("spec", ["mistral:mistral-large-latest", "ollama:llama3.2",
                                  "groq:llama-3.3-70b-versatile"])
async def test_providers_without_a_count_estimate_locally(
    spec: str, proxy_trap: list[int]
) -> None:
    # An address nothing listens on: a request would be a ConnectionError.
    llm = track(make_llm(spec, api_key="k-0123456789", base_url="http://127.0.0.1:9/v1"))
    count = await llm.count_tokens([{"role": "user", "content": "x" * 401}])
    # ceil(401 / 4) + ceil(28 / 4) for the default "You are a helpful assistant."
    assert (count, count.exact, count.method) == (101 + 7, False, "estimate")
    assert proxy_trap == []


def test_chat_framing_of_openai_messages() -> None:
    def words(text: str) -> int:
        return len(text.split())

    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": PROMPT, "name": "ann"}]
    # 3 priming + (3 + role 1 + 2) + (3 + role 1 + 3 + name 1 + 1)
    assert chat_tokens(messages, words) == (18, True)
    with_image = [{"role": "user", "content": [{"type": "text", "text": "a b"},
                                               {"type": "image_url", "image_url": {}}]}]
    assert chat_tokens(with_image, words) == (3 + 3 + 1 + 2, False)


def test_tiktoken_counts_the_request_body_with_the_encoding(
    openai_sim: OpenAISimulator,
) -> None:
    """The tiktoken path on a real ``tiktoken.Encoding`` (a byte-level one built here, the
    published files being absent offline): each byte a token. tiktoken is optional (the
    main venv has it through the dev extra; the floors venv does not)."""
    tiktoken = pytest.importorskip("tiktoken")

    from synapsekit.llm.providers.openai_compat.count import count_with

    encoding = tiktoken.Encoding(
        "bytes", pat_str=r"\S+|\s+", mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={},
    )
    llm = track(make_llm("openai:gpt-4o", api_key=OPENAI_KEY, base_url=openai_sim.url))
    config = llm.config
    turns = build_messages(PROMPT, SYSTEM)
    text = count_with(encoding, llm, turns, config)
    # 3 + (3 + "system" 6 + 9) + (3 + "user" 4 + 17)
    assert (text, text.exact, text.method) == (45, True, "tiktoken bytes")
    config = llm._call_config({"tools": [WEATHER]})
    tools = count_with(encoding, llm, turns, config)
    body = llm._request(turns, config)  # type: ignore[attr-defined]
    spec = json.dumps(body["tools"], separators=(",", ":"))
    assert (tools, tools.exact) == (45 + len(spec.encode()), False)
    assert openai_sim.requests == []


async def test_tiktoken_counts_exactly_when_its_file_is_here(openai_sim: OpenAISimulator) -> None:
    encoding = tiktoken_for("gpt-4o")
    if encoding is None:
        pytest.skip("tiktoken's o200k_base file is not in this machine's cache")
    llm = track(make_llm("openai:gpt-4o", api_key=OPENAI_KEY, base_url=openai_sim.url))
    count = await llm.count_tokens([{"role": "system", "content": SYSTEM},
                                    {"role": "user", "content": PROMPT}])
    expected = 3 + sum(3 + len(encoding.encode(r)) + len(encoding.encode(c))
                       for r, c in (("system", SYSTEM), ("user", PROMPT)))
    assert (count, count.exact, count.method) == (expected, True, "tiktoken o200k_base")
    assert openai_sim.requests == []
