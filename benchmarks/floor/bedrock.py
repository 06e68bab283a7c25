"""Bedrock ConverseStream, floor: urllib3 (what botocore sends with), the request signed
with botocore's SigV4 signer (signing is not a response object: without it the request is
refused), and the ``application/vnd.amazon.eventstream`` framing parsed by hand here --
prelude, headers, payload, both CRCs checked with ``zlib.crc32`` as botocore does -- with
one ``json.loads`` per event. No boto3 client, no botocore parser, no event dicts.

urllib3 is blocking, so a stream is read on a thread: the same shape as boto3's (a worker
thread per concurrent stream, from a pool sized for the load).
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from benchmarks.floor import Workload

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
_POOL = ThreadPoolExecutor(max_workers=1000, thread_name_prefix="floor-bedrock")
HEADERS = {"content-type": "application/json"}
_HEADER_SIZES = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}  # fixed-size value types


def event_type(headers: bytes) -> str:
    """The ``:event-type`` header of one frame (names: 1-byte length; strings and bytes:
    2-byte length)."""
    at = 0
    while at < len(headers):
        size = headers[at]
        name = headers[at + 1:at + 1 + size]
        at += 1 + size
        kind = headers[at]
        at += 1
        if kind in (6, 7):
            (length,) = struct.unpack_from(">H", headers, at)
            value = headers[at + 2:at + 2 + length]
            at += 2 + length
            if name == b":event-type":
                return value.decode()
        else:
            at += _HEADER_SIZES[kind]
    return ""


def texts(body: Any) -> list[str]:
    """Read the framed body to its end; the text of every ``contentBlockDelta``."""
    parts: list[str] = []
    buffer = b""
    for piece in body.stream(65536):
        buffer += piece
        while len(buffer) >= 12:
            total, header_length, prelude_crc = struct.unpack_from(">III", buffer)
            if len(buffer) < total:
                break
            frame, buffer = buffer[:total], buffer[total:]
            if zlib.crc32(frame[:8]) != prelude_crc or (
                zlib.crc32(frame[:-4]) != struct.unpack_from(">I", frame, total - 4)[0]
            ):
                raise RuntimeError("floor: bad event-stream CRC")
            if event_type(frame[12:12 + header_length]) == "contentBlockDelta":
                event = json.loads(frame[12 + header_length:-4])
                text = event["delta"].get("text")
                if text:
                    parts.append(text)
    return parts


def client(url: str, key: str | None) -> Workload:
    import urllib3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from benchmarks._common import AWS_ID, AWS_REGION, AWS_SECRET

    pool = urllib3.PoolManager(maxsize=1000, block=False, retries=False)
    signer = SigV4Auth(Credentials(AWS_ID, AWS_SECRET), "bedrock", AWS_REGION)
    target = f"{url}/model/{quote(MODEL, safe='')}/converse-stream"
    payload = json.dumps({"messages": [{"role": "user", "content": [{"text": "Say something."}]}]})

    def blocking() -> str:
        request = AWSRequest("POST", target, data=payload, headers=HEADERS)
        signer.add_auth(request)  # a fresh date and signature per request, as boto3 does
        response = pool.request("POST", target, body=payload, headers=dict(request.headers),
                                preload_content=False)
        try:
            if response.status != 200:
                raise RuntimeError(f"floor: HTTP {response.status}: {response.read()!r}")
            return "".join(texts(response))
        finally:
            response.release_conn()

    async def one() -> str:
        return await asyncio.get_running_loop().run_in_executor(_POOL, blocking)

    return one
