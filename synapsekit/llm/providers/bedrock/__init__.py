"""Amazon Bedrock over ``boto3``'s Converse Stream API (``bedrock-runtime``).

The protocol in parts: :mod:`.connection` (client per loop, region, credentials),
:mod:`.encode` (messages and settings -> the Converse request), :mod:`.transport` (boto3
signs, aiohttp sends on the event loop, botocore's decoder frames the event stream: no
thread per stream), :mod:`.decode` (events -> chunks), :mod:`.errors` (botocore's and
aiohttp's exceptions -> ours).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Capabilities
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._errors import ErrorTable
from synapsekit.llm.providers.bedrock import encode, transport
from synapsekit.llm.providers.bedrock.connection import DEFAULT_REGION, BedrockConnection
from synapsekit.llm.providers.bedrock.decode import Decoder
from synapsekit.llm.providers.bedrock.decode import usage as _usage  # for tests pricing a raw usage
from synapsekit.llm.providers.bedrock.errors import error_table
from synapsekit.llm.types import Chunk, Message

__all__ = ["DEFAULT_REGION", "BedrockConnection", "BedrockLLM"]


class BedrockLLM(BaseLLM):
    """Any Bedrock model through ``converse_stream``; see the module docstring."""

    provider: ClassVar[str] = "bedrock"
    connection_class = BedrockConnection
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
        return encode.request(messages, config, rules_for(self.provider, config))

    async def _stream(self, messages: list[Message], config: LLMConfig) -> AsyncIterator[Chunk]:
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
        return error_table()

