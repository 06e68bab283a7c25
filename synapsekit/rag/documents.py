"""Loading files into documents: the first step of ingestion.

Why this module: a knowledge base is built from whatever a user points at (a text, a
file, a directory of notes or a source tree), and each format needs a little care before
its text is worth splitting. HTML loses its scripts, styles and navigation and keeps its
headings as markdown headings, so the splitter sees the structure; a PDF becomes one
document per page, so a passage can cite its page; a directory is walked in a stable
order, skipping what is hidden, vendored or built, and reporting what it could not read.

The rules:

- Text is UTF-8 (a BOM is fine; UTF-16 with a BOM too). Anything else, or any NUL byte,
  is binary: an :class:`~synapsekit.errors.InvalidInputError` naming the file, never a
  guessed decoding that would index garbage. HTML may declare another charset.
- A file asked for by name fails loudly; inside a directory, an unreadable file is
  skipped and reported as ``(path, reason)``, and only a directory with nothing loadable
  fails.
- ``pypdf`` is imported when the first PDF is read, never when this module is imported.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from synapsekit.errors import InvalidInputError, MissingDependencyError, UnsupportedFileError

__all__ = [
    "CODE_SUFFIXES",
    "SKIPPED_DIRS",
    "SUPPORTED_SUFFIXES",
    "Document",
    "documents_hash",
    "iter_files",
    "load_file",
    "load_path",
    "source_kind",
    "text_document",
    "walk",
]

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
PROSE_SUFFIXES = frozenset({".txt", ".rst"}) | MARKDOWN_SUFFIXES
CODE_SUFFIXES: frozenset[str] = frozenset(
    {
        *(".py", ".js", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".kt", ".c", ".h"),
        *(".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".scala", ".sh", ".sql"),
        *(".toml", ".yaml", ".yml", ".json", ".ini", ".cfg"),
    }
)
SUPPORTED_SUFFIXES: frozenset[str] = PROSE_SUFFIXES | HTML_SUFFIXES | CODE_SUFFIXES | {".pdf"}
SKIPPED_DIRS: frozenset[str] = frozenset(
    {".git", "node_modules", "__pycache__", ".venv", "venv", "build", "dist"}
)

_SNIFF_BYTES = 8192
_NOT_UTF8 = "binary file (not UTF-8 text)"
_SUPPORTED_TEXT = ", ".join(sorted(SUPPORTED_SUFFIXES))


@dataclass(frozen=True, slots=True)
class Document:
    """One loaded text (a file, a PDF page, or a string given to ``add``), before splitting."""

    text: str
    source: str
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the text alone: the same text has the same hash wherever it lives."""
        return _sha256(self.text)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def documents_hash(documents: list[Document]) -> str:
    """One hash for the documents of one source (a PDF's pages), in order, with metadata.

    What the store records per source, so re-adding an unchanged file is a no-op.
    """
    digest = hashlib.sha256()
    for doc in documents:
        meta = repr(sorted(doc.metadata.items()))
        digest.update(f"{doc.content_hash}\0{meta}\0".encode())
    return digest.hexdigest()


def source_kind(source: str) -> str:
    """How a source is split: ``"code"``, ``"markdown"`` (also HTML) or ``"prose"``."""
    suffix = os.path.splitext(source)[1].lower()
    if suffix in CODE_SUFFIXES:
        return "code"
    if suffix in MARKDOWN_SUFFIXES or suffix in HTML_SUFFIXES:
        return "markdown"
    return "prose"


#: A file that cannot be loaded (the public type; ``reason`` is what a walk reports).
_Rejected = UnsupportedFileError


def _unsupported_hint() -> str:
    return f" Supported files: {_SUPPORTED_TEXT}."


def text_document(text: str, source: str | None = None) -> Document:
    """A document from a string; its source defaults to ``"text:<first 8 hex of its hash>"``."""
    text = _normalise(text)
    if not text.strip():
        raise InvalidInputError("Cannot add an empty text: it has nothing to index.")
    return Document(text, source or f"text:{_sha256(text)[:8]}")


