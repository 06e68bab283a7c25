"""The RAG facade: ``RAG(model=...)``, ``add()``, ``ask()``, ``stream()``.

Why a facade over the LLM layer rather than beside it: an answer is one streamed LLM call,
so it gets everything LLMConfig promises (cache, retries, rate limit, TokenTracer) by
going through ``make_llm``, never around it. The pieces are small and separate:
documents.py loads files, splitting.py cuts them into passages, store.py keeps passages
(FTS5 for words, float32 blobs for vectors) in one SQLite file, embeddings.py is only
used when an embedding model is configured, and retrieval.py fuses rankings.

Constructing a RAG makes no network call and downloads nothing. The LLM is built on the
first question (so indexing needs no key), and no provider the user did not name is
ever called.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synapsekit.errors import ConfigError, InvalidInputError, StoreError
from synapsekit.llm import _sync
from synapsekit.llm.types import Message

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.observability.tracer import TokenTracer
    from synapsekit.rag.documents import Document
    from synapsekit.rag.embeddings import Embedder
    from synapsekit.rag.splitting import Passage
    from synapsekit.rag.store import Hit, Store

__all__ = ["RAG", "Answer", "IngestReport"]

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources given with each question. "
    "Cite the sources you use as [1], [2]. If the sources do not contain the answer, say "
    "that you do not know rather than guessing."
)


@dataclass(frozen=True)
class Answer:
    """An answer with the passages it was given (``sources[i]`` is ``[i + 1]``)."""

    text: str
    sources: list[Hit]

    def __str__(self) -> str:
        return self.text


@dataclass
class IngestReport:
    """What one ``add()`` did: files and passages added, unchanged files skipped, and the
    files of a directory that could not be read (with why)."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    passages: int = 0


