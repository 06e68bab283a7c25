"""Shared fixtures: protocol simulators on 127.0.0.1, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.simulators.openai_protocol import OpenAISimulator

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
    """The OpenAI-protocol simulator, with its script and records cleared for this test."""
    _openai_server.reset()
    yield _openai_server
    _openai_server.reset()


@pytest.fixture
def azure_sim(_azure_server: OpenAISimulator) -> Iterator[OpenAISimulator]:
    _azure_server.reset()
    yield _azure_server
    _azure_server.reset()
