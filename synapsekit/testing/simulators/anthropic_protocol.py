"""A local simulator of Anthropic's ``POST /v1/messages`` (streamed with SSE).

It rejects requests the way the real API does (path, API key, ``anthropic-version``, required
fields, a ``system`` role inside ``messages``, unknown top-level fields) *before* consuming the
scripted queue, so a client bug shows up as the same 4xx the real service returns instead of
being masked by a scripted reply. Stream shapes follow captures/anthropic (see its README);
captures are replayed byte for byte, one chunk per event.

Tools, content blocks (images, PDFs, tool_use / tool_result pairing), thinking (budget
rules, signatures this simulator issues and checks), structured-output and cache_control
rules are in :mod:`.anthropic_rules`; :func:`tool_stream` builds tool-use answers.

Two API versions are understood, as the real API does: ``2023-06-01`` and ``2026-10-21`` (the
default of anthropic SDK >= 2.0), which rejects ``temperature``/``top_p``/``top_k`` at any value
("temperature: Extra inputs are not permitted"). The key is accepted as ``x-api-key`` (the
documented header) or ``Authorization: Bearer`` (what anthropic SDK >= 2.0 sends); with both,
``x-api-key`` is the one checked. Sources for both: public reports of the 2026-10-21 migration
(e.g. https://qiita.com/Synthorai/items/01a0067e88747257a4e6); the captures predate it.

Run ``python -m synapsekit.testing.simulators.anthropic_protocol --port 0 --tokens 50`` to serve
from a
separate process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import string
from collections.abc import Mapping, Sequence
from typing import Any

from .anthropic_rules import check_features, sign
from .server import BENCH_TOOL, Reply, Request, Server, bench_tool_arguments, serve_main
from .wire import read_wire, replay

__all__ = [
    "AnthropicSimulator",
    "capture",
    "check_body",
    "error",
    "malformed",
    "sign",
    "stream_error_event",
    "text_stream",
    "tool_stream",
]

SSE_TYPE = "text/event-stream; charset=utf-8"
JSON_TYPE = "application/json"
PATH = "/v1/messages"
#: Token counting: the Messages body without max_tokens / sampling / stream.
COUNT_PATH = "/v1/messages/count_tokens"
#: What count_tokens takes (MessageCountTokensParams); anything else is refused.
COUNT_FIELDS = frozenset({
    "model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
    "output_format", "cache_control", "mcp_servers", "speed", "context_management",
})


def count_reply(body: Any) -> Reply:
    """``{"input_tokens": n}`` by the rule of synapsekit/testing/simulators/count_rule.py, or the
    API's 400 for an extra field (``max_tokens``, ``stream``...) or a missing one."""
    from .count_rule import json_reply, tokens

    if not isinstance(body, dict):
        return _invalid("Input should be a valid dictionary")
    for name in ("model", "messages"):
        if name not in body:
            return _invalid(f"{name}: Field required")
    for name in body:
        if name not in COUNT_FIELDS:
            return _invalid(f"{name}: Extra inputs are not permitted")
    return json_reply({"input_tokens": tokens(body)})
ROLES = ("user", "assistant")
#: Top-level request fields the Messages API knows; anything else is "Extra inputs are not
#: permitted" (so a client sending OpenAI's ``stop`` instead of ``stop_sequences`` gets a 400).
# fmt: off
FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "metadata", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management", "output_config", "cache_control",
    "inference_geo", "speed", "diagnostics",
})
# fmt: on
#: Fields API version 2026-10-21 removed: any value is "Extra inputs are not permitted".
SAMPLING = frozenset({"temperature", "top_p", "top_k"})
VERSIONS = ("2023-06-01", "2026-10-21")
_ALNUM = string.ascii_letters + string.digits

#: error.type -> HTTP status (captures/anthropic/README.md "Status codes").
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
_STATUS_ERROR = {status: kind for kind, status in ERROR_STATUS.items()}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _event(obj: Mapping[str, Any], *, pad: int = 0) -> bytes:
    """One SSE event as the API frames it: ``event: <type>`` then ``data: <json>``.

    ``pad`` puts that many spaces before the final ``}`` (the real API sometimes does:
    ``{"type":"message_stop"            }``)."""
    data = _dumps(obj)
    if pad:
        data = data[:-1] + b" " * pad + b"}"
    return b"event: " + str(obj["type"]).encode() + b"\ndata: " + data + b"\n\n"


