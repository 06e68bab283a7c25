"""Parameter descriptions from a ``@tool`` function's docstring (Google, NumPy or Sphinx).

Its own module because only :meth:`synapsekit.llm.tools.Tool.from_function` reads
docstrings: ``from synapsekit import Tool`` does not compile these patterns.
"""

from __future__ import annotations

import re

__all__ = ["Docstring"]

_GOOGLE = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):\s*$")
_GOOGLE_END = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")  # Returns:, Raises:, Examples:, ...
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_RULE = re.compile(r"^-{3,}\s*$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(?::.*)?$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_SPHINX_FIELD = re.compile(r"^:\w+")


class Docstring:
    """A docstring's summary (first paragraph, lines joined) and per-parameter
    descriptions, from a Google, NumPy or Sphinx style section."""

    def __init__(self, text: str) -> None:
        lines = text.splitlines()
        self.params: dict[str, str] = {}
        summary: list[str] = []
        for i, line in enumerate(lines):
            stripped = line.strip()
            if not stripped or _starts_section(lines, i):
                break
            summary.append(stripped)
        self.summary = " ".join(summary)
        self._google(lines)
        self._numpy(lines)
        self._sphinx(lines)

    def _add(self, name: str | None, parts: list[str]) -> None:
        if name and parts and name not in self.params:
            self.params[name] = " ".join(p for p in parts if p)

    def _google(self, lines: list[str]) -> None:
        i = 0
        while i < len(lines):
            if not _GOOGLE.match(lines[i].strip()):
                i += 1
                continue
            base = _indent(lines[i])
            item_indent: int | None = None
            name: str | None = None
            parts: list[str] = []
            i += 1
            while i < len(lines):
                line = lines[i]
                stripped = line.strip()
                if stripped and _indent(line) <= base:
                    break  # dedented: the section is over (e.g. "Returns:")
                if stripped:
                    if item_indent is None:
                        item_indent = _indent(line)
                    match = _GOOGLE_ITEM.match(stripped)
                    if _indent(line) <= item_indent and match:
                        self._add(name, parts)
                        name, parts = match.group(1), [match.group(2).strip()]
                    elif name:
                        parts.append(stripped)
                i += 1
            self._add(name, parts)

    def _numpy(self, lines: list[str]) -> None:
        for i in range(len(lines) - 1):
            if lines[i].strip() not in ("Parameters", "Other Parameters") or not (
                _NUMPY_RULE.match(lines[i + 1].strip())
            ):
                continue
            base = _indent(lines[i])
            name: str | None = None
            parts: list[str] = []
            j = i + 2
            while j < len(lines):
                line, stripped = lines[j], lines[j].strip()
                if j + 1 < len(lines) and stripped and _NUMPY_RULE.match(lines[j + 1].strip()):
                    break  # the next section's heading
                if stripped and _indent(line) <= base:
                    match = _NUMPY_ITEM.match(stripped.split(",")[0].strip())
                    self._add(name, parts)
                    name, parts = (match.group(1) if match else None), []
                elif stripped and name:
                    parts.append(stripped)
                j += 1
            self._add(name, parts)

    def _sphinx(self, lines: list[str]) -> None:
        name: str | None = None
        parts: list[str] = []
        for line in lines:
            stripped = line.strip()
            match = _SPHINX.match(stripped)
            if match:
                self._add(name, parts)
                name, parts = match.group(1), [match.group(2).strip()]
            elif _SPHINX_FIELD.match(stripped) or not stripped:
                self._add(name, parts)
                name, parts = None, []
            elif name:
                parts.append(stripped)
        self._add(name, parts)


def _starts_section(lines: list[str], i: int) -> bool:
    stripped = lines[i].strip()
    if _GOOGLE.match(stripped) or _GOOGLE_END.match(stripped) or _SPHINX_FIELD.match(stripped):
        return True
    return i + 1 < len(lines) and bool(_NUMPY_RULE.match(lines[i + 1].strip()))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
