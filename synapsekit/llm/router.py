"""Router: several LLMs behind one, with failover that never repeats text.

Why it is an LLM: a service should not need a second API for "call one of these". A
:class:`Router` is a :class:`~synapsekit.llm.base.BaseLLM` (provider ``"router"``), so the
one call path wraps it -- request check, cache, the sync variants, ``respond``,
``run_tools``, ``generate_object``, ``tokens_used``. Its :meth:`Router._stream` picks a
member per call by the strategy and runs *the member's own call path* (its retries, rate
limiter, budget, cache and tracer), passing chunks on as they come: nothing is buffered.

Failover happens only while nothing has reached the caller: a member that fails before its
first chunk (after its own retries) hands the call to the next; once a chunk was passed on,
``stream()`` raises :class:`~synapsekit.errors.StreamInterruptedError` and no other member
is asked, so no text is ever repeated. ``generate()`` / ``respond()`` run the members
buffered, so there a cut answer fails over too (nothing was delivered).

Per-call state (the caller's overrides, the budget, whether a member ran) lives in one
:class:`_Route` per call, handed from :meth:`Router._run` to :meth:`Router._stream` through a
context variable set around each step of the call (never on the instance).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from synapsekit.errors import (
    AllMembersFailedError,
    AuthenticationError,
    ConfigError,
    ConnectionError,
    ContentFilterError,
    ContextLengthError,
    InvalidRequestError,
    LLMError,
    NoCapableMemberError,
    NotFoundError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    TimeoutError,
    UnsupportedFeatureError,
)
from synapsekit.llm.base import BaseLLM, _check_budget
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Capabilities
from synapsekit.llm.types import Chunk, Message, MessagesInput, ToolCallDelta, Usage
from synapsekit.observability.hooks import ENCLOSING, dispatch

# The breaker state (router_state) and the rest of the call path are imported when the
# first router is built, not with the class.
if TYPE_CHECKING:
    from synapsekit.llm.budget import Budget
    from synapsekit.llm.router_state import MemberHealth, RouterState
    from synapsekit.observability.tracer import TokenTracer

__all__ = [
    "STRATEGIES", "AllMembersFailedError", "CostRouter", "CostRouterConfig", "FallbackChain",
    "FallbackChainConfig", "NoCapableMemberError", "Router", "RouterModelSpec",
]

STRATEGIES = frozenset(
    {"fallback", "round_robin", "weighted", "least_latency", "least_busy", "cheapest"}
)

#: Failures of the member, not of the request: the next member may well succeed.
_MEMBER_FAULTS = (
    RateLimitError, ServerError, TimeoutError, ConnectionError, AuthenticationError,
    NotFoundError, StreamInterruptedError,
)
#: The request itself was refused: another member would refuse it too (unless configured).
_REQUEST_FAULTS = (InvalidRequestError, ContentFilterError)


# (The two internal records below are a NamedTuple and a slotted class rather than
# dataclasses: building a dataclass costs a few compiled methods at import, and
# ``from synapsekit import Router`` should stay cheap.)


class _Member(NamedTuple):
    name: str
    llm: BaseLLM
    weight: float
    owned: bool  # built by the router (closed with it)


class _Route:
    """One call through a router: what each member call gets, and what happened."""

    __slots__ = ("buffered", "call", "keys", "outer", "overrides", "ran", "router", "served")

    def __init__(
        self,
        router: Router,
        overrides: dict[str, Any],
        buffered: bool,
        *,
        keys: dict[str, str] | None = None,
        outer: _Route | None = None,
    ) -> None:
        self.router = router
        self.overrides = overrides
        self.buffered = buffered
        self.ran = False  # a member's call path ran (it traced the attempt)
        self.served: _Member | None = None
        self.keys = keys  # ``api_key={provider or member name: key}``
        #: The router's own ``_Call`` (filled when it starts: the member calls' parent,
        #: and where failover is announced) and the route of an enclosing router, if any.
        self.call: Any = None
        self.outer = outer

    def for_member(self, member: _Member) -> dict[str, Any]:
        """The overrides ``member``'s call gets: a mapping of keys gives each member its
        own (by member name, else provider); a member not in it uses its own key."""
        if self.keys is None:
            return self.overrides
        found = self.keys.get(member.name) or self.keys.get(member.llm.provider)
        given = {k: v for k, v in self.overrides.items() if k != "api_key"}
        if found is not None:
            given["api_key"] = found
        return given

    def own_key(self, member: _Member) -> bool:
        """The call brought its own key for ``member`` (its 401 / 429 are that key's)."""
        return "api_key" in self.for_member(member)


_ROUTE: ContextVar[_Route | None] = ContextVar("synapsekit_route", default=None)

#: What a router accepts before it hands the request on: everything (members check).
_ANYTHING = Capabilities(
    images=True, image_urls=True, documents=True, tools=True, parallel_tool_calls=True,
    tool_choices=frozenset({"auto", "none", "required", "name"}), structured="json_schema",
    reasoning=frozenset({"effort", "budget"}),
)


class Router(BaseLLM):
    """Several LLMs used as one (see the module docstring and docs/routing.md).

    ``members``: LLM objects, model names (``"gpt-4o-mini"``, ``"anthropic:claude-..."``),
    ``LLMConfig`` s, or ``(member, weight)`` pairs. ``strategy``: ``"fallback"`` (in
    order), ``"round_robin"``, ``"weighted"`` (smooth weighted round robin),
    ``"least_latency"`` (moving average of time to first token), ``"least_busy"``
    (fewest in-flight calls), ``"cheapest"`` (the cheapest member capable of the request,
    from :func:`synapsekit.llm.models.profile`). Whatever the strategy, the other members
    follow as failover candidates.

    ``failure_threshold`` consecutive member failures open its circuit for ``cooldown``
    seconds, then one probe call decides; ``state="redis"`` (with ``redis_url``, and
    ``name`` to tell routers apart) shares that across processes. ``budget``: the
    :class:`~synapsekit.llm.budget.Budget` every member call reserves on, at the member's
    prices (a call's ``budget=`` wins). ``tracer``: lent to members that have none; each
    attempt is traced once, by the member that made it. ``fail_over_invalid``: also fail
    over requests a member refused as invalid (400, content filter).
    """

    provider = "router"
    capabilities = _ANYTHING

    def __init__(
        self,
        members: Sequence[Any],
        strategy: str = "fallback",
        *,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        state: str | RouterState | None = None,
        redis_url: str | None = None,
        name: str = "default",
        budget: Budget | None = None,
        tracer: TokenTracer | None = None,
        cache: Any = None,
        fail_over_invalid: bool = False,
        system_prompt: str | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(
                f"strategy: must be one of {', '.join(sorted(STRATEGIES))}, not {strategy!r}"
            )
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int) or (
            failure_threshold < 1
        ):
            raise ConfigError(f"failure_threshold: must be an int >= 1, not {failure_threshold!r}")
        if not isinstance(cooldown, (int, float)) or cooldown < 0:
            raise ConfigError(f"cooldown: must be a number of seconds >= 0, not {cooldown!r}")
        if isinstance(members, (str, bytes)) or not members:
            raise ConfigError("members: give a list of at least one LLM, model name or LLMConfig")
        _check_budget(budget)
        self._members: tuple[_Member, ...] = ()
        self._tracer: TokenTracer | None = None
        self._budget = budget
        built = _members(members, tracer)
        names = ",".join(m.name for m in built)
        super().__init__(
            LLMConfig(
                model=f"router({names})", system_prompt=system_prompt, temperature=None,
                max_retries=0, timeout=None,
            ),
            tracer=tracer, cache=cache,
        )
        self._members = built
        self._budget = budget  # (BaseLLM's __init__ set the router's own to None)
        self.strategy = strategy
        self.fail_over_invalid = fail_over_invalid
        from synapsekit.llm.router_state import MemoryRouterState, RedisRouterState, RouterState

        if isinstance(state, RouterState):
            self._state = state
        elif state in (None, "memory"):
            self._state = MemoryRouterState(failure_threshold, float(cooldown))
        elif state == "redis":
            self._state = RedisRouterState(
                failure_threshold, float(cooldown), url=redis_url, name=name
            )
        else:
            raise ConfigError(f"state: must be 'memory' or 'redis', not {state!r}")
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._current = [0.0] * len(built)  # smooth weighted round robin
        for member in built:
            if member.llm.tracer is None and tracer is not None:
                member.llm.tracer = tracer

    # ----------------------------------------------------------------- public

    @property
    def members(self) -> list[BaseLLM]:
        """The member LLMs, in the order given."""
        return [m.llm for m in self._members]

    @property
    def tracer(self) -> TokenTracer | None:
        """The tracer given (members without one use it). Inside a call that reached a
        member, the router's own record is not traced: the member's attempts are."""
        route = _ROUTE.get()
        if route is None or route.router is not self or self._tracer is None:
            return self._tracer
        if route.ran:
            return None  # the members traced every attempt
        return cast("TokenTracer", _OwnRecord(self._tracer))

    @tracer.setter
    def tracer(self, tracer: TokenTracer | None) -> None:
        old, self._tracer = self._tracer, tracer
        for member in self._members:
            if member.llm.tracer is None or member.llm.tracer is old:
                member.llm.tracer = tracer

    @property
    def budget(self) -> Budget | None:
        """The budget each member call reserves on (at the member's prices)."""
        route = _ROUTE.get()
        if route is not None and route.router is self:
            return None  # the router itself reserves nothing: its members do
        return self._budget

    @budget.setter
    def budget(self, budget: Budget | None) -> None:
        _check_budget(budget)
        self._budget = budget

    async def ahealth(self) -> dict[str, MemberHealth]:
        """Each member's breaker state, moving-average TTFT, in-flight and error counts."""
        names = [m.name for m in self._members]
        return dict(zip(names, await self._state.health(names), strict=True))

    def health(self) -> dict[str, MemberHealth]:
        """:meth:`ahealth` from sync code; in-process state answers at once, Redis state
        blocks for its round trip (in async code, ``await router.ahealth()``)."""
        from synapsekit.llm.router_state import MemoryRouterState

        if isinstance(self._state, MemoryRouterState):
            names = [m.name for m in self._members]
            return dict(zip(names, self._state.snapshot(names), strict=True))
        from synapsekit.llm import _sync

        return _sync.run_sync(self.ahealth())

    @property
    def selected_model(self) -> str | None:
        """SynapseKit's name: the model of the member that answered this task's last call."""
        served = _SERVED.get()
        return None if served is None else served.llm.model

    def _cost(self, usage: Usage, *, cache_hit: bool) -> float | None:
        """``respond()``'s cost: at the prices of the member that answered (read right after
        the call, in the same task)."""
        if cache_hit:
            return 0.0
        served = _SERVED.get()
        return None if served is None else served.llm._cost(usage, cache_hit=False)

    async def aclose(self) -> None:
        """Close every member's clients (they stay usable) and the shared-state client."""
        for member in self._members:
            await member.llm.aclose()
        closing = getattr(self._state, "aclose", None)
        if closing is not None:
            await closing()
        await super().aclose()

    def __repr__(self) -> str:
        names = ", ".join(m.name for m in self._members)
        return f"Router(strategy={self.strategy!r}, members=[{names}])"

    # ----------------------------------------------------------------- the call path

    async def _run(
        self, messages: MessagesInput, overrides: dict[str, Any], *, reasoning: bool,
        buffered: bool = False,
    ) -> AsyncGenerator[Chunk, None]:
        """The base call path, with this call's :class:`_Route` current around each step.
        ``budget=`` is taken out (the members reserve it); every other override goes both
        to the router's call (its cache key) and to the member's."""
        given = dict(overrides)
        keys = given.get("api_key")
        if isinstance(keys, Mapping):
            from synapsekit.llm.ratelimit import key_fingerprint

            keys = _key_map(keys)
            # The router's own call is scoped (cache) by a fingerprint of the whole set.
            given["api_key"] = "router-keys:" + key_fingerprint(
                "\n".join(f"{k}={v}" for k, v in sorted(keys.items()))
            )
        else:
            keys = None
        budget = given.pop("budget", None)
        _check_budget(budget)
        handed = {k: v for k, v in given.items() if k != "system_prompt"}
        budget = self._budget if budget is None else budget
        if budget is not None:
            handed["budget"] = budget
        route = _Route(self, handed, buffered, keys=keys, outer=ENCLOSING.get())
        inner = super()._run(messages, given, reasoning=reasoning, buffered=buffered)
        done = False
        try:
            while True:
                before = _ROUTE.get()
                _ROUTE.set(route)
                enclosing = ENCLOSING.get()
                ENCLOSING.set(route)
                try:
                    chunk = await inner.__anext__()
                except StopAsyncIteration:
                    done = True
                    break
                finally:
                    ENCLOSING.set(enclosing)
                    _ROUTE.set(before)
                yield chunk
        finally:
            if not done:
                before = _ROUTE.get()
                _ROUTE.set(route)
                enclosing = ENCLOSING.get()
                ENCLOSING.set(route)
                try:
                    await inner.aclose()
                finally:
                    ENCLOSING.set(enclosing)
                    _ROUTE.set(before)
            _SERVED.set(route.served)

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        route = _ROUTE.get()
        if route is None or route.router is not self:  # called on its own: no overrides
            route = _Route(self, {}, buffered=False)
        failures: dict[str, LLMError] = {}
        skipped: dict[str, str] = {}
        longer_than: int | None = None  # after a ContextLengthError: a longer context only
        for member in await self._order(messages, route):
            if longer_than is not None:
                limit = _input_limit(member, route)
                if limit is None or limit <= longer_than:
                    skipped[member.name] = "its context is not longer"
                    continue
            why = await self._state.acquire(member.name)
            if why is not None:
                skipped[member.name] = why
                continue
            route.ran = True
            started = time.perf_counter()
            first: float | None = None
            passed = False  # a chunk went on to the router's call path
            try:
                source = member.llm._run(
                    messages, route.for_member(member), reasoning=True,
                    buffered=route.buffered,
                )
                async with aclosing(source) as chunks:
                    async for chunk in chunks:
                        if chunk.tool_call is not None:
                            if not route.buffered:
                                continue  # the router's call path assembles the deltas
                            chunk = _as_delta(chunk)
                        if chunk.text or chunk.reasoning or chunk.tool_delta is not None:
                            if first is None:
                                first = time.perf_counter()
                            passed = True
                        elif chunk.finish_reason is not None or chunk.usage is not None:
                            chunk = Chunk(  # (not dataclasses.replace: 3x the CPU)
                                usage=chunk.usage, finish_reason=chunk.finish_reason,
                                metadata={**(chunk.metadata or {}), "router_member": member.name},
                                provider_data=chunk.provider_data,
                            )
                        yield chunk
            except LLMError as exc:
                counts = isinstance(exc, _MEMBER_FAULTS)
                if isinstance(exc, (AuthenticationError, RateLimitError)) and (
                    route.own_key(member)
                ):  # the caller's key was refused or is out of quota: not the member's fault
                    await self._state.release(member.name)
                else:
                    await self._state.failure(
                        member.name, counts=counts,
                        retry_after=exc.retry_after if isinstance(exc, RateLimitError) else None,
                    )
                if isinstance(exc, StreamInterruptedError) and exc.usage is not None and (
                    not passed
                ):
                    self._record(exc.usage)  # billed, then lost: still this router's tokens
                if passed:  # text reached the caller: never another member
                    cause = exc.__cause__
                    if isinstance(exc, StreamInterruptedError) and isinstance(cause, LLMError):
                        raise cause from None  # the call path words the interruption once
                    raise
                if isinstance(exc, ContextLengthError):
                    limit = _input_limit(member, route)
                    longer_than = limit if limit is not None else 0
                elif not counts and not (
                    self.fail_over_invalid and isinstance(exc, _REQUEST_FAULTS)
                ):
                    raise
                failures[member.name] = exc
                call = route.call
                if call is not None and call.hooks:
                    dispatch(call.hooks, "on_failover", call, member.name, exc)
                continue
            except UnsupportedFeatureError as exc:  # this member cannot take it: nothing sent
                await self._state.release(member.name)
                skipped[member.name] = str(exc)
                continue
            except BaseException:
                await self._state.release(member.name)
                raise
            await self._state.success(
                member.name, None if first is None else first - started
            )
            route.served = member
            return
        raise _exhausted(failures, skipped)

    async def _order(self, turns: list[Message], route: _Route) -> list[_Member]:
        """The members to try, in order, for this call."""
        members = list(self._members)
        strategy = self.strategy
        if strategy == "cheapest":
            return self._cheapest(turns, route)
        if strategy == "fallback" or len(members) == 1:
            return members
        from synapsekit.llm.router_state import MemoryRouterState

        if strategy in ("least_latency", "least_busy") and not isinstance(
            self._state, MemoryRouterState
        ):
            await self._state.health([m.name for m in members])  # refresh the shared view
        with self._lock:
            turn = next(self._turn)
            if strategy == "weighted":
                total = sum(m.weight for m in members)
                current = self._current
                for i, member in enumerate(members):
                    current[i] += member.weight
                best = max(range(len(members)), key=current.__getitem__)
                current[best] -= total
                return [members[best], *members[:best], *members[best + 1:]]
        start = turn % len(members)
        rotated = members[start:] + members[:start]
        if strategy == "least_latency":
            state = self._state
            rotated.sort(key=lambda m: state.ttft(m.name) or 0.0)
        elif strategy == "least_busy":
            state = self._state
            rotated.sort(key=lambda m: state.in_flight(m.name))
        return rotated

    def _cheapest(self, turns: list[Message], route: _Route) -> list[_Member]:
        """The capable members, cheapest worst case first (unpriced last); none capable:
        :class:`NoCapableMemberError` with every member's reason."""
        from synapsekit.llm.models import needs_of, profile_for

        capable: list[tuple[float, int, _Member]] = []
        reasons: dict[str, str] = {}
        for i, member in enumerate(self._members):
            llm = member.llm
            config = llm._call_config(_config_overrides(route.for_member(member)))
            needs = needs_of(turns, config)
            found = profile_for(llm.provider, config, capabilities=type(llm).capabilities)
            why = found.why_not(needs)
            if why is not None:
                reasons[member.name] = why
                continue
            cost = found.worst_case_usd(needs)
            capable.append((float("inf") if cost is None else cost, i, member))
        if not capable:
            listed = "; ".join(f"{name}: {why}" for name, why in reasons.items())
            raise NoCapableMemberError(
                f"No member of the router can take this request ({listed}). Nothing was sent.",
                reasons=reasons,
            )
        capable.sort(key=lambda entry: (entry[0], entry[1]))
        return [member for _, _, member in capable]


_SERVED: ContextVar[_Member | None] = ContextVar("synapsekit_router_served", default=None)


class _OwnRecord:
    """The router's own record of a call no member ran (a hit in the router's cache, or a
    call no member could take): traced as provider ``"router"``, which the price table
    prices at zero -- nothing was billed (pricing knows it: no warning to silence here)."""

    __slots__ = ("_tracer",)

    def __init__(self, tracer: TokenTracer) -> None:
        self._tracer = tracer

    def on_call_end(self, call: Any) -> None:  # the call path's tracer hook
        call.record = self._tracer.record(
            **call.fields(call.final_usage, call.started, call.error)
        )


def _members(given: Sequence[Any], tracer: TokenTracer | None) -> tuple[_Member, ...]:
    from synapsekit.llm.registry import make_llm

    found: list[_Member] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(given):
        weight: Any = 1.0
        if isinstance(entry, tuple):
            if len(entry) != 2:
                raise ConfigError(f"members[{i}]: a pair is (member, weight), not {entry!r}")
            entry, weight = entry
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
            raise ConfigError(f"members[{i}]: a weight must be a number > 0, not {weight!r}")
        owned = not isinstance(entry, BaseLLM)
        if isinstance(entry, BaseLLM):
            llm = entry
        elif isinstance(entry, (str, LLMConfig)):
            llm = make_llm(entry, tracer=tracer)
        else:
            raise ConfigError(
                f"members[{i}]: an LLM, a model name or an LLMConfig, not {type(entry).__name__}"
            )
        name = f"{llm.provider}:{llm.model}"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        found.append(_Member(name, llm, float(weight), owned))
    return tuple(found)


def _key_map(keys: Mapping[Any, Any]) -> dict[str, str]:
    """A per-call ``api_key`` mapping, checked: names to non-empty string keys."""
    found: dict[str, str] = {}
    for name, key in keys.items():
        if not isinstance(name, str) or not isinstance(key, str) or not key.strip():
            raise ConfigError(
                f"api_key: a mapping of keys takes provider or member names to non-empty "
                f"string keys; the entry for {name!r} is not one. Nothing was sent."
            )
        found[name] = key
    return found


def _config_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in overrides.items() if k != "budget"}


