"""LLMConfig: everything that configures one LLM, validated when it is built.

A config is a frozen value: per-call overrides (``llm.generate(p, temperature=0)``) make a
new one with :func:`dataclasses.replace`, which validates again, so no call ever runs
with a value that was never checked. The API key is kept out of ``repr``.
"""

from __future__ import annotations

import enum
import functools
import inspect
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final

from synapsekit.errors import ConfigError

if TYPE_CHECKING:
    from synapsekit.llm.tools import Tool, ToolChoice
    from synapsekit.llm.types import OutputSchema

__all__ = [
    "ANSWER_COUNT_PARAMS",
    "CACHE_BACKENDS",
    "DEFAULT_REDIS_URL",
    "RATE_LIMIT_BACKENDS",
    "REASONING_EFFORTS",
    "SAME_AS_TIMEOUT",
    "LLMConfig",
    "redact_url",
    "redis_url",
    "url_password",
]

CACHE_BACKENDS = ("memory", "sqlite", "redis")
#: ``reasoning_effort`` values ("none": reasoning off where the model allows it).
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
RATE_LIMIT_BACKENDS = ("memory", "redis")
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
#: ``params`` keys that ask a provider for several answers (choices / candidates /
#: generations) in one call: any value but 1 is refused, since one call streams one answer.
ANSWER_COUNT_PARAMS = frozenset(
    {"n", "candidate_count", "candidateCount", "num_generations"}
)


class _Inherit(enum.Enum):
    """The type of :data:`SAME_AS_TIMEOUT` (a sentinel, so ``None`` can mean "no limit")."""

    TIMEOUT = "timeout"

    def __repr__(self) -> str:
        return "SAME_AS_TIMEOUT"


#: The default of ``connect_timeout``, ``first_token_timeout`` and ``idle_timeout``: the
#: value of ``timeout``, read when the call runs (so a per-call ``timeout=`` moves all three).
SAME_AS_TIMEOUT: Final = _Inherit.TIMEOUT
_DEADLINES = ("connect_timeout", "first_token_timeout", "idle_timeout", "total_timeout")


