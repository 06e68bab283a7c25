"""Mistral chat completions (SSE), floor: httpx2/httpx as mistralai's client imports it,
plus json."""

from __future__ import annotations

from benchmarks.floor import Workload, http_library, stream_client
from benchmarks.floor.openai import pick


def client(url: str, key: str | None) -> Workload:
    return stream_client(
        http_library("mistralai.client.basesdk", "mistralai.basesdk"),
        f"{url}/v1/chat/completions", {"authorization": f"Bearer {key}"},
        {"model": "mistral-small-latest", "stream": True,
         "messages": [{"role": "user", "content": "Say something."}]},
        pick,
    )