def load_file(path: str | os.PathLike[str]) -> list[Document]:
    """The documents of one file: one per file, or one per page of a PDF (``{"page": n}``)."""
    file = Path(path)
    if not file.exists():
        raise InvalidInputError(f"{str(file)!r} does not exist.")
    if file.is_dir():
        raise InvalidInputError(f"{str(file)!r} is a directory: load it with load_path().")
    suffix = file.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"{suffix!r} files" if suffix else "files without a suffix"
        raise _Rejected(file, f"{kind} are not supported", hint=_unsupported_hint())
    if suffix == ".pdf":
        return _load_pdf(file)
    data = _read_bytes(file)
    if suffix in HTML_SUFFIXES:
        text, title = _html_to_text(_decode_html(file, data))
        return [_document(file, text, {"title": title} if title else {})]
    return [_document(file, _decode(file, data), {})]


def iter_files(path: str | os.PathLike[str]) -> list[Path]:
    """Every supported text file (or PDF) at or below ``path``, sorted.

    A file whose first 8 KiB hold a NUL byte or are not UTF-8 is binary and left out.

    Hidden files and directories and :data:`SKIPPED_DIRS` (``.git``, ``node_modules``,
    virtualenvs, build output) are never entered.
    """
    return _walk(_existing(path))[0]