def _message_id() -> str:
    return "msg_01" + "".join(random.choices(_ALNUM, k=22))


def text_stream(
    tokens: Sequence[str],
    *,
    input_tokens: int = 10,
    output_tokens: int | None = None,
    cache_read_input_tokens: int | None = None,
    cache_creation_input_tokens: int | None = None,
    thinking: Sequence[str] = (),
    model: str = "claude-sonnet-4-6",
    stop_reason: str = "end_turn",
    message_deltas: int = 1,
    message_stop: bool = True,
    pad: int = 0,
    delay: float = 0.0,
    cut_after: int | None = None,
) -> Reply:
    """A realistic stream: ``message_start`` (input usage, output 1), an optional thinking
    block (``thinking_delta`` pieces then a ``signature_delta``), a text block with a ``ping``
    after its start and one ``text_delta`` per token, ``message_delta`` (stop reason and
    cumulative output usage), ``message_stop``.

    ``message_deltas=n`` splits the end into n ``message_delta`` events whose cumulative
    ``output_tokens`` rise to the total (only the last carries the stop reason), to catch a
    client that adds them up. Event pieces, in order (for ``cut_after``): message_start,
    [thinking: block start, one per piece, signature, block stop], content_block_start,
    ping, one per token, content_block_stop, message_delta(s), message_stop.
    """
    n_out = len(tokens) + len(thinking) if output_tokens is None else output_tokens
    start_usage: dict[str, Any] = {"input_tokens": input_tokens}
    if cache_creation_input_tokens is not None:
        start_usage["cache_creation_input_tokens"] = cache_creation_input_tokens
    if cache_read_input_tokens is not None:
        start_usage["cache_read_input_tokens"] = cache_read_input_tokens
    start_usage["output_tokens"] = 1
    message: dict[str, Any] = {
        "id": _message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events = [_event({"type": "message_start", "message": message}, pad=pad)]
    index = 0
    if thinking:
        block = {"type": "thinking", "thinking": "", "signature": ""}
        events.append(
            _event({"type": "content_block_start", "index": 0, "content_block": block}, pad=pad)
        )
        for piece in thinking:
            delta = {"type": "thinking_delta", "thinking": piece}
            events.append(
                _event({"type": "content_block_delta", "index": 0, "delta": delta}, pad=pad)
            )
        signature = {"type": "signature_delta", "signature": sign("".join(thinking))}
        events.append(
            _event({"type": "content_block_delta", "index": 0, "delta": signature}, pad=pad)
        )
        events.append(_event({"type": "content_block_stop", "index": 0}, pad=pad))
        index = 1
    block = {"type": "text", "text": ""}
    events.append(
        _event({"type": "content_block_start", "index": index, "content_block": block}, pad=pad)
    )
    events.append(_event({"type": "ping"}, pad=pad))
    for token in tokens:
        delta = {"type": "text_delta", "text": token}
        events.append(
            _event({"type": "content_block_delta", "index": index, "delta": delta}, pad=pad)
        )
    events.append(_event({"type": "content_block_stop", "index": index}, pad=pad))
    for i in range(1, message_deltas + 1):
        last = i == message_deltas
        end = {"stop_reason": stop_reason if last else None, "stop_sequence": None}
        usage = {"output_tokens": n_out if last else max(1, n_out * i // message_deltas)}
        events.append(_event({"type": "message_delta", "delta": end, "usage": usage}, pad=pad))
    if message_stop:
        events.append(_event({"type": "message_stop"}, pad=pad))
    return Reply(200, {"content-type": SSE_TYPE}, stream=events, delay=delay, cut_after=cut_after)


def tool_stream(
    calls: Sequence[tuple[str, str, Sequence[str]]],
    *,
    text: Sequence[str] = (),
    thinking: Sequence[str] = (),
    redacted: str | None = None,
    input_tokens: int = 10,
    output_tokens: int = 40,
    stop_reason: str = "tool_use",
    model: str = "claude-sonnet-4-6",
) -> Reply:
    """A tool-use answer shaped like captures/anthropic/stream_tool_use.sse: an optional
    thinking block (``thinking_delta`` pieces, then a ``signature_delta`` this simulator
    issued: :func:`sign`), an optional ``redacted_thinking`` block, an optional text block,
    then one ``tool_use`` block per ``(id, name, fragments)`` (``input: {}`` at the start,
    an empty ``partial_json`` first as the real API sends, then the fragments), then
    ``message_delta`` (``stop_reason``, cumulative output) and ``message_stop``."""
    message: dict[str, Any] = {
        "id": _message_id(), "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": 1},
    }
    events = [_event({"type": "message_start", "message": message})]
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append(_event({"type": "content_block_start", "index": index,
                              "content_block": start}))
        for delta in deltas:
            events.append(_event({"type": "content_block_delta", "index": index,
                                  "delta": delta}))
        events.append(_event({"type": "content_block_stop", "index": index}))
        index += 1

    if thinking:
        block({"type": "thinking", "thinking": "", "signature": ""},
              [*({"type": "thinking_delta", "thinking": t} for t in thinking),
               {"type": "signature_delta", "signature": sign("".join(thinking))}])
    if redacted is not None:
        block({"type": "redacted_thinking", "data": redacted}, [])
    if text:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in text])
    for call_id, name, fragments in calls:
        block({"type": "tool_use", "id": call_id, "name": name, "input": {}},
              [{"type": "input_json_delta", "partial_json": f} for f in ("", *fragments)])
    end = {"stop_reason": stop_reason, "stop_sequence": None}
    events.append(_event({"type": "message_delta", "delta": end,
                          "usage": {"output_tokens": output_tokens}}))
    events.append(_event({"type": "message_stop"}))
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def capture(relpath: str, **faults: Any) -> Reply:
    """Replay a capture byte for byte (``delay``, ``cut_after``, ``headers``)."""
    return replay(relpath, SSE_TYPE, JSON_TYPE, **faults)


