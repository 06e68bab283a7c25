"""The one table of providers, provider detection, and ``make_llm``.

This is the only place a provider is declared. Detection, ``make_llm``, the
``synapsekit.llm`` exports, the pip extras (checked against pyproject by a test) and the
docs table all come from :data:`PROVIDERS` and :data:`DETECTION_RULES`. The module is
pure data plus two small functions: importing it imports no SDK.

A third-party package adds a provider through the ``synapsekit.providers`` entry point
(a :class:`~synapsekit.llm.plugins.ProviderPlugin`, docs/plugins.md). Entry points are
read once, lazily: on the first lookup of a name the built-in table lacks, the first model
name no built-in rule matches, or a listing (:func:`all_providers`), never at import, so
``import synapsekit`` stays light and a process that names only built-in providers never
scans them. A plugin cannot replace a built-in provider, and one that fails to load is
skipped with a :class:`~synapsekit.llm.plugins.ProviderPluginWarning`: the built-in
providers keep working.
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from synapsekit.errors import ConfigError, MissingAPIKeyError

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.budget import Budget
    from synapsekit.llm.cache import Cache
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.ratelimit import RateLimiter

__all__ = [
    "DETECTION_RULES",
    "PROVIDERS",
    "ProviderSpec",
    "all_providers",
    "capabilities_table",
    "detect_provider",
    "detection_rules",
    "fell_through",
    "make_llm",
    "split_provider_prefix",
    "strip_provider_prefix",
]


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: how to build it and what it needs.

    ``module`` is the synapsekit module holding ``class_name`` (imported only when the
    provider is used); ``package`` is the SDK's distribution, installed by the pip extra
    named like the provider; ``env_vars`` are read in order for the key when none is
    given (empty: the provider needs no key); ``base_url`` is the default endpoint
    (None: the SDK's own); ``base_url_env`` the environment variable that overrides it
    when no ``base_url`` is configured (the one the SDK itself reads, e.g.
    ``OPENAI_BASE_URL``). synapsekit resolves it and hands the result to the SDK, so the
    endpoint that scopes the cache and the rate limit is the one the requests reach.
    ``plugin`` is the distribution that registered the provider (None: built in) and
    ``install_hint`` its install line (built-ins: the synapsekit extra, :attr:`install`).
    ``also`` are the other distributions the extra installs beside the SDK (Bedrock:
    aiohttp, which streams what boto3 signs).
    """

    name: str
    class_name: str
    module: str
    package: str
    import_name: str
    env_vars: tuple[str, ...]
    base_url: str | None = None
    key_required: bool = True
    base_url_env: str | None = None
    plugin: str | None = None
    install_hint: str | None = None
    also: tuple[str, ...] = ()

    @property
    def extra(self) -> str:
        return self.name

    @property
    def install(self) -> str:
        """The pip command that makes this provider usable."""
        return self.install_hint or f'pip install "synapsekit[{self.extra}]"'


def _openai_family(
    name: str, cls: str, env: str, url: str | None, url_env: str | None = None
) -> ProviderSpec:
    return ProviderSpec(
        name, cls, "synapsekit.llm.providers.openai_compat", "openai", "openai", (env,), url,
        base_url_env=url_env,
    )


def _native(
    name: str, cls: str, package: str, import_name: str, *env: str, url: str | None = None,
    url_env: str | None = None, also: tuple[str, ...] = (),
) -> ProviderSpec:
    return ProviderSpec(
        name, cls, f"synapsekit.llm.providers.{name}", package, import_name, env, url,
        key_required=bool(env), base_url_env=url_env, also=also,
    )


