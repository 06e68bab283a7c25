"""BaseLLM: the one call path every provider shares.

A provider implements one method, :meth:`BaseLLM._stream`: send one request, yield text
:class:`Chunk` s, then one final chunk with usage and finish reason. It never retries,
sleeps, caches or counts. Everything else is derived here, once::

    stream / generate / respond / *_with_messages / stream_chunks / *_sync
        -> build_messages (validate, add system prompt)
        -> capability check (parts, tools, structured output, reasoning the provider or
           model cannot take: UnsupportedFeatureError, no request)
        -> cache lookup (a hit replays the stored answer; traced as a hit, zero cost)
        -> rate limiter (every attempt passes through it)
        -> provider._stream, retried only before the first token (or tool-call delta)
           reaches the caller; tool-call deltas assembled per index into ToolCalls
        -> usage recorded (tokens_used, tokens-per-minute correction, TokenTracer + cost)
        -> cache store, only for a complete, normally finished, non-empty answer
        -> final chunk (usage, finish reason, metadata)

``generate()`` is ``"".join(stream())`` and ``respond()`` the same stream gathered into a
:class:`Response`; there is no second code path. Per-call state
lives in the call (locals of :meth:`_run`), never on the instance, so any number of
concurrent calls on one object account tokens exactly.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import importlib
import inspect
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from synapsekit._lazy import Deferred
from synapsekit.errors import (
    ConfigError,
    ConnectionError,
    ContentFilterError,
    LLMError,
    StreamInterruptedError,
    TimeoutError,
    ToolCallError,
    UnsupportedFeatureError,
)
from synapsekit.llm import _sync
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Capabilities, check_parts, text_of
from synapsekit.llm.registry import PROVIDERS, strip_provider_prefix
from synapsekit.llm.types import (
    FINISH_REASONS,
    Chunk,
    Message,
    MessagesInput,
    ProviderData,
    Response,
    ToolCall,
    ToolCallDelta,
    Usage,
    build_messages,
)
from synapsekit.observability import hooks as hooks_module

# The call path's parts (cache, limiter, retry, deadlines, spend, connection, cassettes)
# are imported when the first LLM is built or called, not with the class: importing
# BaseLLM (and every provider class) stays cheap.
if TYPE_CHECKING:
    from synapsekit.llm.budget import Budget
    from synapsekit.llm.cache.base import Cache
    from synapsekit.llm.connection import Connection
    from synapsekit.llm.counting import TokenCount
    from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable
    from synapsekit.llm.ratelimit import RateLimiter
    from synapsekit.llm.spend import CallSpend
    from synapsekit.observability.tracer import TokenTracer

__all__ = ["BaseLLM"]

log = logging.getLogger("synapsekit")

#: Finish reasons whose answers are never cached: cut by max_tokens, or filtered.
UNCACHED_FINISH = frozenset({"length", "content_filter"})

T = TypeVar("T")

#: What a single call may set, e.g. ``generate(p, temperature=0)``: LLMConfig fields, the
#: call's own credential and endpoint (``api_key``, ``base_url``: see docs/per-call-keys.md)
#: and its ``budget`` (not a config field: it wins over the LLM's for that call).
CALL_OVERRIDES = frozenset({
    "temperature", "top_p", "max_tokens", "stop", "system_prompt", "params",
    "tools", "tool_choice", "parallel_tool_calls", "response_schema",
    "reasoning_effort", "reasoning_budget", "cache_prompt",
    "api_key", "base_url", "budget",
    "first_token_timeout", "idle_timeout", "total_timeout",  # synapsekit's own deadlines
})
#: The per-call settings that are not LLMConfig fields.
_NOT_CONFIG = frozenset({"budget"})


class BaseLLM(ABC):
    """An LLM: one provider, one model, one config. Subclasses implement :meth:`_stream`."""

    #: The registry name of the provider this class speaks to.
    provider: ClassVar[str]
    #: How this provider is reached (SDK client per loop, credential, endpoint): the
    #: protocol module's :class:`~synapsekit.llm.connection.Connection` subclass.
    connection_class: Deferred[type[Connection]] = Deferred(
        "synapsekit.llm.connection", "Connection"
    )
    #: What this provider's API can take (content parts, tools, structured output,
    #: reasoning controls); checked before any request. A custom provider: text only.
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: A custom provider's own ``stream`` / ``stream_with_messages`` (set for it).
    _custom: ClassVar[Mapping[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A custom provider written against SynapseKit's page overrides the public
        ``stream(prompt)`` (and maybe ``stream_with_messages``) instead of ``_stream``.
        Such an override becomes the class's provider stream, and the public methods stay
        the base class's, so ``generate()``, caching, retries, the rate limiter and the
        tracer wrap it through the one call path (see :func:`_custom_stream`). A class
        that inherits a real ``_stream`` (a subclass of OpenAILLM wrapping ``stream``) is
        left as written."""
        super().__init_subclass__(**kwargs)
        inherited = getattr(cls, "_stream", None)
        if inherited is not _custom_stream and not getattr(
            inherited, "__isabstractmethod__", False
        ):
            return
        own = {
            name: cls.__dict__[name]
            for name in ("stream", "stream_with_messages")
            if name in cls.__dict__
        }
        if not own:
            return
        cls._custom = {**cls._custom, **own}
        for name in own:
            setattr(cls, name, getattr(BaseLLM, name))
        cls._stream = _custom_stream  # type: ignore[method-assign]
        if "provider" not in cls.__dict__ and not hasattr(cls, "provider"):
            cls.provider = "custom"

    def __init__(
        self,
        config: LLMConfig,
        *,
        tracer: TokenTracer | None = None,
        cache: Cache | None = None,
        rate_limiter: RateLimiter | None = None,
        budget: Budget | None = None,
        hooks: Iterable[Any] | None = None,
    ) -> None:
        lib = _lib()
        if not isinstance(config, LLMConfig):
            raise ConfigError(
                f"{type(self).__name__} takes an LLMConfig, not {type(config).__name__}"
            )
        if cache is not None and not isinstance(cache, lib.Cache):
            raise ConfigError(
                f"cache: must be a synapsekit Cache (e.g. MemoryCache()), not "
                f"{type(cache).__name__}; to switch the default cache on, set "
                f"LLMConfig(cache=True)"
            )
        if rate_limiter is not None and not isinstance(rate_limiter, lib.RateLimiter):
            raise ConfigError(
                f"rate_limiter: must be a synapsekit RateLimiter, not "
                f"{type(rate_limiter).__name__}"
            )
        _check_budget(budget)
        spec = PROVIDERS.get(self.provider)
        if spec is not None:  # a registered provider, not a test double
            config = self._own_config(config)
        self.config = config
        #: Records every call (tokens, latency, cost); settable, shareable between LLMs.
        self.tracer = tracer
        #: This LLM's own hooks (see :mod:`synapsekit.observability.hooks`), run before the
        #: process-wide ones; a tuple, settable.
        self.hooks: tuple[Any, ...] = hooks_module.checked_hooks(hooks)
        self._tokens = {"input": 0, "output": 0}
        self._tokens_lock = threading.Lock()
        #: The SDK, the credential, the endpoint and one SDK client per event loop.
        self.connection = self.connection_class(self.provider, config, spec)
        #: The connections of per-call keys / base URLs (``generate(p, api_key=...)``).
        self._pool = lib.ConnectionPool(
            lambda key, url: self.connection_class(
                self.provider, replace(self.config, api_key=key, base_url=url), spec
            )
        )
        #: The spend limit of every call of this LLM (a call's ``budget=`` wins).
        self.budget = budget
        self._given_limiter = rate_limiter is not None
        #: Whose cached answers this LLM may see: the key's fingerprint or the namespace.
        self._credential = lib.credential_scope(self._api_key, config.cache_namespace)
        self._endpoint = self.connection.endpoint
        # Given objects win; the defaults are built from the config and shared with every
        # other LLM object of the same settings in the process.
        self._cache: Cache | None = cache
        if cache is None and config.cache:
            from synapsekit.llm.cache.registry import open_cache

            self._cache = open_cache(config)
        self._limiter: RateLimiter | None = (
            rate_limiter if rate_limiter is not None
            else lib.limiter_for(config, self.provider, self._api_key, self._endpoint)
        )

    # ----------------------------------------------------------------- provider API

    @abstractmethod
    def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        """Send one request and yield its chunks: text deltas, then a final chunk.

        Text chunks carry ``text`` (or ``reasoning``) only; the final chunk carries
        ``usage``, ``finish_reason`` and any ``metadata``, and no text. A provider that
        learns part of the usage early (Anthropic's input tokens in ``message_start``) may
        yield it in a chunk of its own, marked ``complete=False``: the last report wins,
        and a stream that fails later is traced with it. Map every SDK exception to
        :mod:`synapsekit.errors` here; close the response when closed early.
        """

    @property
    def _sdk(self) -> ModuleType | None:
        """The provider SDK module (the connection's)."""
        return self.connection.sdk

    @property
    def _api_key(self) -> str | None:
        """The resolved API key (the connection's); never shown in a repr or message."""
        return self.connection.api_key

    def _error_table(self) -> ErrorTable | None:
        """How this protocol's SDK reports failure (see ``providers/_errors.py``)."""
        return None

    def _map_errors(self, config: LLMConfig) -> ErrorMapper:
        """A context manager translating the SDK's exceptions of one call, at one depth."""
        from synapsekit.llm.providers._errors import NO_TABLE, ErrorMapper

        connection = self._connection_for(config)
        return ErrorMapper(
            self._error_table() or NO_TABLE,
            provider=self.provider,
            model=config.model,
            endpoint=connection.base_url,
            timeout=config.timeout,
            secret=connection.api_key,
        )

    async def _client(self, config: LLMConfig | None = None) -> Any:
        """This event loop's SDK client for the call's credential and endpoint (see
        :meth:`Connection.client` and :meth:`_connection_for`)."""
        return await self._connection_for(config).client()

    def _connection_for(self, config: LLMConfig | None) -> Connection:
        """The LLM's own connection, unless the call brought its own ``api_key`` or
        ``base_url``: then the pooled connection of that key and endpoint."""
        if config is None or config is self.config or (
            config.api_key == self.config.api_key and config.base_url == self.config.base_url
        ):
            return self.connection
        # Built from the LLM's config with only the key and endpoint changed (timeouts
        # and headers stay the LLM's), and only on a miss.
        return self._pool.get(config.api_key, config.base_url)

    @property
    def base_url(self) -> str | None:
        """The URL the SDK client is given (see :attr:`Connection.base_url`)."""
        return self.connection.base_url

    @property
    def endpoint(self) -> str | None:
        """The effective endpoint, fixed when the LLM is built: what the requests reach.
        It scopes the answer cache and the rate-limit bucket. Usually :attr:`base_url`;
        providers that route by region include it (Bedrock)."""
        return self._endpoint

    # ----------------------------------------------------------------- public API

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def tokens_used(self) -> dict[str, int]:
        """Input and output tokens of every finished call of this object, summed."""
        with self._tokens_lock:
            return dict(self._tokens)

    @property
    def cache_stats(self) -> dict[str, int]:
        """Hits, misses and size of this LLM's cache (shared by LLMs of the same settings)."""
        if self._cache is None:
            return {"hits": 0, "misses": 0, "size": 0}
        return self._cache.stats()

    async def clear_cache(self) -> None:
        """Remove every answer of the cache this LLM uses -- shared by every LLM object with
        the same cache settings (or the same ``cache=`` object), whatever their key or
        namespace; pass an own cache object (``make_llm(..., cache=MemoryCache())``) to
        clear apart."""
        if self._cache is not None:
            await self._cache.clear()

    def stream(self, prompt: str, **overrides: Any) -> AsyncGenerator[str, None]:
        """Yield the answer to ``prompt`` as text tokens."""
        return self._text(prompt, overrides)

    def stream_with_messages(
        self, messages: MessagesInput, **overrides: Any
    ) -> AsyncGenerator[str, None]:
        """Yield the answer to a conversation (a list of role/content dicts) as text tokens."""
        return self._text(messages, overrides)

    def stream_chunks(
        self, messages: MessagesInput, **overrides: Any
    ) -> AsyncGenerator[Chunk, None]:
        """Yield every :class:`Chunk`: text, reasoning, and the final usage chunk."""
        return self._run(messages, overrides, reasoning=True)

    async def generate(self, prompt: str, **overrides: Any) -> str:
        """The whole answer to ``prompt``: ``"".join(stream(prompt))``."""
        return await self._join(prompt, overrides)

    async def generate_with_messages(self, messages: MessagesInput, **overrides: Any) -> str:
        """The whole answer to a conversation."""
        return await self._join(messages, overrides)

    def generate_sync(self, prompt: str, **overrides: Any) -> str:
        """Blocking :meth:`generate`; works inside a running event loop too (notebooks)."""
        return _sync.run_sync(self.generate(prompt, **overrides))

    def generate_with_messages_sync(self, messages: MessagesInput, **overrides: Any) -> str:
        return _sync.run_sync(self.generate_with_messages(messages, **overrides))

    def stream_sync(self, prompt: str, **overrides: Any) -> Iterator[str]:
        """Blocking :meth:`stream`, for scripts and CLIs."""
        return _sync.iterate_sync(self.stream(prompt, **overrides))

    async def respond(self, messages: MessagesInput, **overrides: Any) -> Response:
        """The whole answer as a :class:`Response`: text, tool calls (by index), reasoning,
        usage, normalised finish reason, cost, and ``message`` -- the assistant turn to
        append to the history (tool calls and ``provider_data`` included). Read from the
        same stream as :meth:`generate`, buffered, so a stream cut before the end is
        retried like any transient failure. ``tools=[...]``, ``tool_choice=...`` and the
        other per-call settings go in ``overrides``."""
        text: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCall] = []
        final = Chunk()
        async with aclosing(
            self._run(messages, overrides, reasoning=True, buffered=True)
        ) as chunks:
            async for chunk in chunks:
                if chunk.text:
                    text.append(chunk.text)
                if chunk.reasoning:
                    thinking.append(chunk.reasoning)
                if chunk.tool_call is not None:
                    calls.append(chunk.tool_call)
                if chunk.usage is not None:
                    final = chunk
        usage = final.usage if final.usage is not None else Usage(complete=False)
        metadata = dict(final.metadata or {})
        answer = "".join(text)
        message = Message(role="assistant", content=answer)
        if calls:
            message["tool_calls"] = list(calls)
        if final.provider_data is not None:
            message["provider_data"] = final.provider_data
        return Response(
            text=answer,
            tool_calls=tuple(calls),
            reasoning="".join(thinking),
            usage=usage,
            finish_reason=final.finish_reason or ("tool_calls" if calls else "stop"),
            cost_usd=self._cost(usage, cache_hit=bool(metadata.get("cache_hit"))),
            message=message,
            metadata=metadata,
        )

    def respond_sync(self, messages: MessagesInput, **overrides: Any) -> Response:
        """Blocking :meth:`respond`."""
        return _sync.run_sync(self.respond(messages, **overrides))

    async def run_tools(
        self,
        messages: MessagesInput,
        *,
        tools: Any,
        max_steps: int = 8,
        **overrides: Any,
    ) -> Response:
        """Run the model and the Python tools it asks for until it answers (see
        :func:`synapsekit.llm.tool_loop.run_tools`); the final :class:`Response` carries
        the whole ``transcript``."""
        tool_loop = importlib.import_module("synapsekit.llm.tool_loop")
        return cast(
            Response,
            await tool_loop.run_tools(
                self, messages, tools=tools, max_steps=max_steps, **overrides
            ),
        )

    async def call_with_tools(
        self, messages: MessagesInput, tools: Any
    ) -> dict[str, Any]:
        """SynapseKit's name: one model turn with OpenAI-format tool dicts; returns
        ``{"content", "tool_calls"}`` (see :func:`synapsekit.llm.tool_loop.call_with_tools`)."""
        tool_loop = importlib.import_module("synapsekit.llm.tool_loop")
        return cast(dict[str, Any], await tool_loop.call_with_tools(self, messages, tools))

    async def generate_object(
        self, messages: MessagesInput, *, schema: Any, retries: int = 2, **overrides: Any
    ) -> Any:
        """A validated object of ``schema`` (a pydantic model or a JSON Schema dict),
        re-asking up to ``retries`` times (see :mod:`synapsekit.llm.structured`)."""
        structured = importlib.import_module("synapsekit.llm.structured")
        return await structured.generate_object(
            self, messages, schema=schema, retries=retries, **overrides
        )

    def stream_object(
        self, messages: MessagesInput, *, schema: Any, **overrides: Any
    ) -> AsyncIterator[Any]:
        """Partial objects of ``schema`` as the JSON arrives (see
        :mod:`synapsekit.llm.structured`)."""
        structured = importlib.import_module("synapsekit.llm.structured")
        return cast(
            AsyncIterator[Any],
            structured.stream_object(self, messages, schema=schema, **overrides),
        )

    async def count_tokens(
        self, messages: MessagesInput, *, tools: Any = None, **overrides: Any
    ) -> TokenCount:
        """The input tokens of the request a call with these messages, tools and settings
        would send (system prompt included), counted by the provider's endpoint where it
        has one, else locally; ``.exact`` / ``.method`` say how (see
        :mod:`synapsekit.llm.counting`). Nothing is generated or billed."""
        counting = importlib.import_module("synapsekit.llm.counting")
        return cast(
            "TokenCount",
            await counting.count_tokens(self, messages, tools=tools, **overrides),
        )

    async def aclose(self) -> None:
        """Close the SDK clients this object made (one per event loop it was used on; a
        loop's client is also closed when that loop shuts down), per-call keys' included.
        The LLM stays usable."""
        await self.connection.aclose()
        await self._pool.aclose()

    def close(self) -> None:
        """Blocking :meth:`aclose`."""
        _sync.run_sync(self.aclose())

    async def __aenter__(self) -> BaseLLM:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    # ----------------------------------------------------------------- the call path

    async def _run(
        self,
        messages: MessagesInput,
        overrides: dict[str, Any],
        *,
        reasoning: bool,
        buffered: bool = False,
    ) -> AsyncGenerator[Chunk, None]:
        """The call path. Streams unless ``buffered`` (``generate()``, ``respond()``): then
        nothing reaches the caller before the answer is complete, so a stream cut after
        tokens is retried like any transient failure, and the text comes as one chunk at
        the end (reasoning, when asked for, as one chunk before it; then the tool calls).

        Tool-call deltas pass on as they arrive (a delta counts as delivered: no retry
        after it) and are assembled per index (:class:`_Assembly`); a call is parsed when
        a delta closes it (``done``) or the stream ends, and yielded as
        ``Chunk(tool_call=...)``. Invalid JSON is a :class:`ToolCallError` raised once the
        stream has ended (so the call is traced with its usage), never a ``{}``.

        Every way out -- the answer, an error, a consumer that leaves early
        (``GeneratorExit``), a cancelled task (also ``wait_for`` expiry) -- leaves exactly
        one record of the call (see docs/tracing.md); the ``except BaseException`` below
        only records (no await) and re-raises, so cancellation and closing propagate.
        """
        lib = _lib()
        call = _Call(self, self.config)
        leased: Connection | None = None
        spend: CallSpend | None = None
        try:
            budget = overrides.get("budget")
            budget = self.budget if budget is None else budget
            config = call.config = self._call_config(overrides)
            deadline = lib.Deadline(config, self.provider)  # total_timeout counts from here
            turns = build_messages(messages, config.system_prompt)
            self._check_request(turns, config, messages)
            call.begin(turns, buffered)
            cache = self._cache
            credential, endpoint, limiter = self._credential, self._endpoint, self._limiter
            if config is not self.config and self._connection_for(config) is not self.connection:
                # The call's own key or endpoint: its pooled connection, held for the call,
                # scopes the cache and the limiter as an LLM of that key would.
                leased = await self._pool.lease(config.api_key, config.base_url)
                credential = lib.credential_scope(leased.api_key, config.cache_namespace)
                endpoint = leased.endpoint
                if not self._given_limiter:
                    limiter = lib.limiter_for(config, self.provider, leased.api_key, endpoint)
            key = (
                lib.cache_key(config, turns, credential=credential, endpoint=endpoint)
                if cache is not None else ""
            )
            if cache is not None:
                hit = await cache.get(key)
                if hit is not None:
                    call.cache_hit = True
                    call.tool_calls = len(hit.tool_calls)
                    if hit.reasoning and reasoning:
                        call.token()
                        yield Chunk(reasoning=hit.reasoning)
                    for piece in hit.chunks:
                        call.token()
                        yield Chunk(piece)
                    for done in hit.tool_calls:
                        call.token()
                        if not buffered:
                            import json

                            yield Chunk(tool_delta=ToolCallDelta(
                                done.index, done.id, done.name,
                                json.dumps(dict(done.arguments), ensure_ascii=False), True,
                            ))
                        yield Chunk(tool_call=done)
                    call.finish(
                        Usage(), finish=hit.finish_reason, metadata=hit.metadata,
                        output=hit.chunks, calls=hit.tool_calls,
                    )
                    replayed = {**(hit.metadata or {}), "cache_hit": True}
                    yield Chunk(
                        usage=Usage(), finish_reason=hit.finish_reason, metadata=replayed,
                        provider_data=hit.provider_data,
                    )
                    return
            if budget is not None:  # the worst case, reserved before anything is sent
                from synapsekit.llm.spend import CallSpend

                spend = await CallSpend.reserve(budget, self.provider, config, turns)
            estimate = 0  # tokens reserved per attempt, when a tokens-per-minute limit is set
            if limiter is not None and limiter.counts_tokens:
                estimate = lib.estimate_tokens(
                    turns, config.max_tokens, tools=config.tools,
                    response_schema=config.response_schema,
                )
            attempt = 0
            while True:
                parts: list[str] = []
                thinking: list[str] = []
                tools = _Assembly(self.provider, config.model)
                finish: str | None = None
                metadata: Mapping[str, Any] | None = None
                provider_data: ProviderData | None = None
                call.begin_attempt()
                if limiter is not None:
                    await limiter.acquire(estimate)
                try:
                    call.requested = True
                    # The provider's stream under the deadlines, or a cassette's
                    # (synapsekit.testing: it records the watched stream, cuts included).
                    stream = lib.provider_stream(self, turns, config, endpoint, deadline.watch)
                    async with _closing(stream) as chunks:
                        async for chunk in chunks:
                            if chunk.text:
                                parts.append(chunk.text)
                                call.token()
                                if not buffered:
                                    call.delivered = True
                                    yield chunk
                            elif chunk.reasoning:
                                thinking.append(chunk.reasoning)
                                call.received = True
                                if reasoning and not buffered:
                                    call.token()
                                    call.delivered = True
                                    yield chunk
                            delta = chunk.tool_delta
                            if delta is not None:
                                call.token()
                                closed = tools.add(delta)
                                if not buffered:
                                    call.delivered = True
                                    # The provider's chunk as it is (no copy per fragment),
                                    # unless it carries more than the delta.
                                    yield chunk if (
                                        not chunk.text and chunk.usage is None
                                        and chunk.finish_reason is None
                                        and chunk.provider_data is None
                                    ) else Chunk(tool_delta=delta)
                                    if closed is not None:
                                        yield Chunk(tool_call=closed)
                            if chunk.usage is not None:
                                call.usage = chunk.usage
                                call.received = True
                            if chunk.finish_reason is not None:
                                finish = chunk.finish_reason
                            if chunk.metadata is not None:
                                metadata = chunk.metadata
                            if chunk.provider_data is not None:
                                provider_data = chunk.provider_data
                    if finish == "content_filter":
                        raise ContentFilterError(
                            "The provider's content filter stopped the answer.",
                            provider=self.provider,
                            model=config.model,
                        )
                except LLMError as exc:
                    if not call.received:
                        await _settle(limiter, estimate, Usage())  # nothing was answered
                    delay = lib.backoff_delay(attempt, config.retry_delay, exc.retry_after)
                    if call.delivered or not lib.should_retry(
                        exc, attempt, config.max_retries
                    ) or (
                        not deadline.allows(delay)  # the back-off would end past total_timeout
                    ):
                        if call.delivered or parts:
                            raise _interrupted(
                                exc, "".join(parts), call.reported(),
                                tool_calls=len(tools.open) + len(tools.closed),
                            ) from exc
                        raise
                    if spend is not None:
                        spend.attempt(call.usage, answered=call.received)
                    call.retrying(exc)  # answered, maybe billed, then lost: its own record
                    await asyncio.sleep(delay)
                    attempt += 1
                    continue
                usage = call.usage if call.usage is not None else Usage(complete=False)
                await _settle(limiter, estimate, usage)
                if spend is not None:
                    spend.attempt(call.usage, answered=True)
                    await spend.settle()
                still_open = tools.close_all()  # closed at the end of the stream, by index
                calls = tools.calls()
                call.tool_calls = len(calls)
                if tools.error is not None:
                    call.finish(usage, error=tools.error)
                    raise tools.error
                finish, metadata = _normalised_finish(finish, metadata, bool(calls))
                call.finish(usage, finish=finish, metadata=metadata, output=parts, calls=calls)
                if (
                    cache is not None and (parts or calls) and finish not in UNCACHED_FINISH
                ):
                    # Written in the background: the store never delays the final chunk.
                    from synapsekit.llm.cache.codec import CachedAnswer

                    cache.set_in_background(key, CachedAnswer(
                        tuple(parts), finish, usage, metadata,
                        tool_calls=tuple(calls), reasoning="".join(thinking),
                        provider_data=provider_data,
                    ))
                if buffered:
                    if reasoning and thinking:
                        yield Chunk(reasoning="".join(thinking))
                    if parts:
                        yield Chunk("".join(parts))
                    for done in calls:
                        yield Chunk(tool_call=done)
                else:
                    for done in still_open:
                        yield Chunk(tool_call=done)
                yield Chunk(
                    usage=usage, finish_reason=finish, metadata=metadata,
                    provider_data=provider_data,
                )
                return
        except BaseException as exc:  # GeneratorExit and CancelledError included: re-raised
            call.end(exc)
            if spend is not None and not spend.settled:  # what the attempt reported, else
                spend.attempt(call.usage, answered=call.received)  # its reservation
                try:
                    await spend.settle()
                except Exception:  # the call's own exception is the one to see
                    log.exception("settling a %s call's budget failed", self.provider)
            raise
        finally:
            if leased is not None:
                await self._pool.release(leased)

    def _check_request(
        self, turns: list[Message], config: LLMConfig, given: MessagesInput
    ) -> None:
        """Refuse, before any request, what this provider or model cannot take: content
        parts, tools and tool turns, a tool_choice, ``parallel_tool_calls=False`` without
        the switch, a response schema, reasoning settings (``"none"`` / a budget of 0 are
        always allowed). Reads the class's :attr:`capabilities` and the model's rules
        (``models.json``: per-model image / document / tool limits, reasoning)."""
        caps = type(self).capabilities
        uses_parts = any(not isinstance(t["content"], str) for t in turns)
        history_tools = any("tool_calls" in t or t["role"] == "tool" for t in turns)
        effort, budget = config.reasoning_effort, config.reasoning_budget
        thinks = (effort is not None and effort != "none") or bool(budget)
        if not (
            uses_parts or history_tools or thinks or config.tools
            or config.tool_choice is not None or config.parallel_tool_calls is False
            or config.response_schema is not None
        ):
            return  # a text-only request: nothing to check (the common case, kept cheap)
        from synapsekit.llm.models import RequestRules, narrowed, rules_for

        # Per-model rules are the registry's providers' (models.json); a test double or a
        # custom provider is described by its capabilities alone.
        rules = (
            rules_for(self.provider, config) if self.provider in PROVIDERS
            else RequestRules(reasoning="both")
        )
        caps = narrowed(caps, rules)
        who = f"{self.provider} (model {config.model!r})"
        offset = 0 if isinstance(given, str) or len(given) == len(turns) else 1
        for i, turn in enumerate(turns):
            where = f"messages[{i - offset}] ({turn['role']})"
            if isinstance(given, str):
                where = "The prompt"
            check_parts(turn["content"], caps, who, where)
            if not caps.tools and ("tool_calls" in turn or turn["role"] == "tool"):
                what = "tool calls" if "tool_calls" in turn else "a tool result"
                raise self._unsupported(f"{where} holds {what}", caps, config)
        if config.tools and not caps.tools:
            raise self._unsupported("tools", caps, config)
        choice = config.tool_choice
        if choice is not None:
            name = "name" if isinstance(choice, Mapping) else str(choice)
            if not caps.tools or name not in caps.tool_choices:
                raise self._unsupported(
                    f"tool_choice={choice!r}" if name != "name"
                    else f"tool_choice={dict(choice)!r} (forcing one tool)",  # type: ignore[arg-type]
                    caps, config,
                )
        if config.parallel_tool_calls is False and not caps.parallel_tool_calls:
            raise self._unsupported(
                "parallel_tool_calls=False (it has no switch for parallel calls)", caps, config
            )
        if config.response_schema is not None and not caps.structured:
            raise self._unsupported("a response_schema (structured output)", caps, config)
        if thinks and (not caps.reasoning or not rules.reasoning):
            setting = (
                f"reasoning_effort={effort!r}" if effort is not None and effort != "none"
                else f"reasoning_budget={budget!r}"
            )
            raise self._unsupported(setting, caps, config, model_level=bool(caps.reasoning))

    def _unsupported(
        self, what: str, caps: Capabilities, config: LLMConfig, *, model_level: bool = False
    ) -> UnsupportedFeatureError:
        limit = (
            f"the model {config.model!r} on {self.provider} takes no reasoning controls"
            if model_level else f"{self.provider} (model {config.model!r}) does not take {what}"
        )
        return UnsupportedFeatureError(
            f"{what}: {limit}; it accepts: {_accepts(caps)}. Nothing was sent."
        )

    def _cost(self, usage: Usage, *, cache_hit: bool) -> float | None:
        """The call's USD cost, as the tracer computes it (0.0 for a cache hit, None for a
        model without a known price)."""
        if cache_hit:
            return 0.0
        from synapsekit.llm import pricing

        return pricing.priced(self.provider, self.config.model, usage)[0]

    async def _text(
        self, messages: MessagesInput, overrides: dict[str, Any]
    ) -> AsyncGenerator[str, None]:
        async with aclosing(self._run(messages, overrides, reasoning=False)) as chunks:
            async for chunk in chunks:
                if chunk.text:
                    yield chunk.text

    async def _join(self, messages: MessagesInput, overrides: dict[str, Any]) -> str:
        # The text stream() would yield, read from the same call path, buffered: nothing
        # reaches the caller before the end, so a cut after tokens can still be retried.
        async with aclosing(
            self._run(messages, overrides, reasoning=False, buffered=True)
        ) as chunks:
            return "".join([chunk.text async for chunk in chunks if chunk.text])

    def _record(self, usage: Usage) -> None:
        with self._tokens_lock:
            self._tokens["input"] += usage.input_tokens
            self._tokens["output"] += usage.output_tokens

    def _call_config(self, overrides: dict[str, Any]) -> LLMConfig:
        """The call's config: the LLM's with the call's overrides. A per-call ``api_key``
        must be a non-empty string and a ``base_url`` an http(s) URL (LLMConfig's check):
        a ConfigError before any request, never naming the key."""
        if not overrides:
            return self.config
        unknown = set(overrides) - CALL_OVERRIDES
        if unknown:
            raise ConfigError(
                f"{', '.join(sorted(unknown))}: not a per-call setting; "
                f"a call may override: {', '.join(sorted(CALL_OVERRIDES))}"
            )
        if "api_key" in overrides:
            _check_call_key(overrides["api_key"])
        if "budget" in overrides:
            _check_budget(overrides["budget"])
        fields = {k: v for k, v in overrides.items() if k not in _NOT_CONFIG}
        return replace(self.config, **fields) if fields else self.config

    # ----------------------------------------------------------------- construction

    def _own_config(self, config: LLMConfig) -> LLMConfig:
        """The config with this class's provider set and a ``"<provider>:"`` prefix naming
        it taken off the model (once). The provider is known here, so nothing else is
        stripped: ``OllamaLLM(LLMConfig(model="mistral:7b"))`` asks for ``mistral:7b``."""
        if config.provider is not None and config.provider != self.provider:
            raise ConfigError(
                f"provider: {type(self).__name__} speaks to {self.provider!r}, "
                f"but the config says {config.provider!r}"
            )
        model = strip_provider_prefix(config.model, self.provider)
        if config.provider != self.provider or model != config.model:
            config = replace(config, provider=self.provider, model=model)
        return config


