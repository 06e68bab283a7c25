"""Messages and LLMConfig -> a google-genai ``generate_content_stream`` request.

Pure functions of (messages, config, rules). The SDK's dict shapes (snake_case) are used; the
SDK turns them into the wire's camelCase and base64-encodes ``bytes`` (url-safe alphabet, which
the API accepts as proto JSON does).

Wire quirks:

- assistant turns are role ``model``; every system message is a text part of
  ``system_instruction``, in order (the API has no system role in ``contents``);
- image and PDF bytes are ``inline_data {mime_type, data}``; an image URL is ``file_data
  {file_uri}``: since January 2026 the Developer API fetches public / signed HTTPS URLs itself
  (Gemini 2.5 and later; synapsekit downloads nothing);
- an assistant turn whose ``provider_data`` is ours is sent as its parts, verbatim (thought
  parts and ``thought_signature`` s included: Gemini 3 refuses a function call replayed
  without its signature); one from elsewhere is built from content + tool_calls, with
  Google's documented placeholder signature on Gemini 3 models (the history did not come
  from Gemini, so there is no signature to send);
- tool results are ``function_response`` parts in one user turn (consecutive results
  merged: the API wants as many responses as the model turn had calls), ``name`` taken from
  the matching tool call, ``response`` an object (``{"result": <text>}``), ``id`` only when
  the call's id came from the wire;
- ``tool_choice``: auto/none/required -> ``function_calling_config.mode`` AUTO/NONE/ANY, a
  named tool ANY + ``allowed_function_names``; there is no parallel-calls switch;
- reasoning: Gemini 2.5 takes ``thinking_budget`` (per-model range, 0 = off where allowed),
  Gemini 3 ``thinking_level``; never both. ``include_thoughts`` so thought summaries stream;
- structured output: ``response_mime_type`` application/json + ``response_json_schema``
  (JSON Schema as it is; the OpenAPI-subset ``response_schema`` is not used); with tools
  only on Gemini 3 (2.5 answers "Function calling with a response mime type:
  'application/json' is unsupported", so that is refused before sending).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from collections.abc import Mapping
from typing import Any

from synapsekit.errors import ConfigError, InvalidInputError, UnsupportedFeatureError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.models import RequestRules, rules_for
from synapsekit.llm.types import Message, ToolCall

__all__ = [
    "PROTOCOL", "SKIP_SIGNATURE", "contents", "gemini_3", "generation_config", "thinking_config",
]

PROTOCOL = "gemini"
#: Google's documented placeholder for a function call that did not come from Gemini
#: (https://ai.google.dev/gemini-api/docs/thought-signatures, "FAQs"): the wire text is
#: ``skip_thought_signature_validator``; the SDK wants bytes and base64-encodes them.
SKIP_SIGNATURE = base64.urlsafe_b64decode("skip_thought_signature_validator")

_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
#: What the API reads as inline data (image understanding / document processing pages):
#: not GIF, which canonical parts allow.
INLINE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif",
                "application/pdf")


def contents(messages: list[Message], rules: RequestRules) -> list[dict[str, Any]]:
    """The ``contents`` of the request: every turn but the system ones."""
    calls = _calls_by_id(messages)
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "system":
            continue
        if role == "tool":
            part = _function_response(message, calls, i)
            last = out[-1] if out else None
            if last is not None and last["role"] == "user" and "function_response" in (
                last["parts"][-1]
            ):
                last["parts"].append(part)  # one turn answers all of the model's calls
            else:
                out.append({"role": "user", "parts": [part]})
        elif role == "assistant":
            out.append({"role": "model", "parts": _model_parts(message, rules)})
        else:
            out.append({"role": "user", "parts": _parts(message["content"])})
    return out


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part["type"]
        if kind == "text":
            parts.append({"text": part["text"]})
        elif "url" in part:
            data: dict[str, Any] = {"file_uri": part["url"]}
            media_type = part.get("media_type") or _url_type(part["url"])
            if media_type:  # Google's examples name it; the file's own type is sniffed else
                data["mime_type"] = media_type
            parts.append({"file_data": data})
        elif part["media_type"] not in INLINE_TYPES:
            raise UnsupportedFeatureError(
                f"gemini does not read {part['media_type']} parts; it takes images as "
                f"{', '.join(t for t in INLINE_TYPES if t.startswith('image/'))} and PDF "
                "documents. Nothing was sent."
            )
        else:  # image or document bytes
            parts.append({"inline_data": {"mime_type": part["media_type"], "data": part["data"]}})
    return parts


def _url_type(url: str) -> str | None:
    """The image type an URL's path names (``.png``, ``.jpg``...), if it is one Gemini reads."""
    found = mimetypes.guess_type(url.split("?", 1)[0].split("#", 1)[0])[0]
    return found if found in INLINE_TYPES else None


