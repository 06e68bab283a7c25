"""Splitting documents into passages: the unit that is embedded, retrieved and cited.

Why structure first: a passage that starts mid-sentence or mixes the end of one section
with the start of the next retrieves badly and reads badly in a prompt. So a document is
cut at its headings (markdown ``#`` and setext, reStructuredText under- and overlines),
each section at its paragraphs, a paragraph too long for one passage at its sentences,
a sentence at its words, and a word longer than a passage (a hash, base64) at ``size``
characters. The pieces are packed up to ``size`` characters, a full passage ending at
the coarsest boundary in its second half (a paragraph end rather than a sentence end),
and a heading stays with the text under it where both fit. Source code is cut at top-level
blocks, then blank lines, then lines, never at "sentences".

Every passage is an exact slice of its document: ``document.text[start:start + len(text)]``
with ``start`` in its metadata. Each passage after the first of a section begins with up
to ``overlap`` characters of the previous one's end, cut at a sentence (for code, a line)
start, else a word start, so a fact on a boundary is whole in at least one passage, and
a passage is never longer than ``size`` overlap included. Splitting is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synapsekit.errors import ConfigError
from synapsekit.rag.documents import Document, source_kind

__all__ = ["MIN_SIZE", "Passage", "check_sizes", "split"]

MIN_SIZE = 50

_Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrievable chunk; metadata holds the document's plus heading, start and index."""

    text: str
    source: str
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)


# Separators, coarsest first. Prose: paragraphs, then sentences and lines, then words.
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE = re.compile(
    r"\n\s*"
    r"|(?:(?<=[.!?\u2026])|(?<=[.!?\u2026][\"'\u201d\u2019)\]]))\s+(?![\sa-z])"
    r"|(?<=[\u3002\uff01\uff1f])(?=\S)"  # CJK full stop, exclamation and question marks
)
_WORD = re.compile(r"\s+")
_PROSE_LEVELS = (_PARAGRAPH, _SENTENCE, _WORD)
# Code: top-level blocks (a blank line, then a line at column 0), blank lines, lines, words.
_TOP_LEVEL = re.compile(r"\n(?:[ \t]*\n)+(?=\S)")
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")
_LINE = re.compile(r"\n(?:[ \t]*\n)*")
_CODE_LEVELS = (_TOP_LEVEL, _BLANK_LINES, _LINE, _WORD)


@dataclass(frozen=True, slots=True)
class _Style:
    """How one kind of document is cut."""

    levels: tuple[re.Pattern[str], ...]  # separators, coarsest first
    always: int  # how many levels are always applied (the rest only to oversized pieces)
    overlap_at: tuple[re.Pattern[str], ...]  # where an overlap may begin, best first
    keep_indent: bool


_PROSE = _Style(_PROSE_LEVELS, 2, (_SENTENCE, _WORD), keep_indent=False)
_CODE = _Style(_CODE_LEVELS, 3, (_LINE, _WORD), keep_indent=True)

# An atom: (start, end, strength of the boundary before it). Strength is how coarse the
# separator that cut it off was (paragraph > sentence > word > a forced cut at 0).
_Atom = tuple[int, int, int]


def split(document: Document, *, size: int = 1200, overlap: int = 200) -> list[Passage]:
    """Cut ``document`` into passages of at most ``size`` characters (see the module doc)."""
    check_sizes(size, overlap)
    text = document.text
    kind = source_kind(document.source)
    style = _CODE if kind == "code" else _PROSE
    if kind == "code":
        sections: list[_Section] = [(None, 0, 0, len(text))]
    else:
        sections = _sections(text, markdown=kind == "markdown")
    passages: list[Passage] = []
    for heading, start, body, end in sections:
        atoms = _section_atoms(text, style, size, (start, body, end))
        for a, b in _pack(text, atoms, size, overlap, style.overlap_at):
            metadata = dict(document.metadata)
            if heading:
                metadata["heading"] = heading
            metadata.update(start=a, index=len(passages))
            passages.append(Passage(text[a:b], document.source, metadata))
    return passages


