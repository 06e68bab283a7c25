"""uvicorn's HTTP protocol with Nagle's algorithm off on every connection.

Why: asyncio switches Nagle off only for sockets whose ``proto`` is ``IPPROTO_TCP``, and
uvicorn's own listening socket for ``--workers > 1`` is made without it, so the accepted
connections keep Nagle on. A streamed answer then writes its headers, and its first event
waits for the client's delayed ACK: about 40 ms added to the time to first token on every
keep-alive connection (measured: 48 ms -> 5 ms end to end against the simulator). Setting
``TCP_NODELAY`` when each connection is made fixes it whatever made the socket.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["NoDelayH11Protocol", "protocol"]


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _nodelay(transport)
        super().connection_made(transport)


try:  # at module level, so worker processes can unpickle the class by its name
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpTools
except ImportError:  # httptools is not installed: h11 it is
    _HttpTools = None  # type: ignore[assignment,misc]
else:

    class NoDelayHttpToolsProtocol(_HttpTools):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            _nodelay(transport)
            super().connection_made(transport)


def protocol() -> type[asyncio.Protocol]:
    """The class uvicorn's ``http="auto"`` would pick (httptools when installed, else
    h11), with Nagle off."""
    if _HttpTools is None:
        return NoDelayH11Protocol
    return NoDelayHttpToolsProtocol
