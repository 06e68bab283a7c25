"""The gateway's one request flow, wire-neutral: :class:`Gateway`.

Why here and not in the wires: the OpenAI and Anthropic wires differ only in how they
parse a request and render chunks and errors. Everything else -- who the caller is, what
it may use, whether it is over its limits, which Router serves the model name, and the
one ledger row every request leaves -- happens once, in :meth:`Gateway.chat`::

    auth(secret) -> KeyInfo                 401 unknown key        (KeyStore)
    allow-list                              403 model not allowed
    model name -> Router                    404 model_not_found
    limits.admit(key, estimated_tokens)     429 + Retry-After, never waits (Limits)
    router.stream_chunks(..., budget=)      upstream errors -> errors.status_for
    finally: limits.settle(...), ledger.record(LedgerRow)   exactly once, whatever happened

The gateway owns no LLM logic: retries, failover, budgets' reserve/settle and cost are the
call path's. The parts it is built from are small protocols (:class:`KeyStore`,
:class:`Limits`, :class:`Ledger`); :meth:`Gateway.from_config` builds the real ones from the
``keys``, ``limits`` and ``ledger`` modules (``open_keys(config, environ)``,
``open_limits(config)``, ``open_ledger(config)``); the in-process ones
(:class:`ConfigKeys` (the ``[[keys]]`` of the file), :class:`NoLimits`,
:class:`MemoryLedger`: rows kept in a list, tests read them) are given explicitly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from synapsekit.gateway.config import GatewayConfig, ModelEntry
from synapsekit.gateway.errors import status_for
from synapsekit.gateway.parts import (
    ConfigKeys,
    KeyStore,
    Ledger,
    Limits,
    MemoryLedger,
    NoLimits,
)
from synapsekit.gateway.types import GatewayError, GatewayRequest, KeyInfo, LedgerRow
from synapsekit.llm.types import Chunk, Response, Usage

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.router import Router
    from synapsekit.rag.embeddings import Embedder

__all__ = [
    "ConfigKeys", "Gateway", "KeyStore", "Ledger", "Limits", "MemoryLedger", "NoLimits",
    "build_routers", "member_of", "new_request_id",
]

log = logging.getLogger("synapsekit.gateway")
#: The row's ``error`` for a client that left before the answer ended (status 499).
CLIENT_GONE = "ClientDisconnected"


def new_request_id() -> str:
    """``"req_"`` + 24 hex: the id a client and the ledger row share."""
    return "req_" + secrets.token_hex(12)


class Gateway:
    """The request flow over validated config (see the module docstring).

    ``routers``: model name -> the Router serving it (default: built from the config);
    ``keys`` / ``limits`` / ``ledger``: the parts (default: the in-process ones).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        routers: Mapping[str, Router] | None = None,
        keys: KeyStore | None = None,
        limits: Limits | None = None,
        ledger: Ledger | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.routers: dict[str, Router] = dict(
            routers if routers is not None else build_routers(config, environ)
        )
        self.keys: KeyStore = keys if keys is not None else ConfigKeys(config, environ)
        self.limits: Limits = limits if limits is not None else NoLimits()
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.started = time.time()
        self._environ = environ
        self._embedders: dict[tuple[str, int | None], Embedder] = {}

    @classmethod
    def from_config(
        cls, config: GatewayConfig, environ: Mapping[str, str] | None = None, *,
        keys: KeyStore | None = None, limits: Limits | None = None,
        ledger: Ledger | None = None, routers: Mapping[str, Router] | None = None,
    ) -> Gateway:
        """The gateway with the real key store, limits and ledger
        (``synapsekit.gateway.keys`` / ``limits`` / ``ledger``); a part given here is used
        instead (and the real one not built)."""
        from synapsekit.gateway.keys import open_keys
        from synapsekit.gateway.ledger import open_ledger
        from synapsekit.gateway.limits import open_limits

        return cls(
            config,
            routers=routers,
            keys=keys if keys is not None else open_keys(config, environ),
            limits=limits if limits is not None else open_limits(config),
            ledger=ledger if ledger is not None else open_ledger(config),
            environ=environ,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the parts that have background work (the ledger's writer), and build each
        member's SDK client on this event loop now: importing an SDK takes hundreds of
        milliseconds, which would otherwise stall every request in flight at the first
        one."""
        for part in (self.keys, self.limits, self.ledger):
            starting = getattr(part, "start", None)
            if starting is not None:
                await starting()
        for router in self.routers.values():
            for llm in router.members:
                await llm._client()

    async def aclose(self) -> None:
        """Drain the ledger, close the parts and every Router's clients."""
        for part in (self.ledger, self.limits, self.keys):
            closing = getattr(part, "aclose", None)
            if closing is not None:
                try:
                    await closing()
                except Exception:  # one failing part must not keep the others open
                    log.exception("closing %s failed", type(part).__name__)
        for router in self.routers.values():
            await router.aclose()
        for embedder in self._embedders.values():
            await embedder.aclose()

    # ------------------------------------------------------------------ checks

    async def authenticate(self, secret: str | None) -> KeyInfo:
        """The key a secret belongs to; 401 when there is none or it is unknown."""
        if not secret:
            raise GatewayError(
                401, "missing_api_key",
                "No API key given: send it as 'Authorization: Bearer <key>'.",
            )
        key = await self.keys.authenticate(secret)
        if key is None:
            raise GatewayError(401, "invalid_api_key", "Incorrect API key provided.")
        return key

    def allowed(self, key: KeyInfo) -> list[str]:
        """The chat model names ``key`` may use, in config order."""
        return [name for name in self.routers if key.models is None or name in key.models]

    def router_for(self, key: KeyInfo, model: str) -> Router:
        """The Router serving ``model`` for ``key``: 404 unknown name, 403 not allowed."""
        router = self.routers.get(model)
        if router is None:
            raise GatewayError(
                404, "model_not_found",
                f"The model `{model}` does not exist or you do not have access to it.",
                param="model",
            )
        _allow(key, model)
        return router

    # ------------------------------------------------------------------ the flow

    async def chat(self, req: GatewayRequest, key: KeyInfo) -> AsyncGenerator[Chunk, None]:
        """The answer's chunks as they come; raises :class:`GatewayError` (refusals and
        upstream failures alike). One ledger row is written when it ends, however it ends:
        a client that leaves (the wire stops iterating) is recorded as status 499 with the
        usage seen so far, marked incomplete."""
        async with _Books(self, req, key) as books:
            router = await books.admit()
            async with aclosing(router.stream_chunks(req.messages, **books.overrides())) as (
                chunks
            ):
                async for chunk in chunks:
                    books.see(chunk)
                    yield chunk

    async def respond(self, req: GatewayRequest, key: KeyInfo) -> Response:
        """The whole answer, for a non-streamed request: the Router's ``respond`` (buffered,
        so a stream cut before the end fails over like any failure), with the same checks
        and the same one ledger row as :meth:`chat`."""
        async with _Books(self, req, key) as books:
            router = await books.admit()
            response = await router.respond(req.messages, **books.overrides())
            books.usage = response.usage
            books.row.member = member_of(response.metadata)
            return response

    async def count(self, req: GatewayRequest, key: KeyInfo) -> int:
        """A count request's answer (``/v1/messages/count_tokens``): the input estimate
        (:func:`estimate_tokens` without ``max_tokens``), after the same model checks as
        :meth:`chat` (404 / 403). Nothing is sent upstream and no limit or budget is
        spent; it leaves one ledger row like every request (``api="count_tokens"``, no
        tokens and no cost: nothing was billed)."""
        req.api = "count_tokens"
        async with _Books(self, req, key):
            self.router_for(key, req.model)
            req.overrides.pop("max_tokens", None)
            return estimate_tokens(req)

    async def embed(
        self, model: str, texts: list[str], key: KeyInfo, *, dimensions: int | None = None,
        request_id: str = "",
    ) -> tuple[list[list[float]], int]:
        """One vector per text from the ``kind = "embedding"`` model ``model``, and the
        input tokens the provider reported; the same checks (404 / 403 / limits) and one
        ledger row (``api="embeddings"``) as :meth:`chat`; the key's budget is reserved
        before the call is sent and settled to its cost after, like a chat call's."""
        from synapsekit.gateway.limits import reserve_embedding, settle_embedding

        req = GatewayRequest(api="embeddings", model=model, messages=[], overrides={},
                             stream=False, request_id=request_id)
        counted: list[int] = []
        async with _Books(self, req, key) as books:
            books.estimate = sum(len(t) for t in texts) // 4 + 1
            entry = self.config.embedding_models.get(model)
            if entry is None:
                what = "is a chat model" if model in self.routers else "does not exist"
                raise GatewayError(
                    404, "model_not_found",
                    f"The embedding model `{model}` {what} or you do not have access to it.",
                    param="model",
                )
            _allow(key, model)
            await self.limits.admit(key, books.estimate)
            books.admitted = True
            embedder = self._embedder(entry, dimensions)
            member = books.row.member = f"{embedder.provider}:{embedder.model}"
            budget = self.limits.budget(key)
            held = None if budget is None else await reserve_embedding(budget, member, texts)
            token = _EMBED_TOKENS.set(counted)
            try:
                vectors = await embedder.embed(texts)
            finally:
                _EMBED_TOKENS.reset(token)
                books.usage = Usage(input_tokens=sum(counted))
                if budget is not None and held is not None:
                    await settle_embedding(budget, held, member, sum(counted))
            return vectors, sum(counted)

    def _embedder(self, entry: ModelEntry, dimensions: int | None) -> Embedder:
        """One embedder per model name and ``dimensions`` asked (made on first use)."""
        from synapsekit.rag.embeddings import make_embedder

        found = self._embedders.get((entry.name, dimensions))
        if found is None:
            env = os.environ if self._environ is None else self._environ
            found = make_embedder(
                entry.model, provider=entry.provider, base_url=entry.base_url,
                api_key=env[entry.api_key_env] if entry.api_key_env else None,
                dimensions=dimensions, tracer=_EmbedCounter(),  # type: ignore[arg-type]
                max_retries=int(entry.options.get("max_retries", 0)),
            )
            self._embedders[(entry.name, dimensions)] = found
        return found


#: The input tokens of the embedding call running in this context (its batches add to it).
_EMBED_TOKENS: ContextVar[list[int] | None] = ContextVar("gateway_embed_tokens", default=None)


class _EmbedCounter:
    """The tracer the gateway's embedders get: each batch's reported tokens go to the
    call that sent it (a context variable: batches run in tasks of that call)."""

    def record(self, **fields: Any) -> None:
        counted = _EMBED_TOKENS.get()
        usage = fields.get("usage")
        if counted is not None and isinstance(usage, Usage):
            counted.append(usage.input_tokens)


class _Books:
    """One request's bookkeeping: the checks before it is sent, what its chunks said, and
    the one row (and limit settlement) it leaves, written by :meth:`close`."""

    def __init__(self, gateway: Gateway, req: GatewayRequest, key: KeyInfo) -> None:
        if not req.request_id:
            req.request_id = new_request_id()
        self.gateway, self.req, self.key = gateway, req, key
        self.started = time.perf_counter()
        self.row = LedgerRow(
            ts=time.time(), request_id=req.request_id, key_id=key.id, api=req.api,
            model=req.model, member=None, stream=req.stream, status=200, error=None,
        )
        self.estimate = estimate_tokens(req)
        self.admitted = False
        self.usage: Usage | None = None
        self.delivered = 0  # chunks with text, reasoning or tool-call parts passed on
        self.yielded = False  # the wire may have sent its headers: the status is 200 now
        self.router: Router | None = None
        # The last member call that ended, as the members' hook saw it: who, what it
        # reported (partial usage too), its cost. Used when no final usage chunk came.
        self.last_call: tuple[str, Usage | None, float | None, BaseLLM] | None = None

    async def admit(self) -> Router:
        """403 / 404 for the model, then the key's limits (429, never waiting)."""
        _BOOKS.set(self)  # (each request runs in a task of its own)
        self.router = self.gateway.router_for(self.key, self.req.model)
        await self.gateway.limits.admit(self.key, self.estimate)
        self.admitted = True
        return self.router

    def overrides(self) -> dict[str, Any]:
        """The request's call-path overrides, with the key's budget."""
        overrides = dict(self.req.overrides)
        budget = self.gateway.limits.budget(self.key)
        if budget is not None:
            overrides["budget"] = budget
        return overrides

    def see(self, chunk: Chunk) -> None:
        row = self.row
        if row.member is None and chunk.metadata:
            row.member = member_of(chunk.metadata)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.text or chunk.reasoning or chunk.tool_delta or chunk.tool_call:
            if row.ttft_ms is None:
                row.ttft_ms = (time.perf_counter() - self.started) * 1000.0
            self.delivered += 1
        self.yielded = True

    async def __aenter__(self) -> _Books:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any,
    ) -> None:
        """Write the row whatever happened; an error leaves as its :class:`GatewayError`."""
        mapped: GatewayError | None = None
        if isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
            self.row.status, self.row.error = 499, CLIENT_GONE
        elif isinstance(exc, Exception):
            mapped = status_for(exc)
            self.row.error = type(exc).__name__
            if mapped.status >= 500:  # the client is told little: the operator is told why
                log.warning("%s failed: %s -> %d %s", self.row.request_id, self.row.error,
                            mapped.status, mapped.code,
                            exc_info=exc if mapped.code == "internal_error" else None)
            self.row.status = 200 if self.yielded else mapped.status
            partial = getattr(exc, "usage", None)
            if self.usage is None and isinstance(partial, Usage):
                self.usage = partial
        await self._close()
        if mapped is not None and mapped is not exc:
            raise mapped from exc

    async def _close(self) -> None:
        row = self.row
        row.latency_ms = (time.perf_counter() - self.started) * 1000.0
        cost = None
        if self.last_call is not None and (self.usage is None or not self.usage.complete):
            member, reported, cost, _ = self.last_call  # (a stream cut or abandoned)
            row.member = row.member or member
            if reported is not None and (self.usage is None or reported.input_tokens):
                self.usage = reported
        used = _count(row, self.usage, self.delivered, self.router)
        if not row.cost_usd and cost:
            row.cost_usd = cost
        elif not row.cost_usd and self.last_call is not None and used.total_tokens:
            # no final usage, so no cost from the member: the tokens counted (a lower
            # bound) at the prices of the member that served the stream, never a silent 0
            row.cost_usd = self.last_call[3]._cost(used, cache_hit=False) or 0.0
        if self.admitted:
            try:
                await self.gateway.limits.settle(
                    self.key, self.estimate, row.input_tokens + row.output_tokens
                )
            except Exception:  # the row is still written: the books come first
                log.exception("settling %s failed", row.request_id)
        try:
            self.gateway.ledger.record(row)
        except Exception:  # a ledger that cannot take the row must not fail the answer
            log.exception("recording %s failed", row.request_id)
        log.debug(
            "%s key=%s model=%s member=%s status=%d tokens=%d/%d %.1fms",
            row.request_id, row.key_id, row.model, row.member, row.status,
            row.input_tokens, row.output_tokens, row.latency_ms,
        )


#: The request being served in this task: the members' hook reports their calls to it.
_BOOKS: ContextVar[_Books | None] = ContextVar("gateway_books", default=None)


class _MemberCalls:
    """The hook every member LLM of the gateway's Routers carries. When a member's call
    ends -- however: answered, failed, or closed because the client left -- the request
    it served learns which member it was, what it reported and what that cost. So an
    abandoned stream keeps what the upstream said before it ended (Anthropic's input
    tokens from ``message_start``), which the chunks a caller sees do not carry."""

    def on_call_end(self, call: Any) -> None:
        books = _BOOKS.get()
        if books is None:
            return
        llm = call.llm
        usage = call.final_usage
        cost = None if usage is None else llm._cost(usage, cache_hit=call.cache_hit)
        books.last_call = (f"{llm.provider}:{call.config.model}", usage, cost, llm)


_MEMBER_CALLS = _MemberCalls()


def _allow(key: KeyInfo, model: str) -> None:
    """403 when ``key`` has an allow-list without ``model``."""
    if key.models is not None and model not in key.models:
        raise GatewayError(
            403, "model_not_allowed", f"This key may not use the model `{model}`.",
            param="model",
        )


def member_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The Router member that answered, from a final chunk's (or Response's) metadata."""
    found = (metadata or {}).get("router_member")
    return found if isinstance(found, str) else None


def _count(row: LedgerRow, usage: Usage | None, delivered: int, router: Router | None) -> Usage:
    """The row's tokens and cost. Without the upstream's final usage (a stream cut or
    abandoned), each delivered chunk counts as one output token at least: a lower bound,
    marked incomplete, never a silent 0 (the input tokens are kept when the upstream said
    them early, as Anthropic does in ``message_start``)."""
    if usage is None:
        usage = Usage(output_tokens=delivered, complete=delivered == 0 and row.error is None)
    elif not usage.complete and usage.output_tokens < delivered:
        usage = dataclasses.replace(usage, output_tokens=delivered)
    row.input_tokens = usage.input_tokens
    row.output_tokens = usage.output_tokens
    row.cached_input_tokens = usage.cached_input_tokens
    row.cache_write_tokens = usage.cache_write_tokens
    row.reasoning_tokens = usage.reasoning_tokens
    row.complete = usage.complete and row.status != 499
    if router is not None and row.member is None:
        row.member = router.selected_model
    if router is not None:
        cost = router._cost(usage, cache_hit=False)
    elif row.member is not None and usage.total_tokens:  # an embedder: its price row
        from synapsekit.llm import pricing

        provider, _, name = row.member.partition(":")
        cost = pricing.cost(provider, name, usage)
    else:
        cost = None
    row.cost_usd = cost or 0.0
    return usage


def estimate_tokens(req: GatewayRequest) -> int:
    """A quick worst-case guess for the tokens-per-minute limit and the budget's
    reservation: the library's own estimate (:func:`synapsekit.llm.ratelimit.estimate_tokens`:
    ceil(characters / 4) of the text, of the tools' names, descriptions and parameter
    schemas, and of the structured output's schema (schemas as compact JSON), plus
    :data:`~synapsekit.llm.ratelimit.PART_TOKENS` per image or document part), plus the
    answer's ``max_tokens`` (settled to the real count after). Without ``max_tokens`` in
    the overrides it is the input estimate alone: the ``count_tokens`` answer."""
    from synapsekit.llm.ratelimit import estimate_tokens as library_estimate

    limit = req.overrides.get("max_tokens")
    return library_estimate(
        req.messages, limit if isinstance(limit, int) else 0,
        tools=req.overrides.get("tools", ()),
        response_schema=req.overrides.get("response_schema"),
    )


def build_routers(
    config: GatewayConfig, environ: Mapping[str, str] | None = None
) -> dict[str, Router]:
    """One Router per chat model name, its members in file order, each with the key from
    its ``api_key_env`` (never from the file). Members send the client's messages as they
    are: no default system prompt or temperature of the library's is added."""
    from synapsekit.llm.router import Router

    env = os.environ if environ is None else environ
    routers: dict[str, Router] = {}
    for name, entries in config.groups.items():
        options = config.options_for(name)
        routers[name] = Router(
            [(_member(config, entry, env), entry.weight or 1.0) for entry in entries],
            options.strategy,
            failure_threshold=options.failure_threshold,
            cooldown=options.cooldown,
            state=_router_state(config, name, options.failure_threshold, options.cooldown),
            fail_over_invalid=options.fail_over_invalid,
            system_prompt=None,
        )
    return routers


