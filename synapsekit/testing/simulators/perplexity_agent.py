"""A local simulator of Perplexity's Agent API (``POST /v1/agent``), which replaced the
Sonar chat-completions endpoint on 2026-09-27.

It rejects what the real API rejects before consuming the scripted queue (a wrong path,
a bad key, a Sonar-style body: ``messages`` instead of ``input``, neither ``model`` nor
``preset``) and replays the live capture's shape
(captures/openai_compatible/perplexity/agent_stream_web_search_realcapture.sse).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .server import Reply, Request, Server
from .wire import replay

__all__ = ["CAPTURE", "PerplexityAgentSimulator", "capture", "error", "text_stream", "usage_stream"]

SSE_TYPE = "text/event-stream; charset=utf-8"
JSON_TYPE = "application/json"
CAPTURE = "openai_compatible/perplexity/agent_stream_web_search_realcapture.sse"
PRESETS = ("fast", "low", "medium", "high", "xhigh")


def capture(relpath: str = CAPTURE) -> Reply:
    """Replay a capture byte for byte."""
    return replay(relpath, SSE_TYPE, JSON_TYPE)


def _event(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def usage_stream(tokens: Sequence[str], usage: Mapping[str, Any], *,
                 model: str = "perplexity/sonar", status: str = "completed",
                 delay: float = 0.0, cut_after: int | None = None) -> Reply:
    """The capture's event sequence (created, text deltas, completed) with another answer
    and ``usage``: the same shape, for numbers the capture does not have. ``delay`` /
    ``cut_after`` as in :class:`~synapsekit.testing.simulators.server.Reply` (pieces are events)."""
    pieces = [_event({"type": "response.created", "sequence_number": 0,
                      "response": {"status": "in_progress", "model": model, "usage": None}})]
    for i, token in enumerate(tokens, 1):
        pieces.append(_event({"type": "response.output_text.delta", "delta": token,
                              "item_id": "msg_1", "output_index": 0, "content_index": 0,
                              "sequence_number": i}))
    final: dict[str, Any] = {"status": status, "model": model, "usage": dict(usage),
                             "output": [{"type": "message", "role": "assistant",
                                         "content": [{"type": "output_text",
                                                      "text": "".join(tokens)}]}]}
    if status == "incomplete":
        final["incomplete_details"] = {"reason": "max_output_tokens"}
    pieces.append(_event({"type": f"response.{status}", "response": final,
                          "sequence_number": len(tokens) + 1}))
    return Reply(200, {"content-type": SSE_TYPE}, stream=pieces, delay=delay, cut_after=cut_after)


def text_stream(tokens: Sequence[str], *, input_tokens: int = 10, output_tokens: int | None = None,
                cost: float | None = None, model: str = "perplexity/sonar",
                delay: float = 0.0, cut_after: int | None = None) -> Reply:
    """A synthetic answer in the Agent API's stream shape, ``input_tokens`` in and one
    output token per piece (or ``output_tokens``); ``cost``: the ``usage.cost.total_cost``
    Perplexity states (omitted when None). The parity walk's script
    (tests/test_parity.py), with the other protocols' ``text_stream`` arguments."""
    n_out = len(tokens) if output_tokens is None else output_tokens
    usage: dict[str, Any] = {
        "input_tokens": input_tokens, "output_tokens": n_out,
        "total_tokens": input_tokens + n_out,
        "input_tokens_details": {"cache_creation_input_tokens": 0,
                                 "cache_read_input_tokens": 0, "cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    if cost is not None:
        usage["cost"] = {"currency": "USD", "total_cost": cost}
    return usage_stream(tokens, usage, model=model, delay=delay, cut_after=cut_after)


def error(status: int, body: Mapping[str, Any] | bytes | None = None, *,
          headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON error reply (``{"error": {message, type, code}}``, as :meth:`validate`
    sends), with extra ``headers`` (``retry-after``)."""
    if isinstance(body, Mapping):
        data = json.dumps(dict(body)).encode()
    elif isinstance(body, bytes):
        data = body
    else:
        message, type_ = _ERRORS.get(status, (f"Simulated error {status}.", "server_error"))
        data = json.dumps({"error": {"message": message, "type": type_, "code": status}}).encode()
    return Reply(status, {"content-type": JSON_TYPE, **(headers or {})}, data)


_ERRORS = {
    400: ("Invalid request.", "invalid_request_error"),
    401: ("Invalid API key", "authentication_error"),
    402: ("Insufficient credits.", "insufficient_quota"),
    403: ("Forbidden.", "permission_error"),
    404: ("Not found.", "not_found"),
    429: ("Rate limit exceeded.", "rate_limit_error"),
}


def _error(status: int, message: str, type_: str = "invalid_request_error") -> Reply:
    body = json.dumps({"error": {"message": message, "type": type_, "code": status}})
    return Reply(status, {"content-type": JSON_TYPE}, body.encode())


class PerplexityAgentSimulator(Server):
    """``POST /v1/agent`` on a local port; ``url`` is the client's ``base_url`` (the real
    one is ``https://api.perplexity.ai``, without ``/v1``)."""

    def __init__(self, api_key: str, *, host: str = "127.0.0.1", port: int = 0,
                 default: Reply | None = None) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.default = default  # the reply when nothing is queued (None: the capture)

    @property
    def url(self) -> str:
        return self.base_url

    def default_reply(self, request: Request) -> Reply:
        return self.default or capture()

    def validate(self, request: Request) -> Reply | None:
        if request.path != "/v1/agent":
            # The retired endpoint and any other path.
            return _error(404, f"Not found: {request.method} {request.path}", "not_found")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.api_key:
            return _error(401, "Invalid API key", "authentication_error")
        try:
            body = request.json()
        except ValueError:
            return _error(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return _error(400, "Body must be an object")
        if "messages" in body:
            return _error(400, "Unknown field: messages (use input)")
        if not body.get("model") and body.get("preset") not in PRESETS:
            return _error(400, "One of model or preset is required")
        items = body.get("input")
        if not isinstance(items, (list, str)) or not items:
            return _error(400, "input is required")
        if isinstance(items, list):
            for item in items:
                if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
                    return _error(400, f"Invalid input item: {item!r}")
        return _check_response_format(body.get("response_format"))


def _check_response_format(fmt: Any) -> Reply | None:
    """``response_format``: ``{"type": "json_schema", "json_schema": {"name", "schema"}}``,
    the name 1-64 alphanumeric characters (docs.perplexity.ai structured outputs)."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return _error(400, "response_format.type must be json_schema")
    spec = fmt.get("json_schema")
    name = spec.get("name") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(name, str) or not (
        1 <= len(name) <= 64 and name.isalnum()
    ):
        return _error(400, "response_format.json_schema.name must be 1-64 alphanumeric characters")
    if not isinstance(spec.get("schema"), dict):
        return _error(400, "response_format.json_schema.schema must be a JSON schema object")
    return None
