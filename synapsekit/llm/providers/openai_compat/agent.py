"""Perplexity's Agent API (``POST /v1/agent``, the Open Responses shape): the request body
and the stream -> :class:`~synapsekit.llm.types.Chunk` s.

Why a second protocol here: Perplexity retired the Sonar chat-completions endpoint on
2026-09-27 (docs.perplexity.ai/docs/agent-api/migrate-from-sonar/overview); its
replacement takes ``input`` items instead of ``messages``, a ``preset`` or a ``model``,
and streams typed events (``response.output_text.delta`` ... ``response.completed``).
Shapes follow a live capture (the simulators' captures/openai_compatible/perplexity/
agent_stream_web_search_realcapture.sse, see its README).

Usage: ``input_tokens`` includes ``input_tokens_details.cache_read_input_tokens`` and
``cache_creation_input_tokens`` (3007 = 3004 read + 3 new in the capture), so those are
its parts, as :class:`~synapsekit.llm.types.Usage` defines them. The bill Perplexity
states (``usage.cost``: tokens, cache, tool calls such as ``search_web``) is kept as
``metadata["cost"]`` and its ``total_cost`` as ``Usage.stated_cost_usd``, which is the
call's cost (tool-call fees are not token prices).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import text_of
from synapsekit.llm.models import RequestRules
from synapsekit.llm.providers._errors import ErrorMapper
from synapsekit.llm.providers.openai_compat.errors import stream_failure
from synapsekit.llm.sse import iter_sse, json_event
from synapsekit.llm.types import Chunk, Message, Usage

__all__ = ["LEGACY_SONAR", "PATH", "PRESETS", "agent_request", "agent_usage", "parse_agent"]

PATH = "/v1/agent"
#: The Agent API's presets (task intensity); sent as ``preset``, not ``model``.
PRESETS = frozenset({"fast", "low", "medium", "high", "xhigh"})
#: The retired Sonar chat-completions ids: Perplexity kept one Sonar model slug,
#: ``perplexity/sonar``; web search, on by default on Sonar, is asked for as a tool.
LEGACY_SONAR = frozenset({
    "sonar", "sonar-pro", "sonar-reasoning", "sonar-reasoning-pro", "sonar-deep-research",
})


def agent_request(
    messages: list[Message], config: LLMConfig, rules: RequestRules
) -> dict[str, Any]:
    """The streamed ``/v1/agent`` body: system turns as ``instructions``, the others as
    ``input`` messages (text; the Agent API has no Sonar PDF input); sampling as the
    model's rules allow it, as on every provider."""
    model = config.model
    body: dict[str, Any] = {"stream": True}
    if model in PRESETS:
        body["preset"] = model
    elif model in LEGACY_SONAR:
        body["model"] = "perplexity/sonar"
        body["tools"] = [{"type": "web_search"}]
    else:
        body["model"] = model  # a vendor/model id: perplexity/sonar, openai/gpt-5.5, ...
    system = [text_of(m["content"]) for m in messages if m["role"] == "system"]
    if system:
        body["instructions"] = "\n\n".join(system)
    body["input"] = [
        {"type": "message", "role": m["role"], "content": text_of(m["content"])}
        for m in messages if m["role"] in ("user", "assistant")
    ]
    if config.max_tokens is not None:
        body["max_output_tokens"] = config.max_tokens
    temperature = rules.temperature(config)
    if temperature is not None:
        body["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        body["top_p"] = top_p
    effort = rules.effort(config)  # clamped to the levels the model's row accepts
    if effort == "none" and not rules.reasoning_off:
        effort = next((e for e in rules.efforts if e != "none"), None)
    if rules.reasoning and effort is not None:
        body["reasoning"] = {"effort": effort}
    schema = config.response_schema
    if schema is not None:  # docs.perplexity.ai/docs/agent-api/output-control
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": _schema_name(schema.name), "schema": dict(schema.schema)}}
    if config.params:
        body.update(config.params)
    return body


def _schema_name(name: str) -> str:
    """The Agent API wants a schema name of 1-64 alphanumeric characters."""
    kept = "".join(c for c in name if c.isascii() and c.isalnum())[:64]
    return kept or "schema"


def agent_usage(raw: dict[str, Any], model: Any = None) -> Usage:
    """``response.usage`` as :class:`Usage` (cache reads and writes are parts of
    ``input_tokens``)."""
    details = raw.get("input_tokens_details") or {}
    out = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=raw.get("input_tokens") or 0,
        output_tokens=raw.get("output_tokens") or 0,
        cached_input_tokens=(
            details.get("cache_read_input_tokens") or details.get("cached_tokens") or 0
        ),
        cache_write_tokens=details.get("cache_creation_input_tokens") or 0,
        reasoning_tokens=out.get("reasoning_tokens") or 0,
        model=model if isinstance(model, str) else None,
        stated_cost_usd=_total_cost(raw.get("cost")),
    )


def _total_cost(cost: Any) -> float | None:
    """``usage.cost.total_cost``: the bill Perplexity states (tokens, cache, tool calls)."""
    total = cost.get("total_cost") if isinstance(cost, dict) else None
    if isinstance(total, (int, float)) and not isinstance(total, bool) and total >= 0:
        return float(total)
    return None


async def parse_agent(response: Any, errors: ErrorMapper) -> AsyncGenerator[Chunk, None]:
    """Chunks from the Agent API's SSE body. Text from ``response.output_text.delta``;
    search steps' ``thought`` as reasoning (never answer text); usage, the answering model
    and the search results from ``response.completed``; ``response.failed`` / ``error``
    events raised as typed errors; a body without ``response.completed`` is cut."""
    errors.request_id = response.headers.get("x-request-id")
    final: dict[str, Any] | None = None
    async for _, data in iter_sse(response.aiter_bytes()):
        if final is not None or data == b"[DONE]":
            continue  # read on to the end so the connection can be reused
        event = json_event(data, errors)
        kind = event.get("type")
        if kind == "response.output_text.delta":
            if event.get("delta"):
                yield Chunk(event["delta"])
        elif kind in ("response.reasoning.search_queries", "response.reasoning.started",
                      "response.reasoning.search_results", "response.reasoning.stopped"):
            if event.get("thought"):
                yield Chunk(reasoning=event["thought"] + "\n")
        elif kind == "error" or kind == "response.failed":
            failure = event.get("error") or (event.get("response") or {}).get("error") or {}
            raise errors.error(stream_failure(failure))
        elif kind in ("response.completed", "response.incomplete"):
            final = event.get("response") or {}
    if final is None:
        raise errors.cut("response.completed")
    raw = final.get("usage")
    metadata: dict[str, Any] = {}
    results = [r for item in final.get("output") or () if item.get("type") == "search_results"
               for r in item.get("results") or ()]
    if results:
        metadata["search_results"] = results
        metadata["citations"] = [r.get("url") for r in results]
    if raw and raw.get("cost"):
        metadata["cost"] = raw["cost"]
    incomplete = final.get("status") == "incomplete"
    if incomplete:
        metadata["raw_finish_reason"] = str(
            (final.get("incomplete_details") or {}).get("reason") or "incomplete")
    yield Chunk(
        usage=agent_usage(raw, final.get("model")) if raw else None,
        finish_reason="length" if incomplete else "stop",
        metadata=metadata or None,
    )
