"""The RAG facade: ``RAG(model=...)``, ``add()``, ``ask()``, ``stream()``, ``conversation()``.

Why a facade over the LLM layer rather than beside it: an answer is one streamed LLM call,
so it gets everything LLMConfig promises (cache, retries, rate limit, TokenTracer) by
going through ``make_llm``, never around it. The pieces are small and separate:
documents.py loads files, splitting.py cuts them into passages, store.py keeps passages
(FTS5 for words, float32 blobs for vectors) in one SQLite file, embeddings.py is only
used when an embedding model is configured, and retrieval.py fuses rankings.

A RAG is safe to share between tasks and threads (one per web server): nothing about a
call lives on the instance. ``ask()`` returns an :class:`Answer` carrying its own sources,
usage and cost; ``stream()`` returns an :class:`AnswerStream` that does the same once
consumed. Conversation memory is explicit -- ``rag.conversation()`` or
``ask(..., session_id=...)`` -- so one caller's questions never reach another's prompt.

Constructing a RAG makes no network call, downloads nothing and creates no file: the LLM
is built on the first question (so indexing needs no key), the store file on the first
write, and no provider the user did not name is ever called.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from synapsekit._lazy import lazy_getattr
from synapsekit.errors import ConfigError, InvalidInputError, MissingDependencyError, StoreError
from synapsekit.llm import _sync
from synapsekit.llm.types import Message, Usage

# pathlib and difflib (the ingest paths, the suggestion of a mistyped argument) are
# imported where used, not with the module: ``from synapsekit import RAG`` stays cheap.
if TYPE_CHECKING:
    from pathlib import Path

    from synapsekit.llm.base import BaseLLM
    from synapsekit.observability.tracer import TokenTracer
    from synapsekit.rag.documents import Document
    from synapsekit.rag.embeddings import Embedder
    from synapsekit.rag.ingest import IngestProgress, IngestReport
    from synapsekit.rag.splitting import Passage
    from synapsekit.rag.store import Hit, Store

__all__ = ["RAG", "Answer", "AnswerStream", "Conversation", "IngestProgress", "IngestReport"]

# The ingest reports are imported with the first add(), not with RAG.
__getattr__ = lazy_getattr(__name__, dict.fromkeys(
    ("IngestProgress", "IngestReport"), "synapsekit.rag.ingest"
))

logger = logging.getLogger("synapsekit.rag")

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources given with each question. "
    "Cite the sources you use as [1], [2]. If the sources do not contain the answer, say "
    "that you do not know rather than guessing."
)
#: Conversations kept by ``session_id`` (least recently used forgotten first).
MAX_SESSIONS = 1000
#: Passages embedded per request batch when vectors are computed for an existing store.
_BACKFILL_BATCH = 256
#: RAG's own keyword arguments (for the did-you-mean of an unknown one).
_RAG_ARGS = (
    "model", "api_key", "provider", "base_url", "path", "embedding_model",
    "embedding_api_key", "embedding_base_url", "top_k", "chunk_size", "chunk_overlap",
    "history", "system_prompt", "tracer", "llm",
)


class Answer(str):
    """An answer: its text (an Answer *is* that ``str``) with what produced it.

    ``sources[i]`` is the passage cited as ``[i + 1]``; ``usage`` is this call's token
    counts (zero on a cache hit) and ``cost_usd`` its cost (None when the model has no
    known price). ``text`` is the plain string.
    """

    sources: list[Hit]
    usage: Usage
    cost_usd: float | None
    question: str

    def __new__(
        cls,
        text: str,
        sources: Sequence[Hit] = (),
        usage: Usage | None = None,
        cost_usd: float | None = None,
        question: str = "",
    ) -> Answer:
        self = super().__new__(cls, text)
        self.sources = list(sources)
        self.usage = usage or Usage()
        self.cost_usd = cost_usd
        self.question = question
        return self

    @property
    def text(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return (
            f"Answer({self.text!r}, sources={[describe(h) for h in self.sources]!r}, "
            f"usage={self.usage!r}, cost_usd={self.cost_usd!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (Answer, (self.text, self.sources, self.usage, self.cost_usd, self.question))


class RAG:
    """Retrieval-augmented answers over an embedded SQLite store.

    ``model`` (and ``api_key``, ``provider``, ``base_url`` and any other LLMConfig field
    in ``llm_fields``) configure the answering LLM exactly as :func:`make_llm` does; a
    keyword that is neither RAG's nor an LLMConfig field is a ConfigError here.
    ``path`` is the store file (None: in memory); a file reopens with its passages and
    vectors, without re-indexing or embedding anything; it is created by the first
    ``add()``, and asking a store that does not exist is a StoreError. ``embedding_model``
    turns on dense retrieval (hybrid with the lexical one, fused by reciprocal rank);
    without it retrieval is BM25 over SQLite FTS5. ``history`` is how many turns a
    :meth:`conversation` remembers; ``system_prompt`` replaces the answering
    instructions. ``tracer`` records every call (one is made when not given).
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
        system_prompt: str | None = None,
        tracer: TokenTracer | None = None,
        llm: BaseLLM | None = None,
        **llm_fields: Any,
    ) -> None:
        from synapsekit.observability.tracer import TokenTracer
        from synapsekit.rag.splitting import check_sizes
        from synapsekit.rag.store import Store

        _check_llm_fields(llm_fields)
        if model is None and llm is None and llm_fields:
            raise ConfigError("model: give a model (or an llm) to use LLM settings")
        for name, value, low in (("top_k", top_k, 1), ("history", history, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}: must be a whole number >= {low}, got {value!r}")
        if system_prompt is not None and (not isinstance(system_prompt, str)
                                          or not system_prompt.strip()):
            raise ConfigError(f"system_prompt: must be a non-empty string, got {system_prompt!r}")
        check_sizes(chunk_size, chunk_overlap)
        self.tracer: TokenTracer = tracer or (llm.tracer if llm and llm.tracer else TokenTracer())
        self._llm = llm
        if llm is not None and llm.tracer is None:
            llm.tracer = self.tracer
        self._llm_fields: dict[str, Any] = dict(
            llm_fields, api_key=api_key, provider=provider, base_url=base_url
        )
        self.model = model or (llm.model if llm else None)
        if llm is None and self.model is not None:  # bad values (a base_url without a
            from synapsekit.llm.config import LLMConfig  # scheme) fail here, not later

            LLMConfig(model=self.model, **{
                k: v for k, v in self._llm_fields.items() if v is not None
            })
        self.top_k = top_k
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.history = history
        self.system_prompt = system_prompt or SYSTEM_PROMPT
        self._lock = threading.Lock()  # guards building the LLM, the store and sessions
        self._sessions: OrderedDict[str, Conversation] = OrderedDict()
        self._path: str | None = None
        self._store: Store | None = None
        if path is not None and os.fspath(path) != ":memory:":
            self._path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        if self._path is None or os.path.exists(self._path):
            self._store = Store(self._path)  # an existing file (checked now) or memory
        self._vectors_checked = False
        self._backfill = threading.Lock()  # one embed_missing at a time, never waited for
        self._embedder = self._open_embedder(
            embedding_model, embedding_api_key, embedding_base_url
        )

    # ----------------------------------------------------------------- the LLM

    @property
    def llm(self) -> BaseLLM:
        """The answering LLM, built on first use (a missing key or SDK is raised here)."""
        with self._lock:
            if self._llm is None:
                from synapsekit.llm.registry import make_llm

                if self.model is None:
                    raise ConfigError(
                        "model: this RAG was built without a model; pass model=..."
                    )
                fields = {k: v for k, v in self._llm_fields.items() if v is not None}
                self._llm = make_llm(self.model, tracer=self.tracer, **fields)
            return self._llm

    def _open_embedder(
        self, model: str | None, api_key: str | None, base_url: str | None
    ) -> Embedder | None:
        recorded = self._store.embedding() if self._store is not None else None
        if model is None:
            if recorded is not None:
                raise StoreError(
                    f"This store was built with embedding model {recorded[0]!r} "
                    f"(dimension {recorded[1]}); pass embedding_model={recorded[0]!r} "
                    "to use it, or open a new store."
                )
            return None
        if recorded is not None and recorded[0] != model and self._store is not None:
            self._store.set_embedding(model, recorded[1])  # raises the clear StoreError
        from synapsekit.rag.embeddings import make_embedder

        return make_embedder(model, api_key=api_key, base_url=base_url, tracer=self.tracer)

    # ----------------------------------------------------------------- the store

    @property
    def store(self) -> Store:
        """The store; a file store that does not exist yet is created here."""
        with self._lock:
            if self._store is None:
                from synapsekit.rag.store import Store

                self._store = Store(self._path)
            return self._store

    def _existing_store(self) -> Store:
        """The store to read from: a file store that does not exist is an error."""
        if self._store is not None:
            return self._store
        assert self._path is not None
        if os.path.exists(self._path):
            return self.store
        folder = os.path.dirname(self._path)
        where = (
            f"its directory {folder} does not exist" if not os.path.isdir(folder)
            else "the file does not exist"
        )
        raise StoreError(
            f"No RAG store at {self._path}: {where}. Check the path, or index documents "
            f"into it first (rag.add(...), or `synapsekit index PATH --db {self._path}`)."
        )

    # ----------------------------------------------------------------- ingestion

    def add(
        self,
        source: str | os.PathLike[str],
        *,
        progress: Callable[[IngestProgress], object] | None = None,
    ) -> IngestReport:
        """Add a text, a file or a directory (blocking :meth:`aadd`)."""
        return _sync.run_sync(self.aadd(source, progress=progress))

    async def aadd(
        self,
        source: str | os.PathLike[str],
        *,
        progress: Callable[[IngestProgress], object] | None = None,
    ) -> IngestReport:
        """Add a text, a file or a directory; unchanged files are skipped (content hash).

        A string is a path when such a file or directory exists, or when it looks like
        one (a single line ending in a separator or a known suffix): a missing path is an
        InvalidInputError, not text to index. Each source is written in one transaction,
        so an interrupted ``add`` keeps every file finished before it. Re-adding a
        directory removes the sources below it whose files are gone
        (``report.removed``); with an embedding model on, passages indexed without one
        get their vectors (``report.embedded``). ``progress`` is called after each file.
        """
        from synapsekit.rag.documents import text_document
        from synapsekit.rag.ingest import IngestReport

        report = IngestReport()
        if _is_path(source):
            await self._add_path(source, report, progress)
        elif isinstance(source, str):
            await self._ingest([text_document(source)], report)
        else:
            raise InvalidInputError(
                f"add() takes a text, a file or a directory, not {type(source).__name__}"
            )
        report.embedded = await self.embed_missing()
        return report

    async def _add_path(
        self,
        source: str | os.PathLike[str],
        report: IngestReport,
        progress: Callable[[IngestProgress], object] | None,
    ) -> None:
        from synapsekit.rag.documents import load_file
        from synapsekit.rag.ingest import IngestProgress

        root, folder, files, report.skipped = await asyncio.to_thread(_walk_resolved, source)
        for done, file in enumerate(files, 1):
            try:
                documents = await asyncio.to_thread(load_file, file)
            except (InvalidInputError, MissingDependencyError) as exc:
                if not folder:
                    raise  # a file asked for by name fails loudly
                report.skipped.append((str(file), getattr(exc, "reason", str(exc))))
            else:
                await self._ingest(documents, report)
            if progress is not None:
                progress(IngestProgress(done, len(files), report.passages, str(file)))
        report.skipped.sort()
        if folder and not (report.added or report.unchanged):
            reasons = f" ({len(report.skipped)} skipped: {report.skipped[0][1]}, ...)" if (
                report.skipped) else ""
            from synapsekit.rag.documents import SUPPORTED_SUFFIXES

            raise InvalidInputError(
                f"{str(root)!r} contains no supported files with text{reasons}. "
                f"Supported files: {', '.join(sorted(SUPPORTED_SUFFIXES))}."
            )
        if folder and self._store is not None:
            report.removed = await asyncio.to_thread(self._remove_gone, str(root))

    def _remove_gone(self, root: str) -> list[str]:
        """Delete the sources below ``root`` whose files no longer exist."""
        store = self.store
        prefix = root.rstrip(os.sep) + os.sep
        gone = [s for s in store.sources() if s.startswith(prefix) and not os.path.exists(s)]
        for source in gone:
            store.delete_source(source)
        return gone

    async def _ingest(self, documents: list[Document], report: IngestReport) -> None:
        from synapsekit.rag.documents import documents_hash
        from synapsekit.rag.splitting import split

        source = documents[0].source
        # The split settings are part of the hash: re-adding after changing them re-splits.
        digest = f"{documents_hash(documents)}:{self.chunk_size}:{self.chunk_overlap}"
        if self._store is not None and (
            await asyncio.to_thread(self._store.source_hash, source) == digest
        ):
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
        store = self.store
        if vectors is not None and self._embedder is not None:
            await asyncio.to_thread(store.set_embedding, self._embedder.model, len(vectors[0]))
        # Shielded: once the source's transaction is handed to its thread it is let finish,
        # so a cancelled add (Ctrl-C) leaves each source whole or absent and what the
        # caller counts next is what the store holds.
        write = asyncio.ensure_future(
            asyncio.to_thread(store.replace_source, source, digest, passages, vectors)
        )
        try:
            added = await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write])
            raise
        report.added.append(source)
        report.passages += added

    async def embed_missing(self) -> int:
        """Compute the vectors of passages indexed without an embedding model (a store
        built lexical-only, then opened with ``embedding_model=``); returns how many.

        Called by ``add()`` and before the first dense retrieval; logged when it works.
        While one call is at it, others return 0 at once (retrieval meanwhile uses the
        vectors already there) rather than embed the same passages twice.
        """
        if self._embedder is None or self._store is None:
            return 0
        if not self._backfill.acquire(blocking=False):
            return 0
        try:
            return await self._embed_missing(self._store, self._embedder)
        finally:
            self._backfill.release()

    async def _embed_missing(self, store: Store, embedder: Embedder) -> int:
        missing = await asyncio.to_thread(store.missing_vectors)
        if not missing:
            self._vectors_checked = True
            return 0
        logger.info(
            "computing %d missing vectors with %s (passages indexed without an embedding "
            "model)", len(missing), embedder.model,
        )
        for start in range(0, len(missing), _BACKFILL_BATCH):
            batch = missing[start : start + _BACKFILL_BATCH]
            vectors = await embedder.embed([_heading_text(h, t) for _, h, t in batch])
            await asyncio.to_thread(store.set_embedding, embedder.model, len(vectors[0]))
            await asyncio.to_thread(store.add_vectors, [i for i, _, _ in batch], vectors)
        self._vectors_checked = True
        return len(missing)

    # ----------------------------------------------------------------- retrieval

    async def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        """The ``k`` passages most relevant to ``question`` (hybrid when dense is on)."""
        from synapsekit.rag.retrieval import rrf

        _check_question(question)
        k = k or self.top_k
        store = self._existing_store()
        if self._embedder is None:
            return await asyncio.to_thread(store.search_lexical, question, k)
        if not self._vectors_checked:
            await self.embed_missing()
        (vector,) = await self._embedder.embed([question], query=True)
        if await asyncio.to_thread(store.embedding) is None:  # nothing embedded yet
            return await asyncio.to_thread(store.search_lexical, question, k)
        lexical, dense = await asyncio.gather(  # the store allows both at once
            asyncio.to_thread(store.search_lexical, question, k * 2),
            asyncio.to_thread(store.search_dense, vector, k * 2),
        )
        return rrf([lexical, dense], k=k)

    def retrieve_sync(self, question: str, k: int | None = None) -> list[Hit]:
        return _sync.run_sync(self.retrieve(question, k))

    # ----------------------------------------------------------------- answering

    def conversation(self, session_id: str | None = None) -> Conversation:
        """A conversation: follow-up questions see its last ``history`` turns.

        Without ``session_id`` a new one (keep the object); with one, the conversation
        stored under that id (made on first use; the least recently used of more than
        MAX_SESSIONS are forgotten). ``ask(q, session_id=...)`` is the same.
        """
        if session_id is None:
            return Conversation(self, self.history)
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError(f"session_id must be a non-empty string, not {session_id!r}")
        with self._lock:
            found = self._sessions.get(session_id)
            if found is None:
                found = self._sessions[session_id] = Conversation(self, self.history)
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(session_id)
            return found

    def end_conversation(self, session_id: str) -> None:
        """Forget the conversation stored under ``session_id`` (if any)."""
        with self._lock:
            self._sessions.pop(session_id, None)

    def stream(
        self, question: str, *, session_id: str | None = None, **overrides: Any
    ) -> AnswerStream:
        """Stream the answer to ``question``: iterate the returned :class:`AnswerStream`
        for its tokens; its ``sources`` and, once finished, its ``answer`` are its own."""
        if session_id is not None:
            return self.conversation(session_id).stream(question, **overrides)
        return AnswerStream(self, question, overrides, None)

    async def ask(
        self,
        question: str,
        *,
        session_id: str | None = None,
        return_sources: bool = True,
        **overrides: Any,
    ) -> Answer:
        """The whole answer: an :class:`Answer` (a ``str``) with its own sources, usage
        and cost. ``return_sources`` is accepted for compatibility (always on)."""
        stream = self.stream(question, session_id=session_id, **overrides)
        return await stream.complete()

    def ask_sync(
        self,
        question: str,
        *,
        session_id: str | None = None,
        return_sources: bool = True,
        **overrides: Any,
    ) -> Answer:
        """Blocking :meth:`ask`; works inside a running event loop too."""
        return _sync.run_sync(self.ask(question, session_id=session_id, **overrides))

    def stream_sync(
        self, question: str, *, session_id: str | None = None, **overrides: Any
    ) -> SyncAnswerStream:
        """Blocking :meth:`stream`: iterate it for tokens; ``.sources``, ``.answer``."""
        return SyncAnswerStream(self.stream(question, session_id=session_id, **overrides))

    def messages(
        self,
        question: str,
        hits: Sequence[Hit],
        history: Sequence[tuple[str, str]] = (),
    ) -> list[Message]:
        """The conversation sent to the LLM: instructions, the conversation's recent
        turns, then the numbered passages and the question."""
        turns: list[Message] = [{"role": "system", "content": self.system_prompt}]
        for asked, answered in history:
            turns.append({"role": "user", "content": asked})
            turns.append({"role": "assistant", "content": answered or "(no answer)"})
        context = "\n\n".join(
            f"[{i}] {describe(hit)}\n{hit.text}" for i, hit in enumerate(hits, 1)
        ) or "(no passage matched the question)"
        turns.append(
            {"role": "user", "content": f"Sources:\n\n{context}\n\nQuestion: {question}"}
        )
        return turns

    async def _answer(
        self,
        question: str,
        overrides: dict[str, Any],
        history: Sequence[tuple[str, str]],
        result: AnswerStream,
    ) -> AsyncIterator[str]:
        """One call: retrieve, prompt, stream; everything it learns goes on ``result``."""
        from synapsekit.llm.pricing import price_for

        self._existing_store()  # no store is an error before a missing key
        llm = self.llm  # before retrieval: a missing key fails before any work
        hits = await self.retrieve(question)
        result.sources = hits
        messages = self.messages(question, hits, history)
        parts: list[str] = []
        usage = Usage()
        async with aclosing(llm.stream_chunks(messages, **overrides)) as chunks:
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.text:
                    parts.append(chunk.text)
                    yield chunk.text
        price = price_for(llm.provider, llm.model)
        cost = None if price is None else price.cost(usage)
        result.answer = Answer("".join(parts), hits, usage, cost, question)

    # ----------------------------------------------------------------- lifetime

    async def aclose(self) -> None:
        if self._llm is not None:
            await self._llm.aclose()
        if self._embedder is not None:
            await self._embedder.aclose()
        if self._store is not None:
            self._store.close()

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
        return f"RAG(model={self.model!r}, path={self._path!r})"