def _input_limit(member: _Member, route: _Route) -> int | None:
    from synapsekit.llm.models import profile_for

    llm = member.llm
    config = llm._call_config(_config_overrides(route.for_member(member)))
    found = profile_for(llm.provider, config, capabilities=type(llm).capabilities)
    return found.input_limit(config.max_tokens)


def _as_delta(chunk: Chunk) -> Chunk:
    """A buffered member's whole tool call as the one closing delta the router's call
    path assembles (so ``respond()`` through a router returns it)."""
    import json

    call = chunk.tool_call
    assert call is not None
    return Chunk(tool_delta=ToolCallDelta(
        call.index, call.id, call.name, json.dumps(dict(call.arguments), ensure_ascii=False),
        True,
    ))


def _exhausted(failures: dict[str, LLMError], skipped: dict[str, str]) -> AllMembersFailedError:
    parts = [f"{name}: {type(exc).__name__}: {exc.message}" for name, exc in failures.items()]
    parts += [f"{name}: not tried ({why})" for name, why in skipped.items()]
    error = AllMembersFailedError(
        "Every member of the router failed: " + "; ".join(parts),
        failures=failures, skipped=skipped,
        retry_after=min(
            (e.retry_after for e in failures.values() if e.retry_after is not None), default=None
        ),
    )
    if failures:
        error.__cause__ = next(reversed(failures.values()))
    return error


