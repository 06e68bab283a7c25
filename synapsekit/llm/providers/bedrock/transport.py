"""Bedrock's async transport: boto3 builds and signs the request, aiohttp sends it on the
event loop, the answer's event-stream frames are read as they arrive. No thread per stream.

Why not boto3's own send: it blocks (urllib3), so an asyncio caller reads each stream on a
thread of its own (1,000 streams, 1,000 threads) and hands every event back to the loop.
aiobotocore, botocore's async port, pins botocore to a narrow range behind boto3's (3.10
wants botocore < 1.43.118; the ``bedrock`` extra's floor is boto3 1.44) and measured 1.2x
boto3's client CPU; httpx's async read of the same body measured 3x urllib3's, aiohttp's
1.2-1.3x (see docs/performance.md). So:

- **prepare** (:func:`prepare`): ``client.converse_stream(**request)`` runs botocore's whole
  request pipeline -- parameter validation, serialisation, the endpoint rules, the auth
  scheme (SigV4 with the credential chain's current keys, or a Bedrock API key as a bearer
  token), the extra-headers handler -- up to its ``before-send`` event, where the handler
  :func:`install` registered takes the signed request and answers botocore with an empty
  200 (moto's way of standing in for the network): nothing is sent there. Signing reads the
  credentials; when botocore would refresh them first (an assumed role near its expiry:
  a network call), this runs on a worker thread, else on the loop (about 0.5 ms).
- **send** (:func:`send`): aiohttp, one ``ClientSession`` per loop (see
  :class:`~.connection.BedrockConnection`), to the URL exactly as botocore encoded and
  signed it.
- **read** (:func:`events`): :mod:`.frames` splits the frames and checks both CRCs of each
  (as ``botocore.eventstream`` does, at a fraction of its cost); an ``event`` message is
  ``{event-type: JSON payload}``, what botocore's parser returns minus its walk over the
  shape (the decoder reads only fields botocore keeps: a blob such as ``redactedContent``
  stays base64 text). An ``exception`` or
  ``error`` message, and any status but 200, are parsed by botocore's own parsers into its
  ``EventStreamError`` / ``ClientError``, so the one error table maps them as before.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.providers.bedrock.frames import FrameError, Reader

__all__ = ["OPERATION", "events", "install", "prepare", "send", "status_error"]

OPERATION = "ConverseStream"

#: The signed requests botocore handed to ``before-send`` in this context (one per prepare).
_TAKEN: ContextVar[list[Any] | None] = ContextVar("synapsekit_bedrock_taken", default=None)


class _NoBody:
    """The body of the empty 200 botocore is answered with (never read)."""

    def stream(self, *_args: Any, **_kwargs: Any) -> Any:
        return iter(())

    def close(self) -> None:
        pass


def _take(request: Any, **_: Any) -> Any:
    """botocore's ``before-send`` handler: keep a :func:`prepare`'s signed request and
    answer for the network; any other caller's request (none here) is sent as usual."""
    taken = _TAKEN.get()
    if taken is None:
        return None
    from botocore.awsrequest import AWSResponse

    taken.append(request)
    return AWSResponse(request.url, 200, {}, _NoBody())


def install(client: Any) -> None:
    """Register :func:`_take` on a new boto3 ``bedrock-runtime`` client."""
    client.meta.events.register(f"before-send.bedrock-runtime.{OPERATION}", _take)


def _signed(client: Any, request: dict[str, Any]) -> Any:
    taken: list[Any] = []
    token = _TAKEN.set(taken)
    try:
        client.converse_stream(**request)
    finally:
        _TAKEN.reset(token)
    if not taken:  # a client without our handler would have sent it itself
        raise RuntimeError("botocore sent ConverseStream without handing it to synapsekit")
    return taken[0]


async def prepare(client: Any, request: dict[str, Any], credentials: Any) -> Any:
    """botocore's signed ``AWSPreparedRequest`` for ``request`` (see the module docstring):
    on the loop, or on a worker thread when signing would first refresh ``credentials``."""
    refresh_needed = getattr(credentials, "refresh_needed", None)
    if callable(refresh_needed) and refresh_needed():
        return await asyncio.to_thread(_signed, client, request)
    return _signed(client, request)


def send(session: Any, prepared: Any, proxy: str | None) -> Any:
    """The aiohttp request for botocore's prepared one (``async with`` it): the URL taken as
    already encoded (re-quoting it would break the signature), header values as text."""
    from yarl import URL

    headers = {
        name: value.decode("latin-1") if isinstance(value, bytes) else value
        for name, value in prepared.headers.items()
    }
    return session.request(
        prepared.method, URL(prepared.url, encoded=True), data=prepared.body, headers=headers,
        proxy=proxy,
    )


async def status_error(client: Any, response: Any) -> Exception:
    """botocore's ``ClientError`` (its modelled subclass) for an error status, parsed from
    the body and headers by botocore's own parser, as ``converse_stream`` would raise it."""
    from botocore.awsrequest import HeadersDict
    from botocore.parsers import create_parser

    body = await response.read()
    service = client.meta.service_model
    parsed = create_parser(service.protocol).parse(
        {"status_code": response.status, "headers": HeadersDict(response.headers.items()),
         "body": body},
        service.operation_model(OPERATION).output_shape,
    )
    code = (parsed.get("Error") or {}).get("Code")
    error: Exception = client.exceptions.from_code(code)(parsed, OPERATION)
    return error


_decode = json.JSONDecoder().decode


async def events(
    client: Any, response: Any, errors: ErrorMapper
) -> AsyncIterator[dict[str, Any]]:
    """The stream's events (``{"contentBlockDelta": {...}}``...), read to the body's end."""
    reader = Reader()
    async for piece in response.content.iter_any():
        try:
            for headers, payload in reader.feed(piece):
                kind = headers.get(":message-type")
                if kind == "exception" or kind == "error":
                    raise _stream_error(client, headers, payload)
                try:
                    event = _decode(payload.decode()) if payload else {}
                except ValueError:  # UnicodeDecodeError included
                    event = None
                if type(event) is not dict:
                    raise errors.malformed(f"{headers.get(':event-type')}: {payload[:200]!r}")
                yield {headers.get(":event-type", ""): event}
        except FrameError as exc:
            raise errors.malformed(f"event stream: {exc}") from None


def _stream_error(client: Any, headers: dict[str, Any], payload: bytes) -> Exception:
    """botocore's ``EventStreamError`` for an in-stream exception or error message, parsed
    as botocore's ``EventStream`` parses it (status 400, the message's headers and body)."""
    from botocore.exceptions import EventStreamError
    from botocore.parsers import EventStreamJSONParser

    shape = client.meta.service_model.operation_model(OPERATION).get_event_stream_output()
    parsed = EventStreamJSONParser().parse(
        {"status_code": 400, "headers": headers, "body": payload}, shape
    )
    error: Exception = EventStreamError(parsed, OPERATION)
    return error
