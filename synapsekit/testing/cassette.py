"""Cassette: record real LLM calls once, replay them offline through the same call path.

Users test their own LLM code with mocks because nothing else is at hand; a mock tests the
mock. A cassette records what the provider really streamed -- text, reasoning, tool-call
deltas and calls, usage, finish reason, metadata, provider data, and typed errors -- one
JSON line per provider attempt, and serves it back later with no network::

    with Cassette("tests/cassettes/weather.jsonl", mode="auto"):
        answer = await llm.generate("What is the weather in Paris?")

Only the provider's stream is replaced (:func:`provider_stream`, called by
``BaseLLM._run`` for each attempt; embeddings requests likewise, by
:func:`embedding_batch`), so everything around it runs as it did: the cache,
retries (a recorded 429 is replayed as a 429, then the recorded retry), the rate limiter,
budgets, the TokenTracer, ``tokens_used`` and cost. A Router is not recorded itself: its
members are, so a replay goes through the same failover.

Requests match on the cache's canonical key (:func:`synapsekit.llm.cache.cache_key`: model,
messages, every generation setting, tools, the effective endpoint) with one difference: the
credential is left out, so a session recorded with a real key replays in CI with any key.
The same request made twice is recorded twice and replayed in the order it was made (by
the order the attempts started). No API key or header is ever written: entries hold
chunks, never the request, and each line is scrubbed of the call's key before it is written.

Modes: ``"record"`` starts the file afresh and sends every call; ``"replay"`` serves only
what is recorded and raises :class:`~synapsekit.errors.CassetteError` for anything else;
``"auto"`` replays what it has and records (appends) what it has not. The active cassette
is held in a context variable, so it covers the tasks started inside the ``with`` block
(and the ``*_sync`` methods called in it) and nothing outside it.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import hashlib
import json
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, fields
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

from synapsekit import errors
from synapsekit.errors import CassetteError, LLMError, redact
from synapsekit.llm.cache.key import cache_key
from synapsekit.llm.content import text_of
from synapsekit.llm.types import Chunk, Message, ProviderData, ToolCall, ToolCallDelta, Usage

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig
    from synapsekit.rag.embeddings import Embedder

__all__ = ["FORMAT", "Cassette", "Mode", "active", "embedding_batch", "provider_stream"]

Mode = Literal["record", "replay", "auto"]
#: The call's deadlines applied to one attempt's stream (``Deadline.watch``).
Watch = Callable[[AsyncIterator[Chunk]], AsyncIterator[Chunk]]

#: The format of a cassette line (``"v"``); a line of another format is refused on load.
FORMAT = 1

#: The credential scope every cassette key is made with (see the module docstring).
_CREDENTIAL = "cassette"

#: Words of the prompt an entry (and a miss's message) shows, to tell requests apart.
_PREVIEW_WORDS = 8

_ACTIVE: contextvars.ContextVar[Cassette | None] = contextvars.ContextVar(
    "synapsekit_cassette", default=None
)

_USAGE_FIELDS = frozenset(f.name for f in fields(Usage))
_NO_USAGE = asdict(Usage())


def active() -> Cassette | None:
    """The cassette covering the current context, if any."""
    return _ACTIVE.get()


def embedding_batch(
    embedder: Embedder, texts: list[str], query: bool
) -> Awaitable[tuple[list[list[float]], int | None]]:
    """One embeddings request: ``embedder._embed_batch``, unless a cassette is active
    (``Embedder._request``'s only hook into this module)."""
    tape = _ACTIVE.get()
    if tape is None:
        return embedder._embed_batch(texts, query)
    return tape._embedding(embedder, texts, query)


def provider_stream(
    llm: BaseLLM, turns: list[Message], config: LLMConfig, endpoint: str | None,
    watch: Watch,
) -> AsyncIterator[Chunk]:
    """One attempt's provider stream under the call's deadlines (``watch``):
    ``llm._stream``, unless a cassette is active, which then records it or serves it (the
    call path's only hook into this module).

    The recording is of the *watched* stream, so an attempt cut by a deadline is recorded
    as what the call saw -- the chunks before the cut, then the TimeoutError -- and
    replayed the same way, retry included. A replay is not watched: nothing is waited for.
    """
    tape = _ACTIVE.get()
    if tape is None or _is_composite(llm):
        return watch(llm._stream(turns, config))
    return tape._attempt(llm, turns, config, endpoint, watch)


class Cassette:
    """A JSONL file of recorded provider streams, active inside ``with`` / ``async with``.

    ``recorded`` and ``replayed`` count the attempts written and served since it was
    entered; ``remaining`` is how many recorded attempts have not been served.
    """

    def __init__(self, path: str | os.PathLike[str], mode: Mode = "replay") -> None:
        if mode not in ("record", "replay", "auto"):
            raise errors.ConfigError(
                f"Cassette mode must be 'record', 'replay' or 'auto', not {mode!r}"
            )
        self.path = Path(path)
        self.mode: Mode = mode
        self.recorded = 0
        self.replayed = 0
        self._tapes: dict[str, collections.deque[dict[str, Any]]] = {}
        self._next_seq: collections.Counter[str] = collections.Counter()
        self._served: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()  # attempts may run on several loops (the sync one)
        self._file: IO[str] | None = None
        self._token: contextvars.Token[Cassette | None] | None = None

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r})"

    @property
    def remaining(self) -> int:
        with self._lock:
            return sum(len(tape) for tape in self._tapes.values())

    # ------------------------------------------------------------- context manager

    def __enter__(self) -> Cassette:
        if self._token is not None:
            raise CassetteError(f"cassette {self.path} is already in use")
        self._tapes.clear()
        self._next_seq.clear()
        self._served.clear()
        self.recorded = self.replayed = 0
        if self.mode == "record":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        else:
            self._load()
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                _ACTIVE.reset(token)
            except ValueError:  # left in another context than entered (an async fixture's
                if _ACTIVE.get() is self:  # teardown): undo it here, as far as it shows
                    old = token.old_value
                    _ACTIVE.set(None if old is contextvars.Token.MISSING else old)
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    async def __aenter__(self) -> Cassette:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # ------------------------------------------------------------------ the attempts

    def _attempt(
        self, llm: BaseLLM, turns: list[Message], config: LLMConfig, endpoint: str | None,
        watch: Watch,
    ) -> AsyncIterator[Chunk]:
        key = cache_key(config, turns, credential=_CREDENTIAL, endpoint=endpoint)
        entry, seq = self._take(key, lambda: _describe(llm.provider, config.model, turns))
        if entry is not None:
            return _replay(entry)
        return self._record(llm, turns, config, key, seq, watch)

    async def _embedding(
        self, embedder: Embedder, texts: list[str], query: bool
    ) -> tuple[list[list[float]], int | None]:
        """One embeddings request (a batch), recorded or served like a chat attempt."""
        key = _embedding_key(embedder, texts, query)
        entry, seq = self._take(key, lambda: (
            f"{embedder.provider} embedding model {embedder.model!r}, "
            f"{len(texts)} text{'s' if len(texts) != 1 else ''} from {_words(texts[0])!r}"
        ))
        if entry is not None:
            _raise_recorded(entry)
            return entry["vectors"], entry["tokens"]
        secrets = (embedder.config.api_key,)
        head = {"key": key, "seq": seq, "provider": embedder.provider, "model": embedder.model,
                "prompt": _words(texts[0])}
        try:
            vectors, tokens = await embedder._embed_batch(texts, query)
        except LLMError as exc:
            failure = _error_record(exc)
            if failure is not None:
                await self._write({**head, "vectors": None, "tokens": None, "error": failure},
                                  secrets)
            raise
        await self._write({**head, "vectors": vectors, "tokens": tokens, "error": None}, secrets)
        return vectors, tokens

    def _take(self, key: str, what: Callable[[], str]) -> tuple[dict[str, Any] | None, int]:
        """The next recording of ``key`` (and its attempt number), or None and the number
        a new recording gets; replaying, a miss is a CassetteError (``what`` says which
        request it was)."""
        with self._lock:
            tape = self._tapes.get(key)
            if tape:
                self.replayed += 1
                self._served[key] += 1
                return tape.popleft(), 0
            if self.mode == "replay":
                raise self._miss(key, what(), self._served[key])
            seq = self._next_seq[key]  # the order attempts start in is the replay order
            self._next_seq[key] += 1
            return None, seq

    async def _record(
        self, llm: BaseLLM, turns: list[Message], config: LLMConfig, key: str, seq: int,
        watch: Watch,
    ) -> AsyncIterator[Chunk]:
        """The real stream under its deadlines, passed on chunk by chunk and written once
        it has ended, by an answer or a typed error (a deadline's TimeoutError included);
        an attempt the consumer left early or cancelled is not written: it has no end."""
        from synapsekit.llm.base import _closing  # (base imports this module)

        chunks: list[dict[str, Any]] = []
        head = {"key": key, "seq": seq, "provider": llm.provider, "model": config.model,
                "prompt": _preview(turns)}
        secrets = (config.api_key, llm.config.api_key)
        try:
            async with _closing(watch(llm._stream(turns, config))) as stream:
                async for chunk in stream:
                    chunks.append(_chunk_record(chunk))
                    yield chunk
        except LLMError as exc:
            failure = _error_record(exc)
            if failure is not None:  # else an error this module cannot rebuild: not recorded
                await self._write({**head, "chunks": chunks, "error": failure}, secrets)
            raise
        await self._write({**head, "chunks": chunks, "error": None}, secrets)

    async def _write(self, entry: dict[str, Any], secrets: tuple[str | None, ...]) -> None:
        try:
            line = json.dumps({"v": FORMAT, **entry}, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise CassetteError(
                f"cannot record a {entry['provider']} answer in cassette {self.path}: {exc}"
            ) from None
        await asyncio.to_thread(self._append, redact(line, *secrets))

    def _append(self, line: str) -> None:
        with self._lock:
            if self._file is None:
                if self._token is None:
                    raise CassetteError(f"cassette {self.path} was closed before a call ended")
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line + "\n")  # one write per line: lines never interleave
            self._file.flush()
            self.recorded += 1

    def _load(self) -> None:
        """Read the recordings into one queue per key, in the order they were made."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if self.mode == "replay":
                raise CassetteError(
                    f"cassette {self.path} does not exist: record it first "
                    "(mode='record' or 'auto')"
                ) from None
            return
        entries: list[dict[str, Any]] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict) or entry.get("v") != FORMAT or not isinstance(
                entry.get("key"), str
            ) or not isinstance(entry.get("seq"), int):
                raise CassetteError(
                    f"{self.path}:{number}: not a synapsekit cassette entry of format {FORMAT}"
                )
            entries.append(entry)
        entries.sort(key=lambda e: (e["key"], e["seq"]))
        for entry in entries:
            self._tapes.setdefault(entry["key"], collections.deque()).append(entry)
            self._next_seq[entry["key"]] = entry["seq"] + 1

    def _miss(self, key: str, what: str, served: int) -> CassetteError:
        has = (
            f"has {served} recording{'s' if served != 1 else ''} of request {key} ({what}), "
            f"and this is attempt {served + 1}" if served
            else f"has no recording of request {key} ({what})"
        )
        return CassetteError(
            f"cassette {self.path} {has}: record it with mode='record' or 'auto'"
        )


# ---------------------------------------------------------------------- the entries


def _chunk_record(chunk: Chunk) -> dict[str, Any]:
    """The chunk's set fields, as JSON-able values."""
    out: dict[str, Any] = {}
    if chunk.text:
        out["text"] = chunk.text
    if chunk.reasoning:
        out["reasoning"] = chunk.reasoning
    if chunk.usage is not None:  # the fields that differ from a fresh Usage()
        out["usage"] = {k: v for k, v in asdict(chunk.usage).items() if v != _NO_USAGE[k]}
    if chunk.finish_reason is not None:
        out["finish_reason"] = chunk.finish_reason
    if chunk.metadata is not None:
        out["metadata"] = dict(chunk.metadata)
    if chunk.tool_delta is not None:
        out["tool_delta"] = asdict(chunk.tool_delta)
    if chunk.tool_call is not None:
        call = chunk.tool_call
        out["tool_call"] = {
            "id": call.id, "name": call.name, "arguments": dict(call.arguments),
            "index": call.index,
        }
    if chunk.provider_data is not None:
        out["provider_data"] = dict(chunk.provider_data)
    return out


