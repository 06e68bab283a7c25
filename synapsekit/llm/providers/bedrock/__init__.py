"""Amazon Bedrock over ``boto3``'s Converse Stream API (``bedrock-runtime``).

Converse is Bedrock's one request shape for every model family, so any model id works as
``modelId`` unchanged: ``anthropic.claude-3-5-haiku-20241022-v1:0``, a cross-region
inference profile (``us.``/``eu.``/``apac.`` prefix) or an ARN.

Why it looks the way it does:

- boto3 is blocking. Each call gets one worker thread of its own (a one-thread executor):
  it sends the request and then reads one event per ``next()``, while the event loop awaits
  the result -- never a blocking read on the loop. When the consumer stops early or is
  cancelled, a read still in flight is woken by shutting the socket down (closing it from
  another thread does not wake a blocked ``recv``), the EventStream is closed on the worker
  after that read, and the worker exits: the server sees the disconnect and no thread is
  left reading. (A task cancelled before the response headers arrive cannot be woken: that
  worker finishes at the latest after ``timeout`` seconds and then closes the response.)
- Events are botocore's parsed dicts: boto3 offers no public raw access to the frames, and
  botocore's parser already checks every frame's CRCs. Usage comes only in the ``metadata``
  event that follows ``messageStop``; a stream without ``messageStop`` was cut off.
  Its ``inputTokens`` excludes ``cacheReadInputTokens`` and ``cacheWriteInputTokens``:
  ``Usage.input_tokens`` is the sum of the three, the cache counts its parts.
- The SDK never retries (``total_max_attempts=1``); ``timeout`` is the socket timeout.
- Region: ``AWS_REGION``, else the AWS chain (``AWS_DEFAULT_REGION``, the profile's
  ``region``), else ``us-east-1``. Credentials: the AWS chain (env keys, profiles, SSO,
  instance roles). ``api_key`` is a Bedrock API key, sent as ``Authorization: Bearer``
  (botocore >= 1.39 -- the same as setting ``AWS_BEARER_TOKEN_BEDROCK``); it needs HTTPS.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import socket
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import Any, ClassVar

from synapsekit.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    LLMError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    SynapseKitError,
    TimeoutError,
    redact,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.connection import Connection
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure
from synapsekit.llm.types import Chunk, Message, Usage

__all__ = ["DEFAULT_REGION", "BedrockLLM"]

#: The region used when neither the environment nor the AWS config names one.
DEFAULT_REGION = "us-east-1"

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

# Error codes (lower-cased: in-stream exceptions are camelCase) -> class.
_CODES: dict[str, type[LLMError]] = {
    "unrecognizedclientexception": AuthenticationError,
    "accessdeniedexception": PermissionDeniedError,
    "invalidsignatureexception": AuthenticationError,
    "signaturedoesnotmatch": AuthenticationError,
    "expiredtokenexception": AuthenticationError,
    "incompletesignatureexception": AuthenticationError,
    "missingauthenticationtokenexception": AuthenticationError,
    "throttlingexception": RateLimitError,
    "toomanyrequestsexception": RateLimitError,
    "servicequotaexceededexception": QuotaExceededError,
    "validationexception": InvalidRequestError,
    "resourcenotfoundexception": NotFoundError,
    "modeltimeoutexception": TimeoutError,
    "modelnotreadyexception": ServerError,  # a 429 over HTTP: a RateLimitError there
    "modelerrorexception": ServerError,
    "modelstreamerrorexception": ServerError,
    "internalserverexception": ServerError,
    "serviceunavailableexception": ServerError,
}


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
        from synapsekit.llm.providers._pool import MAX_CONNECTIONS

        redact_in_logs(self.api_key)  # botocore's DEBUG log prints the request headers
        core = _bearer_session(self.api_key) if self.api_key else None
        session = self.sdk.session.Session(botocore_session=core)  # type: ignore[union-attr]
        options = {"signature_version": "bearer"} if self.api_key else {}
        client = session.client(
            "bedrock-runtime",
            region_name=self.region,
            endpoint_url=self.config.base_url,
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},  # one policy: ours
                read_timeout=self.config.timeout,
                connect_timeout=self.config.timeout,
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


class BedrockLLM(BaseLLM):
    """Any Bedrock model through ``converse_stream``; see the module docstring."""

    provider: ClassVar[str] = "bedrock"
    connection_class = BedrockConnection

    @property
    def region(self) -> str:
        """The AWS region the requests go to (see :attr:`BedrockConnection.region`)."""
        connection: Any = self.connection
        return str(connection.region)

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        system = [{"text": m["content"]} for m in messages if m["role"] == "system"]
        rules = rules_for(self.provider, config)
        inference: dict[str, Any] = {"maxTokens": config.max_tokens}
        temperature = rules.temperature(config)
        if temperature is not None:  # botocore refuses None: leave the field out
            inference["temperature"] = temperature
        top_p = rules.top_p(config)
        if top_p is not None:
            inference["topP"] = top_p
        if config.stop:
            inference["stopSequences"] = list(config.stop)
        request: dict[str, Any] = {
            "modelId": config.model,
            "messages": [
                {"role": m["role"], "content": [{"text": m["content"]}]}
                for m in messages
                if m["role"] != "system"
            ],
            "inferenceConfig": inference,
        }
        if system:
            request["system"] = system
        if config.params:
            request["additionalModelRequestFields"] = dict(rules.params(config))
        return request

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        client = await self._client()
        request = self._request(messages, config)
        worker = ThreadPoolExecutor(1, thread_name_prefix="synapsekit-bedrock")
        pending: Future[Any] | None = None
        stream: Any = None
        try:
            with self._map_errors(config) as errors:
                pending = worker.submit(lambda: client.converse_stream(**request))
                response = await asyncio.wrap_future(pending)
                stream = response["stream"]
                errors.request_id = response.get("ResponseMetadata", {}).get("RequestId")
                events = iter(stream)
                finish: str | None = None
                usage: Usage | None = None
                stopped = False
                while True:
                    pending = worker.submit(next, events, None)
                    event = await asyncio.wrap_future(pending)
                    if event is None:
                        break
                    block = event.get("contentBlockDelta")
                    if block is not None:
                        delta = block.get("delta") or {}
                        if delta.get("text"):
                            yield Chunk(delta["text"])
                        thought = delta.get("reasoningContent")
                        if thought and thought.get("text"):
                            yield Chunk(reasoning=thought["text"])
                    elif "messageStop" in event:
                        stopped = True
                        reason = event["messageStop"].get("stopReason")
                        finish = _FINISH.get(reason, reason)
                    elif "metadata" in event:
                        raw = event["metadata"].get("usage")
                        usage = _usage(raw) if raw else usage
                if not stopped:
                    raise errors.cut("messageStop")
                yield Chunk(usage=usage, finish_reason=finish)
        finally:
            _release(worker, pending, stream)

    def _error_table(self) -> ErrorTable:
        return _error_table()


@functools.cache
def _error_table() -> ErrorTable:
    """botocore's and urllib3's exceptions. ``ClientError`` carries an HTTP error status
    (403 for bad credentials, never 401) or, as ``EventStreamError``, an exception message
    inside the 200 stream (no status: its code decides)."""
    import urllib3.exceptions as http
    from botocore import eventstream
    from botocore import exceptions as aws
    from botocore.parsers import ResponseParserError

    return ErrorTable(
        name="Bedrock",
        status=(aws.ClientError,),
        read=_read_status,
        timeouts=(aws.ReadTimeoutError, aws.ConnectTimeoutError, http.ReadTimeoutError,
                  builtins.TimeoutError),
        transport=(aws.HTTPClientError, aws.ConnectionError, http.HTTPError, OSError),
        malformed=(eventstream.ParserError, ResponseParserError),
        codes=_CODES,
        statuses={424: ServerError},  # ModelErrorException: the model failed, not the request
        packages=("botocore", "boto3", "urllib3"),
        special=_setup_error,
    )


def _read_status(exc: Any, errors: ErrorMapper) -> Failure:
    response = exc.response or {}
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    headers = meta.get("HTTPHeaders") or {}
    return Failure(
        meta.get("HTTPStatusCode"),
        str(error.get("Message") or exc),
        (str(error.get("Code") or "") or None,),
        request_id=meta.get("RequestId") or headers.get("x-amzn-requestid"),
        headers=headers,
    )


def _setup_error(exc: Exception, errors: ErrorMapper) -> SynapseKitError | None:
    """What is wrong before any request: credentials, the endpoint, the request's shape."""
    from botocore import exceptions as aws

    if isinstance(exc, (aws.NoCredentialsError, aws.PartialCredentialsError)):
        return MissingAPIKeyError(
            f"No usable AWS credentials ({exc}): set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, use a profile (AWS_PROFILE), or pass api_key=... "
            "with a Bedrock API key."
        )
    if isinstance(exc, aws.InvalidEndpointConfigurationError):
        return ConfigError(f"base_url: {exc}")
    if isinstance(exc, aws.ParamValidationError):
        return InvalidRequestError(
            redact(str(exc), errors.secret), provider=errors.provider, model=errors.model
        )
    return None


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


