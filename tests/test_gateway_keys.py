"""The gateway's virtual keys, budgets and rate limits, through the real openai SDK over
real HTTP, with the upstream on the OpenAI protocol simulator (every test counts the
requests it saw: a refusal must send nothing upstream).

Keys at rest (a ``key_hash`` in the config, the CLI's ``keys create|list|revoke|
set-budget`` over the ledger database, the secret never stored), budgets exhausted (chat
streamed and not, embeddings), rate limits with ``Retry-After`` (in-process and shared by
two gateways through the session's real Redis), the allow-list, ``/v1/spend``, and at the
end: no secret in any log record of the whole file, in ``/metrics`` or in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import sqlite3
import struct
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from synapsekit.cli import main
from synapsekit.gateway.config import hash_key, key_id
from synapsekit.gateway.core import MemoryLedger
from synapsekit.gateway.ledger import SqlLedger
from synapsekit.gateway.limits import KeyLimits
from synapsekit.gateway.types import KeyInfo
from synapsekit.llm import pricing
from synapsekit.llm.ratelimit import MemoryRateLimiter
from synapsekit.llm.types import Usage
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, embedding_vector
from tests.gateway_fixtures import GatewayServer, gateway_config, member
from tests.redis_server import SLOW_MACHINE

UP_KEY = "sk-upstream-provider-secret-77"
MASTER = "sk-gw-master-secret-0042"
HASHED = "sk-gw-hashed-in-config-0001"  # only its sha256 is in the config file
LISTED = "sk-gw-allow-list-0002"  # [[keys]] models = ["fast"]
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def _usd(model: str, input_tokens: int, output_tokens: int = 0) -> float:
    cost = pricing.cost("openai", model, Usage(input_tokens=input_tokens,
                                               output_tokens=output_tokens))
    assert cost is not None and cost > 0
    return cost


#: What the simulator's default answer costs on gpt-4o-mini: 12 input, 4 output tokens.
CALL_USD = _usd("gpt-4o-mini", 12, 4)
#: Every secret of this file: none may appear in a log record, /metrics or a ledger row.
SECRETS: set[str] = {UP_KEY, MASTER, HASHED, LISTED}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def records() -> Iterator[_Records]:
    """Every log record of the module, at DEBUG, from every thread (the gateway's too)."""
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(UP_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-keys")


def _config(sim: OpenAISimulator, ledger: Path | str | None, *, keys: list[dict[str, Any]],
            extra: str = "") -> str:
    return gateway_config(
        [member("fast", "gpt-4o-mini", sim.url), member("other", "gpt-4o-mini", sim.url),
         member("embed", "text-embedding-3-small", sim.url, kind="embedding"),
         member("unpriced", "gpt-unpriced-9", sim.url),
         member("unpriced-embed", "text-embedding-unpriced", sim.url, kind="embedding")],
        keys, ledger=ledger, extra='[gateway]\nmaster_key_env = "GW_MASTER"\n' + extra)


@pytest.fixture(scope="module")
def gw(records: _Records, sim: OpenAISimulator, folder: Path) -> Iterator[GatewayServer]:
    """The gateway with the real parts (key store, limits, SQLite ledger) from its config
    file, which the CLI reads too."""
    text = _config(sim, folder / "spend.db", keys=[
        {"key_hash": hash_key(HASHED), "name": "hashed"},
        {"key": LISTED, "models": ["fast"]},
    ])
    assert HASHED not in text
    path = folder / "gateway.toml"
    path.write_text(text)
    with GatewayServer(text, env={"SIM_KEY": UP_KEY, "GW_MASTER": MASTER},
                       path=str(path)) as server:
        yield server


@pytest.fixture
def up(sim: OpenAISimulator) -> OpenAISimulator:
    """The upstream simulator with its record of requests cleared."""
    sim.reset()
    return sim


@contextlib.asynccontextmanager
async def _client(gw: GatewayServer, secret: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=secret,
                                  max_retries=0) as client:
        yield client


async def _cli(gw: GatewayServer, *argv: str) -> tuple[int, str]:
    """``synapsekit keys <argv> --config <the gateway's file>`` in-process (in a thread: the
    CLI runs its own event loop), with its exit code and stdout (then stderr)."""
    def run() -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["keys", *argv, "--config", str(gw.config.path)])
        return code, out.getvalue() + err.getvalue()

    return await asyncio.to_thread(run)


async def _create(gw: GatewayServer, *options: str) -> tuple[str, str]:
    """A new key from ``synapsekit keys create``: (its id, its secret)."""
    code, out = await _cli(gw, "create", *options)
    assert code == 0, out
    head, secret = out.splitlines()
    ident = head.removeprefix("created ").split(";")[0]
    assert head == f"created {ident}; its secret, shown once (it is not stored):"
    assert secret.startswith("sk-gw-") and ident == key_id(hash_key(secret))
    SECRETS.add(secret)
    return ident, secret


async def _ask(client: openai.AsyncOpenAI, *, stream: bool = False, model: str = "fast",
               max_tokens: int = 5) -> str:
    """One chat request; the answer's text."""
    if stream:
        chunks = await client.chat.completions.create(
            model=model, messages=HI, stream=True, max_tokens=max_tokens)
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    reply = await client.chat.completions.create(model=model, messages=HI,
                                                 max_tokens=max_tokens)
    return reply.choices[0].message.content or ""


def _ledger(gw: GatewayServer) -> SqlLedger:
    ledger = gw.gateway.ledger
    assert isinstance(ledger, SqlLedger)
    ledger.flush()  # the rows queued so far are written
    return ledger


def _memory_rows(gw: GatewayServer) -> list[Any]:
    ledger = gw.gateway.ledger
    assert isinstance(ledger, MemoryLedger)
    return ledger.rows


def _databases(folder: Path) -> bytes:
    """The bytes of every database file (the ledger and key store, its WAL, budgets.db)."""
    found = [p for p in folder.iterdir() if ".db" in p.name]
    assert "spend.db" in {p.name for p in found}
    return b"".join(p.read_bytes() for p in found)


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


# --------------------------------------------------------------------------- keys at rest


async def test_key_hash_in_config_authenticates_its_secret(gw: GatewayServer,
                                                           up: OpenAISimulator) -> None:
    async with _client(gw, HASHED) as client:
        assert await _ask(client) == "Hello, world!"
    async with _client(gw, HASHED + "x") as client:
        with pytest.raises(openai.AuthenticationError) as info:
            await _ask(client)
    assert _error(info.value)["code"] == "invalid_api_key"
    assert len(up.requests) == 1


async def test_cli_keys_create_list_revoke(gw: GatewayServer, up: OpenAISimulator,
                                           folder: Path) -> None:
    ident, secret = await _create(gw, "--name", "cli-made", "--rpm", "100")
    async with _client(gw, secret) as client:
        assert await _ask(client) == "Hello, world!"
    assert len(up.requests) == 1
    stored = _databases(folder)
    assert hash_key(secret).encode() in stored  # the files read are the key store's
    assert secret.encode() not in stored

    _ledger(gw)
    code, listing = await _cli(gw, "list")
    assert code == 0 and secret not in listing
    [line] = [row for row in listing.splitlines() if row.startswith(ident)]
    # id, name, budget, window, rpm, tpm, spent, state
    assert line.split() == [ident, "cli-made", "-", "-", "100", "-", f"${CALL_USD:.6f}",
                            "active"]

    code, out = await _cli(gw, "revoke", ident)
    assert (code, out) == (0, f"revoke {ident}: done\n")
    async with _client(gw, secret) as client:
        with pytest.raises(openai.AuthenticationError) as info:
            await _ask(client)
    assert info.value.status_code == 401
    assert _error(info.value) == {"message": "Incorrect API key provided.",
                                  "type": "authentication_error", "param": None,
                                  "code": "invalid_api_key"}
    assert len(up.requests) == 1  # nothing sent for the revoked key
    code, listing = await _cli(gw, "list")
    [line] = [row for row in listing.splitlines() if row.startswith(ident)]
    assert line.endswith("revoked")
    assert (await _cli(gw, "revoke", ident))[0] == 1  # revoked already


async def test_cli_set_budget_is_seen_by_the_next_request(gw: GatewayServer,
                                                          up: OpenAISimulator) -> None:
    ident, secret = await _create(gw, "--budget-usd", "1")
    async with _client(gw, secret) as client:
        assert await _ask(client) == "Hello, world!"
        assert (await _cli(gw, "set-budget", ident, "--budget-usd", "0.000001"))[0] == 0
        with pytest.raises(openai.RateLimitError) as info:
            await _ask(client)
        assert _error(info.value)["code"] == "insufficient_quota"
        assert len(up.requests) == 1
        assert (await _cli(gw, "set-budget", ident))[0] == 0  # no budget at all
        assert await _ask(client) == "Hello, world!"
    assert len(up.requests) == 2


async def test_keys_on_postgresql_revoked_key_is_401_on_its_next_request(
    records: _Records, sim: OpenAISimulator, postgres_url: str, tmp_path: Path,
) -> None:
    """The store of several nodes: the CLI writes the keys table, the gateway's kept
    connection sees the revocation at the next request."""
    text = _config(sim, postgres_url, keys=[])
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    sim.reset()
    with GatewayServer(text, env={"SIM_KEY": UP_KEY, "GW_MASTER": MASTER},
                       path=str(path)) as pg:
        ident, secret = await _create(pg, "--name", "on-pg")
        async with _client(pg, secret) as client:
            assert await _ask(client) == "Hello, world!"
            assert (await _cli(pg, "revoke", ident))[0] == 0
            with pytest.raises(openai.AuthenticationError):
                await _ask(client)
    assert len(sim.requests) == 1


@pytest.mark.parametrize(("options", "said"), [
    (("--rpm", "0"), "error: rpm: must be a number > 0, got 0.0"),
    (("--tpm", "-5"), "error: tpm: must be a number > 0, got -5.0"),
    (("--budget-usd", "-1"), "error: budget_usd: must be a number >= 0, got -1.0"),
    (("--models", "fast,nope"), "error: models: no [[models]] entry is named 'nope' "
                                "(known: fast, other, unpriced, embed, unpriced-embed)"),
])
async def test_cli_refuses_a_key_that_could_only_fail(
    gw: GatewayServer, options: tuple[str, ...], said: str,
) -> None:
    before = await _cli(gw, "list")
    assert await _cli(gw, "create", *options) == (1, said + "\n")
    assert await _cli(gw, "list") == before  # nothing stored


def test_config_refuses_a_zero_rate_limit(sim: OpenAISimulator) -> None:
    """0 a minute is no bucket at all: every request would fail (it was a 500)."""
    from synapsekit.errors import ConfigError
    from synapsekit.gateway.config import parse_config

    text = _config(sim, None, keys=[{"key": "sk-gw-zero-rpm-key", "requests_per_minute": 0}])
    with pytest.raises(ConfigError) as info:
        parse_config(text, "gateway.toml", {"SIM_KEY": UP_KEY})
    assert "keys[0].requests_per_minute: must be a number > 0" in str(info.value)


# --------------------------------------------------------------------------- budgets


@pytest.mark.parametrize("stream", [False, True], ids=["not-streamed", "streamed"])
async def test_budget_spent_by_one_call_refuses_the_next_sending_nothing(
    gw: GatewayServer, up: OpenAISimulator, stream: bool,
) -> None:
    # The first call reserves its worst case (1 input token, 5 output: $3.15e-06), which
    # fits, and spends $4.2e-06 of $5e-06: the next one's worst case does not fit.
    ident, secret = await _create(gw, "--budget-usd", "0.000005")
    async with _client(gw, secret) as client:
        assert await _ask(client, stream=stream) == "Hello, world!"
        with pytest.raises(openai.RateLimitError) as info:
            await _ask(client, stream=stream)
    assert info.value.status_code == 429
    assert _error(info.value) == {
        "message": "This key's budget is exhausted: the request was not sent.",
        "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}
    assert len(up.requests) == 1
    rows = await _ledger(gw).rows(key_id=ident)
    assert [(r.status, r.error, r.stream) for r in rows] == [
        (200, None, stream), (429, "BudgetExceededError", stream)]
    assert (rows[0].cost_usd, rows[1].cost_usd) == (CALL_USD, 0.0)


async def test_concurrent_requests_never_overspend_nor_overrun_the_limit(
    gw: GatewayServer, up: OpenAISimulator,
) -> None:
    """Six at once: a budget with room for one worst case lets exactly one through (the
    others' reservations do not fit beside it, nor after it settled); 2 a minute lets two."""
    _, broke = await _create(gw, "--budget-usd", "0.000005")
    _, limited = await _create(gw, "--rpm", "2")
    for secret, allowed, code in ((broke, 1, "insufficient_quota"),
                                  (limited, 2, "rate_limit_exceeded")):
        up.reset()
        async with _client(gw, secret) as client:
            results = await asyncio.gather(*(_ask(client) for _ in range(6)),
                                           return_exceptions=True)
        refused = [r for r in results if isinstance(r, openai.RateLimitError)]
        assert results.count("Hello, world!") == allowed and len(refused) == 6 - allowed
        assert {_error(r)["code"] for r in refused} == {code}
        assert len(up.requests) == allowed


async def test_embeddings_reserve_the_budget(gw: GatewayServer, up: OpenAISimulator) -> None:
    # A budget below what the input's reservation costs: refused before it is sent.
    _, poor = await _create(gw, "--budget-usd", "0.000000001")
    async with _client(gw, poor) as client:
        with pytest.raises(openai.RateLimitError) as info:
            await client.embeddings.create(model="embed", input="hello world")
    assert _error(info.value)["code"] == "insufficient_quota"
    assert len(up.requests) == 0

    # "a b c d e f": reserved as 3 tokens ($6e-08, fits $1e-07), billed as the 6 the
    # upstream counted ($1.2e-07): the budget is spent, for embeddings and chat alike.
    ident, secret = await _create(gw, "--budget-usd", "0.0000001")
    async with _client(gw, secret) as client:
        answer = await client.embeddings.create(model="embed", input=["a b c d e f"])
        assert len(answer.data) == 1 and len(answer.data[0].embedding) == 8
        assert answer.usage.prompt_tokens == 6
        with pytest.raises(openai.RateLimitError) as info:
            await client.embeddings.create(model="embed", input="a")
        assert _error(info.value)["code"] == "insufficient_quota"
        with pytest.raises(openai.RateLimitError):
            await _ask(client)
    assert [r.path for r in up.requests] == ["/v1/embeddings"]
    rows = await _ledger(gw).rows(key_id=ident)
    assert [(r.api, r.status, r.input_tokens) for r in rows] == [
        ("embeddings", 200, 6), ("embeddings", 429, 0), ("openai", 429, 0)]
    assert rows[0].cost_usd == _usd("text-embedding-3-small", 6)


@pytest.mark.filterwarnings("ignore::synapsekit.llm.pricing.UnknownModelPriceWarning")
async def test_a_model_without_a_price_is_refused_under_a_budget(
    gw: GatewayServer, up: OpenAISimulator,
) -> None:
    """Its cost cannot be bounded, so a key with a budget may not use it (it was a 500)."""
    _, secret = await _create(gw, "--budget-usd", "1")
    async with _client(gw, secret) as client:
        with pytest.raises(openai.PermissionDeniedError) as info:
            await _ask(client, model="unpriced")
        assert _error(info.value) == {
            "message": "This key has a budget and the model has no known price (its cost "
                       "cannot be bounded): the request was not sent.",
            "type": "permission_error", "param": "model", "code": "model_not_priced"}
        with pytest.raises(openai.PermissionDeniedError) as info:
            await client.embeddings.create(model="unpriced-embed", input="hello")
        assert _error(info.value)["code"] == "model_not_priced"
    assert len(up.requests) == 0


async def test_a_budget_that_cannot_be_checked_fails_closed(
    records: _Records, sim: OpenAISimulator, tmp_path: Path,
) -> None:
    """Redis down: 503 ``budget_unavailable``, nothing sent, the reason in the log (it was a
    bare 500 with nothing logged)."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    funded = "sk-gw-budget-no-redis-0005"
    SECRETS.add(funded)
    text = _config(sim, None, keys=[{"key": funded, "budget_usd": 1.0}], extra=(
        f'[storage]\nledger = "sqlite:///{tmp_path / "spend.db"}"\nredis_url = "{dead}"\n'))
    sim.reset()
    with GatewayServer(text, env={"SIM_KEY": UP_KEY, "GW_MASTER": MASTER},
                       ledger=MemoryLedger()) as gw:
        async with _client(gw, funded) as client:
            for call in (lambda: _ask(client),
                         lambda: client.embeddings.create(model="embed", input="hi")):
                with pytest.raises(openai.InternalServerError) as info:
                    await call()
                assert info.value.status_code == 503
                assert _error(info.value) == {
                    "message": "The gateway cannot check this key's budget right now: the "
                               "request was not sent.",
                    "type": "server_error", "param": None, "code": "budget_unavailable"}
        rows = _memory_rows(gw)
    assert len(sim.requests) == 0 and len(rows) == 2
    said = [r.getMessage() for r in records.records if r.name == "synapsekit.gateway"]
    for row in rows:
        assert f"{row.request_id} failed: BudgetError -> 503 budget_unavailable" in said


async def test_embeddings_wire_through_the_openai_sdk(gw: GatewayServer,
                                                      up: OpenAISimulator) -> None:
    """The SDK's default (base64 float32) and ``float`` give the upstream's vectors, in
    order; ``dimensions`` reaches the upstream; token arrays are refused before it."""
    texts = ["first text", "the second one"]
    async with _client(gw, HASHED) as client:
        packed = await client.embeddings.create(model="embed", input=texts)
        plain = await client.embeddings.create(model="embed", input=texts,
                                               encoding_format="float", dimensions=4)
        with pytest.raises(openai.BadRequestError) as info:
            await client.embeddings.create(model="embed", input=[[1, 2, 3]])
    as_float32 = [list(struct.unpack("<8f", struct.pack("<8f", *embedding_vector(t))))
                  for t in texts]
    assert [d.embedding for d in packed.data] == as_float32
    assert [d.embedding for d in plain.data] == [embedding_vector(t, 4) for t in texts]
    assert (packed.model, packed.usage.prompt_tokens, packed.usage.total_tokens) == (
        "embed", 5, 5)
    assert [r.json().get("dimensions") for r in up.requests] == [None, 4]
    assert _error(info.value)["param"] == "input"


# --------------------------------------------------------------------------- rate limits


def _retry_after(exc: openai.APIStatusError) -> int:
    value = exc.response.headers["retry-after"]
    assert value.isdigit(), value
    return int(value)


async def test_requests_per_minute_answers_429_with_retry_after(
    gw: GatewayServer, up: OpenAISimulator,
) -> None:
    _, secret = await _create(gw, "--rpm", "2")
    async with _client(gw, secret) as client:
        assert await _ask(client) == "Hello, world!"
        assert await _ask(client, stream=True) == "Hello, world!"
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError) as info:
            await _ask(client)
        waited = time.monotonic() - started
    assert _error(info.value)["code"] == "rate_limit_exceeded"
    assert _error(info.value)["type"] == "rate_limit_error"
    # 2 a minute: the next slot refills in 30 s less the time since the first request.
    assert 0 < _retry_after(info.value) <= 30
    assert waited < 5  # answered at once, never held waiting
    assert len(up.requests) == 2


async def test_tokens_per_minute_answers_429_with_retry_after(
    gw: GatewayServer, up: OpenAISimulator,
) -> None:
    # 60 a minute; a request reserves 1 + max_tokens 58 = 59, settled to the 16 used: 44
    # left, 15 short of the next 59, which 60/min refills in 15 s.
    _, secret = await _create(gw, "--tpm", "60")
    async with _client(gw, secret) as client:
        assert await _ask(client, max_tokens=58) == "Hello, world!"
        with pytest.raises(openai.RateLimitError) as info:
            await _ask(client, max_tokens=58)
    assert _error(info.value)["code"] == "rate_limit_exceeded"
    assert 0 < _retry_after(info.value) <= 15
    assert len(up.requests) == 1


async def test_tokens_per_minute_reserves_the_tools_and_the_response_format(
    gw: GatewayServer, up: OpenAISimulator, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What /v1/chat/completions reserves of a key's tokens per minute is the estimate of
    # everything the request sends as input: a tool's definition counts, not just "hi".
    reserved: list[int] = []
    try_acquire = MemoryRateLimiter.try_acquire

    async def spy(self: MemoryRateLimiter, tokens: int = 0) -> float:
        reserved.append(tokens)
        return await try_acquire(self, tokens)

    monkeypatch.setattr(MemoryRateLimiter, "try_acquire", spy)
    _, secret = await _create(gw, "--tpm", "100000")
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"]}  # 77 characters of compact JSON
    tool: Any = {"type": "function", "function": {
        "name": "get_weather", "description": "The current weather of a city.",
        "parameters": schema}}
    answer: Any = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    async with _client(gw, secret) as client:
        await client.chat.completions.create(model="fast", messages=HI, max_tokens=5,
                                             tools=[tool])
        await client.chat.completions.create(model="fast", messages=HI, max_tokens=5,
                                             response_format=answer)
    assert "tools" in up.requests[0].json() and "response_format" in up.requests[1].json()
    # ceil(("hi" 2 + name 11 + description 30 + schema 77) / 4) + max_tokens 5, then
    # ceil((2 + the schema's name 5 + 77) / 4) + 5
    assert reserved == [30 + 5, 21 + 5]


async def test_limits_keep_one_object_per_key_and_drop_keys_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What `keys set-budget` and `keys revoke` do to a long-running gateway, straight on
    # its KeyLimits: a key's limits changed N times keeps one limiter and one budget for
    # it; a request admitted before a change settles on the limiter it was admitted on;
    # a revoked key (one that stops coming) is dropped once max_keys others came after.
    acquired: list[object] = []
    settled: list[object] = []
    try_acquire, settle = MemoryRateLimiter.try_acquire, MemoryRateLimiter.settle

    async def spy_acquire(self: MemoryRateLimiter, tokens: int = 0) -> float:
        acquired.append(self)
        return await try_acquire(self, tokens)

    async def spy_settle(self: MemoryRateLimiter, estimated: int, actual: int) -> None:
        settled.append(self)
        await settle(self, estimated, actual)

    monkeypatch.setattr(MemoryRateLimiter, "try_acquire", spy_acquire)
    monkeypatch.setattr(MemoryRateLimiter, "settle", spy_settle)
    limits = KeyLimits(budget_path=str(tmp_path / "budgets.db"), max_keys=2)
    try:
        first = KeyInfo(id="key_churn", budget_usd=1.0, requests_per_minute=1000)
        await limits.admit(first, 10)  # in flight while the key's limits change
        budgets = set()
        for n in range(2, 12):
            key = KeyInfo(id="key_churn", budget_usd=float(n), requests_per_minute=1000 + n)
            await limits.admit(key, 10)
            await limits.settle(key, 10, 5)
            budgets.add(id(limits.budget(key)))
        assert len(budgets) == 10  # rebuilt for each change...
        assert repr(limits) == "KeyLimits(redis=False, keys=1)"  # ...and only one kept
        assert len(limits._budgets) == 1
        await limits.settle(first, 10, 5)
        assert settled[-1] is acquired[0]  # on what it was admitted on, not the new one
        assert settled[-1] is not acquired[-1]
        assert len(limits._held) == 0  # nothing in flight: the old limiter is let go

        revoked = KeyInfo(id="key_revoked", budget_usd=1.0, requests_per_minute=10)
        await limits.admit(revoked, 1)
        await limits.settle(revoked, 1, 1)
        assert limits.budget(revoked) is limits.budget(revoked)
        for other in ("key_a", "key_b"):  # the revoked key never comes again
            key = KeyInfo(id=other, budget_usd=1.0, requests_per_minute=10)
            await limits.admit(key, 1)
            await limits.settle(key, 1, 1)
            limits.budget(key)
        assert set(limits._limiters) == set(limits._budgets) == {"key_a", "key_b"}
        assert repr(limits) == "KeyLimits(redis=False, keys=2)"
    finally:
        await limits.aclose()


async def test_rate_limit_and_budget_shared_by_two_gateways_through_redis(
    records: _Records, sim: OpenAISimulator, redis_url: str, tmp_path: Path,
) -> None:
    limited, funded = "sk-gw-shared-rpm-0003", "sk-gw-shared-budget-0004"
    SECRETS.update((limited, funded))
    storage = (f'[storage]\nledger = "sqlite:///{tmp_path / "spend.db"}"\n'
               f'redis_url = "{redis_url}"\n')
    text = _config(sim, None, keys=[{"key": limited, "requests_per_minute": 2},
                                    {"key": funded, "budget_usd": 0.000005}], extra=storage)
    servers = []
    for name in ("a", "b"):  # (budget files apart: only Redis can share the spend)
        limits = KeyLimits(redis_url=redis_url, budget_path=str(tmp_path / f"{name}.db"),
                           redis_timeout=SLOW_MACHINE)
        servers.append(GatewayServer(text, env={"SIM_KEY": UP_KEY, "GW_MASTER": MASTER},
                                     limits=limits, ledger=MemoryLedger()))
    sim.reset()
    with servers[0] as a, servers[1] as b:
        async with _client(a, limited) as through_a, _client(b, limited) as through_b:
            assert await _ask(through_a) == "Hello, world!"
            assert await _ask(through_a) == "Hello, world!"
            with pytest.raises(openai.RateLimitError) as info:
                await _ask(through_b)
            assert len(sim.requests) == 2
        assert _error(info.value)["code"] == "rate_limit_exceeded"
        assert 0 < _retry_after(info.value) <= 30
        async with _client(a, funded) as through_a, _client(b, funded) as through_b:
            assert await _ask(through_a) == "Hello, world!"  # spends the budget
            with pytest.raises(openai.RateLimitError) as info:
                await _ask(through_b)
        assert _error(info.value)["code"] == "insufficient_quota"
    assert len(sim.requests) == 3


# --------------------------------------------------------------------------- allow-list


@pytest.mark.parametrize("made", ["config", "cli"])
async def test_allow_list_refuses_other_models_sending_nothing(
    gw: GatewayServer, up: OpenAISimulator, made: str,
) -> None:
    secret = LISTED if made == "config" else (await _create(gw, "--models", "fast"))[1]
    async with _client(gw, secret) as client:
        assert [m.id async for m in client.models.list()] == ["fast"]
        assert await _ask(client) == "Hello, world!"
        for stream in (False, True):
            with pytest.raises(openai.PermissionDeniedError) as info:
                await _ask(client, model="other", stream=stream)
            assert _error(info.value) == {
                "message": "This key may not use the model `other`.",
                "type": "permission_error", "param": "model", "code": "model_not_allowed"}
        with pytest.raises(openai.PermissionDeniedError):
            await client.embeddings.create(model="embed", input="hello")
    assert len(up.requests) == 1


# --------------------------------------------------------------------------- /v1/spend


async def test_spend_shows_the_callers_own_and_the_master_key_all(
    gw: GatewayServer, up: OpenAISimulator,
) -> None:
    ident, secret = await _create(gw, "--name", "spender")
    other, other_secret = await _create(gw, "--name", "bystander")
    async with _client(gw, secret) as client:
        await _ask(client)
        await _ask(client, stream=True)
        await client.embeddings.create(model="embed", input=["one two three"])
    async with _client(gw, other_secret) as client:
        await _ask(client)
    _ledger(gw)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    embed_usd = _usd("text-embedding-3-small", 3)
    mine = [
        {"key_id": ident, "model": "embed", "date": today, "requests": 1, "errors": 0,
         "input_tokens": 3, "output_tokens": 0, "cached_input_tokens": 0,
         "cost_usd": embed_usd},
        {"key_id": ident, "model": "fast", "date": today, "requests": 2, "errors": 0,
         "input_tokens": 24, "output_tokens": 8, "cached_input_tokens": 0,
         "cost_usd": CALL_USD * 2},
    ]
    async with httpx.AsyncClient(base_url=gw.url) as http:
        own = (await http.get("/v1/spend", headers={"authorization": f"Bearer {secret}"}))
        assert own.status_code == 200
        body = own.json()
        assert body["data"] == mine
        assert body["total_requests"] == 3
        assert body["total_cost_usd"] == embed_usd + CALL_USD * 2
        every = (await http.get("/v1/spend", headers={"authorization": f"Bearer {MASTER}"}))
        assert every.status_code == 200
        rows = every.json()["data"]
        assert [r for r in rows if r["key_id"] == ident] == mine
        assert [(r["model"], r["requests"]) for r in rows if r["key_id"] == other] == [
            ("fast", 1)]
        assert {r["key_id"] for r in rows} > {ident, other}
        bad = await http.get("/v1/spend?since=yesterday",
                             headers={"authorization": f"Bearer {secret}"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "since"
        anon = await http.get("/v1/spend")
        assert anon.status_code == 401


async def test_spend_right_after_an_answer_includes_it(gw: GatewayServer) -> None:
    """Rows are written by a thread in batches; a spend query waits for the rows queued
    before it, so the answer a client just got is in its spend (no flush here)."""
    _, secret = await _create(gw, "--name", "hasty")
    async with _client(gw, secret) as client, httpx.AsyncClient(base_url=gw.url) as http:
        for n in (1, 2, 3):
            await _ask(client)
            body = (await http.get("/v1/spend",
                                   headers={"authorization": f"Bearer {secret}"})).json()
            assert (body["total_requests"], body["total_cost_usd"]) == (n, CALL_USD * n)


# --------------------------------------------------------------------------- secrets


async def test_no_secret_in_metrics_ledger_rows_or_files(gw: GatewayServer,
                                                         folder: Path) -> None:
    """Over everything the file did (run alone: over one request of its own)."""
    async with _client(gw, HASHED) as client:
        await _ask(client)
    _ledger(gw)
    async with httpx.AsyncClient(base_url=gw.url) as http:
        metrics = await http.get("/metrics", headers={"authorization": f"Bearer {MASTER}"})
    assert metrics.status_code == 200
    ident = key_id(hash_key(HASHED))
    assert f'key_id="{ident}"' in metrics.text  # the ids are there, never the keys
    rows = await _ledger(gw).rows()
    assert rows
    stored = _databases(folder)
    with sqlite3.connect(folder / "spend.db") as conn:
        tables = [repr(conn.execute(f"SELECT * FROM {t}").fetchall())
                  for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for secret in SECRETS:
        assert secret not in metrics.text
        assert not [r for r in rows if secret in repr(r)]
        assert secret.encode() not in stored
        assert not [t for t in tables if secret in t]


def test_zz_no_secret_in_any_log_record_of_the_file(records: _Records,
                                                    gw: GatewayServer) -> None:
    """Last in the file: every record the tests above made, the gateway's included (the
    CLI-made keys' secrets are in SECRETS when those tests ran)."""
    assert any(r.name == "synapsekit.gateway.access" and isinstance(r.args, tuple)
               and r.args[1] == "master" for r in records.records), "no request was logged"
    leaked = []
    for record in records.records:
        text = record.getMessage() + repr(record.args) + (
            logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        leaked += [(record.name, s) for s in SECRETS if s in text]
    assert leaked == []

