"""Plugin providers as a user gets them: a real distribution (tests/plugin_pkg) installed
with pip into a directory of this test's own, and fresh Python processes that see its
``synapsekit.providers`` entry point through ``PYTHONPATH`` (the shared venv is never
changed). Checked: detection, make_llm, LLMConfig, the Router, the capabilities table and
the CLI's ``providers`` list, a real call through the plugin's class against the
OpenAI-protocol simulator, that nothing is read at import, and that broken or clashing
plugins are warned about and skipped while every built-in provider keeps working.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, text_stream
from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tests" / "plugin_pkg"


def _pip() -> list[str]:
    """A pip for this Python version: the test interpreter's own, else its base
    interpreter's (a venv made by uv has no pip; the package is pure Python, installed
    without dependencies into a directory of its own, so any pip of this version does)."""
    for python in dict.fromkeys((sys.executable, getattr(sys, "_base_executable", ""))):
        if python and subprocess.run(
            [python, "-m", "pip", "--version"], capture_output=True, timeout=60,
        ).returncode == 0:
            return [python, "-m", "pip"]
    pytest.fail("no pip for this Python: the plugin test installs a real package with it")


def _install(source: Path, target: Path) -> None:
    """``pip install`` a copy of ``source`` (pip builds in the tree it is given; the copy
    keeps tests/ clean) into ``target``, offline and without dependencies."""
    copy = target.parent / f"{source.name}-src"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [*_pip(), "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(copy)],
        check=True, capture_output=True, text=True, timeout=300,
    )


_BROKEN_PYPROJECT = """\
[build-system]
requires = []
build-backend = "_backend"
backend-path = ["."]

[project]
name = "broken-plugins"
version = "0.1.0"

[project.entry-points."synapsekit.providers"]
missing = "broken_plugins.missing:PROVIDER"
notaplugin = "broken_plugins:NOT_A_PLUGIN"
openai = "broken_plugins:CLASH"
acme = "broken_plugins:DUPLICATE"
badname = "broken_plugins:BAD_NAME"
badregex = "broken_plugins:BAD_REGEX"
sneaky = "broken_plugins:SNEAKY"
wrongclass = "broken_plugins:WRONG_CLASS"
reentrant = "broken_plugins.reentrant:PROVIDER"
classobj = "broken_plugins.classobj:PROVIDER"
"""

# A plugin that names its class itself rather than as "module:Class".
_CLASSOBJ_MODULE = """\
from acme_synapsekit.llm import AcmeLLM
from synapsekit.llm.plugins import ProviderPlugin


class ClassObjLLM(AcmeLLM):
    provider = "classobj"


PROVIDER = ProviderPlugin(name="classobj", llm=ClassObjLLM, sdk="openai")
"""

# A plugin whose import itself looks providers up while the entry points are being read.
_REENTRANT_MODULE = """\
from synapsekit.llm.plugins import ProviderPlugin
from synapsekit.llm.registry import detect_provider

SAW = detect_provider("reentrant-1")  # the plugins are not known yet: the default provider
PROVIDER = ProviderPlugin(name="reentrant", llm="acme_synapsekit.llm:AcmeLLM",
                          prefixes=("reentrant-",))
"""

_BROKEN_MODULE = """\
from synapsekit.llm.plugins import ProviderPlugin

NOT_A_PLUGIN = {"name": "dicty", "llm": "x:Y"}
CLASH = ProviderPlugin(name="openai", llm="acme_synapsekit.llm:AcmeLLM", prefixes=("gpt-",))
DUPLICATE = ProviderPlugin(name="acme", llm="acme_synapsekit.llm:AcmeLLM")
BAD_NAME = ProviderPlugin(name="Bad Name", llm="acme_synapsekit.llm:AcmeLLM")
BAD_REGEX = ProviderPlugin(name="badregex", llm="acme_synapsekit.llm:AcmeLLM", patterns=("(",))
SNEAKY = ProviderPlugin(name="sneaky", llm="broken_plugins:SneakyLLM",
                        prefixes=("claude-", "gpt-"))
WRONG_CLASS = ProviderPlugin(name="wrongclass", llm="broken_plugins:NotAnLLM")


class NotAnLLM:
    pass


def __getattr__(name):
    if name == "SneakyLLM":  # the class, imported only when the provider is used
        from acme_synapsekit.llm import AcmeLLM

        return type("SneakyLLM", (AcmeLLM,), {"provider": "sneaky"})
    raise AttributeError(name)
"""


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two install directories: the Acme plugin, and a distribution of broken ones."""
    base = tmp_path_factory.mktemp("plugins")
    good = base / "good" / "site"
    good.parent.mkdir()
    _install(PACKAGE, good)
    broken_src = base / "broken_plugins"
    (broken_src / "broken_plugins").mkdir(parents=True)
    shutil.copy(PACKAGE / "_backend.py", broken_src)
    (broken_src / "pyproject.toml").write_text(_BROKEN_PYPROJECT)
    (broken_src / "broken_plugins" / "__init__.py").write_text(_BROKEN_MODULE)
    (broken_src / "broken_plugins" / "reentrant.py").write_text(_REENTRANT_MODULE)
    (broken_src / "broken_plugins" / "classobj.py").write_text(_CLASSOBJ_MODULE)
    broken = base / "broken" / "site"
    broken.parent.mkdir()
    _install(broken_src, broken)
    return {"good": good, "broken": broken}


