"""Embedding models behind one small interface, for dense retrieval.

Why it is built this way: each provider's chat class already knows how to import its SDK
(naming the pip extra when it is missing), find its key in the provider's environment
variables, build its SDK client once per event loop with the SDK's retries off, and
translate every SDK exception into :mod:`synapsekit.errors` (``_map_errors``). An
:class:`Embedder` therefore *holds* the chat LLM of its provider as its transport and calls
the SDK's embeddings method through that client, inside that LLM's own error mapping: one
place per provider for errors and keys, nothing copied here. Constructing one makes no
network call.

What embeddings add is all that lives here: batching to each API's limits (texts per
request, and a character budget where the API caps tokens per request), order preserved
across batches, the query-vs-document input type where the API has one (Cohere
``search_query``/``search_document``, Gemini ``RETRIEVAL_QUERY``/``RETRIEVAL_DOCUMENT``),
and our retry policy (:func:`~synapsekit.llm.retry.should_retry`, ``backoff_delay``) around
each request. ``usage["input"]`` sums the input tokens the providers report (Gemini's
API reports none).

``make_embedder("text-embedding-3-small")`` picks the provider from the model name by
:data:`EMBEDDING_RULES` (first match wins); ``"provider:model"`` or ``provider=`` always wins.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from synapsekit._tasks import gather_or_cancel
from synapsekit.errors import ConfigError, InvalidInputError, LLMError, ServerError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.registry import PROVIDERS, provider_class, split_provider_prefix
from synapsekit.llm.retry import backoff_delay, should_retry
from synapsekit.llm.types import Usage
from synapsekit.observability import hooks
from synapsekit.testing.cassette import embedding_batch

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.providers.bedrock import BedrockLLM
    from synapsekit.llm.providers.cohere import CohereLLM
    from synapsekit.llm.providers.gemini import GeminiLLM
    from synapsekit.llm.providers.mistral import MistralLLM
    from synapsekit.llm.providers.ollama import OllamaLLM
    from synapsekit.llm.providers.openai_compat import OpenAICompatibleLLM
    from synapsekit.observability.tracer import TokenTracer

__all__ = [
    "EMBEDDING_PROVIDERS",
    "EMBEDDING_RULES",
    "BedrockCohereEmbedder",
    "CohereEmbedder",
    "Embedder",
    "GeminiEmbedder",
    "MistralEmbedder",
    "OllamaEmbedder",
    "OpenAIEmbedder",
    "TitanEmbedder",
    "detect_embedding_provider",
    "make_embedder",
]

T = TypeVar("T")

#: Ordered rules (regex matched at the start of the lower-cased model name, provider);
#: the first match wins. Gemini's ``text-embedding-004`` comes before OpenAI's prefix.
EMBEDDING_RULES: tuple[tuple[str, str], ...] = (
    (r"gemini-embedding-", "gemini"),
    (r"text-embedding-004", "gemini"),
    (r"text-embedding-", "openai"),
    (r"embed-", "cohere"),
    (r"mistral-embed", "mistral"),
    (r"codestral-embed", "mistral"),
    (r"(?:[a-z]{2,6}(?:-[a-z]+)?\.)?(?:amazon\.titan-embed|cohere\.embed)", "bedrock"),
)
_COMPILED = tuple((re.compile(pattern), provider) for pattern, provider in EMBEDDING_RULES)


class Embedder(ABC):
    """Turns texts into vectors with one provider's embedding model.

    ``await embed(texts)`` returns one vector per text, in order; ``query=True`` embeds
    search queries (the provider's query input type, where it has one). ``usage`` is
    ``{"input": tokens}`` summed over every request the provider reported tokens for.
    A ``tracer`` (settable) records every request like an LLM call.
    """

    #: Most texts one request may carry.
    batch_size: ClassVar[int] = 96
    #: Most characters one request may carry (None: no budget), for APIs that cap the
    #: tokens of a whole request; one text longer than this still goes alone.
    batch_chars: ClassVar[int | None] = None
    #: Requests of one ``embed`` call in flight at once.
    concurrency: ClassVar[int] = 4
    #: The vector encodings each request asks for (empty: the API's default), for the
    #: OpenTelemetry span's ``gen_ai.request.encoding_formats``.
    encoding_formats: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        dimensions: int | None = None,
        tracer: TokenTracer | None = None,
    ) -> None:
        if dimensions is not None and (
            isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
        ):
            raise ConfigError(f"dimensions: must be a whole number >= 1, not {dimensions!r}")
        self.provider = provider
        self.model = model
        self.dimensions = dimensions
        self.tracer = tracer
        self.config = LLMConfig(
            model=model, provider=provider, api_key=api_key, base_url=base_url,
            timeout=timeout, max_retries=max_retries,
        )
        # The chat LLM of the provider: SDK import, key, per-loop client, error mapping.
        self._llm: BaseLLM = provider_class(provider)(self.config)
        self._usage = {"input": 0}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- public API

    @property
    def usage(self) -> dict[str, int]:
        """Input tokens of every request so far, as the provider reported them."""
        with self._lock:
            return dict(self._usage)

    @property
    def base_url(self) -> str | None:
        return self._llm.base_url

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> list[list[float]]:
        """One vector per text, in order; ``query=True`` for search queries."""
        items = _checked(texts)
        batches = list(_batches(items, self.batch_size, self.batch_chars))
        calls = [_bind(self._request, batch, query) for batch in batches]
        parts = await _run_all(calls, self.concurrency)
        return [vector for part in parts for vector in part]

    async def aclose(self) -> None:
        """Close the SDK clients (one per event loop the embedder was used on)."""
        await self._llm.aclose()

    async def __aenter__(self) -> Embedder:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r}, "
            f"dimensions={self.dimensions!r})"
        )

    # ----------------------------------------------------------------- provider API

    @abstractmethod
    async def _embed_batch(
        self, texts: list[str], query: bool
    ) -> tuple[list[list[float]], int | None]:
        """Send one request: (one vector per text, in order; input tokens or None).

        Map SDK exceptions inside the chat LLM's ``_map_errors``; never retry here.
        """

    # ----------------------------------------------------------------- internals

    async def _request(self, texts: list[str], query: bool) -> list[list[float]]:
        """One batch, retried by our policy; checked, counted and traced, and seen by the
        process-wide hooks as one request (an ``embeddings`` span with OpenTelemetry)."""
        with hooks.embedding(
            self._llm, self.config, len(texts), self.dimensions, self.encoding_formats
        ) as run:
            attempt = 0
            while True:
                run.attempts = attempt + 1
                started = time.perf_counter()
                try:
                    vectors, tokens = await embedding_batch(self, texts, query)  # or a cassette's
                    self._check(vectors, len(texts))
                except LLMError as exc:
                    if not should_retry(exc, attempt, self.config.max_retries):
                        raise
                    run.retried(exc)
                    await asyncio.sleep(
                        backoff_delay(attempt, self.config.retry_delay, exc.retry_after)
                    )
                    attempt += 1
                    continue
                self._record(tokens, started)
                run.answered(vectors, tokens)
                return vectors

    def _check(self, vectors: list[list[float]], expected: int) -> None:
        if len(vectors) != expected:
            raise self._malformed(f"{len(vectors)} vectors for {expected} texts")
        sizes = {len(v) for v in vectors}
        if 0 in sizes or len(sizes) > 1:
            raise self._malformed(f"vectors of sizes {sorted(sizes)}")

    def _record(self, tokens: int | None, started: float) -> None:
        if tokens:
            with self._lock:
                self._usage["input"] += tokens
        tracer = self.tracer
        if tracer is not None:
            tracer.record(
                provider=self.provider,
                model=self.model,
                usage=Usage(input_tokens=tokens or 0, complete=tokens is not None),
                latency_ms=(time.perf_counter() - started) * 1000.0,
                ttft_ms=None,
            )

    def _json(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise self._malformed(f"not JSON: {raw[:200]!r}") from None

    def _malformed(self, detail: str) -> ServerError:
        """The error for an answer that is not what the API documents (retried)."""
        return ServerError(
            f"The provider sent a malformed embeddings answer: {detail}",
            provider=self.provider,
            model=self.model,
        )


# --------------------------------------------------------------------- providers


class OpenAIEmbedder(Embedder):
    """``POST /embeddings`` of the OpenAI protocol: OpenAI, Azure, Together, Fireworks,
    OpenRouter. Sent through the SDK's low-level ``post`` and read as raw JSON, as the
    chat path does: the SDK's default (base64 decoded with numpy) and its per-float model
    construction are both skipped. Limits: 2,048 inputs and 300,000 tokens per request."""

    batch_size = 2048
    batch_chars = 300_000
    encoding_formats = ("float",)

    async def _embed_batch(
        self, texts: list[str], query: bool
    ) -> tuple[list[list[float]], int | None]:
        from synapsekit.llm.providers._common import http_stack

        chat = cast("OpenAICompatibleLLM", self._llm)
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        with chat._map_errors(self.config):
            response = await (await chat.connection.client()).post(
                "/embeddings", cast_to=http_stack("openai._base_client").response, body=body
            )
        data = self._json(response.content)
        try:
            rows = sorted(data["data"], key=lambda row: row["index"])
            vectors = [row["embedding"] for row in rows]
            tokens = (data.get("usage") or {}).get("prompt_tokens")
        except (AttributeError, KeyError, TypeError) as exc:
            raise self._malformed(f"no data[].embedding ({exc!r})") from None
        return vectors, tokens


class CohereEmbedder(Embedder):
    """Cohere's v2 ``/v2/embed``: ``input_type`` search_document / search_query, float
    vectors, 96 texts per request; tokens from ``meta.billed_units.input_tokens``."""

    batch_size = 96
    encoding_formats = ("float",)

    async def _embed_batch(
        self, texts: list[str], query: bool
    ) -> tuple[list[list[float]], int | None]:
        chat = cast("CohereLLM", self._llm)
        extra: dict[str, Any] = {}
        if self.dimensions is not None:
            extra["output_dimension"] = self.dimensions
        with chat._map_errors(self.config):
            response = await (await chat.connection.client()).embed(
                model=self.model,
                texts=texts,
                input_type="search_query" if query else "search_document",
                embedding_types=["float"],
                request_options={"max_retries": 0, "timeout": self.config.timeout},
                **extra,
            )
        vectors = response.embeddings.float_
        if vectors is None:
            raise self._malformed("no float embeddings")
        billed = response.meta.billed_units if response.meta is not None else None
        tokens = billed.input_tokens if billed is not None else None
        return vectors, None if tokens is None else int(tokens)


class GeminiEmbedder(Embedder):
    """The Gemini API's ``batchEmbedContents`` through google-genai: 100 texts per
    request, ``task_type`` RETRIEVAL_DOCUMENT / RETRIEVAL_QUERY. Each text goes as its own
    Content: a plain list of strings would be merged into one input by multimodal models."""

    batch_size = 100

    async def _embed_batch(
        self, texts: list[str], query: bool
    ) -> tuple[list[list[float]], int | None]:
        chat = cast("GeminiLLM", self._llm)
        sdk: Any = chat.connection.sdk
        config = sdk.types.EmbedContentConfig(
            task_type="RETRIEVAL_QUERY" if query else "RETRIEVAL_DOCUMENT",
            output_dimensionality=self.dimensions,
        )
        contents = [{"role": "user", "parts": [{"text": text}]} for text in texts]
        with chat._map_errors(self.config):
            response = await (await chat.connection.client()).genai.aio.models.embed_content(
                model=self.model, contents=contents, config=config
            )
        vectors = [e.values or [] for e in response.embeddings or ()]
        meta = response.usage_metadata
        tokens = getattr(meta, "prompt_token_count", None) if meta is not None else None
        return vectors, tokens


class MistralEmbedder(Embedder):
    """Mistral's ``/v1/embeddings``: at most 256 inputs, and a token cap per request
    (about 16k), kept under with a character budget."""

    batch_size = 128
    batch_chars = 32_000

    async def _embed_batch(
        self, texts: list[str], query: bool
    ) -> tuple[list[list[float]], int | None]:
        chat = cast("MistralLLM", self._llm)
        extra: dict[str, Any] = {}
        if self.dimensions is not None:
            extra["output_dimension"] = self.dimensions
        with chat._map_errors(self.config):
            response = await (await chat.connection.client()).embeddings.create_async(
                model=self.model,
                inputs=texts,
                timeout_ms=(
                    None if self.config.timeout is None
                    else max(1, round(self.config.timeout * 1000))
                ),
                **extra,
            )
        rows = sorted(response.data, key=lambda row: row.index or 0)
        usage = response.usage
        return [row.embedding or [] for row in rows], usage.prompt_tokens if usage else None


class OllamaEmbedder(Embedder):
    """Ollama's ``/api/embed`` (a list of inputs per request); tokens from
    ``prompt_eval_count``. A model that is not pulled gets the chat's "ollama pull" hint."""

    batch_size = 128

    async def _embed_batch(
        self, texts: list[str], query: bool
    ) -> tuple[list[list[float]], int | None]:
        chat = cast("OllamaLLM", self._llm)
        with chat._map_errors(self.config):
            response = await (await chat.connection.client()).embed(
                model=self.model, input=texts, dimensions=self.dimensions
            )
        return [list(v) for v in response.embeddings], response.prompt_eval_count


class _BedrockEmbedder(Embedder):
    """Bedrock ``InvokeModel`` (blocking boto3, run in a worker thread)."""

    async def _invoke(self, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
        """The model's JSON answer and the input tokens Bedrock counted (a header)."""
        chat = cast("BedrockLLM", self._llm)
        client = await chat.connection.client()

        def call() -> tuple[Any, int | None]:
            response = client.invoke_model(
                modelId=self.model,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
            )
            headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            count = headers.get("x-amzn-bedrock-input-token-count")
            return response["body"].read(), int(count) if count else None

        with chat._map_errors(self.config):
            raw, tokens = await asyncio.to_thread(call)
        data = self._json(raw)
        if not isinstance(data, dict):
            raise self._malformed("not a JSON object")
        return data, tokens


class TitanEmbedder(_BedrockEmbedder):
    """Amazon Titan Text Embeddings (v1, v2) on Bedrock: one text per request, so
    several requests run at once."""

    batch_size = 1
    concurrency = 8

    async def _embed_batch(
        self, texts: list[str], query: bool
    ) -> tuple[list[list[float]], int | None]:
        body: dict[str, Any] = {"inputText": texts[0]}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        data, tokens = await self._invoke(body)
        vector = data.get("embedding")
        if not isinstance(vector, list):
            raise self._malformed("no embedding")
        count = data.get("inputTextTokenCount")
        return [vector], count if isinstance(count, int) else tokens


class BedrockCohereEmbedder(_BedrockEmbedder):
    """Cohere Embed on Bedrock: 96 texts per request, ``input_type`` as on Cohere."""

    batch_size = 96

    async def _embed_batch(
        self, texts: list[str], query: bool
    ) -> tuple[list[list[float]], int | None]:
        body: dict[str, Any] = {
            "texts": texts,
            "input_type": "search_query" if query else "search_document",
        }
        if self.dimensions is not None:
            body["output_dimension"] = self.dimensions
        data, tokens = await self._invoke(body)
        vectors = data.get("embeddings")
        if isinstance(vectors, dict):  # "embeddings_by_type": {"float": [...]}
            vectors = vectors.get("float")
        if not isinstance(vectors, list):
            raise self._malformed("no embeddings")
        return vectors, tokens


#: The providers with an embeddings API and the embedder class of each ("bedrock" is
#: chosen by model family in :func:`make_embedder`).
EMBEDDING_PROVIDERS: dict[str, type[Embedder]] = {
    "openai": OpenAIEmbedder,
    "azure": OpenAIEmbedder,
    "together": OpenAIEmbedder,
    "fireworks": OpenAIEmbedder,
    "openrouter": OpenAIEmbedder,
    "gemini": GeminiEmbedder,
    "cohere": CohereEmbedder,
    "mistral": MistralEmbedder,
    "ollama": OllamaEmbedder,
    "bedrock": TitanEmbedder,
}
_BEDROCK_COHERE = re.compile(r"(?:[a-z]{2,6}(?:-[a-z]+)?\.)?cohere\.embed")


def detect_embedding_provider(model: str) -> str:
    """The provider of an embedding model, by :data:`EMBEDDING_RULES`; a known
    ``provider:`` prefix wins. An unrecognised name is a ConfigError (no guess)."""
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model: must be a non-empty string, not {model!r}")
    prefixed, bare = split_provider_prefix(model)
    if prefixed:
        return prefixed
    name = bare.lower()
    for pattern, provider in _COMPILED:
        if pattern.match(name):
            return provider
    raise ConfigError(
        f"Cannot tell which provider serves the embedding model {model!r}. Pass provider=... "
        f"or write it as 'provider:model' (e.g. 'ollama:nomic-embed-text'); providers with "
        f"embeddings: {', '.join(sorted(EMBEDDING_PROVIDERS))}"
    )


def make_embedder(
    model: str,
    *,
    provider: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
    dimensions: int | None = None,
    tracer: TokenTracer | None = None,
) -> Embedder:
    """The embedder of ``model``; the provider from the name unless ``provider=`` or a
    ``provider:model`` prefix says. Keys as for the chat providers (``api_key`` or the
    provider's environment variable). No network call is made here."""
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model: must be a non-empty string, not {model!r}")
    prefixed, bare = split_provider_prefix(model)
    if provider is not None and prefixed is not None and provider != prefixed:
        raise ConfigError(f"provider: {provider!r} given, but the model names {prefixed!r}")
    name = provider or prefixed or detect_embedding_provider(bare)
    if name not in PROVIDERS:
        raise ConfigError(
            f"unknown provider {name!r}; providers with embeddings are: "
            f"{', '.join(sorted(EMBEDDING_PROVIDERS))}"
        )
    cls = EMBEDDING_PROVIDERS.get(name)
    if cls is None:
        raise ConfigError(
            f"The {name!r} provider has no embeddings API; use one of: "
            f"{', '.join(sorted(EMBEDDING_PROVIDERS))}"
        )
    if name == "bedrock" and _BEDROCK_COHERE.match(bare.lower()):
        cls = BedrockCohereEmbedder
    return cls(
        name, bare, api_key=api_key, base_url=base_url, timeout=timeout,
        max_retries=max_retries, dimensions=dimensions, tracer=tracer,
    )


# --------------------------------------------------------------------- helpers


def _checked(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidInputError(
            f"texts: must be a list of strings, not {type(texts).__name__}"
        )
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{i}]: must be a string, not {type(text).__name__}")
        if not text.strip():
            raise InvalidInputError(f"texts[{i}]: is empty; there is nothing to embed")
    return items


def _batches(texts: list[str], size: int, chars: int | None) -> Iterator[list[str]]:
    """Consecutive batches of at most ``size`` texts and (unless alone) ``chars`` chars."""
    batch: list[str] = []
    total = 0
    for text in texts:
        if batch and (len(batch) >= size or (chars is not None and total + len(text) > chars)):
            yield batch
            batch, total = [], 0
        batch.append(text)
        total += len(text)
    if batch:
        yield batch


def _bind(
    method: Callable[[list[str], bool], Awaitable[T]], batch: list[str], query: bool
) -> Callable[[], Awaitable[T]]:
    return lambda: method(batch, query)


async def _run_all(calls: list[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run ``calls`` with at most ``limit`` in flight; results in order. The first
    failure cancels the rest and is raised."""
    if len(calls) <= 1:
        return [await call() for call in calls]
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return await gather_or_cancel(one(call) for call in calls)