def _chunk(data: Mapping[str, Any]) -> Chunk:
    usage = data.get("usage")
    delta = data.get("tool_delta")
    call = data.get("tool_call")
    pdata = data.get("provider_data")
    return Chunk(
        text=data.get("text", ""),
        reasoning=data.get("reasoning", ""),
        usage=Usage(**{k: v for k, v in usage.items() if k in _USAGE_FIELDS})
        if usage is not None else None,
        finish_reason=data.get("finish_reason"),
        metadata=data.get("metadata"),
        tool_delta=ToolCallDelta(**delta) if delta is not None else None,
        tool_call=ToolCall(call["id"], call["name"], call["arguments"], call["index"])
        if call is not None else None,
        provider_data=ProviderData(protocol=pdata["protocol"], content=pdata.get("content"))
        if pdata is not None else None,
    )


def _error_record(exc: LLMError) -> dict[str, Any] | None:
    """A provider error as the fields that rebuild it; None for a class whose constructor
    takes more than :class:`LLMError`'s (a provider stream raises none of those)."""
    cls = type(exc)
    if getattr(errors, cls.__name__, None) is not cls or cls.__init__ is not LLMError.__init__:
        return None
    return {
        "type": cls.__name__, "message": exc.message, "provider": exc.provider,
        "model": exc.model, "status_code": exc.status_code, "request_id": exc.request_id,
        "retry_after": exc.retry_after, "code": exc.code,
    }