def _router_state(
    config: GatewayConfig, name: str, failure_threshold: int, cooldown: float
) -> Any:
    """The group's member health: in Redis when configured (shared by every worker and
    node, with the gateway's Redis deadline), else in this process."""
    if not config.redis_url:
        return "memory"
    from synapsekit.gateway.limits import REDIS_TIMEOUT
    from synapsekit.llm.router_state import RedisRouterState

    return RedisRouterState(failure_threshold, float(cooldown), url=config.redis_url,
                            name=f"gateway:{name}", timeout=REDIS_TIMEOUT)


def _member(config: GatewayConfig, entry: ModelEntry, env: Mapping[str, str]) -> BaseLLM:
    """The member's LLM; a provider that cannot be made (unknown name, bad setting) is a
    config error at the entry's line, a missing SDK says which extra to install."""
    from synapsekit.errors import ConfigError
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.registry import make_llm

    fields: dict[str, Any] = {"system_prompt": None, "temperature": None}
    fields.update(entry.options)
    if entry.api_key_env is not None:
        fields["api_key"] = env[entry.api_key_env]
    try:
        return make_llm(LLMConfig(
            model=entry.model, provider=entry.provider, base_url=entry.base_url, **fields,
        ), hooks=[_MEMBER_CALLS])
    except ConfigError as exc:
        index = config.models.index(entry)
        raise ConfigError(f"{config.path}:{entry.line}: models[{index}]: {exc}") from None
