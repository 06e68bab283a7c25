"""``GET /v1/spend``: requests, tokens and cost by key, model and UTC day, from the ledger.

A key sees its own spend; the master key sees every key's. ``?since=`` / ``?until=``
take unix seconds or a ``YYYY-MM-DD`` date (UTC); the default is the last 30 days.
Mounted by the app through :func:`routes`.
"""

from __future__ import annotations

import calendar
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from synapsekit.gateway.http import secret_from
from synapsekit.gateway.openai_wire import error_response
from synapsekit.gateway.types import GatewayError

if TYPE_CHECKING:
    from synapsekit.gateway.core import Gateway

__all__ = ["parse_time", "routes"]

_DEFAULT_DAYS = 30


def routes(gateway: Gateway) -> list[BaseRoute]:
    async def spend(request: Request) -> Response:
        try:
            key = await gateway.authenticate(secret_from(request))
            request.state.key_id = key.id
            now = time.time()
            since = parse_time(request.query_params.get("since"), "since",
                               now - _DEFAULT_DAYS * 86400)
            until = parse_time(request.query_params.get("until"), "until", None)
            query = getattr(gateway.ledger, "spend", None)
            if query is None:
                raise GatewayError(501, "no_ledger_queries",
                                   "This gateway's ledger has no spend query.")
            rows: list[dict[str, Any]] = await query(
                since=since, until=until, key_id=None if key.master else key.id)
        except GatewayError as err:
            return error_response(err)
        return JSONResponse({
            "object": "spend", "since": since, "until": until, "data": rows,
            "total_cost_usd": sum(r["cost_usd"] for r in rows),
            "total_requests": sum(r["requests"] for r in rows),
        })

    return [Route("/v1/spend", spend, methods=["GET"])]


def parse_time(value: str | None, name: str, default: float | None) -> float | None:
    """Unix seconds or a ``YYYY-MM-DD`` (UTC midnight); 400 naming ``name`` otherwise."""
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return float(calendar.timegm(time.strptime(value, "%Y-%m-%d")))
    except ValueError:
        raise GatewayError(400, "invalid_value",
                           f"{name} must be unix seconds or YYYY-MM-DD, got {value!r}",
                           param=name) from None