def _env(paths: list[Path], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), str(ROOT)])
    env.update(extra)
    return env


def _python(script: str, paths: list[Path], **extra: str) -> dict[str, object]:
    """Run ``script`` in a fresh interpreter; it prints one JSON object, returned here.
    Warnings are recorded by the script itself (``WARNINGS``), never printed."""
    prelude = textwrap.dedent("""\
        import json, sys, warnings
        warnings.simplefilter("always")
        _caught = warnings.catch_warnings(record=True)
        WARNINGS = _caught.__enter__()
        OUT = {}
    """)
    coda = textwrap.dedent("""\
        OUT["warnings"] = [f"{w.category.__name__}: {w.message}" for w in WARNINGS]
        print(json.dumps(OUT))
    """)
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script) + coda],
        capture_output=True, text=True, env=_env(paths, **extra), cwd=ROOT, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_entry_points_are_read_on_the_first_miss_only(sites: dict[str, Path]) -> None:
    out = _python("""
        import synapsekit, synapsekit.llm
        from synapsekit import make_llm
        from synapsekit.llm import registry
        OUT["after_import"] = registry._plugin_state is not None
        make_llm("claude-sonnet-4-6", api_key="k")  # a built-in rule matches
        make_llm("gpt-4o", api_key="k")  # no rule, but one of OpenAI's own models
        OUT["after_builtin"] = [registry._plugin_state is not None,
                                "synapsekit.llm.plugins" in sys.modules]
        OUT["len"] = len(registry.PROVIDERS)
        OUT["acme"] = registry.detect_provider("acme-large")
        OUT["after_miss"] = registry._plugin_state is not None
        OUT["class_imported"] = "acme_synapsekit.llm" in sys.modules
        OUT["len_after"] = len(registry.PROVIDERS)
    """, [sites["good"]])
    assert out == {
        "after_import": False, "after_builtin": [False, False], "len": 15,
        "acme": "acme",
        "after_miss": True, "class_imported": False, "len_after": 15, "warnings": [],
    }


def test_a_plugin_provider_works_everywhere_a_provider_does(
    sites: dict[str, Path], openai_sim: OpenAISimulator
) -> None:
    openai_sim.enqueue(
        text_stream(["Acme", " says", " hi"], prompt_tokens=7, model="acme-large"),
        text_stream(["Hi"], prompt_tokens=5, model="gpt-4o-mini"),
        text_stream(["Acme"], prompt_tokens=5, model="acme-large"),
    )
    out = _python("""
        from synapsekit import LLMConfig, make_llm, detect_provider
        from synapsekit.errors import MissingAPIKeyError
        from synapsekit.llm.registry import PROVIDERS, all_providers, capabilities_table
        from synapsekit.llm.router import Router

        OUT["detect"] = [detect_provider(m) for m in
                         ("acme-large", "ACME-small", "acme:gpt-4o", "gpt-4o", "claude-x")]
        spec = all_providers()["acme"]
        OUT["spec"] = [spec.plugin, spec.install, list(spec.env_vars), "acme" in PROVIDERS]
        llm = make_llm("acme-large")
        OUT["class"] = type(llm).__name__
        OUT["text"] = llm.generate_sync("Hello?")
        OUT["tokens"] = llm.tokens_used
        OUT["config"] = type(make_llm(LLMConfig(model="large", provider="acme"))).__name__
        router = Router(["gpt-4o-mini", "acme:acme-large"], strategy="round_robin")
        OUT["routed"] = sorted([router.generate_sync("a"), router.generate_sync("b")])
        OUT["caps"] = capabilities_table(plugins=True).splitlines()[-1]
        OUT["in_docs_table"] = "acme" in capabilities_table()
        import os
        del os.environ["ACME_API_KEY"], os.environ["ACME_BASE_URL"]  # at its own endpoint
        try:
            make_llm("acme-large")
        except MissingAPIKeyError as exc:
            OUT["no_key"] = str(exc)
    """, [sites["good"]], ACME_API_KEY=API_KEY, ACME_BASE_URL=openai_sim.url,
        OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=openai_sim.url)
    assert out.pop("warnings") == []
    assert out == {
        "detect": ["acme", "acme", "acme", "openai", "anthropic"],
        "spec": ["acme-synapsekit", 'pip install "acme-synapsekit"', ["ACME_API_KEY"], True],
        "class": "AcmeLLM",
        "text": "Acme says hi",
        "tokens": {"input": 7, "output": 3},
        "config": "AcmeLLM",
        "routed": ["Acme", "Hi"],
        "caps": "| `acme` | — | — | — | yes | `auto`, `none` | — | — | — "
                "| plugin acme-synapsekit; Acme: text and tools |",
        "in_docs_table": False,
        "no_key": "No API key for the 'acme' provider: pass api_key=... or set the "
                  "environment variable ACME_API_KEY.",
    }
    chats = [r for r in openai_sim.requests if r.path.endswith("/chat/completions")]
    assert [r.json()["model"] for r in chats] == ["acme-large", "gpt-4o-mini", "acme-large"]
    assert {r.headers["authorization"] for r in chats} == {f"Bearer {API_KEY}"}


