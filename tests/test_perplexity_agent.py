"""Perplexity's Agent API (``POST /v1/agent``; Sonar chat completions were retired on
2026-09-27): the request our provider sends for each kind of model name, the answer and
usage of a live capture, typed errors, broken streams. Real openai SDK over real HTTP
against synapsekit/testing/simulators/perplexity_agent.py."""

from __future__ import annotations

import pytest

from synapsekit import Budget, TokenTracer, make_llm
from synapsekit.errors import (
    AuthenticationError,
    ConnectionError,
    InvalidRequestError,
    LLMError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    UnsupportedFeatureError,
)
from synapsekit.llm.base import BaseLLM
from synapsekit.llm.types import Usage
from synapsekit.testing.simulators.perplexity_agent import (
    PerplexityAgentSimulator,
    error,
    text_stream,
    usage_stream,
)
from synapsekit.testing.simulators.server import Reply
from tests.sim_fixtures import serve, track

KEY = "pplx-agent-key-0123456789"
ANSWER = ("The official TypeScript website is **typescriptlang.org**; TypeScript is a strongly "
          "typed programming language that builds on JavaScript and adds syntax for types.[7]")

_server, sim = serve(lambda: PerplexityAgentSimulator(KEY))


def _llm(sim: PerplexityAgentSimulator, model: str = "sonar", **fields: object) -> BaseLLM:
    fields.setdefault("api_key", KEY)
    return track(make_llm(f"perplexity:{model}", base_url=sim.url, **fields))


async def test_capture_text_usage_and_metadata(sim: PerplexityAgentSimulator) -> None:
    llm = _llm(sim, system_prompt="Be brief.", max_tokens=1024)
    chunks = [c async for c in llm.stream_chunks(
        [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
         {"role": "user", "content": "Q2"}])]
    assert "".join(c.text for c in chunks) == ANSWER
    assert "".join(c.reasoning for c in chunks) == "Searching the web...\nFound 10 results\n"
    final = chunks[-1]
    assert final.finish_reason == "stop"
    assert final.usage == Usage(3007, 37, cached_input_tokens=3004, model="openai/gpt-6-luna",
                                stated_cost_usd=0.00105)
    assert final.metadata is not None
    assert final.metadata["cost"]["total_cost"] == 0.00105
    assert len(final.metadata["citations"]) == 10
    assert final.metadata["citations"][6] == "https://www.typescriptlang.org/"
    (request,) = sim.requests
    assert request.path == "/v1/agent"
    assert request.json() == {
        "stream": True, "model": "perplexity/sonar", "tools": [{"type": "web_search"}],
        "instructions": "Be brief.",
        "input": [{"type": "message", "role": "user", "content": "Q1"},
                  {"type": "message", "role": "assistant", "content": "A1"},
                  {"type": "message", "role": "user", "content": "Q2"}],
        "max_output_tokens": 1024, "temperature": 0.2,
    }


@pytest.mark.parametrize(("model", "sent"), [
    ("sonar-pro", {"model": "perplexity/sonar", "tools": [{"type": "web_search"}]}),
    ("sonar-reasoning-pro", {"model": "perplexity/sonar", "tools": [{"type": "web_search"}]}),
    ("sonar-deep-research", {"model": "perplexity/sonar", "tools": [{"type": "web_search"}]}),
    ("fast", {"preset": "fast"}),
    ("xhigh", {"preset": "xhigh"}),
    ("perplexity/sonar", {"model": "perplexity/sonar"}),
    ("openai/gpt-5.5", {"model": "openai/gpt-5.5"}),
])
async def test_model_names(sim: PerplexityAgentSimulator, model: str, sent: dict) -> None:
    assert await _llm(sim, model).generate("hi") == ANSWER
    body = sim.requests[0].json()
    assert {k: body[k] for k in ("model", "preset", "tools") if k in body} == sent


async def test_bad_key_is_typed(sim: PerplexityAgentSimulator) -> None:
    with pytest.raises(AuthenticationError):
        await _llm(sim, api_key="pplx-wrong-0000000000").generate("hi")
    assert len(sim.requests) == 1  # not retried