class RAG:
    """Retrieval-augmented answers over an embedded SQLite store.

    ``model`` (and ``api_key``, ``provider``, ``base_url`` and any other LLMConfig field
    in ``llm_fields``) configure the answering LLM exactly as :func:`make_llm` does.
    ``path`` is the store file (None: in memory); a file reopens with its passages and
    vectors, without re-indexing or embedding anything. ``embedding_model`` turns on
    dense retrieval (hybrid with the lexical one, fused by reciprocal rank); without it
    retrieval is BM25 over SQLite FTS5. ``tracer`` records every call (one is made when
    not given: ``rag.tracer.summary()``).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        provider: str | None = None,
        base_url: str | None = None,
        path: str | os.PathLike[str] | None = None,
        embedding_model: str | None = None,
        embedding_api_key: str | None = None,
        embedding_base_url: str | None = None,
        top_k: int = 5,
        chunk_size: int = 1200,
        chunk_overlap: int = 200,
        history: int = 3,
        tracer: TokenTracer | None = None,
        llm: BaseLLM | None = None,
        **llm_fields: Any,
    ) -> None:
        from synapsekit.observability.tracer import TokenTracer
        from synapsekit.rag.splitting import check_sizes
        from synapsekit.rag.store import Store

        if model is None and llm is None and llm_fields:
            raise ConfigError("model: give a model (or an llm) to use LLM settings")
        for name, value, low in (("top_k", top_k, 1), ("history", history, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}: must be a whole number >= {low}, got {value!r}")
        check_sizes(chunk_size, chunk_overlap)
        self.tracer: TokenTracer = tracer or (llm.tracer if llm and llm.tracer else TokenTracer())
        self._llm = llm
        if llm is not None and llm.tracer is None:
            llm.tracer = self.tracer
        self._llm_fields: dict[str, Any] = dict(
            llm_fields, api_key=api_key, provider=provider, base_url=base_url
        )
        self.model = model or (llm.model if llm else None)
        self.top_k = top_k
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._history: deque[tuple[str, str]] = deque(maxlen=history or None)
        self._history_size = history
        self.store: Store = Store(path)
        self._embedder = self._open_embedder(
            embedding_model, embedding_api_key, embedding_base_url
        )
        #: The passages the last answer was given, in prompt order.
        self.last_sources: list[Hit] = []

    # ----------------------------------------------------------------- the LLM

    @property
    def llm(self) -> BaseLLM:
        """The answering LLM, built on first use (a missing key or SDK is raised here)."""
        if self._llm is None:
            from synapsekit.llm.registry import make_llm

            if self.model is None:
                raise ConfigError("model: this RAG was built without a model; pass model=...")
            fields = {k: v for k, v in self._llm_fields.items() if v is not None}
            self._llm = make_llm(self.model, tracer=self.tracer, **fields)
        return self._llm

    def _open_embedder(
        self, model: str | None, api_key: str | None, base_url: str | None
    ) -> Embedder | None:
        recorded = self.store.embedding()
        if model is None:
            if recorded is not None:
                raise StoreError(
                    f"This store was built with embedding model {recorded[0]!r} "
                    f"(dimension {recorded[1]}); pass embedding_model={recorded[0]!r} "
                    "to use it, or open a new store."
                )
            return None
        if recorded is not None and recorded[0] != model:
            self.store.set_embedding(model, recorded[1])  # raises the clear StoreError
        from synapsekit.rag.embeddings import make_embedder

        return make_embedder(model, api_key=api_key, base_url=base_url, tracer=self.tracer)

    # ----------------------------------------------------------------- ingestion

    def add(self, source: str | os.PathLike[str], *, progress: bool | None = None) -> IngestReport:
        """Add a text, a file or a directory (blocking :meth:`aadd`)."""
        return _sync.run_sync(self.aadd(source, progress=progress))

    async def aadd(
        self, source: str | os.PathLike[str], *, progress: bool | None = None
    ) -> IngestReport:
        """Add a text, a file or a directory; unchanged files are skipped (content hash).

        A string is a path when such a file or directory exists, or when it looks like
        one (a single line ending in a separator or a known suffix): a missing path is an
        InvalidInputError, not text to index. Each source is written in one transaction.
        """
        from synapsekit.rag.documents import text_document

        report = IngestReport()
        if _is_path(source):
            documents, report.skipped = await asyncio.to_thread(_load_resolved, source)
        elif isinstance(source, str):
            documents = [text_document(source)]
        else:
            raise InvalidInputError(
                f"add() takes a text, a file or a directory, not {type(source).__name__}"
            )
        show = sys.stderr.isatty() if progress is None else progress
        for document_group in _progress(_by_source(documents), show, "indexing"):
            await self._ingest(document_group, report)
        return report

    async def _ingest(self, documents: list[Document], report: IngestReport) -> None:
        from synapsekit.rag.documents import documents_hash
        from synapsekit.rag.splitting import split

        source = documents[0].source
        # The split settings are part of the hash: re-adding after changing them re-splits.
        digest = f"{documents_hash(documents)}:{self.chunk_size}:{self.chunk_overlap}"
        if await asyncio.to_thread(self.store.source_hash, source) == digest:
            report.unchanged.append(source)
            return
        pieces = [
            passage
            for document in documents
            for passage in split(document, size=self.chunk_size, overlap=self.chunk_overlap)
        ]
        # One index per source (a PDF's pages are split one by one).
        passages = [
            replace(p, metadata={**p.metadata, "index": i}) for i, p in enumerate(pieces)
        ]
        vectors = None
        if self._embedder is not None and passages:
            vectors = await self._embedder.embed([_embedded_text(p) for p in passages])
            await asyncio.to_thread(self.store.set_embedding, self._embedder.model, len(vectors[0]))
        added = await asyncio.to_thread(
            self.store.replace_source, source, digest, passages, vectors
        )
        report.added.append(source)
        report.passages += added

    # ----------------------------------------------------------------- retrieval

    async def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        """The ``k`` passages most relevant to ``question`` (hybrid when dense is on)."""
        from synapsekit.rag.retrieval import rrf

        _check_question(question)
        k = k or self.top_k
        if self._embedder is None:
            return await asyncio.to_thread(self.store.search_lexical, question, k)
        (vector,) = await self._embedder.embed([question], query=True)
        if await asyncio.to_thread(self.store.embedding) is None:  # nothing embedded yet
            return await asyncio.to_thread(self.store.search_lexical, question, k)
        lexical, dense = await asyncio.gather(  # the store allows both at once
            asyncio.to_thread(self.store.search_lexical, question, k * 2),
            asyncio.to_thread(self.store.search_dense, vector, k * 2),
        )
        return rrf([lexical, dense], k=k)

    def retrieve_sync(self, question: str, k: int | None = None) -> list[Hit]:
        return _sync.run_sync(self.retrieve(question, k))

    # ----------------------------------------------------------------- answering

    def stream(self, question: str, **overrides: Any) -> AsyncGenerator[str, None]:
        """Stream the answer to ``question``; ``rag.last_sources`` holds its passages."""
        return self._answer(question, overrides)

    async def ask(
        self, question: str, *, return_sources: bool = False, **overrides: Any
    ) -> str | Answer:
        """The whole answer (an :class:`Answer` with its sources if ``return_sources``)."""
        async with aclosing(self._answer(question, overrides)) as tokens:
            text = "".join([token async for token in tokens])
        return Answer(text, list(self.last_sources)) if return_sources else text

    def ask_sync(
        self, question: str, *, return_sources: bool = False, **overrides: Any
    ) -> str | Answer:
        """Blocking :meth:`ask`; works inside a running event loop too."""
        return _sync.run_sync(self.ask(question, return_sources=return_sources, **overrides))

    def stream_sync(self, question: str, **overrides: Any) -> Iterator[str]:
        return _sync.iterate_sync(self.stream(question, **overrides))

    async def _answer(
        self, question: str, overrides: dict[str, Any]
    ) -> AsyncGenerator[str, None]:
        llm = self.llm  # before retrieval: a missing key fails before any work
        hits = await self.retrieve(question)
        self.last_sources = hits
        messages = self.messages(question, hits)
        parts: list[str] = []
        async with aclosing(llm.stream_with_messages(messages, **overrides)) as tokens:
            async for token in tokens:
                parts.append(token)
                yield token
        if self._history_size:
            self._history.append((question, "".join(parts)))

    def messages(self, question: str, hits: Sequence[Hit]) -> list[Message]:
        """The conversation sent to the LLM: instructions, the recent turns, then the
        numbered passages and the question."""
        turns: list[Message] = [{"role": "system", "content": SYSTEM_PROMPT}]
        for asked, answered in self._history:
            turns.append({"role": "user", "content": asked})
            turns.append({"role": "assistant", "content": answered or "(no answer)"})
        context = "\n\n".join(
            f"[{i}] {describe(hit)}\n{hit.text}" for i, hit in enumerate(hits, 1)
        ) or "(no passage matched the question)"
        turns.append(
            {"role": "user", "content": f"Sources:\n\n{context}\n\nQuestion: {question}"}
        )
        return turns

    def reset_conversation(self) -> None:
        """Forget the previous questions and answers (follow-ups start afresh)."""
        self._history.clear()

    # ----------------------------------------------------------------- lifetime

    async def aclose(self) -> None:
        if self._llm is not None:
            await self._llm.aclose()
        if self._embedder is not None:
            await self._embedder.aclose()
        self.store.close()

    def close(self) -> None:
        _sync.run_sync(self.aclose())

    async def __aenter__(self) -> RAG:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> RAG:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RAG(model={self.model!r}, store={self.store!r})"


def describe(hit: Hit) -> str:
    """``source`` plus page or heading: how a passage is named in prompts and listings."""
    where = hit.source
    page = hit.metadata.get("page")
    heading = hit.metadata.get("heading")
    if page is not None:
        where += f", page {page}"
    if heading:
        where += f" > {heading}"
    return where


def _check_question(question: str) -> None:
    if not isinstance(question, str):
        raise InvalidInputError(f"The question must be a string, not {type(question).__name__}.")
    if not question.strip():
        raise InvalidInputError("The question is empty.")


def _is_path(source: object) -> bool:
    if isinstance(source, os.PathLike):
        return True
    if not isinstance(source, str) or "\n" in source or len(source) > 4096:
        return False
    if os.path.exists(source):
        return True
    from synapsekit.rag.documents import SUPPORTED_SUFFIXES

    looks_like_dir = source.endswith(("/", os.sep))
    return looks_like_dir or (
        " " not in source.strip() and Path(source).suffix.lower() in SUPPORTED_SUFFIXES
    )


def _load_resolved(
    source: str | os.PathLike[str],
) -> tuple[list[Document], list[tuple[str, str]]]:
    """Load a path made absolute, so one file reached by two relative paths is one source."""
    from synapsekit.rag.documents import load_path

    return load_path(Path(source).expanduser().resolve())


def _by_source(documents: Sequence[Document]) -> list[list[Document]]:
    """Documents grouped by source, in order (a PDF is one source of many pages)."""
    groups: dict[str, list[Document]] = {}
    for document in documents:
        groups.setdefault(document.source, []).append(document)
    return list(groups.values())


def _embedded_text(passage: Passage) -> str:
    """What is embedded: the passage under its heading, which often names its topic."""
    heading = passage.metadata.get("heading")
    return f"{heading}\n\n{passage.text}" if heading else passage.text


def _progress(
    items: list[list[Document]], show: bool, label: str
) -> Iterator[list[Document]]:
    """Yield ``items``, drawing ``label 3/40`` on stderr when ``show`` (a terminal)."""
    write: Callable[[str], object] = sys.stderr.write
    total = len(items)
    for done, item in enumerate(items, 1):
        yield item
        if show and total > 1:
            write(f"\r{label} {done}/{total}")
    if show and total > 1:
        write("\n")
