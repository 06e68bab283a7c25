"""Bedrock's token counting: ``CountTokens`` (``POST /model/{modelId}/count-tokens``) with
the ``converse`` input the call would send -- messages, system blocks, tool config and
additional model fields exactly as :mod:`.encode` builds them for ``converse_stream``.
AWS documents the figure as the input tokens the same Converse request is billed.

- ``modelId`` is the foundation model: the operation takes a model id or ARN, so the
  geography prefix of a cross-region inference profile (``us.``, ``eu.``, ``global.``...)
  is taken off;
- a structured-output request's ``outputConfig`` has no place in the counted input, so
  such a count is marked inexact;
- boto3 is blocking: the request runs in a worker thread; a boto3 without the operation
  (before 1.39) gets the estimate. Not every model supports counting (Claude does): the
  service answers the others with a validation error, raised typed.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from synapsekit.llm.counting import TokenCount, estimate
from synapsekit.llm.types import Message

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig

__all__ = ["COUNTED", "METHOD", "count", "foundation_model"]

METHOD = "bedrock CountTokens"
#: The Converse request fields the counted input (``ConverseTokensRequest``) takes.
COUNTED = ("messages", "system", "toolConfig", "additionalModelRequestFields")
_PROFILE = re.compile(r"(?:us|eu|apac|jp|au|ca|us-gov|global)\.(?=[a-z0-9-]+\.)")


def foundation_model(model: str) -> str:
    """The model id behind a cross-region inference profile id (an ARN as it is)."""
    return _PROFILE.sub("", model, count=1) if not model.startswith("arn:") else model


async def count(llm: BaseLLM, turns: list[Message], config: LLMConfig) -> TokenCount:
    request = llm._request(turns, config)  # type: ignore[attr-defined]
    client = await llm._client(config)
    if not hasattr(client, "count_tokens"):
        return estimate(turns, config, method="estimate (this boto3 has no count_tokens)")
    converse = {k: request[k] for k in COUNTED if k in request}
    with llm._map_errors(config):
        found = await asyncio.to_thread(
            client.count_tokens,
            modelId=foundation_model(request["modelId"]),
            input={"converse": converse},
        )
    return TokenCount(
        int(found["inputTokens"]), exact="outputConfig" not in request, method=METHOD
    )
