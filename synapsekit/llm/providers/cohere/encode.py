"""Canonical messages and an :class:`LLMConfig` -> the keyword arguments of the SDK's
``chat_stream`` (Cohere's v2 chat body). Pure functions of (messages, config, rules).

- ``stop`` goes out as ``stop_sequences``, ``top_p`` as ``p``; ``params`` are merged into
  the body as-is (``request_options.additional_body_parameters``: ``seed``, ``k``...);
  ``headers`` through ``request_options.additional_headers``; retries off per request too.
- content parts: text as ``{"type": "text"}``, an image as ``{"type": "image_url",
  "image_url": {"url": <data URL | http(s) URL>}}`` (Cohere takes both; only its vision
  models take images at all, per models.json). A PDF is refused by the capabilities:
  Cohere's ``documents`` parameter is RAG grounding text, not files.
- tools: ``{"type": "function", "function": {name, description, parameters}}``;
  ``strict_tools: true`` when any :class:`~synapsekit.llm.tools.Tool` asks to be strict
  (Cohere's switch is per request, not per tool; the schemas are then trimmed as for
  ``response_format`` below, and a tool without a required parameter, or more than 200
  fields in all, is refused: Cohere's documented strict-mode limits).
  ``tool_choice``: ``"required"`` -> ``REQUIRED``, ``"none"`` -> ``NONE``, ``"auto"`` ->
  left out (Cohere's default; it has no value for it and no way to force one named tool,
  nor a parallel-calls switch).
- an assistant turn's tool calls go back as ``tool_calls`` (arguments as JSON text), with
  its ``tool_plan`` (and thinking, as a ``thinking`` content item) from
  ``provider_data`` when the turn came from Cohere; a tool result is a ``tool`` turn with
  ``tool_call_id`` (text only: Cohere's tool content blocks are text and documents).
- ``response_schema`` -> ``response_format: {"type": "json_object", "json_schema": ...}``,
  the schema trimmed of the keywords Cohere documents as unsupported (they only narrow
  values; ``generate_object`` still validates the answer against the whole schema).
  Cohere refuses ``response_format`` together with tools, so that is refused here.
- reasoning -> ``thinking``: a budget (``reasoning_budget``, or the one a
  ``reasoning_effort`` stands for) as ``{"type": "enabled", "token_budget": n}``, clamped
  by the model's row; ``"none"`` / 0 as ``{"type": "disabled"}``; only to models whose row
  says they reason (Command A Reasoning).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from synapsekit.errors import UnsupportedFeatureError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Part, data_url, text_of
from synapsekit.llm.deadlines import timeouts
from synapsekit.llm.models import RequestRules
from synapsekit.llm.types import Message

__all__ = ["UNSUPPORTED_SCHEMA_KEYS", "request", "response_format"]

#: JSON Schema keywords Cohere's structured outputs do not support (docs: Structured
#: Outputs, "Unsupported schema features"); all of them only narrow allowed values.
UNSUPPORTED_SCHEMA_KEYS = frozenset({
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minItems", "maxItems", "minLength", "maxLength", "uniqueItems",
    "additionalProperties",
})
#: The only string formats Cohere's structured outputs take.
_FORMATS = frozenset({"date-time", "uuid", "date", "time"})
_TOOL_CHOICES = {"required": "REQUIRED", "none": "NONE"}
#: Cohere's limit on the fields of all tools of one strict_tools call.
MAX_STRICT_FIELDS = 200


def request(messages: list[Message], config: LLMConfig, rules: RequestRules) -> dict[str, Any]:
    """The ``chat_stream`` keyword arguments for one call."""
    options: dict[str, Any] = {"max_retries": 0, "timeout": timeouts(config).read}
    if config.headers:
        options["additional_headers"] = dict(config.headers)
    if config.params:
        options["additional_body_parameters"] = dict(rules.params(config))
    body: dict[str, Any] = {
        "model": config.model,
        "messages": [_message(m) for m in messages],
        "max_tokens": config.max_tokens,
        "request_options": options,
    }
    temperature = rules.temperature(config)
    if temperature is not None:  # None would go out as null: leave the argument out
        body["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:  # Cohere's v2 chat calls it p
        body["p"] = top_p
    if config.stop:
        body["stop_sequences"] = list(config.stop)
    if config.tools:
        strict = any(t.strict for t in config.tools)
        if strict:
            _check_strict(config)
        body["tools"] = [
            {"type": "function", "function": _function(
                t.name, t.description, _trim(t.schema) if strict else t.schema)}
            for t in config.tools
        ]
        if strict:
            body["strict_tools"] = True
        choice = config.tool_choice
        if isinstance(choice, str) and choice in _TOOL_CHOICES:
            body["tool_choice"] = _TOOL_CHOICES[choice]
    if config.response_schema is not None:
        if config.tools:
            raise UnsupportedFeatureError(
                "cohere: response_format (structured output) cannot be combined with tools "
                "on Cohere's chat API; send the schema without tools, or use a tool."
            )
        body["response_format"] = response_format(config.response_schema.schema)
    thinking = _thinking(config, rules)
    if thinking is not None:
        body["thinking"] = thinking
    return body


def response_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``response_format`` for a JSON Schema, in Cohere's dialect."""
    return {"type": "json_object", "json_schema": _trim(schema)}