class AnswerStream:
    """The tokens of one answer (``async for token in stream``), and what came with it.

    ``sources`` is set once retrieval is done (before the first token); ``answer`` (an
    :class:`Answer` with usage and cost) once the stream finished normally. Leaving the
    loop early closes the request (``await stream.aclose()`` does it explicitly).
    """

    def __init__(
        self,
        rag: RAG,
        question: str,
        overrides: dict[str, Any],
        conversation: Conversation | None,
    ) -> None:
        self.question = question
        self.sources: list[Hit] = []
        self.answer: Answer | None = None
        self._conversation = conversation
        history = conversation.turns if conversation is not None else []
        self._tokens = rag._answer(question, overrides, history, self)

    def __aiter__(self) -> AnswerStream:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._tokens.__anext__()
        except StopAsyncIteration:
            if self._conversation is not None and self.answer is not None:
                self._conversation._remember(self.question, self.answer)
                self._conversation = None
            raise

    async def aclose(self) -> None:
        close = getattr(self._tokens, "aclose", None)
        if close is not None:
            await close()

    async def complete(self) -> Answer:
        """Consume the rest of the stream; the :class:`Answer`."""
        async with aclosing(self):
            async for _ in self:
                pass
        assert self.answer is not None
        return self.answer


class SyncAnswerStream:
    """:class:`AnswerStream` for synchronous code: iterate it; ``sources``, ``answer``."""

    def __init__(self, stream: AnswerStream) -> None:
        self._stream = stream
        self._tokens = _sync.iterate_sync(stream)

    @property
    def sources(self) -> list[Hit]:
        return self._stream.sources

    @property
    def answer(self) -> Answer | None:
        return self._stream.answer

    def __iter__(self) -> Iterator[str]:
        return self._tokens


