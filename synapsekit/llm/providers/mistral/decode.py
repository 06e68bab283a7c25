"""Mistral's SSE stream -> Chunks: the per-token hot path, kept to dict lookups.

``chat.stream_async`` returns an ``EventStreamAsync`` whose decoder would build a pydantic
``CompletionEvent`` per chunk; it also exposes the undecoded httpx response (``.response``),
so the body is read here as raw SSE bytes and each event parsed with ``json.loads`` -- the
SDK's decoder never runs.

Wire quirks (the simulators' captures/mistral): usage rides on the last content chunk, the one with
``finish_reason`` (the last report wins); a random ``"p"`` padding field is ignored;
reasoning models (Magistral) send ``delta.content`` as a list of ``thinking`` parts (each
holding text parts) and ``text`` parts; ``finish_reason`` ``model_length`` means
``length`` and ``error`` is a failure; a stream must end with ``data: [DONE]``; an
``{"object": "error", ...}`` event mid-stream is an error. Tool calls: see :class:`_Calls`
(whole calls without ``index``, or pieces with one). The final chunk carries
``metadata["raw_finish_reason"]`` and, after thinking, ``provider_data`` (see
:class:`_Thinking`). Tool-call arguments are passed on as text, never parsed here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from synapsekit.errors import ServerError
from synapsekit.llm.providers._errors import ErrorMapper, Failure
from synapsekit.llm.sse import iter_sse, json_event
from synapsekit.llm.types import Chunk, ProviderData, ToolCallDelta, Usage

from .errors import describe, request_id

__all__ = ["parse"]

_DONE = b"[DONE]"
_FINISH = {"model_length": "length"}


async def parse(response: Any, errors: ErrorMapper) -> AsyncGenerator[Chunk, None]:
    """Chunks from the raw SSE body of one answer."""
    usage: dict[str, Any] | None = None
    finish: str | None = None
    done = False
    calls = _Calls()
    thinking: _Thinking | None = None
    response_id: Any = None
    errors.request_id = request_id(response.headers)
    async for _, data in iter_sse(response.aiter_bytes()):
        if data == _DONE or done:  # read on to the body's end: the connection is reused
            done = True
            continue
        event = json_event(data, errors)
        if response_id is None:
            response_id = event.get("id")  # every chunk repeats the completion's id
        choices = event.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    if content.__class__ is str:
                        if thinking is not None:
                            thinking.text.append(content)
                        yield Chunk(content)
                    else:  # a list of text / thinking parts (reasoning models)
                        if thinking is None:
                            thinking = _Thinking()
                        for chunk in thinking.chunks(content):
                            yield chunk
                tool_calls = delta.get("tool_calls")
                if tool_calls:
                    for tool_delta in calls.deltas(tool_calls):
                        yield Chunk(tool_delta=tool_delta)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        elif choices is None and ("message" in event or "error" in event or "detail" in event):
            message, code, kind = describe(event.get("error", event), "")
            raise errors.error(Failure(None, message, (code, kind)))
        if event.get("usage"):
            usage = event["usage"]
    if finish == "error":
        raise errors.error(Failure(
            None, "Mistral stopped the answer with finish_reason 'error'.", ("error",),
            cls=ServerError,
        ))
    if not done:
        raise errors.cut("'data: [DONE]'")
    normal = _FINISH.get(finish, finish) if finish is not None else None
    if calls.count and normal in (None, "stop"):
        normal = "tool_calls"  # the answer ends with tool calls, whatever the wire said
    yield Chunk(
        usage=_usage(usage) if usage else None,
        finish_reason=normal,
        metadata={"raw_finish_reason": finish, **_id(response_id)},
        provider_data=thinking.provider_data() if thinking is not None else None,
    )


class _Calls:
    """Tool-call deltas from ``delta.tool_calls``, indexed by their position in the answer.

    Mistral sends a call whole in one chunk, usually without ``index``
    (stream_tool_call_realcapture.sse), several calls of one chunk side by side; some
    models stream a call in pieces, each with its ``index`` and the id only on the first
    (the SDK's ToolCall defaults ``index`` to 0). So: an id not seen before starts a new
    call; a piece without an id continues the call of its wire ``index``, or, without
    one, the last call. A call without any id gets ``call_<index>`` (encode turns it into
    a 9-character Mistral id when it goes back).
    """

    __slots__ = ("by_id", "by_wire", "count", "last")

    def __init__(self) -> None:
        self.by_id: dict[str, int] = {}
        self.by_wire: dict[int, int] = {}
        self.count = 0
        self.last: int | None = None

    def deltas(self, raw: list[Any]) -> list[ToolCallDelta]:
        out: list[ToolCallDelta] = []
        for call in raw:
            if call.__class__ is not dict:
                continue  # not a call: nothing to take from it
            function = call.get("function")
            if function.__class__ is not dict:
                function = {}
            arguments = function.get("arguments")
            if arguments is None:
                arguments = ""
            elif arguments.__class__ is not str:  # the SDK allows an object
                arguments = json.dumps(arguments)
            call_id = call.get("id")
            if call_id in ("", "null"):
                call_id = None
            wire = call.get("index")
            if call_id is not None and call_id in self.by_id:
                index = self.by_id[call_id]
            elif call_id is None and wire is not None and wire in self.by_wire:
                index = self.by_wire[wire]
            elif call_id is None and wire is None and self.last is not None:
                index = self.last
            else:  # a new call
                index = self.count
                self.count += 1
                call_id = call_id or f"call_{index}"
                self.by_id[call_id] = index
                if wire is not None:
                    self.by_wire[wire] = index
                self.last = index
                out.append(ToolCallDelta(index, call_id, function.get("name") or None,
                                         arguments))
                continue
            if wire is not None:
                self.by_wire[wire] = index
            self.last = index
            if arguments:
                out.append(ToolCallDelta(index, arguments=arguments))
        return out


class _Thinking:
    """The reasoning of an answer: its chunks, and the native content the next turn may
    send back (thinking with any ``signature``, then the text), as ``provider_data``."""

    __slots__ = ("reasoning", "signature", "text")

    def __init__(self) -> None:
        self.reasoning: list[str] = []
        self.text: list[str] = []
        self.signature: str | None = None

    def chunks(self, parts: list[Any]) -> list[Chunk]:
        """``[{"type": "thinking", "thinking": [{"type": "text", ...}]}, {"type": "text"}]``."""
        chunks: list[Chunk] = []
        for part in parts:
            kind = part.get("type")
            if kind == "text" and part.get("text"):
                self.text.append(part["text"])
                chunks.append(Chunk(part["text"]))
            elif kind == "thinking":
                if part.get("signature"):
                    self.signature = part["signature"]
                inner = part.get("thinking")
                for piece in [inner] if isinstance(inner, str) else inner or ():
                    text = piece if isinstance(piece, str) else piece.get("text")
                    if text:
                        self.reasoning.append(text)
                        chunks.append(Chunk(reasoning=text))
        return chunks

    def provider_data(self) -> ProviderData | None:
        if not self.reasoning and self.signature is None:
            return None
        block: dict[str, Any] = {
            "type": "thinking", "thinking": [{"type": "text", "text": "".join(self.reasoning)}],
        }
        if self.signature is not None:
            block["signature"] = self.signature
        content: list[dict[str, Any]] = [block]
        if self.text:
            content.append({"type": "text", "text": "".join(self.text)})
        return {"protocol": "mistral", "content": content}


def _usage(raw: dict[str, Any]) -> Usage:
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_input_tokens=details.get("cached_tokens") or raw.get("num_cached_tokens") or 0,
    )


def _id(response_id: Any) -> dict[str, Any]:
    """The completion's id as call metadata (``gen_ai.response.id``), when it came."""
    return {"response_id": response_id} if response_id else {}