def test_cli_lists_plugin_providers(sites: dict[str, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "synapsekit.cli", "providers"], capture_output=True, text=True,
        env=_env([sites["good"]]), cwd=ROOT, timeout=120,
    )
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "provider", "detected", "from", "API", "key", "from", "install", "installed", "from"
    ]
    acme = [line.split() for line in lines if line.startswith("acme ")]
    assert acme == [["acme", "acme-*", "ACME_API_KEY", "pip", "install", '"acme-synapsekit"',
                     "yes", "plugin", "acme-synapsekit"]]
    builtin = [line for line in lines[1:16]]
    assert [line.split()[0] for line in builtin][:2] == ["openai", "azure"]
    assert all(line.endswith("built-in") for line in builtin)


def test_broken_and_clashing_plugins_are_skipped_with_a_warning(
    sites: dict[str, Path],
) -> None:
    out = _python("""
        from synapsekit import make_llm, detect_provider
        from synapsekit.errors import ConfigError
        from synapsekit.llm.registry import all_providers

        OUT["providers"] = [n for n, s in all_providers().items() if s.plugin]
        OUT["owner"] = all_providers()["acme"].plugin
        OUT["openai"] = [type(make_llm("gpt-4o", api_key="k")).__module__,
                         all_providers()["openai"].plugin]
        OUT["detect"] = [detect_provider(m) for m in
                         ("claude-sonnet-4-6", "sneaky:claude-x", "gpt-4o", "acme-1",
                          "gpt-9-unheard-of")]
        OUT["sneaky"] = type(make_llm("sneaky:claude-x", api_key="k")).__name__
        try:
            make_llm("wrongclass:m", api_key="k")
        except ConfigError as exc:
            OUT["wrongclass"] = str(exc)
        OUT["builtin_after"] = type(make_llm("claude-haiku-4-5", api_key="k")).__name__
        import broken_plugins.reentrant
        OUT["reentrant"] = [broken_plugins.reentrant.SAW, detect_provider("reentrant-1")]
        OUT["classobj"] = type(make_llm("classobj:m", api_key="k")).__name__
    """, [sites["good"], sites["broken"]])
    where = "synapsekit provider plugin {} ({}) from broken-plugins"
    assert out.pop("warnings") == [
        "ProviderPluginWarning: " + where.format("'missing'", "broken_plugins.missing:PROVIDER")
        + " was not loaded: ModuleNotFoundError: No module named 'broken_plugins.missing'",
        "ProviderPluginWarning: " + where.format("'notaplugin'", "broken_plugins:NOT_A_PLUGIN")
        + " was not loaded: TypeError: the entry point must name a "
        "synapsekit.llm.plugins.ProviderPlugin, not dict",
        "ProviderPluginWarning: " + where.format("'openai'", "broken_plugins:CLASH")
        + " was refused: 'openai' is a built-in provider, which a plugin cannot replace "
        "(give the plugin another name)",
        "ProviderPluginWarning: " + where.format("'acme'", "broken_plugins:DUPLICATE")
        + " was refused: 'acme' is already registered by acme-synapsekit",
        "ProviderPluginWarning: " + where.format("'badname'", "broken_plugins:BAD_NAME")
        + " was not loaded: ValueError: name 'Bad Name' is not a lower-case provider name "
        "([a-z][a-z0-9_-]*)",
        "ProviderPluginWarning: " + where.format("'badregex'", "broken_plugins:BAD_REGEX")
        + " was not loaded: error: missing ), unterminated subpattern at position 0",
    ]
    assert out == {
        "providers": ["acme", "sneaky", "wrongclass", "reentrant", "classobj"],
        "owner": "acme-synapsekit",
        "openai": ["synapsekit.llm.providers.openai_compat", None],
        "detect": ["anthropic", "sneaky", "openai", "acme", "sneaky"],
        "sneaky": "SneakyLLM",
        "wrongclass": "provider plugin 'wrongclass' from broken-plugins: "
                      "broken_plugins:NotAnLLM is not a BaseLLM subclass",
        "builtin_after": "AnthropicLLM",
        "reentrant": ["openai", "reentrant"],
        "classobj": "ClassObjLLM",
    }


def test_the_docs_example_is_the_tested_package() -> None:
    """docs/plugins.md shows tests/plugin_pkg's files as they are (its pyproject with a
    standard build backend instead of the offline one), so the example cannot drift."""
    page = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name in ("__init__.py", "llm.py"):
        source = (PACKAGE / "acme_synapsekit" / name).read_text(encoding="utf-8")
        assert f"```python\n{source}```\n" in page, name
    project = (PACKAGE / "pyproject.toml").read_text(encoding="utf-8").split("[project]\n")[1]
    assert f"[project]\n{project}```\n" in page