def walk(path: str | os.PathLike[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """``(files, skipped)`` at or below ``path``: what :func:`iter_files` returns, and the
    files passed over with why (``[(path, reason)]``). A missing path is an
    InvalidInputError."""
    return _walk(_existing(path))


def load_path(
    path: str | os.PathLike[str],
) -> tuple[list[Document], list[tuple[str, str]]]:
    """Load a file or a directory: ``(documents, skipped)``, skipped as ``[(path, reason)]``.

    A file fails with :class:`InvalidInputError` as :func:`load_file` does; a directory
    skips what it cannot load and fails only when nothing in it is loadable.
    """
    root = _existing(path)
    if not root.is_dir():
        return load_file(root), []
    files, skipped = _walk(root)
    documents: list[Document] = []
    for file in files:
        try:
            documents.extend(load_file(file))
        except (_Rejected, MissingDependencyError) as exc:
            skipped.append((str(file), getattr(exc, "reason", str(exc))))
    if not documents:
        found = f" ({len(skipped)} skipped: {skipped[0][1]}, ...)" if skipped else ""
        raise InvalidInputError(
            f"{str(root)!r} contains no supported files with text{found}."
            f"{_unsupported_hint()}"
        )
    skipped.sort()
    return documents, skipped


# -- reading ----------------------------------------------------------------------------


def _existing(path: str | os.PathLike[str]) -> Path:
    root = Path(path)
    if not root.exists():
        raise InvalidInputError(f"{str(root)!r} does not exist.")
    return root


def _walk(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported text files below ``root`` and the files passed over, with why."""
    if not root.is_dir():
        return ([root] if root.suffix.lower() in SUPPORTED_SUFFIXES else []), []
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS]
        for name in names:
            if name.startswith("."):
                continue
            file = Path(folder, name)
            reason = _pass_over(file)
            if reason:
                skipped.append((str(file), reason))
            else:
                files.append(file)
    return sorted(files), skipped


def _pass_over(file: Path) -> str | None:
    """Why a file found in a directory is not loaded, or None to load it."""
    suffix = file.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return f"unsupported file type {suffix!r}" if suffix else "unsupported file type"
    if suffix == ".pdf":
        return None
    try:
        with file.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if _is_binary(head):
        return "binary file"
    if suffix in HTML_SUFFIXES or head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None  # HTML may declare its charset; UTF-16 is decoded when loaded
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return _NOT_UTF8
    return None


def _is_binary(data: bytes) -> bool:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\0" in data


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise _Rejected(file, f"unreadable: {exc.strerror or exc}") from exc


def _decode(file: Path, data: bytes) -> str:
    if _is_binary(data):
        raise _Rejected(file, "binary file", hint=_unsupported_hint())
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else None
    try:
        return data.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Rejected(file, _NOT_UTF8) from exc


_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _decode_html(file: Path, data: bytes) -> str:
    """UTF-8 first; else the charset the page declares, if Python knows it."""
    try:
        return _decode(file, data)
    except _Rejected:
        match = _CHARSET.search(data[:4096])
        if match is None or _is_binary(data):
            raise
        try:
            return data.decode(codecs.lookup(match.group(1).decode("ascii")).name)
        except (LookupError, UnicodeDecodeError):
            raise _Rejected(file, "binary file (not text in its declared charset)") from None


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "")


def _document(file: Path, text: str, metadata: dict[str, Any]) -> Document:
    text = _normalise(text)
    if not text.strip():
        raise _Rejected(file, "empty (no text to index)")
    return Document(text, str(file), metadata)


def _load_pdf(file: Path) -> list[Document]:
    try:
        import pypdf
        from pypdf.errors import FileNotDecryptedError, PyPdfError
    except ImportError as exc:
        raise MissingDependencyError("pypdf", "pdf", feature="Reading PDF files") from exc
    try:
        reader = pypdf.PdfReader(file)
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except FileNotDecryptedError as exc:
        raise _Rejected(file, "encrypted PDF (it needs a password)") from exc
    except (PyPdfError, OSError, ValueError, KeyError, TypeError) as exc:
        raise _Rejected(file, f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    extra = {"title": str(title)} if title else {}
    documents = [
        Document(_normalise(text), str(file), {**extra, "page": number})
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]
    if not documents:
        raise _Rejected(file, "no extractable text in the PDF (a scan without OCR?)")
    return documents


# -- HTML -------------------------------------------------------------------------------

_DROPPED = frozenset({"script", "style", "nav", "noscript", "template", "svg"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    {
        *("p", "div", "section", "article", "main", "header", "footer", "aside", "address"),
        *("blockquote", "figure", "figcaption", "ul", "ol", "dl", "dt", "dd", "hr", "pre"),
        *("table", "thead", "tbody", "tr", "form", "fieldset", "details", "summary"),
    }
)


class _TextExtractor(HTMLParser):
    """Visible text of a page, blocks as paragraphs, h1..h6 as markdown headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title: list[str] = []
        self._dropped = 0
        self._pre = 0
        self._in_title = False
        self._line_start = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _DROPPED:
            self._dropped += 1
        elif tag in _HEADINGS:
            self._break("\n\n")
            self._emit("#" * _HEADINGS[tag] + " ")
        elif tag == "li":
            self._break("\n")
            self._emit("- ")
        elif tag == "br":
            self._break("\n")
        elif tag in _BLOCKS:
            self._pre += tag == "pre"
            self._break("\n\n")
        elif tag in ("td", "th"):
            self._emit(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _DROPPED:
            self._dropped = max(0, self._dropped - 1)
        elif tag in _HEADINGS or tag in _BLOCKS:
            self._pre = max(0, self._pre - (tag == "pre"))
            self._break("\n\n")
        elif tag == "li":
            self._break("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._dropped:
            self._emit(data if self._pre else re.sub(r"\s+", " ", data))

    def _emit(self, text: str) -> None:
        after_space = self._line_start or (self.out and self.out[-1].endswith(" "))
        if after_space and not self._pre:
            text = text.lstrip(" ")
        if text:
            self.out.append(text)
            self._line_start = text.endswith("\n")

    def _break(self, newlines: str) -> None:
        """End the line (or paragraph) unless the output already does."""
        if not self.out:
            return
        have = len(self.out[-1]) - len(self.out[-1].rstrip("\n"))
        if have < len(newlines):
            self.out.append(newlines[have:])
        self._line_start = True


def _html_to_text(html: str) -> tuple[str, str]:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (line.rstrip() for line in "".join(parser.out).split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text + "\n", " ".join("".join(parser.title).split())