_TABLE = (
    _openai_family(
        "openai", "OpenAILLM", "OPENAI_API_KEY", "https://api.openai.com/v1", "OPENAI_BASE_URL"
    ),
    _openai_family("azure", "AzureOpenAILLM", "AZURE_OPENAI_API_KEY", None,
                   "AZURE_OPENAI_ENDPOINT"),
    _openai_family("groq", "GroqLLM", "GROQ_API_KEY", "https://api.groq.com/openai/v1"),
    _openai_family("deepseek", "DeepSeekLLM", "DEEPSEEK_API_KEY", "https://api.deepseek.com"),
    _openai_family(
        "openrouter", "OpenRouterLLM", "OPENROUTER_API_KEY", "https://openrouter.ai/api/v1"
    ),
    _openai_family("together", "TogetherLLM", "TOGETHER_API_KEY", "https://api.together.xyz/v1"),
    _openai_family(
        "fireworks", "FireworksLLM", "FIREWORKS_API_KEY", "https://api.fireworks.ai/inference/v1"
    ),
    _openai_family(
        "perplexity", "PerplexityLLM", "PERPLEXITY_API_KEY", "https://api.perplexity.ai"
    ),
    _openai_family("cerebras", "CerebrasLLM", "CEREBRAS_API_KEY", "https://api.cerebras.ai/v1"),
    _native("anthropic", "AnthropicLLM", "anthropic", "anthropic", "ANTHROPIC_API_KEY",
            url_env="ANTHROPIC_BASE_URL"),
    _native("gemini", "GeminiLLM", "google-genai", "google.genai", "GEMINI_API_KEY",
            "GOOGLE_API_KEY", url_env="GOOGLE_GEMINI_BASE_URL"),
    _native("cohere", "CohereLLM", "cohere", "cohere", "CO_API_KEY", "COHERE_API_KEY",
            url_env="CO_API_URL"),
    _native("mistral", "MistralLLM", "mistralai", "mistralai", "MISTRAL_API_KEY"),
    _native("bedrock", "BedrockLLM", "boto3", "boto3",
            url_env="AWS_ENDPOINT_URL_BEDROCK_RUNTIME", also=("aiohttp",)),
    _native("ollama", "OllamaLLM", "ollama", "ollama", url="http://localhost:11434",
            url_env="OLLAMA_HOST"),
)
_BUILT_IN: dict[str, ProviderSpec] = {spec.name: spec for spec in _TABLE}


class _Providers(Mapping[str, ProviderSpec]):
    """The built-in providers; looking up a name they lack also finds a plugin provider.

    Iterating (``len``, ``values()``, ``sorted(PROVIDERS)``) gives the fifteen built-in
    rows only, whatever is installed, so the docs, the extras and the exports derived
    from it stay fixed; :func:`all_providers` lists the plugins too. Every lookup by name
    (``PROVIDERS[name]``, ``name in PROVIDERS``, ``.get``) falls back on the plugins,
    reading the entry points on the first miss, so code that checks a name (LLMConfig,
    the connections, the embedders) accepts a plugin provider without knowing of plugins.
    """

    def __getitem__(self, name: str) -> ProviderSpec:
        spec = _BUILT_IN.get(name)
        if spec is not None:
            return spec
        return _plugins()[0][name]

    def __iter__(self) -> Iterator[str]:
        return iter(_BUILT_IN)

    def __len__(self) -> int:
        return len(_BUILT_IN)

    def __repr__(self) -> str:
        return f"PROVIDERS({', '.join(_BUILT_IN)})"


PROVIDERS: Mapping[str, ProviderSpec] = _Providers()

_BEDROCK_VENDORS = "anthropic|amazon|meta|mistral|cohere|ai21|deepseek|writer|qwen|openai"

#: Ordered detection rules: (kind, pattern, provider); the first match wins.
#: kind is "prefix" (model starts with pattern), "regex" (re.match) or "contains".
DETECTION_RULES: tuple[tuple[str, str, str], ...] = (
    ("prefix", "claude-", "anthropic"),
    ("prefix", "gemini-", "gemini"),
    ("prefix", "command-", "cohere"),
    ("prefix", "mistral-", "mistral"),
    ("prefix", "open-mistral-", "mistral"),
    ("prefix", "codestral-", "mistral"),
    ("prefix", "ministral-", "mistral"),
    ("prefix", "magistral-", "mistral"),
    ("prefix", "pixtral-", "mistral"),
    ("prefix", "devstral-", "mistral"),
    ("prefix", "voxtral-", "mistral"),
    ("prefix", "open-mixtral-", "mistral"),
    ("prefix", "deepseek-", "deepseek"),
    ("regex", rf"(?:[a-z]{{2,6}}(?:-[a-z]+)?\.)?(?:{_BEDROCK_VENDORS})\.", "bedrock"),
    ("prefix", "sonar", "perplexity"),
    ("prefix", "accounts/fireworks/", "fireworks"),
    ("prefix", "llama", "groq"),
    ("prefix", "mixtral", "groq"),
    ("prefix", "gemma", "groq"),
    ("contains", "/", "openrouter"),
)
DEFAULT_PROVIDER = "openai"
_Rule = tuple[str, str | re.Pattern[str], str]
_COMPILED: tuple[_Rule, ...] = tuple(
    (kind, re.compile(p) if kind == "regex" else p, prov) for kind, p, prov in DETECTION_RULES
)


