"""The Bedrock connection: a boto3 ``bedrock-runtime`` client per loop, the region, the
credentials (shared with the Titan / Cohere-on-Bedrock embedders), and an aiohttp session
per loop that sends what boto3 signed (see :mod:`.transport`).

- The SDK never retries (``total_max_attempts=1``); ``connect_timeout`` is its connect
  limit, the larger of ``first_token_timeout`` / ``idle_timeout`` its socket read backstop.
- Region: ``AWS_REGION``, else the AWS chain (``AWS_DEFAULT_REGION``, the profile's
  ``region``), else ``us-east-1``. Credentials: the AWS chain (env keys, profiles, SSO,
  instance roles). ``api_key`` is a Bedrock API key, sent as ``Authorization: Bearer``
  (botocore >= 1.39 -- the same as setting ``AWS_BEARER_TOKEN_BEDROCK``); it needs HTTPS.
- The aiohttp session verifies TLS against what botocore would: ``AWS_CA_BUNDLE`` or the
  profile's ``ca_bundle``, else botocore's default bundle; the endpoint's proxy is the
  environment's (``HTTPS_PROXY``, ``NO_PROXY``), as botocore reads it, found once per
  client (not aiohttp's ``trust_env``: that reads ``~/.netrc`` on a worker thread for every
  request and would add its credentials to a signed request); its pool holds
  ``MAX_CONNECTIONS``; ``connect_timeout`` and the read backstop are its socket limits.
"""

from __future__ import annotations

import asyncio
import functools
import os
import weakref
from contextlib import suppress
from typing import Any, ClassVar

from synapsekit._loops import PerLoop
from synapsekit.errors import ConfigError, MissingAPIKeyError, MissingDependencyError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.connection import Connection
from synapsekit.llm.providers._pool import MAX_CONNECTIONS

__all__ = ["DEFAULT_REGION", "BedrockConnection"]

#: The region used when neither the environment nor the AWS config names one.
DEFAULT_REGION = "us-east-1"


