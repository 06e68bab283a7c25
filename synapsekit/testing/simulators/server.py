"""A small, dependency-free HTTP/1.1 server for simulating LLM provider APIs in tests.

Why not ``http.server`` or an ASGI app: the simulators must stream byte-exact bodies chunk by
chunk, inject transport faults (slow pieces, a body cut off mid-stream, a response that never
arrives) and notice promptly when a client walks away mid-stream. That needs direct control of
the socket, which asyncio's ``Protocol`` API gives without third-party code.

The server owns its event loop in a daemon thread, so one instance serves clients running in
any other loop or thread (pytest-asyncio tests, sync SDK clients, a benchmark process).

Protocol simulators subclass :class:`Server` and override :meth:`Server.validate` (reject bad
requests the way the real API would) and :meth:`Server.default_reply`; tests script replies
with :meth:`Server.enqueue`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Handler", "Headers", "Reply", "Request", "Server", "serve_main"]

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
_TERMINATOR = b"0\r\n\r\n"


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only header mapping; repeated headers are joined with ", "."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            self._items[key] = f"{self._items[key]}, {value}" if key in self._items else value

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(eq=False)
class Request:
    """One received HTTP request, as recorded in :attr:`Server.requests`."""

    method: str
    target: str
    headers: Headers
    body: bytes = b""
    version: str = "HTTP/1.1"
    path: str = field(init=False)
    query: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))

    def json(self) -> Any:
        """The body parsed as JSON (cached); raises ``ValueError`` if it is not JSON."""
        if "_json" not in self.__dict__:
            self.__dict__["_json"] = json.loads(self.body)
        return self.__dict__["_json"]

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass(eq=False)
class Reply:
    """What to send back for one request, including transport faults.

    ``stream=None`` sends ``body`` with a Content-Length (after ``delay``, if any). A list of
    pieces is sent with ``Transfer-Encoding: chunked``, one chunk per piece, each preceded by
    ``delay`` seconds; ``cut_after=N`` closes the connection after N pieces without the final
    zero-length chunk; ``hang=True`` sends the pieces (possibly none) and then waits silently until
    the client goes away. ``head_delay`` holds a streamed reply's head back that long (a slow
    first byte; a client leaving meanwhile counts as a disconnect). ``adapt`` lets a scripted
    reply depend on the request it answers: the server sends ``adapt(request)`` instead.
    ``close`` ends the keep-alive connection afterwards.

    Treat replies as immutable (use :func:`dataclasses.replace`): the wire bytes are encoded once
    and cached on the instance, so the same reply can be served many times cheaply.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: Sequence[bytes] | None = None
    delay: float = 0.0
    cut_after: int | None = None
    hang: bool = False
    head_delay: float = 0.0
    close: bool = False
    adapt: Callable[[Request], Reply] | None = None

    @property
    def streamed(self) -> bool:
        return self.stream is not None or self.hang

    @functools.cached_property
    def chunks(self) -> list[bytes]:
        """The stream pieces framed as chunked-encoding chunks (empty pieces are dropped, since
        a zero-length chunk would end the body early)."""
        return [b"%x\r\n%s\r\n" % (len(p), p) for p in self.stream or () if p]

    @functools.cached_property
    def head(self) -> bytes:
        """Status line and user headers, without framing headers or the closing blank line."""
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {self.status} {phrase}"]
        lines += [
            f"{k}: {v}"
            for k, v in self.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "connection")
        ]
        return ("\r\n".join(lines) + "\r\n").encode("latin-1")

    def encode_head(self, keep_alive: bool, extra: bytes = b"") -> bytes:
        """The complete response head; ``extra`` is pre-encoded ``name: value\\r\\n`` lines."""
        framing = (
            b"transfer-encoding: chunked\r\n"
            if self.streamed
            else b"content-length: %d\r\n" % len(self.body)
        )
        end = b"\r\n" if keep_alive else b"connection: close\r\n\r\n"
        return self.head + extra + framing + end


Handler = Callable[[Request], Reply]
_S = TypeVar("_S", bound="Server")


class _BadRequest(Exception):
    """The bytes on the wire are not HTTP we can parse; answer 400/413 and close."""

    def __init__(self, status: int = 400) -> None:
        super().__init__(status)
        self.status = status