def _error_body(kind: str, message: str, request_id: str | None = None) -> bytes:
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return _dumps(body)


def error(
    status: int,
    body: Mapping[str, Any] | str | bytes | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A JSON error reply. ``body``: a dict, a capture's relpath, raw bytes, or None for the
    default of that status (401/429/529 use the captured bodies in captures/anthropic)."""
    if isinstance(body, Mapping):
        data = _dumps(dict(body))
    elif isinstance(body, str):
        data = read_wire(body)
    elif isinstance(body, bytes):
        data = body
    elif status in (401, 429, 529):
        data = read_wire(f"anthropic/error_{status}.json")
    else:
        kind = _STATUS_ERROR.get(status, "api_error" if status >= 500 else "invalid_request_error")
        message = "Internal server error" if kind == "api_error" else f"Simulated {status}."
        data = _error_body(kind, message)
    return Reply(status, {"content-type": JSON_TYPE, **(headers or {})}, data)


def stream_error_event(
    kind: str = "overloaded_error",
    message: str = "Overloaded",
    *,
    tokens_before: Sequence[str] = (),
) -> Reply:
    """A 200 stream that reports a failure as ``event: error`` after some tokens (the shape of
    captures/anthropic/stream_error_overloaded_docs.sse), with no ``message_stop``."""
    events = list(text_stream(tokens_before).stream or ())
    events = events[: 3 + len(tokens_before)]  # message_start, block start, ping, tokens
    data = json.dumps({"type": "error", "error": {"type": kind, "message": message}})
    events.append(b"event: error\ndata: " + data.encode() + b"\n\n")
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def malformed(tokens_before: Sequence[str] = ("Hi",)) -> Reply:
    """A 200 stream whose event after ``tokens_before`` is truncated JSON (then the rest)."""
    events = list(text_stream(tokens_before).stream or ())
    at = 3 + len(tokens_before)
    bad = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{\n\n'
    return Reply(200, {"content-type": SSE_TYPE}, stream=[*events[:at], bad, *events[at:]])


# --- request validation ------------------------------------------------------------------------


def _invalid(message: str, status: int = 400) -> Reply:
    kind = _STATUS_ERROR.get(status, "invalid_request_error")
    return error(status, _error_body(kind, message))


def _check_content(where: str, content: Any) -> Reply | None:
    if isinstance(content, str):
        return None if content else _invalid(f"{where}: text content blocks must be non-empty")
    if not isinstance(content, list):
        return _invalid(f"{where}: Input should be a valid list")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return _invalid(f"{where}.{j}: Input should be a valid dictionary or object")
    return None


def check_body(body: Any, version: str = VERSIONS[-1]) -> Reply | None:
    """The real API's 400s for a Messages body under ``version``, or None if it is acceptable."""
    if not isinstance(body, dict):
        return _invalid("Input should be a valid dictionary or object to extract fields from")
    known = FIELDS if version < "2026-10-21" else FIELDS - SAMPLING
    extra = sorted(set(body) - known)
    if extra:
        return _invalid(f"{extra[0]}: Extra inputs are not permitted")
    for name in ("model", "messages", "max_tokens"):
        if name not in body:
            return _invalid(f"{name}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        return _invalid("model: Input should be a valid string")
    max_tokens = body["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return _invalid("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        return _invalid("max_tokens: Input should be greater than or equal to 1")
    messages = body["messages"]
    if not isinstance(messages, list):
        return _invalid("messages: Input should be a valid list")
    if not messages:
        return _invalid("messages: at least one message is required")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            return _invalid(f"messages.{i}: Input should be a valid dictionary")
        role = msg.get("role")
        if role == "system":
            return _invalid(
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        if role not in ROLES:
            return _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in msg:
            return _invalid(f"messages.{i}.content: Field required")
        rejected = _check_content(f"messages.{i}.content", msg["content"])
        if rejected is not None:
            return rejected
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        return _invalid("system: Input should be a valid string")
    stops = body.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) for s in stops)
    ):
        return _invalid("stop_sequences: Input should be a valid list of strings")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return _invalid("stream: Input should be a valid boolean")
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            return _invalid("temperature: Input should be a valid number")
        if not 0 <= temperature <= 1:
            return _invalid("temperature: Input should be less than or equal to 1")
        thinking = body.get("thinking")
        thinks = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        if thinks and temperature != 1:
            return _invalid(
                "`temperature` may only be set to 1 when thinking is enabled or in adaptive "
                "mode. Please consult our documentation at "
                "https://platform.claude.com/docs/en/build-with-claude/extended-thinking"
            )
    found: Reply | None = check_features(body, _invalid)  # tools, blocks, thinking, cache
    return found


class AnthropicSimulator(Server):
    """Anthropic's Messages API on a local port: ``base_url=sim.url`` for the SDK."""

    def __init__(
        self,
        api_key: str = "sk-ant-test-key",
        *,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        super().__init__(host=host, port=port, record=record)
        self.api_key = api_key
        self.default: Reply = default or text_stream(["Hello", ",", " world", "!"], input_tokens=12)
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """``base_url`` for ``anthropic.AsyncAnthropic`` (the SDK appends ``/v1/messages``)."""
        return self.base_url

    def default_reply(self, request: Request) -> Reply:
        return self.default

    def response_headers(self, request: Request, reply: Reply) -> Mapping[str, str]:
        """``request-id`` on every response; an error body's own ``request_id`` when it has one
        (the real API sends the same id in both places)."""
        request_id = None
        if not reply.streamed and reply.body[:1] == b"{":
            with contextlib.suppress(ValueError, AttributeError):
                request_id = json.loads(reply.body).get("request_id")
        return {"request-id": request_id or f"req_sim_{next(self._ids):06d}"}

    def validate(self, request: Request) -> Reply | None:
        if request.path not in (PATH, COUNT_PATH):
            return error(404, _error_body("not_found_error", "Not Found"))
        if request.method != "POST":
            return error(405, _error_body("invalid_request_error", "Method Not Allowed"))
        key = request.headers.get("x-api-key")
        if key is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else None
        if key is None:
            return error(401, _error_body("authentication_error", "x-api-key header is required"))
        if key != self.api_key:
            return error(401)  # captures/anthropic/error_401.json: "invalid x-api-key"
        version = request.headers.get("anthropic-version")
        if version is None:
            return _invalid("anthropic-version: header is required")
        if version not in VERSIONS:
            return _invalid(f"anthropic-version: unknown version {version!r}")  # reconstructed
        try:
            body = request.json()
        except ValueError:
            return _invalid("There was an error parsing the body of your request.")
        if request.path == COUNT_PATH:  # a scripted reply (an error) first, if any
            return None if self._queue else count_reply(body)
        return check_body(body, version)


def bench_tool_call(fragments: int) -> Reply:
    """``--tool-fragments``: the benchmarks' call, one ``tool_use`` block whose
    ``input_json_delta`` s are the arguments in ``fragments`` pieces."""
    _, pieces = bench_tool_arguments(fragments)
    return tool_stream([("toolu_bench0001", BENCH_TOOL, pieces)], output_tokens=fragments)


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: AnthropicSimulator(
            a.api_key, default=text_stream(tokens, delay=a.delay), port=a.port, record=False
        ),
        argv,
        api_key="sk-ant-test-key",
        tool=bench_tool_call,
    )


if __name__ == "__main__":
    main()
