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

A bad field is a 400 naming it in ``param`` (``messages[1].content``), as OpenAI does.
"""

from __future__ import annotations

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
from synapsekit.gateway.http import EventStream, error_headers, read_json, secret_from
from synapsekit.gateway.types import GatewayError, GatewayRequest, KeyInfo
from synapsekit.llm.types import Chunk, Message, OutputSchema, ToolCall, Usage
from synapsekit.llm.types import Response as LLMResponse

if TYPE_CHECKING:
    from synapsekit.gateway.core import Gateway

__all__ = ["error_response", "parse_chat", "routes"]

_ROLES = {"system", "developer", "user", "assistant", "tool"}
_FINISH = {"stop", "length", "tool_calls", "content_filter"}
#: Accepted and not passed on: they do not change the answer.
_IGNORED = {"user", "store", "metadata", "service_tier"}
#: Accepted only switched off: the gateway cannot return what they ask for.
_OFF = {"logprobs", "top_logprobs"}
#: Passed to the members as provider extras (``params``).
_EXTRAS = {"seed", "presence_penalty", "frequency_penalty", "logit_bias"}
_KNOWN = {
    "model", "messages", "stream", "stream_options", "n", "temperature", "top_p", "stop",
    "max_tokens", "max_completion_tokens", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "reasoning_effort",
} | _IGNORED | _EXTRAS | _OFF


def routes(gateway: Gateway) -> list[Route]:
    """The OpenAI wire's routes, bound to ``gateway``."""

    async def chat_completions(request: Request) -> Response:
        try:
            key = await gateway.authenticate(secret_from(request))
            request.state.key_id = key.id
            body = await read_json(request, gateway.config.max_body_bytes)
            req = parse_chat(body)
            return await _answer(gateway, req, key)
        except GatewayError as err:
            return error_response(err)

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


def error_response(err: GatewayError) -> JSONResponse:
    """OpenAI's error body and status."""
    return JSONResponse(
        {"error": _error_object(err)}, status_code=err.status, headers=error_headers(err)
    )


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
            return error_response(err)
        return JSONResponse(_completion(answer, ids), headers=ids.headers(
            member_of(answer.metadata)))
    chunks = gateway.chat(req, key)
    # The first chunk is awaited before the headers go: a refusal or an upstream failure
    # before any token is an HTTP error status, not a broken 200 stream.
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except GatewayError as err:
        return error_response(err)
    headers = ids.headers() | {"cache-control": "no-cache"}
    return EventStream(
        _events(first, chunks, ids, req.include_usage),
        media_type="text/event-stream", headers=headers,
    )


class _Ids:
    """The id, created time and fingerprint every object of one answer shares. The
    fingerprint ("the backend configuration", in OpenAI's words) is this version and the
    model group's name: it changes when the gateway does."""

    def __init__(self, req: GatewayRequest) -> None:
        from synapsekit import __version__

        self.request_id = req.request_id
        self.model = req.model
        self.id = "chatcmpl-" + req.request_id.removeprefix("req_")
        self.created = int(time.time())
        digest = hashlib.sha256(f"{__version__}|{req.model}".encode()).hexdigest()
        self.fingerprint = "fp_" + digest[:10]

    def headers(self, member: str | None = None) -> dict[str, str]:
        out = {"x-request-id": self.request_id}
        if member is not None:
            out["x-synapsekit-member"] = member
        return out


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


async def _events(
    first: Chunk | None, chunks: AsyncGenerator[Chunk, None], ids: _Ids, include_usage: bool,
) -> AsyncIterator[bytes]:
    render = _render(first, chunks, ids, include_usage)
    try:
        async for event in render:
            yield event
    finally:  # the client left, or the answer ended: the core's row is written now
        await render.aclose()
        await chunks.aclose()


