"""A local simulator of Mistral's ``POST /v1/chat/completions`` (SSE streaming), and of
``POST /v1/embeddings`` (at most 256 inputs per request, as the real API).

It rejects requests the way the real API does (path, Bearer key, FastAPI-style 422 for a body
that misses required fields) *before* consuming the scripted queue. Stream shapes follow
tests/wire/mistral (see its README): one ``data:`` event per chunk, usage on the last content
chunk (no separate usage chunk), optional ``"p"`` padding, list-shaped ``delta.content`` for
reasoning, ``data: [DONE]`` at the end. The SDK wants the server root as ``server_url``
(it appends ``/v1/chat/completions``), so :attr:`MistralSimulator.url` is the root.

Run ``python -m tests.simulators.mistral_protocol --port 0 --tokens 50`` to serve from a
separate process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import itertools
import json
import random
import string
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .openai_protocol import embedding_vector, token_count
from .server import Reply, Request, Server, serve_main
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
) -> Reply:
    """A realistic stream: role chunk, one chunk per token, usage + finish, ``[DONE]``.

    Events: the role chunk (``content: ""``), then each ``thinking`` piece as list-shaped
    content (``[{"type": "thinking", "thinking": [{"type": "text", ...}]}]``) with the role
    on the first, the first answer token as ``[{"type": "text", ...}]`` when there was
    thinking, later tokens as plain strings; then an empty chunk carrying ``finish_reason``
    and usage (stream_ok_realcapture.sse), or with ``usage_on_last_token=True`` both on the
    last token's chunk (stream_ok.sse). ``padding`` adds the ``"p"`` field to every chunk.
    """
    n_out = len(thinking) + len(tokens) if completion_tokens is None else completion_tokens
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + n_out,
             "completion_tokens": n_out}
    c = _Chunks(model, padding=padding)
    events = [] if thinking else [c.chunk({"role": "assistant", "content": ""})]
    for i, thought in enumerate(thinking):
        part = {"type": "thinking", "thinking": [{"type": "text", "text": thought}]}
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


def capture(relpath: str, **faults: Any) -> Reply:
    """Replay a tests/wire capture byte for byte (``delay``, ``cut_after``, ``headers``)."""
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
    """A JSON error reply. ``body``: a dict, a tests/wire relpath, raw bytes, or None for the
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
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return _invalid(["stream"], "Input should be a valid boolean", "bool_type", stream)
    if models is not None and model not in models:
        return Reply(400, {"content-type": JSON_TYPE},
                     _error_body(f"Invalid model: {model}", "invalid_model", "1500"))
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
        self.default = default or text_stream(["Hello", ",", " world", "!"], prompt_tokens=12)
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


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: MistralSimulator(
            a.api_key, default=text_stream(tokens, delay=a.delay), port=a.port, record=False
        ),
        argv,
        api_key="mistral-test-key",
    )


if __name__ == "__main__":
    main()