def _model_parts(message: Message, rules: RequestRules) -> list[dict[str, Any]]:
    data = message.get("provider_data")
    if data is not None and data["protocol"] == PROTOCOL and isinstance(data["content"], list):
        return [_from_wire(p) for p in data["content"]]
    parts = _parts(message["content"]) if message["content"] else []
    for n, call in enumerate(sorted(message.get("tool_calls", ()), key=lambda c: c.index)):
        part: dict[str, Any] = {"function_call": {"name": call.name, "args": dict(call.arguments)}}
        if n == 0 and gemini_3(rules):  # Gemini 3 validates the first call's signature
            part["thought_signature"] = SKIP_SIGNATURE
        parts.append(part)
    return parts or [{"text": ""}]


def _from_wire(part: Mapping[str, Any]) -> dict[str, Any]:
    """A part kept in ``provider_data`` (wire camelCase, signature as base64 text) as the
    SDK takes it (snake_case, signature as bytes)."""
    out: dict[str, Any] = {}
    if "text" in part:
        out["text"] = part["text"]
    if part.get("thought"):
        out["thought"] = True
    call = part.get("functionCall")
    if isinstance(call, Mapping):
        out["function_call"] = dict(call)
    signature = part.get("thoughtSignature")
    if isinstance(signature, str):
        try:
            out["thought_signature"] = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(
                "provider_data (gemini): a thoughtSignature is not base64 text."
            ) from None
    return out


def _calls_by_id(messages: list[Message]) -> dict[str, tuple[str, str | None]]:
    """Each tool call id of the history -> (function name, the id the wire gave or None)."""
    found: dict[str, tuple[str, str | None]] = {}
    for message in messages:
        tool_calls: list[ToolCall] = message.get("tool_calls", [])
        if not tool_calls:
            continue
        wire_ids: list[str | None] = []
        data = message.get("provider_data")
        if data is not None and data["protocol"] == PROTOCOL and isinstance(data["content"], list):
            wire_ids = [
                p["functionCall"].get("id")
                for p in data["content"]
                if isinstance(p, Mapping) and isinstance(p.get("functionCall"), Mapping)
            ]
        for n, call in enumerate(sorted(tool_calls, key=lambda c: c.index)):
            wire = wire_ids[n] if n < len(wire_ids) else None
            found[call.id] = (call.name, wire if isinstance(wire, str) else None)
    return found


def _function_response(
    message: Message, calls: Mapping[str, tuple[str, str | None]], index: int
) -> dict[str, Any]:
    call_id = message["tool_call_id"]
    name, wire_id = calls.get(call_id, (message.get("name"), None))
    if not name:
        raise InvalidInputError(
            f"messages[{index}] (tool) answers tool call {call_id!r}, which no assistant turn "
            "made: Gemini needs the function's name (add the assistant turn, or 'name')."
        )
    content = message["content"]
    if not isinstance(content, str):
        if any(p["type"] != "text" for p in content):
            raise UnsupportedFeatureError(
                f"messages[{index}] (tool): gemini takes text tool results only "
                "(functionResponse.response is a JSON object); send images in a user turn."
            )
        content = "".join(p["text"] for p in content if p["type"] == "text")
    response: dict[str, Any] = {"name": name, "response": {"result": content}}
    if wire_id is not None:
        response["id"] = wire_id
    return {"function_response": response}


def thinking_config(config: LLMConfig, rules: RequestRules) -> dict[str, Any] | None:
    """``thinking_config`` for the model: a level (Gemini 3) or a budget (Gemini 2.5),
    clamped to what the model accepts; None when no reasoning setting was given."""
    if config.reasoning_effort is None and config.reasoning_budget is None:
        return None
    if rules.reasoning in ("effort", "both"):
        level = rules.effort(config)
        if level == "none":
            if rules.reasoning_off:
                return {"thinking_budget": 0}
            # It cannot stop thinking: the least it does, and no thought summaries.
            return {"thinking_level": (rules.efforts[0] if rules.efforts else "low").upper()}
        return {"thinking_level": str(level).upper(), "include_thoughts": True}
    if rules.reasoning == "budget":
        budget = rules.budget(config)
        if budget == 0:
            if rules.reasoning_off:
                return {"thinking_budget": 0}
            return {"thinking_budget": rules.budget_min}  # the least it thinks, no summaries
        return {"thinking_budget": budget, "include_thoughts": True}
    return None  # "none" / 0 to a model that does not think: nothing to switch off


def gemini_3(rules: RequestRules) -> bool:
    """Whether the model is a Gemini 3 one: the models whose row takes ``thinkingLevel``
    (models.json). They validate thought signatures on replayed calls and take tools
    together with a response schema; Gemini 2.5 does neither."""
    return rules.reasoning == "effort"


def _tools(config: LLMConfig) -> list[dict[str, Any]]:
    declarations = []
    for tool in config.tools:
        declaration: dict[str, Any] = {"name": tool.name, "parameters_json_schema": tool.schema}
        if tool.description:
            declaration["description"] = tool.description
        declarations.append(declaration)
    return [{"function_declarations": declarations}]


def _tool_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, Mapping):
        calling: dict[str, Any] = {"mode": "ANY", "allowed_function_names": [choice["name"]]}
    else:
        calling = {"mode": _MODES[choice]}
    return {"function_calling_config": calling}


def generation_config(sdk: Any, provider: str, messages: list[Message], config: LLMConfig) -> Any:
    """The SDK's ``GenerateContentConfig`` for this call."""
    model: Any = sdk.types.GenerateContentConfig
    rules = rules_for(provider, config)
    fields: dict[str, Any] = {
        **rules.params(config),
        "max_output_tokens": config.max_tokens,
    }
    temperature = rules.temperature(config)
    if temperature is not None:  # None: the model's own default, not sent
        fields["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        fields["top_p"] = top_p
    if "automatic_continuation" in model.model_fields:  # SDKs before it never continue
        fields["automatic_continuation"] = False
    system = [{"text": m["content"]} for m in messages if m["role"] == "system"]
    if system:  # every system message, in order: one text part each (as Bedrock's blocks)
        fields["system_instruction"] = {"parts": system}
    if config.stop:
        fields["stop_sequences"] = list(config.stop)
    if config.tools:
        fields["tools"] = _tools(config)
        # The SDK would run Python callables itself; ours are declarations, but say so.
        fields["automatic_function_calling"] = {"disable": True}
    if config.tool_choice is not None:
        fields["tool_config"] = _tool_config(config.tool_choice)
    thinking = thinking_config(config, rules)
    if thinking is not None:
        fields["thinking_config"] = thinking
    schema = config.response_schema
    if schema is not None and config.tools and not gemini_3(rules):
        raise UnsupportedFeatureError(
            f"gemini (model {config.model!r}) does not take tools together with a "
            "response_schema: Gemini 2.5 refuses function calling with a JSON response "
            "(Gemini 3 models take both). Nothing was sent."
        )
    if schema is not None:
        fields["response_mime_type"] = "application/json"
        fields["response_json_schema"] = dict(schema.schema)
    try:
        return model(**fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params: not accepted by google-genai: {exc}") from None
