"""The dashboard's HTML, as a pure function of one data snapshot: :func:`render_page`.

Why a pure function: the page is tested in a real browser against a fixed
:class:`Snapshot` (no server, no ledger), and the route only gathers the snapshot and
calls this. Every value that reaches the HTML goes through :func:`html.escape`; the chart
data rides in a ``<script type="application/json">`` block with ``<``, ``>`` and ``&``
escaped, read by ``static/dashboard.js`` (no inline script: the page is served with a
Content-Security-Policy that allows only the gateway's own static files). The charting
library (uPlot) is loaded from the package, never from a CDN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from typing import Any

from synapsekit.llm.router_state import MemberHealth

__all__ = ["Group", "Latency", "Snapshot", "money", "render_login", "render_page"]

#: Where the route serves ``synapsekit/gateway/static/``.
STATIC = "/ui/static"


@dataclass(frozen=True)
class Group:
    """Requests, errors, tokens and spend of one key, one model, or all of them."""

    name: str
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Latency:
    """Percentiles in milliseconds (None: no request to measure)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything the page shows, gathered once per request.

    ``days``: the chart's x axis (UTC midnights, unix seconds); ``spend_by_key`` /
    ``spend_by_model``: one cost per day for each key id / model name; ``members``: (model
    name, each Router member's health as ``Router.ahealth()`` gives it).
    """

    generated_at: float
    since: float
    totals: Group
    keys: tuple[Group, ...] = ()
    models: tuple[Group, ...] = ()
    latency: Latency = Latency()
    ttft: Latency = Latency()
    errors: tuple[tuple[str, int, int], ...] = ()  # (error type, status, count)
    days: tuple[float, ...] = ()
    spend_by_key: dict[str, tuple[float, ...]] = field(default_factory=dict)
    spend_by_model: dict[str, tuple[float, ...]] = field(default_factory=dict)
    members: tuple[tuple[str, MemberHealth], ...] = ()


def money(value: float) -> str:
    """A cost as the page prints it: dollars to the millionth (the ledger's exact figure
    is in the cell's ``data-value``)."""
    return f"${value:,.6f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _utc(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _head(title: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="{STATIC}/uPlot.min.css">'
        f'<link rel="stylesheet" href="{STATIC}/dashboard.css"></head>'
    )


def _table(kind: str, rows: tuple[Group, ...], totals: Group | None = None) -> str:
    head = (f"<tr><th>{escape(kind)}</th><th>requests</th><th>errors</th>"
            "<th>input tokens</th><th>output tokens</th><th>spend</th></tr>")

    def line(g: Group, tag: str = "td") -> str:
        return (
            f'<tr data-name="{escape(g.name)}"><{tag} class="name">{escape(g.name)}</{tag}>'
            f'<td class="requests">{g.requests}</td><td class="errors">{g.errors}</td>'
            f'<td class="input">{g.input_tokens}</td><td class="output">{g.output_tokens}</td>'
            f'<td class="spend" data-value="{g.cost_usd!r}">{money(g.cost_usd)}</td></tr>'
        )

    body = "".join(line(g) for g in rows) or '<tr><td colspan="6">no requests</td></tr>'
    foot = f"<tfoot>{line(totals, 'th')}</tfoot>" if totals is not None else ""
    return (f'<table id="by-{escape(kind)}"><thead>{head}</thead>'
            f"<tbody>{body}</tbody>{foot}</table>")


def _latency(latency: Latency, ttft: Latency) -> str:
    cells = "".join(
        f'<tr><th>{name}</th><td id="{name}-p50">{_ms(v.p50)}</td>'
        f'<td id="{name}-p95">{_ms(v.p95)}</td><td id="{name}-p99">{_ms(v.p99)}</td></tr>'
        for name, v in (("latency", latency), ("ttft", ttft))
    )
    return ('<table id="latency"><thead><tr><th></th><th>p50</th><th>p95</th><th>p99</th>'
            f"</tr></thead><tbody>{cells}</tbody></table>")


def _errors(errors: tuple[tuple[str, int, int], ...]) -> str:
    rows = "".join(
        f'<tr><td class="error">{escape(name)}</td><td class="status">{status}</td>'
        f'<td class="count">{count}</td></tr>' for name, status, count in errors
    ) or '<tr><td colspan="3">no errors</td></tr>'
    return ('<table id="errors"><thead><tr><th>error</th><th>status</th><th>count</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _members(members: tuple[tuple[str, MemberHealth], ...]) -> str:
    rows = "".join(
        f'<tr data-member="{escape(group)}/{escape(m.name)}"><td>{escape(group)}</td>'
        f'<td>{escape(m.name)}</td><td class="state state-{escape(m.state)}">'
        f"{escape(m.state)}</td><td>{_ms(m.ttft_ms)}</td><td>{m.in_flight}</td>"
        f"<td>{m.failures}</td><td>{m.errors}</td><td>{m.successes}</td></tr>"
        for group, m in members
    ) or '<tr><td colspan="8">no members</td></tr>'
    return ('<table id="members"><thead><tr><th>model</th><th>member</th><th>circuit</th>'
            "<th>TTFT (avg)</th><th>in flight</th><th>failures now</th><th>errors</th>"
            f"<th>successes</th></tr></thead><tbody>{rows}</tbody></table>")


def _json_block(data: dict[str, Any]) -> str:
    text = json.dumps(data, separators=(",", ":"))
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="dashboard-data">{text}</script>'


def render_page(snap: Snapshot) -> str:
    """The dashboard page for ``snap``."""
    t = snap.totals
    data = {"days": list(snap.days),
            "charts": {"key": {k: list(v) for k, v in snap.spend_by_key.items()},
                       "model": {k: list(v) for k, v in snap.spend_by_model.items()}}}
    return (
        _head("synapsekit gateway")
        + "<body><header><h1>synapsekit gateway</h1>"
        f'<p class="meta">since {_utc(snap.since)} &middot; as of {_utc(snap.generated_at)}'
        ' &middot; <a href="/ui/logout">log out</a></p></header>'
        '<section id="totals">'
        f'<div class="tile"><span class="label">requests</span>'
        f'<span id="total-requests" class="value">{t.requests}</span></div>'
        f'<div class="tile"><span class="label">errors</span>'
        f'<span id="total-errors" class="value">{t.errors}</span></div>'
        f'<div class="tile"><span class="label">tokens in / out</span>'
        f'<span id="total-tokens" class="value">{t.input_tokens} / {t.output_tokens}</span></div>'
        f'<div class="tile"><span class="label">spend</span><span id="total-spend" '
        f'class="value" data-value="{t.cost_usd!r}">{money(t.cost_usd)}</span></div>'
        "</section>"
        '<section class="charts"><figure><figcaption>spend per key, by day (USD)</figcaption>'
        '<div id="chart-key" class="chart"></div></figure>'
        "<figure><figcaption>spend per model, by day (USD)</figcaption>"
        '<div id="chart-model" class="chart"></div></figure></section>'
        "<section><h2>by key</h2>" + _table("key", snap.keys, t) + "</section>"
        "<section><h2>by model</h2>" + _table("model", snap.models) + "</section>"
        "<section><h2>latency</h2>" + _latency(snap.latency, snap.ttft) + "</section>"
        "<section><h2>errors</h2>" + _errors(snap.errors) + "</section>"
        "<section><h2>router members</h2>" + _members(snap.members) + "</section>"
        + _json_block(data)
        + f'<script src="{STATIC}/uPlot.iife.min.js"></script>'
        f'<script src="{STATIC}/dashboard.js"></script></body></html>'
    )


def render_login(message: str | None = None) -> str:
    """The login form (no data): the master key is POSTed, never put in the URL."""
    note = f'<p class="error" id="login-error">{escape(message)}</p>' if message else ""
    return (
        _head("synapsekit gateway: log in")
        + '<body class="login"><h1>synapsekit gateway</h1>' + note
        + '<form method="post" action="/ui/login"><label for="key">master key</label>'
        '<input id="key" name="key" type="password" autocomplete="current-password" '
        'required><button type="submit">log in</button></form></body></html>'
    )