# repr=False: the class writes its own __repr__ (the key kept out), which the generated
# one would not replace anyway; not generating it saves compiling it at import.
@dataclass(frozen=True, repr=False)
class LLMConfig:
    """Configuration of one LLM.

    The first twelve fields are SynapseKit's, in its positional order (``model, api_key,
    provider, system_prompt, temperature, max_tokens, cache, cache_maxsize,
    cache_backend, max_retries, retry_delay, requests_per_minute``); pass the others by
    keyword. An unknown field is a :class:`~synapsekit.errors.ConfigError` naming the
    closest field (``temprature`` -> ``temperature``). ``api_key=""`` is the same as
    ``None``: no key given. ``top_p`` is sent to every provider that takes it (not to
    models that refuse sampling parameters, see below); ``timeout=None`` means no client
    timeout; ``cache_db_path`` is an alias of ``cache_path``. ``base_url`` must be an
    http(s) URL and ``headers`` values strings, checked here, before any request.

    ``provider`` is detected from ``model`` when not given (see
    :func:`synapsekit.detect_provider`); ``api_key=None`` reads the provider's usual
    environment variable; ``base_url`` overrides the provider's endpoint. ``stop`` and
    ``params`` (extra generation parameters sent as-is, e.g. ``{"top_p": 0.9,
    "seed": 7}``) shape the answer like temperature does. ``headers`` adds HTTP headers
    (e.g. OpenRouter's ``HTTP-Referer``); ``api_version`` is the API version of providers
    that version their endpoint (Azure OpenAI's ``api-version``, Gemini's ``v1beta``).

    ``temperature=None`` sends no temperature (the model's own default), on every
    provider. What a request may carry follows the model's row in the model table
    (docs/models.md): OpenAI's reasoning models get no temperature / ``top_p`` and
    ``max_completion_tokens``. ``base_model`` names the model behind ``model`` when
    ``model`` is an alias whose name says nothing, e.g. an Azure deployment
    (``model="prod-chat", base_model="o3-mini"``): the table is looked up by it.
    ``params`` asking for several answers (``n``, ``candidate_count`` > 1) are refused:
    one call streams one answer.

    Runtime features (docs/caching.md, docs/rate-limits.md): ``cache`` with
    ``cache_backend`` "memory" (LRU of ``cache_maxsize``), "sqlite" (file ``cache_path``)
    or "redis"; ``cache_ttl`` seconds, None = never expire; answers are kept apart per API
    key (a fingerprint) unless ``cache_namespace`` names a scope that callers with other
    keys share, and per effective endpoint. ``requests_per_minute`` and
    ``tokens_per_minute`` limit calls per provider and key, in this process
    (``rate_limit_backend="memory"``) or across processes ("redis"). ``redis_url`` is
    used by both Redis backends (default: the ``REDIS_URL`` environment variable, else
    ``redis://localhost:6379/0``); any password in it is hidden from ``repr``.

    Deadlines (docs/timeouts.md), in seconds, None = no limit: ``connect_timeout`` (the
    TCP/TLS connect, given to the SDK), ``first_token_timeout`` (request sent to the first
    text, reasoning or tool-call chunk), ``idle_timeout`` (the longest silence between two
    chunks after that) and ``total_timeout`` (the whole call, retries and their back-off
    included; default None). The first three default to ``timeout``. synapsekit enforces
    them itself on every provider (:mod:`synapsekit.llm.deadlines`), whatever the SDK does.
    """

    # The SynapseKit page's fields, in its positional order ...
    model: str
    api_key: str | None = field(default=None, repr=False)
    provider: str | None = None
    system_prompt: str | None = "You are a helpful assistant."
    temperature: float | None = 0.2
    max_tokens: int = 1024
    cache: bool = False
    cache_maxsize: int = 128
    cache_backend: str = "memory"
    max_retries: int = 0
    retry_delay: float = 1.0
    requests_per_minute: float | None = None
    # ... then synapsekit's own (pass these by keyword).
    base_url: str | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    cache_ttl: float | None = None
    cache_path: str | None = None
    cache_namespace: str | None = None
    tokens_per_minute: float | None = None
    rate_limit_backend: str = "memory"
    redis_url: str | None = None
    timeout: float | None = 60.0
    connect_timeout: float | _Inherit | None = SAME_AS_TIMEOUT
    first_token_timeout: float | _Inherit | None = SAME_AS_TIMEOUT
    idle_timeout: float | _Inherit | None = SAME_AS_TIMEOUT
    total_timeout: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    api_version: str | None = None
    base_model: str | None = None
    # Tools, structured output, reasoning and prompt caching (docs/tools.md,
    # docs/structured-output.md, docs/reasoning.md); usually given per call.
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_schema: OutputSchema | None = None
    reasoning_effort: str | None = None
    reasoning_budget: int | None = None
    cache_prompt: bool = False
    #: Alias of ``cache_path`` (SynapseKit's name); read ``cache_path``.
    cache_db_path: InitVar[str | None] = None

    def __post_init__(self, cache_db_path: str | None) -> None:
        _check_str("model", self.model, empty_ok=False)
        if self.api_key == "":  # "no key given": the environment, or none (keyless servers)
            object.__setattr__(self, "api_key", None)
        if cache_db_path is not None:
            _check_str("cache_db_path", cache_db_path, empty_ok=False)
            if self.cache_path is not None and self.cache_path != cache_db_path:
                raise ConfigError(
                    "cache_db_path: an alias of cache_path, and both are given with different "
                    f"values ({cache_db_path!r}, {self.cache_path!r}); give one of them"
                )
            object.__setattr__(self, "cache_path", cache_db_path)
        for name in (
            "api_key", "provider", "base_url", "system_prompt", "cache_path", "cache_namespace",
            "redis_url",
            "base_model",
        ):
            value = getattr(self, name)
            if value is not None:
                _check_str(name, value, empty_ok=name == "system_prompt")
        if self.base_url is not None:
            _check_base_url(self.base_url)
        if self.provider is not None:
            from synapsekit.llm.registry import PROVIDERS  # pure data, cheap

            if self.provider not in PROVIDERS:
                raise ConfigError(
                    f"provider: unknown provider {self.provider!r}; valid providers are: "
                    + ", ".join(sorted(PROVIDERS))
                )
        if self.temperature is not None:
            _check_number("temperature", self.temperature, low=0.0, high=2.0)
        _check_int("max_tokens", self.max_tokens, low=1)
        _check_int("cache_maxsize", self.cache_maxsize, low=1)
        _check_int("max_retries", self.max_retries, low=0)
        _check_number("retry_delay", self.retry_delay, low=0.0)
        if self.timeout is not None:  # None: no client timeout at all
            _check_number("timeout", self.timeout, low=0.0, open_low=True)
        for name in _DEADLINES:
            value = getattr(self, name)
            if value is not None and value is not SAME_AS_TIMEOUT:
                _check_number(name, value, low=0.0, open_low=True)
        if self.top_p is not None:
            _check_number("top_p", self.top_p, low=0.0, high=1.0)
        if self.cache_ttl is not None:
            _check_number("cache_ttl", self.cache_ttl, low=0.0, open_low=True)
        for name in ("requests_per_minute", "tokens_per_minute"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), low=0, open_low=True)
        if self.rate_limit_backend not in RATE_LIMIT_BACKENDS:
            raise ConfigError(
                f"rate_limit_backend: {self.rate_limit_backend!r} is not a rate-limit backend; "
                f"choose one of: {', '.join(RATE_LIMIT_BACKENDS)}"
            )
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ConfigError(
                f"redis_url: must start with redis://, rediss:// or unix://, "
                f"got {redact_url(self.redis_url)!r}"
            )
        if not isinstance(self.cache, bool):
            raise ConfigError(f"cache: must be True or False, not {self.cache!r}")
        if self.cache_backend not in CACHE_BACKENDS:
            raise ConfigError(
                f"cache_backend: {self.cache_backend!r} is not a cache backend; "
                f"choose one of: {', '.join(CACHE_BACKENDS)}"
            )
        if self.stop is not None:
            if isinstance(self.stop, str):
                object.__setattr__(self, "stop", (self.stop,))
            elif isinstance(self.stop, Sequence) and all(isinstance(s, str) for s in self.stop):
                object.__setattr__(self, "stop", tuple(self.stop))
            else:
                raise ConfigError(
                    f"stop: must be a string or a list of strings, not {self.stop!r}"
                )
        for name in ("params", "headers"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name}: must be a dict, not {type(value).__name__}")
        _check_headers(self.headers)
        reserved = {"model", "messages", "stream", "temperature", "max_tokens", "stop"}
        if self.top_p is not None:
            reserved.add("top_p")
        clash = reserved.intersection(self.params)
        if clash:
            raise ConfigError(
                f"params: {', '.join(sorted(clash))} must be set as LLMConfig fields, not in params"
            )
        for name in ANSWER_COUNT_PARAMS.intersection(self.params):
            count = self.params[name]
            if count is not None and count != 1:
                raise ConfigError(
                    f"params: {name}={count!r} asks for several answers in one call; "
                    "synapsekit streams one answer per call. Make several calls instead "
                    "(e.g. asyncio.gather over generate())."
                )

        self._check_tools_and_reasoning()

    def _check_tools_and_reasoning(self) -> None:
        if self.tools or self.tool_choice is not None:
            from synapsekit.llm.tools import check_tool_choice, check_tools

            tools = check_tools(self.tools)
            object.__setattr__(self, "tools", tools)
            object.__setattr__(self, "tool_choice", check_tool_choice(self.tool_choice, tools))
        if self.parallel_tool_calls is not None and not isinstance(
            self.parallel_tool_calls, bool
        ):
            raise ConfigError(
                "parallel_tool_calls: must be True, False or None, not "
                f"{self.parallel_tool_calls!r}"
            )
        if self.response_schema is not None:
            from synapsekit.llm.types import OutputSchema

            if not isinstance(self.response_schema, OutputSchema):
                raise ConfigError(
                    "response_schema: must be an OutputSchema (generate_object builds one "
                    f"from a pydantic model or a JSON Schema), not {self.response_schema!r}"
                )
        if self.reasoning_effort is not None and self.reasoning_effort not in REASONING_EFFORTS:
            raise ConfigError(
                f"reasoning_effort: {self.reasoning_effort!r}; choose one of: "
                + ", ".join(REASONING_EFFORTS)
            )
        if self.reasoning_budget is not None:
            _check_int("reasoning_budget", self.reasoning_budget, low=0)
        if not isinstance(self.cache_prompt, bool):
            raise ConfigError(f"cache_prompt: must be True or False, not {self.cache_prompt!r}")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={_shown(f.name, getattr(self, f.name))}"
            for f in fields(self)
            if f.name != "api_key" or self.api_key is not None
        )
        return f"LLMConfig({shown})"


