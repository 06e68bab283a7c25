"""Ollama ``/api/chat`` (NDJSON), floor: httpx as the ollama SDK imports it, plus json."""

from __future__ import annotations

from typing import Any

from benchmarks.floor import Workload, http_library, stream_client


def pick(event: Any) -> str | None:
    text: str | None = event["message"].get("content")
    return text


def client(url: str, key: str | None) -> Workload:
    return stream_client(
        http_library("ollama._client"), f"{url}/api/chat", {},
        {"model": "llama3.2", "stream": True,
         "messages": [{"role": "user", "content": "Say something."}]},
        pick, prefix=b"",
    )
