"""Cross-check synapsekit/llm/prices.json against two independent price databases.

Dev only (never imported by the runtime): genai-prices (pydantic's dated database) and
LiteLLM's bundled map (read with LITELLM_LOCAL_MODEL_COST_MAP=True: nothing is fetched).

1. Every name of every row: input and output per 1M tokens compared with each database
   that knows the name. A row FAILS when it differs by more than 1% from every database
   that knows it (a database named in the row's note as "stale: <db>" is left out).
2. Every model name either database knows for our 15 providers goes through our lookup:
   a price we give that differs by more than 1% from that database and from the other one
   (when it knows the name) is a confident wrong answer: FAIL.
3. Names they know that we do not price are listed (not a failure: we may not track them).

Exit status 1 on any failure. Usage: .venv/bin/python ci/check_prices.py [--missing]
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm
from genai_prices import Usage as GUsage
from genai_prices import calc_price
from genai_prices import data as gdata

from synapsekit.llm import pricing

TOLERANCE = 0.01
#: our provider -> genai-prices provider id
GENAI = {"openai": "openai", "azure": "azure", "anthropic": "anthropic", "gemini": "google",
         "cohere": "cohere", "mistral": "mistral", "bedrock": "aws", "groq": "groq",
         "deepseek": "deepseek", "openrouter": "openrouter", "together": "together",
         "fireworks": "fireworks", "perplexity": "perplexity", "cerebras": "cerebras"}
#: our provider -> LiteLLM key prefixes tried in order, and its litellm_provider values
LITELLM = {
    "openai": ([""], {"openai"}), "azure": (["azure/"], {"azure"}),
    "anthropic": ([""], {"anthropic"}), "gemini": (["gemini/"], {"gemini"}),
    "cohere": (["", "cohere/"], {"cohere", "cohere_chat"}), "mistral": (["mistral/"], {"mistral"}),
    "bedrock": (["", "bedrock/"], {"bedrock", "bedrock_converse"}), "groq": (["groq/"], {"groq"}),
    "deepseek": (["deepseek/"], {"deepseek"}), "openrouter": (["openrouter/"], {"openrouter"}),
    "together": (["together_ai/"], {"together_ai"}),
    "fireworks": (["fireworks_ai/accounts/fireworks/models/", "fireworks_ai/"], {"fireworks_ai"}),
    "perplexity": (["perplexity/"], {"perplexity"}), "cerebras": (["cerebras/"], {"cerebras"}),
}
Rates = tuple[float, float]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(abs(a), abs(b), 1e-12)


def _agrees(ours: Rates, theirs: Rates) -> bool:
    return _close(ours[0], theirs[0]) and _close(ours[1], theirs[1])


def genai_rates(provider: str, name: str) -> Rates | None:
    pid = GENAI.get(provider)
    if pid is None:
        return None
    try:
        inp = calc_price(GUsage(input_tokens=1000), model_ref=name, provider_id=pid)
        out = calc_price(GUsage(output_tokens=1000), model_ref=name, provider_id=pid)
    except Exception:  # an unknown model is an exception there
        return None
    return float(inp.input_price) * 1000, float(out.output_price) * 1000


def litellm_rates(provider: str, name: str) -> Rates | None:
    prefixes, owners = LITELLM[provider]
    for prefix in prefixes:
        entry = litellm.model_cost.get(prefix + name)
        if (isinstance(entry, dict) and entry.get("litellm_provider") in owners
                and "input_cost_per_token" in entry and "output_cost_per_token" in entry):
            return entry["input_cost_per_token"] * 1e6, entry["output_cost_per_token"] * 1e6
    return None


def our_rates(provider: str, name: str) -> Rates | None:
    found = pricing.quote(provider, name)
    if found is None:
        return None
    price = found.price.at(1000)
    return price.input, price.output


def litellm_names(provider: str) -> Iterator[str]:
    prefixes, owners = LITELLM[provider]
    for key, entry in litellm.model_cost.items():
        if not isinstance(entry, dict) or entry.get("litellm_provider") not in owners:
            continue
        if entry.get("mode") not in (None, "chat", "completion", "responses", "embedding"):
            continue
        for prefix in sorted(prefixes, key=len, reverse=True):
            if prefix and key.startswith(prefix):
                yield key[len(prefix):]
                break
        else:
            if "" in prefixes:
                yield key


def genai_names(provider: str) -> Iterator[tuple[str, bool]]:
    pid = GENAI.get(provider)
    for entry in gdata.providers:
        if entry.id == pid:
            for model in entry.models:
                yield model.id, bool(getattr(model, "deprecated", False))


def _note(row_name: str) -> str:
    provider, _, first = row_name.partition(":")
    for row in pricing._rows():
        if row.provider == provider and row.ids[0] == first:
            return row.note
    return ""


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore", pricing.UnknownModelPriceWarning)
    failures: list[str] = []
    checked = agree = 0
    for row in pricing._rows():
        if row.provider == "ollama":
            continue
        note = row.note  # "stale: litellm" in a row note leaves that database out
        base = (row.price.at(1000).input, row.price.at(1000).output)
        # A Bedrock row with regional_premium prices its bare (in-region) id 10% higher, and
        # the databases file that id at one price or the other: either one agrees.
        embedding = row.price.output == 0.0  # no output tokens: compare the input only
        for name in row.ids:
            refs = {"genai-prices": genai_rates(row.provider, name),
                    "litellm": litellm_rates(row.provider, name)}
            known = {db: r for db, r in refs.items()
                     if r is not None and f"stale: {db}" not in note}
            if not known:
                continue
            checked += 1
            rates = {base, our_rates(row.provider, name) or base}
            if any(_agrees(ours, r) or (embedding and _close(ours[0], r[0]))
                   for r in known.values() for ours in rates):
                agree += 1
            else:
                failures.append(f"row {row.provider}:{name} {base} differs from " + ", ".join(
                    f"{db} {tuple(round(x, 6) for x in r)}" for db, r in known.items()))
    swept = wrong = 0
    missing: list[str] = []
    for provider in GENAI:
        names = {n: False for n in litellm_names(provider)}
        names.update(dict(genai_names(provider)))
        for name, deprecated in sorted(names.items()):
            swept += 1
            ours = our_rates(provider, name)
            refs = [r for r in (genai_rates(provider, name), litellm_rates(provider, name)) if r]
            if ours is None:
                if refs and not deprecated:
                    missing.append(f"{provider}:{name}")
                continue
            found = pricing.quote(provider, name)
            stale = found is not None and any(
                f"stale: {db}" in _note(found.row) for db in ("genai-prices", "litellm"))
            embedding = ours[1] == 0.0
            if refs and not stale and not any(
                    _agrees(ours, r) or (embedding and _close(ours[0], r[0])) for r in refs):
                wrong += 1
                failures.append(f"lookup {provider}:{name} -> {ours} but " + ", ".join(
                    str(tuple(round(x, 6) for x in r)) for r in refs))
    print(f"rows: {checked} names compared, {agree} agree with at least one database")
    print(f"sweep: {swept} database names through our lookup, {wrong} confident wrong answers")
    print(f"not priced by us: {len(missing)} names the databases know")
    if "--missing" in argv:
        for name in missing:
            print("  missing", name)
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