class Conversation:
    """Questions that follow on from each other: each prompt carries this conversation's
    last turns, and only this conversation's. Not shared unless you share the object
    (or the ``session_id``). Safe to use from several tasks; turns are recorded when
    their answer completes."""

    def __init__(self, rag: RAG, turns: int) -> None:
        self.rag = rag
        self._turns: deque[tuple[str, str]] = deque(maxlen=turns)
        self._lock = threading.Lock()

    @property
    def turns(self) -> list[tuple[str, str]]:
        """The remembered (question, answer) pairs, oldest first."""
        with self._lock:
            return list(self._turns)

    def _remember(self, question: str, answer: str) -> None:
        with self._lock:
            self._turns.append((question, str(answer)))

    def stream(self, question: str, **overrides: Any) -> AnswerStream:
        return AnswerStream(self.rag, question, overrides, self)

    async def ask(self, question: str, **overrides: Any) -> Answer:
        return await self.stream(question, **overrides).complete()

    def ask_sync(self, question: str, **overrides: Any) -> Answer:
        return _sync.run_sync(self.ask(question, **overrides))

    def stream_sync(self, question: str, **overrides: Any) -> SyncAnswerStream:
        return SyncAnswerStream(self.stream(question, **overrides))

    def reset(self) -> None:
        """Forget the turns: the next question starts afresh."""
        with self._lock:
            self._turns.clear()

    def __repr__(self) -> str:
        return f"Conversation(turns={len(self.turns)})"


