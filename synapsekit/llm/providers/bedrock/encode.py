"""Canonical messages + LLMConfig -> the ``converse_stream`` request (pure functions).

Converse is Bedrock's one request shape for every model family, so any model id works as
``modelId`` unchanged: ``anthropic.claude-3-5-haiku-20241022-v1:0``, a cross-region
inference profile (``us.``/``eu.``/``apac.``/``global.`` prefix) or an ARN. botocore
validates the request against its service model before sending: a field set to ``None`` is
refused, so absent settings are left out; blobs (image / document bytes, redacted
reasoning) are passed as ``bytes`` and botocore base64-encodes them.

Wire rules this module keeps (service model ``bedrock-runtime/2023-09-30``):

- Roles alternate ``user`` / ``assistant``: tool results become ``toolResult`` blocks of a
  user turn, and consecutive turns of one role are merged into one turn.
- ``toolChoice`` has ``auto`` / ``any`` / ``tool`` only: "none" is not offered
  (capabilities), "required" is ``any``.
- A ``document`` needs a ``name`` (1-200 of letters, digits, single spaces, ``-()[]``):
  the part's ``name`` sanitised, else ``document-<n>``.
- Reasoning rides in ``additionalModelRequestFields`` in each family's own shape (the
  ``models.json`` row's family): Claude ``thinking`` with ``budget_tokens`` (>= 1024 and
  below ``maxTokens``; no temperature / top_p and no forced tool with it), Nova 2
  ``reasoningConfig.maxReasoningEffort``, gpt-oss ``reasoning_effort``.
- Structured output: ``outputConfig.textFormat`` (a JSON Schema as a string) on the models
  AWS lists for it (Claude 4.5 / Opus 4.6), otherwise a forced tool named after the schema
  whose arguments the decoder turns into text. ``Tool.strict`` is sent (toolSpec
  ``strict``) on those same models only.
- ``cache_prompt``: ``cachePoint`` blocks after the system prompt, after the tools (Claude)
  and after the turn before the last, on models with prompt caching (Claude 3.5 Haiku,
  3.7 Sonnet and 4.x, Nova 1); other models get no cache points (the answer is the same).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from synapsekit.errors import UnsupportedFeatureError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import text_of
from synapsekit.llm.models import RequestRules
from synapsekit.llm.tools import Tool
from synapsekit.llm.types import Message, OutputSchema

__all__ = ["PROTOCOL", "forced_tool", "native_schema", "request"]

#: ``provider_data["protocol"]`` of what this protocol sends back verbatim.
PROTOCOL = "bedrock"

_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}
_CACHE_POINT = {"cachePoint": {"type": "default"}}
#: Claude's extended thinking: the smallest budget Bedrock accepts.
CLAUDE_MIN_BUDGET = 1024

# Models (globs on the lower-cased id, any inference-profile prefix) with these features.
_NATIVE_SCHEMA = ("*anthropic.claude-sonnet-4-5*", "*anthropic.claude-haiku-4-5*",
                  "*anthropic.claude-opus-4-5*", "*anthropic.claude-opus-4-6*")
_CACHING = ("*anthropic.claude-3-5-haiku*", "*anthropic.claude-3-7-sonnet*",
            "*anthropic.claude-sonnet-4*", "*anthropic.claude-opus-4*",
            "*anthropic.claude-haiku-4*", "*amazon.nova-micro*", "*amazon.nova-lite*",
            "*amazon.nova-pro*", "*amazon.nova-premier*")
_TOOL_CACHING = ("*anthropic.claude*",)  # Nova caches system and messages, not tools


def _matches(model: str, patterns: Sequence[str]) -> bool:
    name = model.lower()
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def native_schema(model: str) -> bool:
    """Whether ``model`` takes ``outputConfig.textFormat`` (else: the forced-tool route)."""
    return _matches(model, _NATIVE_SCHEMA)


def forced_tool(schema: OutputSchema) -> str:
    """The name of the tool that carries a structured answer on models without the native
    mode (the decoder turns that tool's arguments into text)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", schema.name)[:64] or "answer"


def request(messages: list[Message], config: LLMConfig, rules: RequestRules) -> dict[str, Any]:
    """The keyword arguments of ``client.converse_stream``."""
    model = config.base_model or config.model
    extra: dict[str, Any] = dict(rules.params(config)) if config.params else {}
    thinking = _reasoning(config, rules, extra)
    inference: dict[str, Any] = {"maxTokens": config.max_tokens}
    if not thinking:  # Claude refuses temperature / top_p changes while it thinks
        temperature = rules.temperature(config)
        if temperature is not None:  # botocore refuses None: leave the field out
            inference["temperature"] = temperature
        top_p = rules.top_p(config)
        if top_p is not None:
            inference["topP"] = top_p
    if config.stop:
        inference["stopSequences"] = list(config.stop)
    caching = config.cache_prompt and _matches(model, _CACHING)
    system: list[dict[str, Any]] = [
        {"text": text_of(m["content"])} for m in messages if m["role"] == "system"
    ]
    if system and caching:
        system.append(dict(_CACHE_POINT))
    turns = _turns(messages)
    if caching and len(turns) >= 2:
        turns[-2]["content"].append(dict(_CACHE_POINT))
    body: dict[str, Any] = {"modelId": config.model, "messages": turns,
                            "inferenceConfig": inference}
    if system:
        body["system"] = system
    tools = _tool_config(config, thinking, caching and _matches(model, _TOOL_CACHING),
                         native_schema(model))
    if tools is not None:
        body["toolConfig"] = tools
    schema = config.response_schema
    if schema is not None and native_schema(model):
        structure: dict[str, Any] = {"schema": json.dumps(dict(schema.schema)),
                                     "name": schema.name}
        if schema.description:
            structure["description"] = schema.description
        body["outputConfig"] = {"textFormat": {"type": "json_schema",
                                               "structure": {"jsonSchema": structure}}}
    if extra:
        body["additionalModelRequestFields"] = extra
    return body


# ------------------------------------------------------------------------ messages


def _turns(messages: Sequence[Message]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "tool":
            blocks = [_tool_result(message)]
            role = "user"
        elif role == "assistant":
            blocks = _assistant(message)
        else:
            blocks = _blocks(message["content"])
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # Converse wants the roles to alternate
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(content: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    blocks: list[dict[str, Any]] = []
    documents = 0
    for part in content:
        kind = part["type"]
        if kind == "text":
            blocks.append({"text": part["text"]})
        elif kind == "image":
            blocks.append({"image": _image(part)})
        else:  # document: a PDF (check_parts let only what the capabilities allow through)
            documents += 1
            blocks.append({"document": {
                "format": "pdf",
                "name": document_name(part.get("name"), documents),
                "source": {"bytes": part["data"]},
            }})
    return blocks


def _image(part: Mapping[str, Any]) -> dict[str, Any]:
    kind = _IMAGE_FORMATS.get(part.get("media_type", ""))
    if kind is None or "data" not in part:
        raise UnsupportedFeatureError(
            f"bedrock takes images as bytes in png, jpeg, gif or webp, not "
            f"{part.get('media_type') or 'a URL'}; nothing was sent."
        )
    return {"format": kind, "source": {"bytes": part["data"]}}


def document_name(name: Any, n: int) -> str:
    """A name Converse accepts: letters, digits, single whitespace, ``-()[]``; 1-200 chars
    (the part's own name, its extension dropped, else ``document-<n>``)."""
    text = str(name or "")
    text = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", text)
    text = re.sub(r"[^A-Za-z0-9\s\-()\[\]]", "-", text)
    text = re.sub(r"\s+", " ", text).strip()[:200].strip()
    return text or f"document-{n}"


def _assistant(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    data = message.get("provider_data")
    if data and data.get("protocol") == PROTOCOL:
        blocks.extend(_reasoning_block(b) for b in data.get("content") or ())
    content = message["content"]
    if content:
        blocks.extend(_blocks(content))
    for call in message.get("tool_calls") or ():
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name,
                                   "input": dict(call.arguments)}})
    return blocks or [{"text": " "}]  # an empty assistant turn is refused


def _reasoning_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A provider_data reasoning block as sent back: redacted content is kept as base64
    text (JSON-serialisable) and turned back into the bytes botocore expects."""
    thought = block.get("reasoningContent") or {}
    if "redactedContent" in thought:
        return {"reasoningContent": {
            "redactedContent": base64.b64decode(thought["redactedContent"])}}
    return {"reasoningContent": {"reasoningText": dict(thought.get("reasoningText") or {})}}


def _tool_result(message: Message) -> dict[str, Any]:
    content = message["content"]
    result: dict[str, Any] = {"toolUseId": message.get("tool_call_id", ""),
                              "content": _blocks(content or " ")}
    if isinstance(content, str) and content.startswith("Error: "):
        result["status"] = "error"  # run_tools' shape for a tool that raised
    return {"toolResult": result}


# --------------------------------------------------------------------------- tools


def _tool_config(
    config: LLMConfig, thinking: bool, cache: bool, native: bool
) -> dict[str, Any] | None:
    tools: list[dict[str, Any]] = [_spec(t, native) for t in config.tools or ()]
    choice = config.tool_choice
    schema = config.response_schema
    if schema is not None and not native:
        if thinking:
            raise UnsupportedFeatureError(
                f"a response_schema with reasoning on {config.model!r}: this model has no "
                "native structured output on Bedrock and Claude refuses a forced tool while "
                "it thinks; turn reasoning off or use a model with outputConfig (Claude 4.5)."
            )
        tools.append({"toolSpec": {
            "name": forced_tool(schema),
            "description": schema.description or f"Answer with a {schema.name} object.",
            "inputSchema": {"json": dict(schema.schema)},
        }})
        choice = {"name": forced_tool(schema)}
    if not tools:
        return None
    if cache:
        tools.append(dict(_CACHE_POINT))
    out: dict[str, Any] = {"tools": tools}
    if choice == "auto":
        out["toolChoice"] = {"auto": {}}
    elif choice == "required":
        out["toolChoice"] = {"any": {}}
    elif isinstance(choice, Mapping):
        out["toolChoice"] = {"tool": {"name": choice["name"]}}
    if thinking and ("any" in out.get("toolChoice", {}) or "tool" in out.get("toolChoice", {})):
        raise UnsupportedFeatureError(
            f"tool_choice={choice!r} with reasoning on: Claude on Bedrock refuses a forced "
            "tool while it thinks (only 'auto'); turn reasoning off or use tool_choice='auto'."
        )
    return out


def _spec(tool: Tool, strict_ok: bool) -> dict[str, Any]:
    """A toolSpec; ``strict`` only where AWS lists strict tool use (the structured-output
    models): elsewhere the flag is left out and the call path's JSON check still runs."""
    spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": tool.schema}}
    if tool.description:
        spec["description"] = tool.description
    if tool.strict and strict_ok:
        spec["strict"] = True
    return {"toolSpec": spec}


# ----------------------------------------------------------------------- reasoning


def _reasoning(config: LLMConfig, rules: RequestRules, extra: dict[str, Any]) -> bool:
    """Put the family's reasoning control into ``extra``; True when Claude will think."""
    if not rules.reasoning or (config.reasoning_effort is None
                               and config.reasoning_budget is None):
        return False
    family = rules.family
    if family.startswith("bedrock-claude"):
        budget = rules.budget(config)
        if not budget:
            return False  # off: no thinking field (Claude does not think by default)
        budget = min(budget, config.max_tokens - 1)  # budget_tokens < maxTokens
        if budget < CLAUDE_MIN_BUDGET:
            raise UnsupportedFeatureError(
                f"reasoning on {config.model!r}: Claude's thinking budget must be at least "
                f"{CLAUDE_MIN_BUDGET} tokens and below max_tokens ({config.max_tokens}); "
                f"raise max_tokens above {CLAUDE_MIN_BUDGET}. Nothing was sent."
            )
        extra["thinking"] = {"type": "enabled", "budget_tokens": budget}
        return True
    effort = rules.effort(config)
    if effort is None:
        return False
    if effort == "none":
        return False  # Nova 2 and gpt-oss: no field is their default (off / the model's own)
    if family.startswith("bedrock-nova"):
        extra["reasoningConfig"] = {"type": "enabled", "maxReasoningEffort": effort}
    elif family.startswith("bedrock-gpt-oss"):
        extra["reasoning_effort"] = effort
    return False
