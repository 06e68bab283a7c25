"""Per-key rate limits and budgets for the gateway.

Rate limits: the library's token buckets (:mod:`synapsekit.llm.ratelimit`), asked
:meth:`~synapsekit.llm.ratelimit.RateLimiter.try_acquire`: a request over a key's
``requests_per_minute`` / ``tokens_per_minute`` is answered 429 at once with
``Retry-After`` (a gateway must not hold a connection waiting). With ``[storage]
redis_url`` the buckets live in Redis, shared by every worker and node.

Budgets: one :class:`~synapsekit.llm.budget.Budget` per key (its ``budget_usd`` over its
``window``), given to the call path, which reserves before sending: a request over budget
sends nothing upstream. Embeddings reserve against the same budget here
(:func:`reserve_embedding`: the call path of chat is not theirs). The spend is kept in
Redis when configured, else in a SQLite file beside the ledger (``budgets.db``), shared by
the processes of one machine.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from synapsekit.gateway.ledger import ledger_folder
from synapsekit.gateway.types import GatewayError, KeyInfo
from synapsekit.llm import pricing
from synapsekit.llm.budget import Budget, Reservation
from synapsekit.llm.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from synapsekit.llm.types import Usage

if TYPE_CHECKING:
    from synapsekit.gateway.config import GatewayConfig

#: Seconds the gateway's shared state (rate limiters, Routers' member health) waits for a
#: Redis round trip before it decides that request in-process. The library's 0.25 s suits
#: an app's own calls; in a gateway the Redis state is what the workers and nodes share,
#: and a burst keeps a worker's event loop busy for longer than that while Redis itself
#: answers at once. Measured on a loaded 2-core machine: 120 requests at once through 4
#: workers, a key of 40 requests a minute: at 0.25 s three of the four workers fell back
#: and 109 went through; at 2 s none fell back and 40 went through. A frozen Redis costs
#: the first requests that long (the limiter's back-off then skips it).
REDIS_TIMEOUT = 2.0

__all__ = ["REDIS_TIMEOUT", "KeyLimits", "open_limits", "reserve_embedding", "settle_embedding"]


class KeyLimits:
    """The :class:`~synapsekit.gateway.parts.Limits` of every key, built on first use
    and rebuilt when a key's limits change (``synapsekit keys set-budget``).

    ``redis_timeout``: seconds a Redis round trip of the rate limiter may take before
    that request is limited in-process instead (:data:`REDIS_TIMEOUT`).
    """

    def __init__(self, *, redis_url: str | None = None, budget_path: str | None = None,
                 redis_timeout: float = REDIS_TIMEOUT) -> None:
        self.redis_url = redis_url
        self.budget_path = budget_path
        self.redis_timeout = redis_timeout
        self._limiters: dict[tuple[str, float | None, float | None], RateLimiter] = {}
        self._budgets: dict[tuple[str, float, str | None], Budget] = {}
        self._lock = threading.Lock()

    async def admit(self, key: KeyInfo, estimated_tokens: int) -> None:
        limiter = self._limiter(key)
        if limiter is None:
            return
        wait = await limiter.try_acquire(estimated_tokens)
        if wait > 0:
            raise GatewayError(
                429, "rate_limit_exceeded",
                f"Rate limit reached for key {key.id}: try again in {wait:.2f}s.",
                retry_after=wait)

    async def settle(self, key: KeyInfo, estimated_tokens: int, used_tokens: int) -> None:
        limiter = self._limiter(key)
        if limiter is not None:
            await limiter.settle(estimated_tokens, used_tokens)

    def budget(self, key: KeyInfo) -> Budget | None:
        if key.budget_usd is None:
            return None
        ident = (key.id, key.budget_usd, key.window)
        with self._lock:
            found = self._budgets.get(ident)
            if found is None:
                if self.redis_url:
                    found = Budget(key.budget_usd, window=key.window, backend="redis",
                                   redis_url=self.redis_url, name=f"gateway:{key.id}")
                else:
                    found = Budget(key.budget_usd, window=key.window, backend="sqlite",
                                   path=self.budget_path, name=f"gateway:{key.id}")
                self._budgets[ident] = found
            return found

    async def aclose(self) -> None:
        for limiter in list(self._limiters.values()):
            if isinstance(limiter, RedisRateLimiter):
                await limiter.aclose()
        for budget in list(self._budgets.values()):
            await budget.aclose()

    def _limiter(self, key: KeyInfo) -> RateLimiter | None:
        rpm, tpm = key.requests_per_minute, key.tokens_per_minute
        if rpm is None and tpm is None:
            return None
        ident = (key.id, rpm, tpm)
        with self._lock:
            found = self._limiters.get(ident)
            if found is None:
                if self.redis_url:
                    found = RedisRateLimiter(self.redis_url, f"synapsekit:gateway:{key.id}:"
                                             f"{rpm}:{tpm}", rpm, tpm,
                                             timeout=self.redis_timeout)
                else:
                    found = MemoryRateLimiter(rpm, tpm)
                self._limiters[ident] = found
            return found

    def __repr__(self) -> str:
        return f"KeyLimits(redis={self.redis_url is not None}, keys={len(self._limiters)})"


def open_limits(config: GatewayConfig) -> KeyLimits:
    """The limits of ``config`` (what :class:`Gateway.from_config` uses)."""
    return KeyLimits(redis_url=config.redis_url,
                     budget_path=os.path.join(ledger_folder(config), "budgets.db"))


async def reserve_embedding(budget: Budget, member: str, texts: Sequence[str]) -> Reservation:
    """Reserve an embedding call's cost before it is sent (BudgetExceededError when it does
    not fit): ceil(characters / 4) input tokens -- the estimate a chat call's input is
    reserved at -- at the price of ``member`` (``"provider:model"``). A model with no known
    price is refused (:class:`~synapsekit.errors.UnpricedModelError`) unless the budget
    allows unpriced models, as for chat."""
    provider, _, model = member.partition(":")
    quote = pricing.quote(provider, model)
    if quote is None and not budget.allow_unpriced:
        from synapsekit.errors import UnpricedModelError

        raise UnpricedModelError(provider=provider, model=model)
    tokens = math.ceil(sum(len(t) for t in texts) / 4)
    worst = 0.0 if quote is None else quote.price.cost(Usage(input_tokens=tokens))
    return await budget.reserve(worst, what=member)


async def settle_embedding(budget: Budget, held: Reservation, member: str, tokens: int) -> None:
    """Replace the reservation by the cost of the ``tokens`` the provider reported (0: none
    answered, the reservation is given back)."""
    provider, _, model = member.partition(":")
    await budget.settle(held, pricing.cost(provider, model, Usage(input_tokens=tokens)) or 0.0)