class _Connection(asyncio.Protocol):
    """One client connection: buffers input, serves requests one after another (keep-alive)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.gone: asyncio.Future[None] = self.loop.create_future()
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol callbacks -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connection_opened(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._wake_reader()

    def eof_received(self) -> bool:
        self._set_gone()  # a client that half-closes is treated as gone
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_gone()
        self.server._connection_closed(self)

    def pause_writing(self) -> None:
        self._drain_waiter = self.loop.create_future()

    def resume_writing(self) -> None:
        self._release_drain()

    # --- helpers --------------------------------------------------------------------------
    def _set_gone(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)
        self._wake_reader()
        self._release_drain()

    def _wake_reader(self) -> None:
        if self._data_waiter is not None and not self._data_waiter.done():
            self._data_waiter.set_result(None)

    def _release_drain(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        self._drain_waiter = None

    async def _more(self) -> bool:
        """Wait for more input; False once the client is gone."""
        if self.gone.done():
            return False
        self._data_waiter = self.loop.create_future()
        await self._data_waiter
        return not self.gone.done() or bool(self.buf)

    async def _read_until(self, sep: bytes, limit: int = MAX_HEAD) -> bytes | None:
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                data = bytes(self.buf[:i])
                del self.buf[: i + len(sep)]
                return data
            if len(self.buf) > limit:
                raise _BadRequest(431)
            start = max(0, len(self.buf) - len(sep) + 1)
            if not await self._more():
                return None

    async def _read_exactly(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not await self._more():
                return None
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, but wake as soon as the client goes away; True if it did."""
        if seconds > 0 and not self.gone.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.gone), seconds)
        return self.gone.done()

    async def _write(self, data: bytes) -> bool:
        """Write with flow control; False if the client is gone."""
        assert self.transport is not None
        if self.gone.done():
            return False
        self.transport.write(data)
        if self._drain_waiter is not None:
            await self._drain_waiter
        return not self.gone.done()

    # --- request/response cycle -----------------------------------------------------------
    async def serve(self) -> None:
        assert self.transport is not None
        try:
            while True:
                request = await self._read_request()
                if request is None or not await self._respond(request):
                    break
        except _BadRequest as exc:
            await self._write(Reply(exc.status, {"content-type": "text/plain"}).encode_head(False))
        finally:
            self.transport.close()

    async def _read_request(self) -> Request | None:
        while self.buf[:2] == b"\r\n":  # tolerate stray CRLF between requests (RFC 9112 2.2)
            del self.buf[:2]
        head = await self._read_until(b"\r\n\r\n")
        if head is None:
            return None
        try:
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, version = request_line.split(" ")
            pairs = [line.split(":", 1) for line in header_lines]
            headers = Headers((name.strip(), value.strip()) for name, value in pairs)
        except ValueError:
            raise _BadRequest from None
        if headers.get("expect", "").lower() == "100-continue":
            await self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked_body()
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise _BadRequest from None
            if length > MAX_BODY:
                raise _BadRequest(413)
            body = await self._read_exactly(length)
        if body is None:
            return None
        return Request(method, target, headers, body, version)

    async def _read_chunked_body(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = await self._read_until(b"\r\n")
            if size_line is None:
                return None
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest from None
            total += size
            if total > MAX_BODY:
                raise _BadRequest(413)
            if size == 0:
                break
            data = await self._read_exactly(size + 2)
            if data is None:
                return None
            parts.append(data[:-2])
        while True:  # trailer section, ends with an empty line
            trailer = await self._read_until(b"\r\n")
            if trailer is None:
                return None
            if not trailer:
                return b"".join(parts)

    async def _respond(self, request: Request) -> bool:
        """Send the reply; True if the connection stays open for another request."""
        assert self.transport is not None
        reply, extra = self.server._dispatch(request)
        keep = request.keep_alive and not reply.close
        if not reply.streamed:
            if await self._sleep(reply.delay):
                return False
            return await self._write(reply.encode_head(keep, extra) + reply.body) and keep
        if await self._sleep(reply.head_delay) or not await self._write(
            reply.encode_head(keep, extra)
        ):
            self.server._disconnected()
            return False
        chunks = reply.chunks if reply.cut_after is None else reply.chunks[: reply.cut_after]
        for chunk in chunks:
            if await self._sleep(reply.delay) or not await self._write(chunk):
                self.server._disconnected()
                return False
        if reply.cut_after is not None:
            self.transport.close()  # flushes what was written, then FIN: body left incomplete
            return False
        if reply.hang:
            await self.gone
            self.server._disconnected()
            return False
        if not await self._write(_TERMINATOR):
            self.server._disconnected()
            return False
        return keep


class Server:
    """A threaded HTTP/1.1 test server: validate → scripted queue → default reply.

    ``handler`` (a callable ``Request -> Reply``) supplies the default reply; subclasses may
    instead override :meth:`default_reply`, :meth:`validate` and :meth:`response_headers`.
    """

    #: A protocol simulator's reply when nothing is queued (its :meth:`default_reply`
    #: serves it); :func:`serve_main`'s ``--tool-fragments`` replaces it.
    default: Reply | None = None

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.record = record
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[Request] = []
        self._queue: collections.deque[Reply] = collections.deque()
        self._disconnects = 0
        self._connections = 0
        self._open: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._startup_error: BaseException | None = None

    # --- overridable protocol hooks (run on the server thread) -------------------------------
    def validate(self, request: Request) -> Reply | None:
        """Return an error reply for a request the real API would reject, else None."""
        return None

    def default_reply(self, request: Request) -> Reply:
        """The reply when nothing is queued."""
        if self.handler is not None:
            return self.handler(request)
        return Reply(404, {"content-type": "text/plain"}, b"no handler\n")

    def response_headers(self, request: Request, reply: Reply) -> Mapping[str, str]:
        """Headers added to every response (e.g. a request id), without re-encoding the reply."""
        return {}

    # --- public API ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[Request]:
        """A snapshot of every request received so far (including rejected ones)."""
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> int:
        """How many clients went away while a streamed reply was still being written."""
        with self._lock:
            return self._disconnects

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted since start (or :meth:`reset`)."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        """How many client connections are open now (a client that closed its pool, or was
        collected, has none left here)."""
        return len(self._open)

    def enqueue(self, *replies: Reply) -> None:
        """Script the replies for the next valid requests, in order."""
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        """Forget recorded requests, queued replies and the disconnect, connection and error
        counts, so a server shared by many tests looks fresh to each one."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()
            self._disconnects = 0
            self._connections = 0
            self.errors.clear()

    def wait_for_disconnects(self, n: int, timeout: float) -> bool:
        """Block until at least ``n`` mid-stream disconnects were seen; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._disconnects >= n, timeout)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> bool:
        """Block until at least ``n`` requests were received; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._requests) >= n, timeout)

    async def wait_for_disconnects_async(self, n: int, timeout: float) -> bool:
        """:meth:`wait_for_disconnects` without blocking the caller's event loop."""
        return await asyncio.to_thread(self.wait_for_disconnects, n, timeout)

    def start(self: _S) -> _S:
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or stop_event is None:
            return
        loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=10)
        self._thread = None

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- internals ----------------------------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            server = await loop.create_server(
                lambda: _Connection(self), self.host, self.port, backlog=1024
            )
        except OSError as exc:
            self._startup_error = exc
            ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        await self._stop_event.wait()
        server.close()
        for conn in list(self._open):
            if conn.transport is not None:
                conn.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    def _connection_opened(self, conn: _Connection) -> None:
        with self._lock:
            self._connections += 1
        self._open.add(conn)
        task = asyncio.get_running_loop().create_task(conn.serve())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _connection_closed(self, conn: _Connection) -> None:
        self._open.discard(conn)

    def _disconnected(self) -> None:
        with self._changed:
            self._disconnects += 1
            self._changed.notify_all()

    def _dispatch(self, request: Request) -> tuple[Reply, bytes]:
        """validate → queue → default; returns the reply and its extra header lines."""
        with self._changed:
            if self.record:
                self._requests.append(request)
                self._changed.notify_all()
        try:
            reply = self.validate(request)
            if reply is None:
                with self._lock:
                    reply = self._queue.popleft() if self._queue else None
                if reply is None:
                    reply = self.default_reply(request)
            if reply.adapt is not None:
                reply = reply.adapt(request)
            extra = self.response_headers(request, reply)
            return reply, "".join(f"{k}: {v}\r\n" for k, v in extra.items()).encode("latin-1")
        except Exception as exc:  # a broken handler must show up in the test, not hang it
            self.errors.append(exc)
            traceback.print_exc(file=sys.stderr)
            body = f"simulator handler error: {exc!r}\n".encode()
            return Reply(500, {"content-type": "text/plain"}, body, close=True), b""


