"""Anthropic's Messages API (``POST /v1/messages``) over the official ``anthropic`` SDK.

The SDK builds and sends the request (auth, ``anthropic-version``) and maps HTTP statuses
to its exceptions; the stream body is read as raw SSE bytes (:mod:`.decode`). The request
body is built by :mod:`.encode`, the errors are read by :mod:`.errors`, the client per
loop is :mod:`.connection`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from synapsekit._lazy import Deferred, lazy_getattr
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.content import Capabilities

if TYPE_CHECKING:
    from synapsekit.llm.config import LLMConfig
    from synapsekit.llm.providers._errors import ErrorTable
    from synapsekit.llm.types import Chunk, Message

    from .connection import AnthropicConnection
    from .decode import FINISH_REASONS
    from .encode import NO_SAMPLING_VERSION

__all__ = ["FINISH_REASONS", "NO_SAMPLING_VERSION", "AnthropicConnection", "AnthropicLLM"]

# The protocol modules load with the first AnthropicLLM built (or one of these names read),
# not with the class: importing the public names stays cheap.
__getattr__ = lazy_getattr(__name__, {
    "AnthropicConnection": f"{__name__}.connection",
    "FINISH_REASONS": f"{__name__}.decode",
    "NO_SAMPLING_VERSION": f"{__name__}.encode",
})


class AnthropicLLM(BaseLLM):
    """Claude models over the Messages API, streamed."""

    provider: ClassVar[str] = "anthropic"
    connection_class: Deferred[type[AnthropicConnection]] = Deferred(
        f"{__name__}.connection", "AnthropicConnection"
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        images=True,
        image_urls=True,
        documents=True,
        tools=True,
        parallel_tool_calls=True,  # tool_choice.disable_parallel_tool_use
        tool_choices=frozenset({"auto", "none", "required", "name"}),
        structured="json_schema",  # output_config.format; a forced tool on older models
        reasoning=frozenset({"budget", "effort"}),
        note="thinking budget_tokens >= 1024 and < max_tokens; effort (adaptive thinking) "
        "on Claude 4.6 and newer; thinking takes tool_choice auto / none only",
    )

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        # The protocol is imported with the first call, not with the class (see _lazy.py).
        from synapsekit.llm.models import rules_for
        from synapsekit.llm.providers._common import http_stack

        from .decode import parse
        from .encode import request

        client = await self._client(config)
        version = _header(client.default_headers, "anthropic-version")
        plan = request(messages, config, rules_for(self.provider, config), version)
        with self._map_errors(config) as errors:
            # The SDK's low-level post: it builds the request (auth, version headers) and
            # raises typed status errors, but skips create()'s per-call TypedDict transform
            # of the body, a third of this provider's client CPU, and returns the raw response.
            response = await client.post(
                "/v1/messages",
                cast_to=http_stack("anthropic._base_client").response,
                body=plan.body,
                stream=True,
            )
            try:
                async for chunk in parse(response, errors, plan.text_tool):
                    yield chunk
            finally:
                await response.aclose()

    def _error_table(self) -> ErrorTable:
        from .errors import error_table

        return error_table(self._sdk)


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name and isinstance(value, str):
            return value
    return None

