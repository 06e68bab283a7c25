"""Floor clients: each protocol's stream read with the HTTP library its SDK uses, plus
``json`` -- no SDK object anywhere. That is the practical limit for a Python client on the
protocol: what any client, an SDK or synapsekit, must at least pay to send the request and
read the body. One module per protocol; :func:`client` picks it.

The text protocols share :func:`stream_client`: one ``AsyncClient`` (pool sized for 2,000
connections: the floor must not stall), the body read as bytes and split on newlines by
hand (no line decoder), each event one ``json.loads``, the text picked out by the
protocol's ``pick``. Bedrock is blocking (botocore's urllib3) and lives in :mod:`.bedrock`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterable, Awaitable, Callable
from types import ModuleType
from typing import Any

Workload = Callable[[], Awaitable[str]]
#: One decoded event -> the text it carries (None: none).
Pick = Callable[[Any], "str | None"]

PROTOCOLS = ("openai", "anthropic", "gemini", "cohere", "mistral", "ollama", "bedrock")


def client(protocol: str, url: str, key: str | None) -> Workload:
    """The floor client of ``protocol`` against the simulator at root ``url``."""
    module = importlib.import_module(f"{__name__}.{protocol}")
    factory: Callable[[str, str | None], Workload] = module.client
    return factory(url, key)


def http_library(*sdk_modules: str) -> ModuleType:
    """The HTTP library (httpx2 or httpx) that the SDK's sending module imports: the floor
    uses exactly the SDK's own stack."""
    from synapsekit.llm.providers._common import http_stack

    return http_stack(*sdk_modules).module


def stream_client(
    http: ModuleType, url: str, headers: dict[str, str], body: dict[str, Any], pick: Pick,
    *, prefix: bytes = b"data: ",
) -> Workload:
    """A POST whose streamed body is one JSON event per line after ``prefix`` (SSE:
    ``data: ``; NDJSON: empty); other lines (``event:``, blanks, ``[DONE]``) skipped."""
    session = http.AsyncClient(
        timeout=None, limits=http.Limits(max_connections=2000, max_keepalive_connections=1000)
    )
    payload = json.dumps(body).encode()
    headers = {"content-type": "application/json", **headers}

    async def one() -> str:
        async with session.stream("POST", url, content=payload, headers=headers) as response:
            if response.status_code != 200:
                body = await response.aread()
                raise RuntimeError(f"floor: HTTP {response.status_code}: {body!r}")
            return await read_text(response.aiter_bytes(), pick, prefix=prefix)

    return one


async def read_text(body: AsyncIterable[bytes], pick: Pick, *, prefix: bytes = b"data: ") -> str:
    """The floor's whole read of a streamed body: split on newlines by hand, one
    ``json.loads`` per event line after ``prefix``, the text ``pick`` finds joined
    (``benchmarks/bench_layers.py`` times it on a recorded body)."""
    parts: list[str] = []
    loads, start, rest = json.loads, len(prefix), b""
    async for piece in body:
        lines = (rest + piece).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.startswith(prefix) and line[start:start + 1] == b"{":
                text = pick(loads(line[start:]))
                if text:
                    parts.append(text)
    return "".join(parts)
