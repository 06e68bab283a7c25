"""The simulators' token-counting rule: deterministic, so tests can assert exact counts.

A "token" is one whitespace-separated word of any string value in the counted JSON (keys
are not counted; the top-level ``model`` is left out), so a test can say which part of a
request was counted: a system prompt of 2 words adds 2, a tool's description of 6 adds 6.
Real tokenizers differ; what the tests check is that the request the counter sends holds
what the chat request would (system prompt, tools), and that the figure comes back intact.
"""

from __future__ import annotations

import json
from typing import Any

from .server import Reply

__all__ = ["json_reply", "tokens", "words"]


def words(value: Any) -> int:
    """Words of every string value under ``value``."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(words(v) for v in value.values())
    if isinstance(value, list):
        return sum(words(v) for v in value)
    return 0


def tokens(body: dict[str, Any]) -> int:
    """The count for a request body: its words, the top-level ``model`` left out."""
    return words({k: v for k, v in body.items() if k != "model"})


def json_reply(obj: Any) -> Reply:
    """A 200 JSON reply."""
    return Reply(200, {"content-type": "application/json"},
                 json.dumps(obj, separators=(",", ":")).encode())
