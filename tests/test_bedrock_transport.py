"""Bedrock's async transport (``synapsekit.llm.providers.bedrock.transport`` and ``.frames``):
boto3 signs, aiohttp sends on the event loop, the frames are read as they arrive.

- the frame reader against botocore's own ``EventStreamBuffer`` (the reference) on the
  official test vectors and every captured body, fed whole and one byte at a time, and its
  refusals (a flipped bit in either CRC, a frame too large);
- against the simulator with the real boto3 and aiohttp: no thread per stream (200 at
  once), credentials that botocore must refresh are signed off the loop, the proxy of the
  environment is used, and ``~/.netrc`` never reaches a signed request.
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

from synapsekit import make_llm
from synapsekit.errors import LLMError
from synapsekit.llm.providers.bedrock.frames import MAX_PAYLOAD, FrameError, Reader
from synapsekit.testing.simulators.bedrock_protocol import (
    BedrockSimulator,
    encode_message,
    text_stream,
)
from synapsekit.testing.simulators.wire import read_wire
from tests.sim_fixtures import aws_credentials

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
ACCESS_KEY = "AKIATRANSPORTTEST001"
SECRET_KEY = "bedrock-transport-secret-0123456789abcdef"
REGION = "us-east-1"
VECTORS = json.loads(read_wire("bedrock/eventstream_test_vectors.json"))
CAPTURES = ["stream_ok", "stream_reasoning", "stream_error_throttling",
            "stream_tool_call_synthetic"]


# ------------------------------------------------------------------------- the frame reader


def _botocore(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(m.headers), m.payload) for m in buffer]


def _ours(data: bytes, step: int | None = None) -> list[tuple[dict[str, Any], bytes]]:
    reader = Reader()
    if step is None:
        return list(reader.feed(data))
    out: list[tuple[dict[str, Any], bytes]] = []
    for at in range(0, len(data), step):
        out.extend(reader.feed(data[at:at + step]))
    return out


BODIES = {v["name"]: bytes.fromhex(v["hex"]) for v in VECTORS} | {
    name: read_wire(f"bedrock/{name}.eventstream") for name in CAPTURES}


@pytest.mark.parametrize("name", BODIES)
def test_frames_match_botocore(name: str) -> None:
    data = BODIES[name]
    expected = _botocore(data)
    assert expected  # every body holds at least one message
    assert _ours(data) == expected
    assert _ours(data, step=1) == expected  # split anywhere, even inside the prelude
    assert _ours(data, step=7) == expected


def test_frames_of_every_header_type() -> None:
    headers = {name: (h["type"], h.get("value", h.get("value_utf8")))
               for name, h in next(v for v in VECTORS
                                   if v["name"] == "ALL_HEADERS_TYPES")["headers"].items()}
    data = encode_message(headers, b"{}")
    assert _ours(data) == _botocore(data)


def test_an_unfinished_frame_waits_for_its_bytes() -> None:
    data = BODIES["stream_ok"]
    reader = Reader()
    assert list(reader.feed(data[:-1])) == _botocore(data)[:-1]
    assert list(reader.feed(data[-1:])) == _botocore(data)[-1:]


@pytest.mark.parametrize("where", ["prelude", "message"])
def test_a_flipped_bit_is_refused(where: str) -> None:
    frame = bytearray(BODIES["PAYLOAD_ONE_STR_HEADER"])
    frame[4 if where == "prelude" else len(frame) - 6] ^= 0x01
    with pytest.raises(FrameError, match=f"{where} CRC"):
        _ours(bytes(frame))


def test_a_frame_too_large_is_refused_before_it_is_read() -> None:
    total = MAX_PAYLOAD + 1024
    prelude = struct.pack(">II", total, 0)
    import zlib

    head = prelude + struct.pack(">I", zlib.crc32(prelude))
    with pytest.raises(FrameError, match="too large"):
        _ours(head)


# ------------------------------------------------------------- over HTTP, against the simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[BedrockSimulator]:
    with BedrockSimulator({ACCESS_KEY: SECRET_KEY}, region=REGION) as server:
        yield server


@pytest.fixture(autouse=True)
def aws_env(sim: BedrockSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_credentials(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY, REGION)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY",
                 "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    sim.reset()


async def test_no_thread_per_stream(sim: BedrockSimulator) -> None:
    sim.default = text_stream([f" t{i}" for i in range(20)], delay=0.002)
    llm = make_llm(MODEL, base_url=sim.url)
    try:
        assert await llm.generate("warm up") == "".join(f" t{i}" for i in range(20))
        before = threading.active_count()
        peak = before
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, threading.active_count())
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        answers = await asyncio.gather(*(llm.generate(f"q{i}") for i in range(200)))
        done.set()
        await sampler
        assert set(answers) == {"".join(f" t{i}" for i in range(20))}
        assert len(sim.requests) == 201
        assert peak <= before + 1  # (the simulator's own threads are counted in both)
    finally:
        sim.default = text_stream(["Hello", ",", " world", "!"], input_tokens=12)
        await llm.aclose()


def _credential_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleep: float) -> None:
    """A profile whose credentials come from a process that takes ``sleep`` seconds and
    says they expire in five minutes: botocore refreshes them before every signature."""
    script = tmp_path / "creds.py"
    script.write_text(
        "import datetime, json, time\n"
        f"time.sleep({sleep})\n"
        "expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)\n"
        f"print(json.dumps({{'Version': 1, 'AccessKeyId': {ACCESS_KEY!r}, "
        f"'SecretAccessKey': {SECRET_KEY!r}, 'Expiration': expires.isoformat()}}))\n"
    )
    config = tmp_path / "config"
    config.write_text(f"[profile refreshing]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "refreshing")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")


async def test_a_refresh_before_signing_runs_off_the_loop(
    sim: BedrockSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _credential_process(tmp_path, monkeypatch, sleep=1.0)
    llm = make_llm(MODEL, base_url=sim.url)
    try:
        await llm.connection.client()  # built (its own refresh happens on the build thread)
        longest = 0.0
        done = asyncio.Event()

        async def tick() -> None:
            nonlocal longest
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                longest, last = max(longest, now - last), now

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)  # ticking before the call starts
        assert await llm.generate("hi") == "Hello, world!"
        done.set()
        await ticker
        assert len(sim.requests) == 1
        assert sim.requests[0].headers["authorization"].startswith("AWS4-HMAC-SHA256")
        assert longest < 0.6  # the 1 s credential process did not hold the loop
    finally:
        await llm.aclose()


async def test_netrc_never_reaches_a_signed_request(
    sim: BedrockSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-for-aws\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    llm = make_llm(MODEL, base_url=sim.url)
    try:
        assert await llm.generate("hi") == "Hello, world!"
        assert sim.requests[0].headers["authorization"].startswith("AWS4-HMAC-SHA256")
    finally:
        await llm.aclose()


async def test_the_environment_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that answers 502 and records the request line: the request went there, in
    the absolute form a proxy gets, for the endpoint's URL."""
    lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append(await reader.readline())
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    llm = make_llm(MODEL, base_url="http://bedrock.example.invalid:8080")
    try:
        with pytest.raises(LLMError) as caught:
            await llm.generate("hi")
        assert caught.value.status_code == 502
        assert lines and lines[0].startswith(
            b"POST http://bedrock.example.invalid:8080/model/")
    finally:
        await llm.aclose()
        server.close()
        await server.wait_closed()
