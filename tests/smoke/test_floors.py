"""ci/floors.txt (the constraints of CI's floors run) says what pyproject.toml's extras allow.

If a bound in pyproject.toml changes, this fails until ``python ci/floors.py > ci/floors.txt``
is run, so the floors run always tests the lowest versions users can get. Standard library only.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _floors_module():  # type: ignore[no-untyped-def]
    if sys.version_info < (3, 11):  # ci/floors.py reads pyproject.toml with tomllib
        pytest.skip("ci/floors.py needs Python 3.11+ (tomllib); CI runs 3.11")
    spec = importlib.util.spec_from_file_location("ci_floors", ROOT / "ci" / "floors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_floors_file_matches_pyproject() -> None:
    floors = _floors_module()
    assert (ROOT / "ci" / "floors.txt").read_text() == floors.render(floors.floors()), (
        "ci/floors.txt is out of date: run `python ci/floors.py > ci/floors.txt`"
    )


def test_every_user_facing_requirement_has_a_floor(tmp_path: Path) -> None:
    floors = _floors_module()
    pins = floors.floors()
    for sdk in ("openai", "anthropic", "google-genai", "cohere", "mistralai", "boto3", "ollama"):
        assert sdk in pins
    assert pins["botocore"] == pins["boto3"]
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project.optional-dependencies]\nx = ["openai"]\ndev = ["ruff"]\n')
    with pytest.raises(ValueError, match="plain `>=` floor"):
        floors.floors(bad)
    bad.write_text('[project.optional-dependencies]\nx = ["openai>=1"]\ny = ["openai>=2"]\n')
    with pytest.raises(ValueError, match="two different floors"):
        floors.floors(bad)
