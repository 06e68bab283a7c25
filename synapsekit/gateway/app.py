"""The ASGI application: :func:`build_app` mounts every part's routes on one Starlette app.

Why routes are gathered, not declared here: each part of the gateway (the OpenAI wire, the
Anthropic wire, embeddings, spend, metrics, the dashboard) exports
``routes(gateway) -> list[Route]`` from its own module; this file only mounts what is
there, so parts are added without editing a central table. A module that is not there
(yet) is skipped; one that fails to import is an error at start, not a silent gap.

It also owns what is common to every route: the access log (one line per request with
the key's *id*, method, path, status and time -- never a header, a query string or a key),
a failure of its own code answered as a 500 in the API's error shape, and the lifespan
(start the ledger's writer; on shutdown drain it and close the Routers).
``GET /health`` answers without a key: it says only that the process is up and how many
members of each model group have an open circuit.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from synapsekit.gateway import openai_wire

if TYPE_CHECKING:
    from synapsekit.gateway.core import Gateway

__all__ = ["PARTS", "build_app"]

access = logging.getLogger("synapsekit.gateway.access")
log = logging.getLogger("synapsekit.gateway")
#: The modules whose ``routes(gateway)`` are mounted after the OpenAI wire's, in order.
PARTS = ("anthropic_wire", "embeddings", "spend", "metrics", "dashboard")


def build_app(gateway: Gateway) -> Starlette:
    """The gateway's ASGI app (its lifespan starts and closes ``gateway``)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.aclose()

    async def health(request: Request) -> Response:
        groups = {}
        for name, router in gateway.routers.items():
            states = [h.state for h in (await router.ahealth()).values()]
            groups[name] = {"members": len(states),
                            "open": sum(1 for s in states if s != "closed")}
        return JSONResponse({"status": "ok", "models": groups})

    mounted: list[BaseRoute] = [Route("/health", health, methods=["GET"])]
    mounted += openai_wire.routes(gateway)
    for part in PARTS:
        mounted += _routes_of(part, gateway)
    app = Starlette(
        routes=mounted, lifespan=lifespan,
        exception_handlers={Exception: _internal_error, 404: _no_route, 405: _no_route},
    )
    app.add_middleware(AccessLog)
    app.state.gateway = gateway
    return app


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A failure of the gateway's own code: logged with its traceback, answered as a 500
    in the API's error shape (Anthropic's on /v1/messages, OpenAI's elsewhere)."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    message = "The gateway failed to handle the request."
    if request.url.path.startswith("/v1/messages"):
        body: dict[str, Any] = {"type": "error",
                                "error": {"type": "api_error", "message": message}}
    else:
        body = {"error": {"message": message, "type": "server_error", "param": None,
                          "code": "internal_error"}}
    return JSONResponse(body, status_code=500)


async def _no_route(request: Request, exc: Exception) -> Response:
    """An unknown path or method, answered as OpenAI answers it (``Invalid URL``)."""
    status = getattr(exc, "status_code", 404)
    message = f"Invalid URL ({request.method} {request.url.path})"
    if request.url.path.startswith("/v1/messages"):
        body: dict[str, Any] = {"type": "error", "error": {
            "type": "not_found_error", "message": message}}
    else:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                          "code": None}}
    return JSONResponse(body, status_code=status)


def _routes_of(part: str, gateway: Gateway) -> list[BaseRoute]:
    name = f"synapsekit.gateway.{part}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return []
    routes = getattr(module, "routes", None)
    if routes is None:
        return []
    found: list[BaseRoute] = routes(gateway)
    return found


class AccessLog:
    """One INFO line per request on ``synapsekit.gateway.access``: request id, key id,
    method, path (no query string), status, milliseconds. A route that knows the caller
    sets ``request.state.key_id``; nothing else about the request is logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        request_id = "-"

        async def sending(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-request-id":
                        request_id = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            state: Any = scope.get("state") or {}
            access.info(
                "%s %s %s %s %d %.1fms", request_id, state.get("key_id", "-"),
                scope["method"], scope["path"], status,
                (time.perf_counter() - started) * 1000.0,
            )
