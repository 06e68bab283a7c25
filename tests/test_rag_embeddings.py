"""Embedders through each provider's real SDK over real HTTP, against its simulator's
embeddings endpoint.

The simulators answer with deterministic vectors (``embedding_vector``: SHA-256 of the
text) and count one token per word, so every assertion is exact: the vectors and their
order, the tokens, how many requests a call made and what each request carried (batch
slices, the query/document input type, the requested dimension), the exception class and
how many attempts it took.
"""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synapsekit.errors import (
    AuthenticationError,
    ConfigError,
    InvalidInputError,
    InvalidRequestError,
    MissingAPIKeyError,
    MissingDependencyError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from synapsekit.observability.tracer import TokenTracer
from synapsekit.rag.embeddings import (
    EMBEDDING_PROVIDERS,
    BedrockCohereEmbedder,
    CohereEmbedder,
    Embedder,
    GeminiEmbedder,
    MistralEmbedder,
    OllamaEmbedder,
    OpenAIEmbedder,
    TitanEmbedder,
    detect_embedding_provider,
    make_embedder,
)
from synapsekit.testing.simulators import (
    bedrock_protocol,
    cohere_protocol,
    gemini_protocol,
    mistral_protocol,
    ollama_protocol,
    openai_protocol,
)
from synapsekit.testing.simulators.openai_protocol import embedding_vector, token_count
from synapsekit.testing.simulators.server import Reply, Request, Server
from tests.conftest import API_KEY as OPENAI_KEY
from tests.sim_fixtures import aws_credentials

KEY = "embed-sim-key-0123456789"
ACCESS_KEY, SECRET_KEY, REGION = "AKIAEMBEDTESTKEY0001", "embed/secret/0123456789", "us-west-2"
TEXTS = ["The cat sat on the mat.", "Dense retrieval needs vectors.", "third text here"]


@dataclass(frozen=True)
class Case:
    """One provider's embeddings endpoint: how to reach it and read what it was sent."""

    name: str
    model: str
    server: str
    cls: type[Embedder]
    dims_field: str  # the request-body field that carries the requested dimension
    reports_tokens: bool = True
    provider: str | None = None

    def inputs(self, request: Request) -> list[str]:
        body = request.json()
        if self.server == "gemini":
            return [r["content"]["parts"][0]["text"] for r in body["requests"]]
        if self.name == "bedrock-titan":
            return [body["inputText"]]
        value = body["texts"] if "texts" in body else body["input"]
        return value if isinstance(value, list) else [value]

    def dims_sent(self, request: Request) -> Any:
        body = request.json()
        if self.server == "gemini":
            return {r.get("outputDimensionality") for r in body["requests"]}.pop()
        return body.get(self.dims_field)


CASES = [
    Case("openai", "text-embedding-3-small", "openai", OpenAIEmbedder, "dimensions"),
    Case("azure", "my-embedding-deployment", "azure", OpenAIEmbedder, "dimensions",
         provider="azure"),
    Case("gemini", "gemini-embedding-001", "gemini", GeminiEmbedder, "outputDimensionality",
         reports_tokens=False),
    Case("cohere", "embed-v4.0", "cohere", CohereEmbedder, "output_dimension"),
    Case("mistral", "codestral-embed", "mistral", MistralEmbedder, "output_dimension"),
    Case("ollama", "ollama:nomic-embed-text", "ollama", OllamaEmbedder, "dimensions"),
    Case("bedrock-titan", "amazon.titan-embed-text-v2:0", "bedrock", TitanEmbedder,
         "dimensions"),
    Case("bedrock-cohere", "cohere.embed-v4:0", "bedrock", BedrockCohereEmbedder,
         "output_dimension"),
]
BY_NAME = {case.name: case for case in CASES}


@pytest.fixture(scope="module")
def servers(
    _openai_server: Server, _azure_server: Server
) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {
        "gemini": gemini_protocol.GeminiSimulator(KEY).start(),
        "cohere": cohere_protocol.CohereSimulator(KEY).start(),
        "mistral": mistral_protocol.MistralSimulator(KEY).start(),
        "ollama": ollama_protocol.OllamaSimulator(("nomic-embed-text",), api_key=KEY).start(),
        "bedrock": bedrock_protocol.BedrockSimulator({ACCESS_KEY: SECRET_KEY},
                                                     region=REGION).start(),
    }
    yield {"openai": _openai_server, "azure": _azure_server, **started}
    for server in started.values():
        server.stop()


_made: list[Embedder] = []


@pytest.fixture
async def sims(
    servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[dict[str, Server]]:
    """Every simulator reset; AWS credentials and region from a clean environment."""
    aws_credentials(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY, REGION)
    for server in servers.values():
        server.reset()
    yield servers
    for embedder in _made:
        await embedder.aclose()
    _made.clear()
    for server in servers.values():
        assert not server.errors
        server.reset()


def _url(server: Server) -> str:
    return str(getattr(server, "url", server.base_url))


def embedder_for(case: Case, sims: dict[str, Server], **options: Any) -> Embedder:
    server = sims[case.server]
    if case.server != "bedrock":
        options.setdefault("api_key", OPENAI_KEY if case.server in ("openai", "azure") else KEY)
    options.setdefault("provider", case.provider)
    embedder = make_embedder(case.model, base_url=_url(server), **options)
    _made.append(embedder)
    return embedder


def _rate_limited(case: Case) -> Reply:
    zero = {"retry-after": "0"}
    if case.server == "gemini":
        return gemini_protocol.rate_limited(retry_delay="0s")
    if case.server == "bedrock":
        return bedrock_protocol.error(429, headers=zero)
    module = {"openai": openai_protocol, "azure": openai_protocol, "cohere": cohere_protocol,
              "mistral": mistral_protocol, "ollama": ollama_protocol}[case.server]
    reply: Reply = module.error(429, headers=zero)
    return reply


def _words(texts: list[str]) -> int:
    return sum(token_count(t) for t in texts)


# ------------------------------------------------------------------------ each provider


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_exact_vectors_tokens_and_requests(case: Case, sims: dict[str, Server]) -> None:
    embedder = embedder_for(case, sims)
    assert type(embedder) is case.cls
    assert sims[case.server].requests == []  # constructing made no network call

    vectors = await embedder.embed(TEXTS)

    assert vectors == [embedding_vector(t) for t in TEXTS]
    requests = sims[case.server].requests
    expected_requests = 3 if case.cls is TitanEmbedder else 1  # Titan: one text per request
    assert len(requests) == expected_requests
    assert sorted(t for r in requests for t in case.inputs(r)) == sorted(TEXTS)
    assert embedder.usage == {"input": _words(TEXTS) if case.reports_tokens else 0}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_batches_keep_order(case: Case, sims: dict[str, Server]) -> None:
    size = case.cls.batch_size
    texts = [f"passage number {i}" for i in range(2 * size + 1)]
    embedder = embedder_for(case, sims)

    vectors = await embedder.embed(texts)

    assert vectors == [embedding_vector(t) for t in texts]
    requests = sims[case.server].requests
    assert len(requests) == math.ceil(len(texts) / size)
    sent = sorted((case.inputs(r) for r in requests), key=lambda batch: texts.index(batch[0]))
    assert sent == [texts[i : i + size] for i in range(0, len(texts), size)]
    assert embedder.usage["input"] == (_words(texts) if case.reports_tokens else 0)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_requested_dimensions_reach_the_api(case: Case, sims: dict[str, Server]) -> None:
    embedder = embedder_for(case, sims, dimensions=256)

    vectors = await embedder.embed(TEXTS[:1])

    assert vectors == [embedding_vector(TEXTS[0], 256)]
    assert case.dims_sent(sims[case.server].requests[0]) == 256


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_429_then_200_is_retried(case: Case, sims: dict[str, Server]) -> None:
    sims[case.server].enqueue(_rate_limited(case))
    embedder = embedder_for(case, sims, max_retries=2)

    assert await embedder.embed(TEXTS[:1]) == [embedding_vector(TEXTS[0])]
    assert len(sims[case.server].requests) == 2


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_rate_limit_without_retries_is_typed(case: Case, sims: dict[str, Server]) -> None:
    sims[case.server].enqueue(_rate_limited(case))
    embedder = embedder_for(case, sims, max_retries=0)

    with pytest.raises(RateLimitError) as err:
        await embedder.embed(TEXTS[:1])
    assert err.value.provider == embedder.provider
    assert len(sims[case.server].requests) == 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_bad_credentials_fail_once_typed(
    case: Case, sims: dict[str, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    options: dict[str, Any] = {"max_retries": 3}
    if case.server == "bedrock":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    else:
        options["api_key"] = "wrong-key-0000"
    embedder = embedder_for(case, sims, **options)

    with pytest.raises(AuthenticationError) as err:
        await embedder.embed(TEXTS)
    assert "wrong-key-0000" not in str(err.value)
    sent = [tuple(case.inputs(r)) for r in sims[case.server].requests]
    assert len(sent) == len(set(sent)) >= 1  # no batch tried twice (one batch: one request)


# ------------------------------------------------------------------------ input types


@pytest.mark.parametrize(
    ("name", "read", "document", "query"),
    [
        ("cohere", lambda b: b["input_type"], "search_document", "search_query"),
        ("bedrock-cohere", lambda b: b["input_type"], "search_document", "search_query"),
        ("gemini", lambda b: b["requests"][0]["taskType"], "RETRIEVAL_DOCUMENT",
         "RETRIEVAL_QUERY"),
    ],
)
async def test_query_and_document_input_types(
    name: str, read: Any, document: str, query: str, sims: dict[str, Server]
) -> None:
    case = BY_NAME[name]
    embedder = embedder_for(case, sims)

    await embedder.embed(TEXTS[:1])
    await embedder.embed(["what sat on the mat?"], query=True)

    first, second = sims[case.server].requests
    assert read(first.json()) == document
    assert read(second.json()) == query


async def test_openai_request_body(openai_sim: Server, sims: dict[str, Server]) -> None:
    await embedder_for(BY_NAME["openai"], sims).embed(TEXTS)

    (request,) = openai_sim.requests
    assert request.path == "/v1/embeddings"
    assert request.json() == {
        "model": "text-embedding-3-small", "input": TEXTS, "encoding_format": "float"
    }


async def test_azure_uses_the_deployment_path(sims: dict[str, Server]) -> None:
    await embedder_for(BY_NAME["azure"], sims).embed(TEXTS[:1])

    (request,) = sims["azure"].requests
    assert request.path == "/openai/deployments/my-embedding-deployment/embeddings"
    assert request.headers["api-key"] == OPENAI_KEY


async def test_mistral_keeps_each_request_under_its_character_budget(
    sims: dict[str, Server],
) -> None:
    texts = [f"{i} " + "word " * 2000 for i in range(7)]  # ~10k characters each
    embedder = embedder_for(BY_NAME["mistral"], sims)

    assert await embedder.embed(texts) == [embedding_vector(t) for t in texts]
    sizes = sorted(len(r.json()["input"]) for r in sims["mistral"].requests)
    assert sizes == [1, 3, 3]  # 32,000 characters per request at most


async def test_a_failing_batch_fails_the_call(sims: dict[str, Server]) -> None:
    case = BY_NAME["cohere"]
    sims["cohere"].enqueue(cohere_protocol.error(400))  # whichever batch comes first
    embedder = embedder_for(case, sims, max_retries=3)
    texts = [f"text {i}" for i in range(2 * case.cls.batch_size)]

    with pytest.raises(InvalidRequestError):
        await embedder.embed(texts)
    assert embedder.usage["input"] in (0, _words(texts[: case.cls.batch_size]),
                                       _words(texts[case.cls.batch_size :]))


async def test_ollama_model_not_pulled(sims: dict[str, Server]) -> None:
    embedder = make_embedder("ollama:mxbai-embed-large", base_url=_url(sims["ollama"]),
                             api_key=KEY)
    _made.append(embedder)

    with pytest.raises(NotFoundError, match="ollama pull mxbai-embed-large"):
        await embedder.embed(TEXTS)


async def test_malformed_answer_is_a_server_error(sims: dict[str, Server]) -> None:
    sims["ollama"].enqueue(Reply(200, {"content-type": "application/json"}, b'{"embeddings": [[1'))
    embedder = embedder_for(BY_NAME["ollama"], sims, max_retries=0)

    with pytest.raises(ServerError):
        await embedder.embed(TEXTS)


async def test_wrong_vector_count_is_a_server_error(openai_sim: Server,
                                                    sims: dict[str, Server]) -> None:
    body = {"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}]}
    openai_sim.enqueue(openai_protocol.error(200, body))
    embedder = embedder_for(BY_NAME["openai"], sims, max_retries=0)

    with pytest.raises(ServerError, match="1 vectors for 3 texts"):
        await embedder.embed(TEXTS)


async def test_tracer_records_each_request(sims: dict[str, Server]) -> None:
    tracer = TokenTracer()
    embedder = embedder_for(BY_NAME["cohere"], sims, tracer=tracer)

    await embedder.embed(TEXTS)

    (record,) = tracer.records
    assert (record.provider, record.model, record.input_tokens, record.output_tokens) == (
        "cohere", "embed-v4.0", _words(TEXTS), 0)
    assert record.cost_usd == pytest.approx(_words(TEXTS) * 0.12 / 1e6)  # embed-v4.0: $0.12/M


# ------------------------------------------------------------------------ input checks


async def test_no_texts_no_request(openai_sim: Server, sims: dict[str, Server]) -> None:
    assert await embedder_for(BY_NAME["openai"], sims).embed([]) == []
    assert openai_sim.requests == []


@pytest.mark.parametrize("texts", ["a string", ["ok", ""], ["ok", "  "], ["ok", 3]])
async def test_bad_texts_are_rejected_before_any_request(
    texts: Any, openai_sim: Server, sims: dict[str, Server]
) -> None:
    with pytest.raises(InvalidInputError):
        await embedder_for(BY_NAME["openai"], sims).embed(texts)
    assert openai_sim.requests == []


# ------------------------------------------------------------------------ detection, config


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("text-embedding-3-small", "openai"),
        ("text-embedding-3-large", "openai"),
        ("text-embedding-ada-002", "openai"),
        ("text-embedding-004", "gemini"),
        ("gemini-embedding-001", "gemini"),
        ("embed-v4.0", "cohere"),
        ("embed-english-v3.0", "cohere"),
        ("mistral-embed", "mistral"),
        ("codestral-embed-2505", "mistral"),
        ("amazon.titan-embed-text-v2:0", "bedrock"),
        ("amazon.titan-embed-text-v1", "bedrock"),
        ("cohere.embed-english-v3", "bedrock"),
        ("us.cohere.embed-v4:0", "bedrock"),
        ("ollama:nomic-embed-text", "ollama"),
        ("together:BAAI/bge-large-en-v1.5", "together"),
        ("openai:my-custom-model", "openai"),
    ],
)
def test_detection_rows(model: str, provider: str) -> None:
    assert detect_embedding_provider(model) == provider


@pytest.mark.parametrize(
    ("model", "cls", "provider", "bare"),
    [
        ("amazon.titan-embed-text-v2:0", TitanEmbedder, "bedrock",
         "amazon.titan-embed-text-v2:0"),
        ("cohere.embed-multilingual-v3", BedrockCohereEmbedder, "bedrock",
         "cohere.embed-multilingual-v3"),
        ("eu.cohere.embed-v4:0", BedrockCohereEmbedder, "bedrock", "eu.cohere.embed-v4:0"),
        ("fireworks:nomic-ai/nomic-embed-text-v1.5", OpenAIEmbedder, "fireworks",
         "nomic-ai/nomic-embed-text-v1.5"),
    ],
)
def test_embedder_class_per_model(
    model: str, cls: type[Embedder], provider: str, bare: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-key")
    # Bedrock checks AWS's credential chain when built: give it credentials by environment
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTKEY000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test/secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    embedder = make_embedder(model)
    assert (type(embedder), embedder.provider, embedder.model) == (cls, provider, bare)


def test_unknown_model_name_asks_for_a_provider() -> None:
    with pytest.raises(ConfigError, match="provider:model"):
        make_embedder("nomic-embed-text")


@pytest.mark.parametrize("provider", ["anthropic", "groq", "perplexity", "deepseek", "cerebras"])
def test_providers_without_embeddings(provider: str) -> None:
    with pytest.raises(ConfigError, match=f"'{provider}' provider has no embeddings API"):
        make_embedder("some-model", provider=provider, api_key="k")


def test_unknown_provider() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        make_embedder("text-embedding-3-small", provider="nope")


def test_conflicting_provider_and_prefix() -> None:
    with pytest.raises(ConfigError):
        make_embedder("ollama:nomic-embed-text", provider="openai", api_key="k")


def test_bad_dimensions() -> None:
    with pytest.raises(ConfigError, match="dimensions"):
        make_embedder("text-embedding-3-small", api_key="k", dimensions=0)


def test_key_from_the_providers_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="CO_API_KEY or COHERE_API_KEY"):
        make_embedder("embed-v4.0")
    monkeypatch.setenv("COHERE_API_KEY", "from-env")
    assert make_embedder("embed-v4.0").provider == "cohere"


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ollama", None)  # import ollama -> ImportError
    with pytest.raises(MissingDependencyError, match=r"synapsekit\[ollama\]"):
        make_embedder("ollama:nomic-embed-text")


def test_every_embedding_provider_is_registered() -> None:
    from synapsekit.llm.registry import PROVIDERS

    assert set(EMBEDDING_PROVIDERS) <= set(PROVIDERS)
    assert set(PROVIDERS) - set(EMBEDDING_PROVIDERS) == {
        "anthropic", "groq", "perplexity", "deepseek", "cerebras"}
