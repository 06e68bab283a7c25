"""The one error-mapping layer: every protocol's SDK exceptions -> :mod:`synapsekit.errors`.

Why one layer: the four ways a call fails (an HTTP error status, a timeout, a broken
transport, a body the SDK could not read) were once written out per provider, each with
its own exception list, and the lists drifted (openai 3 moved to ``httpx2`` and one copy
never learned it). Now a protocol module only *describes* its SDK in an
:class:`ErrorTable` -- which exception classes mean what, how to read a status
exception, which error codes it knows -- and :class:`ErrorMapper` does the translating,
the same way for all fifteen providers::

    with self._map_errors(config):      # an ErrorMapper
        ...send, read the stream...     # any SDK / HTTP-library exception is translated

Classification is by HTTP status first (:func:`classify`): 401 is always an
AuthenticationError, 403 a PermissionDeniedError, 402 a QuotaExceededError; a body's
error code or type only *refines* the status class (429 + ``insufficient_quota`` ->
QuotaExceededError, 400 + ``context_length_exceeded`` -> ContextLengthError), never
overrides it. An error that arrives inside a 200 stream has no status of its own, so
there the code decides.

Transport exceptions are taken from the HTTP library the SDK itself imports
(:func:`synapsekit.llm.providers._common.http_stack`), never guessed: ``httpx`` and
``httpx2`` both work, whichever the installed SDK uses. Anything else raised by a class
of the SDK's own packages (or its HTTP stack) becomes a ServerError naming its type, so
no SDK exception ever leaves synapsekit untranslated; exceptions of synapsekit itself
and the caller's cancellation pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from synapsekit.errors import (
    AuthenticationError,
    ConnectionError,
    ContentFilterError,
    ContextLengthError,
    InvalidRequestError,
    LLMError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    SynapseKitError,
    TimeoutError,
    redact,
)
from synapsekit.llm.retry import parse_retry_after

__all__ = [
    "CODE_CLASSES",
    "STATUS_CLASSES",
    "ErrorMapper",
    "ErrorTable",
    "Failure",
    "classify",
    "text",
]

Classes = tuple[type[BaseException], ...]

#: HTTP status -> class; other 4xx are InvalidRequestError, 5xx (and 529) ServerError.
STATUS_CLASSES: dict[int, type[LLMError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: QuotaExceededError,  # DeepSeek "Insufficient Balance", OpenRouter credits, Cohere
    403: PermissionDeniedError,
    404: NotFoundError,
    408: TimeoutError,
    409: ServerError,  # a conflict the API asks to retry
    413: ContextLengthError,
    422: InvalidRequestError,
    429: RateLimitError,
}

#: Error codes / types (lower-cased) several APIs use; a table adds its own.
CODE_CLASSES: dict[str, type[LLMError]] = {
    "context_length_exceeded": ContextLengthError,
    "string_above_max_length": ContextLengthError,
    "request_too_large": ContextLengthError,
    "insufficient_quota": QuotaExceededError,
    "billing_hard_limit_reached": QuotaExceededError,
    "billing_error": QuotaExceededError,
    "content_filter": ContentFilterError,
    "content_policy_violation": ContentFilterError,
    "invalid_api_key": AuthenticationError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "rate_limit_exceeded": RateLimitError,
    "rate_limit_error": RateLimitError,
    "overloaded_error": ServerError,
    "server_error": ServerError,
    "api_error": ServerError,
    "model_not_found": NotFoundError,
    "not_found_error": NotFoundError,
    "invalid_request_error": InvalidRequestError,
}

#: What a body's code may turn a status class into, besides one of its own subclasses
#: (e.g. 429 -> QuotaExceededError). Anything else keeps the status class.
REFINEMENTS: dict[type[LLMError], tuple[type[LLMError], ...]] = {
    InvalidRequestError: (ContentFilterError, QuotaExceededError),
    PermissionDeniedError: (AuthenticationError,),  # Bedrock: bad credentials are a 403
}

#: Message text of a "prompt too long" error, for the APIs that send it without a code
#: (Anthropic, Gemini, Cohere, Mistral, Ollama, Bedrock). Only read when the status (or
#: the in-stream code) already says the request was invalid.
TOO_LONG = re.compile(
    r"\btoo long\b|too many (?:input )?tokens|context (?:length|window)"
    r"|maximum context|exceeds the maximum number of tokens|too large for model"
    r"|input length exceeds",
    re.IGNORECASE,
)


def classify(
    status: int | None,
    codes: Iterable[str | None] = (),
    message: str = "",
    extra_codes: Mapping[str, type[LLMError]] | None = None,
    extra_statuses: Mapping[int, type[LLMError]] | None = None,
) -> type[LLMError]:
    """The class for a failure: by ``status`` first, refined by the body's ``codes``.

    ``status=None`` (an error event inside a 200 stream; likewise any status below 400,
    an error reported in a successful response) lets the first known code decide, else
    ServerError. ``extra_*`` are a provider's own codes and statuses.
    """
    if status is not None and status < 400:
        status = None
    code_class: type[LLMError] | None = None
    for code in codes:
        if code:
            key = code.lower()
            code_class = (extra_codes or {}).get(key) or CODE_CLASSES.get(key)
            if code_class is not None:
                break
    if status is None:
        cls = code_class or ServerError
    else:
        cls = (extra_statuses or {}).get(status) or STATUS_CLASSES.get(status) or (
            ServerError if status >= 500 else InvalidRequestError
        )
        if code_class is not None and (
            issubclass(code_class, cls) or code_class in REFINEMENTS.get(cls, ())
        ):
            cls = code_class
    in_stream_unknown = status is None and code_class is None
    if (cls is InvalidRequestError or in_stream_unknown) and TOO_LONG.search(message):
        cls = ContextLengthError
    return cls


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed response says, as a protocol's reader found it.

    ``codes`` are the body's error code and type, most specific first; ``cls`` is set
    only where a reader knows better than the status (documented per protocol: Gemini's
    bad key arrives as a 400).
    """

    status: int | None
    message: str
    codes: tuple[str | None, ...] = ()
    request_id: str | None = None
    headers: Mapping[str, str] | None = None
    retry_after: float | None = None
    cls: type[LLMError] | None = None


