"""Fixtures the per-protocol test files share, written once: one simulator per module,
reset around each test, and the LLMs a test made closed in that test's own event loop (an
SDK client is bound to the loop it was built on; closing it from another loop, or leaving it
to the garbage collector, warns or hangs).

A test module declares its simulator in one line::

    _server, sim = serve(lambda: CohereSimulator(KEY))

and registers each LLM it builds with :func:`track`. A module whose tests also build LLMs
without the simulator adds ``_closing = autoclose()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from synapsekit import BaseLLM
from synapsekit.errors import StreamInterruptedError, SynapseKitError
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Chunk

__all__ = ["AWS_UNSET", "autoclose", "aws_credentials", "close_made", "serve", "track"]


class _Resettable(Protocol):
    def reset(self) -> None: ...


S = TypeVar("S", bound=_Resettable)
L = TypeVar("L", bound=BaseLLM)

_made: list[BaseLLM] = []


def track(llm: L) -> L:
    """Close ``llm`` at the end of the test that made it."""
    _made.append(llm)
    return llm


async def close_made() -> None:
    """Close every LLM :func:`track` was given, newest first."""
    while _made:
        await _made.pop().aclose()


def serve(
    start: Callable[[], AbstractContextManager[S]],
    *,
    name: str = "sim",
    check_errors: bool = False,
) -> tuple[Any, Any]:
    """Two fixtures: the simulator ``start()`` runs, once per module (``_<name>_server``),
    and ``<name>``, the same simulator reset before and after each test, after the test's
    tracked LLMs are closed. ``check_errors``: fail a test whose requests the simulator
    found malformed (``sim.errors``)."""
    server_name = f"_{name}_server"

    @pytest.fixture(scope="module", name=server_name)
    def _module_server() -> Iterator[S]:
        with start() as server:
            yield server

    @pytest.fixture(name=name)
    async def _per_test(request: pytest.FixtureRequest) -> AsyncIterator[S]:
        server: S = request.getfixturevalue(server_name)
        server.reset()
        yield server
        await close_made()
        if check_errors:
            errors = getattr(server, "errors", None)
            assert not errors, errors
        server.reset()

    return _module_server, _per_test


def autoclose() -> Any:
    """An autouse fixture closing the test's tracked LLMs, for a module whose tests build
    LLMs without the simulator fixture."""

    @pytest.fixture(autouse=True)
    async def _closing() -> AsyncIterator[None]:
        yield
        await close_made()

    return _closing


#: AWS settings that would let botocore find credentials or a region other than the test's.
AWS_UNSET = (
    "AWS_REGION", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_CA_BUNDLE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def aws_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, access_key: str, secret_key: str,
    region: str = "us-east-1",
) -> None:
    """AWS's own credential chain (what a Bedrock user has) seeing exactly these keys and
    this region: environment variables set, every other source -- profiles, config and
    credential files, container and instance metadata -- switched off."""
    for name in AWS_UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


#: What a stream ended as: every chunk passed on, and the error (class/cause, text).
Outcome = tuple[list[Chunk], str | None, str | None]


async def stream_outcome(llm: BaseLLM, tools: list[Tool] | None) -> Outcome:
    """Every chunk the call path passed on, and the error it ended with (class, text; what
    a malformed line or event looked like is told in each path's own words). The raw-body
    tests (Gemini, Ollama) compare the raw path and the SDK-object path with it."""
    chunks: list[Chunk] = []
    try:
        async for chunk in llm.stream_chunks("hi", tools=tools):
            chunks.append(chunk)
    except SynapseKitError as exc:
        cause = exc.__cause__ if isinstance(exc, StreamInterruptedError) else None
        message = str(exc).split(" sent a malformed response: ")[0]
        return chunks, f"{type(exc).__name__}/{type(cause).__name__}", message
    return chunks, None, None