def split_provider_prefix(model: str) -> tuple[str | None, str]:
    """``"groq:llama-3.3-70b"`` -> ("groq", "llama-3.3-70b"); no known prefix -> (None, model).

    Only the first colon counts: ``"ollama:mistral:7b"`` -> ("ollama", "mistral:7b")."""
    head, sep, rest = model.partition(":")
    if sep and head in PROVIDERS and rest:
        return head, rest
    return None, model


def strip_provider_prefix(model: str, provider: str) -> str:
    """``model`` without a leading ``"<provider>:"`` naming ``provider`` itself, taken off
    once. Any other text before a colon is part of the model name, even when it is
    another provider's name: Ollama's ``"mistral:7b"`` stays ``"mistral:7b"``."""
    head, sep, rest = model.partition(":")
    return rest if sep and rest and head == provider else model


def detect_provider(model: str) -> str:
    """The provider for a model name, by the ordered rules in :data:`DETECTION_RULES`.

    A ``provider:model`` prefix naming a known provider always wins.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model: must be a non-empty string, not {model!r}")
    prefixed, bare = split_provider_prefix(model)
    if prefixed:
        return prefixed
    return _matched_rule(bare) or DEFAULT_PROVIDER


def _matched_rule(model: str) -> str | None:
    """The provider of the first rule ``model`` matches, or None (it falls through).
    The plugins' rules come after every built-in rule: a plugin cannot take a name from
    a built-in provider, only claim names that would have fallen through, and not the
    names of OpenAI's own models (the price table's), which therefore never make a
    process read the entry points."""
    name = model.lower()
    hit = _first_rule(_COMPILED, name)
    if hit is None and name not in _known(DEFAULT_PROVIDER):
        hit = _first_rule(_plugins()[1], name)
    return hit


def _first_rule(rules: tuple[_Rule, ...], name: str) -> str | None:
    for kind, pattern, provider in rules:
        if kind == "prefix":
            hit = name.startswith(pattern)  # type: ignore[arg-type]
        elif kind == "contains":
            hit = pattern in name  # type: ignore[operator]
        else:
            hit = pattern.match(name) is not None  # type: ignore[union-attr]
        if hit:
            return provider
    return None


def fell_through(model: str) -> bool:
    """True when ``model`` has no ``provider:`` prefix and matches no detection rule, so
    :func:`detect_provider` sent it to the default provider (OpenAI)."""
    prefixed, bare = split_provider_prefix(model)
    return prefixed is None and _matched_rule(bare) is None


def _known(provider: str | None = None) -> frozenset[str]:
    """Model names of the packaged price table (``prices.json``), lower-cased: one
    provider's, or all of them. Read on first use, only for an error message."""
    tables = _price_tables()
    if provider is not None:
        return tables.get(provider, frozenset())
    return frozenset().union(*tables.values())


@functools.cache
def _price_tables() -> dict[str, frozenset[str]]:
    import json
    from importlib import resources

    raw = json.loads(resources.files("synapsekit.llm").joinpath("prices.json").read_text("utf-8"))
    tables: dict[str, frozenset[str]] = {}
    for provider, models in raw.get("models", {}).items():
        if isinstance(models, dict):  # {"model": {...}}
            names = list(models)
        else:  # [{"ids": [...], ...}]
            names = [name for entry in models for name in entry.get("ids", ())]
        tables[provider.lower()] = frozenset(str(name).lower() for name in names)
    return tables