#: The benchmarks' tool call (``--tool-fragments``): its name and the one argument.
BENCH_TOOL = "search"


def bench_tool_arguments(fragments: int) -> tuple[dict[str, str], list[str]]:
    """The arguments of the benchmarks' tool call, ``{"q": "xxxx..."}`` as compact JSON of
    ``4 * fragments`` characters, and that JSON cut in ``fragments`` 4-character pieces
    (the shape of a real streamed call: the first piece opens the object)."""
    text = "x" * max(0, 4 * fragments - len('{"q":""}'))
    whole = json.dumps({"q": text}, separators=(",", ":"))
    return {"q": text}, [whole[i:i + 4] for i in range(0, len(whole), 4)]


def serve_main(
    description: str | None,
    build: Callable[[argparse.Namespace, list[str]], Server],
    argv: Sequence[str] | None = None,
    *,
    api_key: str | None = None,
    extra: Callable[[argparse.ArgumentParser], object] | None = None,
    tool: Callable[[int], Reply] | None = None,
) -> None:
    """Run one simulator in the foreground, for benchmarks in a separate process.

    Parses ``--port --tokens --delay`` (plus ``--api-key`` when the protocol has a key,
    ``--tool-fragments`` when it gives ``tool``, and whatever ``extra`` adds), builds the
    server with ``build(args, tokens)``, prints ``PORT <n>`` and serves until killed. Build
    it with ``record=False``: a long benchmark run must not grow memory with every request.
    ``--tool-fragments N`` makes the default reply ``tool(N)``: one streamed call of
    :data:`BENCH_TOOL` with :func:`bench_tool_arguments` in the protocol's own shape.
    """
    parser = argparse.ArgumentParser(description=(description or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=4, help="tokens in the default reply")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each event")
    if api_key is not None:
        parser.add_argument("--api-key", default=api_key)
    if tool is not None:
        parser.add_argument("--tool-fragments", type=int, default=0,
                            help="serve one tool call of this many argument fragments")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    sim = build(args, [f" tok{i}" for i in range(args.tokens)])
    if tool is not None and args.tool_fragments > 0:
        sim.default = tool(args.tool_fragments)
    sim.start()
    print(f"PORT {sim.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