class BedrockConnection(Connection):
    """A boto3 ``bedrock-runtime`` client per loop (built off the loop); the region; SigV4
    credentials from AWS's chain, or a Bedrock API key as a bearer token."""

    #: boto3 builds a client in 50-100 ms and reads the AWS config files: off the loop.
    client_blocks: ClassVar[bool] = True

    def __init__(self, provider: str, config: LLMConfig, spec: Any) -> None:
        super().__init__(provider, config, spec)
        if not self.api_key and not os.environ.get("AWS_BEARER_TOKEN_BEDROCK", "").strip():
            _check_credentials(self.sdk)
        _import_aiohttp()  # now, as the SDK is imported: not on the loop, not in a call
        _warm(_loader(os.environ.get("AWS_DATA_PATH") or None))  # likewise the model data
        self._sessions: PerLoop[Any] = PerLoop(self._open_session, _close_session)
        #: Each loop's boto3 client -> the credentials it signs with (None: a bearer key).
        self._signing: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        #: The TLS context of the aiohttp sessions (an HTTPS endpoint's), made with a client.
        self._ssl: Any = None
        #: The proxy URL for the endpoint (None: direct), found with a client.
        self.proxy: str | None = None

    async def session(self) -> Any:
        """This loop's aiohttp ``ClientSession`` (after its boto3 client: that build reads
        the TLS settings)."""
        await self.client()
        return await self._sessions.get()

    def credentials(self, client: Any) -> Any:
        """What ``client`` signs with (refreshable credentials, or None for a bearer key)."""
        return self._signing.get(client)

    async def aclose(self) -> None:
        await self._sessions.close_all()
        await super().aclose()

    async def _open_session(self) -> Any:
        import aiohttp

        from synapsekit.llm.deadlines import timeouts

        limits = timeouts(self.config)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS, ssl=True if self._ssl is None else self._ssl
            ),
            # a backstop, like botocore's: synapsekit enforces the stream deadlines
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=limits.connect, sock_read=limits.read
            ),
        )
        _LIVE.setdefault(asyncio.get_running_loop(), set()).add(session)
        return session

    @functools.cached_property
    def region(self) -> str:
        """``AWS_REGION``, else the AWS config chain, else :data:`DEFAULT_REGION`; read once
        (a boto3 Session reads the config files), so the endpoint and the client agree."""
        return _region(_session(self.sdk))

    def effective_endpoint(self) -> str:
        """The region's endpoint, or a custom one (``base_url``, botocore's
        ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` / ``AWS_ENDPOINT_URL``) plus ``#<region>``:
        two regions never share a cached answer or a rate-limit bucket."""
        custom = self.base_url or os.environ.get("AWS_ENDPOINT_URL", "").strip()
        if custom:
            return f"{custom}#{self.region}"
        return f"https://bedrock-runtime.{self.region}.amazonaws.com"

    def build(self) -> Any:
        from botocore.config import Config

        from synapsekit._logging import redact_in_logs
        from synapsekit.llm.deadlines import timeouts
        from synapsekit.llm.providers.bedrock.transport import install

        redact_in_logs(self.api_key)  # botocore's DEBUG log prints the request headers
        core = _bearer_session(self.api_key) if self.api_key else _core_session()
        core.register_component("data_loader", _loader(core.get_config_variable("data_path")))
        session = self.sdk.session.Session(botocore_session=core)  # type: ignore[union-attr]
        options = {"signature_version": "bearer"} if self.api_key else {}
        limits = timeouts(self.config)
        client = session.client(
            "bedrock-runtime",
            region_name=self.region,
            endpoint_url=self.config.base_url,
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},  # one policy: ours
                read_timeout=limits.read,  # a backstop: synapsekit enforces the deadlines
                connect_timeout=limits.connect,
                max_pool_connections=MAX_CONNECTIONS,  # botocore's default is 10
                user_agent_extra="synapsekit",
                **options,
            ),
        )
        install(client)  # boto3 signs, aiohttp sends (see .transport)
        self.proxy = _proxy_for(client.meta.endpoint_url)
        if client.meta.endpoint_url.startswith("https:"):  # (plain HTTP needs none)
            self._ssl = _tls_context(core.get_config_variable("ca_bundle") or None)
        if not self.api_key:  # SigV4: the session token is in the headers botocore logs
            from botocore.exceptions import BotoCoreError

            with suppress(BotoCoreError):  # a failing chain fails the call, mapped, later
                credentials = session.get_credentials()  # the object the client signs with
                if credentials is not None:
                    self._signing[client] = credentials
                    frozen = credentials.get_frozen_credentials()
                    redact_in_logs(frozen.secret_key, frozen.token)
        if self.config.headers:
            extra = dict(self.config.headers)

            def add_headers(request: Any, **_: Any) -> None:
                for name, value in extra.items():
                    request.headers[name] = value

            client.meta.events.register("before-sign.bedrock-runtime.*", add_headers)
        return client


#: The open aiohttp sessions of each loop. An LLM dropped without ``aclose()`` is collected
#: together with its PerLoop's guard, which then closes the session on its loop; holding
#: the session here until then keeps aiohttp from reporting it unclosed in between.
_LIVE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[Any]] = (
    weakref.WeakKeyDictionary()
)


async def _close_session(session: Any) -> None:
    try:
        await session.close()
    finally:
        _LIVE.get(asyncio.get_running_loop(), set()).discard(session)


def _core_session() -> Any:
    import botocore.session

    return botocore.session.Session()


@functools.lru_cache(maxsize=4)
def _loader(data_path: str | None) -> Any:
    """One botocore data loader per process (per ``AWS_DATA_PATH``): it caches the parsed
    service model, endpoint rules and partitions, 0.1-0.2 s of JSON that a fresh session
    would parse again for every client -- one per event loop, and one per call-scoped key."""
    from botocore.loaders import create_loader

    return create_loader(data_path)


@functools.lru_cache(maxsize=4)
def _warm(loader: Any) -> None:
    """Parse what creating a ``bedrock-runtime`` client reads (once per loader): a client
    is built on first use inside a call's first-token clock, so it should not parse JSON."""
    from botocore.exceptions import DataNotFoundError

    with suppress(DataNotFoundError):  # (an older botocore's layout: the client reads it)
        loader.load_service_model("bedrock-runtime", "service-2")
        loader.load_service_model("bedrock-runtime", "endpoint-rule-set-1")
        loader.load_data("endpoints")
        loader.load_data("partitions")
        loader.load_data("sdk-default-configuration")


