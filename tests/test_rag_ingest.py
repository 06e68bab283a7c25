"""Ingestion: loaders on real files, the directory walk, and the splitter's guarantees."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from synapsekit.errors import ConfigError, InvalidInputError, MissingDependencyError
from synapsekit.rag.documents import (
    SUPPORTED_SUFFIXES,
    Document,
    documents_hash,
    iter_files,
    load_file,
    load_path,
    source_kind,
    text_document,
)
from synapsekit.rag.splitting import Passage, split

# -- helpers ----------------------------------------------------------------------------


def make_pdf(pages: list[str]) -> bytes:
    """A minimal, valid PDF with one Helvetica text line per page (hand-written objects)."""
    count = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode() if text else b""
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def check_passages(document: Document, passages: list[Passage], size: int, overlap: int) -> None:
    """Every guarantee of split(): exact slices, sizes, overlaps, nothing lost."""
    text = document.text
    remainders = []
    previous: Passage | None = None
    for index, passage in enumerate(passages):
        start = passage.metadata["start"]
        assert passage.metadata["index"] == index
        assert passage.source == document.source
        assert passage.text.strip()
        assert text[start : start + len(passage.text)] == passage.text
        assert len(passage.text) <= size
        shared = 0
        if previous is not None:
            previous_end = previous.metadata["start"] + len(previous.text)
            shared = max(0, previous_end - start)
            if shared:
                assert shared <= overlap
                assert previous.metadata.get("heading") == passage.metadata.get("heading")
                assert passage.text.startswith(previous.text[-shared:])
            else:
                assert not text[previous_end:start].strip()  # only whitespace between
        remainders.append(passage.text[shared:])
        previous = passage
    # joined passages minus their overlaps reproduce the text (up to whitespace)
    assert re.sub(r"\s", "", "".join(remainders)) == re.sub(r"\s", "", text)


WORDS = [
    *("the", "store", "keeps", "passages", "in", "sqlite", "while", "numpy", "searches"),
    *("vectors", "and", "a", "reader", "asks", "questions", "about", "retrieval", "ranking"),
    *("embeddings", "tokens", "latency", "budgets", "e.g.", "Dr.", "Smith"),
]


def generated_text(seed: int, chars: int) -> str:
    rng = random.Random(seed)
    paragraphs: list[str] = []
    total = 0
    while total < chars:
        sentences = []
        for _ in range(rng.randint(1, 8)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 25))]
            sentences.append(" ".join(words).capitalize() + rng.choice(".!?."))
        paragraph = " ".join(sentences)
        if rng.random() < 0.1:
            paragraph = "#" * rng.randint(1, 3) + " " + sentences[0].rstrip(".!?")
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:chars]


# -- documents --------------------------------------------------------------------------


def test_text_document_and_hashes() -> None:
    doc = text_document("Some text.\r\nMore.")
    assert doc.text == "Some text.\nMore."
    digest = hashlib.sha256(b"Some text.\nMore.").hexdigest()
    assert doc.content_hash == digest
    assert doc.source == f"text:{digest[:8]}"
    assert dict(doc.metadata) == {}
    assert text_document("x y", source="notes").source == "notes"
    with pytest.raises(InvalidInputError, match="empty text"):
        text_document(" \n\t ")
    page1 = Document("a", "f.pdf", {"page": 1})
    page2 = Document("b", "f.pdf", {"page": 2})
    assert documents_hash([page1, page2]) == documents_hash([page1, page2])
    assert documents_hash([page1, page2]) != documents_hash([page1, Document("c", "f.pdf")])
    assert documents_hash([page1]) != documents_hash([Document("a", "f.pdf", {"page": 2})])


def test_load_text_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfHello \xc3\xa9t\xc3\xa9.\r\nLine two.\r\n")
    (tmp_path / "b.md").write_text("# Title\n\nBody.\n", encoding="utf-8")
    (tmp_path / "c.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    (tmp_path / "d.rst").write_bytes("Ünïcode\n=======\n".encode("utf-16"))
    assert load_file(tmp_path / "a.txt") == [
        Document("Hello été.\nLine two.\n", str(tmp_path / "a.txt"), {})
    ]
    assert load_file(str(tmp_path / "b.md"))[0].text == "# Title\n\nBody.\n"
    assert load_file(tmp_path / "c.py")[0].text == "def f():\n    return 1\n"
    assert load_file(tmp_path / "d.rst")[0].text == "Ünïcode\n=======\n"
    assert load_path(tmp_path / "b.md") == (load_file(tmp_path / "b.md"), [])


def test_source_kinds_and_suffixes() -> None:
    assert {".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".py", ".go"} <= (
        SUPPORTED_SUFFIXES
    )
    assert source_kind("/x/a.PY") == "code"
    assert source_kind("a.yaml") == "code"
    assert source_kind("a.md") == "markdown"
    assert source_kind("a.html") == "markdown"
    assert source_kind("a.rst") == "prose"
    assert source_kind("text:0123abcd") == "prose"


def test_pdf_one_document_per_page(tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(make_pdf(["Alpha page one.", "", "Gamma page three."]))
    docs = load_file(pdf)
    assert [(d.text, d.source, dict(d.metadata)) for d in docs] == [
        ("Alpha page one.", str(pdf), {"page": 1}),
        ("Gamma page three.", str(pdf), {"page": 3}),
    ]
    passages = split(docs[1])
    assert [(p.text, dict(p.metadata)) for p in passages] == [
        ("Gamma page three.", {"page": 3, "start": 0, "index": 0})
    ]


def test_pdf_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    with pytest.raises(InvalidInputError, match=r"broken\.pdf.*not a readable PDF"):
        load_file(broken)
    blank = tmp_path / "blank.pdf"
    blank.write_bytes(make_pdf(["", ""]))
    with pytest.raises(InvalidInputError, match="no extractable text"):
        load_file(blank)
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if pypdf were not installed
    with pytest.raises(MissingDependencyError, match=r"synapsekit\[pdf\]"):
        load_file(blank)


HTML = """<!doctype html>
<html><head><title>My   Page</title>
<style>body { color: red }</style><script>var secret = "do not index";</script></head>
<body><nav><a href="/">Home</a> <a href="/menu">Menu</a></nav>
<h1>Main  Title</h1>
<p>First para &amp; more
   text.</p>
