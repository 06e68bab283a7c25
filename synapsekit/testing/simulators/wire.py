"""Access to the recorded provider traffic in ``captures/`` beside this module (see its
INDEX.md): package data, so the simulators replay real captures wherever synapsekit is
installed, and the tests read the same files (one copy)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path

from .server import Reply

__all__ = ["WIRE", "read_wire", "replay", "sse_events"]

WIRE = Path(__file__).resolve().parent / "captures"

# A line ending (CRLF, LF or CR) followed by an empty line: the end of one SSE event.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")


@functools.cache
def read_wire(relpath: str) -> bytes:
    """The exact bytes of a capture, e.g. ``read_wire("openai/stream_ok.sse")`` (cached)."""
    return (WIRE / relpath).read_bytes()


def sse_events(data: bytes) -> list[bytes]:
    """Split an SSE body into events, each keeping its own bytes and trailing blank line.

    ``b"".join(sse_events(x)) == x`` always holds, so a replay is byte-identical. Comment events
    (``: keep-alive``) stay separate events; surplus blank lines go with the event after them.
    """
    events: list[bytes] = []
    start = 0
    for match in _EVENT_END.finditer(data):
        events.append(data[start : match.end()])
        start = match.end()
    if start < len(data):
        events.append(data[start:])
    return events


def replay(
    relpath: str,
    sse_type: str,
    json_type: str,
    *,
    delay: float = 0.0,
    cut_after: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Replay a capture byte for byte: ``.sse`` as one piece per event, ``.json`` whole.

    The content types are the caller's: each simulator answers with its real API's.
    """
    data = read_wire(relpath)
    if relpath.endswith(".json"):
        return Reply(200, {"content-type": json_type, **(headers or {})}, data, delay=delay)
    if not relpath.endswith(".sse"):
        raise ValueError(f"replay() takes .sse or .json files, not {relpath!r}")
    return Reply(
        200,
        {"content-type": sse_type, **(headers or {})},
        stream=sse_events(data),
        delay=delay,
        cut_after=cut_after,
    )
