"""Hooks: the one callback interface every observer of LLM calls uses.

Why one interface: the TokenTracer, the OpenTelemetry instrumentation
(:mod:`synapsekit.observability.otel`) and user code all want the same moments of a call
-- it starts, its first token arrives, an attempt fails (and is or is not retried), it
ends -- so the call path announces those moments once, to a list of hooks, instead of
knowing about each observer. A hook is any object with some of these methods (all
optional; :class:`Hook` is a base class with every one a no-op)::

    on_call_start(call)                        # the request is built, nothing sent yet
    on_first_token(call)                       # the call's first text/reasoning/tool delta
    on_chunk(call)                             # every such chunk (costs a call per chunk)
    on_attempt_failed(call, error, will_retry) # an attempt raised an LLMError
    on_failover(call, member, error)           # a Router moved on from a failed member
    on_call_end(call)                          # once, on every way out
    on_tool_start(run) / on_tool_end(run)      # a tool run by run_tools (see ToolRun)
    on_embed_start(run) / on_embed_end(run)    # one embeddings request (see EmbedRun)

``call`` is the call's own bookkeeping object (see :class:`CallInfo`): per-call state
lives there, never on the hook, so one hook object serves any number of concurrent calls.
A hook keeps its own data in ``call.state[self]``. At ``on_call_end``, ``call.record`` is
the :class:`~synapsekit.observability.tracer.CallRecord` the LLM's TokenTracer made (None
when the LLM has no tracer), ``call.error`` the class name of what ended the call (None
for an answer) and ``call.exception`` the exception itself when there was one.

The contract: methods are synchronous and cheap; they run in the task of the call, inside
the call path (an ``async for`` step), so they must not block -- hand slow work to a
thread or a queue. A hook that raises is logged once (per hook class and method) and
never breaks the call or the other hooks.

Registered per LLM (``make_llm(..., hooks=[h])``, ``BaseLLM(config, hooks=[h])``, or
``llm.hooks = (h,)``) and process-wide (:func:`add_hook` / :func:`remove_hook`); an LLM's
own hooks run first, then the process-wide ones, in the order added. An Embedder's
requests are seen by the process-wide hooks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from synapsekit.errors import LLMError
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.types import Message, ToolCall, Usage
    from synapsekit.observability.tracer import CallRecord

__all__ = ["CallInfo", "EmbedRun", "Hook", "ToolRun", "add_hook", "global_hooks", "remove_hook"]

log = logging.getLogger("synapsekit")

#: The names of the hook methods, in call order.
HOOK_METHODS = (
    "on_call_start", "on_first_token", "on_chunk", "on_attempt_failed", "on_failover",
    "on_call_end", "on_tool_start", "on_tool_end", "on_embed_start", "on_embed_end",
)


class CallInfo(Protocol):
    """What a hook may read from ``call`` (the call path's ``_Call``); treat as read-only
    except ``state``. Times are ``time.perf_counter()`` seconds."""

    llm: BaseLLM
    config: LLMConfig  # the call's config (per-call overrides applied)
    turns: list[Message]  # the messages sent (system prompt included)
    streaming: bool  # False for generate()/respond(): nothing reaches the caller early
    started: float
    attempt_started: float
    first_token: float | None  # of the current attempt
    chunks: int  # chunks the current attempt received (text, reasoning, tool deltas)
    last_chunk: float | None  # when the last of them arrived
    attempts: int  # attempts begun so far
    cache_hit: bool
    requested: bool  # a request was sent to the provider
    received: bool  # the current attempt got text, reasoning or usage
    delivered: bool  # something reached the caller
    usage: Usage | None  # the last usage the current attempt reported
    final_usage: Usage | None  # what the call was recorded with (at on_call_end)
    finish_reason: str | None
    metadata: Any  # the final chunk's metadata (provider's response id, model, ...)
    output: list[str] | tuple[str, ...]  # the answer's text pieces (at on_call_end)
    output_calls: list[ToolCall] | tuple[ToolCall, ...]
    tool_calls: int
    error: str | None
    exception: BaseException | None
    record: CallRecord | None  # the TokenTracer's record, set at on_call_end
    parent: Any  # the enclosing call (a Router's, for a member's call), or None
    state: dict[Any, Any]

    def reported(self) -> Usage:
        """What the current attempt's provider reported (incomplete when nothing)."""
        ...

    def fields(self, usage: Usage, since: float, error: str | None) -> dict[str, Any]:
        """The TokenTracer record's fields for the call (or the attempt ``since``)."""
        ...


class Hook:
    """A hook with every method a no-op: subclass and override what you need."""

    def on_call_start(self, call: CallInfo) -> None:
        """The call's request is built (config, messages); nothing has been sent."""

    def on_first_token(self, call: CallInfo) -> None:
        """The call's first text, reasoning or tool-call delta arrived."""

    def on_chunk(self, call: CallInfo) -> None:
        """A text, reasoning or tool-call delta arrived (the first one included)."""

    def on_attempt_failed(self, call: CallInfo, error: LLMError, will_retry: bool) -> None:
        """An attempt failed with ``error``; ``will_retry``: another attempt follows."""

    def on_failover(self, call: CallInfo, member: str, error: LLMError) -> None:
        """A Router's member ``member`` failed before anything reached the caller; the
        router tries the next one."""

    def on_call_end(self, call: CallInfo) -> None:
        """The call is over (answer, error, consumer left, cancelled): exactly once."""

    def on_tool_start(self, run: ToolRun) -> None:
        """``run_tools`` is about to run one tool call (in the task that runs it)."""

    def on_tool_end(self, run: ToolRun) -> None:
        """That tool call is over: ``run.result`` is its result content, ``run.error`` the
        class name of what it raised (the model reads it as an ``"Error: ..."`` result)."""

    def on_embed_start(self, run: EmbedRun) -> None:
        """An Embedder is about to send one embeddings request (in the task that sends it)."""

    def on_embed_end(self, run: EmbedRun) -> None:
        """That request is over, on every way out: ``run.input_tokens`` and
        ``run.dimension_count`` when it answered, ``run.error`` when it did not."""


class ToolRun:
    """One tool call run by ``run_tools``, as its hooks see it: ``call`` (the
    :class:`~synapsekit.llm.types.ToolCall`), the tool's ``description``, and at
    ``on_tool_end`` its ``result`` content and ``error``; ``state`` is the hooks' own."""

    __slots__ = ("call", "description", "error", "result", "started", "state")

    def __init__(self, call: ToolCall, description: str | None) -> None:
        self.call = call
        self.description = description
        self.started = time.perf_counter()
        self.result: Any = None
        self.error: str | None = None
        self.state: dict[Any, Any] = {}


class EmbedRun:
    """One embeddings request of an :class:`~synapsekit.rag.embeddings.Embedder` -- one
    batch of texts, its retries included -- as its hooks see it.

    ``llm`` and ``config``: the chat LLM the embedder sends through and its config
    (provider, model, endpoint); ``count``: texts in the request; ``dimensions`` and
    ``encoding_formats``: what was asked for (None / empty: the model's defaults). At
    ``on_embed_end``: ``attempts``, ``failures`` (``(time_ns, error)`` of each retried
    attempt), ``input_tokens`` (None when the provider reported none), ``dimension_count``
    of the vectors, and ``error`` / ``exception`` when the request did not answer.
    ``state`` is the hooks' own."""

    __slots__ = (
        "attempts", "config", "count", "dimension_count", "dimensions", "encoding_formats",
        "error", "exception", "failures", "input_tokens", "llm", "started", "state",
    )

    def __init__(
        self, llm: BaseLLM, config: LLMConfig, count: int, dimensions: int | None,
        encoding_formats: tuple[str, ...],
    ) -> None:
        self.llm = llm
        self.config = config
        self.count = count
        self.dimensions = dimensions
        self.encoding_formats = encoding_formats
        self.started = time.perf_counter()
        self.attempts = 0
        self.failures: list[tuple[int, LLMError]] = []
        self.input_tokens: int | None = None
        self.dimension_count: int | None = None
        self.error: str | None = None
        self.exception: BaseException | None = None
        self.state: dict[Any, Any] = {}

    def retried(self, error: LLMError) -> None:
        """An attempt failed with ``error`` and another follows."""
        self.failures.append((time.time_ns(), error))

    def answered(self, vectors: list[list[float]], input_tokens: int | None) -> None:
        """The request's answer: its vectors (only their size is kept) and token count."""
        self.input_tokens = input_tokens
        self.dimension_count = len(vectors[0]) if vectors else None


_lock = threading.Lock()
_global: tuple[Any, ...] = ()
_warned: set[tuple[type, str]] = set()


def add_hook(hook: Any) -> None:
    """Register ``hook`` for every LLM call in the process (once: adding it again is a
    no-op)."""
    _check(hook)
    global _global
    with _lock:
        if not any(h is hook for h in _global):
            _global = (*_global, hook)


def remove_hook(hook: Any) -> None:
    """Unregister a process-wide hook (no-op if it is not registered)."""
    global _global
    with _lock:
        _global = tuple(h for h in _global if h is not hook)


def global_hooks() -> tuple[Any, ...]:
    """The process-wide hooks, in the order added."""
    return _global


def checked_hooks(hooks: Iterable[Any] | None) -> tuple[Any, ...]:
    """An LLM's ``hooks=`` as a tuple, each checked to have at least one hook method."""
    if hooks is None:
        return ()
    from synapsekit.errors import ConfigError

    if isinstance(hooks, (str, bytes)) or not isinstance(hooks, Iterable):
        raise ConfigError(f"hooks: a list of hook objects, not {type(hooks).__name__}")
    found = tuple(hooks)
    for hook in found:
        _check(hook)
    return found


def _check(hook: Any) -> None:
    if not any(callable(getattr(hook, name, None)) for name in HOOK_METHODS):
        from synapsekit.errors import ConfigError

        raise ConfigError(
            f"hooks: {type(hook).__name__} has none of the hook methods "
            f"({', '.join(HOOK_METHODS)}); see synapsekit.observability.Hook"
        )


def dispatch(hooks: tuple[Any, ...], method: str, *args: Any) -> None:
    """Call ``method`` on every hook that has it; a hook that raises is logged once (per
    hook class and method) and skipped."""
    for hook in hooks:
        found = getattr(hook, method, None)
        if found is None:
            continue
        try:
            found(*args)
        except Exception:
            key = (type(hook), method)
            if key not in _warned:
                _warned.add(key)
                log.exception(
                    "hook %s.%s raised; the call goes on (logged once)",
                    type(hook).__name__, method,
                )


def chunk_hooks(hooks: tuple[Any, ...]) -> tuple[Any, ...]:
    """The hooks that take ``on_chunk`` (so a call without any pays nothing per chunk)."""
    return tuple(h for h in hooks if callable(getattr(h, "on_chunk", None)) and (
        getattr(type(h), "on_chunk", None) is not Hook.on_chunk
    ))


@contextmanager
def embedding(
    llm: BaseLLM, config: LLMConfig, count: int, dimensions: int | None = None,
    encoding_formats: tuple[str, ...] = (),
) -> Iterator[EmbedRun]:
    """The hook moments of one embeddings request: ``on_embed_start`` before it is sent,
    ``on_embed_end`` however it ends (answer, error, cancellation), both in the task that
    sends it; the process-wide hooks are read once, at the start."""
    observers = _global
    run = EmbedRun(llm, config, count, dimensions, encoding_formats)
    if observers:
        dispatch(observers, "on_embed_start", run)
    try:
        yield run
    except BaseException as exc:
        run.error, run.exception = type(exc).__name__, exc
        raise
    finally:
        if observers:
            dispatch(observers, "on_embed_end", run)


#: The call a nested call belongs to (set by a Router around each step of its call, as
#: an object whose ``call`` attribute is filled by the router's own call when it starts).
ENCLOSING: ContextVar[Any] = ContextVar("synapsekit_enclosing_call", default=None)