<h2>Sub <em>section</em></h2><p>Second para.</p>
<ul><li>one</li><li>two</li></ul>
<pre>code  line
  indented</pre>
<noscript>enable js</noscript>
</body></html>
"""


def test_html_keeps_text_and_headings(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(HTML, encoding="utf-8")
    [doc] = load_file(page)
    assert doc.text == (
        "# Main Title\n\nFirst para & more text.\n\n## Sub section\n\nSecond para.\n\n"
        "- one\n- two\n\ncode  line\n  indented\n"
    )
    assert dict(doc.metadata) == {"title": "My Page"}
    passages = split(doc, size=60, overlap=0)
    assert [(p.text, p.metadata["heading"]) for p in passages] == [
        ("# Main Title\n\nFirst para & more text.", "Main Title"),
        ("## Sub section\n\nSecond para.\n\n- one\n- two", "Main Title > Sub section"),
        ("code  line\n  indented", "Main Title > Sub section"),
    ]


def test_html_declared_charset(tmp_path: Path) -> None:
    page = tmp_path / "old.htm"
    page.write_bytes(b'<meta charset="iso-8859-1"><p>caf\xe9</p>')
    assert load_file(page)[0].text == "café\n"


# -- directory walk ---------------------------------------------------------------------


def build_tree(root: Path) -> None:
    files = {
        "b.md": "# B\n\nbee\n",
        "a.txt": "ay\n",
        "page.html": "<h1>Page</h1><p>html text</p>",
        "sub/c.py": "print('c')\n",
        "sub/deeper/d.rst": "dee\n",
        ".hidden.txt": "hidden\n",
        ".git/HEAD.txt": "git\n",
        ".config/x.md": "hidden dir\n",
        "node_modules/pkg/index.js": "module\n",
        "__pycache__/m.py": "cache\n",
        ".venv/lib/site.py": "venv\n",
        "venv/lib/site.py": "venv\n",
        "build/out.txt": "built\n",
        "dist/out.txt": "dist\n",
        "empty.md": "  \n\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    (root / "blob.txt").write_bytes(b"text\0with nul")
    (root / "latin.txt").write_bytes(b"caf\xe9\n")


def test_iter_files_sorted_and_skipping(tmp_path: Path) -> None:
    build_tree(tmp_path)
    assert iter_files(tmp_path) == [
        tmp_path / "a.txt",
        tmp_path / "b.md",
        tmp_path / "empty.md",
        tmp_path / "page.html",
        tmp_path / "sub" / "c.py",
        tmp_path / "sub" / "deeper" / "d.rst",
    ]
    assert iter_files(tmp_path / "a.txt") == [tmp_path / "a.txt"]


def test_load_path_directory_reports_skipped(tmp_path: Path) -> None:
    build_tree(tmp_path)
    docs, skipped = load_path(tmp_path)
    assert [(Path(d.source).relative_to(tmp_path).as_posix(), d.text) for d in docs] == [
        ("a.txt", "ay\n"),
        ("b.md", "# B\n\nbee\n"),
        ("page.html", "# Page\n\nhtml text\n"),
        ("sub/c.py", "print('c')\n"),
        ("sub/deeper/d.rst", "dee\n"),
    ]
    assert [(Path(p).name, reason) for p, reason in skipped] == [
        ("blob.txt", "binary file"),
        ("empty.md", "empty (no text to index)"),
        ("img.png", "unsupported file type '.png'"),
        ("latin.txt", "binary file (not UTF-8 text)"),
    ]


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_path(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_file(tmp_path / "missing.txt")
    with pytest.raises(InvalidInputError, match="does not exist"):
        iter_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="contains no supported files"):
        load_path(tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="load_path"):
        load_file(tmp_path / "empty")
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(b"\x89PNG")
    with pytest.raises(InvalidInputError, match=r"no supported files.*1 skipped.*'\.png'"):
        load_path(tmp_path / "pics")


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(InvalidInputError, match=r"blob\.txt'?: binary file\. Supported"):
        load_path(tmp_path / "blob.txt")
    (tmp_path / "latin.md").write_bytes(b"caf\xe9")
    with pytest.raises(InvalidInputError, match=r"latin\.md'?: binary file \(not UTF-8"):
        load_file(tmp_path / "latin.md")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(InvalidInputError, match=r"'\.jpg' files are not supported.*\.md"):
        load_file(tmp_path / "photo.jpg")
    (tmp_path / "Makefile").write_text("all:\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="files without a suffix are not supported"):
        load_file(tmp_path / "Makefile")
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="empty"):
        load_file(tmp_path / "empty.txt")


def test_import_loads_no_pypdf() -> None:
    code = (
        "import sys, synapsekit.rag.documents, synapsekit.rag.splitting\n"
        "assert 'pypdf' not in sys.modules and 'numpy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- splitting --------------------------------------------------------------------------


def test_bad_sizes() -> None:
    doc = text_document("text")
    for size, overlap in ((49, 0), (100, -1), (100, 100), (100, 150)):
        with pytest.raises(ConfigError):
            split(doc, size=size, overlap=overlap)
    assert [p.text for p in split(doc, size=50, overlap=49)] == ["text"]


MARKDOWN = """Preamble line.

