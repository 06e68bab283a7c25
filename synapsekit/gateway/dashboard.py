"""``GET /ui``: the dashboard (master key only), mounted by the app via :func:`routes`.

Who may see it: the master key, sent as ``Authorization: Bearer <key>`` (scripts) or typed
into the login form, which sets an HttpOnly, SameSite=Strict cookie scoped to ``/ui``
(browsers). The key never goes in a URL, and never in the cookie either: the cookie is a
session, ``<expiry>.<HMAC-SHA256>``, signed with a key derived from the master key that
``[gateway] master_key_env`` names, so every worker (and node) with that variable checks it
without shared session state, and rotating the master key ends every session. Anyone else
gets the login form with 401 (no key / an unknown one) or 403 (a key that is not the master
key), and no data.

What it shows comes from the ledger's queries (the same numbers ``/v1/spend`` and
``/metrics`` give) plus each Router's ``ahealth()``; :mod:`dashboard_page` turns that
snapshot into HTML. The ledger's side is one method, ``async dashboard(*, since: float,
now: float) -> Snapshot`` (``members`` left empty: the route adds them); the in-process
:class:`MemoryLedger`, which has no queries, is summarised from its rows here
(:func:`snapshot_of_rows`, which also states what the query must return).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from synapsekit.gateway.dashboard_page import (
    Group,
    Latency,
    Snapshot,
    render_login,
    render_page,
)
from synapsekit.gateway.http import secret_from
from synapsekit.gateway.types import GatewayError, KeyInfo, LedgerRow

if TYPE_CHECKING:
    from synapsekit.gateway.core import Gateway
    from synapsekit.llm.router_state import MemberHealth

__all__ = ["COOKIE", "routes", "snapshot", "snapshot_of_rows"]

#: The login cookie's name (HttpOnly, SameSite=Strict, Path=/ui).
COOKIE = "synapsekit_ui"
#: How long a login lasts, in seconds.
SESSION_SECONDS = 8 * 3600
#: Days the charts cover.
DAYS = 30
_DAY = 86400.0
#: The package files served under /ui/static/ (an allow-list: nothing else is readable).
_STATIC = {
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
#: Only the gateway's own files may load; no inline script, no framing, forms post here.
#: The largest login form read (a key is far shorter).
_FORM_LIMIT = 4096
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_HEADERS = {"content-security-policy": _CSP, "cache-control": "no-store",
            "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def routes(gateway: Gateway) -> list[BaseRoute]:
    """The dashboard's routes: the page, login / logout, and its static files."""

    async def page(request: Request) -> Response:
        secret = secret_from(request)
        if secret is None and _valid_session(gateway, request.cookies.get(COOKIE), time.time()):
            secret = _env_master(gateway)
        key = await _master(gateway, secret)
        if isinstance(key, Response):
            return key
        request.state.key_id = key.id  # the access log's key id
        snap = await snapshot(gateway, time.time())
        return HTMLResponse(render_page(snap), headers=_HEADERS)

    async def login(request: Request) -> Response:
        secret = await _form_key(request)
        key = await _master(gateway, secret)
        if isinstance(key, Response):
            return key
        request.state.key_id = key.id
        session = _session(gateway, time.time())
        if session is None:
            return HTMLResponse(render_login(
                "Browser login needs [gateway] master_key_env in the config; "
                "send the master key as a Bearer header instead."),
                status_code=403, headers=_HEADERS)
        answer = RedirectResponse("/ui", status_code=303, headers=_HEADERS)
        answer.set_cookie(
            COOKIE, session, max_age=SESSION_SECONDS, path="/ui", httponly=True,
            samesite="strict", secure=request.url.scheme == "https",
        )
        return answer

    async def logout(request: Request) -> Response:
        answer = RedirectResponse("/ui", status_code=303, headers=_HEADERS)
        answer.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
        return answer

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        kind = _STATIC.get(name)
        if kind is None:
            return Response("not found", status_code=404, media_type="text/plain")
        body = (resources.files("synapsekit.gateway") / "static" / name).read_bytes()
        return Response(body, media_type=kind, headers={
            "cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"})

    return [
        Route("/ui", page, methods=["GET"]),
        Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", logout, methods=["GET"]),
        Route("/ui/static/{name}", static, methods=["GET"]),
    ]


def _env_master(gateway: Gateway) -> str | None:
    """The master key from the variable ``[gateway] master_key_env`` names, if set."""
    name = gateway.config.master_key_env
    environ: Any = getattr(gateway, "_environ", None) or os.environ
    return (environ.get(name) or None) if name else None


def _signing_key(gateway: Gateway) -> bytes | None:
    """The sessions' HMAC key: derived from the master key (never the key itself)."""
    master = _env_master(gateway)
    if master is None:
        return None
    return hashlib.sha256(b"synapsekit-ui-session\0" + master.encode()).digest()


