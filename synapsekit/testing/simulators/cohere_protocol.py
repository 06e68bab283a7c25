"""A local simulator of Cohere's Chat API v2 (``POST /v2/chat``, ``stream: true``), and of
the v2 Embed API (``POST /v2/embed``: ``embeddings.float``, ``meta.billed_units``).

Shapes follow captures/cohere (see its README): SSE with ``event: <type>`` lines and hyphenated
types, text in ``content-delta`` (``delta.message.content.text``, or ``.thinking`` for reasoning
models), finish reason and usage (``billed_units`` and ``tokens``) in ``message-end``, then
``data: [DONE]``. Errors are ``{"id"?, "message"}`` bodies: 401 and 429 are the documented ones
from captures/cohere; the other statuses' messages are illustrative, in that shape.
Requests are checked before the scripted queue is consumed (path, bearer key, model, messages,
``stream``), so a client bug shows up as the 4xx the real service would return. Beyond text
(the v2 chat reference and the SDK's request types): content parts (``text``, ``image_url``
with a data URL of valid base64 image bytes or an http(s) URL; images only to the vision
models in ``VISION_MODELS``), tool definitions (``type: function``, a valid unique name, an
object JSON schema), ``tool_choice`` (``REQUIRED`` needs tools, ``NONE``), ``strict_tools``
(every tool with a required parameter, at most 200 fields in all),
assistant ``tool_calls`` (id, function name, arguments a JSON text) and ``tool`` turns whose
``tool_call_id`` names a call of an earlier assistant turn, ``response_format``
(``json_object`` with an object ``json_schema`` whose objects each require a field; not
together with tools), and ``thinking`` (``enabled`` / ``disabled``, a positive
``token_budget``). The messages of those 400s are illustrative, in the documented
``{"id", "message"}`` shape. ``REASONING_MODELS`` names the model ids with thinking, for
tests.

Run ``python -m synapsekit.testing.simulators.cohere_protocol --port 0 --tokens 50`` to serve from
a separate
process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .openai_protocol import embedding_vector, token_count
from .server import BENCH_TOOL, Reply, Request, Server, bench_tool_arguments, serve_main
from .wire import read_wire, replay

__all__ = [
    "REASONING_MODELS",
    "VISION_MODELS",
    "CohereSimulator",
    "capture",
    "check_body",
    "check_embed_body",
    "embeddings",
    "error",
    "malformed",
    "stream_error_event",
    "text_stream",
    "tool_stream",
]

SSE_TYPE = "text/event-stream"
JSON_TYPE = "application/json"
DONE = b"data: [DONE]\n\n"
ROLES = ("system", "user", "assistant", "tool")
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
MAX_EMBED_TEXTS = 96
VISION_MODELS = ("command-a-vision-07-2025", "c4ai-aya-vision-8b", "c4ai-aya-vision-32b")
REASONING_MODELS = ("command-a-reasoning-08-2025",)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def _event(obj: Mapping[str, Any]) -> bytes:
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return f"event: {obj['type']}\ndata: {data}\n\n".encode()


def _delta(index: int, content: Mapping[str, Any]) -> bytes:
    return _event({"type": "content-delta", "index": index,
                   "delta": {"message": {"content": dict(content)}}})


def _start() -> bytes:
    message = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [],
               "citations": []}
    return _event({"id": str(uuid.uuid4()), "type": "message-start",
                   "delta": {"message": message}})


def _block(index: int, kind: str, pieces: Sequence[str]) -> list[bytes]:
    return [
        _event({"type": "content-start", "index": index,
                "delta": {"message": {"content": {"type": kind, kind: ""}}}}),
        *(_delta(index, {kind: p}) for p in pieces),
        _event({"type": "content-end", "index": index}),
    ]


def _end(finish_reason: str, usage: Mapping[str, Any] | None, error: str | None = None) -> bytes:
    delta: dict[str, Any] = {"finish_reason": finish_reason}
    if error is not None:
        delta["error"] = error
    if usage is not None:
        delta["usage"] = dict(usage)
    return _event({"type": "message-end", "delta": delta})


def usage(
    input_tokens: int, output_tokens: int, *, billed_input: int | None = None,
    billed_output: int | None = None, cached_tokens: int | None = None,
) -> dict[str, Any]:
    """A ``message-end`` usage object: ``tokens`` as given, ``billed_units`` default to them."""
    body: dict[str, Any] = {
        "billed_units": {
            "input_tokens": input_tokens if billed_input is None else billed_input,
            "output_tokens": output_tokens if billed_output is None else billed_output,
        },
        "tokens": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    if cached_tokens is not None:
        body["cached_tokens"] = cached_tokens
    return body


def text_stream(
    tokens: Sequence[str],
    *,
    input_tokens: int = 71,
    output_tokens: int | None = None,
    billed_input: int | None = None,
    thinking: Sequence[str] = (),
    finish_reason: str | None = "COMPLETE",
    usage_obj: Mapping[str, Any] | None = None,
    done: bool = True,
    delay: float = 0.0,
    cut_after: int | None = None,
) -> Reply:
    """message-start, a thinking block (if any), a text block of ``tokens``, message-end
    (unless ``finish_reason=None``), then ``[DONE]`` (unless ``done=False``)."""
    n_out = len(tokens) + len(thinking) if output_tokens is None else output_tokens
    events = [_start()]
    if thinking:
        events += _block(0, "thinking", thinking)
    events += _block(1 if thinking else 0, "text", tokens)
    if finish_reason is not None:
        events.append(_end(finish_reason, usage_obj or usage(
            input_tokens, n_out, billed_input=billed_input)))
    if done:
        events.append(DONE)
    return Reply(200, {"content-type": SSE_TYPE}, stream=events, delay=delay, cut_after=cut_after)


def capture(relpath: str, *, done: bool = True, **faults: Any) -> Reply:
    """Replay a capture byte for byte; ``done=False`` drops the ``[DONE]``
    terminator, which the README says may be absent."""
    reply = replay(relpath, SSE_TYPE, JSON_TYPE, **faults)
    if done:
        return reply
    events = [e for e in reply.stream or () if not e.startswith(b"data: [DONE]")]
    return dataclasses.replace(reply, stream=events)


def tool_stream(
    calls: Sequence[tuple[str, str, Sequence[str]]],
    *,
    plan: Sequence[str] = (),
    thinking: Sequence[str] = (),
    interleave: bool = False,
    input_tokens: int = 40,
    output_tokens: int = 20,
) -> Reply:
    """A tool-call answer like captures/cohere/stream_tool_call.sse: a thinking block (if
    any, as in stream_thinking_realcapture.sse), ``tool-plan-delta`` s, then per call
    (``(id, name, argument fragments)``) ``tool-call-start`` / ``-delta`` s / ``-end``
    with its ``index``, then ``message-end`` with ``TOOL_CALL``. ``interleave=True``
    starts every call first and then sends their fragments round-robin (the fragments of
    parallel calls mixed on the wire, kept apart only by ``index``)."""
    events = [_start()]
    if thinking:
        events += _block(0, "thinking", thinking)
    events += [_event({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": p}}})
               for p in plan]

    def start(i: int) -> bytes:
        call_id, name, _ = calls[i]
        return _event({"type": "tool-call-start", "index": i, "delta": {"message": {
            "tool_calls": {"id": call_id, "type": "function",
                           "function": {"name": name, "arguments": ""}}}}})

    def fragment(i: int, piece: str) -> bytes:
        return _event({"type": "tool-call-delta", "index": i, "delta": {"message": {
            "tool_calls": {"function": {"arguments": piece}}}}})

    def end(i: int) -> bytes:
        return _event({"type": "tool-call-end", "index": i})

    if interleave:
        events += [start(i) for i in range(len(calls))]
        longest = max(len(c[2]) for c in calls)
        for n in range(longest):
            events += [fragment(i, c[2][n]) for i, c in enumerate(calls) if n < len(c[2])]
        events += [end(i) for i in range(len(calls))]
    else:
        for i, (_, _, pieces) in enumerate(calls):
            events += [start(i), *(fragment(i, p) for p in pieces), end(i)]
    events += [_end("TOOL_CALL", usage(input_tokens, output_tokens)), DONE]
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


_DEFAULT_MESSAGES = {
    400: "invalid request: message must be at least 1 token long or tool results must be "
         "specified.",
    402: "Please add or update your payment method at https://dashboard.cohere.com/billing?"
         "tab=payment to continue",
    403: "Forbidden",
    404: "model 'command-nope' not found, make sure the correct model ID was used and that "
         "you have access to the model.",
    500: "internal server error, this has been reported to our developers",
    503: "service unavailable",
}


def error(
    status: int,
    body: Mapping[str, Any] | str | bytes | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A ``{"message": ...}`` error reply: ``body`` is a dict, a capture's relpath, raw bytes,
    or None for the default of that status (401 and 429 use the captured bodies)."""
    if isinstance(body, Mapping):
        data = json.dumps(dict(body)).encode()
    elif isinstance(body, str):
        data = read_wire(body)
    elif isinstance(body, bytes):
        data = body
    elif status in (401, 429):
        data = read_wire(f"cohere/error_{status}.json")
    else:
        message = _DEFAULT_MESSAGES.get(status, f"Simulated error {status}.")
        data = json.dumps({"id": str(uuid.uuid4()), "message": message}).encode()
    return Reply(status, {"content-type": JSON_TYPE, **(headers or {})}, data)