# Guide

Intro paragraph. It has two sentences.

## Install
### Pip

Run pip install.

```bash
# a comment, not a heading
pip install x
```

Usage
-----

Usage text.
"""


def test_markdown_headings_in_metadata() -> None:
    doc = Document(MARKDOWN, "/docs/guide.md", {})
    passages = split(doc, size=200, overlap=0)
    assert [(p.text, p.metadata.get("heading"), p.metadata["start"]) for p in passages] == [
        ("Preamble line.", None, 0),
        ("# Guide\n\nIntro paragraph. It has two sentences.", "Guide", 16),
        (
            "## Install\n### Pip\n\nRun pip install.\n\n```bash\n# a comment, not a heading\n"
            "pip install x\n```",
            "Guide > Install > Pip",
            65,
        ),
        ("Usage\n-----\n\nUsage text.", "Guide > Usage", 157),
    ]
    check_passages(doc, passages, 200, 0)


def test_rst_underlines_levelled_by_first_use() -> None:
    rst = (
        "=====\nTitle\n=====\n\nSection one\n===========\n\nBody one.\n\n"
        "Sub part\n--------\n\nBody two.\n\nSection two\n===========\n\nBody three.\n"
    )
    passages = split(Document(rst, "manual.rst"), size=100, overlap=0)
    assert [(p.text, p.metadata["heading"]) for p in passages] == [
        ("=====\nTitle\n=====\n\nSection one\n===========\n\nBody one.", "Title > Section one"),
        ("Sub part\n--------\n\nBody two.", "Title > Section one > Sub part"),
        ("Section two\n===========\n\nBody three.", "Title > Section two"),
    ]
    # in plain text, a short dashed line under a longer line is not a heading
    assert "heading" not in split(Document("A long line\n---\n", "n.txt"))[0].metadata


def test_overlap_exact_text() -> None:
    sentences = [f"Sentence number {n:02d}." for n in range(1, 21)]  # 19 chars each
    doc = text_document(" ".join(sentences))
    passages = split(doc, size=100, overlap=45)
    assert [p.text for p in passages[:3]] == [
        " ".join(sentences[0:5]),
        " ".join(sentences[3:8]),
        " ".join(sentences[6:11]),
    ]
    assert [p.metadata["start"] for p in passages[:3]] == [0, 60, 120]
    check_passages(doc, passages, 100, 45)


def test_overlap_falls_back_to_a_word_start() -> None:
    long_sentence = " ".join(f"w{n:03d}" for n in range(60)) + "."  # 299 chars, one sentence
    doc = text_document(long_sentence)
    passages = split(doc, size=100, overlap=12)
    assert passages[0].text == " ".join(f"w{n:03d}" for n in range(20))
    assert passages[1].text.startswith("w018 w019 w020")  # 9 chars of overlap, at a word
    check_passages(doc, passages, 100, 12)


def test_sentences_and_paragraphs_respected() -> None:
    rng = random.Random(7)
    paragraphs = [
        " ".join(f"Paragraph {p} sentence {s} says {rng.choice(WORDS)}." for s in range(8))
        for p in range(30)
    ]
    doc = text_document("\n\n".join(paragraphs))
    passages = split(doc, size=1200, overlap=200)
    for passage in passages:
        end = passage.metadata["start"] + len(passage.text)
        assert passage.text.endswith(".")
        assert doc.text[end : end + 2] in ("\n\n", "")  # whole paragraphs when they fit
    check_passages(doc, passages, 1200, 200)
    small = split(doc, size=150, overlap=60)
    for passage in small:
        assert passage.text.endswith(".")
        assert re.match(r"Paragraph \d+ sentence \d", passage.text)  # starts at a sentence
    check_passages(doc, small, 150, 60)


def test_word_longer_than_size_is_cut() -> None:
    doc = text_document("Short start. " + "x" * 250 + " end.")
    passages = split(doc, size=100, overlap=20)
    assert [p.text for p in passages] == ["Short start.", "x" * 100, "x" * 100, "x" * 50 + " end."]
    check_passages(doc, passages, 100, 20)


CODE = '''"""Module docstring. It has sentences. They are not split."""

import os


def first(x):
    total = x + 1

    return total


@decorator
def second(y):
    return y * 2


class Third:
    def method(self):
        return os.sep
'''


def test_code_split_at_top_level_blocks() -> None:
    doc = Document(CODE, "pkg/mod.py", {})
    passages = split(doc, size=80, overlap=0)
    assert [p.text for p in passages] == [
        '"""Module docstring. It has sentences. They are not split."""\n\nimport os',
        "def first(x):\n    total = x + 1\n\n    return total",
        "@decorator\ndef second(y):\n    return y * 2",
        "class Third:\n    def method(self):\n        return os.sep",
    ]
    assert all("heading" not in p.metadata for p in passages)
    overlapping = split(doc, size=100, overlap=40)
    assert overlapping[2].text == (
        "    total = x + 1\n\n    return total\n\n\n@decorator\ndef second(y):\n    return y * 2"
    )
    assert all(CODE[p.metadata["start"] - 1] == "\n" for p in overlapping[1:])  # line starts
    check_passages(doc, overlapping, 100, 40)


def test_100kb_text_split_deterministically() -> None:
    text = generated_text(seed=1, chars=100_000)
    assert len(text) == 100_000
    doc = Document(text, "big.md", {"origin": "test"})
    passages = split(doc)
    assert split(doc) == passages
    assert split(Document(text, "big.md", {"origin": "test"})) == passages
    assert all(p.metadata["origin"] == "test" for p in passages)
    assert 80 < len(passages) < 200
    check_passages(doc, passages, 1200, 200)
    for size, overlap in ((50, 0), (80, 30), (300, 299), (2000, 500)):
        check_passages(doc, split(doc, size=size, overlap=overlap), size, overlap)