# ----------------------------------------------------------------- SynapseKit's names


@dataclass(frozen=True)
class RouterModelSpec:
    """SynapseKit's description of one routed model: ``model``, ``api_key``, ``provider``
    (``"openai"``), ``max_latency_ms`` (a member whose moving-average TTFT is over it is
    tried after the others), and ``quality`` (0..1; SynapseKit's default 0.5 when unset:
    synapsekit ships no quality table, having no sourced scores)."""

    model: str
    api_key: str | None = None
    provider: str = "openai"
    max_latency_ms: float | None = None
    quality: float | None = None
    base_url: str | None = None


@dataclass(frozen=True)
class CostRouterConfig:
    """SynapseKit's ``CostRouterConfig(models=[RouterModelSpec...], quality_threshold=,
    fallback_on_error=)``."""

    models: list[RouterModelSpec] = field(default_factory=list)
    quality_threshold: float = 0.0
    fallback_on_error: bool = True


@dataclass(frozen=True)
class FallbackChainConfig:
    """``FallbackChainConfig(models=[...])``: members in priority order (specs, LLMs,
    model names or LLMConfigs)."""

    models: list[Any] = field(default_factory=list)


def _spec_llm(spec: Any) -> Any:
    if not isinstance(spec, RouterModelSpec):
        return spec
    return LLMConfig(
        model=spec.model, api_key=spec.api_key, provider=spec.provider, base_url=spec.base_url
    )


class CostRouter(Router):
    """SynapseKit's ``CostRouter(CostRouterConfig(...))``: the ``"cheapest"`` strategy over
    the models at or above ``quality_threshold``; ``fallback_on_error=False`` tries one
    member only (a failure becomes :class:`AllMembersFailedError`)."""

    def __init__(self, config: CostRouterConfig, **options: Any) -> None:
        if not isinstance(config, CostRouterConfig):
            raise ConfigError(f"CostRouter takes a CostRouterConfig, not {type(config).__name__}")
        chosen = [
            spec for spec in config.models
            if (0.5 if spec.quality is None else spec.quality) >= config.quality_threshold
        ]
        if not chosen:
            raise ConfigError(
                f"CostRouter: no model has quality >= {config.quality_threshold}"
            )
        super().__init__([_spec_llm(spec) for spec in chosen], "cheapest", **options)
        self.cost_config = config
        self._specs = chosen

    async def _order(self, turns: list[Message], route: _Route) -> list[_Member]:
        order = await super()._order(turns, route)
        pairs = zip(self._members, self._specs, strict=True)
        limits = {id(m.llm): spec.max_latency_ms for m, spec in pairs}

        def slow(member: _Member) -> bool:
            limit, ttft = limits.get(id(member.llm)), self._state.ttft(member.name)
            return limit is not None and ttft is not None and ttft * 1000.0 > limit

        order.sort(key=slow)  # stable: the cheapest fast enough first, the slow ones after
        return order if self.cost_config.fallback_on_error else order[:1]


class FallbackChain(Router):
    """SynapseKit's ``FallbackChain``: members tried in priority order (the
    ``"fallback"`` strategy). Takes a :class:`FallbackChainConfig` or the list itself."""

    def __init__(self, config: FallbackChainConfig | Sequence[Any], **options: Any) -> None:
        models = config.models if isinstance(config, FallbackChainConfig) else config
        super().__init__([_spec_llm(spec) for spec in models], "fallback", **options)