class _Lib:
    """The call path's parts: cache keys, connections, the limiter, deadlines, retries and
    cassettes. Imported when the first LLM is built, not with BaseLLM (importing BaseLLM
    and every provider class stays cheap), and held here so that a call reads them as
    attributes: an import statement per call would cost more."""

    def __init__(self) -> None:
        from synapsekit.llm.cache.base import Cache
        from synapsekit.llm.cache.key import cache_key, credential_scope
        from synapsekit.llm.connection import ConnectionPool
        from synapsekit.llm.deadlines import Deadline
        from synapsekit.llm.ratelimit import RateLimiter, estimate_tokens, limiter_for
        from synapsekit.llm.retry import backoff_delay, should_retry
        from synapsekit.testing.cassette import provider_stream

        self.Cache = Cache
        self.ConnectionPool = ConnectionPool
        self.Deadline = Deadline
        self.RateLimiter = RateLimiter
        self.backoff_delay = backoff_delay
        self.cache_key = cache_key
        self.credential_scope = credential_scope
        self.estimate_tokens = estimate_tokens
        self.limiter_for = limiter_for
        self.provider_stream = provider_stream
        self.should_retry = should_retry


#: The one :class:`_Lib`, built on first use.
_lib = functools.cache(_Lib)


async def _custom_stream(
    self: BaseLLM, messages: list[Message], config: LLMConfig
) -> AsyncGenerator[Chunk, None]:
    """The provider stream of a class that overrides the public ``stream(prompt)``: one
    attempt of the user's generator, its ``str`` tokens as text chunks (a ``Chunk`` it
    yields, e.g. a final one with ``Usage``, passes as it is).

    The user's ``stream`` gets the prompt text when the call is one user turn (the
    configured system prompt is ``self.config.system_prompt``), else a transcript of the
    turns; a class that also overrides ``stream_with_messages`` gets the turns there.
    Per-call overrides (``generate(p, temperature=0)``) are passed as keywords the method
    accepts. Python's own ``TimeoutError`` / ``ConnectionError`` / ``OSError`` become
    synapsekit's (retried by ``max_retries``); a provider that reports no usage is traced
    with zero tokens marked incomplete, never a silent complete 0.
    """
    custom = type(self)._custom
    turns = [m for m in messages if m["role"] != "system"]
    single = len(turns) == 1 and turns[0]["role"] == "user"
    argument: Any
    if "stream_with_messages" in custom and (not single or "stream" not in custom):
        method, argument = custom["stream_with_messages"], [dict(m) for m in messages]
    elif single:
        method, argument = custom["stream"], text_of(turns[0]["content"])
    else:
        method = custom["stream"]
        argument = "\n\n".join(f"{m['role']}: {text_of(m['content'])}" for m in turns)
    overrides = {
        name: getattr(config, name)
        for name in sorted(CALL_OVERRIDES - _NOT_CONFIG)
        if getattr(config, name) != getattr(self.config, name)
    }
    usage: Usage | None = None
    finish: str | None = None
    try:
        source = method(self, argument, **_accepted(method, overrides))
        async with aclosing(source) as pieces:
            async for piece in pieces:
                if isinstance(piece, str):
                    if piece:
                        yield Chunk(piece)
                elif isinstance(piece, Chunk):
                    usage = piece.usage or usage
                    finish = piece.finish_reason or finish
                    if piece.text or piece.reasoning:
                        yield Chunk(piece.text, piece.reasoning)
                else:
                    raise ConfigError(
                        f"{type(self).__name__}.stream yielded a {type(piece).__name__}; "
                        "a provider's stream yields str tokens (or synapsekit Chunks)"
                    )
    except LLMError:
        raise
    except builtins.TimeoutError as exc:
        raise TimeoutError(f"{exc!r}", provider=self.provider, model=config.model) from exc
    except OSError as exc:  # ConnectionError included
        raise ConnectionError(f"{exc!r}", provider=self.provider, model=config.model) from exc
    yield Chunk(usage=usage or Usage(complete=False), finish_reason=finish or "stop")