async def _render(
    first: Chunk | None, chunks: AsyncIterator[Chunk], ids: _Ids, include_usage: bool
) -> AsyncGenerator[bytes, None]:
    out = _Encoder(ids, include_usage)
    delta = out.delta
    yield delta({"role": "assistant", "content": "", "refusal": None})
    usage: Usage | None = None
    finish: str | None = None
    called = False
    seen: set[int] = set()
    pending = first
    try:
        while True:
            chunk = pending if pending is not None else await anext(chunks)
            pending = None
            if chunk.text:
                yield out.text(b"content", chunk.text)
            if chunk.reasoning:
                yield out.text(b"reasoning_content", chunk.reasoning)
            part = chunk.tool_delta
            if part is not None:
                called = True
                yield delta({"tool_calls": [_call_delta(part.index, part.id, part.name,
                                                        part.arguments, seen)]})
            elif chunk.tool_call is not None and chunk.tool_call.index not in seen:
                called = True  # a whole call with no deltas before it
                c = chunk.tool_call
                yield delta({"tool_calls": [_call_delta(
                    c.index, c.id, c.name, json.dumps(dict(c.arguments)), seen
                )]})
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.finish_reason:
                finish = chunk.finish_reason
    except StopAsyncIteration:
        pass
    except GatewayError as err:
        yield b"data: " + json.dumps({"error": _error_object(err)}).encode() + b"\n\n"
        return
    except Exception as exc:  # a failure of the wire itself, after the headers went
        mapped = status_for(exc)
        yield b"data: " + json.dumps({"error": _error_object(mapped)}).encode() + b"\n\n"
        return
    yield delta({}, _finish(finish, [None] if called else []))
    if include_usage:
        yield out.usage(_usage(usage))
    yield b"data: [DONE]\n\n"


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


# --------------------------------------------------------------------------- parsing


def _bad(param: str, message: str, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, code, message, param=param)


def parse_chat(body: Mapping[str, Any]) -> GatewayRequest:
    """A Chat Completions body as a :class:`GatewayRequest`; 400 naming the field."""
    for name in body:
        if name not in _KNOWN:
            raise _bad(name, f"Unrecognized request argument supplied: {name}",
                       "unknown_parameter")
    for name in _OFF:
        if body.get(name):
            raise _bad(name, f"'{name}' is not supported by this gateway.", "unsupported_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "you must provide a model parameter", "missing_required_parameter")
    n = body.get("n", 1)
    if n is not None and n != 1:
        raise _bad("n", "This gateway returns one choice per request: n must be 1.",
                   "unsupported_value")
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or not stream):
        raise _bad("stream_options",
                   "stream_options is only allowed when stream is true, as an object.")
    include_usage = bool(options and options.get("include_usage") is True)
    overrides: dict[str, Any] = {}
    for name, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        if body.get(name) is not None:
            overrides[name] = _number(body, name, low, high)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        which = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _bad(which, f"Invalid '{which}': expected an integer >= 1, got {limit!r}.")
        overrides["max_tokens"] = limit
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or (
            len(stop) > 4
        ):
            raise _bad("stop", "Invalid 'stop': a string or a list of up to 4 strings.")
        if stop:
            overrides["stop"] = tuple(stop)
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str):
            raise _bad("reasoning_effort", "Invalid 'reasoning_effort': expected a string.")
        overrides["reasoning_effort"] = effort
    extras = {k: body[k] for k in _EXTRAS if body.get(k) is not None}
    if extras:
        overrides["params"] = extras
    _tools(body, overrides)
    schema = _response_format(body.get("response_format"))
    if schema is not None:
        overrides["response_schema"] = schema
    return GatewayRequest(
        api="openai", model=model, messages=_messages(body.get("messages")),
        overrides=overrides, stream=stream, include_usage=include_usage,
    )


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(name, f"Invalid '{name}': expected a boolean, got {value!r}.")
    return value


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        low <= value <= high
    ):
        raise _bad(name, f"Invalid '{name}': expected a number from {low:g} to {high:g}, "
                   f"got {value!r}.")
    return float(value)


