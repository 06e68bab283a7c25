"""The connection: how an LLM reaches its provider, apart from what it says there.

A :class:`Connection` holds the SDK module, the credential, the endpoint, and one SDK
client per event loop (clients are loop-bound; each is closed when its loop shuts down or by
:meth:`Connection.aclose`). The protocol (the LLM class: encode, decode, error table) asks it
for a client; so do the embedding backends of :mod:`synapsekit.rag.embeddings`, which is why
this is its own object rather than private methods of the LLM (pydantic-ai's Provider/Model
split). A provider module subclasses it when building its SDK client needs more than the
defaults: :meth:`build`, :meth:`close_client`, :attr:`base_url`, :meth:`effective_endpoint`,
:meth:`keyless`.

A call with its own key or endpoint (``generate(p, api_key=..., base_url=...)``) gets a
connection of its own from the LLM's :class:`ConnectionPool`, so the credential, the SDK
client and the endpoint always travel together and one user's key is never sent on
another's client.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from synapsekit._loops import PerLoop
from synapsekit.errors import MissingAPIKeyError, MissingDependencyError
from synapsekit.llm.deadlines import client_ready

if TYPE_CHECKING:
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.registry import ProviderSpec

__all__ = ["Connection", "ConnectionPool"]


class Connection:
    """One provider endpoint with one credential; see the module docstring.

    ``spec`` is the provider's registry row (None for a test double or a custom provider:
    no SDK, the config's key as it is). The API key is resolved once, here: the config's,
    else the provider's environment variables, else none for a keyless provider; it is
    kept out of ``repr``.
    """

    #: True when building the SDK client blocks (reads files, resolves credentials, as
    #: boto3 does): it is then built in a worker thread, off the event loop.
    client_blocks: ClassVar[bool] = False

    def __init__(self, provider: str, config: LLMConfig, spec: ProviderSpec | None) -> None:
        self.provider = provider
        self.config = config
        self.spec = spec
        self.sdk: ModuleType | None = _import_sdk(spec) if spec else None
        self.api_key: str | None = self._resolve_api_key() if spec else config.api_key
        #: The endpoint the requests reach, fixed now: it scopes the cache and the limiter.
        self.endpoint: str | None = self.effective_endpoint()
        # closed by a function of the client alone (not a method of self: see PerLoop)
        self._clients: PerLoop[Any] = PerLoop(
            self._open, functools.partial(_close, type(self).close_client, self.api_key)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, endpoint={self.endpoint!r})"

    # ----------------------------------------------------------------- for subclasses

    def build(self) -> Any:
        """Build the SDK client; called once per event loop."""
        return None

    @staticmethod
    async def close_client(client: Any) -> None:
        """Close one client (its pooled sockets); the SDK's ``close()`` by default. A
        static method: it runs after this connection may have been garbage-collected."""
        close = getattr(client, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result

    @property
    def base_url(self) -> str | None:
        """The URL the SDK client is given: the config's ``base_url``, else the provider's
        environment variable (``base_url_env`` in the registry: ``OPENAI_BASE_URL``,
        ``ANTHROPIC_BASE_URL``, ``OLLAMA_HOST``, ...), else the registry's default (None:
        the SDK's own default)."""
        if self.config.base_url:
            return self.config.base_url
        spec = self.spec
        if spec is None:
            return None
        if spec.base_url_env:
            value = os.environ.get(spec.base_url_env, "").strip()
            if value:
                return value
        return spec.base_url

    def effective_endpoint(self) -> str | None:
        """What the requests reach: usually :attr:`base_url`; providers that route by
        region include it (Bedrock)."""
        return self.base_url

    def keyless(self) -> bool:
        """Whether this provider may be used with no key at all: one that needs a key at
        its own endpoint but is pointed elsewhere (an OpenAI-compatible server such as
        vLLM or llama.cpp at a ``base_url``) may not need one."""
        return False

    # ----------------------------------------------------------------- for users of it

    async def client(self) -> Any:
        """This event loop's SDK client: built on first use (once, however many calls ask
        at the same time), closed when the loop shuts down or by :meth:`aclose`. A stream's
        first-token clock starts once it is ready (a first use's build does not count)."""
        client = await self._clients.get()
        client_ready()
        return client

    async def aclose(self) -> None:
        """Close every client this connection made (one per event loop it was used on)."""
        await self._clients.close_all()

    @property
    def open_clients(self) -> int:
        """How many event loops hold a client of this connection now."""
        return len(self._clients)

    async def _open(self) -> Any:
        if self.client_blocks:
            return await asyncio.to_thread(self.build)
        return self.build()

    def _resolve_api_key(self) -> str | None:
        spec = self.spec
        assert spec is not None
        if self.config.api_key:
            return self.config.api_key
        for var in spec.env_vars:
            value = os.environ.get(var)
            if value:
                return value
        if spec.key_required and not self.keyless():
            names = " or ".join(spec.env_vars)
            raise MissingAPIKeyError(
                f"No API key for the {spec.name!r} provider: pass api_key=... "
                f"or set the environment variable {names}."
            )
        return None


