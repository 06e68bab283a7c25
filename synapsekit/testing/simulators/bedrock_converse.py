"""What the Converse service checks in a request body beyond its basic shape -- tools, tool
results, images, documents, reasoning, structured output, cache points -- with the messages
the real service answers in its 400 ValidationException (Bedrock's own wording where known,
Anthropic's passed through for Claude-specific rules). Field names and limits are botocore's
service model ``bedrock-runtime/2023-09-30`` (ToolName, ToolUseId, DocumentBlock name,
ImageFormat, DocumentFormat, OutputFormat). Blobs arrive base64-encoded (restJson1).

Also stream builders for tool-call answers (parallel calls are consecutive content blocks on
Converse: Bedrock never interleaves blocks).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["check_converse", "tool_events"]

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
_DOC_NAME = re.compile(r"[A-Za-z0-9\-()\[\]]+(?: [A-Za-z0-9\-()\[\]]+)*")
_IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
_DOC_FORMATS = ("pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md")
_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "gif": b"GIF8", "webp": b"RIFF"}
_MAX_CACHE_POINTS = 4


def _blob(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def check_converse(body: Mapping[str, Any], model: str) -> str | None:
    """The ValidationException message for ``body`` sent to ``model``, or None."""
    messages: list[dict[str, Any]] = body["messages"]
    for i in range(1, len(messages)):
        if messages[i]["role"] == messages[i - 1]["role"]:
            return ("A conversation must alternate between user and assistant roles. Make sure "
                    "the conversation alternates between user and assistant roles and try again.")
    tools_config = body.get("toolConfig")
    names: set[str] = set()
    if tools_config is not None:
        problem = _check_tools(tools_config, names)
        if problem:
            return problem
    extra = body.get("additionalModelRequestFields") or {}
    thinking = _thinking(extra, body, model)
    if isinstance(thinking, str):
        return thinking
    uses_tools = False
    cache_points = sum(1 for s in body.get("system") or () if "cachePoint" in s)
    if tools_config is not None:
        cache_points += sum(1 for t in tools_config.get("tools") or () if "cachePoint" in t)
    for i, message in enumerate(messages):
        previous = messages[i - 1]["content"] if i else []
        expected = [b["toolUse"]["toolUseId"] for b in previous if "toolUse" in b]
        results = [b["toolResult"] for b in message["content"] if "toolResult" in b]
        if message["role"] == "user" and (expected or results):
            if len(results) > len(expected):
                return (f"The number of toolResult blocks at messages.{i}.content exceeds the "
                        "number of toolUse blocks of previous turn.")
            given = [r.get("toolUseId") for r in results]
            missing = [e for e in expected if e not in given]
            if missing:
                return (f"Expected toolResult blocks at messages.{i}.content for the following "
                        f"Ids: {', '.join(missing)}")
        for j, block in enumerate(message["content"]):
            where = f"messages.{i}.content.{j}"
            if "cachePoint" in block:
                cache_points += 1
                if block["cachePoint"] != {"type": "default"}:
                    return f"1 validation error detected: Value at '{where}.cachePoint.type' " \
                           "failed to satisfy constraint: Member must satisfy enum value set: " \
                           "[default]"
            problem = _check_block(block, where, names)
            if problem:
                return problem
            if "toolUse" in block or "toolResult" in block:
                uses_tools = True
        if thinking and message["role"] == "assistant" and i == len(messages) - 2 and any(
            "toolUse" in b for b in message["content"]
        ):
            first = message["content"][0]
            reasoning = first.get("reasoningContent") or {}
            signed = (reasoning.get("reasoningText") or {}).get("signature")
            if not signed and "redactedContent" not in reasoning:
                return (f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                        "but found `tool_use`. When `thinking` is enabled, a final `assistant` "
                        "message must start with a thinking block (preceeding the lastmost set "
                        "of `tool_use` and `tool_result` blocks). We recommend you include "
                        "thinking blocks from previous turns.")
    if uses_tools and tools_config is None:
        return ("The toolConfig field must be defined when using toolUse and toolResult content "
                "blocks.")
    if cache_points > _MAX_CACHE_POINTS:
        return "A maximum of 4 blocks with cache_control may be provided. Found " \
               f"{cache_points}."
    output = body.get("outputConfig")
    if output is not None:
        problem = _check_output(output)
        if problem:
            return problem
    return None


def _check_tools(config: Mapping[str, Any], names: set[str]) -> str | None:
    tools = config.get("tools")
    if not isinstance(tools, list) or not tools:
        return ("1 validation error detected: Value '[]' at 'toolConfig.tools' failed to "
                "satisfy constraint: Member must have length greater than or equal to 1")
    for k, tool in enumerate(tools):
        if "cachePoint" in tool:
            continue
        spec = tool.get("toolSpec") or {}
        name = spec.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            return (f"1 validation error detected: Value '{name}' at 'toolConfig.tools.{k + 1}."
                    "member.toolSpec.name' failed to satisfy constraint: Member must satisfy "
                    "regular expression pattern: [a-zA-Z0-9_-]+")
        if name in names:
            return f"The toolConfig field contains duplicate tool names: {name}"
        names.add(name)
        schema = (spec.get("inputSchema") or {}).get("json")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return (f"The value at toolConfig.tools.{k}.toolSpec.inputSchema.json.type must be "
                    "object")
        if "description" in spec and not spec["description"]:
            return (f"1 validation error detected: Value at 'toolConfig.tools.{k + 1}.member."
                    "toolSpec.description' failed to satisfy constraint: Member must have "
                    "length greater than or equal to 1")
    choice = config.get("toolChoice")
    if choice is not None:
        if not isinstance(choice, dict) or len(choice) != 1 or next(iter(choice)) not in (
            "auto", "any", "tool"
        ):
            return "The toolChoice field must have exactly one of: auto, any, tool."
        forced = (choice.get("tool") or {}).get("name")
        if "tool" in choice and forced not in names:
            return f"The tool {forced} specified in toolChoice is not in the toolConfig."
    return None


def _check_block(block: Mapping[str, Any], where: str, names: set[str]) -> str | None:
    if len(block) != 1:
        return f"ContentBlock at {where} must have exactly one member set."
    if "image" in block:
        image = block["image"]
        kind = image.get("format")
        if kind not in _IMAGE_FORMATS:
            return (f"1 validation error detected: Value '{kind}' at '{where}.member.image."
                    "format' failed to satisfy constraint: Member must satisfy enum value set: "
                    "[gif, jpeg, png, webp]")
        data = _blob((image.get("source") or {}).get("bytes"))
        if data is None:
            return f"The image at {where} has no valid bytes source."
        if not data.startswith(_MAGIC[kind]):
            return ("The image format that you specified doesn't match the format of the "
                    "image bytes. Check the format and try again.")
    elif "document" in block:
        document = block["document"]
        name = document.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 200 or not _DOC_NAME.fullmatch(
            name
        ):
            return ("The document file name can only contain alphanumeric characters, "
                    "whitespace characters, hyphens, parentheses, and square brackets. The name "
                    "can't contain more than one consecutive whitespace character.")
        if document.get("format") not in _DOC_FORMATS:
            return f"The document at {where} has an unsupported format."
        data = _blob((document.get("source") or {}).get("bytes"))
        if data is None:
            return f"The document at {where} has no valid bytes source."
        if document["format"] == "pdf" and not data.startswith(b"%PDF-"):
            return "The document file is corrupted or its format is invalid."
    elif "toolUse" in block:
        use = block["toolUse"]
        if not _TOOL_USE_ID.fullmatch(str(use.get("toolUseId", ""))):
            return f"The toolUseId at {where} is invalid."
        if use.get("name") not in names:
            return (f"The toolUse block at {where} names the tool {use.get('name')}, which is "
                    "not in the toolConfig.")
        if not isinstance(use.get("input"), dict):
            return f"The toolUse input at {where} must be a JSON object."
    elif "toolResult" in block:
        result = block["toolResult"]
        content = result.get("content")
        if not isinstance(content, list) or not content:
            return f"The toolResult at {where} must have content."
        if result.get("status", "success") not in ("success", "error"):
            return f"The toolResult status at {where} must be success or error."
        for part in content:
            if len(part) != 1 or next(iter(part)) not in (
                "text", "json", "image", "document"
            ):
                return f"Invalid ToolResultContentBlock at {where}."
    elif "reasoningContent" in block:
        reasoning = block["reasoningContent"]
        if "reasoningText" in reasoning:
            if not isinstance(reasoning["reasoningText"].get("text"), str):
                return f"The reasoningText at {where} must have text."
        elif _blob(reasoning.get("redactedContent")) is None:
            return f"The reasoningContent at {where} must have reasoningText or redactedContent."
    elif not ({"text", "cachePoint"} & set(block)):
        return f"Unsupported ContentBlock member at {where}: {next(iter(block))}"
    return None


def _thinking(extra: Mapping[str, Any], body: Mapping[str, Any], model: str) -> bool | str:
    """Claude's thinking rules: True when thinking is on, a message when refused."""
    thinking = extra.get("thinking")
    if thinking is None:
        return False
    if "anthropic.claude" not in model:
        return "The model returned the following errors: extraneous key [thinking] is not " \
               "permitted"
    if thinking.get("type") != "enabled":
        return thinking.get("type") != "disabled" and "thinking.type: Input tag " \
               f"'{thinking.get('type')}' found using 'type' does not match any of the " \
               "expected tags: 'disabled', 'enabled'"
    budget = thinking.get("budget_tokens")
    config = body.get("inferenceConfig") or {}
    max_tokens = config.get("maxTokens", 4096)
    if not isinstance(budget, int) or budget < 1024:
        return "The model returned the following errors: thinking.enabled.budget_tokens: " \
               "Input should be greater than or equal to 1024"
    if budget >= max_tokens:
        return "The model returned the following errors: `max_tokens` must be greater than " \
               "`thinking.budget_tokens`. Please consult our documentation at " \
               "https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking" \
               "#max-tokens-and-context-window-size"
    if config.get("temperature", 1) != 1:
        return "The model returned the following errors: `temperature` may only be set to 1 " \
               "when thinking is enabled. Please consult our documentation at " \
               "https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking" \
               "#important-considerations-when-using-extended-thinking"
    if "topP" in config:
        return "The model returned the following errors: `top_p` must be unset when thinking " \
               "is enabled."
    choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
    if "any" in choice or "tool" in choice:
        return "The model returned the following errors: Thinking may not be enabled when " \
               "tool_choice forces tool use."
    return True


