"""Canonical messages and an :class:`LLMConfig` -> the keyword arguments of the SDK's
``AsyncClient.chat`` (Ollama's ``/api/chat`` body). Pure functions of (messages, config,
rules).

- Sampling settings are model ``options`` (``num_predict`` is max_tokens); ``params`` keys
  in :data:`TOP_LEVEL_PARAMS` are top-level chat arguments (they win over what is mapped
  here), every other key a model option (``top_k``, ``seed``, ``num_ctx``...).
- content parts: a message's text is its ``content``; its images go in ``images`` as bytes
  (the SDK sends them base64). Ollama takes no image URL and no PDF: the capabilities
  refuse those before any request.
- tools: ``{"type": "function", "function": {name, description, parameters}}``. The SDK
  (ollama-python ``Tool.Function.Parameters.Property``) carries only ``type``,
  ``description``, ``enum`` and ``items`` for each parameter, and the server's tool struct
  little more: anything else would be dropped silently. So a parameter's schema is put in
  that dialect (:func:`parameters`): ``anyOf`` / ``oneOf`` of plain types (``Optional[str]``
  is ``anyOf [string, null]``) becomes a ``type`` list, ``const`` a one-value ``enum``, and
  whatever is still left over (a nested object's properties, ``format``, ranges, ...) is
  appended to the parameter's description as JSON, so the model still sees it.
- ``tool_choice``: Ollama has none (``"auto"`` is all it does: nothing is sent), nor a
  parallel-calls switch.
- an assistant turn's tool calls go back as ``tool_calls: [{"function": {name, arguments:
  <object>}}]`` (and its ``thinking``, from ``provider_data``); a tool result is a ``tool``
  turn with ``tool_name`` (the turn's ``name``, else the name of the call it answers).
  Ollama has no tool-call ids (synapsekit's are ``call_<index>``): the name pairs them.
- ``response_schema`` -> ``format: <the JSON schema>``.
- reasoning -> ``think``: a level among the model's (gpt-oss: ``"low"`` / ``"medium"`` /
  ``"high"``) or, for on/off models (Qwen 3, DeepSeek R1...), ``true``; ``"none"`` / 0 is
  ``false`` (the lowest level on a model that cannot stop thinking). Sent only to models
  whose models.json row says they think.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import text_of
from synapsekit.llm.models import RequestRules
from synapsekit.llm.types import Message

__all__ = ["TOP_LEVEL_PARAMS", "parameters", "request"]

#: ``config.params`` keys that are top-level chat arguments; every other key is a model
#: option (``options``: top_k, seed, num_ctx, ...).
TOP_LEVEL_PARAMS = frozenset({"think", "format", "keep_alive", "logprobs", "top_logprobs"})
#: What the SDK keeps of one parameter's schema (ollama-python ``Property``).
_PROPERTY_KEYS = frozenset({"type", "description", "enum", "items"})


def request(messages: list[Message], config: LLMConfig, rules: RequestRules) -> dict[str, Any]:
    """The ``chat`` keyword arguments for one streamed call."""
    options: dict[str, Any] = {"num_predict": config.max_tokens}
    temperature = rules.temperature(config)
    if temperature is not None:
        options["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        options["top_p"] = top_p
    if config.stop:
        options["stop"] = list(config.stop)
    body: dict[str, Any] = {"model": config.model, "messages": _messages(messages),
                            "stream": True}
    if config.tools:
        body["tools"] = [
            {"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": parameters(t.schema),
            }}
            for t in config.tools
        ]
    if config.response_schema is not None:
        body["format"] = dict(config.response_schema.schema)
    think = _think(config, rules)
    if think is not None:
        body["think"] = think
    for key, value in rules.params(config).items():
        if key in TOP_LEVEL_PARAMS:
            body[key] = value
        else:
            options[key] = value
    body["options"] = options
    return body


def parameters(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A tool's parameter schema in what the ollama SDK carries (see the module docstring)."""
    out: dict[str, Any] = {"type": "object"}
    for key in ("$defs", "required"):
        if key in schema:
            out[key] = schema[key]
    props = schema.get("properties")
    out["properties"] = (
        {name: _property(sub) for name, sub in props.items()} if isinstance(props, Mapping)
        else {}
    )
    return out


def _property(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        return {}
    prop = {k: v for k, v in schema.items() if k in _PROPERTY_KEYS}
    rest = {k: v for k, v in schema.items() if k not in _PROPERTY_KEYS and k != "title"}
    for key in ("anyOf", "oneOf"):
        options = rest.get(key)
        if "type" not in prop and isinstance(options, list) and options and all(
            isinstance(o, Mapping) and set(o) <= {"type"} and isinstance(o.get("type"), str)
            for o in options
        ):
            prop["type"] = [o["type"] for o in options]
            del rest[key]
    if "const" in rest and "enum" not in prop:
        prop["enum"] = [rest.pop("const")]
    if rest.get("default", 0) is None:
        del rest["default"]  # an Optional's default: says nothing the type list does not
    if rest:
        shown = json.dumps(rest, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        described = prop.get("description")
        prop["description"] = f"{described} (JSON schema: {shown})" if described else (
            f"JSON schema: {shown}"
        )
    return prop


def _think(config: LLMConfig, rules: RequestRules) -> bool | str | None:
    if not rules.reasoning:
        return None  # a model that does not think: "none" / 0 need nothing sent
    if config.reasoning_effort is None and config.reasoning_budget is None:
        return None
    if rules.efforts:
        level = rules.effort(config)
        if level != "none":
            return level
        return False if rules.reasoning_off else rules.efforts[0]
    off = config.reasoning_effort == "none" or (
        config.reasoning_effort is None and config.reasoning_budget == 0
    )
    return not off


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}  # tool-call id -> tool name, for the tool turns
    out: list[dict[str, Any]] = []
    for message in messages:
        role, content = message["role"], message["content"]
        turn: dict[str, Any] = {"role": role, "content": text_of(content)}
        if not isinstance(content, str):
            images = [p["data"] for p in content if p["type"] == "image" and "data" in p]
            if images:
                turn["images"] = images
        if role == "assistant":
            calls = message.get("tool_calls")
            if calls:
                turn["tool_calls"] = [
                    {"function": {"name": c.name, "arguments": dict(c.arguments)}} for c in calls
                ]
                names.update((c.id, c.name) for c in calls)
            data = message.get("provider_data")
            if data is not None and data.get("protocol") == "ollama" and isinstance(
                data.get("content"), Mapping
            ) and data["content"].get("thinking"):
                turn["thinking"] = data["content"]["thinking"]
        elif role == "tool":
            name = message.get("name") or names.get(message["tool_call_id"])
            if name:
                turn["tool_name"] = name
        out.append(turn)
    return out
