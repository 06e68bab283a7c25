"""The raw official SDK of each protocol, used the way its docs show for a streamed chat:
the SDK's own streaming API and its objects, defaults kept except the base URL, SDK
retries off (a benchmark must not retry) and, where the SDK's default pool would stall 200
or 1,000 concurrent streams, a pool sized for the load (boto3: ``max_pool_connections``;
the httpx-based SDKs' default 100 connections only costs wall time, not CPU, and is kept).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks._common import AWS_REGION, Workload

PROMPT = "Say something."
MESSAGES: list[Any] = [{"role": "user", "content": PROMPT}]


def openai_sdk(url: str, key: str | None) -> Workload:
    import openai

    client = openai.AsyncOpenAI(api_key=key, base_url=f"{url}/v1", max_retries=0)

    async def one() -> str:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True,
            stream_options={"include_usage": True},
        )
        parts = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    return one


def anthropic_sdk(url: str, key: str | None) -> Workload:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=key, base_url=url, max_retries=0)

    async def one() -> str:
        stream = await client.messages.create(
            model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES, stream=True,
        )
        parts = []
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
        return "".join(parts)

    return one


def gemini_sdk(url: str, key: str | None) -> Workload:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=key, vertexai=False, http_options=types.HttpOptions(
        base_url=url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1),
    ))

    async def one() -> str:
        stream = await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents=PROMPT
        )
        parts = []
        async for response in stream:
            if response.text:
                parts.append(response.text)
        return "".join(parts)

    return one


def cohere_sdk(url: str, key: str | None) -> Workload:
    import cohere

    client = cohere.AsyncClientV2(api_key=key, base_url=url)

    async def one() -> str:
        parts = []
        async for event in client.chat_stream(model="command-a-03-2025", messages=MESSAGES):
            if event.type == "content-delta":
                parts.append(event.delta.message.content.text)
        return "".join(parts)

    return one


def mistral_sdk(url: str, key: str | None) -> Workload:
    try:
        from mistralai.client import Mistral
    except ImportError:  # mistralai 1.x
        from mistralai import Mistral  # type: ignore[attr-defined,no-redef]

    client = Mistral(api_key=key, server_url=url)

    async def one() -> str:
        stream = await client.chat.stream_async(model="mistral-small-latest", messages=MESSAGES)
        parts = []
        async for event in stream:
            content = event.data.choices[0].delta.content if event.data.choices else None
            if content:
                parts.append(content)
        return "".join(parts)

    return one


def ollama_sdk(url: str, key: str | None) -> Workload:
    import ollama

    client = ollama.AsyncClient(host=url)

    async def one() -> str:
        parts = []
        async for part in await client.chat(model="llama3.2", messages=MESSAGES, stream=True):
            if part.message.content:
                parts.append(part.message.content)
        return "".join(parts)

    return one


_BEDROCK_POOL = ThreadPoolExecutor(max_workers=1000, thread_name_prefix="raw-bedrock")


def bedrock_sdk(url: str, key: str | None) -> Workload:
    """boto3 is blocking: each stream is read on a thread of a pool sized for the load
    (what an asyncio user of boto3 has to do)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime", region_name=AWS_REGION, endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=1000),
    )

    def blocking() -> str:
        response = client.converse_stream(
            modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0",
            messages=[{"role": "user", "content": [{"text": PROMPT}]}],
        )
        parts = []
        for event in response["stream"]:
            delta = event.get("contentBlockDelta")
            if delta and "text" in delta["delta"]:
                parts.append(delta["delta"]["text"])
        return "".join(parts)

    async def one() -> str:
        return await asyncio.get_running_loop().run_in_executor(_BEDROCK_POOL, blocking)

    return one


def bedrock_aiobotocore(url: str, key: str | None) -> Workload:
    """aiobotocore, the async port of botocore (aiohttp underneath), as its docs show a
    client: one ``create_client`` context kept open for the run, retries off, a pool sized
    for the load. Only where it is installed (its botocore pin does not co-install with
    boto3 >= 1.44: measured in a venv of its own, see docs/performance.md)."""
    from aiobotocore.session import get_session
    from botocore.config import Config

    holder: dict[str, Any] = {}

    async def client() -> Any:
        if "client" not in holder:  # created on the benchmark's loop, on first use
            context = get_session().create_client(
                "bedrock-runtime", region_name=AWS_REGION, endpoint_url=url,
                config=Config(retries={"total_max_attempts": 1}, max_pool_connections=1000),
            )
            holder["client"] = await context.__aenter__()
        return holder["client"]

    async def one() -> str:
        response = await (await client()).converse_stream(
            modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0",
            messages=[{"role": "user", "content": [{"text": PROMPT}]}],
        )
        parts = []
        async for event in response["stream"]:
            delta = event.get("contentBlockDelta")
            if delta and "text" in delta["delta"]:
                parts.append(delta["delta"]["text"])
        return "".join(parts)

    return one


CLIENTS: dict[str, Callable[[str, str | None], Workload]] = {
    "openai": openai_sdk, "anthropic": anthropic_sdk, "gemini": gemini_sdk,
    "cohere": cohere_sdk, "mistral": mistral_sdk, "ollama": ollama_sdk, "bedrock": bedrock_sdk,
}
