"""The OpenAI Chat Completions wire: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Why a translation and not a proxy: a group may span protocols (an OpenAI member failing
over to an Anthropic one), so the request is parsed into the wire-neutral
:class:`~synapsekit.gateway.types.GatewayRequest` (canonical messages, tools, settings)
and the answer rendered back from the call path's chunks, in OpenAI's shapes:

* non-streamed: one ``chat.completion`` object; streamed: ``chat.completion.chunk``
  events (the role first, content / tool-call deltas, the finish chunk), with
  ``stream_options.include_usage`` an extra chunk whose ``choices`` is ``[]`` carrying the
  usage (and ``"usage": null`` on the others), then ``data: [DONE]``;
* ids ``chatcmpl-<24 hex>`` (the request id's hex: the ledger row's ``request_id`` is
  ``req_<same hex>``, also sent as ``x-request-id``); ``model`` is the name the client
  asked for (the member that answered is in ``x-synapsekit-member``);
* a failure after the stream started: ``data: {"error": {...}}`` and no ``[DONE]``, as
  OpenAI does; before: the error body ``{"error": {"message", "type", "param", "code"}}``
  with its status (and ``Retry-After``).

Requests are parsed by :mod:`.openai_request` (a bad field is a 400 naming it in ``param``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from synapsekit.gateway.core import member_of, new_request_id
from synapsekit.gateway.errors import status_for
from synapsekit.gateway.http import error_headers, read_json, secret_from
from synapsekit.gateway.openai_request import parse_chat
from synapsekit.gateway.streamed import stream_answer
from synapsekit.gateway.types import GatewayError, GatewayRequest, KeyInfo
from synapsekit.llm.types import Chunk, ToolCall, Usage
from synapsekit.llm.types import Response as LLMResponse

if TYPE_CHECKING:
    from synapsekit.gateway.core import Gateway

__all__ = ["error_response", "parse_chat", "routes"]

_FINISH = {"stop", "length", "tool_calls", "content_filter"}


def routes(gateway: Gateway) -> list[Route]:
    """The OpenAI wire's routes, bound to ``gateway``."""

    async def chat_completions(request: Request) -> Response:
        request_id = new_request_id()  # before anything can fail: a refusal carries it too
        try:
            key = await gateway.authenticate(secret_from(request))
            request.state.key_id = key.id
            body = await read_json(request, gateway.config.max_body_bytes)
            req = parse_chat(body)
            req.request_id = request_id
            return await _answer(gateway, req, key)
        except GatewayError as err:
            return error_response(err, request_id)

    async def models(request: Request) -> Response:
        try:
            key = await gateway.authenticate(secret_from(request))
        except GatewayError as err:
            return error_response(err)
        request.state.key_id = key.id
        created = int(gateway.started)
        names = gateway.allowed(key)
        names += [n for n in gateway.config.embedding_models
                  if key.models is None or n in key.models]
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "synapsekit"}
            for name in names
        ]})

    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]


def error_response(err: GatewayError, request_id: str | None = None) -> JSONResponse:
    """OpenAI's error body and status; ``x-request-id`` when the request has one (the
    ledger row's id: a client holding a 429 or a 502 can find its row)."""
    headers = error_headers(err)
    if request_id:
        headers = {**headers, "x-request-id": request_id}
    return JSONResponse({"error": _error_object(err)}, status_code=err.status, headers=headers)


def _error_object(err: GatewayError) -> dict[str, Any]:
    return {"message": err.message, "type": err.type, "param": err.param, "code": err.code}


# --------------------------------------------------------------------------- answering


async def _answer(gateway: Gateway, req: GatewayRequest, key: KeyInfo) -> Response:
    req.request_id = req.request_id or new_request_id()
    ids = _Ids(req)
    if not req.stream:
        try:
            answer = await gateway.respond(req, key)
        except GatewayError as err:
            return error_response(err, req.request_id)
        return JSONResponse(_completion(answer, ids), headers=ids.headers(
            member_of(answer.metadata)))
    return await stream_answer(
        gateway, req, key,
        lambda first, chunks: _render(first, chunks, ids, req.include_usage),
        lambda err: error_response(err, req.request_id), ids.headers(),
    )


class _Ids:
    """The id, created time and fingerprint every object of one answer shares. The
    fingerprint ("the backend configuration", in OpenAI's words) is this version and the
    model group's name: it changes when the gateway does."""

    def __init__(self, req: GatewayRequest) -> None:
        self.request_id = req.request_id
        self.model = req.model
        self.id = "chatcmpl-" + req.request_id.removeprefix("req_")
        self.created = int(time.time())
        self.fingerprint = _fingerprint(req.model)

    def headers(self, member: str | None = None) -> dict[str, str]:
        out = {"x-request-id": self.request_id}
        if member is not None:
            out["x-synapsekit-member"] = member
        return out


@functools.lru_cache(maxsize=256)
def _fingerprint(model: str) -> str:
    """``fp_`` + 10 hex of this version and the group's name (once per name, not per
    request)."""
    from synapsekit import __version__

    return "fp_" + hashlib.sha256(f"{__version__}|{model}".encode()).hexdigest()[:10]


