"""A local simulator of Mistral's ``POST /v1/chat/completions`` (SSE streaming), and of
``POST /v1/embeddings`` (at most 256 inputs per request, as the real API).

It rejects requests the way the real API does *before* consuming the scripted queue: path,
Bearer key, FastAPI-style 422 for a body its schema refuses (missing fields, a tool_choice
or reasoning_effort outside the enums, a tool without parameters, a json_schema without
its schema, an unknown part type) and the API's own 400 bodies (``{"object": "error",
...}``) for tool-call ids that are not 9 letters and digits (3280), a tool result that
answers no pending call, a user turn right after a tool turn, a last assistant turn without
``prefix`` (3230), and invalid image / document data URLs (wording synthetic, see
:func:`_check_parts`). :func:`tool_call_stream` builds tool-call streams in both shapes the
API sends (whole calls without ``index``; interleaved pieces with it). Stream shapes follow
captures/mistral (see its README): one ``data:`` event per chunk, usage on the last content
chunk (no separate usage chunk), optional ``"p"`` padding, list-shaped ``delta.content`` for
reasoning, ``data: [DONE]`` at the end. The SDK wants the server root as ``server_url``
(it appends ``/v1/chat/completions``), so :attr:`MistralSimulator.url` is the root.

Run ``python -m synapsekit.testing.simulators.mistral_protocol --port 0 --tokens 50`` to serve from
a
separate process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import random
import re
import string
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .openai_protocol import embedding_vector, token_count
from .server import BENCH_TOOL, Reply, Request, Server, bench_tool_arguments, serve_main
from .wire import read_wire, replay

__all__ = [
    "MistralSimulator",
    "capture",
    "check_embed_body",
    "embeddings",
    "error",
    "malformed",
    "stream_error_event",
    "text_stream",
    "tool_call_stream",
]

SSE_TYPE = "text/event-stream; charset=utf-8"
JSON_TYPE = "application/json"
ROLES = ("system", "user", "assistant", "tool")
DONE = b"data: [DONE]\n\n"
PATH = "/v1/chat/completions"
EMBED_PATH = "/v1/embeddings"
MAX_EMBED_INPUTS = 256


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _event(obj: Any) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


class _Chunks:
    """Chunk events sharing one id/created/model, in the field order of the real capture."""

    def __init__(self, model: str, *, padding: bool = False) -> None:
        self.rng = random.Random()
        self.id = f"{self.rng.getrandbits(128):032x}"
        self.created = int(time.time())
        self.model = model
        self.padding = padding

    def chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        usage: dict[str, Any] | None = None,
    ) -> bytes:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                         "logprobs": None}],
        }
        if usage is not None:
            obj["usage"] = usage
        if self.padding:
            obj["p"] = "".join(self.rng.choices(string.ascii_letters, k=self.rng.randint(1, 24)))
        return _event(obj)


def text_stream(
    tokens: Sequence[str],
    *,
    prompt_tokens: int = 10,
    completion_tokens: int | None = None,
    thinking: Sequence[str] = (),
    model: str = "mistral-small-latest",
    finish_reason: str = "stop",
    usage_on_last_token: bool = False,
    padding: bool = False,
    delay: float = 0.0,
    cut_after: int | None = None,
    signature: str | None = None,
) -> Reply:
    """A realistic stream: role chunk, one chunk per token, usage + finish, ``[DONE]``.

    Events: the role chunk (``content: ""``), then each ``thinking`` piece as list-shaped
    content (``[{"type": "thinking", "thinking": [{"type": "text", ...}]}]``) with the role
    on the first, the first answer token as ``[{"type": "text", ...}]`` when there was
    thinking, later tokens as plain strings; then an empty chunk carrying ``finish_reason``
    and usage (stream_ok_realcapture.sse), or with ``usage_on_last_token=True`` both on the
    last token's chunk (stream_ok.sse). ``padding`` adds the ``"p"`` field to every chunk.
    ``signature`` is set on the last thinking chunk (the SDK's ``ThinkChunk.signature``,
    "to replay some reasoning blocks across turns"; synthetic: no capture has one).
    """
    n_out = len(thinking) + len(tokens) if completion_tokens is None else completion_tokens
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + n_out,
             "completion_tokens": n_out}
    c = _Chunks(model, padding=padding)
    events = [] if thinking else [c.chunk({"role": "assistant", "content": ""})]
    for i, thought in enumerate(thinking):
        part: dict[str, Any] = {"type": "thinking",
                                "thinking": [{"type": "text", "text": thought}]}
        if signature is not None and i == len(thinking) - 1:
            part["signature"] = signature
        events.append(c.chunk({"role": "assistant", "content": [part]} if i == 0 else
                              {"content": [part]}))
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        content: Any = [{"type": "text", "text": token}] if thinking and i == 0 else token
        if usage_on_last_token and i == last:
            events.append(c.chunk({"content": content}, finish_reason, usage))
        else:
            events.append(c.chunk({"content": content}))
    if not usage_on_last_token or not tokens:
        events.append(c.chunk({"content": ""}, finish_reason, usage))
    events.append(DONE)
    return Reply(200, {"content-type": SSE_TYPE}, stream=events, delay=delay, cut_after=cut_after)


def tool_call_stream(
    calls: Sequence[tuple[str, str, str]],
    *,
    prompt_tokens: int = 124,
    completion_tokens: int = 22,
    text: Sequence[str] = (),
    model: str = "mistral-small-latest",
    pieces: int = 0,
    finish_reason: str = "tool_calls",
    thinking: Sequence[str] = (),
) -> Reply:
    """Tool calls ``(id, name, arguments_json)`` the way Mistral streams them.

    ``pieces=0`` (Mistral's own shape, stream_tool_call_realcapture.sse): every call whole,
    side by side in ONE chunk without ``index``, with ``finish_reason`` and usage on it.
    ``pieces=n``: each call's arguments cut in ``n`` fragments, the calls interleaved
    (call 0 piece 0, call 1 piece 0, ...), every fragment with its ``index``, id and name
    on the first only (the incremental shape some models on the API send), then an empty
    chunk with ``finish_reason`` and usage. ``text`` chunks come before the calls, and
    ``thinking`` chunks (list-shaped content, as stream_thinking_realcapture.sse) before
    them (a reasoning model deciding to call a tool).
    """
    c = _Chunks(model)
    events = [c.chunk({"role": "assistant", "content": ""})]
    events += [c.chunk({"content": [{"type": "thinking", "thinking": [
        {"type": "text", "text": t}]}]}) for t in thinking]
    events += [c.chunk({"content": t}) for t in text]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
             "completion_tokens": completion_tokens}
    if pieces <= 0:
        whole = [{"id": i, "function": {"name": n, "arguments": a}} for i, n, a in calls]
        events.append(c.chunk({"content": None, "tool_calls": whole}, finish_reason, usage))
    else:
        cut = [[a[k * len(a) // pieces:(k + 1) * len(a) // pieces] for k in range(pieces)]
               for _, _, a in calls]
        for k in range(pieces):
            for index, (call_id, name, _) in enumerate(calls):
                call: dict[str, Any] = {"type": "function", "index": index,
                                        "function": {"name": name if k == 0 else "",
                                                     "arguments": cut[index][k]}}
                if k == 0:
                    call = {"id": call_id, **call}
                events.append(c.chunk({"tool_calls": [call], "content": ""}))
        events.append(c.chunk({"content": ""}, finish_reason, usage))
    events.append(DONE)
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def capture(relpath: str, **faults: Any) -> Reply:
    """Replay a capture byte for byte (``delay``, ``cut_after``, ``headers``)."""
    return replay(relpath, SSE_TYPE, JSON_TYPE, **faults)


# The documented error format (error glossary); 401 and 429 use the captured bodies.
_DEFAULT_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("Invalid request", "invalid_request_error", "3000"),
    403: ("Forbidden", "forbidden", "1400"),
    404: ("Not Found", "not_found", "1404"),
    500: ("Internal server error", "internal_server_error", "5000"),
    502: ("Bad gateway", "bad_gateway", "5002"),
    503: ("Service unavailable", "service_unavailable", "5003"),
}


def _error_body(message: str, type_: str, code: str | None) -> bytes:
    return _dumps({"object": "error", "message": message, "type": type_, "param": None,
                   "code": code})


def error(
    status: int,
    body: Mapping[str, Any] | str | bytes | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A JSON error reply. ``body``: a dict, a capture's relpath, raw bytes, or None for the
    real shape of that status (401/429: the captured bodies; 422: FastAPI validation)."""
    if isinstance(body, Mapping):
        data = _dumps(dict(body))
    elif isinstance(body, str):
        data = read_wire(body)
    elif isinstance(body, bytes):
        data = body
    elif status in (401, 429):
        data = read_wire(f"mistral/error_{status}.json")
    elif status == 422:
        data = _validation([{"type": "missing", "loc": ["body", "model"],
                             "msg": "Field required", "input": {}}])
    else:
        message, type_, code = _DEFAULT_ERRORS.get(
            status, (f"Simulated error {status}", "api_error", str(status)))
        data = _error_body(message, type_, code)
    return Reply(status, {"content-type": JSON_TYPE, **(headers or {})}, data)


def stream_error_event(error_obj: Mapping[str, Any], *, tokens_before: Sequence[str] = ()) -> Reply:
    """A 200 stream with an ``{"object": "error", ...}`` event after some tokens and no
    ``[DONE]`` (synthetic: the shape is the documented error format)."""
    c = _Chunks("mistral-small-latest")
    events = [c.chunk({"role": "assistant", "content": ""})]
    events += [c.chunk({"content": t}) for t in tokens_before]
    events.append(_event({"object": "error", **error_obj}))
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def malformed(tokens_before: Sequence[str] = ("Hi",)) -> Reply:
    """A 200 stream whose event after ``tokens_before`` is truncated JSON (then ``[DONE]``)."""
    c = _Chunks("mistral-small-latest")
    events = [c.chunk({"role": "assistant", "content": ""})]
    events += [c.chunk({"content": t}) for t in tokens_before]
    events += [b'data: {"id":"' + c.id.encode() + b'","choices":[{"index":0,"delta":\n\n', DONE]
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


# --- request validation ------------------------------------------------------------------------


def _validation(details: list[dict[str, Any]]) -> bytes:
    return _dumps({"detail": details})


def _invalid(loc: list[Any], msg: str, type_: str, value: Any) -> Reply:
    body = _validation([{"type": type_, "loc": ["body", *loc], "msg": msg, "input": value}])
    return Reply(422, {"content-type": JSON_TYPE}, body)


def _refused(message: str, type_: str, code: str | None) -> Reply:
    """The API's 400 in the documented error format (with the real message where known)."""
    return Reply(400, {"content-type": JSON_TYPE}, _error_body(message, type_, code))


#: Mistral's tool-call id rule (400 ``invalid_function_call`` 3280 otherwise).
TOOL_CALL_ID = re.compile(r"^[A-Za-z0-9]{9}$")
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOOL_CHOICES = ("auto", "none", "any", "required")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
PART_TYPES = ("text", "image_url", "document_url", "thinking", "reference", "file",
              "input_audio")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _literal(loc: list[Any], value: Any, allowed: Sequence[str]) -> Reply:
    options = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" or '{allowed[-1]}'"
    return _invalid(loc, f"Input should be {options}", "literal_error", value)


def check_body(body: Any, models: frozenset[str] | None = None) -> Reply | None:
    """The real API's 422/400 for a chat-completions body, or None if it is acceptable."""
    if not isinstance(body, dict):
        return _invalid([], "Input should be a valid dictionary", "dict_type", body)
    model = body.get("model")
    if model is None:
        return _invalid(["model"], "Field required", "missing", body)
    if not isinstance(model, str):
        return _invalid(["model"], "Input should be a valid string", "string_type", model)
    messages = body.get("messages")
    if messages is None:
        return _invalid(["messages"], "Field required", "missing", body)
    if not isinstance(messages, list):
        return _invalid(["messages"], "Input should be a valid list", "list_type", messages)
    if not messages:
        return _invalid(["messages"], "List should have at least 1 item after validation, not 0",
                        "too_short", messages)
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ROLES:
            role = msg.get("role") if isinstance(msg, dict) else None
            tags = ", ".join(f"'{r}'" for r in ROLES)
            return _invalid(["messages", i], f"Input tag '{role}' found using 'role' does not "
                            f"match any of the expected tags: {tags}", "union_tag_invalid", msg)
        content = msg.get("content")
        if content is None and not (msg["role"] == "assistant" and msg.get("tool_calls")):
            return _invalid(["messages", i, msg["role"], "content"], "Field required",
                            "missing", msg)
        if content is not None and not isinstance(content, (str, list)):
            return _invalid(["messages", i, msg["role"], "content"],
                            "Input should be a valid string", "string_type", content)
        if isinstance(content, list):
            found = _check_parts(content, ["messages", i, msg["role"], "content"])
            if found is not None:
                return found
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return _invalid(["stream"], "Input should be a valid boolean", "bool_type", stream)
    for check in (_check_tools, _check_response_format, _check_reasoning, _check_turns):
        found = check(body)
        if found is not None:
            return found
    if models is not None and model not in models:
        return Reply(400, {"content-type": JSON_TYPE},
                     _error_body(f"Invalid model: {model}", "invalid_model", "1500"))
    return None


def _check_parts(parts: list[Any], loc: list[Any]) -> Reply | None:
    """Content chunks: known types; image_url a URL or a valid base64 data URL of an image
    type; document_url a URL or a base64 PDF data URL."""
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in PART_TYPES:
            tags = ", ".join(f"'{t}'" for t in PART_TYPES)
            return _invalid([*loc, j], f"Input tag '{kind}' found using 'type' does not match "
                            f"any of the expected tags: {tags}", "union_tag_invalid", part)
        if kind == "text" and not isinstance(part.get("text"), str):
            return _invalid([*loc, j, "text", "text"], "Field required", "missing", part)
        if kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if not isinstance(url, str):
                return _invalid([*loc, j, "image_url", "image_url"], "Field required",
                                "missing", part)
            problem = _data_url_problem(url, IMAGE_TYPES)
            if problem:  # synthetic wording: the real message for a bad image is not known
                return _refused(f"Invalid image URL: {problem}", "invalid_request_error",
                                "3310")
        if kind == "document_url":
            url = part.get("document_url")
            if not isinstance(url, str):
                return _invalid([*loc, j, "document_url", "document_url"], "Field required",
                                "missing", part)
            problem = _data_url_problem(url, ("application/pdf",))
            if problem:
                return _refused(f"Invalid document URL: {problem}", "invalid_request_error",
                                "3310")
    return None


def _data_url_problem(url: str, types: Sequence[str]) -> str:
    if url.startswith(("http://", "https://")):
        return ""
    if not url.startswith("data:"):
        return "must be an http(s) URL or a data URL"
    header, comma, payload = url[5:].partition(",")
    if not comma or not header.endswith(";base64"):
        return "a data URL must be base64 encoded"
    media_type = header[: -len(";base64")]
    if media_type not in types:
        return f"unsupported media type {media_type!r}; expected one of {', '.join(types)}"
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return "the base64 data is invalid"
    return ""


def _check_tools(body: dict[str, Any]) -> Reply | None:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` as the API's schema checks them."""
    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            return _invalid(["tools"], "Input should be a valid list", "list_type", tools)
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict):
                return _invalid(["tools", i, "function"], "Field required", "missing", tool)
            if tool.get("type", "function") != "function":
                return _literal(["tools", i, "type"], tool.get("type"), ("function",))
            name = function.get("name")
            if not isinstance(name, str):
                return _invalid(["tools", i, "function", "name"], "Field required", "missing",
                                function)
            if not _FUNCTION_NAME.match(name):
                return _refused(f"Function name was {name} but must be a-z, A-Z, 0-9, or "
                                "contain underscores and dashes, with a maximum length of 64.",
                                "invalid_function_call", "3280")
            parameters = function.get("parameters")
            if not isinstance(parameters, dict):
                return _invalid(["tools", i, "function", "parameters"],
                                "Input should be a valid dictionary", "dict_type", parameters)
            if parameters.get("type", "object") != "object":
                return _refused(f"Function {name}: parameters must be a JSON schema of type "
                                "object.", "invalid_function_call", "3280")
            if "strict" in function and not isinstance(function["strict"], bool):
                return _invalid(["tools", i, "function", "strict"],
                                "Input should be a valid boolean", "bool_type", function["strict"])
            if name in names:
                return _refused(f"Duplicate function name: {name}", "invalid_function_call",
                                "3280")
            names.append(name)
    choice = body.get("tool_choice")
    if choice is not None:
        if isinstance(choice, str):
            if choice not in TOOL_CHOICES:
                return _literal(["tool_choice", "enum"], choice, TOOL_CHOICES)
            if choice in ("any", "required") and not names:
                return _refused("tool_choice requires tools to be set.",
                                "invalid_request_error", "3051")
        elif isinstance(choice, dict):
            function = choice.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(name, str):
                return _invalid(["tool_choice", "ToolChoice", "function"], "Field required",
                                "missing", choice)
            if name not in names:
                return _refused(f"Tool choice function {name} is not in the tools.",
                                "invalid_request_error", "3051")
        else:
            return _literal(["tool_choice", "enum"], choice, TOOL_CHOICES)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        return _invalid(["parallel_tool_calls"], "Input should be a valid boolean", "bool_type",
                        parallel)
    return None


def _check_response_format(body: dict[str, Any]) -> Reply | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        return _invalid(["response_format"], "Input should be a valid dictionary", "dict_type",
                        fmt)
    kind = fmt.get("type", "text")
    if kind not in RESPONSE_FORMATS:
        return _literal(["response_format", "type"], kind, RESPONSE_FORMATS)
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            return _invalid(["response_format", "json_schema"], "Field required", "missing",
                            fmt)
        for key, kind_name in (("name", "string"), ("schema", "dictionary")):
            value = spec.get(key)
            if value is None:
                return _invalid(["response_format", "json_schema", key], "Field required",
                                "missing", spec)
            if not isinstance(value, str if key == "name" else dict):
                return _invalid(["response_format", "json_schema", key],
                                f"Input should be a valid {kind_name}",
                                "string_type" if key == "name" else "dict_type", value)
    return None


def _check_reasoning(body: dict[str, Any]) -> Reply | None:
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        return _literal(["reasoning_effort"], effort, REASONING_EFFORTS)
    mode = body.get("prompt_mode")
    if mode is not None and mode != "reasoning":
        return _literal(["prompt_mode"], mode, ("reasoning",))
    return None


def _check_turns(body: dict[str, Any]) -> Reply | None:
    """The message order and tool-call ids, with the API's real 400 bodies: every tool-call
    id 9 letters and digits (3280); a tool result answers a pending call of the assistant
    turn before it (3230); no user turn right after a tool turn (3230); the last turn is a
    user or tool turn, or an assistant turn with ``prefix: true``."""
    pending: set[str] = set()
    previous = None
    messages = body["messages"]
    for msg in messages:
        role = msg["role"]
        if role == "assistant":
            pending = set()
            for call in msg.get("tool_calls") or ():
                call_id = call.get("id") if isinstance(call, dict) else None
                if not isinstance(call_id, str) or not TOOL_CALL_ID.match(call_id):
                    return _refused(f"Tool call id was {call_id} but must be a-z, A-Z, 0-9, "
                                    "with a length of 9.", "invalid_function_call", "3280")
                pending.add(call_id)
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            if call_id is None:
                return _refused("Tool call id has to be defined.", "invalid_request_error",
                                None)
            if not TOOL_CALL_ID.match(str(call_id)):
                return _refused(f"Tool call id was {call_id} but must be a-z, A-Z, 0-9, "
                                "with a length of 9.", "invalid_function_call", "3280")
            if call_id not in pending:
                return _refused(f"Unexpected tool call id {call_id} in tool results",
                                "invalid_request_message_order", "3230")
            pending.discard(call_id)
        elif role == "user" and previous == "tool":
            return _refused("Unexpected role 'user' after role 'tool'",
                            "invalid_request_message_order", "3230")
        previous = role
    last = messages[-1]
    if last["role"] == "assistant" and last.get("prefix") is not True:
        return _refused("Expected last role User or Tool (or Assistant with prefix True) for "
                        "serving but got assistant", "invalid_request_message_order", "3230")
    return None


def embeddings(body: Mapping[str, Any]) -> Reply:
    """The ``/v1/embeddings`` answer for a valid body: one deterministic vector per input
    (``output_dimension`` values, default 8), usage in ``prompt_tokens``."""
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    size = body.get("output_dimension") or 8
    tokens = sum(token_count(t) for t in texts)
    answer = {
        "id": f"{random.getrandbits(128):032x}",
        "object": "list",
        "data": [{"object": "embedding", "embedding": embedding_vector(t, size), "index": i}
                 for i, t in enumerate(texts)],
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
    }
    return Reply(200, {"content-type": JSON_TYPE}, _dumps(answer))


def check_embed_body(body: Any) -> Reply | None:
    """The real API's 422/400 for an embeddings body, or None if it is acceptable."""
    if not isinstance(body, dict):
        return _invalid([], "Input should be a valid dictionary", "dict_type", body)
    if not isinstance(body.get("model"), str):
        return _invalid(["model"], "Field required", "missing", body)
    texts = body.get("input")
    if texts is None:
        return _invalid(["input"], "Field required", "missing", body)
    items = texts if isinstance(texts, list) else [texts]
    if not all(isinstance(t, str) for t in items):
        return _invalid(["input"], "Input should be a valid string", "string_type", texts)
    if len(items) > MAX_EMBED_INPUTS:
        return Reply(400, {"content-type": JSON_TYPE}, _error_body(
            "Too many inputs in request, split into more batches.", "invalid_request_error",
            "3210"))
    return None


class MistralSimulator(Server):
    """Mistral chat completions on a local port. ``models`` (None: any) is the set of model
    names the account may use; others get the real API's 400 ``invalid_model``."""

    def __init__(
        self,
        api_key: str = "mistral-test-key",
        *,
        models: Sequence[str] | None = None,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        super().__init__(host=host, port=port, record=record)
        self.api_key = api_key
        self.models = frozenset(models) if models is not None else None
        self.default: Reply = default or text_stream(
            ["Hello", ",", " world", "!"], prompt_tokens=12
        )
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """``server_url`` for ``mistralai.Mistral`` (the root; the SDK adds ``/v1/...``)."""
        return self.base_url

    def reset(self) -> None:
        super().reset()
        self._ids = itertools.count(1)

    def default_reply(self, request: Request) -> Reply:
        if request.path == EMBED_PATH:
            return embeddings(request.json())
        if request.json().get("stream") is not True:
            return capture("mistral/nonstream_ok.json")
        return self.default

    def response_headers(self, request: Request, reply: Reply) -> Mapping[str, str]:
        return {"mistral-correlation-id": f"corr-{next(self._ids):06d}"}

    def validate(self, request: Request) -> Reply | None:
        if request.path not in (PATH, EMBED_PATH):
            return Reply(404, {"content-type": JSON_TYPE}, _dumps({"detail": "Not Found"}))
        if request.method != "POST":
            return Reply(405, {"content-type": JSON_TYPE},
                         _dumps({"detail": "Method Not Allowed"}))
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.api_key:
            return error(401)
        try:
            body = request.json()
        except ValueError:
            return _invalid([0], "JSON decode error", "json_invalid", {})
        if request.path == EMBED_PATH:
            return check_embed_body(body)
        return check_body(body, self.models)


def bench_tool_call(fragments: int) -> Reply:
    """``--tool-fragments``: the benchmarks' call (arguments of ``4 * fragments``
    characters) the way Mistral streams calls: whole, in one chunk."""
    arguments, _ = bench_tool_arguments(fragments)
    return tool_call_stream(
        [("call_bench0001", BENCH_TOOL, json.dumps(arguments, separators=(",", ":")))],
        completion_tokens=fragments,
    )


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: MistralSimulator(
            a.api_key, default=text_stream(tokens, delay=a.delay), port=a.port, record=False
        ),
        argv,
        api_key="mistral-test-key",
        tool=bench_tool_call,
    )


if __name__ == "__main__":
    main()
