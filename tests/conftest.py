"""Shared fixtures: protocol simulators, a redis-server and a PostgreSQL cluster on 127.0.0.1,
started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from tests.postgres_server import _postgres_server, postgres_url  # noqa: F401  (fixtures)
from tests.redis_server import redis_server, served_or_skipped

API_KEY = "sk-test-key-0123456789"


@pytest.fixture(scope="session")
def _openai_server() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(API_KEY) as sim:
        yield sim


@pytest.fixture(scope="session")
def _azure_server() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(API_KEY, auth="azure") as sim:
        yield sim


@pytest.fixture
def openai_sim(_openai_server: OpenAISimulator) -> Iterator[OpenAISimulator]:
    """The OpenAI-protocol simulator, with its script and records cleared for this test, and
    the key it accepts put back after it (a test may accept other keys for a while)."""
    _openai_server.reset()
    yield _openai_server
    _openai_server.reset()
    _openai_server.api_key = API_KEY


@pytest.fixture
def azure_sim(_azure_server: OpenAISimulator) -> Iterator[OpenAISimulator]:
    _azure_server.reset()
    yield _azure_server
    _azure_server.reset()
    _azure_server.api_key = API_KEY


@pytest.fixture(scope="session")
def _redis_server() -> Iterator[str]:
    yield from served_or_skipped(redis_server())


@pytest.fixture
def redis_url(_redis_server: str) -> Iterator[str]:
    """URL of the session's real redis-server, emptied before and after each test."""
    import redis

    from synapsekit.llm.cache.base import _flush_at_exit

    client = redis.Redis.from_url(_redis_server)
    _flush_at_exit()  # an earlier test's background cache write must not land after this
    client.flushdb()
    yield _redis_server
    _flush_at_exit()
    client.flushdb()
    client.close()
