"""A call whose first attempt is cut by a deadline and retried is recorded whole and
replayed the same way, on all fifteen providers: the cut attempt as its TimeoutError, the
retry's answer as its chunks; replay sends nothing and gets the same answer after the same
number of attempts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synapsekit.errors import StreamInterruptedError
from synapsekit.testing import Cassette
from synapsekit.testing.simulators.server import Server
from tests import test_hardening as hardening
from tests.test_deadlines import _all, _each, _full, _shaped, _warm, own  # noqa: F401

aws_env = hardening.aws_env


async def test_a_deadline_cut_attempt_is_recorded_and_replayed(
    own: dict[str, tuple[Server, Any]], tmp_path: Path, aws_env: None,  # noqa: F811
) -> None:
    async def scenario(provider: str, model: str, server: Server, module: Any) -> Any:
        path = tmp_path / f"{provider}.jsonl"
        llm = hardening._llm(provider, model, server, first_token_timeout=0.3, max_retries=1)
        await _warm(llm, server, module)
        server.enqueue(_shaped(module, cut="opening"))
        server.enqueue(_full(module))
        with Cassette(path, mode="record"):
            recorded = await llm.generate("cut then answered")
        sent = len(server.requests)
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        with Cassette(path, mode="replay") as tape:
            replayed = await llm.generate("cut then answered")
        await llm.aclose()
        return (recorded, replayed, sent, len(server.requests) - sent, tape.replayed,
                [(line["error"] or {}).get("code") for line in lines])

    observed = await _each(own, scenario)
    assert observed == _all(("Tok0xTok1x", "Tok0xTok1x", 2, 0, 2, ["first_token_timeout", None]))


async def test_an_idle_cut_replays_as_the_same_interruption(
    own: dict[str, tuple[Server, Any]], tmp_path: Path, aws_env: None,  # noqa: F811
) -> None:
    """The first token, then silence past idle_timeout: recorded as that token and the
    TimeoutError; replayed, the consumer gets the same token and the same
    StreamInterruptedError (not retried: a token was delivered)."""

    async def outcome(llm: Any) -> tuple[list[str], str | None]:
        got: list[str] = []
        try:
            async for token in llm.stream("cut after a token"):
                got.append(token)
        except StreamInterruptedError as exc:
            cause = exc.__cause__
            return got, getattr(cause, "code", None)
        return got, None

    async def scenario(provider: str, model: str, server: Server, module: Any) -> Any:
        path = tmp_path / f"idle-{provider}.jsonl"
        llm = hardening._llm(provider, model, server, idle_timeout=0.2, max_retries=2)
        await _warm(llm, server, module)
        server.enqueue(_shaped(module, cut="token"))
        with Cassette(path, mode="record"):
            recorded = await outcome(llm)
        sent = len(server.requests)
        with Cassette(path, mode="replay") as tape:
            replayed = await outcome(llm)
        await llm.aclose()
        return recorded, replayed, sent, len(server.requests) - sent, tape.replayed

    observed = await _each(own, scenario)
    cut = (["Tok0x"], "idle_timeout")
    assert observed == _all((cut, cut, 1, 0, 1))
