"""The one exception hierarchy of synapsekit.

Every provider SDK's exceptions are translated into these classes at one depth (each
provider's ``map_errors``), so callers and the retry policy decide by *type*, never by
matching words in a message::

    SynapseKitError
    ├── ConfigError (ValueError)             bad configuration, unknown provider
    │   └── MissingAPIKeyError               no key given and none in the environment
    ├── InvalidInputError (ValueError)       bad messages / prompt, caught before any request
    │   └── UnsupportedFeatureError          a part, tool or setting this provider cannot take
    │       └── NoCapableMemberError         no Router member can take the request (why each)
    ├── MissingDependencyError (ImportError) provider SDK not installed: names the pip extra
    ├── CacheError                           a cache file or server that cannot be used
    ├── CassetteError                        a call a replaying cassette has no recording
    │                                        of, or a cassette file that cannot be used
    ├── LedgerError                          a TokenTracer ledger file that cannot be used
    ├── StoreError                           a RAG store file that cannot be used
    ├── BudgetError                          a Budget cannot be used or its server is down;
    │   │                                    nothing was sent
    │   ├── BudgetExceededError              the call's worst case does not fit the budget;
    │   │                                    nothing was sent; never retried
    │   └── UnpricedModelError               no known price for the model under a budget
    └── LLMError                             the provider answered badly or not at all
        ├── AuthenticationError              401: the key was rejected       never retried
        │   └── PermissionDeniedError        403: the key may not do this    never retried
        ├── RateLimitError                   429, retry_after               retried
        │   └── QuotaExceededError           402, quota / credit exhausted  never retried
        ├── InvalidRequestError              400 / 422                      never retried
        │   └── ContextLengthError           prompt too long                never retried
        ├── ContentFilterError               blocked by a safety filter     never retried
        ├── NotFoundError                    404, unknown model             never retried
        ├── TimeoutError (builtins.TimeoutError)                            retried
        ├── ConnectionError (builtins.ConnectionError)                      retried
        ├── ServerError                      5xx, overloaded                retried
        ├── StreamInterruptedError           failed after tokens reached the caller;
        │                                    carries partial_text; never retried
        ├── ToolCallError                    a tool call's arguments are not a JSON object;
        │                                    carries the raw text; never retried
        ├── StructuredOutputError            no valid object after the re-asks; carries
        │                                    the last text and what failed
        ├── MaxStepsError                    run_tools used max_steps; carries the transcript
        └── AllMembersFailedError            no Router member answered; carries each
                                             member's failure and why others were skipped

Classification is by HTTP status first; the body's error code only refines it
(:mod:`synapsekit.llm.providers._errors`, the one mapping layer).

An API key never appears in any message: :func:`redact` scrubs the key the call used,
and anything an API echoes back after "API key provided:".
"""

from __future__ import annotations

import builtins
import math
import re
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from synapsekit.llm.types import Usage

__all__ = [
    "AllMembersFailedError",
    "AuthenticationError",
    "BudgetError",
    "BudgetExceededError",
    "CacheError",
    "CassetteError",
    "ConfigError",
    "ConnectionError",
    "ContentFilterError",
    "ContextLengthError",
    "InvalidInputError",
    "InvalidRequestError",
    "LLMError",
    "LedgerError",
    "MaxStepsError",
    "MissingAPIKeyError",
    "MissingDependencyError",
    "NoCapableMemberError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ServerError",
    "StoreError",
    "StreamInterruptedError",
    "StructuredOutputError",
    "SynapseKitError",
    "TimeoutError",
    "ToolCallError",
    "UnpricedModelError",
    "UnsupportedFeatureError",
    "UnsupportedFileError",
    "error_for_status",
    "redact",
]


class SynapseKitError(Exception):
    """Base of every exception synapsekit raises on purpose."""


class ConfigError(SynapseKitError, ValueError):
    """The configuration is invalid: the message names the field and why."""


class MissingAPIKeyError(ConfigError):
    """No API key was passed and none of the provider's environment variables is set."""


class InvalidInputError(SynapseKitError, ValueError):
    """A prompt or message list is malformed; raised before any request is sent."""


class UnsupportedFeatureError(InvalidInputError):
    """A content part, a tool setting, structured output or a reasoning control that this
    provider (or model) cannot take; the message names what it accepts. Raised before any
    request is sent."""