def _messages(given: Any) -> list[Message]:
    if given is None:
        raise _bad("messages", "you must provide a messages parameter",
                   "missing_required_parameter")
    if not isinstance(given, list) or not given:
        raise _bad("messages", "Invalid 'messages': expected a non-empty array.")
    out: list[Message] = []
    for i, raw in enumerate(given):
        at = f"messages[{i}]"
        if not isinstance(raw, dict):
            raise _bad(at, f"Invalid '{at}': expected an object.")
        role = raw.get("role")
        if role not in _ROLES:
            raise _bad(f"{at}.role", f"Invalid '{at}.role': expected one of "
                       f"{', '.join(sorted(_ROLES))}, got {role!r}.")
        content = raw.get("content")
        calls = raw.get("tool_calls")
        if content is None and not (role == "assistant" and calls):
            raise _bad(f"{at}.content", f"Missing required parameter: '{at}.content'.",
                       "missing_required_parameter")
        if content is not None and not isinstance(content, (str, list)):
            raise _bad(f"{at}.content",
                       f"Invalid '{at}.content': expected a string or an array of parts.")
        message = Message(role="system" if role == "developer" else role,
                          content=content if content is not None else "")
        if role == "tool":
            call_id = raw.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _bad(f"{at}.tool_call_id",
                           f"Missing required parameter: '{at}.tool_call_id'.",
                           "missing_required_parameter")
            message["tool_call_id"] = call_id
        if calls:
            message["tool_calls"] = _assistant_calls(calls, at)
        out.append(message)
    return out


def _assistant_calls(calls: Any, at: str) -> list[ToolCall]:
    if not isinstance(calls, list):
        raise _bad(f"{at}.tool_calls", f"Invalid '{at}.tool_calls': expected an array.")
    out = []
    for j, call in enumerate(calls):
        where = f"{at}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise _bad(where, f"Invalid '{where}': expected id and function.")
        name, arguments = function.get("name"), function.get("arguments", "{}")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else None
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(name, str) or not isinstance(parsed, dict):
            raise _bad(f"{where}.function.arguments",
                       f"Invalid '{where}.function': a name and arguments as a JSON object.")
        out.append(ToolCall(id=call["id"], name=name, arguments=parsed, index=j))
    return out


def _tools(body: Mapping[str, Any], overrides: dict[str, Any]) -> None:
    from synapsekit.errors import ConfigError
    from synapsekit.llm.tools import Tool

    given = body.get("tools")
    if given is not None:
        if not isinstance(given, list):
            raise _bad("tools", "Invalid 'tools': expected an array.")
        tools = []
        for i, raw in enumerate(given):
            at = f"tools[{i}]"
            function = raw.get("function") if isinstance(raw, dict) else None
            if not isinstance(raw, dict) or raw.get("type") != "function" or not isinstance(
                function, dict
            ):
                raise _bad(at, f"Invalid '{at}': expected {{'type': 'function', "
                           "'function': {...}}.")
            try:
                tools.append(Tool(
                    name=function.get("name"),  # type: ignore[arg-type]
                    description=function.get("description") or "",
                    parameters=function.get("parameters") or {"type": "object",
                                                              "properties": {}},
                    strict=function.get("strict") is True,
                ))
            except ConfigError as exc:
                raise _bad(f"{at}.function", str(exc)) from None
        if tools:
            overrides["tools"] = tuple(tools)
    choice = body.get("tool_choice")
    if choice is not None:
        if isinstance(choice, dict):
            function = choice.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if choice.get("type") != "function" or not isinstance(name, str):
                raise _bad("tool_choice", "Invalid 'tool_choice': expected 'auto', 'none', "
                           "'required' or {'type': 'function', 'function': {'name': ...}}.")
            overrides["tool_choice"] = {"name": name}
        elif choice in ("auto", "none", "required"):
            overrides["tool_choice"] = choice
        else:
            raise _bad("tool_choice", f"Invalid 'tool_choice': {choice!r}.")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        overrides["parallel_tool_calls"] = _flag(body, "parallel_tool_calls")


def _response_format(given: Any) -> OutputSchema | None:
    if given is None:
        return None
    kind = given.get("type") if isinstance(given, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":  # JSON mode: any object (the library's schema mode)
        return OutputSchema(name="json_object", schema={"type": "object"}, strict=False)
    if kind == "json_schema":
        spec = given.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or (
            not isinstance(spec.get("schema"), dict)
        ):
            raise _bad("response_format.json_schema",
                       "Invalid 'response_format.json_schema': expected name and schema.")
        return OutputSchema(
            name=spec["name"], schema=spec["schema"], strict=spec.get("strict") is True,
            description=spec.get("description") or "",
        )
    raise _bad("response_format.type", "Invalid 'response_format.type': expected 'text', "
               f"'json_object' or 'json_schema', got {kind!r}.")
