"""boto3 is blocking: each call reads its event stream on one worker thread of its own.

The worker sends the request and then reads one event per ``next()``, while the event loop
awaits the result -- never a blocking read on the loop. When the consumer stops early or is
cancelled, a read still in flight is woken by shutting the socket down (closing it from
another thread does not wake a blocked ``recv``), the EventStream is closed on the worker
after that read, and the worker exits: the server sees the disconnect and no thread is left
reading. (A task cancelled before the response headers arrive cannot be woken: that worker
finishes at the latest after ``timeout`` seconds and then closes the response.)

Events are botocore's parsed dicts: boto3 offers no public raw access to the frames, and
botocore's parser already checks every frame's CRCs.
"""

from __future__ import annotations

import socket
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import Any

__all__ = ["release"]


def release(worker: ThreadPoolExecutor, pending: Future[Any] | None, stream: Any) -> None:
    """Stop the call's worker thread without leaving it blocked on the network."""
    if pending is not None and not pending.done():
        if stream is None:  # still sending the request: close the response when it comes
            pending.add_done_callback(_close_opened)
        else:  # a read is in flight: wake it, then close the stream after it
            _shutdown_socket(stream)
    if stream is not None:
        worker.submit(stream.close)
    worker.shutdown(wait=False)


def _close_opened(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result()["stream"].close()


def _shutdown_socket(stream: Any) -> None:
    """Wake a thread blocked reading ``stream``'s socket (EventStream -> urllib3 -> socket).

    While the connection keeps its socket, that is shut down. After a response that said
    ``Connection: close``, http.client has already detached the socket from the connection
    (``connection.sock`` is None) and only the response's file holds it: urllib3 >= 2.3
    shuts that down with ``HTTPResponse.shutdown()``; older ones are reached through the
    response's file.
    """
    raw: Any = getattr(stream, "_raw_stream", None)  # urllib3's HTTPResponse
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    with suppress(OSError, ValueError, RuntimeError):  # already closed, or released
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        elif callable(getattr(raw, "shutdown", None)):
            raw.shutdown()
        else:
            file = getattr(getattr(raw, "_original_response", None), "fp", None)
            sock = getattr(getattr(file, "raw", None), "_sock", None)
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
