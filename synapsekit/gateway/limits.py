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
from collections import OrderedDict
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


_RateIdent = tuple[str, float | None, float | None]  # (key id, rpm, tpm)
_BudgetIdent = tuple[str, float, str | None]  # (key id, budget_usd, window)


class KeyLimits:
    """The :class:`~synapsekit.gateway.parts.Limits` of every key, built on first use
    and rebuilt when a key's limits change (``synapsekit keys set-budget``).

    One rate limiter and one budget are kept per key id, for the limits that key last
    came with: a request whose key has other limits replaces the entry, and the old
    objects are never looked up again. Keys are changed and revoked by the CLI, in
    another process, so this object never hears that a key is gone -- a revoked key
    simply stops coming. The entries are therefore a bounded LRU (``max_keys``, the
    least recently used key dropped first): memory stays bounded whatever the churn of
    keys, and a revoked key is forgotten once ``max_keys`` other keys came after it.

    In-flight requests keep what they started on. A budget is handed to the call path,
    which reserves and settles on that object whatever happens here since. A rate
    limiter is held while requests admitted on it are unsettled, and :meth:`settle`
    finds it by the limits of the request's own :class:`KeyInfo`: a limiter replaced
    (or evicted) with requests still out lives, off the LRU, until the last of them
    settles, and is reused if the key comes back with those limits meanwhile. Dropped
    objects are not closed here (a request may still hold one): their connections
    close when they are garbage-collected (:class:`synapsekit._loops.PerLoop`).

    ``redis_timeout``: seconds a Redis round trip of the rate limiter may take before
    that request is limited in-process instead (:data:`REDIS_TIMEOUT`).
    """

    def __init__(self, *, redis_url: str | None = None, budget_path: str | None = None,
                 redis_timeout: float = REDIS_TIMEOUT, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.redis_url = redis_url
        self.budget_path = budget_path
        self.redis_timeout = redis_timeout
        self.max_keys = max_keys
        # key id -> (its limits, the object for them): the current ones, oldest use first
        self._limiters: OrderedDict[str, tuple[_RateIdent, RateLimiter]] = OrderedDict()
        self._budgets: OrderedDict[str, tuple[_BudgetIdent, Budget]] = OrderedDict()
        # limits -> (limiter, requests admitted on it and not yet settled)
        self._held: dict[_RateIdent, tuple[RateLimiter, int]] = {}
        self._lock = threading.Lock()

    async def admit(self, key: KeyInfo, estimated_tokens: int) -> None:
        limiter = self._hold(key)
        if limiter is None:
            return
        try:
            wait = await limiter.try_acquire(estimated_tokens)
        except BaseException:
            self._release(_rate_ident(key))
            raise
        if wait > 0:  # not admitted: no settle follows
            self._release(_rate_ident(key))
            raise GatewayError(
                429, "rate_limit_exceeded",
                f"Rate limit reached for key {key.id}: try again in {wait:.2f}s.",
                retry_after=wait)

    async def settle(self, key: KeyInfo, estimated_tokens: int, used_tokens: int) -> None:
        ident = _rate_ident(key)
        with self._lock:
            held = self._held.get(ident)
        if held is None:  # no rate limits (or not admitted here): nothing to settle
            return
        try:
            await held[0].settle(estimated_tokens, used_tokens)
        finally:
            self._release(ident)

    def budget(self, key: KeyInfo) -> Budget | None:
        if key.budget_usd is None:
            with self._lock:
                self._budgets.pop(key.id, None)
            return None
        ident = (key.id, key.budget_usd, key.window)
        with self._lock:
            entry = self._budgets.get(key.id)
            if entry is not None and entry[0] == ident:
                self._budgets.move_to_end(key.id)
                return entry[1]
            if self.redis_url:
                found = Budget(key.budget_usd, window=key.window, backend="redis",
                               redis_url=self.redis_url, name=f"gateway:{key.id}")
            else:
                found = Budget(key.budget_usd, window=key.window, backend="sqlite",
                               path=self.budget_path, name=f"gateway:{key.id}")
            self._budgets[key.id] = (ident, found)  # (replaces the old one, if any)
            self._budgets.move_to_end(key.id)
            while len(self._budgets) > self.max_keys:
                self._budgets.popitem(last=False)
            return found

    async def aclose(self) -> None:
        with self._lock:
            limiters = [limiter for _, limiter in self._limiters.values()]
            limiters += [limiter for limiter, _ in self._held.values()]
            budgets = [budget for _, budget in self._budgets.values()]
        for limiter in {id(x): x for x in limiters}.values():
            if isinstance(limiter, RedisRateLimiter):
                await limiter.aclose()
        for budget in budgets:
            await budget.aclose()

    def _hold(self, key: KeyInfo) -> RateLimiter | None:
        """The key's current limiter (None: no rate limits), held by one more request
        until :meth:`_release`."""
        rpm, tpm = key.requests_per_minute, key.tokens_per_minute
        with self._lock:
            if rpm is None and tpm is None:
                self._limiters.pop(key.id, None)
                return None
            ident = (key.id, rpm, tpm)
            entry = self._limiters.get(key.id)
            held = self._held.get(ident)
            if entry is not None and entry[0] == ident:
                found = entry[1]
            elif held is not None:  # requests still out under these limits: their buckets
                found = held[0]
            elif self.redis_url:
                found = RedisRateLimiter(self.redis_url, f"synapsekit:gateway:{key.id}:"
                                         f"{rpm}:{tpm}", rpm, tpm,
                                         timeout=self.redis_timeout)
            else:
                found = MemoryRateLimiter(rpm, tpm)
            self._limiters[key.id] = (ident, found)  # (replaces the old one, if any)
            self._limiters.move_to_end(key.id)
            while len(self._limiters) > self.max_keys:
                self._limiters.popitem(last=False)
            self._held[ident] = (found, 1 if held is None else held[1] + 1)
            return found

    def _release(self, ident: _RateIdent) -> None:
        """One request held on the limiter of ``ident`` is done with it."""
        with self._lock:
            held = self._held.get(ident)
            if held is None:
                return
            if held[1] <= 1:
                del self._held[ident]
            else:
                self._held[ident] = (held[0], held[1] - 1)

    def __repr__(self) -> str:
        return f"KeyLimits(redis={self.redis_url is not None}, keys={len(self._limiters)})"


def _rate_ident(key: KeyInfo) -> _RateIdent:
    return (key.id, key.requests_per_minute, key.tokens_per_minute)


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