def _session(gateway: Gateway, now: float) -> str | None:
    """A new session cookie value, ``<expiry>.<hex HMAC of the expiry>``."""
    key = _signing_key(gateway)
    if key is None:
        return None
    expiry = str(int(now) + SESSION_SECONDS)
    return f"{expiry}.{hmac.new(key, expiry.encode(), 'sha256').hexdigest()}"


def _valid_session(gateway: Gateway, cookie: str | None, now: float) -> bool:
    """Whether ``cookie`` is an unexpired session this master key signed."""
    key = _signing_key(gateway)
    if key is None or not cookie or "." not in cookie:
        return False
    expiry, _, signature = cookie.partition(".")
    if not expiry.isdigit() or int(expiry) < now:
        return False
    wanted = hmac.new(key, expiry.encode(), "sha256").hexdigest()
    return hmac.compare_digest(wanted, signature)


async def _form_key(request: Request) -> str | None:
    """The ``key`` field of the login form (urlencoded; read here rather than with
    ``request.form()``, which needs python-multipart even for urlencoded bodies)."""
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > _FORM_LIMIT:
            return None
    found = parse_qs(body.decode("utf-8", "replace")).get("key")
    return found[0] if found else None


async def _master(gateway: Gateway, secret: str | None) -> KeyInfo | Response:
    """The master key's info; else the login form with 401 (no / unknown key) or 403."""
    key: KeyInfo | None
    try:
        key = await gateway.authenticate(secret)
    except GatewayError:
        key = None
    if key is not None and key.master:
        return key
    status, message = (401, "Log in with the gateway's master key.") if key is None else (
        403, "This key is not the master key.")
    if secret is None:
        message = ""
    return HTMLResponse(render_login(message or None), status_code=status, headers=_HEADERS)


async def snapshot(gateway: Gateway, now: float) -> Snapshot:
    """What the page shows now: the ledger's figures for the last :data:`DAYS` days and
    every Router member's health."""
    since = _midnight(now) - (DAYS - 1) * _DAY
    members: list[tuple[str, MemberHealth]] = []
    for group, router in gateway.routers.items():
        for health in (await router.ahealth()).values():
            members.append((group, health))
    ledger: Any = gateway.ledger
    query = getattr(ledger, "dashboard", None)
    if query is not None:  # the ledger's own queries (SQL over its store)
        snap: Snapshot = await query(since=since, now=now)
    elif isinstance(getattr(ledger, "rows", None), list):  # the in-process MemoryLedger
        snap = snapshot_of_rows(ledger.rows, since=since, now=now)
    else:  # never a page of zeros that looks like no traffic
        raise TypeError(f"{type(ledger).__name__} has no dashboard() query for /ui")
    from dataclasses import replace

    return replace(snap, members=tuple(members))


def snapshot_of_rows(rows: Iterable[LedgerRow], *, since: float, now: float) -> Snapshot:
    """The snapshot of in-memory ledger rows from ``since`` on (days as UTC midnights)."""
    picked = [r for r in rows if r.ts >= since]
    days = tuple(since + i * _DAY for i in range(int((_midnight(now) - since) // _DAY) + 1))
    by_key: dict[str, list[float]] = {}
    by_model: dict[str, list[float]] = {}
    errors: dict[tuple[str, int], int] = {}
    for row in picked:
        day = int((_midnight(row.ts) - since) // _DAY)
        by_key.setdefault(row.key_id, [0.0] * len(days))[day] += row.cost_usd
        by_model.setdefault(row.model, [0.0] * len(days))[day] += row.cost_usd
        if row.error is not None:
            errors[(row.error, row.status)] = errors.get((row.error, row.status), 0) + 1
    return Snapshot(
        generated_at=now, since=since, totals=_group("all", picked),
        keys=tuple(_group(k, [r for r in picked if r.key_id == k]) for k in sorted(by_key)),
        models=tuple(_group(m, [r for r in picked if r.model == m]) for m in sorted(by_model)),
        latency=_percentiles([r.latency_ms for r in picked]),
        ttft=_percentiles([r.ttft_ms for r in picked if r.ttft_ms is not None]),
        errors=tuple((e, s, n) for (e, s), n in sorted(errors.items())),
        days=days,
        spend_by_key={k: tuple(v) for k, v in by_key.items()},
        spend_by_model={k: tuple(v) for k, v in by_model.items()},
    )


def _group(name: str, rows: list[LedgerRow]) -> Group:
    return Group(
        name=name, requests=len(rows), errors=sum(1 for r in rows if r.error is not None),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
    )


def _percentiles(values: list[float]) -> Latency:
    """Nearest-rank percentiles (a value that was measured, never an interpolation)."""
    if not values:
        return Latency()
    ordered = sorted(values)

    def rank(p: float) -> float:
        import math

        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return Latency(p50=rank(50), p95=rank(95), p99=rank(99))


def _midnight(ts: float) -> float:
    return ts - ts % _DAY
