"""Budgets: a spend limit enforced *before* each call, never reported after it.

A call first reserves its worst case (:meth:`Budget.reserve`); if that does not fit
(``spent + reserved by calls in flight + requested > limit``) it raises
:class:`~synapsekit.errors.BudgetExceededError` and nothing is sent. After the call the
reservation is settled to the real cost (:meth:`Budget.settle`), giving back what was not
used. Reserving is one atomic step, so any number of concurrent calls can never spend
more than the limit together: under a lock in memory, in one ``BEGIN IMMEDIATE``
transaction in a SQLite file (every process of the machine), in one Lua script on a
Redis server (every process of every machine).

Amounts are counted in integer nano-dollars (a short call to a cheap model costs a few
micro-dollars: micro-dollar steps would overstate it by up to a quarter), so a million
calls add up without float drift; every cost is rounded *up* to the next nano-dollar and
a limit *down* (after dropping float noise), so the counted spend is never below the real
one and a limit never admits more than it says.

Windows are calendar windows in UTC (``"minute"``, ``"hour"``, ``"day"``, ``"month"``;
None: one window forever), taken from the clock of the process that reserves: the spend
starts again from zero at each boundary. A reservation belongs to the window it was made
in and settles there, even when the call ends after the boundary (so the new window
starts from zero, and a call is never counted twice or in two windows).

A reservation never settled (the process died mid-call) keeps counting, as spent, until
its window ends: the money may have been spent, so giving it back could overspend.
After ``reservation_ttl`` seconds it is *reported* as spent rather than reserved; a late
:meth:`Budget.settle` still replaces it by the real cost. A caller *cancelled* while it
reserves or settles is another case: the step finishes in the background and a
reservation nobody is left to use is given back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from synapsekit.errors import BudgetError, BudgetExceededError, ConfigError

# decimal, uuid, datetime and calendar are imported by the first budget in use, not with
# the module: ``from synapsekit import Budget`` stays cheap.
if TYPE_CHECKING:
    from decimal import Context

__all__ = [
    "WINDOWS",
    "Budget",
    "BudgetExceeded",
    "BudgetGuard",
    "BudgetLimit",
    "CircuitState",
    "Reservation",
    "to_nanos",
    "window_of",
]

log = logging.getLogger("synapsekit.budget")

#: The windows a budget may count over (None: no reset).
WINDOWS = (None, "minute", "hour", "day", "month")
#: Seconds after which an unsettled reservation is reported as spent (it counts either way).
RESERVATION_TTL = 600.0
#: Seconds a Redis or SQLite round trip may take before the budget refuses the call.
TIMEOUT = 2.0
#: Amounts are counted in nano-dollars up to this (about $9 million): integers that
#: Redis's Lua numbers (doubles) still hold exactly. A limit at or above it (an infinite
#: limit) never refuses.
_UNLIMITED = 2**53

Clock = Callable[[], float]
T = TypeVar("T")


def to_nanos(usd: float, *, up: bool = True) -> int:
    """``usd`` as whole nano-dollars, rounded up (``up=False``: down, for a limit), so a
    counted cost is never below the real one and a limit never above its own: ``0.1 +
    0.2`` is 300,000,000; $0.0000042 (a short gpt-4o-mini call) is 4,200."""
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or math.isnan(usd) or usd < 0:
        raise ValueError(f"an amount in USD must be a number >= 0, got {usd!r}")
    if math.isinf(usd):
        return _UNLIMITED
    from decimal import ROUND_CEILING, ROUND_FLOOR

    exact = _reader().create_decimal(repr(float(usd))) * 10**9
    return min(int(exact.to_integral_value(ROUND_CEILING if up else ROUND_FLOOR)), _UNLIMITED)


@functools.cache
def _reader() -> Context:
    """Floats are read to 12 significant digits first: their noise (0.1 + 0.2 =
    0.30000000000000004) is dropped, and what is lost is at most a relative 5e-13."""
    from decimal import ROUND_HALF_EVEN, Context

    return Context(prec=12, rounding=ROUND_HALF_EVEN)


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex


def _usd(nanos: int) -> float:
    return math.inf if nanos >= _UNLIMITED else nanos / 1e9


def window_of(window: str | None, now: float) -> tuple[str, float]:
    """The calendar window (UTC) that contains ``now``: its name (``"2026-12-02"`` for a
    day, ``"2026-12"`` for a month, ``"all"`` without a window) and when it ends (unix
    seconds; infinity without a window)."""
    if window is None:
        return "all", math.inf
    from datetime import datetime, timezone

    t = datetime.fromtimestamp(now, timezone.utc)
    if window == "month":
        import calendar

        year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
        return t.strftime("%Y-%m"), float(calendar.timegm((year, month, 1, 0, 0, 0)))
    size, fmt = {"minute": (60, "%Y-%m-%dT%H:%M"), "hour": (3600, "%Y-%m-%dT%H"),
                 "day": (86400, "%Y-%m-%d")}[window]
    return t.strftime(fmt), float((int(now) // size + 1) * size)


@dataclass(frozen=True)
class Reservation:
    """What :meth:`Budget.reserve` set aside for one call: give it back to
    :meth:`Budget.settle` or :meth:`Budget.release`."""

    id: str
    nanos: int
    window: str  # the window it counts in, see window_of
    expires_at: float  # unix seconds: reported as spent after this
    what: str = ""

    @property
    def usd(self) -> float:
        return _usd(self.nanos)


class _Totals:
    """One window's counters, as nano-dollars. (A slotted class, not a dataclass: it is
    built at import, and ``from synapsekit import Budget`` should stay cheap.)"""

    __slots__ = ("expired", "held", "spent")

    def __init__(self, spent: int = 0, held: int = 0, expired: int = 0) -> None:
        self.spent = spent  # settled
        self.held = held  # reserved and not settled (expired ones included)
        self.expired = expired  # the part of ``held`` past its reservation_ttl (as spent)

    def __repr__(self) -> str:
        return f"_Totals(spent={self.spent}, held={self.held}, expired={self.expired})"


# ------------------------------------------------------------------------- stores


class _MemoryStore:
    """This process only: the counters under a ``threading.Lock``; windows that ended
    more than a reservation_ttl ago are dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[_Totals, dict[str, tuple[int, float]], float]] = {}

    async def reserve(
        self, r: Reservation, limit: int, ends_at: float, now: float, keep: float
    ) -> tuple[bool, _Totals]:
        with self._lock:
            entry = self._windows.get(r.window)
            if entry is None:
                self._windows = {
                    k: v for k, v in self._windows.items() if v[2] + keep > now
                }
                entry = self._windows[r.window] = (_Totals(), {}, ends_at)
            totals, holds, _ = entry
            if totals.spent + totals.held + r.nanos > limit:
                return False, self._report(totals, holds, now)
            totals.held += r.nanos
            holds[r.id] = (r.nanos, r.expires_at)
            # no scan for expired holds here: the figures are read by peek(), not these
            return True, _Totals(totals.spent, totals.held)

    async def settle(self, r: Reservation, cost: int | None, now: float) -> _Totals | None:
        with self._lock:
            entry = self._windows.get(r.window)
            if entry is None or r.id not in entry[1]:
                return None
            totals, holds, _ = entry
            nanos, _ = holds.pop(r.id)
            totals.held -= nanos
            totals.spent += nanos if cost is None else cost
            return _Totals(totals.spent, totals.held)

    async def totals(self, window: str, now: float) -> _Totals:
        return self.peek(window, now)

    def peek(self, window: str, now: float) -> _Totals:
        with self._lock:
            entry = self._windows.get(window)
            return _Totals() if entry is None else self._report(entry[0], entry[1], now)

    async def clear(self) -> None:
        with self._lock:
            self._windows.clear()

    async def aclose(self) -> None:
        return None

    def describe(self) -> str:
        return ""

    @staticmethod
    def _report(totals: _Totals, holds: dict[str, tuple[int, float]], now: float) -> _Totals:
        expired = sum(m for m, expires in holds.values() if expires <= now) if holds else 0
        return _Totals(totals.spent, totals.held, expired)


