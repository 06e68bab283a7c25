"""The Anthropic Messages wire: ``POST /v1/messages``, so the anthropic SDK works unchanged.

Why a translation and not a proxy: a model group may be served by any protocol (an
Anthropic client answered by an OpenAI member), so the request is parsed into the
wire-neutral :class:`~synapsekit.gateway.types.GatewayRequest` by
:mod:`.anthropic_request` and the answer rendered back from the call path's chunks, in
Anthropic's shapes:

* non-streamed: one ``message`` object (``content`` blocks: ``thinking``, ``text``,
  ``tool_use``; ``stop_reason``, ``stop_sequence``, ``usage``); an Anthropic member's own
  blocks are returned as it sent them (thinking with its signature);
* streamed: ``message_start`` (the message with empty content and the usage known then),
  per block ``content_block_start`` / ``content_block_delta`` (``text_delta``,
  ``thinking_delta``, ``input_json_delta``) / ``content_block_stop``, then
  ``message_delta`` (``stop_reason``, ``stop_sequence`` and the whole usage, cumulative, as
  the API sends it: input tokens included, which an upstream of another protocol only says
  at the end) and ``message_stop``. An Anthropic member's signatures and
  ``redacted_thinking`` blocks reach the gateway only with the last chunk (its
  ``provider_data``), so they are sent then, before ``message_delta``: a ``signature_delta``
  for each thinking block by its index, and the blocks the chunks did not show
  (``redacted_thinking``, thinking without text) as whole blocks after the others
  (:func:`_signed`); asked for thinking from a model all of whose members speak
  Anthropic's protocol, the thinking block at index 0 is opened before the first chunk
  (:func:`_thinks_first`);
* ids ``msg_<24 hex>`` (the request id's hex: the ledger row's ``request_id`` is
  ``req_<same hex>``, sent as ``request-id`` and ``x-request-id``); ``model`` is the name
  the client asked for;
* usage as Anthropic counts it: ``input_tokens`` excludes the prompt-cache reads and writes,
  which are ``cache_read_input_tokens`` / ``cache_creation_input_tokens``;
* errors as ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with
  Anthropic's statuses (:func:`error_type`); after the stream started, an ``event: error``
  with the same object and no ``message_stop``.

The key comes as ``x-api-key`` (the documented header) or ``Authorization: Bearer`` (what
anthropic SDK >= 2.0 sends).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from synapsekit.gateway.anthropic_request import parse_messages
from synapsekit.gateway.core import member_of, new_request_id
from synapsekit.gateway.errors import status_for
from synapsekit.gateway.http import error_headers, read_json, secret_from
from synapsekit.gateway.streamed import stream_answer
from synapsekit.gateway.types import GatewayError, GatewayRequest, KeyInfo
from synapsekit.llm.providers.anthropic.decode import FINISH_REASONS
from synapsekit.llm.types import Chunk, ProviderData, Usage
from synapsekit.llm.types import Response as LLMResponse

if TYPE_CHECKING:
    from synapsekit.gateway.core import Gateway

__all__ = ["error_response", "error_type", "parse_messages", "routes"]

#: The library's finish reasons -> Anthropic's stop reasons (for members of any protocol).
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
         "content_filter": "refusal"}
#: HTTP status -> Anthropic's ``error.type`` (its errors page).
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
          403: "permission_error", 404: "not_found_error", 413: "request_too_large",
          429: "rate_limit_error", 504: "timeout_error", 529: "overloaded_error"}
#: Gateway codes whose Anthropic (status, type) is not the status's.
_CODES = {
    # a budget (the key's, or the upstream's credit) is not a rate limit: clients must not
    # retry; 429 as on the OpenAI wire
    "insufficient_quota": (429, "billing_error"),
    "upstream_overloaded": (529, "overloaded_error"),
    "no_member_available": (529, "overloaded_error"),
}


def routes(gateway: Gateway) -> list[Route]:
    """The Anthropic wire's routes, bound to ``gateway``."""

    async def messages(request: Request) -> Response:
        request_id = new_request_id()
        try:
            key = await _caller(gateway, request)
            req = parse_messages(await read_json(request, gateway.config.max_body_bytes))
            req.request_id = request_id
            return await _answer(gateway, req, key)
        except GatewayError as err:
            return error_response(err, request_id)

    async def count_tokens(request: Request) -> Response:
        """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}`` for a Messages body
        without ``max_tokens``, with the same key and model allow-list checks as
        ``/v1/messages`` (401/403/404 in Anthropic's shape), no upstream request, and one
        ledger row (``api="count_tokens"``, no tokens or cost: :meth:`Gateway.count`).

        N is the gateway's own input estimate (:func:`~synapsekit.gateway.core.estimate_tokens`
        without ``max_tokens``: ceil(characters / 4) of the text, the tool definitions and
        any output schema, ``PART_TOKENS`` per image or document part), the figure the
        gateway reserves for the request: an estimate,
        not the upstream's tokenizer, whatever the member is (an Anthropic member's
        count_tokens is not asked, and an OpenAI member counts with its own tokenizer)."""
        request_id = new_request_id()
        try:
            key = await _caller(gateway, request)
            body = await read_json(request, gateway.config.max_body_bytes)
            req = parse_messages({**body, "max_tokens": 1})  # not part of a count request
            req.request_id = request_id
            counted = await gateway.count(req, key)  # 404 unknown model, 403 not allowed
            return JSONResponse({"input_tokens": counted},
                                headers={"request-id": request_id, "x-request-id": request_id})
        except GatewayError as err:
            return error_response(err, request_id)

    return [Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"])]


def error_type(err: GatewayError) -> tuple[int, str]:
    """The status and Anthropic ``error.type`` a client gets for ``err``."""
    found = _CODES.get(err.code)
    if found is not None:
        return found
    if err.status in _TYPES:
        return err.status, _TYPES[err.status]
    return err.status, "api_error" if err.status >= 500 else "invalid_request_error"


def _error_object(err: GatewayError, request_id: str) -> dict[str, Any]:
    kind = error_type(err)[1]
    return {"type": "error", "error": {"type": kind, "message": err.message},
            "request_id": request_id}


def error_response(err: GatewayError, request_id: str) -> JSONResponse:
    """Anthropic's error body and status (``x-should-retry: false`` on a spent budget)."""
    status, kind = error_type(err)
    headers = error_headers(err) | {"request-id": request_id, "x-request-id": request_id}
    if kind == "billing_error":
        headers["x-should-retry"] = "false"
    return JSONResponse(_error_object(err, request_id), status_code=status, headers=headers)


# --------------------------------------------------------------------------- answering


async def _caller(gateway: Gateway, request: Request) -> KeyInfo:
    """The virtual key of an Anthropic-wire request: ``x-api-key`` (the anthropic SDK's
    header), else ``Authorization: Bearer``; 401 when there is none or it is unknown."""
    secret = request.headers.get("x-api-key") or secret_from(request)
    if not secret:
        raise GatewayError(401, "missing_api_key", "x-api-key header is required")
    key = await gateway.authenticate(secret)
    request.state.key_id = key.id
    return key


async def _answer(gateway: Gateway, req: GatewayRequest, key: KeyInfo) -> Response:
    message_id = "msg_" + req.request_id.removeprefix("req_")
    headers = {"request-id": req.request_id, "x-request-id": req.request_id}

    def refuse(err: GatewayError) -> Response:
        return error_response(err, req.request_id)

    if not req.stream:
        try:
            answer = await gateway.respond(req, key)
        except GatewayError as err:
            return refuse(err)
        member = member_of(answer.metadata)
        if member is not None:
            headers["x-synapsekit-member"] = member
        return JSONResponse(_message(answer, message_id, req.model), headers=headers)
    lead = _thinks_first(gateway, req, key)
    return await stream_answer(
        gateway, req, key,
        lambda first, chunks: _render(first, chunks, message_id, req, lead),
        refuse, headers,
    )


def _thinks_first(gateway: Gateway, req: GatewayRequest, key: KeyInfo) -> bool:
    """Whether the streamed answer opens with a thinking block at index 0 before any
    chunk: when the request asks for thinking and every member of its model speaks
    Anthropic's protocol, whose answer then starts with its thinking -- which may stream
    no text at all (``display: omitted``, the default of the newest models), and which the
    tool-result turn must start with. The block is there for that first thinking block's
    signature (:func:`_signed`); if the answer has none, it stays empty and unsigned."""
    budget = req.overrides.get("reasoning_budget")
    effort = req.overrides.get("reasoning_effort")
    if not (budget if budget is not None else effort not in (None, "none")):
        return False
    try:
        members = gateway.router_for(key, req.model).members
    except GatewayError:  # the call itself refuses it
        return False
    return bool(members) and all(llm.provider == "anthropic" for llm in members)


def _message(answer: LLMResponse, message_id: str, model: str) -> dict[str, Any]:
    """A ``message`` object from the whole answer."""
    data = answer.message.get("provider_data")
    if data is not None and data["protocol"] == "anthropic" and isinstance(
        data["content"], list
    ):
        inputs = {call.id: dict(call.arguments) for call in answer.tool_calls}
        content = [dict(block) for block in data["content"]]
        for block in content:  # the arguments as the call path parsed them
            if block.get("type") == "tool_use" and block.get("id") in inputs:
                block["input"] = inputs[block["id"]]
    else:
        content = []
        if answer.reasoning:  # another protocol's reasoning: nothing to sign it
            content.append({"type": "thinking", "thinking": answer.reasoning, "signature": ""})
        if answer.text:
            content.append({"type": "text", "text": answer.text})
        content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
                    for c in answer.tool_calls]
    stop, sequence = _stop(answer.finish_reason, answer.metadata)
    return {
        "id": message_id, "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": sequence,
        "usage": _usage(answer.usage),
    }