@functools.lru_cache(maxsize=8)
def _tls_context(ca_bundle: str | None) -> Any:
    """The TLS context verifying with what botocore would: ``AWS_CA_BUNDLE`` / the
    profile's ``ca_bundle``, else botocore's default (certifi's bundle, or its own). Made
    once per bundle path and process: loading a bundle takes about 0.1 s."""
    import ssl

    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=get_cert_path(ca_bundle or True))


def _proxy_for(url: str) -> str | None:
    """The environment's proxy for ``url`` (``HTTPS_PROXY`` / ``HTTP_PROXY``, unless
    ``NO_PROXY`` names its host), as botocore and urllib read it."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if proxy is None or (parts.hostname and proxy_bypass(parts.hostname)):
        return None
    return proxy


def _import_aiohttp() -> None:
    """aiohttp sends Bedrock's streams; the ``bedrock`` extra installs it."""
    try:
        import aiohttp  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("aiohttp", "bedrock") from exc


def _check_credentials(sdk: Any) -> None:
    """Fail at construction, before any request, when AWS's credential chain finds
    nothing: :class:`MissingAPIKeyError` naming what to set. botocore walks its usual
    chain (environment, shared files and profiles, SSO, credential process, container and
    instance metadata); the instance-metadata step is skipped with
    ``AWS_EC2_METADATA_DISABLED=true`` and otherwise bounded by botocore's own 1 s
    ``metadata_service_timeout``. The credentials are not kept: the client resolves (and
    refreshes) its own."""
    from botocore import exceptions as aws

    session = _session(sdk)
    try:
        credentials = session.get_credentials()
    except aws.ProfileNotFound as exc:
        raise _no_profile(exc) from None
    except aws.BotoCoreError as exc:
        raise MissingAPIKeyError(
            f"No usable AWS credentials for Bedrock ({exc}): set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, use a profile (AWS_PROFILE), set "
            "AWS_BEARER_TOKEN_BEDROCK, or pass api_key=... with a Bedrock API key."
        ) from None
    if credentials is None:
        raise MissingAPIKeyError(
            "No AWS credentials for Bedrock: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "use a profile (AWS_PROFILE), set AWS_BEARER_TOKEN_BEDROCK, or pass api_key=... "
            "with a Bedrock API key (the AWS chain also reads ~/.aws/credentials, SSO and "
            "instance roles; none had credentials)."
        )


def _session(sdk: Any) -> Any:
    """A boto3 Session; a named profile that does not exist is a ConfigError."""
    from botocore import exceptions as aws

    try:
        return sdk.session.Session()
    except aws.ProfileNotFound as exc:
        raise _no_profile(exc) from None


def _no_profile(exc: Exception) -> ConfigError:
    return ConfigError(
        f"AWS_PROFILE: {exc}; name a profile of ~/.aws/config or ~/.aws/credentials, "
        "or unset AWS_PROFILE"
    )


def _region(session: Any) -> str:
    return os.environ.get("AWS_REGION") or session.region_name or DEFAULT_REGION


def _bearer_session(api_key: str) -> Any:
    """A botocore session whose token chain yields ``api_key`` for Bedrock, as if it were
    ``AWS_BEARER_TOKEN_BEDROCK`` -- without touching the process environment."""
    import botocore.session
    import botocore.tokens

    if not hasattr(botocore.tokens, "ScopedEnvTokenProvider"):
        raise ConfigError(
            "api_key: Bedrock API keys need botocore >= 1.39; upgrade boto3, or leave api_key "
            "unset and use AWS credentials."
        )
    core = botocore.session.Session()
    token = botocore.tokens.ScopedEnvTokenProvider(
        core, environ={"AWS_BEARER_TOKEN_BEDROCK": api_key}
    )
    core.register_component("token_provider", botocore.tokens.TokenProviderChain([token]))
    return core
