"""Anthropic Messages (SSE), floor: httpx as the anthropic SDK imports it, plus json."""

from __future__ import annotations

from typing import Any

from benchmarks.floor import Workload, http_library, stream_client


def pick(event: Any) -> str | None:
    return event["delta"].get("text") if event["type"] == "content_block_delta" else None


def client(url: str, key: str | None) -> Workload:
    return stream_client(
        http_library("anthropic._base_client"), f"{url}/v1/messages",
        {"x-api-key": key or "", "anthropic-version": "2023-06-01"},
        {"model": "claude-sonnet-4-6", "max_tokens": 1024, "stream": True,
         "messages": [{"role": "user", "content": "Say something."}]},
        pick,
    )
