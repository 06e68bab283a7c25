"""Canonical messages and an :class:`LLMConfig` -> the chat-completions request body.

Pure functions of (messages, config, rules, vendor): what the model accepts (output-length
field, sampling, reasoning levels) is its row in ``models.json``
(:func:`~synapsekit.llm.models.rules_for`); what the vendor's API looks like (where the
reasoning control goes, JSON mode only, what goes back verbatim) is its :class:`Vendor`.

- content parts: text; images as ``image_url`` (a ``data:`` URL for bytes, the URL itself
  for a remote image); PDFs as chat-completions ``file`` parts (``file_data`` data URL);
- assistant tool calls as ``tool_calls`` (arguments as JSON text); tool results as
  ``tool`` role messages (text only: the API takes no image in a tool message);
- tools, ``tool_choice``, ``parallel_tool_calls``; a strict tool / schema is rewritten to
  OpenAI's strict dialect (:func:`strict_schema`);
- ``response_schema`` -> ``response_format`` json_schema, or ``json_object`` plus the schema
  in the instructions on a vendor with only JSON mode (DeepSeek);
- reasoning -> the vendor's field (:data:`REASONING_FIELDS`), levels clamped by the rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from synapsekit.errors import UnsupportedFeatureError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Part, data_url
from synapsekit.llm.models import RequestRules
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Message, OutputSchema

from .vendor import Vendor

__all__ = ["Vendor", "messages_out", "request", "strict_schema", "tool_spec"]


#: Native values for the rows whose levels are not the API's words (a row's ``family``
#: -> our level -> what is sent; None: send nothing, the model's default is on).
NATIVE_EFFORT: dict[str, dict[str, str | None]] = {
    # Groq Qwen 3: reasoning_effort "none" or "default" (on).
    "groq-qwen3": {"none": "none", "high": "default"},
    # Cerebras GLM: "none" switches thinking off; it thinks by default.
    "cerebras-glm": {"none": "none", "high": None},
    # DeepSeek: low / high / max (xhigh is DeepSeek's "max").
    "deepseek-thinking": {"low": "low", "high": "high", "xhigh": "max"},
    "deepseek-reasoner": {"low": "low", "high": "high", "xhigh": "max"},
}
#: Where each vendor style puts a reasoning setting (for docs/reasoning.md).
REASONING_FIELDS = {
    "reasoning_effort": "reasoning_effort: <level>",
    "openrouter": 'reasoning: {"effort": <level>} or {"max_tokens": <budget>}',
    "deepseek": 'thinking: {"type": "enabled" | "disabled"} + reasoning_effort',
}


def request(
    messages: list[Message], config: LLMConfig, rules: RequestRules, vendor: Vendor
) -> dict[str, Any]:
    """The streamed request body."""
    body: dict[str, Any] = {
        "model": config.model,
        "messages": messages_out(messages, vendor),
        "stream": True,
        rules.max_tokens_field: config.max_tokens,
    }
    temperature = rules.temperature(config)
    if temperature is not None:
        body["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        body["top_p"] = top_p
    if vendor.usage_option:
        body["stream_options"] = {"include_usage": True}
    if config.stop:
        body["stop"] = list(config.stop)
    if config.tools:
        body["tools"] = [tool_spec(t) for t in config.tools]
        if config.tool_choice is not None:
            body["tool_choice"] = _tool_choice(config.tool_choice)
        if config.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = config.parallel_tool_calls
    if config.response_schema is not None:
        _structured(body, config.response_schema, vendor)
    if config.reasoning_effort is not None or config.reasoning_budget is not None:
        _reasoning(body, config, rules, vendor)
    if config.params:
        body.update(rules.params(config))
    return body


# ------------------------------------------------------------------------------ messages


def messages_out(messages: list[Message], vendor: Vendor) -> list[dict[str, Any]]:
    """Canonical turns as chat-completions messages."""
    out: list[dict[str, Any]] = []
    for turn in messages:
        role = turn["role"]
        content = turn["content"]
        if role == "assistant":
            out.append(_assistant(turn, vendor))
        elif role == "tool":
            out.append({
                "role": "tool",
                "tool_call_id": turn["tool_call_id"],
                "content": content if isinstance(content, str) else _tool_text(content),
            })
        elif isinstance(content, str):
            out.append({"role": role, "content": content})
        else:
            out.append({"role": role, "content": [_part(p) for p in content]})
    return out


def _assistant(turn: Message, vendor: Vendor) -> dict[str, Any]:
    content = turn["content"]
    text = content if isinstance(content, str) else "".join(
        p["text"] for p in content if p["type"] == "text"
    )
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    calls = turn.get("tool_calls")
    if calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": json.dumps(dict(call.arguments), ensure_ascii=False),
                },
            }
            for call in calls
        ]
    data = turn.get("provider_data")
    if data is not None and data["protocol"] == vendor.name and isinstance(data["content"], dict):
        for key in vendor.carry:  # what this vendor asked to get back, verbatim
            if key in data["content"]:
                message[key] = data["content"][key]
    return message


def _part(part: Part) -> dict[str, Any]:
    kind = part["type"]
    if kind == "text":
        return {"type": "text", "text": part["text"]}  # type: ignore[typeddict-item]
    if kind == "image":
        url = part.get("url") or data_url(part)  # type: ignore[arg-type]
        return {"type": "image_url", "image_url": {"url": url}}
    name = part.get("name") or "document.pdf"
    return {"type": "file", "file": {"filename": name, "file_data": data_url(part)}}  # type: ignore[arg-type]


def _tool_text(parts: Sequence[Part]) -> str:
    """A tool result's parts as text: a chat-completions ``tool`` message takes text only."""
    other = next((p["type"] for p in parts if p["type"] != "text"), None)
    if other is not None:
        raise UnsupportedFeatureError(
            f"A tool result holds an {other} part: the OpenAI chat-completions protocol "
            "takes only text in a tool message; send the image in a user message instead. "
            "Nothing was sent."
        )
    return "".join(p["text"] for p in parts)  # type: ignore[typeddict-item]