class _Assembly:
    """The tool calls of one attempt, assembled from deltas per ``index``: id and name from
    the first delta of an index that carries them, argument fragments concatenated in
    order; interleaved indexes stay apart. A call is parsed when a delta closes it or when
    the stream ends (:meth:`close_all`); the first invalid one is kept as ``error``."""

    __slots__ = ("closed", "error", "model", "open", "provider")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.open: dict[int, tuple[list[str | None], list[str]]] = {}
        self.closed: dict[int, ToolCall] = {}
        self.error: ToolCallError | None = None

    def add(self, delta: ToolCallDelta) -> ToolCall | None:
        """Take one delta; the call it completes (``done``), if any."""
        index = delta.index
        entry = self.open.get(index)
        if entry is not None and delta.id is None and delta.name is None:  # a fragment
            if delta.arguments:
                entry[1].append(delta.arguments)
            return self._close(index) if delta.done else None
        if entry is None:
            if index in self.closed:
                if not (delta.id or delta.name or delta.arguments):
                    return None  # a second stop for a call already closed
                # More of a call already closed: a new call, never merged into it.
                index = max(self.closed.keys() | self.open.keys()) + 1
            entry = self.open[index] = ([delta.id, delta.name], [])
        else:
            head = entry[0]
            if head[0] is None:
                head[0] = delta.id
            if head[1] is None:
                head[1] = delta.name
        if delta.arguments:
            entry[1].append(delta.arguments)
        return self._close(index) if delta.done else None

    def close_all(self) -> list[ToolCall]:
        """Close every call still open (the stream ended), by index."""
        found = [self._close(index) for index in sorted(self.open)]
        return [call for call in found if call is not None]

    def calls(self) -> list[ToolCall]:
        return [self.closed[index] for index in sorted(self.closed)]

    def _close(self, index: int) -> ToolCall | None:
        (call_id, name), fragments = self.open.pop(index)
        raw = "".join(fragments)
        call_id = call_id or f"call_{index}"
        import json

        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            problem = f"not valid JSON ({exc})"
        else:
            if isinstance(arguments, dict):
                if name:
                    done = self.closed[index] = ToolCall(call_id, name, arguments, index)
                    return done
                problem = "a call without a tool name"
            else:
                problem = f"a JSON {type(arguments).__name__}, not an object"
        if self.error is None:
            shown = raw if len(raw) <= 200 else raw[:200] + "..."
            self.error = ToolCallError(
                f"The model called tool {name!r} (id {call_id!r}) with arguments that are "
                f"{problem}: {shown!r}",
                raw_arguments=raw, tool_name=name, tool_call_id=call_id,
                provider=self.provider, model=self.model,
            )
        return None


