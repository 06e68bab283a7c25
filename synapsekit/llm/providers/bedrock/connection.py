"""The Bedrock connection: a boto3 ``bedrock-runtime`` client per loop, the region, the
credentials (shared with the Titan / Cohere-on-Bedrock embedders).

- The SDK never retries (``total_max_attempts=1``); ``connect_timeout`` is its connect
  limit, the larger of ``first_token_timeout`` / ``idle_timeout`` its socket read backstop.
- Region: ``AWS_REGION``, else the AWS chain (``AWS_DEFAULT_REGION``, the profile's
  ``region``), else ``us-east-1``. Credentials: the AWS chain (env keys, profiles, SSO,
  instance roles). ``api_key`` is a Bedrock API key, sent as ``Authorization: Bearer``
  (botocore >= 1.39 -- the same as setting ``AWS_BEARER_TOKEN_BEDROCK``); it needs HTTPS.
"""

from __future__ import annotations

import functools
import os
from contextlib import suppress
from typing import Any, ClassVar

from synapsekit.errors import ConfigError, MissingAPIKeyError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.connection import Connection

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
        from synapsekit.llm.providers._pool import MAX_CONNECTIONS

        redact_in_logs(self.api_key)  # botocore's DEBUG log prints the request headers
        core = _bearer_session(self.api_key) if self.api_key else None
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
        if not self.api_key:  # SigV4: the session token is in the headers botocore logs
            from botocore.exceptions import BotoCoreError

            with suppress(BotoCoreError):  # a failing chain fails the call, mapped, later
                credentials = session.get_credentials()
                if credentials is not None:
                    frozen = credentials.get_frozen_credentials()
                    redact_in_logs(frozen.secret_key, frozen.token)
        if self.config.headers:
            extra = dict(self.config.headers)

            def add_headers(request: Any, **_: Any) -> None:
                for name, value in extra.items():
                    request.headers[name] = value

            client.meta.events.register("before-sign.bedrock-runtime.*", add_headers)
        return client


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