def _check_llm_fields(fields: dict[str, Any]) -> None:
    """Unknown keywords are a ConfigError now, not at the first question.

    The accepted names are read from LLMConfig itself each time, so a field added to it
    is accepted here with no change.
    """
    if not fields:
        return
    from synapsekit.llm.config import LLMConfig

    known = {f.name for f in dataclasses.fields(LLMConfig)}
    known |= {
        name for name, parameter in inspect.signature(LLMConfig).parameters.items()
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }
    known.discard("model")
    unknown = sorted(set(fields) - known)
    if not unknown:
        return
    name = unknown[0]
    import difflib

    close = difflib.get_close_matches(name, sorted(known | set(_RAG_ARGS)), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"RAG() got an unknown keyword argument {name!r}{hint or '.'} It takes RAG's own "
        f"arguments ({', '.join(_RAG_ARGS)}) and LLMConfig fields."
    )


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
    from pathlib import Path

    from synapsekit.rag.documents import SUPPORTED_SUFFIXES

    looks_like_dir = source.endswith(("/", os.sep))
    return looks_like_dir or (
        " " not in source.strip() and Path(source).suffix.lower() in SUPPORTED_SUFFIXES
    )


def _walk_resolved(
    source: str | os.PathLike[str],
) -> tuple[Path, bool, list[Path], list[tuple[str, str]]]:
    """``(root, is_dir, files, skipped)`` for a path made absolute, so one file reached by
    two relative paths is one source. A missing path is an InvalidInputError."""
    from pathlib import Path

    from synapsekit.rag.documents import walk

    root = Path(source).expanduser().resolve()
    files, skipped = walk(root)
    if not root.is_dir():
        return root, False, [root], []
    return root, True, files, skipped


def _embedded_text(passage: Passage) -> str:
    """What is embedded: the passage under its heading, which often names its topic."""
    return _heading_text(passage.metadata.get("heading"), passage.text)


def _heading_text(heading: str | None, text: str) -> str:
    return f"{heading}\n\n{text}" if heading else text