def _check_output(output: Mapping[str, Any]) -> str | None:
    text_format = output.get("textFormat")
    if text_format is None:
        return None
    if text_format.get("type") != "json_schema":
        return "1 validation error detected: Value at 'outputConfig.textFormat.type' failed " \
               "to satisfy constraint: Member must satisfy enum value set: [json_schema]"
    schema = ((text_format.get("structure") or {}).get("jsonSchema") or {}).get("schema")
    try:
        parsed = json.loads(schema) if isinstance(schema, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return "The provided JSON schema in outputConfig.textFormat is not valid JSON."
    return None


def tool_events(
    calls: Sequence[tuple[str, str, Sequence[str]]],
    *,
    text: Sequence[str] = (),
    stop_reason: str = "tool_use",
    usage: Mapping[str, int] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(event type, payload) pairs: optional text (block 0), then one toolUse block per call
    ``(toolUseId, name, input fragments)``, messageStop, metadata."""
    out: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    block = 0
    if text:
        for piece in text:
            out.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}))
        out.append(("contentBlockStop", {"contentBlockIndex": 0}))
        block = 1
    for tool_id, name, fragments in calls:
        start = {"toolUse": {"toolUseId": tool_id, "name": name}}
        out.append(("contentBlockStart", {"contentBlockIndex": block, "start": start}))
        for fragment in fragments:
            delta = {"toolUse": {"input": fragment}}
            out.append(("contentBlockDelta", {"contentBlockIndex": block, "delta": delta}))
        out.append(("contentBlockStop", {"contentBlockIndex": block}))
        block += 1
    out.append(("messageStop", {"stopReason": stop_reason}))
    counts = dict(usage or {"inputTokens": 20, "outputTokens": 10})
    counts.setdefault("totalTokens", counts["inputTokens"] + counts["outputTokens"])
    out.append(("metadata", {"usage": counts, "metrics": {"latencyMs": 100}}))
    return out
