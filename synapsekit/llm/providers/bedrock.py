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
- The SDK never retries (``total_max_attempts=1``); ``timeout`` is the socket timeout.
- Region: ``AWS_REGION``, else the AWS chain (``AWS_DEFAULT_REGION``, the profile's
  ``region``), else ``us-east-1``. Credentials: the AWS chain (env keys, profiles, SSO,
  instance roles). ``api_key`` is a Bedrock API key, sent as ``Authorization: Bearer``
  (botocore >= 1.39 -- the same as setting ``AWS_BEARER_TOKEN_BEDROCK``); it needs HTTPS.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

from synapsekit.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionError,
    ContextLengthError,
    InvalidRequestError,
    LLMError,
    MissingAPIKeyError,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    TimeoutError,
    error_for_status,
    redact,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.retry import parse_retry_after
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
    "accessdeniedexception": AuthenticationError,
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
    "modelnotreadyexception": ServerError,
    "modelerrorexception": ServerError,
    "modelstreamerrorexception": ServerError,
    "internalserverexception": ServerError,
    "serviceunavailableexception": ServerError,
}
_TOO_LONG = re.compile(
    r"too long|too many (?:input )?tokens|context (?:length|window)|maximum context", re.I
)


class BedrockLLM(BaseLLM):
    """Any Bedrock model through ``converse_stream``; see the module docstring."""

    provider: ClassVar[str] = "bedrock"
    #: Connections kept per client (botocore's default, 10, is small for concurrent streams).
    max_pool_connections: ClassVar[int] = 50

    @property
    def region(self) -> str:
        """``AWS_REGION``, else the AWS config chain, else :data:`DEFAULT_REGION`."""
        return _region(self._sdk.session.Session())  # type: ignore[union-attr]

    def _new_client(self) -> Any:
        from botocore.config import Config

        core = _bearer_session(self._api_key) if self._api_key else None
        session = self._sdk.session.Session(botocore_session=core)  # type: ignore[union-attr]
        options = {"signature_version": "bearer"} if self._api_key else {}
        client = session.client(
            "bedrock-runtime",
            region_name=_region(session),
            endpoint_url=self.config.base_url,
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},  # one policy: ours
                read_timeout=self.config.timeout,
                connect_timeout=self.config.timeout,
                max_pool_connections=self.max_pool_connections,
                user_agent_extra="synapsekit",
                **options,
            ),
        )
        if self.config.headers:
            extra = dict(self.config.headers)

            def add_headers(request: Any, **_: Any) -> None:
                for name, value in extra.items():
                    request.headers[name] = value

            client.meta.events.register("before-sign.bedrock-runtime.*", add_headers)
        return client

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        system = [{"text": m["content"]} for m in messages if m["role"] == "system"]
        inference: dict[str, Any] = {
            "maxTokens": config.max_tokens,
            "temperature": config.temperature,
        }
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
            request["additionalModelRequestFields"] = dict(config.params)
        return request

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        client = self._client()
        request = self._request(messages, config)
        worker = ThreadPoolExecutor(1, thread_name_prefix="synapsekit-bedrock")
        pending: Future[Any] | None = None
        stream: Any = None
        context: dict[str, Any] = {"provider": self.provider, "model": config.model}
        try:
            with self._map_errors(config, context):
                pending = worker.submit(lambda: client.converse_stream(**request))
                response = await asyncio.wrap_future(pending)
                stream = response["stream"]
                context["request_id"] = response.get("ResponseMetadata", {}).get("RequestId")
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
                    raise ConnectionError(
                        "The stream ended before Bedrock finished the answer (no messageStop).",
                        **context,
                    )
                yield Chunk(usage=usage, finish_reason=finish)
        finally:
            _release(worker, pending, stream)

    @contextmanager
    def _map_errors(self, config: LLMConfig, context: dict[str, Any]) -> Iterator[None]:
        """Translate botocore's and urllib3's exceptions, at this one depth."""
        import urllib3.exceptions as http
        from botocore import eventstream
        from botocore import exceptions as aws
        from botocore.parsers import ResponseParserError

        try:
            yield
        except LLMError:
            raise  # ours (an OSError too, for ConnectionError/TimeoutError): already mapped
        except aws.ClientError as exc:  # HTTP errors, and in-stream exceptions (EventStreamError)
            raise self._client_error(exc, context) from None
        except (aws.ReadTimeoutError, aws.ConnectTimeoutError, http.ReadTimeoutError,
                builtins.TimeoutError) as exc:
            raise TimeoutError(
                f"No answer within {config.timeout:g} s: {type(exc).__name__}", **context
            ) from None
        except (aws.NoCredentialsError, aws.PartialCredentialsError) as exc:
            raise MissingAPIKeyError(
                f"No usable AWS credentials ({exc}): set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, use a profile (AWS_PROFILE), or pass api_key=... "
                "with a Bedrock API key."
            ) from None
        except aws.InvalidEndpointConfigurationError as exc:
            raise ConfigError(f"base_url: {exc}") from None
        except aws.ParamValidationError as exc:
            raise InvalidRequestError(redact(str(exc), self._api_key), **context) from None
        except (eventstream.ParserError, ResponseParserError) as exc:
            raise ServerError(
                f"Bedrock sent a malformed event stream: {type(exc).__name__}: {exc}", **context
            ) from None
        except (aws.HTTPClientError, aws.ConnectionError, http.HTTPError, OSError) as exc:
            raise ConnectionError(
                redact(f"Connection to Bedrock failed: {exc or type(exc).__name__}",
                       self._api_key),
                **context,
            ) from None

    def _client_error(self, exc: Any, context: dict[str, Any]) -> LLMError:
        response = exc.response or {}
        error = response.get("Error") or {}
        meta = response.get("ResponseMetadata") or {}
        headers = meta.get("HTTPHeaders") or {}
        code = str(error.get("Code") or "") or None
        message = str(error.get("Message") or exc)
        status = meta.get("HTTPStatusCode")
        cls = _CODES.get((code or "").lower()) or error_for_status(status, code)
        if cls is InvalidRequestError and _TOO_LONG.search(message):
            cls = ContextLengthError
        request_id = meta.get("RequestId") or headers.get("x-amzn-requestid")
        return cls(
            redact(message, self._api_key),
            status_code=status,
            retry_after=parse_retry_after(headers),
            code=code,
            **{**context, "request_id": request_id or context.get("request_id")},
        )


def _region(session: Any) -> str:
    return os.environ.get("AWS_REGION") or session.region_name or DEFAULT_REGION


def _usage(raw: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=raw.get("inputTokens") or 0,
        output_tokens=raw.get("outputTokens") or 0,
        cached_input_tokens=raw.get("cacheReadInputTokens") or 0,
        cache_write_tokens=raw.get("cacheWriteInputTokens") or 0,
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
    """Wake a thread blocked reading ``stream``'s socket (EventStream -> urllib3 -> socket)."""
    connection = getattr(getattr(stream, "_raw_stream", None), "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
