"""Budget: reservations before the call, settlement after, on the three backends.

Real SQLite files (tmp_path), the session's real redis-server, real processes for the
cross-process checks. Time is a fake clock (a Budget's ``clock``) so window boundaries
and reservation expiry are exact; it starts in 2030 so the Redis hashes' expiry times
(set from the same clock) are in the future.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import logging
import math
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from synapsekit.errors import (
    BudgetError,
    BudgetExceededError,
    ConfigError,
    SynapseKitError,
    UnpricedModelError,
)
from synapsekit.llm.budget import (
    Budget,
    BudgetExceeded,
    BudgetGuard,
    BudgetLimit,
    CircuitState,
    to_nanos,
    window_of,
)
from tests.redis_server import SLOW_MACHINE

ROOT = Path(__file__).resolve().parent.parent
#: 2030-01-31 23:59:00 UTC: one minute before a minute, hour, day and month boundary.
T0 = float(calendar.timegm((2030, 1, 31, 23, 59, 0)))


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


MakeBudget = Callable[..., Budget]


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def make(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MakeBudget]:
    """Budgets on one backend; budgets made by one test share its file / server."""
    backend = request.param
    made: list[Budget] = []
    extra: dict[str, Any] = {}
    if backend == "sqlite":
        extra["path"] = str(tmp_path / "budgets.db")
    if backend == "redis":
        extra["redis_url"] = request.getfixturevalue("redis_url")

    def build(limit_usd: float, **kwargs: Any) -> Budget:
        budget = Budget(limit_usd, backend=backend, timeout=SLOW_MACHINE, **extra, **kwargs)
        made.append(budget)
        return budget

    yield build
    for budget in made:
        await budget.aclose()


# ------------------------------------------------------------------------- amounts


def test_amounts_are_whole_nano_dollars_costs_rounded_up_limits_down() -> None:
    assert to_nanos(0.1 + 0.2) == 300_000_000  # 0.30000000000000004: the noise is dropped
    assert to_nanos(1000 * 2.5 / 1e6) == 2_500_000
    assert to_nanos((12 * 0.15 + 4 * 0.60) / 1e6) == 4_200  # a short gpt-4o-mini call
    assert to_nanos(0.0000000001) == 1  # a tenth of a nano-dollar counts as one
    assert to_nanos(0.0000000001, up=False) == 0  # and a limit does not grow by it
    assert to_nanos(0.00000000151) == 2
    assert to_nanos(0.00000000151, up=False) == 1
    assert to_nanos(0) == 0
    assert to_nanos(12.345678912) == 12_345_678_912
    assert to_nanos(math.inf) == 2**53  # no limit
    for bad in (-0.01, math.nan, "1", True):
        with pytest.raises(ValueError):
            to_nanos(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("window", "key", "ends"),
    [
        (None, "all", math.inf),
        ("minute", "2030-01-31T23:59", (2030, 2, 1, 0, 0, 0)),
        ("hour", "2030-01-31T23", (2030, 2, 1, 0, 0, 0)),
        ("day", "2030-01-31", (2030, 2, 1, 0, 0, 0)),
        ("month", "2030-01", (2030, 2, 1, 0, 0, 0)),
    ],
)
def test_windows_are_utc_calendar_windows(
    window: str | None, key: str, ends: tuple[int, ...] | float
) -> None:
    end = ends if isinstance(ends, float) else float(calendar.timegm(ends))
    assert window_of(window, T0 + 30.5) == (key, end)
    if window is not None:  # the boundary itself is the next window
        assert window_of(window, end)[0] != key


def test_month_window_rolls_over_the_year() -> None:
    december = float(calendar.timegm((2030, 12, 15, 12, 0, 0)))
    assert window_of("month", december) == (
        "2030-12", float(calendar.timegm((2031, 1, 1, 0, 0, 0)))
    )


def test_bad_settings_are_config_errors() -> None:
    for kwargs, field in (
        ({"window": "week"}, "window"),
        ({"backend": "postgres"}, "backend"),
        ({"name": ""}, "name"),
        ({"reservation_ttl": 0}, "reservation_ttl"),
        ({"timeout": -1}, "timeout"),
    ):
        with pytest.raises(ConfigError, match=field):
            Budget(1.0, **kwargs)
    with pytest.raises(ConfigError, match="limit_usd"):
        Budget(-1.0)


def test_a_limit_between_two_nano_dollars_admits_only_what_it_says() -> None:
    async def run() -> None:
        worst = (8 * 0.15 + 100 * 0.60) / 1e6  # $0.0000612
        budget = Budget(worst * 0.999)  # $0.0000611388...
        with pytest.raises(BudgetExceededError) as info:
            await budget.reserve(worst)
        assert str(info.value) == (
            "Budget 'default' exceeded: limit $0.0000611, spent $0.00, reserved by calls "
            "in flight $0.00, this call needs up to $0.0000612; nothing was sent."
        )
        assert budget.limit_usd == 0.000061138  # rounded down to the nano-dollar
        with pytest.raises(BudgetExceededError):
            await budget.reserve(worst * 0.999)  # 61,138.8 nano-dollars: rounded up
        await budget.reserve(0.000061138)  # exactly the limit fits

    asyncio.run(run())


def test_error_classes_sit_under_budget_error() -> None:
    assert issubclass(BudgetExceededError, BudgetError)
    assert issubclass(UnpricedModelError, BudgetError)
    assert issubclass(BudgetError, SynapseKitError)
    assert BudgetExceeded is BudgetExceededError
    err = UnpricedModelError(provider="openai", model="gpt-9")
    assert (err.provider, err.model) == ("openai", "gpt-9")
    assert str(err) == (
        "No price is known for model 'gpt-9' (provider 'openai'), so its cost cannot be "
        "bounded under a budget; nothing was sent. Pass Budget(..., allow_unpriced=True) "
        "to allow it (its calls then count $0)."
    )
    assert Budget(1.0).allow_unpriced is False
    assert Budget(1.0, allow_unpriced=True).allow_unpriced is True


# ------------------------------------------------------------------------- every backend


async def test_reserve_refuse_settle_release(make: MakeBudget) -> None:
    budget = make(1.0, window="day", clock=Clock())
    a = await budget.reserve(0.4, what="openai:gpt-4o")
    b = await budget.reserve(0.4)
    assert (budget.spent_usd, budget.reserved_usd, budget.remaining_usd) == (0.0, 0.8, 0.2)
    with pytest.raises(BudgetExceededError) as info:
        await budget.reserve(0.25)
    err = info.value
    assert (err.limit_usd, err.spent_usd, err.reserved_usd, err.requested_usd) == (
        1.0, 0.0, 0.8, 0.25
    )
    assert str(err) == (
        "Budget 'default' (day 2030-01-31 UTC) exceeded: limit $1.00, spent $0.00, "
        "reserved by calls in flight $0.80, this call needs up to $0.25; nothing was sent."
    )
    assert (err.limit_type, err.limit_value, err.current) == ("budget", 1.0, 0.0)
    assert budget.reserved_usd == 0.8  # a refusal changes nothing
    await budget.settle(a, 0.123456)  # real cost below the reservation: the rest is back
    assert (budget.spent_usd, budget.reserved_usd) == (0.123456, 0.4)
    await budget.settle(a, 0.9)  # settled once: a second settle changes nothing
    await budget.release(a)
    assert (budget.spent_usd, budget.reserved_usd) == (0.123456, 0.4)
    await budget.release(b)  # nothing was sent
    assert (budget.spent_usd, budget.reserved_usd, budget.remaining_usd) == (
        0.123456, 0.0, 0.876544
    )
    c = await budget.reserve(0.876544)  # exactly what is left fits
    await budget.settle(c, None)  # no usage reported: the reservation counts as spent
    assert await budget.aspent() == 1.0
    assert budget.remaining_usd == 0.0
    with pytest.raises(BudgetExceededError):
        await budget.reserve(0.000000001)
    zero = await budget.reserve(0.0)  # a call that costs nothing always fits
    await budget.release(zero)


async def test_cost_above_the_reservation_is_counted_in_full(make: MakeBudget) -> None:
    budget = make(1.0, clock=Clock())
    r = await budget.reserve(0.1)
    await budget.settle(r, 0.3)  # the estimate was short: the real cost counts
    assert await budget.aspent() == 0.3
    assert budget.remaining_usd == 0.7


async def test_many_small_costs_add_up_exactly(make: MakeBudget) -> None:
    budget = make(10.0, clock=Clock())
    reservations = await asyncio.gather(*(budget.reserve(0.01) for _ in range(200)))
    await asyncio.gather(*(budget.settle(r, 0.001) for r in reservations))
    assert await budget.aspent() == 0.2  # 200 x 0.001, no float drift
    assert budget.reserved_usd == 0.0


async def test_concurrent_reservations_never_overspend(make: MakeBudget) -> None:
    budget = make(1.0, clock=Clock())

    async def one() -> bool:
        try:
            await budget.reserve(0.03)
        except BudgetExceededError:
            return False
        return True

    accepted = sum(await asyncio.gather(*(one() for _ in range(300))))
    assert accepted == 33  # floor(1.00 / 0.03)
    assert budget.reserved_usd == 0.99


async def test_spend_resets_at_the_window_boundary(make: MakeBudget) -> None:
    clock = Clock()
    budget = make(1.0, window="minute", clock=clock)
    early = await budget.reserve(0.6)
    settled = await budget.reserve(0.3)
    await budget.settle(settled, 0.3)
    with pytest.raises(BudgetExceededError):
        await budget.reserve(0.2)
    clock.now = T0 + 60  # 2030-02-01 00:00:00: a new minute (and hour, day, month)
    assert (budget.spent_usd, budget.reserved_usd, budget.remaining_usd) == (0.0, 0.0, 1.0)
    late = await budget.reserve(0.9)
    # the call reserved in the old minute settles there, not in this one
    await budget.settle(early, 0.6)
    assert (await budget.aspent(), budget.reserved_usd) == (0.0, 0.9)
    await budget.settle(late, 0.5)
    assert await budget.aspent() == 0.5


async def test_a_long_closed_window_is_dropped_and_late_settlements_change_nothing(
    make: MakeBudget,
) -> None:
    clock = Clock()
    budget = make(1.0, window="minute", clock=clock, reservation_ttl=30)
    old = await budget.reserve(0.5)
    clock.now = T0 + 60 + 30  # the minute ended a reservation_ttl ago
    fresh = await budget.reserve(1.0)  # the old window is dropped (memory, SQLite)
    await budget.settle(old, 0.9)  # too late, and never into this window
    assert (await budget.aspent(), budget.reserved_usd) == (0.0, 1.0)
    await budget.settle(fresh, 0.25)
    assert await budget.aspent() == 0.25


@pytest.mark.parametrize("window", ["hour", "day", "month"])
async def test_each_window_resets_at_its_boundary(make: MakeBudget, window: str) -> None:
    clock = Clock()
    budget = make(1.0, window=window, clock=clock)
    await budget.settle(await budget.reserve(1.0), None)
    clock.now = T0 + 59  # the same window
    with pytest.raises(BudgetExceededError):
        await budget.reserve(0.01)
    clock.now = T0 + 60  # the first second of February
    await budget.reserve(1.0)


async def test_a_reservation_never_settled_counts_as_spent(make: MakeBudget) -> None:
    clock = Clock()
    budget = make(1.0, clock=clock, reservation_ttl=600)
    lost = await budget.reserve(0.7)  # its process died: never settled
    clock.now += 600  # past its ttl: reported as spent, and it still blocks
    assert (await budget.aspent(), budget.reserved_usd, budget.remaining_usd) == (
        0.7, 0.0, 0.3
    )
    with pytest.raises(BudgetExceededError) as info:
        await budget.reserve(0.4)
    assert (info.value.spent_usd, info.value.reserved_usd) == (0.7, 0.0)
    await budget.settle(lost, 0.1)  # a late settlement still replaces it
    assert (await budget.aspent(), budget.remaining_usd) == (0.1, 0.9)


async def test_a_cancelled_reserve_or_settle_holds_no_budget(make: MakeBudget) -> None:
    from synapsekit.llm import budget as module

    async def steps_left_behind_finish() -> None:
        for _ in range(500):
            if not module._running:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("a background budget step never finished")

    budget = make(1.0, clock=Clock())
    cancelled = 0
    for turns in range(6):  # cancelled at several points of the round trip
        task = asyncio.ensure_future(budget.reserve(1.0))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled += 1
        else:  # it was done before the cancel arrived: the caller has it
            await budget.release(task.result())
        await steps_left_behind_finish()
        assert (await budget.aspent(), budget.reserved_usd) == (0.0, 0.0)
    assert cancelled >= (1 if budget.backend == "memory" else 3)
    r = await budget.reserve(0.5)
    settling = asyncio.ensure_future(budget.settle(r, 0.25))
    await asyncio.sleep(0)  # started (a memory settlement is done by now)
    settling.cancel()
    if budget.backend != "memory":
        with pytest.raises(asyncio.CancelledError):
            await settling
    await steps_left_behind_finish()
    assert (await budget.aspent(), budget.reserved_usd) == (0.25, 0.0)
    await budget.reserve(0.75)  # nothing held by the cancelled calls


async def test_budgets_of_one_name_share_one_spend(make: MakeBudget) -> None:
    clock = Clock()
    first = make(1.0, window="day", name="team", clock=clock)
    if first.backend == "memory":
        pytest.skip("a memory budget is its object: share the object")
    second = make(1.0, window="day", name="team", clock=clock)
    other = make(1.0, window="day", name="other", clock=clock)
    r = await first.reserve(0.6)
    with pytest.raises(BudgetExceededError):
        await second.reserve(0.6)
    await other.reserve(0.6)  # another name counts on its own
    await second.settle(r, 0.2)  # any object may settle it
    assert await first.aspent() == 0.2
    assert await second.aspent() == 0.2


def test_memory_budgets_do_not_share_by_name() -> None:
    async def run() -> None:
        a, b = Budget(1.0), Budget(1.0)
        await a.reserve(1.0)
        await b.reserve(1.0)

    asyncio.run(run())


# ------------------------------------------------------------------------- failures


async def test_unreachable_redis_refuses_the_call(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    budget = Budget(1.0, backend="redis", redis_url=f"redis://:hunter22@127.0.0.1:{port}/0")
    with pytest.raises(BudgetError, match="cannot be used") as info:
        await budget.reserve(0.1)
    assert not isinstance(info.value, BudgetExceededError)
    assert "nothing was sent" in str(info.value)
    assert "hunter22" not in str(info.value) and "hunter22" not in repr(budget)
    # a settlement that cannot be written is logged, never raised into the finished call
    from synapsekit.llm.budget import Reservation

    with caplog.at_level(logging.WARNING, "synapsekit.budget"):
        await budget.settle(Reservation("x", 1, "all", 0.0, "openai:gpt-4o"), 0.1)
    assert "keeps counting as spent" in caplog.text
    await budget.aclose()


def test_sqlite_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "budgets.db"

    async def use() -> None:
        budget = Budget(1.0, backend="sqlite", path=str(path))
        await budget.reserve(0.1)
        await budget.aclose()

    asyncio.run(use())
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO migrations VALUES ('m999_future', 0)")
    with pytest.raises(BudgetError, match="newer synapsekit"):
        asyncio.run(use())


def test_sqlite_budget_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "budgets.db")

    async def spend(usd: float) -> float:
        budget = Budget(1.0, backend="sqlite", path=path)
        await budget.settle(await budget.reserve(usd), usd)
        spent = await budget.aspent()
        await budget.aclose()
        return spent

    assert asyncio.run(spend(0.25)) == 0.25
    assert asyncio.run(spend(0.5)) == 0.75


# ------------------------------------------------------------------------- processes

CHILD = r"""
import asyncio, json, sys
from synapsekit.errors import BudgetExceededError
from synapsekit.llm.budget import Budget

