"""Gemini ``streamGenerateContent?alt=sse``, floor: httpx as google-genai's API client
imports it (google-genai sends with aiohttp when no httpx client is given and aiohttp is
installed; synapsekit gives it an httpx client), plus json."""

from __future__ import annotations

from typing import Any

from benchmarks.floor import Workload, http_library, stream_client


def pick(event: Any) -> str | None:
    candidates = event.get("candidates")
    if not candidates:
        return None
    parts = candidates[0].get("content", {}).get("parts") or ()
    return "".join(part.get("text", "") for part in parts)


def client(url: str, key: str | None) -> Workload:
    return stream_client(
        http_library("google.genai._api_client"),
        f"{url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        {"x-goog-api-key": key or ""},
        {"contents": [{"role": "user", "parts": [{"text": "Say something."}]}]},
        pick,
    )
