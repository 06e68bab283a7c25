"""The small value types that cross the provider boundary: Message, Chunk, Usage, and
the tool-call and response types built from them.

A provider's stream yields :class:`Chunk` objects: text deltas (and reasoning deltas,
kept apart from the answer), tool-call deltas (:class:`ToolCallDelta`), then one final
chunk carrying :class:`Usage`, the finish reason and any ``provider_data`` the next turn
must send back verbatim. They are slotted dataclasses because one is built per token on
the hot path. The call path assembles the deltas into :class:`ToolCall` s (one mechanism
for every provider) and :meth:`BaseLLM.respond` the whole into a :class:`Response`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, Union

from synapsekit._lazy import lazy_pattern
from synapsekit.errors import InvalidInputError
from synapsekit.llm.content import Part, normalize_parts

__all__ = [
    "FINISH_REASONS",
    "ROLES",
    "Chunk",
    "Message",
    "MessagesInput",
    "OutputSchema",
    "ProviderData",
    "Response",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "build_messages",
]

Role = Literal["system", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset(("system", "user", "assistant", "tool"))
#: The finish reasons a Response carries; a provider's other reasons are mapped onto them
#: (the raw one is kept in ``metadata["raw_finish_reason"]``).
FINISH_REASONS: frozenset[str] = frozenset(("stop", "length", "tool_calls", "content_filter"))


class ProviderData(TypedDict):
    """What a provider needs back verbatim on the next turn (Anthropic thinking blocks with
    their signatures, Gemini thought signatures, Bedrock reasoning blocks): the native
    assistant content of one answer, sent as-is when the next request goes to the same
    ``protocol``; another protocol ignores it and uses ``content`` / ``tool_calls``."""

    protocol: str
    content: Any


class Message(TypedDict, total=False):
    """One chat turn, in the shape every provider adapter receives (canonical: content is a
    string or :mod:`~synapsekit.llm.content` parts; ``tool_calls`` are :class:`ToolCall`).

    ``role`` and ``content`` are always present. An assistant turn may carry
    ``tool_calls`` (then ``content`` may be ``""``) and ``provider_data``; a ``"tool"``
    turn carries ``tool_call_id`` (and ``name``, the tool's, when known) and the result
    as ``content``.
    """

    role: Role
    content: str | list[Part]
    tool_calls: list[ToolCall]
    tool_call_id: str
    name: str
    provider_data: ProviderData


MessagesInput = Union[str, Sequence[Mapping[str, Any]]]  # noqa: UP007 - a runtime alias on 3.10


@dataclass(slots=True)
class Usage:
    """Token counts of one call, as the provider reported them.

    ``cached_input_tokens`` and ``cache_write_tokens`` are parts of ``input_tokens``;
    ``reasoning_tokens`` is part of ``output_tokens``. ``complete`` is False when the
    stream ended before the provider reported its final counts (an interrupted stream,
    or a vendor that sent none): such numbers are a lower bound, never a silent 0.

    ``billed_input_tokens`` / ``billed_output_tokens`` are set by a provider whose bill
    counts differ from the tokens processed (Cohere's ``billed_units`` leave out the chat
    template): cost is computed from them when set; None means "bill the counts above".

    ``cache_write_1h_tokens`` is the part of ``cache_write_tokens`` written with a 1-hour
    lifetime (Anthropic and Bedrock bill it at another rate than 5-minute writes).
    ``model`` is the model the response says answered (Azure prices by it: a deployment
    name is not a model); ``search_context_size`` is the size Perplexity reports having
    searched with (it chooses the per-request fee).

    ``stated_cost_usd`` is what the provider says it billed for this call (Perplexity's
    Agent API ``usage.cost.total_cost``, tool fees included; OpenRouter's ``usage.cost``):
    when set, it is the call's cost, not the price row's arithmetic (docs/tracing.md).
    It is not a token count: nothing that sums tokens reads it.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    complete: bool = True
    billed_input_tokens: int | None = None
    billed_output_tokens: int | None = None
    cache_write_1h_tokens: int = 0
    model: str | None = None
    search_context_size: str | None = None
    stated_cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True, frozen=True)
class ToolCall:
    """One complete tool call the model asked for: ``arguments`` parsed from JSON (an
    object; invalid JSON is a :class:`~synapsekit.errors.ToolCallError`, never ``{}``).
    ``index`` is its position among the answer's calls (parallel calls are kept apart by
    it); ``id`` is the provider's (synthesised as ``call_<index>`` by providers that send
    none, e.g. Gemini and Ollama), which the tool result must name."""

    id: str
    name: str
    arguments: Mapping[str, Any]
    index: int = 0


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call. The first delta of an ``index`` carries ``id`` and
    ``name`` (when the provider sends them); ``arguments`` is the next fragment of the JSON
    text. ``done`` closes the call early (Anthropic ``content_block_stop``, Bedrock
    ``contentBlockStop``, a provider that sends whole calls); otherwise every call is closed
    when the stream ends."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    done: bool = False


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed answer.

    ``text`` is answer text; ``reasoning`` is thinking text, never part of the answer.
    ``tool_delta`` is a piece of a tool call (from a provider); ``tool_call`` a completed
    one (from the call path, once its arguments are whole). The last chunk of a stream
    carries ``usage`` and ``finish_reason`` ("stop", "length", "tool_calls",
    "content_filter"), any provider ``metadata`` (e.g. Perplexity's citations,
    ``raw_finish_reason``) and ``provider_data`` (see :class:`ProviderData`).
    """

    text: str = ""
    reasoning: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    metadata: Mapping[str, Any] | None = None
    tool_delta: ToolCallDelta | None = None
    tool_call: ToolCall | None = None
    provider_data: ProviderData | None = None


@dataclass(frozen=True)
class OutputSchema:
    """The JSON Schema an answer must follow (``generate_object``): ``name`` is what
    providers that name schemas get (OpenAI ``json_schema.name``, a forced tool's name);
    ``strict`` asks for the provider's strict mode where it has one."""

    name: str
    schema: Mapping[str, Any]
    strict: bool = True
    description: str = ""


@dataclass
class Response:
    """One whole answer (:meth:`BaseLLM.respond`), read from the same stream as
    ``generate()``. ``finish_reason`` is one of :data:`FINISH_REASONS`; ``message`` is the
    assistant turn to append to the history (tool calls and ``provider_data`` included),
    so the next request -- a tool result, a follow-up -- is accepted as it is."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str = ""
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    cost_usd: float | None = None
    message: Message = field(default_factory=lambda: Message(role="assistant", content=""))
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: ``run_tools``: every turn of the loop (the caller's, the model's, the tools'), in
    #: order, ending with ``message``; empty for a single ``respond()``.
    transcript: list[Message] = field(default_factory=list)


def build_messages(messages: MessagesInput, system_prompt: str | None) -> list[Message]:
    """Validate the caller's prompt or messages and prepend the configured system prompt.

    A prompt string becomes one user message. An explicit system message in the list
    wins over ``system_prompt``. Everything is checked before any request is made, so a
    bad turn costs no tokens and the error says which turn is wrong (a lone surrogate,
    which no SDK can encode, also says where in the text).
    """
    if isinstance(messages, str):
        if not messages.strip():
            raise InvalidInputError("The prompt is empty.")
        _check_text(messages, "The prompt")
        turns: list[Message] = [{"role": "user", "content": messages}]
    else:
        if isinstance(messages, (bytes, Mapping)) or not isinstance(messages, Sequence):
            raise InvalidInputError(
                "messages must be a prompt string or a list of {'role', 'content'} dicts, "
                f"not {type(messages).__name__}."
            )
        if not messages:
            raise InvalidInputError("messages is empty: give at least one user message.")
        turns = [_check_turn(i, m) for i, m in enumerate(messages)]
        if all(t["role"] == "system" for t in turns):
            raise InvalidInputError("messages holds only system messages: add a user message.")
    if system_prompt and turns[0]["role"] != "system":
        _check_text(system_prompt, "system_prompt")
        turns.insert(0, {"role": "system", "content": system_prompt})
    return turns


#: A UTF-16 surrogate code point: not a character, and not encodable as UTF-8 (a lone
#: surrogate comes from ``errors="surrogateescape"`` decoding or a JSON ``"\ud800"`` escape).
_SURROGATE = lazy_pattern("[\ud800-\udfff]")


def _check_text(text: str, what: str) -> None:
    """Refuse text no provider can send: every SDK encodes the request as UTF-8, and a
    surrogate would fail there with a raw ``UnicodeEncodeError`` (or be replaced silently)."""
    if text.isascii():
        return
    found = _SURROGATE().search(text)
    if found is not None:
        raise InvalidInputError(
            f"{what} holds a lone surrogate {found.group()!r} at position {found.start()}: "
            "not valid Unicode text (was it decoded with errors='surrogateescape'?)."
        )


def _check_turn(index: int, turn: Any) -> Message:
    """One caller turn in the canonical shape (see :class:`Message`)."""
    if not isinstance(turn, Mapping):
        raise InvalidInputError(
            f"messages[{index}] must be a dict with 'role' and 'content', "
            f"not {type(turn).__name__}."
        )
    role, content = turn.get("role"), turn.get("content")
    if role not in ROLES:
        raise InvalidInputError(
            f"messages[{index}] has role {role!r}; expected one of: "
            "system, user, assistant, tool."
        )
    where = f"messages[{index}] ({role})"
    calls = _tool_calls(turn.get("tool_calls"), where) if role == "assistant" else []
    if content is None and calls:
        content = ""  # an assistant turn that only calls tools
    if isinstance(content, str):
        if not content.strip() and not calls:
            raise InvalidInputError(f"{where} has empty content.")
        _check_text(content, f"{where} content")
        checked: str | list[Part] = content
    else:
        if role == "system":
            raise InvalidInputError(f"{where} content must be a string.")
        parts = normalize_parts(content, where)
        for part in parts:
            if part["type"] == "text":
                _check_text(part["text"], f"{where} text part")
        checked = parts
    message: Message = {"role": role, "content": checked}
    if calls:
        message["tool_calls"] = calls
    if role == "tool":
        call_id = turn.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidInputError(
                f"{where} needs 'tool_call_id': the id of the tool call it answers."
            )
        message["tool_call_id"] = call_id
    name = turn.get("name")
    if isinstance(name, str) and name and role == "tool":
        message["name"] = name
    data = turn.get("provider_data")
    if role == "assistant" and isinstance(data, Mapping) and "protocol" in data:
        message["provider_data"] = {
            "protocol": str(data["protocol"]),
            "content": data.get("content"),
        }
    return message


def _tool_calls(raw: Any, where: str) -> list[ToolCall]:
    """An assistant turn's tool calls: :class:`ToolCall` s, or OpenAI's dicts
    (``{"id", "type": "function", "function": {"name", "arguments": "<json>"}}``)."""
    if raw is None:
        return []
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Sequence):
        raise InvalidInputError(f"{where} tool_calls must be a list.")
    calls: list[ToolCall] = []
    for i, call in enumerate(raw):
        if isinstance(call, ToolCall):
            calls.append(call)
            continue
        if not isinstance(call, Mapping):
            raise InvalidInputError(f"{where} tool_calls[{i}] must be a ToolCall or a dict.")
        inner = call.get("function")
        function: Mapping[str, Any] = inner if isinstance(inner, Mapping) else call
        name, arguments, call_id = function.get("name"), function.get("arguments"), call.get("id")
        if isinstance(arguments, str):
            import json  # only tool calls given as JSON text need it

            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                raise InvalidInputError(
                    f"{where} tool_calls[{i}] arguments are not valid JSON."
                ) from None
        if not isinstance(name, str) or not name or not isinstance(call_id, str) or not call_id:
            raise InvalidInputError(f"{where} tool_calls[{i}] needs an 'id' and a 'name'.")
        if not isinstance(arguments, Mapping):
            raise InvalidInputError(f"{where} tool_calls[{i}] arguments must be a JSON object.")
        calls.append(ToolCall(call_id, name, dict(arguments), i))
    return calls