_INIT_NAMES: tuple[str, ...] = ()  # LLMConfig's keyword names, set below the class


def _checked_init(generated: Callable[..., None]) -> Callable[..., None]:
    """Wrap the dataclass ``__init__``: an unknown keyword (or too many positional
    arguments, or no model) is a :class:`ConfigError` with a did-you-mean, not the raw
    ``TypeError`` the generated ``__init__`` raises. ``dataclasses.replace`` builds through
    it too, so ``replace(cfg, temprature=0)`` is refused the same way."""

    @functools.wraps(generated)
    def __init__(self: LLMConfig, *args: Any, **kwargs: Any) -> None:
        names = _INIT_NAMES
        if len(args) > len(names):
            raise ConfigError(
                f"LLMConfig takes at most {len(names)} positional arguments "
                f"({', '.join(names[:12])}, ...), got {len(args)}; pass the rest by keyword"
            )
        for name in kwargs:
            if name not in names:
                import difflib  # only a mistyped field's suggestion needs it

                close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else "."
                raise ConfigError(
                    f"LLMConfig got an unknown field {name!r}{hint} "
                    "The fields are listed in docs/index.md (LLMConfig)."
                )
        given = set(names[: len(args)])
        clash = given.intersection(kwargs)
        if clash:
            raise ConfigError(
                f"LLMConfig got {', '.join(sorted(clash))} both by position and by keyword"
            )
        if not args and "model" not in kwargs:
            raise ConfigError("model: required, e.g. LLMConfig(model='gpt-4o-mini')")
        generated(self, *args, **kwargs)

    return __init__