def _usage(raw: dict[str, Any]) -> Usage:
    """Converse's ``inputTokens`` leaves out cache reads and writes (as Anthropic's
    ``input_tokens`` does): the whole prompt is the sum, the cache parts stay parts."""
    read = raw.get("cacheReadInputTokens") or 0
    written = raw.get("cacheWriteInputTokens") or 0
    # ``cacheDetails``: [{"ttl": "5m" | "1h", "inputTokens": n}], the writes by lifetime
    details = raw.get("cacheDetails")
    written_1h = sum(
        d.get("inputTokens") or 0 for d in details if isinstance(d, dict) and d.get("ttl") == "1h"
    ) if isinstance(details, list) else 0
    return Usage(
        input_tokens=(raw.get("inputTokens") or 0) + read + written,
        output_tokens=raw.get("outputTokens") or 0,
        cached_input_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=min(written_1h, written),
    )


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


def _release(worker: ThreadPoolExecutor, pending: Future[Any] | None, stream: Any) -> None:
    """Stop the call's worker thread without leaving it blocked on the network."""
    if pending is not None and not pending.done():
        if stream is None:  # still sending the request: close the response when it comes
            pending.add_done_callback(_close_opened)
        else:  # a read is in flight: wake it, then close the stream after it
            _shutdown_socket(stream)
    if stream is not None:
        worker.submit(stream.close)
    worker.shutdown(wait=False)


def _close_opened(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result()["stream"].close()


def _shutdown_socket(stream: Any) -> None:
    """Wake a thread blocked reading ``stream``'s socket (EventStream -> urllib3 -> socket).

    While the connection keeps its socket, that is shut down. After a response that said
    ``Connection: close``, http.client has already detached the socket from the connection
    (``connection.sock`` is None) and only the response's file holds it: urllib3 >= 2.3
    shuts that down with ``HTTPResponse.shutdown()``; older ones are reached through the
    response's file.
    """
    raw: Any = getattr(stream, "_raw_stream", None)  # urllib3's HTTPResponse
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    with suppress(OSError, ValueError, RuntimeError):  # already closed, or released
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        elif callable(getattr(raw, "shutdown", None)):
            raw.shutdown()
        else:
            file = getattr(getattr(raw, "_original_response", None), "fp", None)
            sock = getattr(getattr(file, "raw", None), "_sock", None)
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
