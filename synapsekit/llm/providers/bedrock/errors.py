"""Bedrock's error table for ``_errors.py``: botocore's exceptions (a status or an in-stream
exception, as botocore's parsers read them), and the transports': aiohttp's for the stream
(:mod:`.transport`), urllib3's for what boto3 still sends itself (embeddings, countTokens).

``ClientError`` carries an HTTP error status (403 for bad credentials, never 401) or, as
``EventStreamError``, an exception message inside the 200 stream (no status: its code
decides). In-stream exception codes are camelCase, so the codes are matched lower-cased.
"""

from __future__ import annotations

import builtins
import functools
from typing import Any

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
from synapsekit.llm.providers._errors import ErrorMapper, ErrorTable, Failure

__all__ = ["error_table"]

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


@functools.cache
def error_table() -> ErrorTable:
    """The table (built once, on the first error: botocore is imported lazily)."""
    import aiohttp
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
        # aiohttp: a refused connection, a body cut before its end (ClientPayloadError)...
        transport=(aws.HTTPClientError, aws.ConnectionError, http.HTTPError, OSError,
                   aiohttp.ClientError),
        malformed=(eventstream.ParserError, ResponseParserError),
        codes=_CODES,
        statuses={424: ServerError},  # ModelErrorException: the model failed, not the request
        packages=("botocore", "boto3", "urllib3", "aiohttp", "yarl", "multidict"),
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