def stream_error_event(message: str = "internal server error", *,
                       tokens_before: Sequence[str] = ()) -> Reply:
    """A 200 stream that fails: ``message-end`` with ``finish_reason: ERROR`` and ``delta.error``
    (the SDK's ChatMessageEndEventDelta.error), after ``tokens_before``."""
    events = [_start(), *_block(0, "text", tokens_before)[:-1],
              _end("ERROR", None, error=message), DONE]
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def malformed(tokens_before: Sequence[str] = ("Hi",)) -> Reply:
    """A 200 stream whose event after ``tokens_before`` is truncated JSON."""
    events = [_start(), *_block(0, "text", tokens_before)[:-1],
              b'event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{\n\n',
              _end("COMPLETE", usage(5, 1)), DONE]
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def _invalid(message: str, status: int = 400) -> Reply:
    return error(status, {"id": str(uuid.uuid4()), "message": message})


TOKENIZE_PATH = "/v1/tokenize"
TOKENIZE_MAX = 65_536


def tokenize_reply(body: Any) -> Reply:
    """``/v1/tokenize``: ``{text, model}`` (1..65,536 characters) -> ``tokens`` and
    ``token_strings``, one per whitespace-separated word
    (synapsekit/testing/simulators/count_rule.py)."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return _invalid("invalid request: model must be a string")
    text = body.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= TOKENIZE_MAX:
        return _invalid(f"invalid request: text must be between 1 and {TOKENIZE_MAX} characters")
    pieces = text.split()
    reply = {"tokens": list(range(1, len(pieces) + 1)), "token_strings": pieces,
             "meta": {"api_version": {"version": "1"}}}
    return Reply(200, {"content-type": "application/json"}, json.dumps(reply).encode())


def check_body(body: Any) -> Reply | None:
    """The real API's 400s for a v2 chat body, or None if it is acceptable."""
    if not isinstance(body, dict):
        return _invalid("invalid request: could not parse the request body as JSON.")
    if not body.get("model") or not isinstance(body["model"], str):
        return _invalid("invalid request: model must be specified.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _invalid("invalid request: messages must be a non-empty list.")
    model = body["model"]
    called: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return _invalid(f"invalid request: messages[{i}].role must be one of "
                            "system, user, assistant, tool.")
        rejected = _check_message(i, message, model, called)
        if rejected is not None:
            return rejected
    rejected = _check_tools(body) or _check_format(body) or _check_thinking(body)
    if rejected is not None:
        return rejected
    if body.get("stream") is not True:
        return _invalid("simulator: only stream=true is served")
    stops = body.get("stop_sequences") or []
    if len(stops) > 5:
        return _invalid("invalid request: stop_sequences can have at most 5 items.")
    temperature = body.get("temperature")
    if temperature is not None and temperature < 0:  # documented: a non-negative float
        return _invalid("invalid request: temperature must be non-negative.")
    return None


def _check_message(i: int, message: dict[str, Any], model: str, called: set[str]) -> Reply | None:
    """One turn: content shapes, image parts, tool calls and results (``called`` collects the
    ids of the tool calls seen so far)."""
    role, content = message["role"], message.get("content")
    where = f"messages[{i}]"
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            return _invalid(f"invalid request: {where}.tool_call_id is required.")
        if call_id not in called:
            return _invalid(f"invalid request: {where}: tool_call_id {call_id!r} does not "
                            "match any tool call of a previous assistant message.")
        if not isinstance(content, (str, list)) or not content:
            return _invalid(f"invalid request: {where}.content is required for tool messages.")
        if isinstance(content, list) and not all(
            isinstance(c, dict) and c.get("type") in ("text", "document") for c in content
        ):
            return _invalid(f"invalid request: {where}.content: tool content blocks are "
                            "'text' or 'document'.")
        return None
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list) or not calls:
                return _invalid(f"invalid request: {where}.tool_calls must be a non-empty list.")
            for j, call in enumerate(calls):
                function = call.get("function") if isinstance(call, dict) else None
                if (not isinstance(call.get("id"), str) or call.get("type") != "function"
                        or not isinstance(function, dict)
                        or not isinstance(function.get("name"), str)):
                    return _invalid(f"invalid request: {where}.tool_calls[{j}] needs an id, "
                                    "type 'function' and function.name.")
                try:
                    arguments = json.loads(function.get("arguments", ""))
                except (TypeError, ValueError):
                    arguments = None
                if not isinstance(arguments, dict):
                    return _invalid(f"invalid request: {where}.tool_calls[{j}].function."
                                    "arguments must be a JSON object string.")
                called.add(call["id"])
            if content is None:
                return None
        if not isinstance(content, (str, list)):
            return _invalid(f"invalid request: {where}.content is required.")
        if isinstance(content, list) and not all(
            isinstance(c, dict) and c.get("type") in ("text", "thinking") for c in content
        ):
            return _invalid(f"invalid request: {where}.content: assistant content items are "
                            "'text' or 'thinking'.")
        return None
    if not isinstance(content, (str, list)):
        return _invalid(f"invalid request: {where}.content is required.")
    if isinstance(content, str) or role != "user":
        return None
    for j, item in enumerate(content):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            continue
        if kind != "image_url":
            return _invalid(f"invalid request: {where}.content[{j}].type must be 'text' or "
                            "'image_url'.")
        if model not in VISION_MODELS:
            return _invalid(f"invalid request: model '{model}' does not support image inputs.")
        url = (item.get("image_url") or {}).get("url") if isinstance(
            item.get("image_url"), dict) else None
        problem = _image_problem(url)
        if problem:
            return _invalid(f"invalid request: {where}.content[{j}].image_url.url: {problem}")
    return None


