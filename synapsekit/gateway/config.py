"""The gateway's TOML configuration, validated at start (``synapsekit serve --config``).

Why a checker of its own: a gateway that starts with a typo in its config fails later, on
a client's request, far from the cause. Every field is checked before anything listens,
and an error names the file, the line and the field, e.g.
``gateway.toml:7: models[1].model: must be a non-empty string``. ``tomllib`` gives no line
numbers for values, so the line is found by scanning the text for the table's header
(``[[models]]`` number 2) and the field's ``name =`` line inside it.

Provider keys never live in the file: a model names the environment variable that holds
its key (``api_key_env``), and a variable that is not set is a startup error naming it.
``[[models]]`` entries with the same ``name`` form one Router group, in file order.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synapsekit.errors import ConfigError
from synapsekit.gateway.types import KeyInfo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the gateway extra installs tomli on 3.10
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

__all__ = [
    "DEFAULT_LEDGER", "GatewayConfig", "KeyEntry", "ModelEntry", "RouterOptions",
    "hash_key", "key_id", "load_config", "parse_config",
]

DEFAULT_LEDGER = "sqlite:///spend.db"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,127}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_STRATEGIES = ("fallback", "round_robin", "weighted", "least_latency", "least_busy", "cheapest")


def hash_key(secret: str) -> str:
    """How a virtual key is stored: ``"sha256:<hex>"`` of its UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def key_id(key_hash: str) -> str:
    """The public id of a key from its hash (``key_`` + 8 hex): what logs and rows carry."""
    return "key_" + key_hash.removeprefix("sha256:")[:8]


@dataclass(frozen=True)
class ModelEntry:
    """One ``[[models]]`` entry: a member of the Router group ``name`` (or an embedding
    model, ``kind = "embedding"``). ``options`` are LLMConfig fields (max_tokens, timeout,
    max_retries, api_version, params); never a key: ``api_key_env`` names its variable."""

    name: str
    model: str
    line: int
    provider: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    kind: str = "chat"
    weight: float = 1.0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RouterOptions:
    """``[router]`` (every group) or ``[router.<name>]`` (one group)."""

    strategy: str = "fallback"
    failure_threshold: int = 5
    cooldown: float = 30.0
    fail_over_invalid: bool = False


@dataclass(frozen=True)
class KeyEntry:
    """One ``[[keys]]`` entry: the key's hash (the secret itself is not kept) and its
    limits as :class:`~synapsekit.gateway.types.KeyInfo`."""

    key_hash: str = field(repr=False)
    info: KeyInfo
    line: int


@dataclass(frozen=True)
class GatewayConfig:
    """A validated gateway config. ``groups``: model name -> its chat members, in order."""

    path: str
    models: tuple[ModelEntry, ...]
    keys: tuple[KeyEntry, ...] = ()
    router: RouterOptions = RouterOptions()
    group_router: Mapping[str, RouterOptions] = field(default_factory=dict)
    ledger: str = DEFAULT_LEDGER
    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    host: str = "127.0.0.1"
    port: int = 4000
    master_key_env: str | None = None
    max_body_bytes: int = 1 << 20
    shutdown_timeout: float = 30.0

    @property
    def groups(self) -> dict[str, tuple[ModelEntry, ...]]:
        """Chat model names -> their members, in file order."""
        out: dict[str, list[ModelEntry]] = {}
        for entry in self.models:
            if entry.kind == "chat":
                out.setdefault(entry.name, []).append(entry)
        return {name: tuple(members) for name, members in out.items()}

    @property
    def embedding_models(self) -> dict[str, ModelEntry]:
        """``kind = "embedding"`` names -> their entry (one each)."""
        return {e.name: e for e in self.models if e.kind == "embedding"}

    def options_for(self, name: str) -> RouterOptions:
        return self.group_router.get(name, self.router)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> (
    GatewayConfig
):
    """Read and validate the TOML file at ``path`` (see the module docstring)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the gateway config: {exc.strerror}") from None
    return parse_config(text, str(file), environ)


def parse_config(
    text: str, path: str = "gateway.toml", environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Validate a config's text; ``environ`` (default ``os.environ``) must hold every
    ``api_key_env`` named."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _Checker(text, path, os.environ if environ is None else environ).run(data)


# --------------------------------------------------------------------------- checking


class _Lines:
    """Where tables and fields are in the text (tomllib keeps no positions)."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[tuple[int, str, bool]] = []  # (line, dotted name, array?)
        for no, line in enumerate(self.lines, start=1):
            match = self._HEADER.match(line)
            if match:
                name = re.sub(r"\s*\.\s*", ".", match.group(2)).replace('"', "")
                self.headers.append((no, name, match.group(1) == "[["))

    def table(self, name: str, index: int | None = None) -> int:
        """The header line of ``[name]`` or of the ``index``-th ``[[name]]`` (0: top)."""
        seen = 0
        for no, header, array in self.headers:
            if header == name and array == (index is not None):
                if index is None or seen == index:
                    return no
                seen += 1
        return 0

    def field(self, table_line: int, name: str) -> int:
        """The line of ``name = ...`` inside the table starting at ``table_line``."""
        end = next((no for no, _, _ in self.headers if no > table_line), len(self.lines) + 1)
        pattern = re.compile(rf'^\s*"?{re.escape(name)}"?\s*=')
        for no in range(table_line + 1, end):
            if pattern.match(self.lines[no - 1]):
                return no
        return table_line