async def main(backend, where, calls):
    kwargs = {"path": where} if backend == "sqlite" else {"redis_url": where}
    budget = Budget(1.0, backend=backend, name="shared", timeout=30.0, **kwargs)
    await budget.aspent()  # connected before the start signal
    print("READY", flush=True)
    sys.stdin.readline()

    async def one():
        try:
            r = await budget.reserve(0.03)
        except BudgetExceededError:
            return False
        await asyncio.sleep(0)
        await budget.settle(r, 0.03)
        return True

    accepted = sum(await asyncio.gather(*(one() for _ in range(calls))))
    await budget.aclose()
    print(json.dumps(accepted), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_four_processes_never_overspend_one_budget(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    where = (
        str(tmp_path / "budgets.db") if backend == "sqlite"
        else request.getfixturevalue("redis_url")
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, backend, where, "50"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    for proc in procs:  # all start together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
    accepted = [json.loads(out) for out in outs]
    # 4 x 50 concurrent calls of $0.03 against $1.00: exactly floor(1.00 / 0.03) = 33 went
    assert sum(accepted) == 33

    async def spent() -> float:
        kwargs = {"path": where} if backend == "sqlite" else {"redis_url": where}
        budget = Budget(1.0, backend=backend, name="shared", **kwargs)
        try:
            return await budget.aspent()
        finally:
            await budget.aclose()

    assert asyncio.run(spent()) == 0.99


# ------------------------------------------------------------------------- SynapseKit names


def test_budget_guard_limits_as_synapsekit_documents_them() -> None:
    guard = BudgetGuard(BudgetLimit(per_request=0.10, per_user=1.00, daily=2.00))
    assert isinstance(guard, Budget) and guard.window == "day" and guard.limit_usd == 2.0
    assert guard.circuit_state is CircuitState.CLOSED
    guard.check_before(estimated_cost=0.05, user_id="alice")  # fits, counts nothing
    assert guard.daily_spend == 0.0
    guard.record_spend(0.05, user_id="alice")
    assert guard.daily_spend == 0.05
    with pytest.raises(BudgetExceeded) as info:
        guard.check_before(0.50)
    assert (info.value.limit_type, info.value.limit_value) == ("per_request", 0.10)
    assert str(info.value) == (
        "Budget 'default': over its per-request limit of $0.10: this call needs up to "
        "$0.50; nothing was sent."
    )
    assert guard.circuit_state is CircuitState.OPEN  # every call refused for the cooldown
    with pytest.raises(BudgetExceeded) as info:
        guard.check_before(0.01)
    assert info.value.limit_type == "circuit_breaker"
    assert "circuit breaker is open" in str(info.value)
    guard.reset()
    assert guard.circuit_state is CircuitState.CLOSED and guard.daily_spend == 0.0
    for _ in range(10):
        guard.record_spend(0.10, user_id="alice")
    with pytest.raises(BudgetExceeded) as info:
        guard.check_before(0.01, user_id="alice")  # alice spent her 1.00 today
    assert (info.value.limit_type, info.value.current) == ("per_user", 1.0)
    assert guard.daily_spend == 1.0  # the refused check took nothing back or forth


def test_budget_guard_breaker_half_opens_after_the_cooldown() -> None:
    guard = BudgetGuard(BudgetLimit(daily=0.10), cooldown_seconds=0.05)
    with pytest.raises(BudgetExceeded) as info:
        guard.check_before(0.2)
    assert info.value.limit_type == "daily"
    assert guard.circuit_state is CircuitState.OPEN
    import time

    time.sleep(0.06)
    assert guard.circuit_state is CircuitState.HALF_OPEN
    guard.check_before(0.05)  # fits: closes it
    assert guard.circuit_state is CircuitState.CLOSED


async def test_budget_guard_is_a_budget_for_the_call_path() -> None:
    guard = BudgetGuard(BudgetLimit(per_request=0.5, daily=1.0))
    r = await guard.reserve(0.5, what="openai:gpt-4o")
    await guard.settle(r, 0.2)
    assert (guard.spent_usd, guard.remaining_usd) == (0.2, 0.8)
    with pytest.raises(BudgetExceededError, match=r"needs up to \$0.60"):
        await guard.reserve(0.6)  # above per_request


def test_memory_budget_shared_by_threads_and_event_loops_never_overspends() -> None:
    import threading

    budget = Budget(1.0)
    accepted: list[int] = []

    async def many() -> int:
        async def one() -> bool:
            try:
                await budget.reserve(0.003)
            except BudgetExceededError:
                return False
            return True

        return sum(await asyncio.gather(*(one() for _ in range(200))))

    threads = [
        threading.Thread(target=lambda: accepted.append(asyncio.run(many()))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(accepted) == 333  # floor(1.00 / 0.003) of the 800
    assert budget.reserved_usd == 0.999


def test_import_loads_neither_redis_nor_aiosqlite() -> None:
    code = (
        "import sys, synapsekit.llm.budget as b; b.Budget(1.0)\n"
        "print(sorted(m for m in ('redis', 'aiosqlite') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