def _image_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return "a URL is required."
    if url.startswith(("http://", "https://")):
        return None
    header, comma, payload = url.partition(",")
    if not (url.startswith("data:") and comma and header.endswith(";base64")):
        return "must be a base64 data URL (data:image/png;base64,...) or an http(s) URL."
    if header[5:-7] not in IMAGE_TYPES:
        return f"unsupported image type {header[5:-7]!r}."
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return "the data URL is not valid base64."
    return None


def _check_tools(body: dict[str, Any]) -> Reply | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is not None:
        if not isinstance(tools, list):
            return _invalid("invalid request: tools must be a list.")
        names: set[str] = set()
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if tool.get("type") != "function" or not isinstance(function, dict):
                return _invalid(f"invalid request: tools[{i}] must be {{'type': 'function', "
                                "'function': {...}}.")
            name = function.get("name")
            if not isinstance(name, str) or not _TOOL_NAME.match(name):
                return _invalid(f"invalid request: tools[{i}].function.name {name!r} is not a "
                                "valid function name.")
            if name in names:
                return _invalid(f"invalid request: duplicate tool name {name!r}.")
            names.add(name)
            parameters = function.get("parameters")
            if parameters is not None and (
                not isinstance(parameters, dict) or parameters.get("type") != "object"
            ):
                return _invalid(f"invalid request: tools[{i}].function.parameters must be a "
                                "JSON schema of type object.")
    if choice is not None:
        if choice not in ("REQUIRED", "NONE"):
            return _invalid(f"invalid request: tool_choice must be one of REQUIRED, NONE; "
                            f"received {choice!r}.")
        if choice == "REQUIRED" and not tools:
            return _invalid("invalid request: tool_choice REQUIRED needs tools.")
    strict = body.get("strict_tools")
    if strict is not None and not isinstance(strict, bool):
        return _invalid("invalid request: strict_tools must be a boolean.")
    if strict and tools:  # docs, Structured Outputs (Tools): "Important notes"
        fields = 0
        for tool in tools:
            parameters = tool["function"].get("parameters") or {}
            if not parameters.get("required"):
                return _invalid("invalid request: with strict_tools, every tool must have at "
                                "least one required parameter.")
            fields += len(parameters.get("properties") or {})
        if fields > 200:
            return _invalid("invalid request: with strict_tools, at most 200 fields can be "
                            "defined across all tools.")
    return None


