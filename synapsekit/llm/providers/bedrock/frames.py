"""The ``application/vnd.amazon.eventstream`` framing, read as bytes arrive.

One message: prelude (total length, headers length: 4 bytes each, big-endian; the CRC32 of
those 8 bytes), the headers, the payload, the CRC32 of everything before it. A header is
a 1-byte name length, the name, a 1-byte value type and the value (Smithy's "Amazon Event
Stream Specification"; the official test vectors are in the simulator's captures).

Why not ``botocore.eventstream.EventStreamBuffer``, which reads the same bytes: it parses
each header through five layers of method calls, about a quarter of a whole streamed call's
client CPU here (three headers per event, one event per token); this flat loop checks the
same two CRCs and the same limits at a fraction of that. A frame that breaks them is a
:class:`FrameError` (the stream is malformed: the call path retries it before the first
token, like any other malformed event).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = ["MAX_HEADERS", "MAX_PAYLOAD", "FrameError", "Message", "Reader"]

#: The limits botocore enforces (and the spec sets): 128 KiB of headers, 24 MiB of payload.
MAX_HEADERS = 128 * 1024
MAX_PAYLOAD = 24 * 1024 * 1024
_PRELUDE = 12  # total length, headers length, prelude CRC
_unpack_prelude = struct.Struct(">III").unpack_from
_unpack_crc = struct.Struct(">I").unpack_from
_unpack_short = struct.Struct(">H").unpack_from
#: Fixed-size header values: type -> (size, struct format or None for raw bytes).
_FIXED: dict[int, tuple[int, str | None]] = {
    2: (1, ">b"), 3: (2, ">h"), 4: (4, ">i"), 5: (8, ">q"), 8: (8, ">q"), 9: (16, None),
}

Message = tuple[dict[str, Any], bytes]  # (headers, payload)


class FrameError(ValueError):
    """A frame whose CRCs or lengths are wrong: the bytes are not an event stream."""


class Reader:
    """Feed body pieces with :meth:`feed`; it yields each whole message (headers, payload)."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, piece: bytes) -> Iterator[Message]:
        data = self._pending + piece if self._pending else piece
        at, size = 0, len(data)
        try:
            while size - at >= _PRELUDE:
                total, headers_length, prelude_crc = _unpack_prelude(data, at)
                if zlib.crc32(data[at:at + 8]) != prelude_crc:
                    raise FrameError("prelude CRC mismatch")
                if headers_length > MAX_HEADERS or total - headers_length - 16 > MAX_PAYLOAD:
                    raise FrameError(f"frame too large ({total} bytes)")
                if total < _PRELUDE + 4 + headers_length:
                    raise FrameError(f"frame length {total} below its headers' {headers_length}")
                end = at + total
                if end > size:
                    break
                if zlib.crc32(data[at:end - 4]) != _unpack_crc(data, end - 4)[0]:
                    raise FrameError("message CRC mismatch")
                start = at + _PRELUDE
                headers = _headers(data, start, start + headers_length)
                yield headers, data[start + headers_length:end - 4]
                at = end
        finally:
            self._pending = data[at:]


def _headers(data: bytes, at: int, end: int) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    try:
        while at < end:
            length = data[at]
            name = data[at + 1:at + 1 + length].decode()
            at += 1 + length
            kind = data[at]
            at += 1
            if kind == 7 or kind == 6:  # string / byte array: 2-byte length
                (length,) = _unpack_short(data, at)
                raw = data[at + 2:at + 2 + length]
                headers[name] = raw.decode() if kind == 7 else raw
                at += 2 + length
            elif kind == 0 or kind == 1:  # boolean true / false: no value bytes
                headers[name] = kind == 0
            else:
                size, fmt = _FIXED[kind]
                raw = data[at:at + size]
                headers[name] = raw if fmt is None else struct.unpack(fmt, raw)[0]
                at += size
    except (KeyError, IndexError, struct.error, UnicodeDecodeError) as exc:
        raise FrameError(f"bad headers: {type(exc).__name__}") from None
    if at != end:
        raise FrameError("headers overrun their length")
    return headers