def _accepts(caps: Capabilities) -> str:
    """What a provider accepts, in words, for an UnsupportedFeatureError."""
    found = ["text"]
    if caps.images:
        found.append("images" + (" (bytes or URL)" if caps.image_urls else " (bytes)"))
    if caps.documents:
        found.append("PDF documents")
    if caps.tools:
        order = ("auto", "none", "required", "name")
        choices = "/".join(c for c in order if c in caps.tool_choices) or "none"
        switch = ", parallel_tool_calls" if caps.parallel_tool_calls else ""
        found.append(f"tools (tool_choice {choices}{switch})")
    if caps.structured:
        found.append(f"structured output ({caps.structured})")
    if caps.reasoning:
        found.append(f"reasoning ({'/'.join(sorted(caps.reasoning))})")
    return ", ".join(found)


def _normalised_finish(
    finish: str | None, metadata: Mapping[str, Any] | None, has_calls: bool
) -> tuple[str | None, Mapping[str, Any] | None]:
    """The finish reason as one of :data:`FINISH_REASONS`: an unknown one (or ``stop``
    with tool calls) becomes ``tool_calls`` when the answer has calls, else ``stop``; the
    provider's own value is kept in ``metadata["raw_finish_reason"]`` unless the provider
    put one there already. None (a provider that reported none) stays None without calls."""
    if finish is None and not has_calls:
        return finish, metadata
    if finish in FINISH_REASONS and not (has_calls and finish == "stop"):
        return finish, metadata
    normal = "tool_calls" if has_calls else "stop"
    if finish is not None and (metadata is None or "raw_finish_reason" not in metadata):
        metadata = {**(metadata or {}), "raw_finish_reason": finish}
    return normal, metadata