def _check_format(body: dict[str, Any]) -> Reply | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object"):
        return _invalid("invalid request: response_format.type must be 'text' or "
                        "'json_object'.")
    if body.get("tools") or body.get("documents"):
        return _invalid("invalid request: response_format is not supported with tools or "
                        "documents.")
    schema = fmt.get("json_schema")
    if schema is None:
        return None
    if fmt["type"] == "text":
        return _invalid("invalid request: json_schema must not be set when type is 'text'.")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return _invalid("invalid request: response_format.json_schema: the top-level type "
                        "must be 'object'.")
    return _check_schema(schema, "json_schema")


def _check_schema(schema: Any, where: str) -> Reply | None:
    """Cohere's documented schema constraints: objects require at least one field;
    ``additionalProperties`` / ranges / lengths are unsupported."""
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            rejected = _check_schema(item, f"{where}[{i}]")
            if rejected is not None:
                return rejected
        return None
    if not isinstance(schema, dict):
        return None
    for key in ("additionalProperties", "minLength", "maxLength", "minItems", "maxItems",
                "minimum", "maximum", "uniqueItems"):
        if key in schema:
            return _invalid(f"invalid request: {where}: '{key}' is not supported.")
    properties = schema.get("properties")
    if schema.get("type") == "object" and properties and not schema.get("required"):
        return _invalid(f"invalid request: {where}: every object must have at least one "
                        "required field.")
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            for name, sub in value.items():
                rejected = _check_schema(sub, f"{where}.properties.{name}")
                if rejected is not None:
                    return rejected
        elif isinstance(value, (dict, list)):
            rejected = _check_schema(value, f"{where}.{key}")
            if rejected is not None:
                return rejected
    return None