def fell_through_hint(model: str) -> str:
    """What a missing-key error adds for a name that fell through to OpenAI: that it did,
    and the closest known model name (from the price and model tables), if any."""
    import difflib

    names = sorted(_known())
    close = difflib.get_close_matches(model.lower(), names, n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close and close[0] != model.lower() else ""
    return (
        f"{model!r} matched no provider rule, so it was sent to {DEFAULT_PROVIDER!r}{hint} "
        "(pass provider=... or a 'provider:model' name to choose another provider; "
        "the rules are in docs/providers.md)."
    )


def provider_class(name: str) -> type[BaseLLM]:
    """Import and return the class of a provider (its SDK is imported only when built)."""
    try:
        spec = PROVIDERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown provider {name!r}; valid providers are: "
            f"{', '.join(sorted(all_providers()))}"
        ) from None
    if spec.plugin is None:
        cls: type[BaseLLM] = getattr(importlib.import_module(spec.module), spec.class_name)
        return cls
    from synapsekit.llm.plugins import plugin_class

    return plugin_class(spec)


def resolve(config: LLMConfig) -> LLMConfig:
    """The config with ``provider`` filled in: ``provider=`` if given, else a known
    ``provider:`` prefix, else :func:`detect_provider`. The model is left as it is: the
    provider's class takes its own prefix off (:func:`strip_provider_prefix`), so at
    most one prefix is ever removed, and none that names another provider."""
    if config.provider is not None:
        return config
    return replace(config, provider=detect_provider(config.model))


def make_llm(
    config: LLMConfig | str,
    *,
    tracer: Any = None,
    cache: Cache | bool | None = None,
    rate_limiter: RateLimiter | None = None,
    budget: Budget | None = None,
    hooks: Any = None,
    **fields: Any,
) -> BaseLLM:
    """Build the LLM for a config, or for a model name plus any LLMConfig fields.

    ``make_llm("claude-sonnet-4-6")`` picks Anthropic from the name; an explicit
    ``provider=`` or a ``"provider:model"`` string always wins. ``cache`` is either
    LLMConfig's switch (``cache=True``: the default cache built from the config's
    ``cache_*`` fields) or a :class:`~synapsekit.llm.cache.Cache` object to use as it is
    (e.g. one ``MemoryCache`` shared by chosen LLMs); ``rate_limiter`` a
    :class:`~synapsekit.llm.ratelimit.RateLimiter` object used instead of the one built
    from ``requests_per_minute`` / ``tokens_per_minute``; ``budget`` a
    :class:`~synapsekit.llm.budget.Budget` every call reserves its worst case on before it
    is sent (a call's own ``budget=`` wins); ``hooks`` a list of call hooks (see
    :mod:`synapsekit.observability.hooks`).
    """
    from synapsekit.llm.config import LLMConfig

    if isinstance(cache, bool):  # LLMConfig's field, not an object
        fields["cache"] = cache
        cache = None
    if isinstance(config, str):
        config = LLMConfig(model=config, **fields)
    elif isinstance(config, LLMConfig):
        if fields:
            config = replace(config, **fields)
    else:
        raise ConfigError(
            f"make_llm() takes an LLMConfig or a model name, not {type(config).__name__}"
        )
    # A name no rule matched that is not a known OpenAI model: maybe a misspelling.
    detected = config.provider is None and fell_through(config.model) and (
        config.model.lower() not in _known(DEFAULT_PROVIDER)
    )
    config = resolve(config)
    assert config.provider is not None
    try:
        return provider_class(config.provider)(
            config, tracer=tracer, cache=cache, rate_limiter=rate_limiter, budget=budget,
            **({} if hooks is None else {"hooks": hooks}),
        )
    except MissingAPIKeyError as exc:
        if not detected:
            raise
        raise MissingAPIKeyError(f"{fell_through_hint(config.model)} {exc}") from None