setattr(LLMConfig, "__init__", _checked_init(LLMConfig.__init__))  # noqa: B010 - mypy
_INIT_NAMES = tuple(
    name for name in inspect.signature(LLMConfig).parameters if name != "self"
)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``redis://:secret@host`` and
    ``redis://user:secret@host``), for reprs, logs and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    userinfo, _, host = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not colon:  # no password in the URL
        return url
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def redis_url(configured: str | None) -> str:
    """The Redis server of the Redis backends: ``configured``, else ``$REDIS_URL``, else
    the local default."""
    return configured or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def url_password(url: str) -> str | None:
    """The password in ``url``, if any: what :func:`synapsekit.errors.redact` must scrub
    from a server's error text."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _shown(name: str, value: Any) -> str:
    if name == "api_key":
        return "***"
    if name == "redis_url" and value is not None:
        return repr(redact_url(value))
    return repr(value)


def _check_str(name: str, value: Any, *, empty_ok: bool) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: must be a string, not {type(value).__name__}")
    if not empty_ok and not value.strip():
        raise ConfigError(f"{name}: must not be empty")


def _check_base_url(url: str) -> None:
    """An endpoint must be an http(s) URL with a host: ``api.example.com/v1`` (no scheme)
    or ``ftp://...`` would otherwise fail later, at the first request, in the SDK."""
    from urllib.parse import urlsplit

    shown = redact_url(url)
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ConfigError(
            f"base_url: {shown!r} has no scheme; write it as 'https://{url.strip()}' "
            "(or 'http://' for a local server)"
        )
    if scheme.lower() not in ("http", "https"):
        raise ConfigError(
            f"base_url: {shown!r} uses the scheme {scheme!r}; an endpoint is an http:// "
            "or https:// URL"
        )
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:
        raise ConfigError(f"base_url: {shown!r} is not a valid URL ({exc})") from None
    if not host:
        raise ConfigError(f"base_url: {shown!r} names no host, e.g. 'https://api.example.com/v1'")


def _check_headers(headers: Mapping[Any, Any]) -> None:
    for name, value in headers.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"headers: a header name must be a non-empty string, not {name!r}")
        if not isinstance(value, str):
            raise ConfigError(
                f"headers: the value of {name!r} must be a string, not "
                f"{type(value).__name__} ({value!r}); write it as {str(value)!r}"
            )
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ConfigError(f"headers: {name!r} contains a line break")


def _check_number(
    name: str, value: Any, *, low: float, high: float | None = None, open_low: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name}: must be a number, not {value!r}")
    too_low = value <= low if open_low else value < low
    if too_low or (high is not None and value > high):
        bound = f"> {low}" if open_low else f">= {low}"
        rule = f"between {low} and {high}" if high is not None else bound
        raise ConfigError(f"{name}: must be {rule}, got {value!r}")


def _check_int(name: str, value: Any, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: must be a whole number, not {value!r}")
    if value < low:
        raise ConfigError(f"{name}: must be >= {low}, got {value!r}")
