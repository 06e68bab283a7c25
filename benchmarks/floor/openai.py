"""OpenAI chat completions (SSE), floor: httpx as the openai SDK imports it, plus json."""

from __future__ import annotations

from typing import Any

from benchmarks.floor import Workload, http_library, stream_client


def pick(event: Any) -> str | None:
    choices = event["choices"]
    return choices[0]["delta"].get("content") if choices else None


def client(url: str, key: str | None) -> Workload:
    return stream_client(
        http_library("openai._base_client"), f"{url}/v1/chat/completions",
        {"authorization": f"Bearer {key}"},
        {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
         "messages": [{"role": "user", "content": "Say something."}]},
        pick,
    )