async def test_in_stream_failure_is_typed(sim: PerplexityAgentSimulator) -> None:
    failed = (b'data: {"type":"response.created","response":{"status":"in_progress"}}\n\n'
              b'data: {"type":"response.failed","response":{"status":"failed","error":'
              b'{"message":"bad preset","type":"invalid_request_error","code":"400"}}}\n\n')
    sim.enqueue(Reply(200, {"content-type": "text/event-stream"}, stream=[failed]))
    with pytest.raises(InvalidRequestError):
        await _llm(sim, max_retries=0).generate("hi")


async def test_a_body_without_completed_is_cut(sim: PerplexityAgentSimulator) -> None:
    cut = usage_stream(["Hi"], {"input_tokens": 3, "output_tokens": 1})
    pieces = list(cut.stream or ())
    sim.enqueue(Reply(200, cut.headers, stream=pieces[:1]))  # before any text: retried
    sim.enqueue(Reply(200, cut.headers, stream=pieces[:-1]))  # after "Hi": not retried
    with pytest.raises(StreamInterruptedError):
        await _llm(sim, max_retries=1).generate("hi")
    assert len(sim.requests) == 2


async def test_a_cut_before_text_is_a_connection_error(sim: PerplexityAgentSimulator) -> None:
    cut = usage_stream(["Hi"], {"input_tokens": 3, "output_tokens": 1})
    sim.enqueue(Reply(200, cut.headers, stream=list(cut.stream or ())[:1]))
    with pytest.raises(ConnectionError):
        await _llm(sim, max_retries=0).generate("hi")
    assert len(sim.requests) == 1


async def test_incomplete_is_length(sim: PerplexityAgentSimulator) -> None:
    sim.enqueue(usage_stream(["Hi"], {"input_tokens": 3, "output_tokens": 1},
                             status="incomplete"))
    final = [c async for c in _llm(sim).stream_chunks("hi")][-1]
    assert final.finish_reason == "length"
    assert final.usage == Usage(3, 1, model="perplexity/sonar")
    assert final.metadata == {"raw_finish_reason": "max_output_tokens"}


# What tests/test_openai_family.py checked on the retired chat-completions endpoint, on the
# Agent API: a joined stream and exact accounting, typed errors per status, reasoning.


async def test_generate_is_the_joined_stream(sim: PerplexityAgentSimulator) -> None:
    tokens = ["Hello", ",", " world", "!"]
    sim.enqueue(text_stream(tokens, input_tokens=12), text_stream(tokens, input_tokens=12))
    llm = _llm(sim)
    assert await llm.generate("hi") == "Hello, world!"
    assert [t async for t in llm.stream("hi")] == tokens
    assert llm.tokens_used == {"input": 24, "output": 8}
    assert len(sim.requests) == 2
    assert all("stream_options" not in r.json() for r in sim.requests)  # usage comes unasked


async def test_a_completed_response_without_usage_is_not_a_real_zero(
    sim: PerplexityAgentSimulator,
) -> None:
    bare = usage_stream(["x"], {})
    pieces = [p.replace(b',"usage":{}', b"") for p in bare.stream or ()]
    sim.enqueue(Reply(200, bare.headers, stream=pieces))
    llm = _llm(sim)
    final = [c async for c in llm.stream_chunks("hi")][-1]
    assert final.usage is not None and final.usage.complete is False
    assert llm.tokens_used == {"input": 0, "output": 0}


@pytest.mark.parametrize(("status", "headers", "expected"), [
    (401, {}, AuthenticationError),
    (402, {}, QuotaExceededError),
    (403, {}, PermissionDeniedError),
    (404, {}, NotFoundError),
    (400, {}, InvalidRequestError),
    (429, {"retry-after": "7"}, RateLimitError),
    (500, {}, ServerError),
    (503, {}, ServerError),
])
async def test_typed_errors(
    sim: PerplexityAgentSimulator, status: int, headers: dict[str, str],
    expected: type[LLMError],
) -> None:
    sim.enqueue(error(status, headers=headers))
    llm = _llm(sim, max_retries=0)
    with pytest.raises(expected) as err:
        await llm.generate("hi")
    assert type(err.value) is expected
    assert (err.value.status_code, err.value.provider) == (status, "perplexity")
    assert err.value.retry_after == (7.0 if status == 429 else None)
    assert KEY not in str(err.value) and KEY not in repr(err.value)
    assert len(sim.requests) == 1
    assert llm.tokens_used == {"input": 0, "output": 0}


