"""A build backend of a few lines, in the package's own tree (PEP 517 ``backend-path``).

Why not setuptools or hatchling: the test installs this package with
``pip install --no-build-isolation`` so that nothing is downloaded, and then the backend
must already be importable; this one needs only the standard library. It writes a plain
pure-Python wheel: the package directories next to this file, and a ``.dist-info`` with
the name, version, dependencies and entry points from pyproject.toml.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _metadata(project: dict[str, Any]) -> dict[str, str]:
    name, version = project["name"], project["version"]
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", ())]
    points = []
    for group, entries in project.get("entry-points", {}).items():
        points.append(f"[{group}]")
        points += [f"{key} = {value}" for key, value in entries.items()]
    return {
        "METADATA": "\n".join(lines) + "\n",
        "WHEEL": "Wheel-Version: 1.0\nGenerator: _backend\nRoot-Is-Purelib: true\n"
                 "Tag: py3-none-any\n",
        "entry_points.txt": "\n".join(points) + "\n",
    }


def _dist_info(project: dict[str, Any]) -> str:
    return f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Any = None
) -> str:
    project = _project()
    target = Path(metadata_directory) / _dist_info(project)
    target.mkdir(parents=True, exist_ok=True)
    for name, text in _metadata(project).items():
        (target / name).write_text(text)
    return target.name


def build_wheel(
    wheel_directory: str, config_settings: Any = None, metadata_directory: Any = None
) -> str:
    project = _project()
    info = _dist_info(project)
    files: dict[str, bytes] = {}
    for package in sorted(p.parent for p in ROOT.glob("*/__init__.py")):
        for path in sorted(package.rglob("*.py")):
            files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    for name, text in _metadata(project).items():
        files[f"{info}/{name}"] = text.encode()
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = f"{info.removesuffix('.dist-info')}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def build_sdist(sdist_directory: str, config_settings: Any = None) -> str:
    raise NotImplementedError("this test package is installed from its directory only")
