"""BaseLLM: the one call path every provider shares.

A provider implements one method, :meth:`BaseLLM._stream`: send one request, yield text
:class:`Chunk` s, then one final chunk with usage and finish reason. It never retries,
sleeps, caches or counts. Everything else is derived here, once::

    stream / generate / *_with_messages / stream_chunks / *_sync
        -> build_messages (validate, add system prompt)
        -> cache lookup (a hit replays the stored tokens; traced as a hit, zero cost)
        -> rate limiter (every attempt passes through it)
        -> provider._stream, retried only before the first token reaches the caller
        -> usage recorded (tokens_used, tokens-per-minute correction, TokenTracer + cost)
        -> cache store, only for a complete, normally finished, non-empty answer
        -> final chunk (usage, finish reason, metadata)

``generate()`` is ``"".join(stream())``; there is no second code path. Per-call state
lives in the call (locals of :meth:`_run`), never on the instance, so any number of
concurrent calls on one object account tokens exactly.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from synapsekit.errors import (
    ConfigError,
    ContentFilterError,
    LLMError,
    MissingAPIKeyError,
    MissingDependencyError,
    StreamInterruptedError,
)
from synapsekit.llm import _sync
from synapsekit.llm.cache import Cache, CachedAnswer, cache_key, open_cache
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.ratelimit import RateLimiter, estimate_tokens, limiter_for
from synapsekit.llm.registry import PROVIDERS, ProviderSpec, split_provider_prefix
from synapsekit.llm.retry import backoff_delay, should_retry
from synapsekit.llm.types import Chunk, Message, MessagesInput, Usage, build_messages

if TYPE_CHECKING:
    from synapsekit.observability.tracer import TokenTracer

__all__ = ["BaseLLM"]

#: Finish reasons whose answers are never cached: cut by max_tokens, or filtered.
UNCACHED_FINISH = frozenset({"length", "content_filter"})

T = TypeVar("T")

#: LLMConfig fields a single call may override, e.g. ``generate(p, temperature=0)``.
CALL_OVERRIDES = frozenset({"temperature", "max_tokens", "stop", "system_prompt", "params"})


class BaseLLM(ABC):
    """An LLM: one provider, one model, one config. Subclasses implement :meth:`_stream`."""

    #: The registry name of the provider this class speaks to.
    provider: ClassVar[str]

    def __init__(self, config: LLMConfig, *, tracer: TokenTracer | None = None) -> None:
        if not isinstance(config, LLMConfig):
            raise ConfigError(
                f"{type(self).__name__} takes an LLMConfig, not {type(config).__name__}"
            )
        spec = PROVIDERS.get(self.provider)
        if spec is not None:  # a registered provider, not a test double
            config = self._own_config(config)
        self.config = config
        #: Records every call (tokens, latency, cost); settable, shareable between LLMs.
        self.tracer = tracer
        self._tokens = {"input": 0, "output": 0}
        self._tokens_lock = threading.Lock()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._sdk = self._import_sdk(spec) if spec else None
        self._api_key = self._resolve_api_key(spec) if spec else config.api_key
        # Both are shared with every other LLM object of the same settings in the process.
        self._cache: Cache | None = open_cache(config) if config.cache else None
        self._limiter: RateLimiter | None = limiter_for(config, self.provider, self._api_key)

    # ----------------------------------------------------------------- provider API

    @abstractmethod
    def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        """Send one request and yield its chunks: text deltas, then a final chunk.

        Text chunks carry ``text`` (or ``reasoning``) only; the final chunk carries
        ``usage``, ``finish_reason`` and any ``metadata``, and no text. Map every SDK
        exception to :mod:`synapsekit.errors` here; close the response when closed early.
        """

    def _new_client(self) -> Any:
        """Build the SDK client; called once per event loop (clients are loop-bound)."""
        return None

    async def _close_client(self, client: Any) -> None:
        close = getattr(client, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._new_client()
        return client

    @property
    def base_url(self) -> str | None:
        """The endpoint in use: the config's ``base_url`` or the provider's default."""
        spec = PROVIDERS.get(self.provider)
        return self.config.base_url or (spec.base_url if spec else None)

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
        """Remove every cached answer of this LLM's cache (and only those)."""
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

    async def aclose(self) -> None:
        """Close the SDK clients this object made (one per event loop it was used on)."""
        current = asyncio.get_running_loop()
        clients, self._clients = list(self._clients.items()), weakref.WeakKeyDictionary()
        for loop, client in clients:
            if client is None or loop.is_closed():
                continue
            if loop is current:
                await self._close_client(client)
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._close_client(client), loop)
                await asyncio.wrap_future(future)

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
        self, messages: MessagesInput, overrides: dict[str, Any], *, reasoning: bool
    ) -> AsyncGenerator[Chunk, None]:
        config = self._call_config(overrides)
        turns = build_messages(messages, config.system_prompt)
        call = _Call(self, config)
        cache = self._cache
        key = cache_key(config, turns) if cache is not None else ""
        if cache is not None:
            hit = await cache.get(key)
            if hit is not None:
                for piece in hit.chunks:
                    call.delivered()
                    yield Chunk(piece)
                call.finish(Usage(), cache_hit=True)
                replayed = {**(hit.metadata or {}), "cache_hit": True}
                yield Chunk(usage=Usage(), finish_reason=hit.finish_reason, metadata=replayed)
                return
        limiter = self._limiter
        estimate = 0  # tokens reserved per attempt, when a tokens-per-minute limit is set
        if limiter is not None and limiter.counts_tokens:
            estimate = estimate_tokens(turns, config.max_tokens)
        attempt = 0
        while True:
            parts: list[str] = []
            usage: Usage | None = None
            finish: str | None = None
            metadata: Mapping[str, Any] | None = None
            if limiter is not None:
                await limiter.acquire(estimate)
            try:
                async with _closing(self._stream(turns, config)) as chunks:
                    async for chunk in chunks:
                        if chunk.text:
                            parts.append(chunk.text)
                            call.delivered()
                            yield chunk
                        elif chunk.reasoning and reasoning:
                            call.delivered()
                            yield chunk
                        if chunk.usage is not None:
                            usage = chunk.usage
                        if chunk.finish_reason is not None:
                            finish = chunk.finish_reason
                        if chunk.metadata is not None:
                            metadata = chunk.metadata
                if finish == "content_filter":
                    raise ContentFilterError(
                        "The provider's content filter stopped the answer.",
                        provider=self.provider,
                        model=config.model,
                    )
            except LLMError as exc:
                if call.first_token is not None:
                    partial = "".join(parts)
                    cut = usage or Usage(complete=False)
                    cut.complete = False
                    await _settle(limiter, estimate, cut)
                    call.finish(cut, error="StreamInterruptedError")
                    raise StreamInterruptedError(
                        f"The stream failed after {len(partial)} characters had been "
                        f"delivered: {exc.message}",
                        partial_text=partial,
                        usage=cut,
                        provider=exc.provider,
                        model=exc.model,
                        status_code=exc.status_code,
                        request_id=exc.request_id,
                        code=exc.code,
                    ) from exc
                await _settle(limiter, estimate, Usage())  # a failed attempt used no tokens
                if not should_retry(exc, attempt, config.max_retries):
                    raise
                await asyncio.sleep(backoff_delay(attempt, config.retry_delay, exc.retry_after))
                attempt += 1
                continue
            if usage is None:
                usage = Usage(complete=False)
            await _settle(limiter, estimate, usage)
            call.finish(usage)
            if cache is not None and parts and finish not in UNCACHED_FINISH:
                await cache.set(key, CachedAnswer(tuple(parts), finish, usage, metadata))
            yield Chunk(usage=usage, finish_reason=finish, metadata=metadata)
            return

    async def _text(
        self, messages: MessagesInput, overrides: dict[str, Any]
    ) -> AsyncGenerator[str, None]:
        async with aclosing(self._run(messages, overrides, reasoning=False)) as chunks:
            async for chunk in chunks:
                if chunk.text:
                    yield chunk.text

    async def _join(self, messages: MessagesInput, overrides: dict[str, Any]) -> str:
        # The text stream() would yield, read from the same call path without its extra
        # generator hop per token.
        async with aclosing(self._run(messages, overrides, reasoning=False)) as chunks:
            return "".join([chunk.text async for chunk in chunks if chunk.text])

    def _record(self, usage: Usage) -> None:
        with self._tokens_lock:
            self._tokens["input"] += usage.input_tokens
            self._tokens["output"] += usage.output_tokens

    def _call_config(self, overrides: dict[str, Any]) -> LLMConfig:
        if not overrides:
            return self.config
        unknown = set(overrides) - CALL_OVERRIDES
        if unknown:
            raise ConfigError(
                f"{', '.join(sorted(unknown))}: not a per-call setting; "
                f"a call may override: {', '.join(sorted(CALL_OVERRIDES))}"
            )
        return replace(self.config, **overrides)

    # ----------------------------------------------------------------- construction

    def _own_config(self, config: LLMConfig) -> LLMConfig:
        """The config with this class's provider set and any ``provider:`` prefix removed."""
        prefixed, model = split_provider_prefix(config.model)
        chosen = config.provider or prefixed or self.provider
        if chosen != self.provider:
            raise ConfigError(
                f"provider: {type(self).__name__} speaks to {self.provider!r}, "
                f"but the config says {chosen!r}"
            )
        if config.provider != self.provider or model != config.model:
            config = replace(config, provider=self.provider, model=model)
        return config

    def _import_sdk(self, spec: ProviderSpec) -> ModuleType:
        try:
            return importlib.import_module(spec.import_name)
        except ImportError as exc:
            raise MissingDependencyError(spec.package, spec.extra) from exc

    def _resolve_api_key(self, spec: ProviderSpec) -> str | None:
        if self.config.api_key:
            return self.config.api_key
        for var in spec.env_vars:
            value = os.environ.get(var)
            if value:
                return value
        if spec.key_required:
            names = " or ".join(spec.env_vars)
            raise MissingAPIKeyError(
                f"No API key for the {spec.name!r} provider: pass api_key=... "
                f"or set the environment variable {names}."
            )
        return None


class _Call:
    """The bookkeeping of one call: its clock, first token, and what it records at the end."""

    __slots__ = ("config", "first_token", "llm", "started")

    def __init__(self, llm: BaseLLM, config: LLMConfig) -> None:
        self.llm = llm
        self.config = config
        self.started = time.perf_counter()
        self.first_token: float | None = None

    def delivered(self) -> None:
        if self.first_token is None:
            self.first_token = time.perf_counter()

    def finish(self, usage: Usage, *, cache_hit: bool = False, error: str | None = None) -> None:
        """Count the call's tokens and hand it to the tracer, if there is one."""
        llm = self.llm
        llm._record(usage)
        tracer = llm.tracer
        if tracer is None:
            return
        now = time.perf_counter()
        tracer.record(
            provider=llm.provider,
            model=self.config.model,
            usage=usage,
            latency_ms=(now - self.started) * 1000.0,
            ttft_ms=None if self.first_token is None
            else (self.first_token - self.started) * 1000.0,
            cache_hit=cache_hit,
            error=error,
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
    HTTP response is closed at once rather than when the generator is garbage-collected."""
    try:
        yield chunks
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
