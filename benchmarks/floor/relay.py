"""Relay floors for the gateway benchmark: the least an OpenAI-compatible gateway written
in Python on the same parts must do for a streamed request, with none of synapsekit.

Why: the gateway's added time to first token is mostly the CPU it spends between the
client's request and the first token's write, and much of that is in the parts it is
built on (uvicorn's HTTP, the openai SDK building the upstream request, httpx2 sending
it). These apps measure those parts alone, so the benchmark can say how much of the added
time is the gateway's and how much any gateway on these parts pays:

* ``sdk``: a bare ASGI app on uvicorn (no Starlette) that checks the bearer key, parses the
  JSON body, sends it upstream through the openai SDK's low-level ``post`` (what
  synapsekit's OpenAI provider calls) and relays the upstream's bytes as they arrive: no
  routing, no budgets, no ledger, no re-encoding of events;
* ``raw``: the same with one pooled httpx2 client instead of the SDK (no SDK at all).

Started by ``benchmarks/bench_gateway.py --floors`` as ``python -m
benchmarks.floor.relay sdk_app|raw_app PORT`` (:func:`main`), the upstream in the environment
(``RELAY_UPSTREAM``: the simulator's ``/v1`` URL; ``RELAY_KEY``: its key; ``RELAY_GW_KEY``:
the key clients send).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_UPSTREAM = os.environ.get("RELAY_UPSTREAM", "")
_KEY = os.environ.get("RELAY_KEY", "")
_GW_KEY = ("Bearer " + os.environ.get("RELAY_GW_KEY", "")).encode()
_HEAD = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def _request(scope: Scope, receive: Receive, send: Send) -> dict[str, Any] | None:
    """The JSON body of an authorised POST, or None once a refusal was sent."""
    if scope["type"] != "http":
        return None
    headers = dict(scope["headers"])
    if headers.get(b"authorization") != _GW_KEY:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return None
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    data: dict[str, Any] = json.loads(body)
    return data


async def _relay(upstream: Any, send: Send) -> None:
    """The upstream response's bytes, relayed as they arrive: what one read of the
    upstream brought leaves in one write (the head with the first), so the first write
    holds the first token when the upstream sent it with the role event, as synapsekit's
    gateway does; a part a write would otherwise not wake the client for nothing."""
    await send({"type": "http.response.start", "status": upstream.status_code,
                "headers": _HEAD})
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def produce() -> None:
        try:
            async for part in upstream.aiter_raw():
                queue.put_nowait(part)
        finally:
            queue.put_nowait(None)

    producer = asyncio.create_task(produce())
    try:
        done = False
        while not done:
            parts = [await queue.get()]
            while not queue.empty():
                parts.append(queue.get_nowait())
            done = parts[-1] is None
            data = b"".join(p for p in parts if p is not None)
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
        await producer
    finally:
        producer.cancel()
        await upstream.aclose()
    await send({"type": "http.response.body", "body": b""})


class _Lazy:
    """A client built on the first request, in the server's event loop."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.build = build
        self.value: Any = None

    def get(self) -> Any:
        if self.value is None:
            self.value = self.build()
        return self.value


def _sdk_client() -> Any:
    import openai

    return openai.AsyncOpenAI(api_key=_KEY, base_url=_UPSTREAM, max_retries=0)


def _raw_client() -> Any:
    from synapsekit.llm.providers._common import http_stack

    http = http_stack("openai._base_client").module
    return http.AsyncClient(base_url=_UPSTREAM, timeout=60,
                            headers={"authorization": f"Bearer {_KEY}"})


_SDK = _Lazy(_sdk_client)
_RAW = _Lazy(_raw_client)


async def sdk_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = await _request(scope, receive, send)
    if body is None:
        return
    from synapsekit.llm.providers._common import http_stack

    body["model"] = "gpt-4o-mini"  # the group's member, as a gateway maps it
    upstream = await _SDK.get().post("/chat/completions", body=body, stream=True,
                                     cast_to=http_stack("openai._base_client").response)
    await _relay(upstream, send)


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = await _request(scope, receive, send)
    if body is None:
        return
    body["model"] = "gpt-4o-mini"
    client = _RAW.get()
    upstream = await client.send(client.build_request("POST", "/chat/completions", json=body),
                                 stream=True)
    await _relay(upstream, send)


def main() -> None:
    """``python -m benchmarks.floor.relay sdk_app|raw_app PORT``: the relay on uvicorn
    with the gateway's protocol class (Nagle off, head with the first body bytes), passed
    as a class: older uvicorn CLIs take only their own names for ``--http``."""
    import sys

    import uvicorn

    from synapsekit.gateway._nodelay import protocol

    app = {"sdk_app": sdk_app, "raw_app": raw_app}[sys.argv[1]]
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=False,
                log_level="warning", loop="asyncio", http=protocol())


if __name__ == "__main__":
    main()