def _stop(finish: str | None, metadata: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence``: an Anthropic member's own, when
    it agrees with the call path's finish, else the finish mapped."""
    finish = finish or "stop"
    raw = (metadata or {}).get("raw_finish_reason")
    if isinstance(raw, str) and FINISH_REASONS.get(raw) == finish:
        sequence = (metadata or {}).get("stop_sequence") if raw == "stop_sequence" else None
        return raw, sequence if isinstance(sequence, str) else None
    return _STOP.get(finish, "end_turn"), None


def _usage(usage: Usage | None) -> dict[str, Any]:
    u = usage or Usage(complete=False)
    found: dict[str, Any] = {
        "input_tokens": u.input_tokens - u.cached_input_tokens - u.cache_write_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_input_tokens,
        "output_tokens": u.output_tokens,
    }
    if u.reasoning_tokens:
        found["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    return found


# ----------------------------------------------------------------------------- events


def _event(obj: Mapping[str, Any]) -> bytes:
    """One SSE event as Anthropic frames it: ``event: <type>`` then ``data: <json>``."""
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return b"event: " + str(obj["type"]).encode() + b"\ndata: " + data + b"\n\n"


class _Blocks:
    """The content blocks of one streamed answer as events. Anthropic streams one block
    at a time: the open block is closed when a chunk of another kind (or another tool
    call) arrives. A fragment of a tool call whose block is already closed (an upstream
    interleaving parallel calls) goes to that call's block by its index, where the SDK
    puts it."""

    def __init__(self) -> None:
        self.count = 0  # blocks started
        self.open: tuple[str, int] | None = None  # ("text" | "thinking" | "tool", call)
        self.calls: dict[int, int] = {}  # tool-call index -> its block's index
        self.thinking: dict[int, list[str]] = {}  # a thinking block's index -> its text

    def start(self, kind: str, call: int, block: dict[str, Any]) -> list[bytes]:
        """Events that make ``(kind, call)`` the open block (nothing if it is already)."""
        if self.open == (kind, call):
            return []
        out = self.stop()
        self.open = (kind, call)
        if kind == "tool":
            self.calls[call] = self.count
        elif kind == "thinking":
            self.thinking[self.count] = []
        out.append(_event({"type": "content_block_start", "index": self.count,
                           "content_block": block}))
        self.count += 1
        return out

    def delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        at = self.count - 1 if index is None else index
        return _event({"type": "content_block_delta", "index": at, "delta": delta})

    def stop(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        return [_event({"type": "content_block_stop", "index": self.count - 1})]


async def _render(
    first: Chunk | None, chunks: AsyncIterator[Chunk], message_id: str, req: GatewayRequest,
    lead: bool = False,
) -> AsyncGenerator[bytes, None]:
    """The answer's events, one item per chunk. The first item is ``message_start`` and
    the first chunk's events together: :class:`EventStream` sends it at once, so the
    client's first token is in the first write after the headers. ``lead``: a thinking
    block is open at index 0 from the start (:func:`_thinks_first`)."""
    usage = first.usage if first is not None else None
    opening = _event({"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": req.model,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": _usage(
            usage if usage is not None else Usage()),
    }})
    blocks = _Blocks()
    if lead:
        opening += b"".join(blocks.start("thinking", 0, {"type": "thinking", "thinking": "",
                                                         "signature": ""}))
    final = Chunk()
    pending = first
    try:
        while True:
            chunk = pending if pending is not None else await anext(chunks)
            pending = None
            events = b"".join(_chunk_events(chunk, blocks))
            if chunk.usage is not None or chunk.finish_reason is not None:
                final = chunk
            if events or opening:
                yield opening + events
                opening = b""
    except StopAsyncIteration:
        pass
    except Exception as exc:  # a GatewayError from the core, or the wire's own failure
        yield opening + _event(_error_object(status_for(exc), req.request_id))
        return
    stop, sequence = _stop(final.finish_reason, final.metadata)
    yield opening + b"".join(_signed(blocks, final.provider_data)) + _event({
        "type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": sequence},
        "usage": _usage(final.usage)}) + _event({"type": "message_stop"})


