"""A local simulator of Cohere's Chat API v2 (``POST /v2/chat``, ``stream: true``), and of
the v2 Embed API (``POST /v2/embed``: ``embeddings.float``, ``meta.billed_units``).

Shapes follow tests/wire/cohere (see its README): SSE with ``event: <type>`` lines and hyphenated
types, text in ``content-delta`` (``delta.message.content.text``, or ``.thinking`` for reasoning
models), finish reason and usage (``billed_units`` and ``tokens``) in ``message-end``, then
``data: [DONE]``. Errors are ``{"id"?, "message"}`` bodies: 401 and 429 are the documented ones
from tests/wire/cohere; the other statuses' messages are illustrative, in that shape.
Requests are checked before the scripted queue is consumed (path, bearer key, model, messages,
``stream``), so a client bug shows up as the 4xx the real service would return.

Run ``python -m tests.simulators.cohere_protocol --port 0 --tokens 50`` to serve from a separate
process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .openai_protocol import embedding_vector, token_count
from .server import Reply, Request, Server, serve_main
from .wire import read_wire, replay

__all__ = [
    "CohereSimulator",
    "capture",
    "check_body",
    "check_embed_body",
    "embeddings",
    "error",
    "malformed",
    "stream_error_event",
    "text_stream",
]

SSE_TYPE = "text/event-stream"
JSON_TYPE = "application/json"
DONE = b"data: [DONE]\n\n"
ROLES = ("system", "user", "assistant", "tool")
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
MAX_EMBED_TEXTS = 96


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
    """Replay a tests/wire capture byte for byte; ``done=False`` drops the ``[DONE]``
    terminator, which the README says may be absent."""
    reply = replay(relpath, SSE_TYPE, JSON_TYPE, **faults)
    if done:
        return reply
    events = [e for e in reply.stream or () if not e.startswith(b"data: [DONE]")]
    return dataclasses.replace(reply, stream=events)


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
    """A ``{"message": ...}`` error reply: ``body`` is a dict, a tests/wire relpath, raw bytes,
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


def check_body(body: Any) -> Reply | None:
    """The real API's 400s for a v2 chat body, or None if it is acceptable."""
    if not isinstance(body, dict):
        return _invalid("invalid request: could not parse the request body as JSON.")
    if not body.get("model") or not isinstance(body["model"], str):
        return _invalid("invalid request: model must be specified.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _invalid("invalid request: messages must be a non-empty list.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return _invalid(f"invalid request: messages[{i}].role must be one of "
                            "system, user, assistant, tool.")
        if message["role"] != "tool" and not isinstance(message.get("content"), (str, list)):
            return _invalid(f"invalid request: messages[{i}].content is required.")
    if body.get("stream") is not True:
        return _invalid("simulator: only stream=true is served")
    stops = body.get("stop_sequences") or []
    if len(stops) > 5:
        return _invalid("invalid request: stop_sequences can have at most 5 items.")
    temperature = body.get("temperature")
    if temperature is not None and temperature < 0:  # documented: a non-negative float
        return _invalid("invalid request: temperature must be non-negative.")
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
        self.default = default or text_stream(["Hello", ",", " world", "!"], input_tokens=71)

    @property
    def url(self) -> str:
        return self.base_url

    def default_reply(self, request: Request) -> Reply:
        if request.path == "/v2/embed":
            return embeddings(request.json())
        return self.default

    def validate(self, request: Request) -> Reply | None:
        if request.path not in ("/v2/chat", "/v2/embed"):
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
        return check_body(body)


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: CohereSimulator(
            a.api_key, default=text_stream(tokens, delay=a.delay), port=a.port, record=False
        ),
        argv,
        api_key="co-test-key",
    )


if __name__ == "__main__":
    main()
