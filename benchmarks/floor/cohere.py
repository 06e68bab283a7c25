"""Cohere Chat v2 (SSE), floor: httpx as the cohere SDK's HTTP client imports it, plus json."""

from __future__ import annotations

from typing import Any

from benchmarks.floor import Workload, http_library, stream_client


def pick(event: Any) -> str | None:
    if event["type"] != "content-delta":
        return None
    text: str | None = event["delta"]["message"]["content"].get("text")
    return text


def client(url: str, key: str | None) -> Workload:
    return stream_client(
        http_library("cohere.core.http_client"), f"{url}/v2/chat",
        {"authorization": f"Bearer {key}"},
        {"model": "command-a-03-2025", "stream": True,
         "messages": [{"role": "user", "content": "Say something."}]},
        pick,
    )