def check_sizes(size: int, overlap: int) -> None:
    """ConfigError unless ``size`` >= MIN_SIZE and 0 <= ``overlap`` < ``size`` (whole numbers)."""
    for name, value in (("chunk size", size), ("chunk overlap", overlap)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be a whole number, got {value!r}.")
    if size < MIN_SIZE:
        raise ConfigError(f"chunk size must be at least {MIN_SIZE} characters, got {size}.")
    if overlap < 0 or overlap >= size:
        raise ConfigError(
            f"chunk overlap must be between 0 and the chunk size ({size}) exclusive, "
            f"got {overlap}."
        )


# -- cutting ----------------------------------------------------------------------------


def _section_atoms(
    text: str, style: _Style, size: int, section: tuple[int, int, int]
) -> list[_Atom]:
    """The heading lines as one atom (when they fit), then the body's atoms."""
    start, body, end = section
    strongest = len(style.levels) + 1
    heading = _trim(text, (start, body), style.keep_indent)
    if heading is None or heading[1] - heading[0] > size:
        return _atoms(text, (start, end), style, size, 0, strongest)
    return [(*heading, strongest), *_atoms(text, (body, end), style, size, 0, strongest)]


def _trim(text: str, span: _Span, keep_indent: bool) -> _Span | None:
    """``span`` without surrounding whitespace (code keeps its first line's indent)."""
    a, b = span
    first = a
    while first < b and text[first].isspace():
        first += 1
    if first == b:
        return None
    while text[b - 1].isspace():
        b -= 1
    if keep_indent:
        first = max(text.rfind("\n", a, first) + 1, a)
    return first, b


def _pieces(text: str, span: _Span, separator: re.Pattern[str], keep_indent: bool) -> list[_Span]:
    pieces: list[_Span] = []
    pos = span[0]
    for match in separator.finditer(text, span[0], span[1]):
        pieces.append((pos, match.start()))
        pos = match.end()
    pieces.append((pos, span[1]))
    trimmed = (_trim(text, piece, keep_indent) for piece in pieces)
    return [piece for piece in trimmed if piece is not None]


def _atoms(
    text: str, span: _Span, style: _Style, size: int, level: int, strength: int
) -> list[_Atom]:
    """``span`` cut at ``style.levels[level:]``: always at the first ``style.always``
    levels, at finer ones only where a piece is still longer than ``size``."""
    trimmed = _trim(text, span, style.keep_indent)
    if trimmed is None:
        return []
    a, b = trimmed
    if b - a <= size and level >= style.always:
        return [(a, b, strength)]
    if level == len(style.levels):  # one "word" longer than a passage
        return [(i, min(i + size, b), strength if i == a else 0) for i in range(a, b, size)]
    pieces = _pieces(text, trimmed, style.levels[level], style.keep_indent)
    coarseness = len(style.levels) - level
    atoms: list[_Atom] = []
    for n, piece in enumerate(pieces):
        atoms.extend(_atoms(text, piece, style, size, level + 1, coarseness if n else strength))
    return atoms


def _pack(
    text: str,
    atoms: Sequence[_Atom],
    size: int,
    overlap: int,
    overlap_at: Sequence[re.Pattern[str]],
) -> list[_Span]:
    """Consecutive atoms packed into spans of at most ``size`` characters.

    A full chunk ends at the coarsest boundary in its second half (a paragraph rather
    than a sentence), so passages follow the text's structure without getting small.
    """
    chunks: list[_Span] = []
    first = 0
    start = atoms[0][0] if atoms else 0
    while first < len(atoms):
        last = first
        while last + 1 < len(atoms) and atoms[last + 1][1] - start <= size:
            last += 1
        if last + 1 == len(atoms):
            chunks.append((start, atoms[last][1]))
            break
        last = _best_cut(atoms, first, last, start + size // 2)
        chunks.append((start, atoms[last][1]))
        following = atoms[last + 1]
        start = (
            _overlap_start(text, chunks[-1], following[1], size, overlap, overlap_at)
            or following[0]
        )
        first = last + 1
    return chunks


def _best_cut(atoms: Sequence[_Atom], first: int, last: int, halfway: int) -> int:
    """The atom to end a chunk with: the latest one before the coarsest boundary among
    those ending past ``halfway``; ``last`` when none does."""
    best = last
    for k in range(last - 1, first - 1, -1):
        if atoms[k][1] < halfway:
            break
        if atoms[k + 1][2] > atoms[best + 1][2]:
            best = k
    return best


def _overlap_start(
    text: str,
    previous: _Span,
    new_end: int,
    size: int,
    overlap: int,
    overlap_at: Sequence[re.Pattern[str]],
) -> int | None:
    """The earliest boundary in the previous chunk's last ``overlap`` characters that
    still lets the new chunk (up to ``new_end``) fit in ``size``; None for no overlap."""
    prev_start, prev_end = previous
    lowest = max(prev_end - overlap, prev_start + 1, new_end - size)
    if overlap == 0 or lowest >= prev_end:
        return None
    for boundary in overlap_at:
        for match in boundary.finditer(text, prev_start, prev_end):
            if lowest <= match.end() < prev_end:
                return match.end()
    return None


# -- headings ---------------------------------------------------------------------------

_ATX = re.compile(r" {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_ADORNMENT = re.compile(r"([=\-~^*+#\"])\1{2,}[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True, slots=True)
class _Heading:
    start: int  # where the heading (its overline, if any) begins
    body: int  # where the text under it begins
    level: int
    title: str


# (heading path "A > B" or None, start, start of the text under the heading, end)
_Section = tuple[str | None, int, int, int]


def _sections(text: str, *, markdown: bool) -> list[_Section]:
    """The sections covering ``text``, in order; a heading with no text of its own
    (``# A`` right above ``## B``) joins the next section."""
    headings = _headings(text, markdown=markdown)
    if not headings:
        return [(None, 0, 0, len(text))]
    ends = [h.start for h in headings[1:]] + [len(text)]
    sections: list[_Section] = []
    if text[: headings[0].start].strip():
        sections.append((None, 0, 0, headings[0].start))
    stack: list[_Heading] = []
    pending: int | None = None
    for heading, end in zip(headings, ends, strict=True):
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        start = heading.start if pending is None else pending
        if end != len(text) and not text[heading.body : end].strip():
            pending = start
            continue
        sections.append((" > ".join(h.title for h in stack), start, heading.body, end))
        pending = None
    return sections


def _headings(text: str, *, markdown: bool) -> list[_Heading]:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    offsets[-1] = len(text)  # the last line has no newline after it
    styles: dict[tuple[str, bool], int] = {}
    headings: list[_Heading] = []
    fence: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
        elif fence is None:
            atx = _ATX.match(line)
            if atx:
                title = atx.group(2).strip()
                headings.append(_Heading(offsets[i], offsets[i + 1], len(atx.group(1)), title))
            elif i + 1 < len(lines) and _underlined(lines, i, markdown):
                char = lines[i + 1][0]
                overlined = i > 0 and _ADORNMENT.match(lines[i - 1]) is not None
                if markdown:
                    level = 1 if char == "=" else 2
                else:
                    level = styles.setdefault((char, overlined), len(styles) + 1)
                begin = offsets[i - 1] if overlined else offsets[i]
                headings.append(_Heading(begin, offsets[i + 2], level, lines[i].strip()))
                i += 1
        i += 1
    return headings


def _underlined(lines: Sequence[str], i: int, markdown: bool) -> bool:
    """Whether line ``i`` is a setext / reStructuredText title underlined by line i+1."""
    title, under = lines[i], lines[i + 1]
    adornment = _ADORNMENT.match(under)
    if adornment is None or not title.strip() or title.startswith("    "):
        return False
    if _ADORNMENT.match(title):
        return False
    char = adornment.group(1)
    if markdown:
        if char not in "=-":
            return False
    elif len(under.rstrip()) < len(title.strip()):
        return False
    if i == 0 or not lines[i - 1].strip():
        return True
    over = lines[i - 1].rstrip()
    return over == under.rstrip() or (
        _ADORNMENT.match(over) is not None and over[0] == char and len(over) >= len(title)
    )
