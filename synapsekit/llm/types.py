"""The small value types that cross the provider boundary: Message, Chunk, Usage.

A provider's stream yields :class:`Chunk` objects: text deltas (and reasoning deltas,
kept apart from the answer), then one final chunk carrying :class:`Usage` and the finish
reason. They are slotted dataclasses because one is built per token on the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Union

from synapsekit.errors import InvalidInputError

__all__ = ["ROLES", "Chunk", "Message", "MessagesInput", "Usage", "build_messages"]

Role = Literal["system", "user", "assistant"]
ROLES: frozenset[str] = frozenset(("system", "user", "assistant"))


class Message(TypedDict):
    """One chat turn, in the shape every provider adapter receives."""

    role: Role
    content: str


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

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed answer.

    ``text`` is answer text; ``reasoning`` is thinking text, never part of the answer.
    The last chunk of a stream carries ``usage`` and ``finish_reason`` ("stop",
    "length", "tool_calls", "content_filter", ...) and any provider ``metadata``
    (e.g. Perplexity's citations).
    """

    text: str = ""
    reasoning: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    metadata: Mapping[str, Any] | None = None


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
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(text: str, what: str) -> None:
    """Refuse text no provider can send: every SDK encodes the request as UTF-8, and a
    surrogate would fail there with a raw ``UnicodeEncodeError`` (or be replaced silently)."""
    if text.isascii():
        return
    found = _SURROGATE.search(text)
    if found is not None:
        raise InvalidInputError(
            f"{what} holds a lone surrogate {found.group()!r} at position {found.start()}: "
            "not valid Unicode text (was it decoded with errors='surrogateescape'?)."
        )


def _check_turn(index: int, turn: Any) -> Message:
    if not isinstance(turn, Mapping):
        raise InvalidInputError(
            f"messages[{index}] must be a dict with 'role' and 'content', "
            f"not {type(turn).__name__}."
        )
    role, content = turn.get("role"), turn.get("content")
    if role not in ROLES:
        raise InvalidInputError(
            f"messages[{index}] has role {role!r}; expected one of: system, user, assistant."
        )
    if not isinstance(content, str):
        raise InvalidInputError(
            f"messages[{index}] content must be a string, not {type(content).__name__}."
        )
    if not content.strip():
        raise InvalidInputError(f"messages[{index}] ({role}) has empty content.")
    _check_text(content, f"messages[{index}] ({role}) content")
    return {"role": role, "content": content}