class UnsupportedFileError(InvalidInputError):
    """A file ``RAG.add`` cannot index: binary (not text), a suffix with no loader, an
    unreadable or undecodable file. ``path`` is the file, ``reason`` the short form a
    directory walk reports (a directory skips such files and counts them by reason)."""

    def __init__(self, path: object, reason: str, *, hint: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Cannot load {self.path!r}: {reason}.{hint}")


class MissingDependencyError(SynapseKitError, ImportError):
    """A provider's SDK is not installed; the message gives the exact pip command."""

    def __init__(
        self, package: str, extra: str, *, feature: str | None = None, install: str | None = None
    ) -> None:
        self.package = package
        self.extra = extra
        needs = feature or f"The {extra!r} provider"
        #: The command that installs it: the synapsekit extra, or a plugin's own line.
        self.install = install or f'pip install "synapsekit[{extra}]"'
        super().__init__(
            f"{needs} needs the {package!r} package, which is not installed. "
            f"Install it with: {self.install}"
        )


class CacheError(SynapseKitError):
    """A cache that cannot be opened: an unreadable file, a schema from a newer version.

    Raised when the LLM is built, never in the middle of a call: once running, a cache
    that fails (disk full, server gone) is logged and skipped, and the call goes on.
    """


class CassetteError(SynapseKitError):
    """A :class:`synapsekit.testing.Cassette` cannot serve the call: replaying, it has no
    recording of the request (the message names the cassette, the request's key, the
    model and the prompt's first words), or its file is missing or not a cassette. Never
    retried (not an LLMError): a test must record the call, not wait for it."""


class LedgerError(SynapseKitError):
    """A ledger file that cannot be used: not a database, unreadable, or from a newer
    synapsekit. Raised when the ledger is opened or read, never while recording."""


class StoreError(SynapseKitError):
    """A RAG store that cannot be used: a corrupt or foreign file, a newer schema, or an
    embedding model or dimension other than the one the store was built with."""


class BudgetError(SynapseKitError):
    """A :class:`~synapsekit.llm.budget.Budget` refused a call, or cannot be used (a
    SQLite file from a newer synapsekit, a Redis server that does not answer: a budget
    fails closed, since a call it cannot count could overspend). Nothing was sent."""


class BudgetExceededError(BudgetError):
    """The call's worst-case cost does not fit: ``spent_usd + reserved_usd +
    requested_usd > limit_usd`` in the budget's current window. Raised before the
    request, so nothing was sent and nothing was charged.

    ``limit_type``, ``limit_value`` and ``current`` are SynapseKit's names for the same
    facts (``"budget"``, ``"per_request"``, ``"daily"`` or ``"per_user"``; the limit; the
    spend so far), so code written for its ``BudgetExceeded`` reads this one too.
    """

    def __init__(
        self,
        *,
        limit_usd: float,
        spent_usd: float,
        reserved_usd: float,
        requested_usd: float,
        name: str = "default",
        window: str | None = None,
        limit_type: str = "budget",
    ) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.reserved_usd = reserved_usd
        self.requested_usd = requested_usd
        self.name = name
        self.window = window
        self.limit_type = limit_type
        self.limit_value = limit_usd
        self.current = spent_usd
        where = f" ({window} UTC)" if window else ""
        needs = f"this call needs up to {_usd(requested_usd)}; nothing was sent."
        if limit_type == "per_request":
            text = f"Budget {name!r}: over its per-request limit of {_usd(limit_usd)}: {needs}"
        elif limit_type == "circuit_breaker":
            text = (f"Budget {name!r}{where}: refusing every call for a while after one went "
                    f"over a limit (its circuit breaker is open); spent {_usd(spent_usd)}, "
                    f"{needs}")
        else:
            text = (f"Budget {name!r}{where} exceeded: limit {_usd(limit_usd)}, spent "
                    f"{_usd(spent_usd)}, reserved by calls in flight {_usd(reserved_usd)}, "
                    f"{needs}")
        super().__init__(text)


class UnpricedModelError(BudgetError):
    """Under a budget, a model with no known price is refused (its cost cannot be
    bounded) unless the budget says ``allow_unpriced=True``. Nothing was sent."""

    def __init__(self, *, provider: str | None, model: str | None) -> None:
        self.provider = provider
        self.model = model
        super().__init__(
            f"No price is known for model {model!r} (provider {provider!r}), so its cost "
            "cannot be bounded under a budget; nothing was sent. Pass "
            "Budget(..., allow_unpriced=True) to allow it (its calls then count $0)."
        )


def _usd(amount: float) -> str:
    """Dollars as a person reads them: cents from a cent up (``$4.90``, ``$0.876544``),
    three significant digits below (``$0.0000612``)."""
    if math.isinf(amount):
        return "no limit"
    if amount >= 0.01 or amount == 0:
        whole, _, cents = f"{amount:,.6f}".rstrip("0").partition(".")
        return f"${whole}.{cents.ljust(2, '0')}"
    digits = min(9, 2 - math.floor(math.log10(amount)))
    return f"${amount:.{digits}f}".rstrip("0")


class LLMError(SynapseKitError):
    """The provider failed to give an answer.

    ``retryable`` is what the retry policy reads; it is a property of the class (and of
    a few instances, e.g. a quota 429), never of the message text.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.code = code
        super().__init__(message)

    def __str__(self) -> str:
        where = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("provider", self.provider),
                ("model", self.model),
                ("status", self.status_code),
                ("request_id", self.request_id),
            )
            if v is not None
        )
        return f"{self.message} ({where})" if where else self.message


class AuthenticationError(LLMError):
    """The key was rejected (401), or (as :class:`PermissionDeniedError`) lacks permission."""


class PermissionDeniedError(AuthenticationError):
    """The key is valid but may not use this model or endpoint (403). A subclass of
    AuthenticationError, so code that catches that catches this too."""


class RateLimitError(LLMError):
    """Too many requests (429); ``retry_after`` holds the server's advice in seconds."""

    retryable = True


class QuotaExceededError(RateLimitError):
    """The account's quota or credit is exhausted: waiting will not help."""

    retryable = False


class InvalidRequestError(LLMError):
    """The provider rejected the request as malformed (400 / 422)."""


class ContextLengthError(InvalidRequestError):
    """The prompt plus max_tokens exceed the model's context window."""


class ContentFilterError(LLMError):
    """A safety filter blocked the prompt or the answer."""


class NotFoundError(LLMError):
    """Unknown model or endpoint (404)."""


class TimeoutError(LLMError, builtins.TimeoutError):
    """No response (or no next token) within the configured timeout."""

    retryable = True


class ConnectionError(LLMError, builtins.ConnectionError):
    """The connection could not be made or broke before the answer began."""

    retryable = True


class ServerError(LLMError):
    """The provider failed on its side (5xx, overloaded)."""

    retryable = True


class StreamInterruptedError(LLMError):
    """The stream failed after tokens had already reached the caller.

    It is never retried (that would yield the same tokens twice). ``partial_text`` is
    what the caller already received; ``usage`` is marked incomplete.
    """

    def __init__(
        self,
        message: str,
        *,
        partial_text: str,
        usage: Usage | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.partial_text = partial_text
        self.usage = usage


class ToolCallError(LLMError):
    """The model asked for a tool with arguments that are not a JSON object. Never a
    silent ``{}``: ``raw_arguments`` is the text the model sent, ``tool_name`` and
    ``tool_call_id`` say which call."""

    def __init__(
        self,
        message: str,
        *,
        raw_arguments: str,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.raw_arguments = raw_arguments
        self.tool_name = tool_name
        self.tool_call_id = tool_call_id


class StructuredOutputError(LLMError):
    """``generate_object`` got no valid object in ``attempts`` tries: ``text`` is the last
    answer, ``errors`` what failed validation in it."""

    def __init__(
        self,
        message: str,
        *,
        text: str,
        errors: list[str],
        attempts: int,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.text = text
        self.errors = errors
        self.attempts = attempts


class MaxStepsError(LLMError):
    """``run_tools`` used ``max_steps`` model turns and the model still asks for tools;
    ``transcript`` is every message so far (to inspect or continue from)."""

    def __init__(self, message: str, *, transcript: list[Any], **context: Any) -> None:
        super().__init__(message, **context)
        self.transcript = transcript


class AllMembersFailedError(LLMError):
    """No member answered. ``failures``: member name -> the error it failed with (in the
    order tried); ``skipped``: member name -> why it was not tried (circuit open, cooling
    down after a 429, a shorter context). The last failure is ``__cause__``; status, code
    and ``retry_after`` (the soonest a member is available again) are its, and the error is
    retryable when the last failure was."""

    def __init__(
        self, message: str, *, failures: dict[str, LLMError], skipped: dict[str, str],
        retry_after: float | None = None,
    ) -> None:
        last = next(reversed(failures.values()), None) if failures else None
        super().__init__(
            message,
            provider="router",
            model=None if last is None else last.model,
            status_code=None if last is None else last.status_code,
            request_id=None if last is None else last.request_id,
            retry_after=retry_after,
            code=None if last is None else last.code,
        )
        self.failures = failures
        self.skipped = skipped
        self.retryable = last is not None and last.retryable  # type: ignore[misc]


class NoCapableMemberError(UnsupportedFeatureError):
    """No member can take this request (``cheapest``: by its model profile); ``reasons``:
    member name -> why it was excluded. Nothing was sent."""

    def __init__(self, message: str, *, reasons: dict[str, str]) -> None:
        super().__init__(message)
        self.reasons = reasons


def error_for_status(
    status: int | None, code: str | None = None, error_type: str | None = None
) -> type[LLMError]:
    """The exception class for an HTTP status, refined (never overridden) by the
    provider's error code/type; see :func:`synapsekit.llm.providers._errors.classify`."""
    from synapsekit.llm.providers._errors import classify

    return classify(status, (code, error_type))


#: A key an API echoed back in its message (compiled by ``re`` on the first error, not at
#: import).
_ECHOED_KEY = r"(api[ _-]?key provided:?\s*)\S+"


def redact(text: str, *secrets: str | None) -> str:
    """Remove every given secret, and any key an API echoed back, from ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return re.sub(_ECHOED_KEY, r"\1***", text, flags=re.IGNORECASE)
