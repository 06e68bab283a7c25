"""uvicorn's HTTP protocol with Nagle's algorithm off on every connection, and a response's
head sent in one write with the first bytes of its body.

Why Nagle off: asyncio switches it off only for sockets whose ``proto`` is
``IPPROTO_TCP``, and uvicorn's own listening socket for ``--workers > 1`` is made without
it, so the accepted connections keep Nagle on. A streamed answer then writes its headers,
and its first event waits for the client's delayed ACK: about 40 ms added to the time to
first token on every keep-alive connection (measured: 48 ms -> 5 ms end to end against the
simulator). Setting ``TCP_NODELAY`` when each connection is made fixes it whatever made
the socket.

Why one write (:class:`_HeadWithBody`): uvicorn writes the status line and headers as soon
as the app sends ``http.response.start``, and the body in a second write. With Nagle off
that is two segments, and the first one wakes the client before the gateway has written
the answer's first token: on a busy machine the client then takes the CPU and the token
waits for it (measured: 0.7-1.1 ms between the two writes, 0.04 ms of it the gateway's
own). The head is held until the next write on the connection -- the first body bytes,
in the same turn of the event loop for a streamed answer as for a JSON one -- and goes
with it; a head with no body written in that turn goes at the end of the turn.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["NoDelayH11Protocol", "protocol"]

_HEAD = b"HTTP/1.1 "


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HeadWithBody:
    """The connection's transport as uvicorn sees it: a write that starts a response
    (``HTTP/1.1 ...``) is held and joined to the next write, or written at the end of the
    loop's turn; everything else is the real transport's. The order of the bytes is kept
    (a write while a head is held joins it), and nothing is held across a turn."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
        elif data[:9] == _HEAD:
            self._held = bytes(data)
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _made(transport: asyncio.Transport) -> asyncio.Transport:
    _nodelay(transport)
    return _HeadWithBody(transport)  # type: ignore[return-value]


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_made(transport))


try:  # at module level, so worker processes can unpickle the class by its name
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpTools
except ImportError:  # httptools is not installed: h11 it is
    _HttpTools = None  # type: ignore[assignment,misc]
else:

    class NoDelayHttpToolsProtocol(_HttpTools):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_made(transport))


def protocol() -> type[asyncio.Protocol]:
    """The class uvicorn's ``http="auto"`` would pick (httptools when installed, else
    h11), with Nagle off and the head sent with the body."""
    if _HttpTools is None:
        return NoDelayH11Protocol
    return NoDelayHttpToolsProtocol