# ------------------------------------------------------------------------------ tools


def tool_spec(tool: Tool) -> dict[str, Any]:
    """One function tool, strict when the tool asks (its schema in the strict dialect)."""
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = strict_schema(tool.schema) if tool.strict else tool.schema
    if tool.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def _tool_choice(choice: str | Mapping[str, str]) -> Any:
    if isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice["name"]}}


# ------------------------------------------------------------------------------ structured


def _structured(body: dict[str, Any], schema: OutputSchema, vendor: Vendor) -> None:
    if vendor.json_only:
        body["response_format"] = {"type": "json_object"}
        instruction = (
            "Answer with one JSON object only, no other text, that follows this JSON "
            f"Schema:\n{json.dumps(dict(schema.schema), ensure_ascii=False)}"
        )
        messages = body["messages"]
        if messages and messages[0]["role"] == "system" and isinstance(
            messages[0]["content"], str
        ):
            messages[0] = {**messages[0], "content": messages[0]["content"] + "\n\n" + instruction}
        else:
            messages.insert(0, {"role": "system", "content": instruction})
        return
    spec: dict[str, Any] = {"name": schema.name}
    if schema.description:
        spec["description"] = schema.description
    spec["schema"] = strict_schema(schema.schema) if schema.strict else dict(schema.schema)
    spec["strict"] = schema.strict
    body["response_format"] = {"type": "json_schema", "json_schema": spec}


#: Keywords OpenAI's strict mode refuses ("'default' is not permitted").
_NOT_IN_STRICT = frozenset({"default"})


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` in OpenAI's strict dialect: every object closed (``additionalProperties:
    false``) with every property required, a property that was optional made nullable (so
    the model can still leave it out, as ``null``); ``oneOf`` as ``anyOf``; ``default``
    dropped. The caller's schema is not changed."""
    out: dict[str, Any] = _strict(schema)
    return out


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _NOT_IN_STRICT:
            continue
        if key == "oneOf":
            key = "anyOf"
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        else:
            out[key] = _strict(value)
    is_object = out.get("type") == "object" or "properties" in out
    if is_object:
        properties = out.setdefault("properties", {})
        required = set(node.get("required", ()))
        for name, sub in properties.items():
            if name not in required:
                properties[name] = _nullable(sub)
        out["required"] = list(properties)
        out["additionalProperties"] = False
    return out


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    kind = node.get("type")
    if isinstance(kind, str):
        return node if kind == "null" else {**node, "type": [kind, "null"]}
    if isinstance(kind, list):
        return node if "null" in kind else {**node, "type": [*kind, "null"]}
    options = node.get("anyOf")
    if isinstance(options, list):
        if any(o.get("type") == "null" for o in options if isinstance(o, dict)):
            return node
        return {**node, "anyOf": [*options, {"type": "null"}]}
    return {"anyOf": [node, {"type": "null"}]}


# ------------------------------------------------------------------------------ reasoning


def _reasoning(
    body: dict[str, Any], config: LLMConfig, rules: RequestRules, vendor: Vendor
) -> None:
    """The vendor's reasoning control; a model that takes none (``rules.reasoning`` "")
    gets nothing (the call path refused anything but "none" / 0 before)."""
    if not rules.reasoning:
        return
    if vendor.reasoning == "openrouter":
        budget = config.reasoning_budget
        if budget is not None and config.reasoning_effort is None and rules.reasoning in (
            "budget", "both"
        ):
            clamped = rules.budget(config)
            body["reasoning"] = (
                {"effort": "none"} if not clamped else {"max_tokens": clamped}
            )
            return
        level = _level(config, rules)
        if level is not None:
            body["reasoning"] = {"effort": level}
        return
    level = _level(config, rules)
    native = NATIVE_EFFORT.get(rules.family)
    if vendor.reasoning == "deepseek":
        if level == "none":
            body["thinking"] = {"type": "disabled"}
            return
        body["thinking"] = {"type": "enabled"}
    if level is None:
        return
    value = native.get(level, level) if native is not None else level
    if value is not None and not (vendor.reasoning == "deepseek" and value == "none"):
        body["reasoning_effort"] = value


def _level(config: LLMConfig, rules: RequestRules) -> str | None:
    """The level to send: the rules' clamp; "none" on a model that cannot stop reasoning
    (``reasoning_off`` false) becomes its lowest level (``efforts`` are in rising order)."""
    level = rules.effort(config)
    if level != "none" or rules.reasoning_off:
        return level
    return next((e for e in rules.efforts if e != "none"), None)
