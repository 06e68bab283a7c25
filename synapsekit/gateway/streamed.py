"""What every chat wire does to send a streamed answer: :func:`stream_answer`.

Why shared: the OpenAI and Anthropic wires differ in the events they render, not in how a
stream is opened and closed, and both must get two things right the same way:

* the first chunk is awaited before the headers go, so a refusal or an upstream failure
  before any token is an HTTP error status in the API's own shape, not a broken 200;
* the body is closed however the response ends (answered, failed, the client gone), so
  the core's one ledger row is written then and the upstream connection closed at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

from starlette.responses import Response

from synapsekit.gateway.http import EventStream
from synapsekit.gateway.types import GatewayError, GatewayRequest, KeyInfo
from synapsekit.llm.types import Chunk

if TYPE_CHECKING:
    from synapsekit.gateway.core import Gateway

__all__ = ["Render", "stream_answer"]

#: A wire's renderer: (the first chunk or None, the rest) -> its SSE events as bytes.
Render = Callable[[Chunk | None, AsyncIterator[Chunk]], AsyncGenerator[bytes, None]]


async def stream_answer(
    gateway: Gateway, req: GatewayRequest, key: KeyInfo, render: Render,
    refuse: Callable[[GatewayError], Response], headers: Mapping[str, str],
) -> Response:
    """The streamed response for ``req``: ``render``'s events, or ``refuse(err)`` when
    the answer failed before its first chunk."""
    chunks = gateway.chat(req, key)
    try:
        first: Chunk | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except GatewayError as err:
        return refuse(err)
    return EventStream(
        _closing(render(first, chunks), chunks), media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
    )


async def _closing(
    events: AsyncGenerator[bytes, None], chunks: AsyncGenerator[Chunk, None]
) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield event
    finally:  # the client left, or the answer ended: the core's row is written now
        await events.aclose()
        await chunks.aclose()
