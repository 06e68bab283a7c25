"""Smoke test of the gateway extra: what ``pip install "synapsekit[gateway,openai]"`` gets.

CI runs this file in a fresh venv holding only ``pip install -e ".[gateway,openai]" pytest``
(``SYNAPSEKIT_SMOKE_EXTRA=gateway``, see .ci/run): ``synapsekit serve`` starts on the
example config's shape against the shipped OpenAI simulator, and a plain standard-library
HTTP client gets the exact answer, streamed and not, with a virtual key, and a 401 without
one. The main suite runs it too. The venv is checked to hold no dev tool: the extra must
work alone. Only pytest, the standard library and synapsekit are imported here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, text_stream
from tests.gateway_fixtures import serve_process

SELECTED = os.environ.get("SYNAPSEKIT_SMOKE_EXTRA", "").strip()
if SELECTED and SELECTED != "gateway":
    pytest.skip("the gateway smoke test runs in the gateway extra's venv", allow_module_level=True)

UPSTREAM_KEY = "sk-upstream-smoke-0123456789"
VIRTUAL_KEY = "sk-gw-smoke-alpha"
TOKENS = ["Gateway", " smoke", " passed", "."]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, OpenAISimulator]]:
    sim = OpenAISimulator(UPSTREAM_KEY)
    sim.start()
    folder = tmp_path_factory.mktemp("gateway")
    config = folder / "gateway.toml"
    config.write_text(
        f'[[models]]\nname = "fast"\nmodel = "gpt-4o-mini"\nbase_url = "{sim.url}"\n'
        'api_key_env = "SMOKE_UPSTREAM_KEY"\n\n'
        f'[[keys]]\nkey = "{VIRTUAL_KEY}"\nname = "alpha"\n\n'
        '[storage]\nledger = "sqlite:///spend.db"\n'
    )
    proc, url, lines = serve_process(config, env={"SMOKE_UPSTREAM_KEY": UPSTREAM_KEY})
    try:
        yield url, sim
    finally:
        proc.terminate()
        proc.wait(30)
        sim.stop()
        log = b"".join(lines)
        assert UPSTREAM_KEY.encode() not in log and VIRTUAL_KEY.encode() not in log


def _post(url: str, body: dict[str, Any], key: str | None = VIRTUAL_KEY) -> Any:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", json.dumps(body).encode(), headers, method="POST"
    )
    return urllib.request.urlopen(request, timeout=30)


def test_the_extra_holds_no_dev_tool() -> None:
    if SELECTED != "gateway":
        pytest.skip("checked in the gateway extra's own venv")
    for module in ("httpx", "pytest_asyncio", "litellm", "anthropic", "playwright"):
        assert importlib.util.find_spec(module) is None, f"{module} is installed"
    assert importlib.util.find_spec("uvicorn") is not None
    assert importlib.util.find_spec("starlette") is not None


def test_non_streamed_answer_is_exact(gateway: tuple[str, OpenAISimulator]) -> None:
    url, sim = gateway
    sim.enqueue(text_stream(TOKENS, prompt_tokens=9))
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    with _post(url, body) as response:
        answer = json.loads(response.read())
    assert answer["choices"][0]["message"]["content"] == "".join(TOKENS)
    assert answer["usage"]["prompt_tokens"] == 9
    assert answer["usage"]["completion_tokens"] == len(TOKENS)


def test_streamed_answer_is_exact(gateway: tuple[str, OpenAISimulator]) -> None:
    url, sim = gateway
    sim.enqueue(text_stream(TOKENS, prompt_tokens=9))
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}}
    texts: list[str] = []
    usage: dict[str, Any] = {}
    with _post(url, body) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: "):])
            for choice in event["choices"]:
                texts.append(choice["delta"].get("content") or "")
            usage = event.get("usage") or usage
    assert "".join(texts) == "".join(TOKENS)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (9, len(TOKENS))


def test_no_key_is_401_and_sends_nothing_upstream(gateway: tuple[str, OpenAISimulator]) -> None:
    url, sim = gateway
    before = len(sim.requests)
    with pytest.raises(urllib.error.HTTPError) as caught:
        _post(url, {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}, key=None)
    assert caught.value.code == 401
    assert "API key" in json.loads(caught.value.read())["error"]["message"]
    assert len(sim.requests) == before

