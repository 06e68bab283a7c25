"""One call's spend under a :class:`~synapsekit.llm.budget.Budget`: reserved before the
request, settled to the real cost after it.

The reservation is the call's worst case, so a budget blocks *before* money is spent: the
estimated input (:func:`~synapsekit.llm.ratelimit.estimate_tokens`, the same estimate the
tokens-per-minute limiter reserves: the messages, the tool definitions and the response
schema) at the model's input price, plus ``max_tokens`` at its output price (reasoning
price if higher), plus any per-request fee; a tiered price uses the tier of the estimated
input. Every attempt the provider answered is billed, retries
included: an attempt that reported usage costs its priced usage, one that answered but
reported none costs the worst case (its real cost is unknown: the reservation is kept),
one that was never answered (refused connection, a 429) costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapsekit.llm import pricing
from synapsekit.llm.models import worst_case
from synapsekit.llm.ratelimit import estimate_tokens
from synapsekit.llm.types import Message, Usage

if TYPE_CHECKING:
    from synapsekit.llm.budget import Budget, Reservation
    from synapsekit.llm.config import LLMConfig

__all__ = ["CallSpend", "worst_case_usd"]


def worst_case_usd(
    provider: str, config: LLMConfig, turns: list[Message], *, allow_unpriced: bool = False
) -> float | None:
    """The most the call can cost (see the module docstring); None for a model with no
    known price when ``allow_unpriced``, else :class:`UnpricedModelError`, before sending."""
    found = pricing.quote(provider, config.model, reported_model=config.base_model)
    if found is None and config.base_model:
        found = pricing.quote(provider, config.base_model)
    if found is None:
        if allow_unpriced:
            return None
        from synapsekit.errors import UnpricedModelError

        raise UnpricedModelError(provider=provider, model=config.model)
    estimated = estimate_tokens(
        turns, 0, tools=config.tools, response_schema=config.response_schema
    )
    return worst_case(found.price, estimated, config.max_tokens)


class CallSpend:
    """The reservation of one call and the cost of its attempts so far."""

    __slots__ = ("budget", "config", "cost", "provider", "reservation", "settled", "worst")

    def __init__(
        self, budget: Budget, reservation: Reservation, provider: str, config: LLMConfig,
        worst: float | None,
    ) -> None:
        self.budget = budget
        self.reservation = reservation
        self.provider = provider
        self.config = config
        self.worst = worst  # None: an unpriced model the budget allows
        self.cost = 0.0
        self.settled = False

    @classmethod
    async def reserve(
        cls, budget: Budget, provider: str, config: LLMConfig, turns: list[Message]
    ) -> CallSpend:
        """Reserve the call's worst case (BudgetExceededError when it does not fit)."""
        worst = worst_case_usd(
            provider, config, turns, allow_unpriced=bool(getattr(budget, "allow_unpriced", False))
        )
        held = await budget.reserve(worst or 0.0, what=f"{provider}:{config.model}")
        return cls(budget, held, provider, config, worst)

    def attempt(self, usage: Usage | None, *, answered: bool) -> None:
        """Add one finished attempt: its priced usage, else (answered, nothing reported)
        the worst case, else (never answered) nothing."""
        if usage is not None:
            price = pricing.priced(self.provider, self.config.model, usage)[0]
            if price is None and self.config.base_model:
                price = pricing.cost(self.provider, self.config.base_model, usage)
            self.cost += price or 0.0
        elif answered:
            self.cost += self.worst or 0.0

    async def settle(self) -> None:
        """Replace the reservation by the cost (once)."""
        if self.settled:
            return
        self.settled = True
        await self.budget.settle(self.reservation, self.cost)