def _chunk_events(chunk: Chunk, blocks: _Blocks) -> list[bytes]:
    out: list[bytes] = []
    if chunk.reasoning:
        out += blocks.start("thinking", 0, {"type": "thinking", "thinking": "",
                                            "signature": ""})
        blocks.thinking[blocks.count - 1].append(chunk.reasoning)
        out.append(blocks.delta({"type": "thinking_delta", "thinking": chunk.reasoning}))
    if chunk.text:
        out += blocks.start("text", 0, {"type": "text", "text": ""})
        out.append(blocks.delta({"type": "text_delta", "text": chunk.text}))
    part = chunk.tool_delta
    if part is not None:
        late = blocks.calls.get(part.index) if blocks.open != ("tool", part.index) else None
        if late is None and part.index not in blocks.calls:
            out += blocks.start("tool", part.index, {
                "type": "tool_use", "id": part.id or f"call_{part.index}",
                "name": part.name or "", "input": {}})
        if part.arguments:
            out.append(blocks.delta({"type": "input_json_delta",
                                     "partial_json": part.arguments}, late))
        if part.done and blocks.open == ("tool", part.index):
            out += blocks.stop()
    elif chunk.tool_call is not None and chunk.tool_call.index not in blocks.calls:
        call = chunk.tool_call  # a whole call with no deltas before it
        out += blocks.start("tool", call.index, {
            "type": "tool_use", "id": call.id, "name": call.name, "input": {}})
        out.append(blocks.delta({"type": "input_json_delta",
                                 "partial_json": json.dumps(dict(call.arguments))}))
        out += blocks.stop()
    return out


