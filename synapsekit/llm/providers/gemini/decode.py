"""The Gemini stream (SSE events, ``GenerateContentResponse`` in proto JSON) -> Chunks.

The events are read raw (:func:`events`): the body of the 200 stream is taken from the
SDK by the connection's response hook (see :mod:`synapsekit.llm.providers._raw_body`), split by
:func:`synapsekit.llm.sse.iter_sse` and parsed with one ``json`` call each, as on every
other SSE protocol. google-genai's per-chunk pydantic objects cost about five times that.
When the SDK kept the body after all (a version that no longer sends through our client),
its objects are turned back into the same wire dicts, so there is one decoder either way.

Wire quirks: thought-summary parts (``thought: true``) go to ``Chunk.reasoning``;
function calls arrive whole (``functionCall {name, args, id?}``, args never fragmented): each
is one ``ToolCallDelta`` with ``done=True``, ``index`` counted across the answer, ``id`` the
wire's when Gemini sends one, else ``call_<index>`` (the arguments are passed on as JSON text:
the call path parses them); the answer's parts are kept as they came (``thoughtSignature`` s
as the wire's base64 text) and returned as ``provider_data`` when a signature or a call is
among them, so the next turn can send them back verbatim; ``finishReason`` STOP with calls is
"tool_calls", the safety family a ContentFilterError, MALFORMED_FUNCTION_CALL a
ToolCallError (with ``finishMessage`` as the raw text); an ``{"error": {...}}`` event inside
the 200 stream is raised as the SDK's ``APIError``, so it is mapped as the SDK would have it;
``usageMetadata`` is cumulative on every chunk, so the last one wins; output tokens are
``candidatesTokenCount + thoughtsTokenCount`` (thoughts are billed as output and
``totalTokenCount`` includes them); there is no terminator, so a stream is complete only when
a chunk carried a ``finishReason`` (else :class:`~synapsekit.errors.ConnectionError`); a
safety finish or ``promptFeedback.blockReason`` is a ContentFilterError.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from synapsekit.errors import ContentFilterError, ToolCallError
from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.sse import iter_sse, json_event
from synapsekit.llm.types import Chunk, ProviderData, ToolCallDelta, Usage

if TYPE_CHECKING:
    from synapsekit.llm.providers._raw_body import Call

__all__ = ["FILTERED", "FINISH_REASONS", "TOOL_ERRORS", "decode", "events"]

#: finishReason -> the finish reasons every provider uses; any other (OTHER, LANGUAGE...)
#: is "stop", the raw value kept in ``metadata["raw_finish_reason"]``.
FINISH_REASONS: dict[str, str] = {"STOP": "stop", "MAX_TOKENS": "length"}
#: finishReasons that mean a safety or policy filter stopped the answer.
FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})
#: finishReasons that mean the model's function call could not be taken.
TOOL_ERRORS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})


async def events(
    stream: AsyncIterator[Any], call: Call, sdk: Any, errors: ErrorMapper
) -> AsyncIterator[dict[str, Any]]:
    """The stream's events as wire dicts.

    The SDK's ``stream`` is driven first: its first step sends the request, and it yields
    nothing when the connection took the body (``call.body``), which is then read here:
    split by :func:`iter_sse`, one ``json`` parse per event; an ``{"error": ...}`` event
    raises the SDK's ``APIError`` as google-genai's own reader does (``errors`` maps it),
    anything that is not a JSON object is ``errors.malformed``. When the SDK kept the body,
    its ``GenerateContentResponse`` objects are dumped back to the wire's camelCase
    (signatures stay bytes, enums their members)."""
    async for response in stream:  # nothing when the body was taken
        yield response.model_dump(by_alias=True, exclude_none=True, exclude=_SDK_ONLY)
    body = call.body
    if body is None:
        return
    raise_error = sdk.errors.APIError.raise_error
    async for _event, data in iter_sse(body.aiter_bytes()):
        event = json_event(data, errors)
        if "error" in event:
            error = event["error"]
            code = error.get("code") if isinstance(error, dict) else None
            raise_error(code if isinstance(code, int) else 500, event, body)
        yield event


#: Fields of the SDK's response object that are not on the wire.
_SDK_ONLY = {"sdk_http_response", "automatic_function_calling_history", "parsed"}


async def decode(
    events: AsyncIterator[dict[str, Any]], errors: ErrorMapper, provider: str, model: str
) -> AsyncIterator[Chunk]:
    """Chunks from the stream's events; the final chunk carries usage, the finish and the
    parts to send back (``provider_data``)."""
    usage: dict[str, Any] | None = None
    finish: str | None = None
    finish_message: str | None = None
    metadata: dict[str, Any] = {}
    parts: list[dict[str, Any]] = []  # the answer's parts, wire shape, for provider_data
    calls = 0
    signed = False
    async for event in events:
        feedback = event.get("promptFeedback")
        if feedback is not None and feedback.get("blockReason"):
            raise filtered(_name(feedback["blockReason"]), provider, model, "prompt")
        found = event.get("usageMetadata")
        candidates = event.get("candidates")
        if found is not None:
            usage = found
        elif not candidates and feedback is None:
            # a real event always has one of these (an SDK object made of ``[]`` or
            # ``null`` has none)
            raise errors.malformed("an event without candidates, usage or prompt feedback")
        if "responseId" in event:
            metadata["response_id"] = event["responseId"]
        if "modelVersion" in event:
            metadata["model_version"] = event["modelVersion"]
        if not candidates:
            continue
        candidate = candidates[0]
        content = candidate.get("content")
        for part in (content.get("parts") if content else None) or ():
            signature = part.get("thoughtSignature")
            call = part.get("functionCall")
            thought = bool(part.get("thought"))
            if call is not None:
                args = call.get("args") or {}
                wire: dict[str, Any] = {"name": call.get("name"), "args": args}
                if call.get("id"):
                    wire["id"] = call["id"]
                kept: dict[str, Any] = {"functionCall": wire}
                yield Chunk(tool_delta=ToolCallDelta(
                    calls, call.get("id") or f"call_{calls}", call.get("name") or "",
                    json.dumps(args), done=True,
                ))
                calls += 1
            elif "text" in part:
                text = part["text"]
                if text:
                    yield Chunk(reasoning=text) if thought else Chunk(text)
                last = parts[-1] if parts else None
                if (signature is None and last is not None and "text" in last
                        and "thoughtSignature" not in last
                        and bool(last.get("thought")) == thought):
                    last["text"].append(text)  # one part per stretch of text (joined below)
                    continue
                kept = {"text": [text], "thought": True} if thought else {"text": [text]}
            else:
                continue  # a part we do not send back (executable code, media out...)
            if signature is not None:
                kept["thoughtSignature"] = (
                    signature if isinstance(signature, str)
                    else base64.b64encode(signature).decode("ascii")
                )
                signed = True
            parts.append(kept)
        if candidate.get("finishReason"):
            finish = _name(candidate["finishReason"])
            finish_message = candidate.get("finishMessage")
    if finish is None:
        raise errors.cut("finishReason")
    if finish in FILTERED:
        raise filtered(finish, provider, model, "answer")
    if finish in TOOL_ERRORS:
        raise ToolCallError(
            f"Gemini could not make the function call ({finish}): {finish_message or ''}".strip(),
            raw_arguments=finish_message or "", provider=provider, model=model, code=finish,
        )
    metadata["raw_finish_reason"] = finish
    data: ProviderData | None = None
    if signed or calls:  # something the next turn must send back as it came
        for kept in parts:
            if "text" in kept:
                kept["text"] = "".join(kept["text"])
        data = {"protocol": "gemini", "content": parts}
    yield Chunk(
        usage=usage_of(usage) if usage is not None else None,
        finish_reason="tool_calls" if calls and finish == "STOP"
        else FINISH_REASONS.get(finish, "stop"),
        metadata=metadata,
        provider_data=data,
    )


def filtered(reason: str, provider: str, model: str, what: str) -> ContentFilterError:
    return ContentFilterError(
        f"Gemini blocked the {what}: {reason}.", provider=provider, model=model, code=reason
    )


def _name(value: Any) -> str:
    """An SDK enum member (or an unknown value the SDK kept as a string) as its wire name."""
    return str(getattr(value, "value", value))


def usage_of(meta: dict[str, Any]) -> Usage:
    """``usageMetadata`` (the last one: it is cumulative) as the call's usage."""
    thoughts = meta.get("thoughtsTokenCount") or 0
    return Usage(
        input_tokens=(meta.get("promptTokenCount") or 0)
        + (meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=(meta.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=meta.get("cachedContentTokenCount") or 0,
        reasoning_tokens=thoughts,
    )
