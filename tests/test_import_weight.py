"""What resolving the public names loads: the import budget (issue 16), as module sets.

``import synapsekit`` plus every name of ``synapsekit.__all__`` should cost about what
``import asyncio`` costs; the time itself is measured by ``benchmarks/bench_import.py``
(timings are never asserted in tests). What keeps it low is checked here, so it cannot rot:
a provider class does not import its protocol modules (they load with the first LLM
built), the public names do not import the call path's parts (cache, limiter, retry,
deadlines, prices, the model table) nor the standard-library modules only some paths use.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import synapsekit
from synapsekit.llm.registry import PROVIDERS

#: Providers whose package still imports its protocol with the class: none any more.
EAGER: tuple[str, ...] = ()
#: A provider package's protocol parts: imported with its first LLM, never with its class.
PROTOCOL_PARTS = ("connection", "encode", "decode", "errors", "agent", "count", "transport",
                  "frames")
#: The call path's parts, imported when an LLM is built or called.
CALL_PATH = (
    "synapsekit.llm.cache", "synapsekit.llm.cache.base", "synapsekit.llm.cache.key",
    "synapsekit.llm.cache.codec", "synapsekit.llm.cache.memory", "synapsekit.llm.cache.redis",
    "synapsekit.llm.cache.sqlite", "synapsekit.llm.cache.registry", "synapsekit.llm.connection",
    "synapsekit.llm.deadlines", "synapsekit.llm.ratelimit", "synapsekit.llm.retry",
    "synapsekit.llm.spend", "synapsekit.llm.pricing", "synapsekit.llm.models",
    "synapsekit.llm.router_state", "synapsekit.llm.sse", "synapsekit.llm.providers._errors",
    "synapsekit.llm.providers._common", "synapsekit.testing.cassette",
    "synapsekit.observability.purpose", "synapsekit._loops", "synapsekit._redis",
    "synapsekit._sqlite", "synapsekit._logging",
)
#: Standard-library modules some paths use (dates of Retry-After, ids, money, suggestions,
#: jitter, data files, hashing, JSON): imported where used, not by the public names.
LAZY_STDLIB = (
    "email", "email.utils", "uuid", "decimal", "platform", "mimetypes", "tempfile", "shutil",
    "bz2", "lzma", "difflib", "random", "datetime", "calendar", "pathlib", "importlib.resources",
    "json", "hashlib", "urllib.parse", "ipaddress", "queue", "concurrent.futures.thread",
    "fnmatch", "sqlite3",
)


def _loaded_by(names: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after ``import asyncio`` and resolving
    ``names`` of synapsekit, minus those asyncio itself loaded."""
    code = (
        "import asyncio, json, sys\n"
        "before = set(sys.modules)\n"
        "import synapsekit\n"
        f"for name in {names!r}: getattr(synapsekit, name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return set(json.loads(out.stdout))


def _eager_class(name: str) -> bool:
    return any(PROVIDERS[p].class_name == name for p in EAGER)


@pytest.fixture(scope="module")
def every_name() -> set[str]:
    return _loaded_by(list(synapsekit.__all__))


@pytest.fixture(scope="module")
def lazy_names() -> set[str]:
    """Every public name but the classes of the providers still in :data:`EAGER`."""
    return _loaded_by([n for n in synapsekit.__all__ if not _eager_class(n)])


def test_the_public_names_import_no_provider_protocol(every_name: set[str]) -> None:
    prefix = "synapsekit.llm.providers."
    protocol = sorted(
        m for m in every_name
        if m.startswith(prefix) and m.count(".") == 4
        and m.split(".")[3] not in EAGER and m.split(".")[4] in PROTOCOL_PARTS
    )
    assert protocol == []
    # ... while every provider package is imported (each class was resolved).
    for spec in PROVIDERS.values():
        assert spec.module in every_name


def test_the_public_names_import_no_call_path_part(lazy_names: set[str]) -> None:
    assert sorted(m for m in CALL_PATH if m in lazy_names) == []


def test_the_public_names_import_no_stdlib_module_of_some_paths(lazy_names: set[str]) -> None:
    assert sorted(m for m in LAZY_STDLIB if m in lazy_names) == []


def test_the_checks_can_fail(lazy_names: set[str]) -> None:
    """The module sets are read from the child, not assumed: building an LLM loads its
    protocol and the call path, so the same probe sees them."""
    code = (
        "import json, sys\n"
        "from synapsekit import LLMConfig, OpenAILLM\n"
        "OpenAILLM(LLMConfig(model='gpt-4o-mini', api_key='sk-test'))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    built = set(json.loads(out.stdout))
    assert "synapsekit.llm.providers.openai_compat.connection" in built
    assert {"synapsekit.llm.ratelimit", "synapsekit.llm.connection"} <= built
    assert "synapsekit.llm.types" in lazy_names  # the probe does see the public modules