def _accepted(method: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """The per-call overrides ``method`` can take as keywords."""
    if not overrides:
        return overrides
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return overrides
    names = {p.name for p in parameters}
    return {k: v for k, v in overrides.items() if k in names}


class _Call:
    """The bookkeeping of one call: its clock, the state of its current attempt, and the
    one record it leaves (:meth:`finish` or :meth:`end`, whichever comes first).

    It is also the object the call's hooks see (:mod:`synapsekit.observability.hooks`):
    :meth:`begin` announces the call, :meth:`token` its first token (and every chunk to
    hooks that take them), :meth:`retrying` / :meth:`end` failed attempts, and the record
    the call's end. The TokenTracer is the first of those hooks; without any, a call
    pays one empty-tuple check per moment."""

    __slots__ = (
        "attempt_started", "attempts", "cache_hit", "chunk_hooks", "chunks", "config",
        "delivered", "error", "exception", "final_usage", "finish_reason", "first_token",
        "hooks", "last_chunk", "llm", "metadata", "output", "output_calls", "parent",
        "received", "record", "recorded", "requested", "started", "state", "streaming",
        "tool_calls", "turns", "usage",
    )

    def __init__(self, llm: BaseLLM, config: LLMConfig) -> None:
        self.llm = llm
        self.config = config
        self.started = self.attempt_started = time.perf_counter()
        self.first_token: float | None = None  # of the current attempt
        self.usage: Usage | None = None  # the last usage the current attempt reported
        self.received = False  # the current attempt got text, reasoning or usage
        self.delivered = False  # something reached the caller: never retried from here
        self.requested = False  # a request was sent to the provider
        self.cache_hit = False
        self.recorded = False
        self.tool_calls = 0  # of the answer
        self.attempts = 0
        self.chunks = 0  # of the current attempt, counted when the call has hooks
        self.last_chunk: float | None = None
        self.hooks: tuple[Any, ...] = ()  # set by begin(): nothing is announced before
        self.chunk_hooks: tuple[Any, ...] = ()
        self.turns: list[Message] = []
        self.streaming = True
        self.parent: Any = None
        self.state: dict[Any, Any] = {}
        self.final_usage: Usage | None = None
        self.finish_reason: str | None = None
        self.metadata: Mapping[str, Any] | None = None
        self.output: Any = ()
        self.output_calls: Any = ()
        self.error: str | None = None
        self.exception: BaseException | None = None
        self.record: Any = None

    def begin(self, turns: list[Message], buffered: bool) -> None:
        """The request is built: the call's hooks (the LLM's, then the process-wide
        ones) see it start. A call refused before this (bad settings) announces nothing."""
        self.turns = turns
        self.streaming = not buffered
        enclosing = hooks_module.ENCLOSING.get()
        if enclosing is not None:
            if enclosing.call is None:  # this is the enclosing call (a Router's) itself
                enclosing.call = self
                outer = enclosing.outer
                self.parent = None if outer is None else outer.call
            else:
                self.parent = enclosing.call
        hooks = self.llm.hooks + hooks_module.global_hooks()
        if hooks:
            self.hooks = hooks
            self.chunk_hooks = hooks_module.chunk_hooks(hooks)
            hooks_module.dispatch(hooks, "on_call_start", self)

    def begin_attempt(self) -> None:
        self.attempt_started = time.perf_counter()
        self.first_token = None
        self.usage = None
        self.received = False
        self.attempts += 1
        self.chunks = 0
        self.last_chunk = None

    def token(self) -> None:
        self.received = True
        if self.first_token is None:
            first = self.first_token = time.perf_counter()
            if self.hooks and not self.state.get(_FIRST):
                self.state[_FIRST] = first
                hooks_module.dispatch(self.hooks, "on_first_token", self)
        if self.hooks:  # the attempt's chunk count and last chunk, for hooks to read
            self.chunks += 1
            self.last_chunk = time.perf_counter()
            if self.chunk_hooks:
                hooks_module.dispatch(self.chunk_hooks, "on_chunk", self)

    def reported(self) -> Usage:
        """What the current attempt's provider reported; incomplete when it reported none
        (zero when no request was sent: nothing can have been billed)."""
        if self.usage is not None:
            return self.usage
        return Usage(complete=not self.requested)

    def finish(
        self,
        usage: Usage,
        *,
        error: str | BaseException | None = None,
        finish: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        output: Any = (),
        calls: Any = (),
    ) -> None:
        """The call's record: its tokens counted, handed to the tracer and the hooks
        (once). ``finish`` / ``metadata`` / ``output`` / ``calls`` describe the answer."""
        if self.recorded:
            return
        self.recorded = True
        if isinstance(error, BaseException):
            self.exception, error = error, type(error).__name__
        self.error = error
        self.final_usage = usage
        self.finish_reason, self.metadata = finish, metadata
        self.output, self.output_calls = output, calls
        self.llm._record(usage)
        hooks = self._with_tracer()
        if hooks:
            hooks_module.dispatch(hooks, "on_call_end", self)

    def end(self, exc: BaseException) -> None:
        """The record of a call that left by ``exc`` (runs inside ``except``: never raises)."""
        if self.recorded:
            return
        usage = Usage() if self.cache_hit else self.reported()
        if self.hooks and isinstance(exc, LLMError) and self.requested:
            hooks_module.dispatch(self.hooks, "on_attempt_failed", self, exc, False)
        try:
            self.finish(usage, error=exc)
        except Exception:  # a failing tracer must not replace the call's own exception
            log.exception("recording a %s call failed", self.llm.provider)

    def retrying(self, exc: LLMError) -> None:
        """The current attempt failed with ``exc`` and another follows. An attempt the
        provider had answered (billed, then lost: generate() after a cut, a stream whose
        answer had not reached the caller) counts its tokens, and the tracer records it
        as an attempt of its own (see TokenTracer.on_attempt_failed)."""
        if self.received:
            self.llm._record(self.reported())
        hooks = self._with_tracer()
        if hooks:
            hooks_module.dispatch(hooks, "on_attempt_failed", self, exc, True)

    def _with_tracer(self) -> tuple[Any, ...]:
        """The hooks of this moment: the LLM's tracer first (it makes ``record``), then
        the call's hooks. Read at each moment: a Router's tracer depends on what ran."""
        tracer = self.llm.tracer
        return self.hooks if tracer is None else (tracer, *self.hooks)

    def fields(self, usage: Usage, since: float, error: str | None) -> dict[str, Any]:
        """The TokenTracer's record of the call (or of its current attempt, ``since`` its
        start): what :meth:`TokenTracer.record` takes."""
        first = self.first_token
        return {
            "provider": self.llm.provider,
            "model": self.config.model,
            "usage": usage,
            "latency_ms": (time.perf_counter() - since) * 1000.0,
            "ttft_ms": None if first is None else (first - since) * 1000.0,
            "cache_hit": self.cache_hit,
            "error": error,
            "tool_calls": self.tool_calls,
        }


#: ``_Call.state`` key: the first token of the call has been announced.
_FIRST = object()


def _interrupted(
    exc: LLMError, partial: str, usage: Usage, *, tool_calls: int = 0
) -> StreamInterruptedError:
    calls = f" and fragments of {tool_calls} tool call(s)" if tool_calls else ""
    return StreamInterruptedError(
        f"The stream failed after {len(partial)} characters{calls} had been "
        f"delivered: {exc.message}",
        partial_text=partial,
        usage=usage,
        provider=exc.provider,
        model=exc.model,
        status_code=exc.status_code,
        request_id=exc.request_id,
        code=exc.code,
    )


def _check_call_key(api_key: Any) -> None:
    """A per-call key is a non-empty string (``api_key=None`` or ``""`` would silently
    fall back to the LLM's own key: refused instead)."""
    if not isinstance(api_key, str):
        raise ConfigError(
            f"api_key: a per-call key must be a string, not {type(api_key).__name__}; "
            "nothing was sent"
        )
    if not api_key.strip():
        raise ConfigError(
            "api_key: a per-call key must not be empty (leave it out to use the LLM's "
            "own key); nothing was sent"
        )


def _check_budget(budget: Any) -> None:
    """A budget is a synapsekit Budget (anything with its async reserve / settle)."""
    if budget is not None and not (
        callable(getattr(budget, "reserve", None)) and callable(getattr(budget, "settle", None))
    ):
        raise ConfigError(
            f"budget: must be a synapsekit Budget (e.g. Budget(limit_usd=5.0)), not "
            f"{type(budget).__name__}"
        )


async def _settle(limiter: RateLimiter | None, estimate: int, usage: Usage) -> None:
    """Correct an attempt's tokens-per-minute reservation with what it really used. A call
    cancelled or left early, or whose provider reported no usage, keeps its reservation:
    its real usage is unknown."""
    if limiter is not None and limiter.counts_tokens and usage.complete:
        await limiter.settle(estimate, usage.total_tokens)


@asynccontextmanager
async def _closing(chunks: AsyncIterator[T]) -> AsyncGenerator[AsyncIterator[T], None]:
    """Close a provider's stream however the caller leaves it (break, error, cancel), so the
    HTTP response is closed at once rather than when the generator is garbage-collected.
    A failure while closing never replaces the exception the call is leaving with."""
    aclose = getattr(chunks, "aclose", None)
    try:
        yield chunks
    except BaseException:
        if aclose is not None:
            try:
                await aclose()
            except Exception as exc:
                log.debug("closing the provider stream failed: %r", exc)
        raise
    if aclose is not None:
        await aclose()
