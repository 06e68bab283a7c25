"""What ``RAG.add()`` reports: the whole ingest (:class:`IngestReport`) and each file's
progress (:class:`IngestProgress`).

Their own module, imported with the first ``add()``: ``from synapsekit import RAG`` does
not build these dataclasses. :mod:`synapsekit.rag.pipeline` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["IngestProgress", "IngestReport"]


@dataclass
class IngestReport:
    """What one ``add()`` did: sources added (and their passages), unchanged files
    skipped, files of a directory that could not be read (with why), sources removed
    because their files are gone, and passages given the vectors they lacked."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    passages: int = 0
    removed: list[str] = field(default_factory=list)
    embedded: int = 0


@dataclass(frozen=True)
class IngestProgress:
    """Passed to ``add(..., progress=callback)`` after each file: files done of the
    total, passages written so far, and the file just handled."""

    files_done: int
    files_total: int
    passages: int
    source: str