async def _close(
    close_client: Callable[[Any], Awaitable[None]], api_key: str | None, client: Any
) -> None:
    """Close one client; its key is then no longer searched for in log records (each
    :meth:`Connection.build` registers it with ``redact_in_logs``), unless another client
    holds it."""
    from synapsekit._logging import forget_in_logs

    try:
        await close_client(client)
    finally:
        forget_in_logs(api_key)


def _import_sdk(spec: ProviderSpec) -> ModuleType:
    try:
        return importlib.import_module(spec.import_name)
    except ImportError as exc:
        raise MissingDependencyError(spec.package, spec.extra, install=spec.install) from exc


class ConnectionPool:
    """The connections of one LLM's per-call credentials (``generate(p, api_key=...,
    base_url=...)``): a bounded LRU keyed by (the key's SHA-256, base_url), so a service
    passing each user's key reuses one SDK client per user and loop instead of building
    one per call (tens of milliseconds and a new TLS handshake each).

    ``make(api_key, base_url)`` builds a connection (only on a miss: a lookup builds no
    config). A connection leased by a call in flight is
    never evicted (closing its client would cut that call's stream): the pool may then
    hold more than ``size`` until those calls end. An evicted connection's clients are
    closed at once; :meth:`aclose` closes them all.
    """

    #: Per-call connections one LLM keeps by default.
    SIZE: ClassVar[int] = 64

    def __init__(
        self, make: Callable[[str | None, str | None], Connection], size: int | None = None
    ) -> None:
        self._make = make
        self.size = self.SIZE if size is None else size
        self._entries: OrderedDict[tuple[str, str | None], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, api_key: str | None, base_url: str | None) -> Connection:
        """The connection for ``api_key`` and ``base_url``, built on first use."""
        return self._entry(api_key, base_url).connection

    async def lease(self, api_key: str | None, base_url: str | None) -> Connection:
        """:meth:`get`, held until :meth:`release`: not evicted while held."""
        entry = self._entry(api_key, base_url)
        entry.users += 1
        await self._trim()
        return entry.connection

    async def release(self, connection: Connection) -> None:
        for entry in self._entries.values():
            if entry.connection is connection:
                entry.users -= 1
                break
        await self._trim()

    async def aclose(self) -> None:
        """Close every pooled connection's clients (the pool stays usable)."""
        for entry in list(self._entries.values()):
            await entry.connection.aclose()

    def _entry(self, api_key: str | None, base_url: str | None) -> _Entry:
        ident = (_digest(api_key), base_url)
        entry = self._entries.get(ident)
        if entry is None:
            entry = self._entries[ident] = _Entry(self._make(api_key, base_url))
        self._entries.move_to_end(ident)
        return entry

    async def _trim(self) -> None:
        while len(self._entries) > self.size:
            idle = next((k for k, e in self._entries.items() if e.users <= 0), None)
            if idle is None:
                return  # all in use: trimmed when they are released
            await self._entries.pop(idle).connection.aclose()


class _Entry:
    __slots__ = ("connection", "users")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.users = 0


def _digest(api_key: str | None) -> str:
    """The pool's name for a key: its whole SHA-256 (a shorter fingerprint could collide
    and hand one user's client to another)."""
    if api_key is None:
        return ""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()