@dataclass(frozen=True)
class ErrorTable:
    """How one protocol's SDK reports failure; the protocol module builds it once.

    ``status`` exceptions carry an HTTP status and are read by ``read`` into a
    :class:`Failure`; ``timeouts`` and ``transport`` are the SDK's and its HTTP library's
    (timeouts are checked first: in several SDKs a timeout is a kind of connection
    error); ``malformed`` means a body the SDK could not parse. ``packages`` are the
    packages whose other exceptions still become a ServerError. ``hint`` is added to a
    connection error's message (Ollama: how to start the server). ``special`` translates,
    first, what is not a failure of the call itself (Bedrock: no AWS credentials found).
    """

    name: str
    status: Classes
    read: Callable[[Any, ErrorMapper], Failure]
    timeouts: Classes
    transport: Classes
    malformed: Classes = ()
    codes: Mapping[str, type[LLMError]] = field(default_factory=dict)
    statuses: Mapping[int, type[LLMError]] = field(default_factory=dict)
    packages: tuple[str, ...] = ()
    hint: str = ""
    special: Callable[[Exception, ErrorMapper], SynapseKitError | None] | None = None


def stainless_table(
    sdk: Any, *, name: str, read: Callable[[Any, ErrorMapper], Failure]
) -> ErrorTable:
    """The table of an SDK generated the way openai's and anthropic's are: one
    ``APIStatusError`` (read by ``read``: the two differ only in their body), an
    ``APITimeoutError`` and an ``APIConnectionError``, over the HTTP library the SDK's
    ``_base_client`` imports (``httpx2`` since openai 3 / anthropic 2)."""
    from synapsekit.llm.providers._common import http_stack

    stack = http_stack(f"{sdk.__name__}._base_client")
    return ErrorTable(
        name=name,
        status=(sdk.APIStatusError,),
        read=read,
        timeouts=(sdk.APITimeoutError, *stack.timeouts),
        transport=(sdk.APIConnectionError, *stack.transport),
        packages=(sdk.__name__, *stack.packages),
    )


