"""``GET /metrics``: Prometheus text exposition (format 0.0.4) of the ledger, master key
only (``Authorization: Bearer``; Prometheus' ``authorization`` scrape setting).

Why from the ledger and not in-process counters: with ``--workers 4`` (or several
nodes) each process sees a quarter of the traffic, and a scrape lands on one of them.
The ledger is shared, so every scrape gives the whole gateway's totals, whichever worker
answers. The cost: one GROUP BY over the ledger per scrape (rows still queued in a
worker's writer, under a batch, are not in it yet).

Series (labels ``model``, ``key_id``; never a secret): ``synapsekit_gateway_requests_total``
(+ ``status``), ``synapsekit_gateway_errors_total`` (+ ``error``),
``synapsekit_gateway_tokens_total`` (+ ``type``: input, output, cached_input, reasoning),
``synapsekit_gateway_cost_usd_total``, ``synapsekit_gateway_request_duration_seconds``
(histogram).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from synapsekit.gateway.http import secret_from
from synapsekit.gateway.ledger import LATENCY_BUCKETS_MS
from synapsekit.gateway.openai_wire import error_response
from synapsekit.gateway.types import GatewayError

if TYPE_CHECKING:
    from synapsekit.gateway.core import Gateway

__all__ = ["CONTENT_TYPE", "exposition", "routes"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_P = "synapsekit_gateway_"


def routes(gateway: Gateway) -> list[BaseRoute]:
    async def metrics(request: Request) -> Response:
        try:
            key = await gateway.authenticate(secret_from(request))
            request.state.key_id = key.id
            if not key.master:
                raise GatewayError(403, "forbidden", "/metrics needs the master key.")
            query = getattr(gateway.ledger, "metrics", None)
            if query is None:
                raise GatewayError(501, "no_ledger_queries",
                                   "This gateway's ledger has no metrics query.")
            rows = await query()
        except GatewayError as err:
            return error_response(err)
        return Response(exposition(rows), media_type=CONTENT_TYPE)

    return [Route("/metrics", metrics, methods=["GET"])]


def exposition(rows: Iterable[tuple[Any, ...]]) -> str:
    """The text of the ledger's :meth:`~synapsekit.gateway.ledger.SqlLedger.metrics` rows."""
    requests: list[str] = []
    errors: list[str] = []
    tokens: dict[tuple[str, str, str], int] = defaultdict(int)
    cost: dict[tuple[str, str], float] = defaultdict(float)
    hist: dict[tuple[str, str], list[float]] = {}
    for model, key_id, status, error, n, i, o, c, r, usd, latency, *buckets in rows:
        status_labels = _labels(model=model, key_id=key_id, status=str(status))
        requests.append(f"{_P}requests_total{status_labels} {int(n)}")
        if error is not None:
            error_labels = _labels(model=model, key_id=key_id, error=error)
            errors.append(f"{_P}errors_total{error_labels} {int(n)}")
        cost[(model, key_id)] += float(usd)
        h = hist.setdefault((model, key_id), [0.0] * (len(LATENCY_BUCKETS_MS) + 2))
        for index, count in enumerate(buckets):
            h[index] += int(count)
        h[-2] += int(n)
        h[-1] += float(latency) / 1000.0
        for kind, value in (("input", i), ("output", o), ("cached_input", c),
                            ("reasoning", r)):
            tokens[(model, key_id, kind)] += int(value)
    out: list[str] = []
    _family(out, "requests_total", "counter", "Requests answered, by HTTP status.", requests)
    _family(out, "errors_total", "counter", "Requests that ended in an error, by type.",
            errors)
    _family(out, "tokens_total", "counter", "Tokens, by type.", [
        f"{_P}tokens_total{_labels(model=m, key_id=k, type=t)} {v}"
        for (m, k, t), v in sorted(tokens.items())])
    _family(out, "cost_usd_total", "counter", "Cost in USD.", [
        f"{_P}cost_usd_total{_labels(model=m, key_id=k)} {v!r}"
        for (m, k), v in sorted(cost.items())])
    lines = []
    for (m, k), h in sorted(hist.items()):
        for bound, count in zip(LATENCY_BUCKETS_MS, h, strict=False):
            lines.append(f"{_P}request_duration_seconds_bucket"
                         f"{_labels(model=m, key_id=k, le=_le(bound / 1000.0))} {int(count)}")
        lines.append(f"{_P}request_duration_seconds_bucket"
                     f"{_labels(model=m, key_id=k, le='+Inf')} {int(h[-2])}")
        lines.append(f"{_P}request_duration_seconds_sum{_labels(model=m, key_id=k)} {h[-1]!r}")
        lines.append(f"{_P}request_duration_seconds_count{_labels(model=m, key_id=k)} "
                     f"{int(h[-2])}")
    _family(out, "request_duration_seconds", "histogram",
            "Request duration, start to last byte.", lines)
    return "\n".join(out) + "\n"


def _family(out: list[str], name: str, kind: str, help_text: str, lines: list[str]) -> None:
    out.append(f"# HELP {_P}{name} {help_text}")
    out.append(f"# TYPE {_P}{name} {kind}")
    out.extend(lines)


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _le(seconds: float) -> str:
    return repr(seconds)
