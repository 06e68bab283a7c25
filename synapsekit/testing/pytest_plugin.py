"""The ``cassette`` pytest fixture: each test that asks for it runs inside a
:class:`~synapsekit.testing.Cassette` of its own.

Registered through the ``pytest11`` entry point, so installing synapsekit is enough::

    async def test_summary(cassette):
        assert await summarise(llm, "report.txt") == "..."   # served from the cassette

The file is ``<test file's folder>/cassettes/<test module>/<test name>.jsonl`` unless the
test says otherwise with ``@pytest.mark.cassette(path=..., mode=...)``. The mode is the
marker's, else ``--cassette-mode`` (``record`` / ``replay`` / ``auto``), else ``replay``:
a test run never calls a provider unless asked to, so CI needs no key and no network.
Record with ``pytest --cassette-mode=record`` (or ``auto`` to add only what is missing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

if TYPE_CHECKING:  # imported by the fixture: every pytest run loads this module
    from synapsekit.testing.cassette import Cassette, Mode

__all__ = ["cassette", "cassette_path"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("synapsekit").addoption(
        "--cassette-mode",
        choices=("record", "replay", "auto"),
        default=None,
        help="what the cassette fixture does: replay (the default) serves recorded calls "
        "only; record sends every call and rewrites the file; auto records what is missing",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cassette(path=None, mode=None): the cassette fixture's file and mode for this test",
    )


def cassette_path(request: pytest.FixtureRequest) -> Path:
    """The default file of the requesting test (parametrised ids made file-name safe)."""
    node = request.node
    name = _UNSAFE.sub("-", node.name).strip("-") or "test"
    return Path(node.path).parent / "cassettes" / Path(node.path).stem / f"{name}.jsonl"


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Cassette]:
    """The test's :class:`~synapsekit.testing.Cassette`, entered for the whole test."""
    from synapsekit.testing.cassette import Cassette

    marker = request.node.get_closest_marker("cassette")
    options = dict(marker.kwargs) if marker is not None else {}
    path = options.get("path") or cassette_path(request)
    mode = options.get("mode") or request.config.getoption("cassette_mode") or "replay"
    with Cassette(path, mode=cast("Mode", mode)) as tape:
        yield tape
