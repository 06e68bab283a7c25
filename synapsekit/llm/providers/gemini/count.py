"""Gemini's token counting: ``POST /v1beta/models/{model}:countTokens`` with a
``generateContentRequest``: the very request the call would stream (contents, system
instruction, tools, tool config, generation config), as :mod:`.encode` builds it.

The SDK's own ``models.count_tokens`` refuses a system instruction and tools on the
Developer API (it sends ``contents`` alone), which would undercount any call that has
them. So the body is made by the SDK's converter of a ``generate_content`` request and sent
on the call's client with its ``async_request``: both underscore names of google-genai
(checked against 3.6; a test sends it through the real SDK). Errors are mapped like a
chat call's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from synapsekit.llm.counting import TokenCount
from synapsekit.llm.models import rules_for
from synapsekit.llm.types import Message

from . import encode

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig

__all__ = ["METHOD", "count"]

METHOD = "gemini countTokens"


def body(sdk: Any, api_client: Any, turns: list[Message], config: LLMConfig) -> tuple[str, Any]:
    """The countTokens path and body for the request ``_stream`` would send."""
    from google.genai import _common, models

    contents = encode.contents(turns, rules_for("gemini", config))
    generation = encode.generation_config(sdk, "gemini", turns, config)
    params = sdk.types._GenerateContentParameters(
        model=config.model, contents=contents, config=generation
    )
    request = models._GenerateContentParameters_to_mldev(api_client, params)
    model = request.pop("_url")["model"]
    for internal in ("_query", "config"):
        request.pop(internal, None)
    request = {k: v for k, v in request.items() if v is not None}
    wrapped = {"generateContentRequest": {"model": model, **request}}
    return f"{model}:countTokens", _common.encode_unserializable_types(
        _common.convert_to_dict(wrapped)
    )


async def count(llm: BaseLLM, turns: list[Message], config: LLMConfig) -> TokenCount:
    api_client = (await llm._client(config)).genai.aio._api_client
    path, request = body(llm._sdk, api_client, turns, config)
    with llm._map_errors(config):
        response = await api_client.async_request("post", path, request)
    found = json.loads(response.body or "{}")
    return TokenCount(int(found.get("totalTokens", 0)), exact=True, method=METHOD)
