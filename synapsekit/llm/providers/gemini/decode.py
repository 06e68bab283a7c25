"""The Gemini stream (``GenerateContentResponse`` objects) -> Chunks.

Why SDK objects here, unlike the other providers: ``google-genai`` offers no raw access to a
streamed body (``should_return_http_response`` is refused for streams; the SSE reader lives in
private classes), so each chunk arrives as a ``GenerateContentResponse`` model. Reading its
fields is the one supported way; bypassing the SDK would mean re-implementing its request
building and auth, which is what we use it for.

Wire quirks: thought-summary parts (``thought: true``) go to ``Chunk.reasoning``;
function calls arrive whole (``functionCall {name, args, id?}``, args never fragmented): each
is one ``ToolCallDelta`` with ``done=True``, ``index`` counted across the answer, ``id`` the
wire's when Gemini sends one, else ``call_<index>`` (the arguments are passed on as JSON text:
the call path parses them); the answer's parts are kept as they came (``thoughtSignature`` s
as base64 text) and returned as ``provider_data`` when a signature or a call is among them,
so the next turn can send them back verbatim; ``finishReason`` STOP with calls is
"tool_calls", the safety family a ContentFilterError, MALFORMED_FUNCTION_CALL a
ToolCallError (with ``finishMessage`` as the raw text when the SDK passes it on: google-genai's
Developer-API converter drops it today);
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
from typing import Any

from synapsekit.errors import ContentFilterError, ToolCallError
from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.types import Chunk, ProviderData, ToolCallDelta, Usage

__all__ = ["FILTERED", "FINISH_REASONS", "TOOL_ERRORS", "decode"]

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


async def decode(
    stream: AsyncIterator[Any], errors: ErrorMapper, provider: str, model: str
) -> AsyncIterator[Chunk]:
    """Chunks from the SDK's responses; the final chunk carries usage, the finish and the
    parts to send back (``provider_data``)."""
    usage: Any = None
    finish: str | None = None
    finish_message: str | None = None
    metadata: dict[str, Any] = {}
    parts: list[dict[str, Any]] = []  # the answer's parts, wire shape, for provider_data
    calls = 0
    signed = False
    async for response in stream:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason:
            raise filtered(_name(feedback.block_reason), provider, model, "prompt")
        if response.usage_metadata is not None:
            usage = response.usage_metadata
        elif not response.candidates and feedback is None:
            # The SDK turns an event that is not an object ([] / null) into an empty
            # response; a real event always has one of these.
            raise errors.malformed("an event that is not a JSON object")
        if response.response_id:
            metadata["response_id"] = response.response_id
        if response.model_version:
            metadata["model_version"] = response.model_version
        if not response.candidates:
            continue
        candidate = response.candidates[0]
        content = candidate.content
        for part in (content.parts if content is not None else None) or ():
            signature = part.thought_signature
            call = part.function_call
            if call is not None:
                args = call.args or {}
                wire: dict[str, Any] = {"name": call.name, "args": args}
                if call.id:
                    wire["id"] = call.id
                kept: dict[str, Any] = {"functionCall": wire}
                yield Chunk(tool_delta=ToolCallDelta(
                    calls, call.id or f"call_{calls}", call.name, json.dumps(args), done=True
                ))
                calls += 1
            elif part.text is not None:
                text = part.text
                if text:
                    yield Chunk(reasoning=text) if part.thought else Chunk(text)
                last = parts[-1] if parts else None
                if (signature is None and last is not None and "text" in last
                        and "thoughtSignature" not in last
                        and bool(last.get("thought")) == bool(part.thought)):
                    last["text"].append(text)  # one part per stretch of text (joined below)
                    continue
                kept = {"text": [text], "thought": True} if part.thought else {"text": [text]}
            else:
                continue  # a part we do not send back (executable code, media out...)
            if signature is not None:
                kept["thoughtSignature"] = base64.b64encode(signature).decode("ascii")
                signed = True
            parts.append(kept)
        if candidate.finish_reason:
            finish = _name(candidate.finish_reason)
            finish_message = getattr(candidate, "finish_message", None)
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


def usage_of(meta: Any) -> Usage:
    thoughts = meta.thoughts_token_count or 0
    return Usage(
        input_tokens=(meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0),
        output_tokens=(meta.candidates_token_count or 0) + thoughts,
        cached_input_tokens=meta.cached_content_token_count or 0,
        reasoning_tokens=thoughts,
    )