_MODEL_FIELDS = {
    "name", "model", "provider", "base_url", "api_key_env", "kind", "weight",
    "max_tokens", "timeout", "max_retries", "retry_delay", "api_version", "params",
    "temperature",
}
_KEY_FIELDS = {
    "key", "key_hash", "id", "name", "budget_usd", "window", "requests_per_minute",
    "tokens_per_minute", "models", "master",
}
_ROUTER_FIELDS = {"strategy", "failure_threshold", "cooldown", "fail_over_invalid"}
_STORAGE_FIELDS = {"ledger", "redis_url"}
_GATEWAY_FIELDS = {
    "host", "port", "master_key_env", "max_body_bytes", "shutdown_timeout",
}
_TOP = {"models", "keys", "router", "storage", "gateway"}


class _Checker:
    def __init__(self, text: str, path: str, environ: Mapping[str, str]) -> None:
        self.where = _Lines(text)
        self.path = path
        self.environ = environ

    def fail(self, line: int, field_name: str, message: str) -> ConfigError:
        at = f"{self.path}:{line}" if line else self.path
        return ConfigError(f"{at}: {field_name}: {message}")

    def run(self, data: dict[str, Any]) -> GatewayConfig:
        for name in data:
            if name not in _TOP:
                raise self.fail(
                    self.where.table(name) or self.where.field(0, name), name,
                    f"unknown table; expected one of {', '.join(sorted(_TOP))}",
                )
        models = self.models(data.get("models"))
        names = {m.name for m in models}
        router, group_router = self.routers(data.get("router", {}), names)
        storage = self.section(data, "storage", _STORAGE_FIELDS)
        gateway = self.section(data, "gateway", _GATEWAY_FIELDS)
        keys = self.keys(data.get("keys", []), names)
        s_line = self.where.table("storage")
        g_line = self.where.table("gateway")
        ledger = self.string(storage, "ledger", s_line, "storage", DEFAULT_LEDGER)
        if not ledger.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise self.fail(
                self.where.field(s_line, "ledger"), "storage.ledger",
                "must start with sqlite:/// or postgresql://",
            )
        master = self.string(gateway, "master_key_env", g_line, "gateway", None)
        if master is not None:
            self.env_name(master, self.where.field(g_line, "master_key_env"),
                          "gateway.master_key_env")
        return GatewayConfig(
            path=self.path,
            models=models,
            keys=keys,
            router=router,
            group_router=group_router,
            ledger=ledger,
            redis_url=self.string(storage, "redis_url", s_line, "storage", None),
            host=self.string(gateway, "host", g_line, "gateway", "127.0.0.1"),
            port=int(self.number(gateway, "port", g_line, "gateway", 4000, low=0, whole=True)),
            master_key_env=master,
            max_body_bytes=int(self.number(
                gateway, "max_body_bytes", g_line, "gateway", 1 << 20, low=1, whole=True
            )),
            shutdown_timeout=self.number(
                gateway, "shutdown_timeout", g_line, "gateway", 30.0, low=0
            ),
        )

    # ------------------------------------------------------------------ sections

    def section(self, data: dict[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
        table = data.get(name, {})
        line = self.where.table(name)
        if not isinstance(table, dict):
            raise self.fail(self.where.field(0, name), name, "must be a table")
        self.known(table, allowed, line, name)
        return table

    def known(self, table: Mapping[str, Any], allowed: set[str], line: int, at: str) -> None:
        for name in table:
            if name not in allowed:
                raise self.fail(
                    self.where.field(line, name), f"{at}.{name}",
                    f"unknown field; expected one of {', '.join(sorted(allowed))}",
                )

    def models(self, given: Any) -> tuple[ModelEntry, ...]:
        if not isinstance(given, list) or not given:
            raise self.fail(0, "models", "give at least one [[models]] table")
        entries: list[ModelEntry] = []
        kinds: dict[str, str] = {}
        for i, table in enumerate(given):
            line = self.where.table("models", i)
            at = f"models[{i}]"
            if "api_key" in table:
                raise self.fail(
                    self.where.field(line, "api_key"), f"{at}.api_key",
                    "provider keys are not read from the file: put the key in an "
                    "environment variable and name it with api_key_env",
                )
            self.known(table, _MODEL_FIELDS, line, at)
            name = self.string(table, "name", line, at)
            if not _NAME.match(name):
                raise self.fail(
                    self.where.field(line, "name"), f"{at}.name",
                    "must be 1-128 letters, digits or . _ : / - (starting with a letter "
                    f"or digit), not {name!r}",
                )
            kind = self.string(table, "kind", line, at, "chat")
            if kind not in ("chat", "embedding"):
                raise self.fail(self.where.field(line, "kind"), f"{at}.kind",
                                f"must be 'chat' or 'embedding', not {kind!r}")
            if kinds.setdefault(name, kind) != kind:
                raise self.fail(self.where.field(line, "kind"), f"{at}.kind",
                                f"{name!r} is already a {kinds[name]} model")
            if kind == "embedding" and name in {e.name for e in entries}:
                raise self.fail(self.where.field(line, "name"), f"{at}.name",
                                f"embedding model {name!r} is defined twice")
            env = self.string(table, "api_key_env", line, at, None)
            if env is not None:
                env_line = self.where.field(line, "api_key_env")
                self.env_name(env, env_line, f"{at}.api_key_env")
                if not self.environ.get(env):
                    raise self.fail(env_line, f"{at}.api_key_env",
                                    f"the environment variable {env} is not set")
            options: dict[str, Any] = {}
            for opt, low, whole in (("max_tokens", 1, True), ("timeout", 0, False),
                                    ("max_retries", 0, True), ("retry_delay", 0, False),
                                    ("temperature", 0, False)):
                if opt in table:
                    options[opt] = self.number(table, opt, line, at, 0, low=low, whole=whole)
            if "api_version" in table:
                options["api_version"] = self.string(table, "api_version", line, at)
            if "params" in table:
                if not isinstance(table["params"], dict):
                    raise self.fail(self.where.field(line, "params"), f"{at}.params",
                                    "must be a table")
                options["params"] = dict(table["params"])
            entries.append(ModelEntry(
                name=name,
                model=self.string(table, "model", line, at),
                line=line,
                provider=self.string(table, "provider", line, at, None),
                base_url=self.string(table, "base_url", line, at, None),
                api_key_env=env,
                kind=kind,
                weight=self.number(table, "weight", line, at, 1.0, low=0),
                options=options,
            ))
        return tuple(entries)

    def routers(
        self, given: Any, names: set[str]
    ) -> tuple[RouterOptions, dict[str, RouterOptions]]:
        line = self.where.table("router")
        if not isinstance(given, dict):
            raise self.fail(self.where.field(0, "router"), "router", "must be a table")
        flat = {k: v for k, v in given.items() if not isinstance(v, dict)}
        self.known(flat, _ROUTER_FIELDS, line, "router")
        default = self.router_options(flat, line, "router", RouterOptions())
        groups = {}
        for name, table in given.items():
            if not isinstance(table, dict):
                continue
            at = f"router.{name}"
            g_line = self.where.table(at) or self.where.table(f"router.{name}")
            if name not in names:
                raise self.fail(g_line, at, f"no [[models]] entry is named {name!r}")
            self.known(table, _ROUTER_FIELDS, g_line, at)
            groups[name] = self.router_options(table, g_line, at, default)
        return default, groups

    def router_options(
        self, table: Mapping[str, Any], line: int, at: str, base: RouterOptions
    ) -> RouterOptions:
        strategy = self.string(table, "strategy", line, at, base.strategy)
        if strategy not in _STRATEGIES:
            raise self.fail(self.where.field(line, "strategy"), f"{at}.strategy",
                            f"must be one of {', '.join(_STRATEGIES)}, not {strategy!r}")
        fail_over = table.get("fail_over_invalid", base.fail_over_invalid)
        if not isinstance(fail_over, bool):
            raise self.fail(self.where.field(line, "fail_over_invalid"),
                            f"{at}.fail_over_invalid", "must be true or false")
        return RouterOptions(
            strategy=strategy,
            failure_threshold=int(self.number(
                table, "failure_threshold", line, at, base.failure_threshold, low=1, whole=True
            )),
            cooldown=self.number(table, "cooldown", line, at, base.cooldown, low=0),
            fail_over_invalid=fail_over,
        )

    def keys(self, given: Any, names: set[str]) -> tuple[KeyEntry, ...]:
        if not isinstance(given, list):
            raise self.fail(self.where.field(0, "keys"), "keys", "must be [[keys]] tables")
        entries: list[KeyEntry] = []
        for i, table in enumerate(given):
            line = self.where.table("keys", i)
            at = f"keys[{i}]"
            self.known(table, _KEY_FIELDS, line, at)
            if ("key" in table) == ("key_hash" in table):
                raise self.fail(line, at, "give exactly one of key or key_hash")
            if "key" in table:
                secret = self.string(table, "key", line, at)
                if len(secret) < 8:
                    raise self.fail(self.where.field(line, "key"), f"{at}.key",
                                    "must be at least 8 characters")
                digest = hash_key(secret)
            else:
                digest = self.string(table, "key_hash", line, at)
                if not _HASH.match(digest):
                    raise self.fail(self.where.field(line, "key_hash"), f"{at}.key_hash",
                                    "must be 'sha256:' and 64 lowercase hex digits")
            if any(e.key_hash == digest for e in entries):
                raise self.fail(line, at, "the same key is listed twice")
            window = self.string(table, "window", line, at, None)
            if window not in (None, "day", "month"):
                raise self.fail(self.where.field(line, "window"), f"{at}.window",
                                f"must be 'day' or 'month' (or left out), not {window!r}")
            allowed = table.get("models")
            if allowed is not None:
                m_line = self.where.field(line, "models")
                if not isinstance(allowed, list) or not all(isinstance(m, str) for m in allowed):
                    raise self.fail(m_line, f"{at}.models", "must be a list of model names")
                for model in allowed:
                    if model not in names:
                        raise self.fail(m_line, f"{at}.models",
                                        f"no [[models]] entry is named {model!r}")
            for limit in ("requests_per_minute", "tokens_per_minute"):
                if table.get(limit) == 0:  # (a bucket of 0 could never admit anything)
                    raise self.fail(self.where.field(line, limit), f"{at}.{limit}",
                                    "must be a number > 0 (leave it out for no limit)")
            master = table.get("master", False)
            if not isinstance(master, bool):
                raise self.fail(self.where.field(line, "master"), f"{at}.master",
                                "must be true or false")
            info = KeyInfo(
                id=self.string(table, "id", line, at, key_id(digest)),
                name=self.string(table, "name", line, at, None),
                budget_usd=self.optional(table, "budget_usd", line, at),
                window=window,
                requests_per_minute=self.optional(table, "requests_per_minute", line, at),
                tokens_per_minute=self.optional(table, "tokens_per_minute", line, at),
                models=None if allowed is None else tuple(allowed),
                master=master,
            )
            entries.append(KeyEntry(key_hash=digest, info=info, line=line))
        return tuple(entries)

    # ------------------------------------------------------------------ values

    def string(
        self, table: Mapping[str, Any], name: str, line: int, at: str, default: Any = ...,
    ) -> Any:
        if name not in table:
            if default is ...:
                raise self.fail(line, f"{at}.{name}", "is required")
            return default
        value = table[name]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(self.where.field(line, name), f"{at}.{name}",
                            f"must be a non-empty string, not {value!r}")
        return value

    def number(
        self, table: Mapping[str, Any], name: str, line: int, at: str, default: float,
        *, low: float, whole: bool = False,
    ) -> float:
        if name not in table:
            return default
        value = table[name]
        ok = isinstance(value, int) if whole else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or value < low:
            kind = "an integer" if whole else "a number"
            raise self.fail(self.where.field(line, name), f"{at}.{name}",
                            f"must be {kind} >= {low:g}, not {value!r}")
        return value if whole else float(value)

    def optional(self, table: Mapping[str, Any], name: str, line: int, at: str) -> float | None:
        return self.number(table, name, line, at, 0, low=0) if name in table else None

    def env_name(self, name: str, line: int, at: str) -> None:
        if not _ENV.match(name):
            raise self.fail(line, at, f"must be an environment variable name, not {name!r}")
