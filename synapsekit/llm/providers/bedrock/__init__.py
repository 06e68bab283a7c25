"""Amazon Bedrock over ``boto3``'s Converse Stream API (``bedrock-runtime``).

The protocol in parts: :mod:`.connection` (client per loop, region, credentials),
:mod:`.encode` (messages and settings -> the Converse request), :mod:`.transport` (boto3
signs, aiohttp sends on the event loop; no thread per stream), :mod:`.frames` (the
event-stream framing), :mod:`.decode` (events -> chunks), :mod:`.errors` (botocore's and
aiohttp's exceptions -> ours). They load with the first BedrockLLM built, not with the
class.
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

    from .connection import BedrockConnection

__all__ = ["DEFAULT_REGION", "BedrockConnection", "BedrockLLM"]

__getattr__ = lazy_getattr(__name__, dict.fromkeys(
    ("DEFAULT_REGION", "BedrockConnection"), f"{__name__}.connection"
))


def _usage(raw: dict[str, Any]) -> Any:
    """:func:`.decode.usage` (for tests pricing a raw usage)."""
    from .decode import usage

    return usage(raw)


class BedrockLLM(BaseLLM):
    """Any Bedrock model through ``converse_stream``; see the module docstring."""

    provider: ClassVar[str] = "bedrock"
    connection_class: Deferred[type[BedrockConnection]] = Deferred(
        f"{__name__}.connection", "BedrockConnection"
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        images=True,
        image_urls=False,
        documents=True,
        tools=True,
        parallel_tool_calls=False,
        tool_choices=frozenset({"auto", "required", "name"}),
        structured="json_schema",
        reasoning=frozenset({"budget", "effort"}),
        note=(
            "images as bytes (png, jpeg, gif, webp), PDFs as bytes; tool_choice 'none' does "
            "not exist on Converse and there is no parallel-calls switch; structured output "
            "is outputConfig.textFormat on Claude 4.5 / Opus 4.6, a forced tool elsewhere; "
            "reasoning: Claude thinking budget, Nova 2 / gpt-oss effort levels"
        ),
    )

    @property
    def region(self) -> str:
        """The AWS region the requests go to (see :attr:`BedrockConnection.region`)."""
        connection: Any = self.connection
        return str(connection.region)

    def _request(self, messages: list[Message], config: LLMConfig) -> dict[str, Any]:
        from synapsekit.llm.models import rules_for

        from .encode import request

        return request(messages, config, rules_for(self.provider, config))

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
        from . import encode, transport
        from .decode import Decoder

        # The request first: the first one loads the model table, which then does not
        # count towards first_token_timeout (the client's arrival restarts that clock).
        request = self._request(messages, config)
        connection: Any = self._connection_for(config)
        client = await connection.client()
        session = await connection.session()
        schema = config.response_schema
        forced = (
            encode.forced_tool(schema)
            if schema is not None and not encode.native_schema(config.base_model or config.model)
            else None
        )
        with self._map_errors(config) as errors:
            prepared = await transport.prepare(client, request, connection.credentials(client))
            async with transport.send(session, prepared, connection.proxy) as response:
                errors.request_id = response.headers.get("x-amzn-requestid")
                if response.status != 200:
                    raise await transport.status_error(client, response)
                finished = False
                try:
                    decoder = Decoder(forced)
                    async for event in transport.events(client, response, errors):
                        chunk = decoder.feed(event)
                        if chunk is not None:
                            yield chunk
                    finished = True
                finally:
                    if not finished:  # left early, failed or cancelled: drop the connection
                        response.close()
                yield decoder.end(errors.cut)

    def _error_table(self) -> ErrorTable:
        from .errors import error_table

        return error_table()