class ErrorMapper:
    """Translates the failures of one call, as a context manager, at one depth.

    Exceptions of synapsekit pass through; so do BaseExceptions that are not Exceptions
    (cancellation, GeneratorExit when a consumer leaves a stream early). ``request_id``
    may be set during the call (Bedrock learns it from the response) and is attached to
    every error raised after that.
    """

    __slots__ = ("endpoint", "model", "provider", "request_id", "secret", "table", "timeout")

    def __init__(
        self,
        table: ErrorTable,
        *,
        provider: str,
        model: str,
        endpoint: str | None,
        timeout: float | None,
        secret: str | None,
    ) -> None:
        self.table = table
        self.provider = provider
        self.model = model
        self.endpoint = endpoint
        self.timeout = timeout
        self.secret = secret
        self.request_id: str | None = None

    def __enter__(self) -> ErrorMapper:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if not isinstance(exc, Exception) or isinstance(exc, SynapseKitError):
            return False
        mapped = self.translate(exc)
        if mapped is None:
            return False
        raise mapped from None

    def translate(self, exc: Exception) -> SynapseKitError | None:
        """The synapsekit error for ``exc``, or None when it is not the SDK's to map."""
        table = self.table
        if table.special is not None:
            special = table.special(exc, self)
            if special is not None:
                return special
        if isinstance(exc, table.status):
            return self.error(table.read(exc, self))
        if isinstance(exc, table.malformed):
            return self.malformed(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, table.timeouts):
            limit = f" within {self.timeout:g} s" if self.timeout else ""
            return TimeoutError(
                f"No answer from {table.name}{limit}: {type(exc).__name__}", **self._context()
            )
        if isinstance(exc, table.transport):
            hint = f" {table.hint}" if table.hint else ""
            return ConnectionError(
                redact(f"Connection to {table.name} at {self.endpoint or 'its default endpoint'}"
                       f" failed: {exc or type(exc).__name__}.{hint}", self.secret),
                **self._context(),
            )
        if _raised_in(exc, table.packages):
            return ServerError(
                redact(f"{table.name} failed unexpectedly: {type(exc).__name__}: {exc}",
                       self.secret),
                **self._context(),
            )
        return None

    def error(self, failure: Failure) -> LLMError:
        """The typed error for what a response (or an in-stream error event) said."""
        table = self.table
        cls = failure.cls or classify(
            failure.status, failure.codes, failure.message, table.codes, table.statuses
        )
        retry_after = parse_retry_after(failure.headers) if failure.headers else None
        if retry_after is None:  # the header wins; else what the body said (Gemini)
            retry_after = failure.retry_after
        context = self._context()
        if failure.request_id:
            context["request_id"] = failure.request_id
        return cls(
            redact(failure.message or f"{table.name} answered HTTP {failure.status}.",
                   self.secret),
            status_code=failure.status,
            retry_after=retry_after,
            code=next((c for c in failure.codes if c), None),
            **context,
        )

    def malformed(self, what: str) -> ServerError:
        """A stream event or body that is not what the protocol promises: a ServerError,
        so it is retried while no token has reached the caller (never silently skipped,
        which would leave a hole in the answer)."""
        return ServerError(
            redact(f"{self.table.name} sent a malformed response: {what[:300]}", self.secret),
            **self._context(),
        )

    def cut(self, missing: str) -> ConnectionError:
        """A body that ended before the protocol's last event (``missing``): the
        connection broke, however cleanly it closed. Retried before the first token."""
        return ConnectionError(
            f"The stream from {self.table.name} ended before the answer was finished "
            f"(no {missing}).",
            **self._context(),
        )

    def _context(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "request_id": self.request_id}


def _read_nothing(exc: Any, errors: ErrorMapper) -> Failure:
    return Failure(None, str(exc))


#: The table of a provider that declares none (a test double): it translates nothing.
NO_TABLE = ErrorTable(name="the provider", status=(), read=_read_nothing, timeouts=(),
                      transport=())


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    """Whether ``exc`` is a class of one of ``packages``, or was raised by their code (an
    AttributeError inside an SDK that met an event it did not expect)."""
    names = [type(exc).__module__]
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        names.append(str(tb.tb_frame.f_globals.get("__name__", "")))
    return any(
        name == package or name.startswith(package + ".")
        for name in names
        for package in packages
    )


def text(value: Any) -> str | None:
    """An error code as text (APIs send codes as strings or numbers), None kept None."""
    return None if value is None else str(value)