def _trim(schema: Any) -> Any:
    """The schema without the keywords Cohere rejects (recursively), and without a
    ``format`` it does not know."""
    if isinstance(schema, Mapping):
        found: dict[str, Any] = {}
        for key, value in schema.items():
            if key in UNSUPPORTED_SCHEMA_KEYS:
                continue
            if key == "format" and value not in _FORMATS:
                continue
            # Inside "properties" / "$defs" the keys are names, not keywords: keep them.
            if key in ("properties", "$defs", "definitions") and isinstance(value, Mapping):
                found[key] = {name: _trim(sub) for name, sub in value.items()}
            else:
                found[key] = _trim(value)
        return found
    if isinstance(schema, list):
        return [_trim(item) for item in schema]
    return schema


def _check_strict(config: LLMConfig) -> None:
    """Cohere's documented limits of ``strict_tools``: every tool needs a required
    parameter, and all tools together at most 200 fields."""
    for t in config.tools:
        if not t.schema.get("required"):
            raise UnsupportedFeatureError(
                f"cohere: strict tools need at least one required parameter in every tool "
                f"(Cohere's strict_tools does not take tools with only optional parameters); "
                f"tool {t.name!r} has none."
            )
    fields = sum(len(t.schema.get("properties") or {}) for t in config.tools)
    if fields > MAX_STRICT_FIELDS:
        raise UnsupportedFeatureError(
            f"cohere: strict tools may define at most {MAX_STRICT_FIELDS} fields across all "
            f"tools of a call; these define {fields}."
        )


def _function(name: str, description: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "parameters": dict(parameters)}
    if description:
        function["description"] = description
    return function


def _thinking(config: LLMConfig, rules: RequestRules) -> dict[str, Any] | None:
    if not rules.reasoning:
        return None  # a model that does not reason: "none" / 0 need nothing sent
    budget = rules.budget(config)
    if budget is None:
        return None
    if budget == 0:
        return {"type": "disabled"}
    return {"type": "enabled", "token_budget": budget}


def _message(message: Message) -> dict[str, Any]:
    role = message["role"]
    content = message["content"]
    if role == "assistant":
        return _assistant(message)
    if role == "tool":
        return {"role": "tool", "tool_call_id": message["tool_call_id"],
                "content": _tool_content(content)}
    if isinstance(content, str):
        return {"role": role, "content": content}
    return {"role": role, "content": [_part(p) for p in content]}


def _part(part: Part) -> dict[str, Any]:
    if part["type"] == "text":
        return {"type": "text", "text": part["text"]}
    if part["type"] == "image":
        url = part["url"] if "url" in part else data_url(part)
        return {"type": "image_url", "image_url": {"url": url}}
    raise UnsupportedFeatureError(  # the call path refuses documents first (capabilities)
        "cohere: a document part cannot be sent; Cohere's chat takes text and images."
    )


def _tool_content(content: str | list[Part]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if any(p["type"] != "text" for p in content):
        raise UnsupportedFeatureError(
            "cohere: a tool result can hold text only (Cohere's tool content blocks are "
            "text and RAG documents, no images); send the result as text."
        )
    return [{"type": "text", "text": p["text"]} for p in content if p["type"] == "text"]


def _assistant(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant"}
    native: Mapping[str, Any] = {}
    data = message.get("provider_data")
    if data is not None and data.get("protocol") == "cohere" and isinstance(
        data.get("content"), Mapping
    ):
        native = data["content"]
    text = text_of(message["content"])
    thinking = native.get("thinking")
    if thinking:
        items: list[dict[str, Any]] = [{"type": "thinking", "thinking": thinking}]
        if text:
            items.append({"type": "text", "text": text})
        out["content"] = items
    elif text or not message.get("tool_calls"):
        out["content"] = text
    calls = message.get("tool_calls")
    if calls:
        if native.get("tool_plan"):
            out["tool_plan"] = native["tool_plan"]
        out["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {
                "name": call.name,
                "arguments": json.dumps(dict(call.arguments), ensure_ascii=False),
            }}
            for call in calls
        ]
    return out
