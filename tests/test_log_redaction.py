"""API keys out of log records, for as long as a client holds them, and no longer.

A service passing each user's own key (``generate(p, api_key=...)``) meets thousands of keys
over its life. Each is scrubbed from every log record while an SDK client built with it is
open; when the client is closed (the LLM closed, or its pooled connection evicted) the key is
released, so the set of keys each log record is checked against stays the keys in use.
"""

from __future__ import annotations

import logging

import pytest

from synapsekit import _logging, make_llm
from synapsekit._logging import forget_in_logs, redact_in_logs
from synapsekit.llm.connection import ConnectionPool
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, text_stream

OWNER = "owner-key-0000000000000000"


class _AnyUser:
    """Stands for the simulator's one valid key: any ``user-`` key (or the owner's)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and (other.startswith("user-") or other == OWNER)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]


def _user(n: int) -> str:
    return f"user-{n:04d}-secret-key-abcdefgh"


def test_a_key_is_scrubbed_until_every_holder_released_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-redaction-test-0123456789"
    log = logging.getLogger("tests.redaction")
    redact_in_logs(secret)
    redact_in_logs(secret)  # a second client with the same key
    with caplog.at_level(logging.INFO, logger="tests.redaction"):
        log.info("sending with %s", secret)
        forget_in_logs(secret)  # one of the two closed: still held
        log.info("still %s", secret)
        forget_in_logs(secret)  # none holds it: no longer searched for
        log.info("now %s", secret)
    assert [r.getMessage() for r in caplog.records] == [
        "sending with ***", "still ***", f"now {secret}",
    ]
    assert secret not in _logging._secrets


def test_short_and_empty_values_are_not_secrets() -> None:
    before = dict(_logging._secrets)
    redact_in_logs(None, "", "short")
    forget_in_logs(None, "", "short")
    assert _logging._secrets == before


async def test_per_call_keys_are_released_when_their_clients_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    users = ConnectionPool.SIZE + 6  # more users than one LLM keeps connections for
    with OpenAISimulator(OWNER, default=text_stream(["ok"])) as sim:
        sim.api_key = _AnyUser()  # type: ignore[assignment]
        llm = make_llm("gpt-4o-mini", api_key=OWNER, base_url=sim.url, max_retries=0)
        try:
            with caplog.at_level(logging.DEBUG):
                for n in range(users):
                    assert await llm.generate("hi", api_key=_user(n)) == "ok"
            assert len(sim.requests) == users
            held = [n for n in range(users) if _user(n) in _logging._secrets]
            # the evicted users' keys were released with their clients; the pooled ones
            # are still scrubbed
            assert held == list(range(users - ConnectionPool.SIZE, users))
            assert OWNER not in _logging._secrets  # its client was never built
            logging.getLogger("openai").warning("key %s", _user(users - 1))
            assert caplog.records[-1].getMessage() == "key ***"
            logged = "\n".join(r.getMessage() for r in caplog.records)
            assert not any(_user(n) in logged for n in range(users))
        finally:
            await llm.aclose()
    assert not any(_user(n) in _logging._secrets for n in range(users))
