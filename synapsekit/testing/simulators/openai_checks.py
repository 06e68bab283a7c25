"""The chat-completions API's 400s for tools, tool turns, content parts, structured output and
reasoning settings, per vendor (OpenAI's error body shape: ``{"error": {"message", "type",
"param", "code"}}``). Kept apart from openai_protocol.py (which checks the basic body) and from
synapsekit's models.json, so a test proves the request, not the table.

Sources: OpenAI's API reference and the error texts users report (tools[].function.name
pattern, strict-schema rules "'additionalProperties' is required to be supplied and to be
false" / "'required' ... including every key in properties", "messages with role 'tool' must
be a response to a preceeding message with 'tool_calls'", "Unsupported value: 'minimal' is not
supported with the 'gpt-5.1' model"); Groq's reasoning docs (Qwen 3 none/default, gpt-oss
low/medium/high, reasoning_format raw refused with tools / JSON mode); DeepSeek's thinking-mode
guide (a thinking turn with tool calls must send its reasoning_content back; no json_schema,
no image parts); Cerebras' reasoning docs (gpt-oss refuses none / minimal); OpenRouter's
reasoning docs (effort or max_tokens, not both).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["VENDORS", "check_features", "openai_efforts"]

#: The vendors this module knows; "openai" also stands for Azure.
VENDORS = ("openai", "groq", "deepseek", "openrouter", "together", "fireworks", "perplexity",
           "cerebras")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_IMAGE_URL = re.compile(r"data:image/(png|jpeg|gif|webp);base64,(.*)", re.S)
_PDF_URL = re.compile(r"data:application/pdf;base64,(.*)", re.S)
_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")

Invalid = Callable[..., Any]  # openai_protocol._invalid(message, param, code)


def openai_efforts(model: str) -> tuple[str, ...] | None:
    """OpenAI's accepted ``reasoning_effort`` values for ``model`` (None: a model that
    takes no reasoning_effort), from the API reference."""
    m = model.lower()
    if re.fullmatch(r"o1-(mini|preview)(-.*)?", m):
        return None
    if re.fullmatch(r"gpt-5-pro(-.*)?", m):
        return ("high",)
    if re.fullmatch(r"gpt-5\.\d+-chat.*", m):
        return ("medium",)
    if re.fullmatch(r"gpt-5\.1-codex-max(-.*)?", m):
        return ("low", "medium", "high", "xhigh")
    if re.fullmatch(r"gpt-5\.1-codex(-.*)?", m):
        return ("low", "medium", "high")
    if re.fullmatch(r"gpt-5\.1(-.*)?", m):
        return ("none", "low", "medium", "high")
    if re.fullmatch(r"gpt-5\.\d+(-.*)?", m):
        return ("none", "low", "medium", "high", "xhigh")
    if re.fullmatch(r"gpt-5(-.*)?", m) and not m.startswith("gpt-5-chat"):
        return ("minimal", "low", "medium", "high")
    if re.fullmatch(r"(o1|o3|o4-mini)(-.*)?", m):
        return ("low", "medium", "high")
    return None


def _vendor_efforts(vendor: str, model: str) -> tuple[str, ...] | None:
    m = model.lower()
    if vendor == "openai":
        return openai_efforts(m)
    if vendor == "groq":
        if m.startswith("qwen/qwen3"):
            return ("none", "default")
        if m.startswith("openai/gpt-oss"):
            return ("low", "medium", "high")
        return None
    if vendor == "cerebras":
        if m.startswith("gpt-oss"):
            return ("low", "medium", "high")
        if m.startswith("zai-glm"):
            return ("none",)
        return None
    if vendor == "deepseek":
        return ("minimal", "low", "medium", "high", "xhigh", "max")
    if vendor == "perplexity":
        if m.startswith("sonar-reasoning") or m == "sonar-deep-research":
            return ("low", "medium", "high")
        return None
    if vendor in ("together", "fireworks"):
        if "gpt-oss" in m:
            return ("low", "medium", "high")
        if "deepseek-v4" in m:
            return ("none", "low", "medium", "high", "xhigh")
        return None
    return ("none", "minimal", "low", "medium", "high", "xhigh")  # openrouter: normalised


def _join(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def check_features(body: dict[str, Any], model: str, vendor: str, invalid: Invalid) -> Any:
    """The first 400 the real API would answer for ``body``, or None."""
    for check in (_check_tools, _check_turns, _check_format, _check_reasoning):
        rejected = check(body, model, vendor, invalid)
        if rejected is not None:
            return rejected
    return None


# ------------------------------------------------------------------------------ tools


def _strict_problem(schema: Any, where: str = "()") -> str | None:
    """What OpenAI's strict mode refuses in ``schema`` (None: acceptable)."""
    if not isinstance(schema, Mapping):
        return None
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (f"In context={where}, 'additionalProperties' is required to be supplied "
                    "and to be false.")
        properties = schema.get("properties") or {}
        missing = [k for k in properties if k not in (schema.get("required") or [])]
        if missing:
            return (f"In context={where}, 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing '{missing[0]}'.")
        for key, sub in properties.items():
            found = _strict_problem(sub, f"('properties', '{key}')")
            if found:
                return found
    if "default" in schema:
        return f"In context={where}, 'default' is not permitted."
    for key in ("items", "anyOf", "$defs"):
        value = schema.get(key)
        subs = value.values() if isinstance(value, Mapping) and key == "$defs" else (
            value if isinstance(value, list) else [value]
        )
        for sub in subs:
            found = _strict_problem(sub, f"('{key}',)")
            if found:
                return found
    return None


def _check_tools(body: dict[str, Any], model: str, vendor: str, invalid: Invalid) -> Any:
    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if vendor == "perplexity":
            return invalid("Function tools are not supported by the Sonar API.", "tools")
        if not isinstance(tools, list):
            return invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
        for i, tool in enumerate(tools):
            where = f"tools[{i}]"
            if not isinstance(tool, dict) or tool.get("type") != "function":
                return invalid(f"Invalid value for '{where}.type': expected 'function'.",
                               f"{where}.type", "invalid_value")
            function = tool.get("function")
            if not isinstance(function, dict):
                return invalid(f"Missing required parameter: '{where}.function'.",
                               f"{where}.function", "missing_required_parameter")
            name = function.get("name")
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                return invalid(
                    f"Invalid '{where}.function.name': string does not match pattern. "
                    "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                    f"{where}.function.name", "invalid_value")
            names.append(name)
            params = function.get("parameters")
            if params is not None:
                if not isinstance(params, dict) or params.get("type") != "object":
                    got = params.get("type") if isinstance(params, dict) else params
                    return invalid(
                        f"Invalid schema for function '{name}': schema must be a JSON Schema "
                        f"of 'type: \"object\"', got 'type: \"{got}\"'.",
                        f"{where}.function.parameters", "invalid_function_parameters")
                if function.get("strict") is True:
                    problem = _strict_problem(params)
                    if problem:
                        return invalid(f"Invalid schema for function '{name}': {problem}",
                                       f"{where}.function.parameters",
                                       "invalid_function_parameters")
        if len(set(names)) != len(names):
            return invalid("Duplicate function names in 'tools'.", "tools", "invalid_value")
    choice = body.get("tool_choice")
    if choice is not None:
        if not tools:
            return invalid("Invalid value for 'tool_choice': 'tool_choice' is only allowed "
                           "when 'tools' are specified.", "tool_choice")
        if isinstance(choice, str):
            if choice not in ("none", "auto", "required"):
                return invalid(f"Invalid value: '{choice}'. Supported values are: 'none', "
                               "'auto', and 'required'.", "tool_choice", "invalid_value")
        elif isinstance(choice, dict) and choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            if name not in names:
                return invalid(f"Invalid value for 'tool_choice': function '{name}' is not "
                               "one of the tools.", "tool_choice", "invalid_value")
        else:
            return invalid("Invalid value for 'tool_choice'.", "tool_choice", "invalid_value")
    if "parallel_tool_calls" in body:
        if not tools:
            return invalid("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is "
                           "only allowed when 'tools' are specified.", "parallel_tool_calls")
        if not isinstance(body["parallel_tool_calls"], bool):
            return invalid("Invalid type for 'parallel_tool_calls': expected a boolean.",
                           "parallel_tool_calls", "invalid_type")
    return None


# ------------------------------------------------------------------------------ turns


def _thinking(body: dict[str, Any], model: str) -> bool:
    """DeepSeek: whether the request is in thinking mode."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "disabled"):
        return bool(thinking["type"] == "enabled")
    return model == "deepseek-reasoner" or model.startswith("deepseek-v4")


def _check_turns(body: dict[str, Any], model: str, vendor: str, invalid: Invalid) -> Any:
    pending: dict[str, int] = {}  # tool_call_id -> the assistant turn waiting for it
    answered: set[str] = set()
    messages = body["messages"]
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role != "tool" and pending:
            (call_id, at), *_ = pending.items()
            return invalid(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {call_id}", f"messages.[{at}].role")
        content = msg.get("content")
        if role == "assistant" and msg.get("tool_calls") is not None:
            calls = msg["tool_calls"]
            for j, call in enumerate(calls if isinstance(calls, list) else [None]):
                where = f"messages[{i}].tool_calls[{j}]"
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(call, dict) or not isinstance(call.get("id"), str):
                    return invalid(f"Missing required parameter: '{where}.id'.", f"{where}.id",
                                   "missing_required_parameter")
                if call.get("type") != "function" or not isinstance(function, dict):
                    return invalid(f"Missing required parameter: '{where}.function'.",
                                   f"{where}.function", "missing_required_parameter")
                if not isinstance(function.get("arguments"), str):
                    return invalid(
                        f"Invalid type for '{where}.function.arguments': expected a string, "
                        "but got an object instead.", f"{where}.function.arguments",
                        "invalid_type")
                pending[call["id"]] = i
            if (vendor == "deepseek" and _thinking(body, model)
                    and not isinstance(msg.get("reasoning_content"), str)):
                return invalid("The reasoning_content in the thinking mode must be passed back "
                               "to the API.", f"messages[{i}].reasoning_content")
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if call_id not in pending:
                return invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.", f"messages.[{i}].role")
            del pending[call_id]
            answered.add(call_id)
            if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") != "text" for p in content
            ):
                return invalid(f"Invalid value for 'messages[{i}].content': a tool message "
                               "takes only text parts.", f"messages[{i}].content")
        if isinstance(content, list):
            rejected = _check_parts(i, content, vendor, invalid)
            if rejected is not None:
                return rejected
    return None


def _b64_ok(data: str) -> bool:
    try:
        return bool(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return False


def _check_parts(i: int, parts: list[Any], vendor: str, invalid: Invalid) -> Any:
    for j, part in enumerate(parts):
        where = f"messages[{i}].content[{j}]"
        kind = part.get("type")
        if kind not in _PART_TYPES:
            return invalid(f"Invalid value: '{kind}'. Supported values are: "
                           f"{_join(_PART_TYPES)}.", f"{where}.type", "invalid_value")
        if vendor in ("deepseek", "cerebras") and kind != "text":
            # Text-only APIs: their deserialiser knows no other part.
            return invalid(f"Failed to deserialize the JSON body into the target type: "
                           f"messages[{i}]: unknown variant `{kind}`, expected `text`",
                           f"{where}.type", "invalid_request_error")
        if kind == "text" and not isinstance(part.get("text"), str):
            return invalid(f"Missing required parameter: '{where}.text'.", f"{where}.text",
                           "missing_required_parameter")
        if kind == "image_url":
            url = (part.get("image_url") or {}).get("url")
            if not isinstance(url, str):
                return invalid(f"Missing required parameter: '{where}.image_url.url'.",
                               f"{where}.image_url.url", "missing_required_parameter")
            if url.startswith("data:"):
                found = _IMAGE_URL.fullmatch(url)
                if found is None or not _b64_ok(found.group(2)):
                    return invalid(
                        f"Invalid '{where}.image_url.url'. Expected a base64-encoded data URL "
                        "with an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhl"
                        "cmU='), but got a value with an invalid format.",
                        f"{where}.image_url.url", "invalid_value")
            elif not url.startswith(("http://", "https://")):
                return invalid(f"Invalid '{where}.image_url.url': expected a URL.",
                               f"{where}.image_url.url", "invalid_value")
        if kind == "file":
            if vendor not in ("openai", "openrouter"):
                return invalid("Invalid value: 'file'. Supported values are: 'text' and "
                               "'image_url'.", f"{where}.type", "invalid_value")
            file = part.get("file") or {}
            data = file.get("file_data")
            if data is not None:
                if not isinstance(file.get("filename"), str):
                    return invalid(f"Missing required parameter: '{where}.file.filename'.",
                                   f"{where}.file.filename", "missing_required_parameter")
                found = _PDF_URL.fullmatch(data) if isinstance(data, str) else None
                if found is None or not _b64_ok(found.group(1)):
                    return invalid(f"Invalid '{where}.file.file_data': expected a base64 "
                                   "data URL of a PDF.", f"{where}.file.file_data",
                                   "invalid_value")
            elif not isinstance(file.get("file_id"), str):
                return invalid(f"Missing required parameter: '{where}.file.file_id'.",
                               f"{where}.file.file_id", "missing_required_parameter")
    return None


# ------------------------------------------------------------------------------ structured


def _check_format(body: dict[str, Any], model: str, vendor: str, invalid: Invalid) -> Any:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        return invalid(f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', "
                       "and 'json_schema'.", "response_format.type", "invalid_value")
    if kind == "json_object":
        text = json.dumps(body["messages"]).lower()
        if "json" not in text:
            return invalid("'messages' must contain the word 'json' in some form, to use "
                           "'response_format' of type 'json_object'.", "messages")
    if kind == "json_schema":
        if vendor == "deepseek":
            return invalid("This response_format type is unavailable now", "response_format")
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            return invalid("Missing required parameter: 'response_format.json_schema'.",
                           "response_format.json_schema", "missing_required_parameter")
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return invalid("Invalid 'response_format.json_schema.name': string does not match "
                           "pattern. Expected a string that matches the pattern "
                           "'^[a-zA-Z0-9_-]+$'.", "response_format.json_schema.name",
                           "invalid_value")
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            return invalid("Missing required parameter: 'response_format.json_schema.schema'.",
                           "response_format.json_schema.schema", "missing_required_parameter")
        if spec.get("strict") is True:
            if schema.get("type") != "object":
                return invalid(f"Invalid schema for response_format '{name}': schema must be a "
                               "JSON Schema of 'type: \"object\"'.", "response_format")
            problem = _strict_problem(schema)
            if problem:
                return invalid(f"Invalid schema for response_format '{name}': {problem}",
                               "response_format")
    return None


# ------------------------------------------------------------------------------ reasoning


def _check_reasoning(body: dict[str, Any], model: str, vendor: str, invalid: Invalid) -> Any:
    if vendor == "openrouter" and "reasoning" in body:
        reasoning = body["reasoning"]
        if not isinstance(reasoning, dict):
            return invalid("Invalid type for 'reasoning': expected an object.", "reasoning")
        if "effort" in reasoning and "max_tokens" in reasoning:
            return invalid("Only one of 'reasoning.effort' and 'reasoning.max_tokens' may be "
                           "given.", "reasoning")
        effort = reasoning.get("effort")
        accepted = _vendor_efforts(vendor, model) or ()
        if effort is not None and effort not in accepted:
            return invalid(f"Invalid value for 'reasoning.effort': '{effort}'.",
                           "reasoning.effort", "invalid_value")
    if vendor == "deepseek" and "thinking" in body:
        thinking = body["thinking"]
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
            return invalid("Invalid value for 'thinking.type': expected 'enabled' or "
                           "'disabled'.", "thinking.type", "invalid_value")
    if vendor == "groq" and body.get("reasoning_format") == "raw" and (
        body.get("tools") or body.get("response_format")
    ):
        return invalid("reasoning_format 'raw' is not supported with tools or JSON mode.",
                       "reasoning_format")
    if "reasoning_effort" not in body:
        return None
    effort = body["reasoning_effort"]
    allowed = _vendor_efforts(vendor, model)
    if allowed is None:
        return invalid("Unsupported parameter: 'reasoning_effort' is not supported with this "
                       "model.", "reasoning_effort", "unsupported_parameter")
    if effort not in allowed:
        return invalid(f"Unsupported value: '{effort}' is not supported with the '{model}' "
                       f"model. Supported values are: {_join(allowed)}.", "reasoning_effort",
                       "unsupported_value")
    return None