def _check_thinking(body: dict[str, Any]) -> Reply | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type", "enabled") not in (
        "enabled", "disabled"
    ):
        return _invalid("invalid request: thinking.type must be 'enabled' or 'disabled'.")
    budget = thinking.get("token_budget")
    if budget is not None and (type(budget) is not int or budget < 1):
        return _invalid("invalid request: thinking.token_budget must be a positive integer.")
    return None


def embeddings(body: Mapping[str, Any]) -> Reply:
    """The ``/v2/embed`` answer for a valid body: float vectors (``output_dimension`` values,
    default 8) under ``embeddings.float``, billed input tokens in ``meta``."""
    texts = list(body["texts"])
    size = body.get("output_dimension") or 8
    tokens = sum(token_count(t) for t in texts)
    answer = {
        "id": str(uuid.uuid4()),
        "embeddings": {"float": [embedding_vector(t, size) for t in texts]},
        "texts": texts,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
        "response_type": "embeddings_by_type",
    }
    return Reply(200, {"content-type": JSON_TYPE}, json.dumps(answer).encode())


def check_embed_body(body: Any) -> Reply | None:
    """The real API's 400s for a v2 embed body, or None if it is acceptable."""
    if not isinstance(body, dict):
        return _invalid("invalid request: could not parse the request body as JSON.")
    if not body.get("model") or not isinstance(body["model"], str):
        return _invalid("invalid request: model must be specified.")
    if body.get("input_type") not in INPUT_TYPES:
        return _invalid("invalid request: valid input_type must be provided with the provided "
                        "model")
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return _invalid("invalid request: texts must be a non-empty list of strings.")
    if len(texts) > MAX_EMBED_TEXTS:
        return _invalid(f"invalid request: total number of texts must be at most "
                        f"{MAX_EMBED_TEXTS} - received {len(texts)}")
    kinds = body.get("embedding_types") or ["float"]
    if not all(k in EMBEDDING_TYPES for k in kinds) or "float" not in kinds:
        return _invalid("simulator: only float embeddings are served")
    return None


