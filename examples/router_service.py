"""A service behind one Router: three providers, a daily budget, each user's own keys, and
one provider's outage that loses no request.

    python examples/router_service.py

It runs offline: the test suite's OpenAI, Anthropic and Mistral simulators stand in for
the providers (real SDKs over real HTTP on 127.0.0.1). The service holds no provider key
of its own: every request carries its user's keys (``api_key={provider: key}``), and
each member uses the key for its provider. Halfway through, the OpenAI simulator starts
answering 503: the calls it fails go to the next member before anything reached the
caller, its circuit breaker opens after three failures, and every request is answered.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synapsekit import make_llm
from synapsekit.llm.budget import Budget
from synapsekit.llm.router import Router

#: One user's own keys, one per provider (the simulators accept exactly these).
USER_KEYS = {
    "openai": "sk-user-7-openai",
    "anthropic": "sk-ant-user-7",
    "mistral": "user-7-mistral",
}
REQUESTS = 30
OUTAGE_FROM = 10  # the OpenAI simulator answers 503 from this request on


async def serve(router: Router, prompt: str) -> tuple[str, str]:
    """One request of the service: the answer and which member gave it."""
    response = await router.respond(prompt, api_key=USER_KEYS)
    return response.text, response.metadata["router_member"]


async def main() -> None:
    from synapsekit.testing.simulators.anthropic_protocol import AnthropicSimulator
    from synapsekit.testing.simulators.mistral_protocol import MistralSimulator
    from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, error

    with OpenAISimulator(USER_KEYS["openai"]) as openai_sim, AnthropicSimulator(
        USER_KEYS["anthropic"]
    ) as anthropic_sim, MistralSimulator(USER_KEYS["mistral"]) as mistral_sim:
        no_key = "sk-service-holds-no-key"  # never accepted: only the users' keys are
        members = [
            make_llm("gpt-4o-mini", api_key=no_key, base_url=openai_sim.url, max_tokens=200),
            make_llm("claude-haiku-4-5", api_key=no_key, base_url=anthropic_sim.url,
                     max_tokens=200),
            make_llm("mistral-small-latest", api_key=no_key, base_url=mistral_sim.url,
                     max_tokens=200),
        ]
        budget = Budget(limit_usd=5.00, window="day")  # the service's daily cap
        async with Router(
            members, "round_robin", failure_threshold=3, cooldown=60.0, budget=budget
        ) as router:
            served: Counter[str] = Counter()
            answered = 0
            for i in range(REQUESTS):
                if i == OUTAGE_FROM:
                    openai_sim.default = error(503)  # the outage begins
                text, member = await serve(router, f"request {i}: say hello")
                answered += text == "Hello, world!"
                served[member] += 1
            health = await router.ahealth()
        print(f"requests: {REQUESTS}, answered: {answered}, lost: {REQUESTS - answered}")
        for name, count in sorted(served.items()):
            print(f"  {name:<32} served {count}")
        print("requests each provider received:",
              f"openai {len(openai_sim.requests)},",
              f"anthropic {len(anthropic_sim.requests)},",
              f"mistral {len(mistral_sim.requests)}")
        for name, state in health.items():
            print(f"  {name:<32} breaker {state.state:<9} errors {state.errors}")
        print(f"tokens used: {router.tokens_used}")
        print(f"spent today: ${budget.spent_usd:.6f} of ${budget.limit_usd:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
