"""A redis-server of its own (not the session's), behind a TCP proxy that counts the
connections made to it, and a way to freeze it (SIGSTOP: it accepts nothing new and
answers nothing, like a server that hangs, swaps or sits behind a dropped network).

Used by the frozen-Redis tests of the cache and the rate limiter: how many connection
attempts reach the server while it is frozen is counted here, not timed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from tests.redis_server import in_ci, redis_server

__all__ = ["CountingProxy", "FrozenRedis", "frozen_redis"]


class CountingProxy:
    """Forwards 127.0.0.1:<port> to ``target``; counts accepted connections."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.connections = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._open: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.close()
        with self._lock:
            for s in self._open:
                with suppress(OSError):
                    s.close()


class FrozenRedis:
    """A private redis-server, reached through a :class:`CountingProxy` (``url``)."""

    def __init__(self, direct_url: str, pid: int) -> None:
        host, port = re.match(r"redis://([^:/]+):(\d+)", direct_url).groups()  # type: ignore[union-attr]
        self.direct_url = direct_url
        self.pid = pid
        self.proxy = CountingProxy((host, int(port)))
        self.url = f"redis://127.0.0.1:{self.proxy.port}/0"

    @property
    def connections(self) -> int:
        """Connections made to the server (through the proxy) so far."""
        return self.proxy.connections

    @contextmanager
    def frozen(self) -> Iterator[None]:
        os.kill(self.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.pid, signal.SIGCONT)


def _server_pid(url: str) -> int:
    """The server's own process id (INFO server), to send it signals."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


@contextmanager
def frozen_redis() -> Iterator[FrozenRedis]:
    """A fresh redis-server for one test (skipped without the binary, failed under CI)."""
    try:
        server = redis_server()
        direct = server.__enter__()
    except FileNotFoundError as exc:
        if in_ci():
            pytest.fail(f"CI=true and {exc}")
        pytest.skip(str(exc))
    try:
        fr = FrozenRedis(direct, _server_pid(direct))
        try:
            yield fr
        finally:
            fr.proxy.close()
    finally:
        server.__exit__(None, None, None)
