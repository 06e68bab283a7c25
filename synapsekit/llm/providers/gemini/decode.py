"""The Gemini stream (``GenerateContentResponse`` objects) -> Chunks.

Why SDK objects here, unlike the other providers: ``google-genai`` offers no raw access to a
streamed body (``should_return_http_response`` is refused for streams; the SSE reader lives in
private classes), so each chunk arrives as a ``GenerateContentResponse`` model. Reading its
fields is the one supported way; bypassing the SDK would mean re-implementing its request
building and auth, which is what we use it for.

Wire quirks: thought-summary parts (``thought: true``) go to ``Chunk.reasoning``;
``usageMetadata`` is cumulative on every chunk, so the last one wins; output tokens are
``candidatesTokenCount + thoughtsTokenCount`` (thoughts are billed as output and
``totalTokenCount`` includes them); there is no terminator, so a stream is complete only when
a chunk carried a ``finishReason`` (else :class:`~synapsekit.errors.ConnectionError`); a
safety finish or ``promptFeedback.blockReason`` is a ContentFilterError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from synapsekit.errors import ContentFilterError
from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.types import Chunk, Usage

__all__ = ["FILTERED", "FINISH_REASONS", "decode"]

#: finishReason -> the finish reasons every provider uses; others are kept, lower-cased.
FINISH_REASONS: dict[str, str] = {"STOP": "stop", "MAX_TOKENS": "length"}
#: finishReasons that mean a safety or policy filter stopped the answer.
FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})


async def decode(
    stream: AsyncIterator[Any], errors: ErrorMapper, provider: str, model: str
) -> AsyncIterator[Chunk]:
    """Chunks from the SDK's responses; the final chunk carries usage and the finish."""
    usage: Any = None
    finish: str | None = None
    metadata: dict[str, Any] = {}
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
            if part.text:
                yield Chunk(reasoning=part.text) if part.thought else Chunk(part.text)
        if candidate.finish_reason:
            finish = _name(candidate.finish_reason)
    if finish is None:
        raise errors.cut("finishReason")
    if finish in FILTERED:
        raise filtered(finish, provider, model, "answer")
    yield Chunk(
        usage=usage_of(usage) if usage is not None else None,
        finish_reason=FINISH_REASONS.get(finish, finish.lower()),
        metadata=metadata or None,
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