@pytest.mark.parametrize(("model", "setting", "sent"), [
    # the model row's levels (low, medium, high): clamped, as on every provider
    ("sonar-reasoning-pro", {"reasoning_effort": "xhigh"}, {"effort": "high"}),
    ("sonar-reasoning-pro", {"reasoning_effort": "minimal"}, {"effort": "low"}),
    ("sonar-deep-research", {"reasoning_effort": "medium"}, {"effort": "medium"}),
    ("sonar-reasoning-pro", {"reasoning_budget": 30000}, {"effort": "high"}),
])
async def test_reasoning_as_sent(
    sim: PerplexityAgentSimulator, model: str, setting: dict[str, object], sent: dict,
) -> None:
    sim.enqueue(text_stream(["4"]))
    assert (await _llm(sim, model).respond("2 + 2?", **setting)).text == "4"  # type: ignore[arg-type]
    assert sim.requests[0].json()["reasoning"] == sent


async def test_reasoning_on_a_model_without_it_refused_before_any_request(
    sim: PerplexityAgentSimulator,
) -> None:
    with pytest.raises(UnsupportedFeatureError, match="takes no reasoning controls"):
        await _llm(sim, "sonar").respond("Think.", reasoning_effort="high")
    assert sim.requests == []


# The bill Perplexity states (usage.cost.total_cost, the search_web fee included) is the
# cost everywhere: the tracer, Response.cost_usd and a budget's settlement.


async def test_the_stated_bill_is_the_cost(sim: PerplexityAgentSimulator) -> None:
    tracer, budget = TokenTracer(), Budget(limit_usd=1.0)
    llm = _llm(sim, tracer=tracer)
    response = await llm.respond("hi", budget=budget)  # the capture: total_cost 0.00105
    assert response.usage.stated_cost_usd == 0.00105
    assert response.cost_usd == 0.00105  # not the Sonar row's 0.008044
    (record,) = tracer.records
    assert record.cost_usd == 0.00105
    assert record.price_row == "perplexity:sonar"  # the row is still named
    assert record.price_rule is not None and record.price_rule.endswith(
        "; cost stated by perplexity")
    assert budget.spent_usd == pytest.approx(0.00105, abs=1e-9)


async def test_a_cached_answer_costs_nothing(sim: PerplexityAgentSimulator) -> None:
    tracer = TokenTracer()
    llm = _llm(sim, tracer=tracer, cache=True)
    first = await llm.respond("hi")
    again = await llm.respond("hi")
    assert again.text == first.text
    assert (first.cost_usd, again.cost_usd) == (0.00105, 0.0)
    assert [r.cost_usd for r in tracer.records] == [0.00105, 0.0]
    assert len(sim.requests) == 1


async def test_generate_object_sends_the_schema_as_response_format(
    sim: PerplexityAgentSimulator,
) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    sim.enqueue(text_stream(['{"name": "Oslo", ', '"population": 709000}']))
    city = await _llm(sim).generate_object("Oslo?", schema=City)
    assert city == City(name="Oslo", population=709000)
    assert len(sim.requests) == 1
    fmt = sim.requests[0].json()["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"].isalnum() and 1 <= len(fmt["json_schema"]["name"]) <= 64
    assert fmt["json_schema"]["schema"]["required"] == ["name", "population"]


async def test_the_simulator_refuses_a_schema_name_perplexity_refuses(
    sim: PerplexityAgentSimulator,
) -> None:
    llm = _llm(sim, params={"response_format": {
        "type": "json_schema", "json_schema": {"name": "my_schema!", "schema": {}}}})
    with pytest.raises(InvalidRequestError, match="alphanumeric"):
        await llm.generate("hi")