class CohereSimulator(Server):
    """Cohere's v2 chat endpoint on a local port; ``url`` is what ``base_url`` takes."""

    def __init__(
        self,
        api_key: str = "co-test-key",
        *,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        super().__init__(host=host, port=port, record=record)
        self.api_key = api_key
        self.default: Reply = default or text_stream(["Hello", ",", " world", "!"], input_tokens=71)

    @property
    def url(self) -> str:
        return self.base_url

    def default_reply(self, request: Request) -> Reply:
        if request.path == "/v2/embed":
            return embeddings(request.json())
        return self.default

    def validate(self, request: Request) -> Reply | None:
        if request.path not in ("/v2/chat", "/v2/embed", TOKENIZE_PATH):
            return _invalid(f"404 page not found: {request.path}", 404)
        if request.method != "POST":
            return _invalid("method not allowed", 405)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not token:
            return error(401, {"message": "no api key supplied"})
        if scheme.lower() != "bearer" or token.strip() != self.api_key:
            return error(401)
        try:
            body = request.json()
        except ValueError:
            return _invalid("invalid request: could not parse the request body as JSON.")
        if request.path == "/v2/embed":
            return check_embed_body(body)
        if request.path == TOKENIZE_PATH:
            return tokenize_reply(body)
        return check_body(body)


def bench_tool_call(fragments: int) -> Reply:
    """``--tool-fragments``: the benchmarks' call, its ``tool-call-delta`` s the arguments
    in ``fragments`` pieces."""
    _, pieces = bench_tool_arguments(fragments)
    return tool_stream([("call_bench0001", BENCH_TOOL, pieces)], output_tokens=fragments)


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: CohereSimulator(
            a.api_key, default=text_stream(tokens, delay=a.delay), port=a.port, record=False
        ),
        argv,
        api_key="co-test-key",
        tool=bench_tool_call,
    )


if __name__ == "__main__":
    main()
