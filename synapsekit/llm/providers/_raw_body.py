"""Reading a stream's body raw from an SDK that sends through our own httpx client.

Some SDKs offer no public raw stream and build a pydantic object per streamed line
(google-genai's ``GenerateContentResponse``, ollama's ``ChatResponse``): several times the
cost of one ``json`` parse. Both send through an httpx (or httpx2) ``AsyncClient`` we
build, so its response hook can do two things for the chat call being made (a
:class:`Call`, current in :data:`CALL`: the SDK sends the request in the caller's context):

- remember each response the call opened, so the call closes them all when it ends,
  early or not (an SDK's nested generators need not pass ``aclose()`` down, and their
  cyclic references would keep the connection open until the garbage collector ran);
- **take the body of the call's 200 stream** (:attr:`Call.body`): the SDK's response is
  handed an empty body, so the SDK reads nothing and builds no object, and the call reads
  the lines itself. The SDK still builds, authenticates and sends the request and maps
  every error status (nothing but a 200 is taken), through public names only (the
  client's ``event_hooks``, httpx's ``Response`` and ``ByteStream``).

A call takes only the request it is for (:attr:`Call.path`, the end of the URL path: not
a token count or an embedding sent in the same task), at most one, and only while it is
live. If a future SDK stops sending through our client, nothing is taken and the call
decodes the SDK's objects as before (each protocol's ``tests/test_*_raw.py`` fails
loudly either way).

    async with Call(":streamGenerateContent", take=True) as call:
        stream = await sdk_call(...)        # the hook sets call.body (a 200) or not
        ...  # drain the SDK's stream (empty when taken), then read call.body
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import ModuleType, TracebackType
from typing import Any

__all__ = ["CALL", "Call", "response_hook"]


class Call:
    """One chat call's view of its HTTP responses; current in :data:`CALL` while it runs
    (``async with``), its responses closed when it ends."""

    __slots__ = ("body", "live", "opened", "path", "take")

    def __init__(self, path: str, take: bool = True) -> None:
        #: The end of the URL path of the one request whose body the call takes.
        self.path = path
        #: Whether the hook may take that 200 stream's body (False: the SDK reads it).
        self.take = take
        #: False once the call ended: a later request in the same task (an embedding) is
        #: not this call's, though the ContextVar still names it.
        self.live = True
        #: Every response the call opened (closed when it ends, early or not).
        self.opened: list[Any] = []
        #: The 200 stream's body, taken from the SDK, when it was.
        self.body: Any = None

    async def __aenter__(self) -> Call:
        CALL.set(self)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live = False
        opened, self.opened = self.opened, []
        for response in opened:  # the SDK's generators do not close it when left early
            await response.aclose()


#: The current chat call (the SDK sends the request in the caller's context).
CALL: ContextVar[Call | None] = ContextVar("synapsekit_raw_call", default=None)


def response_hook(library: ModuleType) -> Callable[[Any], Awaitable[None]]:
    """The httpx (or httpx2: ``library``) response hook that remembers each response so its
    call can close it, and takes the body of the call's 200 stream, leaving the SDK an
    empty one (see the module docstring). Any other status is the SDK's to read and map."""
    empty = library.ByteStream(b"")  # stateless: one for every response

    async def on_response(response: Any) -> None:
        call = CALL.get()
        if call is None or not call.live:
            return
        call.opened.append(response)
        if (call.take and call.body is None and response.status_code == 200
                and response.request.url.path.endswith(call.path)):
            body = library.Response(
                200, headers=response.headers, stream=response.stream,
                request=response.request, extensions=response.extensions,
            )
            response.stream = empty
            call.body = body
            call.opened.append(body)

    return on_response
