"""Amazon Bedrock over ``boto3``'s Converse Stream API (``bedrock-runtime``).

The protocol in parts: :mod:`.connection` (client per loop, region, credentials),
:mod:`.encode` (messages and settings -> the Converse request), :mod:`.decode` (events ->
chunks), :mod:`.errors` (botocore's exceptions -> ours), :mod:`.worker` (boto3 is blocking:
one worker thread per call reads the stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

from synapsekit.llm.base import BaseLLM
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Capabilities
from synapsekit.llm.models import rules_for
from synapsekit.llm.providers._errors import ErrorTable
from synapsekit.llm.providers.bedrock import encode
from synapsekit.llm.providers.bedrock.connection import DEFAULT_REGION, BedrockConnection
from synapsekit.llm.providers.bedrock.decode import Decoder
from synapsekit.llm.providers.bedrock.decode import usage as _usage  # for tests pricing a raw usage
from synapsekit.llm.providers.bedrock.errors import error_table
from synapsekit.llm.providers.bedrock.worker import release
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
        client = await self._client(config)
        request = self._request(messages, config)
        worker = ThreadPoolExecutor(1, thread_name_prefix="synapsekit-bedrock")
        pending: Future[Any] | None = None
        stream: Any = None
        try:
            with self._map_errors(config) as errors:
                pending = worker.submit(lambda: client.converse_stream(**request))
                response = await asyncio.wrap_future(pending)
                stream = response["stream"]
                errors.request_id = response.get("ResponseMetadata", {}).get("RequestId")
                events = iter(stream)
                schema = config.response_schema
                forced = (
                    encode.forced_tool(schema)
                    if schema is not None
                    and not encode.native_schema(config.base_model or config.model)
                    else None
                )
                decoder = Decoder(forced)
                while True:
                    pending = worker.submit(next, events, None)
                    event = await asyncio.wrap_future(pending)
                    if event is None:
                        break
                    chunk = decoder.feed(event)
                    if chunk is not None:
                        yield chunk
                yield decoder.end(errors.cut)
        finally:
            release(worker, pending, stream)

    def _error_table(self) -> ErrorTable:
        return error_table()