def _completion(answer: LLMResponse, ids: _Ids) -> dict[str, Any]:
    """A ``chat.completion`` object from the whole answer."""
    calls = list(answer.tool_calls)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text if answer.text or not calls else None,
        "refusal": None,
        "annotations": [],
    }
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    if calls:
        message["tool_calls"] = [_call(c) for c in calls]
    return {
        "id": ids.id,
        "object": "chat.completion",
        "created": ids.created,
        "model": ids.model,
        "choices": [{
            "index": 0, "message": message, "logprobs": None,
            "finish_reason": _finish(answer.finish_reason, calls),
        }],
        "usage": _usage(answer.usage),
        "service_tier": "default",
        "system_fingerprint": ids.fingerprint,
    }


async def _render(
    first: Chunk | None, chunks: AsyncIterator[Chunk], ids: _Ids, include_usage: bool
) -> AsyncGenerator[bytes, None]:
    """The answer's events, one item per chunk. The first item is the opening (role)
    event and the first chunk's together: :class:`EventStream` sends it at once, so the
    client's first token is in the first write after the headers."""
    out = _Deltas(_Encoder(ids, include_usage))
    opening = out.encoder.delta({"role": "assistant", "content": "", "refusal": None})
    try:
        yield opening + (out.events(first) if first is not None else b"")
        opening = b""
        async for chunk in chunks:
            events = out.events(chunk)
            if events:
                yield events
    except GatewayError as err:
        yield opening + b"data: " + json.dumps({"error": _error_object(err)}).encode() + b"\n\n"
        return
    except Exception as exc:  # a failure of the wire itself, after the headers went
        mapped = status_for(exc)
        yield (opening + b"data: " + json.dumps({"error": _error_object(mapped)}).encode()
               + b"\n\n")
        return
    end = out.encoder.delta({}, _finish(out.finish, [None] if out.called else []))
    if include_usage:
        end += out.encoder.usage(_usage(out.usage))
    yield end + b"data: [DONE]\n\n"


class _Deltas:
    """What one streamed answer has said so far (usage, finish, tool calls begun), and
    each chunk's events as bytes."""

    def __init__(self, encoder: _Encoder) -> None:
        self.encoder = encoder
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.called = False
        self.seen: set[int] = set()

    def events(self, chunk: Chunk) -> bytes:
        out = self.encoder
        found = out.text(b"content", chunk.text) if chunk.text else b""
        if chunk.reasoning:
            found += out.text(b"reasoning_content", chunk.reasoning)
        part = chunk.tool_delta
        if part is not None:
            self.called = True
            found += out.delta({"tool_calls": [_call_delta(
                part.index, part.id, part.name, part.arguments, self.seen)]})
        elif chunk.tool_call is not None and chunk.tool_call.index not in self.seen:
            self.called = True  # a whole call with no deltas before it
            c = chunk.tool_call
            found += out.delta({"tool_calls": [_call_delta(
                c.index, c.id, c.name, json.dumps(dict(c.arguments)), self.seen
            )]})
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish = chunk.finish_reason
        return found


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class _Encoder:
    """The ``chat.completion.chunk`` events of one answer as bytes. The fields every
    event shares (id, created, model, fingerprint) are encoded once; a text delta -- the
    event sent per token -- is the shared head, the JSON string, and a fixed tail. Same
    bytes as ``json.dumps`` of the whole object, in the same field order."""

    def __init__(self, ids: _Ids, include_usage: bool) -> None:
        shared = _dumps({
            "id": ids.id, "object": "chat.completion.chunk", "created": ids.created,
            "model": ids.model, "service_tier": "default",
            "system_fingerprint": ids.fingerprint,
        })
        self.head = b"data: " + shared[:-1] + b',"choices":'
        self.tail = b',"usage":null}\n\n' if include_usage else b"}\n\n"

    def delta(self, body: Mapping[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": body, "logprobs": None, "finish_reason": finish}
        return self.head + b"[" + _dumps(choice) + b"]" + self.tail

    def text(self, field: bytes, text: str) -> bytes:
        return (self.head + b'[{"index":0,"delta":{"' + field + b'":'
                + encode_basestring(text).encode()
                + b'},"logprobs":null,"finish_reason":null}]' + self.tail)

    def usage(self, usage: Mapping[str, Any]) -> bytes:
        return self.head + b'[],"usage":' + _dumps(usage) + b"}\n\n"


def _call_delta(
    index: int, call_id: str | None, name: str | None, arguments: str, seen: set[int]
) -> dict[str, Any]:
    """OpenAI's tool-call delta: the first of an index carries id, type and name."""
    out: dict[str, Any] = {"index": index}
    if index not in seen:
        seen.add(index)
        out["id"] = call_id or f"call_{index}"
        out["type"] = "function"
        out["function"] = {"name": name or "", "arguments": arguments}
    else:
        out["function"] = {"arguments": arguments}
    return out


def _call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id, "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
    }


def _finish(reason: str | None, calls: list[Any]) -> str:
    if reason in _FINISH:
        return reason
    return "tool_calls" if calls else "stop"


def _usage(usage: Usage | None) -> dict[str, Any]:
    u = usage or Usage(complete=False)
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }
