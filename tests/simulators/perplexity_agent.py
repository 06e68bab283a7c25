"""A local simulator of Perplexity's Agent API (``POST /v1/agent``), which replaced the
Sonar chat-completions endpoint on 2026-09-27.

It rejects what the real API rejects before consuming the scripted queue (a wrong path,
a bad key, a Sonar-style body: ``messages`` instead of ``input``, neither ``model`` nor
``preset``) and replays the live capture's shape
(tests/wire/openai_compatible/perplexity/agent_stream_web_search_realcapture.sse).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .server import Reply, Request, Server
from .wire import replay

__all__ = ["CAPTURE", "PerplexityAgentSimulator", "capture", "usage_stream"]

SSE_TYPE = "text/event-stream; charset=utf-8"
JSON_TYPE = "application/json"
CAPTURE = "openai_compatible/perplexity/agent_stream_web_search_realcapture.sse"
PRESETS = ("fast", "low", "medium", "high", "xhigh")


def capture(relpath: str = CAPTURE) -> Reply:
    """Replay a capture byte for byte."""
    return replay(relpath, SSE_TYPE, JSON_TYPE)


def _event(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def usage_stream(tokens: list[str], usage: Mapping[str, Any], *, model: str = "perplexity/sonar",
                 status: str = "completed") -> Reply:
    """The capture's event sequence (created, text deltas, completed) with another answer
    and ``usage``: the same shape, for numbers the capture does not have."""
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
    return Reply(200, {"content-type": SSE_TYPE}, stream=pieces)


def _error(status: int, message: str, type_: str = "invalid_request_error") -> Reply:
    body = json.dumps({"error": {"message": message, "type": type_, "code": status}})
    return Reply(status, {"content-type": JSON_TYPE}, body.encode())


class PerplexityAgentSimulator(Server):
    """``POST /v1/agent`` on a local port; ``url`` is the client's ``base_url`` (the real
    one is ``https://api.perplexity.ai``, without ``/v1``)."""

    def __init__(self, api_key: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key

    @property
    def url(self) -> str:
        return self.base_url

    def default_reply(self, request: Request) -> Reply:
        return capture()

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
        return None