async def _replay(entry: Mapping[str, Any]) -> AsyncIterator[Chunk]:
    for data in entry.get("chunks", ()):
        yield _chunk(data)
    _raise_recorded(entry)


def _raise_recorded(entry: Mapping[str, Any]) -> None:
    """Raise the entry's recorded error, if it has one."""
    failure = entry.get("error")
    if failure is None:
        return
    cls = getattr(errors, failure.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, LLMError)):
        raise CassetteError(f"unknown recorded error type {failure.get('type')!r}")
    fields_ = {k: failure.get(k) for k in (
        "provider", "model", "status_code", "request_id", "retry_after", "code",
    )}
    raise cls(failure.get("message", ""), **fields_)


def _embedding_key(embedder: Embedder, texts: list[str], query: bool) -> str:
    """What shapes an embeddings answer, as the chat key does: never the credential."""
    payload = {
        "version": FORMAT, "kind": "embeddings", "provider": embedder.provider,
        "endpoint": embedder._llm.endpoint, "model": embedder.model,
        "dimensions": embedder.dimensions, "query": query, "texts": texts,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _describe(provider: str, model: str, turns: list[Message]) -> str:
    return f"{provider} model {model!r}, prompt {_preview(turns)!r}"


def _preview(turns: list[Message]) -> str:
    """The first words of the last user turn (what a reader recognises a request by)."""
    for turn in reversed(turns):
        if turn["role"] == "user":
            return _words(text_of(turn["content"]))
    return ""


def _words(text: str) -> str:
    words = text.split()
    shown = " ".join(words[:_PREVIEW_WORDS])
    return shown + (" ..." if len(words) > _PREVIEW_WORDS else "")


def _is_composite(llm: BaseLLM) -> bool:
    """A Router: its members' attempts are the ones recorded (a replay then fails over as
    the recording did)."""
    from synapsekit.llm.router import Router

    return isinstance(llm, Router)