def providers_markdown() -> str:
    """The providers and detection tables of docs/providers.md, generated from this module.

    A test compares the file with this text, so the docs cannot drift from the table.
    """
    rows = [
        "| provider | class | install | API key from | default endpoint |",
        "|---|---|---|---|---|",
    ]
    for spec in PROVIDERS.values():
        keys = " or ".join(f"`{v}`" for v in spec.env_vars) or (
            "AWS credential chain" if spec.name == "bedrock" else "none"
        )
        if spec.name == "azure":
            keys += " + `AZURE_OPENAI_ENDPOINT`"
        url = spec.base_url or (
            "AWS regional endpoint" if spec.name == "bedrock" else "SDK default"
        )
        if spec.base_url_env:
            url = f"`{spec.base_url_env}`, else {url}" if spec.name != "azure" else (
                f"`{spec.base_url_env}`"
            )
        rows.append(
            f'| `{spec.name}` | `{spec.class_name}` | `pip install "synapsekit[{spec.extra}]"` '
            f"| {keys} | {url} |"
        )
    rules = ["| # | rule | provider |", "|---|---|---|"]
    for i, (kind, pattern, provider) in enumerate(DETECTION_RULES, 1):
        shown = {
            "prefix": f"starts with `{pattern}`",
            "contains": f"contains `{pattern}`",
            "regex": f"matches `{pattern}`".replace("|", "\\|"),
        }[kind]
        rules.append(f"| {i} | {shown} | `{provider}` |")
    rules.append(f"| {len(DETECTION_RULES) + 1} | anything else | `{DEFAULT_PROVIDER}` |")
    return "\n".join(rows) + "\n\n" + "\n".join(rules) + "\n"


def capabilities_table(*, plugins: bool = False) -> str:
    """The capabilities table of docs/providers.md, generated from each provider class's
    ``capabilities`` (importing a provider module imports no SDK). A test compares the
    file with this text, so the docs say what the classes say. ``plugins=True`` adds a
    row per installed plugin provider (its note says which distribution), for a user's
    own view of what is installed; the docs table stays the built-in one."""
    rows = [
        "| provider | images | image URLs | PDF | tools | tool_choice | parallel switch "
        "| structured output | reasoning | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = ("auto", "none", "required", "name")
    for spec in (all_providers() if plugins else PROVIDERS).values():
        caps = provider_class(spec.name).capabilities
        choices = ", ".join(
            f"`{c}`" if c != "name" else "`{name}`" for c in order if c in caps.tool_choices
        )
        cells = [
            f"`{spec.name}`",
            _yes(caps.images), _yes(caps.image_urls), _yes(caps.documents), _yes(caps.tools),
            choices or "—", _yes(caps.parallel_tool_calls),
            f"`{caps.structured}`" if caps.structured else "—",
            ", ".join(sorted(caps.reasoning)) or "—",
            (caps.note if spec.plugin is None else f"plugin {spec.plugin}; {caps.note}")
            .replace("|", "\\|").replace("\n", " ").rstrip("; "),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _yes(flag: bool) -> str:
    return "yes" if flag else "—"


# --------------------------------------------------------------------------- plugins

_plugin_lock = threading.RLock()
_plugin_state: tuple[dict[str, ProviderSpec], tuple[_Rule, ...]] | None = None
_plugin_loading = False


def _plugins() -> tuple[dict[str, ProviderSpec], tuple[_Rule, ...]]:
    """The plugin providers and their detection rules (:mod:`synapsekit.llm.plugins`),
    read from the entry points on the first call (once per process; later calls return
    the same objects). Another thread asking meanwhile waits for the result; a plugin
    whose own import looks a provider up (the same thread, re-entering) sees the built-in
    providers only, not a deadlock."""
    global _plugin_state, _plugin_loading
    state = _plugin_state
    if state is not None:
        return state
    with _plugin_lock:
        if _plugin_state is not None:
            return _plugin_state
        if _plugin_loading:
            return {}, ()
        _plugin_loading = True
        try:
            from synapsekit.llm import plugins

            _plugin_state = plugins.load()
        finally:
            _plugin_loading = False
        return _plugin_state


def all_providers() -> dict[str, ProviderSpec]:
    """Every provider: the built-in ones, then the installed plugins' (``spec.plugin``
    names the distribution)."""
    return {**_BUILT_IN, **_plugins()[0]}


def detection_rules() -> tuple[tuple[str, str, str], ...]:
    """:data:`DETECTION_RULES` followed by the plugins' rules, in the order they are
    tried (a ``provider:model`` prefix or ``provider=`` wins over all of them)."""
    extra = tuple(
        (kind, p if isinstance(p, str) else p.pattern, prov) for kind, p, prov in _plugins()[1]
    )
    return DETECTION_RULES + extra
