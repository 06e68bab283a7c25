"""``POST /v1/embeddings``: OpenAI's embeddings API over the ``kind = "embedding"`` models.

Why a wire of its own and not the chat one: the body, the answer and the billing differ
(input tokens only), but the checks are the same -- the key, its allow-list, its rate
limits and its budget, and one ledger row -- and all of that is
:meth:`~synapsekit.gateway.core.Gateway.embed`'s; this module only parses and renders.

``encoding_format = "base64"`` (what the openai SDK asks for when the caller names no
format) is each vector as little-endian float32 bytes, base64-encoded, as OpenAI sends it.
Token arrays as ``input`` are refused (400, ``param: "input"``): the gateway's members may
be of any provider, and a token id means nothing to another model's tokenizer.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from synapsekit.gateway.core import new_request_id
from synapsekit.gateway.http import read_json, secret_from
from synapsekit.gateway.openai_wire import error_response
from synapsekit.gateway.types import GatewayError

if TYPE_CHECKING:
    from synapsekit.gateway.core import Gateway

__all__ = ["parse_embeddings", "routes"]

_KNOWN = {"model", "input", "encoding_format", "dimensions", "user"}
#: OpenAI's limit on the inputs of one request.
MAX_INPUTS = 2048


def routes(gateway: Gateway) -> list[BaseRoute]:
    async def embeddings(request: Request) -> Response:
        request_id = new_request_id()  # a refusal carries it too
        try:
            key = await gateway.authenticate(secret_from(request))
            request.state.key_id = key.id
            body = await read_json(request, gateway.config.max_body_bytes)
            model, texts, encoding, dimensions = parse_embeddings(body)
            vectors, tokens = await gateway.embed(model, texts, key, dimensions=dimensions,
                                                  request_id=request_id)
        except GatewayError as err:
            return error_response(err, request_id)
        return JSONResponse({
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": _encode(v, encoding)}
                     for i, v in enumerate(vectors)],
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }, headers={"x-request-id": request_id})

    return [Route("/v1/embeddings", embeddings, methods=["POST"])]


def parse_embeddings(body: Mapping[str, Any]) -> tuple[str, list[str], str, int | None]:
    """``(model, texts, encoding_format, dimensions)`` of an embeddings body; 400 naming
    the field otherwise."""
    for name in body:
        if name not in _KNOWN:
            raise _bad(name, f"Unrecognized request argument supplied: {name}",
                       "unknown_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "you must provide a model parameter", "missing_required_parameter")
    given = body.get("input")
    if given is None:
        raise _bad("input", "you must provide an input parameter", "missing_required_parameter")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not texts or len(texts) > MAX_INPUTS:
        raise _bad("input", f"Invalid 'input': expected a string or an array of 1 to "
                   f"{MAX_INPUTS} strings.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise _bad("input", "Invalid 'input': token arrays are not supported by this "
                       "gateway; send text." if isinstance(text, (int, list)) else
                       f"Invalid 'input[{i}]': expected a string.")
        if not text:
            raise _bad("input", f"Invalid 'input[{i}]': must not be empty.")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise _bad("encoding_format",
                   f"Invalid 'encoding_format': expected 'float' or 'base64', got {encoding!r}.")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise _bad("dimensions",
                   f"Invalid 'dimensions': expected an integer >= 1, got {dimensions!r}.")
    return model, texts, encoding, dimensions


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _bad(param: str, message: str, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, code, message, param=param)