def _signed(blocks: _Blocks, data: ProviderData | None) -> list[bytes]:
    """The stream's last block events: the open block closed and, when ``data`` (the last
    chunk's) is an Anthropic member's blocks, what makes the client's message carry them
    as the member sent them -- the next turn must send them back unmodified.

    * a streamed thinking block whose text is one of the member's thinking blocks gets its
      ``signature_delta`` (by its index; the open one before its ``content_block_stop``, as
      the API sends it, the earlier ones after theirs). The member's thinking blocks are
      matched to the streamed ones in order, by text: the chunks do not say where one
      block ends, so thinking blocks with nothing streamed between them are one streamed
      block here, which matches none of them and stays unsigned (the gateway leaves an
      unsigned block out when it comes back);
    * a member's block the stream did not show -- ``redacted_thinking`` (no chunk carries
      it), a thinking block with no text (but the first one, when the block opened ahead
      of the chunks, :func:`_thinks_first`, is still empty: it is that one), or one not
      matched -- is sent whole after the streamed blocks, in the member's order (thinking
      as the API streams it: an empty start, its ``thinking_delta``, its
      ``signature_delta``).

    So the blocks the member sent are all there, each as sent; only such unmatched blocks
    come later in ``content`` than the member had them."""
    native = data["content"] if data is not None and data["protocol"] == "anthropic" else None
    if not isinstance(native, list):
        return blocks.stop()
    streamed = sorted(blocks.thinking)  # the streamed thinking blocks' indices, in order
    texts = ["".join(blocks.thinking[index]) for index in streamed]
    signatures: dict[int, str] = {}  # streamed index -> its signature
    whole: list[Mapping[str, Any]] = []  # the member's blocks sent after the streamed ones
    at = 0  # the first streamed thinking block not matched yet
    for block in native:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "thinking":
            text = block.get("thinking") or ""
            found = next((n for n in range(at, len(texts)) if texts[n] == text), None)
            if found is None:
                whole.append(block)
                continue
            at = found + 1
            if block.get("signature"):
                signatures[streamed[found]] = block["signature"]
        elif kind == "redacted_thinking":
            whole.append(block)
    out: list[bytes] = []
    last = blocks.count - 1
    if blocks.open is not None and blocks.open[0] == "thinking" and last in signatures:
        out.append(blocks.delta({"type": "signature_delta", "signature": signatures.pop(last)}))
    out += blocks.stop()
    out += [blocks.delta({"type": "signature_delta", "signature": signature}, index)
            for index, signature in sorted(signatures.items())]
    for block in whole:  # each closed before the next starts
        if block.get("type") == "thinking":
            out += blocks.start("thinking", 0, {"type": "thinking", "thinking": "",
                                                "signature": ""})
            if block.get("thinking"):
                out.append(blocks.delta({"type": "thinking_delta",
                                         "thinking": block["thinking"]}))
            if block.get("signature"):
                out.append(blocks.delta({"type": "signature_delta",
                                         "signature": block["signature"]}))
        else:
            out += blocks.start("redacted_thinking", 0, dict(block))
        out += blocks.stop()
    return out