_running: set[asyncio.Future[Any]] = set()  # background steps, referenced until done


def _finished(task: asyncio.Future[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("a budget step failed: %s", task.exception())


def _make_store(budget: Budget, path: str | None, redis_url: str | None, timeout: float) -> Any:
    if budget.backend == "memory":
        return _MemoryStore()
    from synapsekit.llm._budget_stores import RedisStore, SQLiteStore

    if budget.backend == "sqlite":
        return SQLiteStore(budget.name, path, timeout)
    return RedisStore(budget.name, redis_url, timeout)


# ------------------------------------------------------------------------- the budget


class Budget:
    """A spend limit in USD over a calendar window, checked before every call.

    ``Budget(limit_usd, *, window=None, backend="memory", path=None, redis_url=None,
    name="default", allow_unpriced=False, reservation_ttl=600, timeout=2.0)``:

    - ``window``: None (one limit forever), ``"minute"``, ``"hour"``, ``"day"`` or
      ``"month"``: calendar windows in UTC; the spend resets at each boundary.
    - ``backend``: ``"memory"`` counts in this object (share the object to share the
      budget); ``"sqlite"`` in the file ``path`` (default
      ``$XDG_DATA_HOME/synapsekit/budgets.db``), shared by every process of the machine;
      ``"redis"`` on the server ``redis_url`` (default ``$REDIS_URL``), shared by every
      process of every machine. With the file or the server, every Budget of the same
      ``name`` and ``window`` counts one spend; each checks it against its own
      ``limit_usd``.
    - ``allow_unpriced``: a model with no known price is refused under a budget
      (:class:`~synapsekit.errors.UnpricedModelError`) unless this is True; its calls
      then count $0.
    - ``reservation_ttl``: seconds after which an unsettled reservation is reported as
      spent (it counts against the limit either way, until its window ends).
    - ``clock``: unix seconds now (``time.time``); injectable for tests.
    - ``timeout``: seconds one SQLite transaction or Redis round trip may take. A budget
      fails closed: when its file or server cannot be used, :meth:`reserve` raises
      :class:`~synapsekit.errors.BudgetError` (nothing is sent), since a call it cannot
      count could overspend; :meth:`settle` logs a warning and leaves the reservation
      counting as spent.

    ``spent_usd``, ``reserved_usd`` and ``remaining_usd`` are exact with the memory
    backend; with SQLite and Redis they are the figures of this object's last
    reservation, settlement or :meth:`aspent` (other processes' calls since then are not
    in them); ``await aspent()`` reads the backend.
    """

    def __init__(
        self,
        limit_usd: float,
        *,
        window: str | None = None,
        backend: str = "memory",
        path: str | None = None,
        redis_url: str | None = None,
        name: str = "default",
        allow_unpriced: bool = False,
        reservation_ttl: float = RESERVATION_TTL,
        timeout: float = TIMEOUT,
        clock: Clock = time.time,
    ) -> None:
        try:
            self._limit = to_nanos(limit_usd, up=False)
        except ValueError as exc:
            raise ConfigError(f"Budget limit_usd: {exc}") from None
        if window not in WINDOWS:
            raise ConfigError(
                f"Budget window: must be None, 'minute', 'hour', 'day' or 'month', got {window!r}"
            )
        if backend not in ("memory", "sqlite", "redis"):
            raise ConfigError(
                f"Budget backend: must be 'memory', 'sqlite' or 'redis', got {backend!r}"
            )
        for label, value in (("reservation_ttl", reservation_ttl), ("timeout", timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"Budget {label}: must be > 0 seconds, got {value!r}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"Budget name: must be a non-empty string, got {name!r}")
        self.limit_usd = _usd(self._limit)
        self.window = window
        self.backend = backend
        self.name = name
        self.allow_unpriced = bool(allow_unpriced)
        self.reservation_ttl = float(reservation_ttl)
        self._clock = clock
        self._store = _make_store(self, path, redis_url, float(timeout))
        self._seen: tuple[str, _Totals] = ("", _Totals())  # last figures read, by window

    # ---- the call path

    async def reserve(self, usd: float, *, what: str = "") -> Reservation:
        """Set ``usd`` aside for one call, or raise BudgetExceededError (nothing changes
        then). ``what`` names the call in logs (e.g. ``"openai:gpt-4o-mini"``)."""
        nanos = to_nanos(usd)
        now = self._clock()
        key, ends_at = window_of(self.window, now)
        r = Reservation(_new_id(), nanos, key, now + self.reservation_ttl, what)
        step = self._store.reserve(r, self._limit, ends_at, now, self.reservation_ttl)
        if isinstance(self._store, _MemoryStore):
            ok, totals = await step  # no await inside: it cannot be cut half-way
        else:
            # Run to the end even if the caller is cancelled meanwhile (a SQLite
            # transaction cut after its BEGIN would keep the file locked), and then give
            # the reservation back: a cancelled call must not hold budget all day.
            task = asyncio.ensure_future(step)
            try:
                ok, totals = await asyncio.shield(task)
            except asyncio.CancelledError:
                _running.add(task)
                task.add_done_callback(lambda done: self._undo(done, r))
                raise
        self._seen = (key, totals)
        if not ok:
            raise self._exceeded(totals, nanos, key)
        return r

    async def settle(self, reservation: Reservation, usd: float | None) -> None:
        """Replace ``reservation`` by the real cost ``usd`` (None: keep the reserved
        amount as spent, e.g. a stream cut before its usage arrived). Idempotent: a
        reservation settles once; later calls change nothing."""
        step = self._settle(reservation, None if usd is None else to_nanos(usd))
        if isinstance(self._store, _MemoryStore):
            await step
        else:  # a settlement the caller's cancellation cuts would hold budget all day
            await asyncio.shield(self._background(step))

    async def _settle(self, reservation: Reservation, cost: int | None) -> None:
        try:
            totals = await self._store.settle(reservation, cost, self._clock())
        except BudgetError as exc:
            log.warning("%r: could not settle %s (%s); it keeps counting as spent",
                        self, reservation.what or "a call", exc)
            return
        if totals is not None and reservation.window == self._seen[0]:
            self._seen = (reservation.window, totals)

    async def release(self, reservation: Reservation) -> None:
        """Give the whole reservation back: nothing was sent (``settle(r, 0.0)``)."""
        await self.settle(reservation, 0.0)

    def _background(self, step: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """``step`` as a task that finishes even if its awaiter is cancelled (kept
        referenced until then; a failure nobody awaits any more is logged)."""
        task = asyncio.ensure_future(step)
        _running.add(task)
        task.add_done_callback(_finished)
        return task

    def _undo(self, done: asyncio.Future[tuple[bool, _Totals]], r: Reservation) -> None:
        """After a cancelled reserve: release the reservation if it was made."""
        _running.discard(done)
        if not done.cancelled() and done.exception() is None and done.result()[0]:
            self._background(self._settle(r, 0))

    # ---- figures

    @property
    def spent_usd(self) -> float:
        """Spent in the current window (unsettled reservations past their ttl included)."""
        totals = self._current()
        return _usd(totals.spent + totals.expired)

    @property
    def reserved_usd(self) -> float:
        """Reserved by calls in flight in the current window."""
        totals = self._current()
        return _usd(totals.held - totals.expired)

    @property
    def remaining_usd(self) -> float:
        """What a call could still reserve now: limit - spent - reserved (never < 0)."""
        totals = self._current()
        return _usd(max(self._limit - totals.spent - totals.held, 0))

    async def aspent(self) -> float:
        """Spent in the current window, read from the backend (exact)."""
        now = self._clock()
        key, _ = window_of(self.window, now)
        totals = await self._store.totals(key, now)
        self._seen = (key, totals)
        return _usd(totals.spent + totals.expired)

    async def aclose(self) -> None:
        """Close the backend's connections (each event loop's also close with it)."""
        await self._store.aclose()

    async def _record(self, usd: float) -> None:
        """Count ``usd`` as spent whatever the limit (a call made without a reservation)."""
        now = self._clock()
        key, ends_at = window_of(self.window, now)
        r = Reservation(_new_id(), to_nanos(usd), key, now, "record")
        await self._store.reserve(r, _UNLIMITED, ends_at, now, self.reservation_ttl)
        await self._store.settle(r, None, now)

    def _current(self) -> _Totals:
        now = self._clock()
        key, _ = window_of(self.window, now)
        if isinstance(self._store, _MemoryStore):
            return self._store.peek(key, now)
        seen_key, totals = self._seen
        return totals if seen_key == key else _Totals()

    def _exceeded(
        self, totals: _Totals, nanos: int, key: str, limit_type: str = "budget",
        limit: int | None = None,
    ) -> BudgetExceededError:
        return BudgetExceededError(
            limit_usd=_usd(self._limit if limit is None else limit),
            spent_usd=_usd(totals.spent + totals.expired),
            reserved_usd=_usd(totals.held - totals.expired),
            requested_usd=_usd(nanos),
            name=self.name,
            window=None if self.window is None else f"{self.window} {key}",
            limit_type=limit_type,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(limit_usd={self.limit_usd!r}, window={self.window!r}, "
            f"backend={self.backend!r}, name={self.name!r}{self._store.describe()})"
        )


# ------------------------------------------------------------------------- SynapseKit names


class CircuitState(str, Enum):
    """SynapseKit's BudgetGuard states: CLOSED (calls go), OPEN (a limit was hit: every
    call is refused for ``cooldown_seconds``), HALF_OPEN (calls go again; the next one
    that fits closes it)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BudgetLimit:
    """SynapseKit's limits, all optional, in USD: ``per_request`` (one call's worst
    case), ``per_user`` (a user's spend per UTC day), ``daily`` (all calls per UTC day)."""

    per_request: float | None = None
    per_user: float | None = None
    daily: float | None = None


class BudgetGuard(Budget):
    """SynapseKit's ``BudgetGuard(limits, cooldown_seconds=60)`` as a :class:`Budget`
    with ``window="day"`` and ``limit_usd=limits.daily`` (unlimited when None), so it can
    be given to ``make_llm(budget=...)`` like any budget. A reservation above
    ``per_request`` is refused; ``check_before(cost, user_id=)`` and ``record_spend(cost,
    user_id=)`` are SynapseKit's manual calls (per-user limits apply to calls that name a
    user, per UTC day); after a refusal every call is refused for ``cooldown_seconds``
    (its circuit breaker). Backend keywords (``backend``, ``path``, ``redis_url``,
    ``name``, ...) are Budget's.
    """

    def __init__(
        self, limits: BudgetLimit, cooldown_seconds: float = 60.0, **budget: Any
    ) -> None:
        daily = math.inf if limits.daily is None else limits.daily
        super().__init__(daily, window="day", **budget)
        self.limits = limits
        self.cooldown_seconds = float(cooldown_seconds)
        self._per_request = None if limits.per_request is None else to_nanos(
            limits.per_request, up=False)
        self._budget_args = {k: v for k, v in budget.items() if k != "name"}
        self._users: dict[str, Budget] = {}
        self._user_holds: dict[str, tuple[Budget, Reservation]] = {}
        self._opened_at: float | None = None
        self._state_lock = threading.Lock()

    @property
    def circuit_state(self) -> CircuitState:
        with self._state_lock:
            if self._opened_at is None:
                return CircuitState.CLOSED
            if time.monotonic() - self._opened_at < self.cooldown_seconds:
                return CircuitState.OPEN
            return CircuitState.HALF_OPEN

    @property
    def daily_spend(self) -> float:
        """SynapseKit's name for :attr:`spent_usd` (the window is the UTC day)."""
        return self.spent_usd

    async def reserve(
        self, usd: float, *, what: str = "", user_id: str | None = None
    ) -> Reservation:
        nanos = to_nanos(usd)
        key, _ = window_of(self.window, self._clock())
        if self.circuit_state is CircuitState.OPEN:
            raise self._exceeded(self._current(), nanos, key, "circuit_breaker")
        if self._per_request is not None and nanos > self._per_request:
            self._trip()
            raise self._exceeded(self._current(), nanos, key, "per_request", self._per_request)
        try:
            r = await super().reserve(usd, what=what)
        except BudgetExceededError as exc:
            self._trip()
            exc.limit_type = "daily"
            raise
        if user_id is not None and self.limits.per_user is not None:
            user = self._user(user_id)
            try:
                self._user_holds[r.id] = (user, await user.reserve(usd, what=what))
            except BaseException as exc:  # the day's reservation must not outlive it
                await super().release(r)
                if isinstance(exc, BudgetExceededError):
                    self._trip()
                    exc.limit_type = "per_user"
                raise
        with self._state_lock:
            self._opened_at = None  # a call that fits closes the breaker
        return r

    async def settle(self, reservation: Reservation, usd: float | None) -> None:
        await super().settle(reservation, usd)
        held = self._user_holds.pop(reservation.id, None)
        if held is not None:
            await held[0].settle(held[1], usd)

    def check_before(self, estimated_cost: float, user_id: str | None = None) -> None:
        """Raise BudgetExceededError (SynapseKit's ``BudgetExceeded``) if
        ``estimated_cost`` would go over a limit now; counts nothing."""
        from synapsekit.llm._sync import run_sync

        async def check() -> None:
            await self.release(await self.reserve(estimated_cost, user_id=user_id))

        run_sync(check())

    def record_spend(self, cost: float, user_id: str | None = None) -> None:
        """Count ``cost`` as spent, whatever the limits (a call already made)."""
        from synapsekit.llm._sync import run_sync

        async def record() -> None:
            await self._record(cost)
            if user_id is not None and self.limits.per_user is not None:
                await self._user(user_id)._record(cost)

        run_sync(record())

    def reset(self) -> None:
        """Forget all spend (every process's, with SQLite or Redis) and close the breaker."""
        from synapsekit.llm._sync import run_sync

        async def clear() -> None:
            for budget in (self, *self._users.values()):
                await budget._store.clear()

        run_sync(clear())
        self._seen = ("", _Totals())
        self._user_holds.clear()
        with self._state_lock:
            self._opened_at = None

    def _user(self, user_id: str) -> Budget:
        user = self._users.get(user_id)
        if user is None:
            assert self.limits.per_user is not None
            user = self._users[user_id] = Budget(
                self.limits.per_user, window="day", name=f"{self.name}/user/{user_id}",
                **self._budget_args,
            )
        return user

    def _trip(self) -> None:
        with self._state_lock:
            self._opened_at = time.monotonic()


#: SynapseKit's name for :class:`~synapsekit.errors.BudgetExceededError`.
BudgetExceeded = BudgetExceededError
