"""HTTP helpers both wires share: the caller's key from the headers, the body read under
the size limit and parsed, and the ``Retry-After`` header of an error.

Why not starlette's ``request.json()``: it reads any size and raises a bare ValueError;
the gateway must refuse a body over ``max_body_bytes`` with 413 before holding it all, and
name the problem in the API's own error body (each wire renders the GatewayError).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from synapsekit.gateway.types import GatewayError

__all__ = ["EventStream", "error_headers", "read_json", "secret_from"]


def secret_from(request: Request) -> str | None:
    """The virtual key: ``Authorization: Bearer <key>``, else ``x-api-key`` / ``api-key``
    (what the Anthropic and Azure SDKs send). Never from the URL."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or request.headers.get("api-key") or None


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object: 413 over ``limit`` bytes (checked on the
    declared length first, then while reading), 400 when it is not a JSON object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_big(limit)
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise _too_big(limit)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GatewayError(
            400, "invalid_json",
            f"We could not parse the JSON body of your request: {exc}.",
        ) from None
    if not isinstance(data, dict):
        raise GatewayError(400, "invalid_json", "The request body must be a JSON object.")
    return data


def error_headers(err: GatewayError) -> dict[str, str]:
    """``Retry-After`` (whole seconds, rounded up, as HTTP has it) and ``retry-after-ms``
    (what the openai SDK reads first) when the error carries a wait."""
    if err.retry_after is None:
        return {}
    wait = max(0.0, err.retry_after)
    return {"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(round(wait * 1000))}


class EventStream(StreamingResponse):
    """A streamed response that writes together the events that are ready together, and
    closes its body iterator however the response ends.

    The first item goes out at once, from the response's own task, before anything else
    is produced: the wires make it the opening event(s) and the first chunk's, so the
    answer's first token leaves with (right after) the headers. Coalesced with what
    follows, it would wait for the producer to run through all the upstream's read
    brought -- a whole 50-token answer, when the upstream sent it in one burst: ~3 ms.

    Coalescing, after the first item: the rest of the body is produced in a task of its
    own; the sender takes every event queued by the time it runs and sends them in one
    write. With an upstream that spaces its tokens this is one event a write (each event
    waits for nothing); when the upstream's read brought many events at once -- a fast
    model, a burst after a stall -- they leave in one write instead of one system call
    each.

    Closing: Starlette stops iterating when the client disconnects but leaves the
    generator suspended for the garbage collector; here the producer is cancelled and the
    generator closed at once, so an abandoned stream's ledger row (status 499) is written
    when the client leaves and the upstream connection closed then.

    Listening for the disconnect: a server of ASGI spec < 2.4 (uvicorn's HTTP) says
    nothing when the client leaves, its sends just go nowhere. Starlette then runs the
    response in an anyio task group, the body in a task of its own beside a listener: a
    turn of the event loop and ~0.1 ms of CPU before the first write. Here the body starts
    in the request's own task and one small task listens (:meth:`_watch`); when the
    client leaves it stops the producer, and the response ends without its last write.
    """

    #: Events queued ahead of a slow client before the producer waits (backpressure).
    AHEAD = 256

    _producer: asyncio.Task[None] | None = None
    _left = False  # the client disconnected (spec < 2.4: seen by _watch)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            spec = scope.get("asgi", {}).get("spec_version", "2.0")
            if tuple(map(int, spec.split("."))) >= (2, 4):  # its sends raise on a disconnect
                await super().__call__(scope, receive, send)
                return
            watcher = asyncio.create_task(self._watch(receive))
            try:
                await self.stream_response(send)
            finally:
                watcher.cancel()
            if self.background is not None:
                await self.background()
        finally:
            # A producer still running was cancelled: the CancelledError raised inside
            # the body closes it in its own task. Otherwise close the body here.
            producer = self._producer
            closing = getattr(self.body_iterator, "aclose", None)
            if closing is not None and (producer is None or producer.done()):
                await closing()

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._left = True
        if self._producer is not None:
            self._producer.cancel()

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        body = aiter(self.body_iterator)  # (the producer goes on with the same iterator)
        try:
            first = await anext(body)
        except StopAsyncIteration:
            first = None
        if first is None:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send({"type": "http.response.body", "body": self._bytes(first),
                    "more_body": True})
        if self._left:
            return
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()  # (bounded by `room`)
        room = asyncio.Event()

        async def produce() -> None:
            try:
                async for event in body:
                    queue.put_nowait(self._bytes(event))
                    if queue.qsize() >= self.AHEAD:  # a slow client: wait for it
                        room.clear()
                        await room.wait()
            finally:
                queue.put_nowait(None)  # never blocks: the sender always learns the end

        producer = self._producer = asyncio.create_task(produce())
        try:
            done = False
            while not done:
                parts = [await queue.get()]
                while not queue.empty():
                    parts.append(queue.get_nowait())
                room.set()
                if parts[-1] is None:
                    done = True
                    parts.pop()
                if parts:
                    data = b"".join(p for p in parts if p is not None)
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            if self._left and producer.cancelled():
                return  # (stopped by _watch: nobody to send the end to)
            await producer  # its failure, if any, is the response's
        finally:
            if not producer.done():
                producer.cancel()
                # Wait for the body to close (the ledger row is written then). If this
                # task is itself cancelled (Starlette's disconnect listener), that
                # cancellation goes on and the producer finishes on its own.
                await asyncio.wait([producer])
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _bytes(self, event: str | bytes | memoryview) -> bytes:
        if isinstance(event, bytes):
            return event
        return bytes(event) if isinstance(event, memoryview) else event.encode(self.charset)


def _too_big(limit: int) -> GatewayError:
    return GatewayError(
        413, "request_too_large",
        f"The request body is larger than this gateway accepts ({limit:,} bytes).",
    )
