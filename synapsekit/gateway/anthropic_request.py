"""The Anthropic Messages request, parsed into the wire-neutral
:class:`~synapsekit.gateway.types.GatewayRequest`: :func:`parse_messages`.

Why strict: a client's mistake must come back as Anthropic itself says it -- a 400
``invalid_request_error`` whose message starts with the field (``max_tokens: Field
required``, ``messages.1.content: ...``) -- and never reach an upstream, which would bill
for it or, being another protocol, answer something else. A top-level field the API does
not know is refused as it refuses it (``Extra inputs are not permitted``).

What becomes what (the library's content model, so any member can serve it):

* ``system`` (a string or text blocks) -> system messages, one per block (a ``system``
  turn inside ``messages``, which the anthropic SDK >= 2 types allow, likewise, in place);
* ``messages``: text / image (``base64`` or ``url`` source) / PDF ``document`` blocks ->
  content parts; an assistant's ``tool_use`` blocks -> its ``tool_calls``; a user's
  ``tool_result`` blocks -> ``tool`` turns (before the rest of that user turn, where the
  API wants them); signed ``thinking`` and ``redacted_thinking`` blocks ride on the
  assistant turn as ``provider_data``, sent back verbatim to an Anthropic member (an
  unsigned one, which no upstream would accept, is left out);
* ``max_tokens`` (required), ``temperature``, ``top_p``, ``stop_sequences``, ``tools``,
  ``tool_choice`` (``disable_parallel_tool_use`` -> ``parallel_tool_calls=False``);
* ``thinking`` -> ``reasoning_budget`` (``enabled``: its ``budget_tokens``; ``disabled``:
  0), ``adaptive`` and ``output_config.effort`` -> ``reasoning_effort`` (``max`` is the
  library's ``xhigh``); ``output_config.format`` -> the response schema;
* any ``cache_control`` -> ``cache_prompt`` (the library places its own breakpoints).

Accepted and not used: ``metadata``, ``service_tier``, ``inference_geo``, ``speed``,
``diagnostics``, ``user_profile_id``, ``workspace_id``, and ``top_k`` (checked, not sent:
no other protocol has it, and the Messages API version the members speak refuses sampling
parameters). Refused: what the gateway cannot honour (``container``, ``mcp_servers``,
``context_management``, server tools, Files API sources).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapsekit.errors import ConfigError, InvalidInputError
from synapsekit.gateway.types import GatewayError, GatewayRequest
from synapsekit.llm.content import Part, normalize_parts
from synapsekit.llm.types import Message, OutputSchema, ProviderData, ToolCall

__all__ = ["parse_messages"]

#: Accepted and not passed on: they do not change the answer.
_IGNORED = frozenset({
    "metadata", "service_tier", "inference_geo", "speed", "diagnostics", "user_profile_id",
    "workspace_id", "top_k",
})
#: Known to the API, but asking for what the gateway cannot do.
_UNSUPPORTED = frozenset({"container", "mcp_servers", "context_management"})
_KNOWN = frozenset({
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
    "top_p", "tools", "tool_choice", "thinking", "output_config", "cache_control",
}) | _IGNORED | _UNSUPPORTED
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
#: Anthropic's effort levels -> the library's (docs/reasoning.md).
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
#: An empty tool result: the library's turns never have empty content.
EMPTY_RESULT = "(no content)"


def _bad(param: str, message: str) -> GatewayError:
    """A 400 whose message starts with the field, as Anthropic's validation errors do."""
    return GatewayError(400, "invalid_request", f"{param}: {message}", param=param)


def parse_messages(body: Mapping[str, Any]) -> GatewayRequest:
    """A Messages body as a :class:`GatewayRequest`; 400 naming the field."""
    for name in body:
        if name not in _KNOWN:
            raise _bad(name, "Extra inputs are not permitted")
        if name in _UNSUPPORTED and body[name] is not None:
            raise _bad(name, "not supported by this gateway")
    model = body.get("model")
    if model is None:
        raise _bad("model", "Field required")
    if not isinstance(model, str) or not model:
        raise _bad("model", "Input should be a valid string")
    limit = body.get("max_tokens")
    if limit is None:
        raise _bad("max_tokens", "Field required")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise _bad("max_tokens", "Input should be an integer greater than or equal to 1")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream", "Input should be a valid boolean")
    overrides: dict[str, Any] = {"max_tokens": limit}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            overrides[name] = _number(body[name], name)
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 0):
        raise _bad("top_k", "Input should be an integer greater than or equal to 0")
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _bad("stop_sequences", "Input should be a valid list of strings")
        if stops:
            overrides["stop"] = tuple(stops)
    _tools(body, overrides)
    _reasoning(body, overrides)
    messages = [*_system(body.get("system")), *_messages(body.get("messages"))]
    if _has_cache_control(body):
        overrides["cache_prompt"] = True
    return GatewayRequest(api="anthropic", model=model, messages=messages,
                          overrides=overrides, stream=bool(stream))


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise _bad(name, f"Input should be a number from 0 to 1, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- messages


def _system(given: Any, at: str = "system") -> list[Message]:
    """System text (a string or text blocks) as system turns, one per block."""
    if given is None:
        return []
    if isinstance(given, str):
        return [Message(role="system", content=given)] if given else []
    if not isinstance(given, list):
        raise _bad(at, "Input should be a valid string or a list of text blocks")
    out = []
    for j, block in enumerate(given):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(
            block.get("text"), str
        ):
            raise _bad(f"{at}.{j}", "Input should be a text block")
        if block["text"]:
            out.append(Message(role="system", content=block["text"]))
    return out


def _messages(given: Any) -> list[Message]:
    if given is None:
        raise _bad("messages", "Field required")
    if not isinstance(given, list):
        raise _bad("messages", "Input should be a valid list")
    if not given:
        raise _bad("messages", "at least one message is required")
    out: list[Message] = []
    for i, raw in enumerate(given):
        at = f"messages.{i}"
        if not isinstance(raw, dict):
            raise _bad(at, "Input should be a valid dictionary")
        role = raw.get("role")
        if role not in ("user", "assistant", "system"):
            raise _bad(f"{at}.role", "Input should be 'user', 'assistant' or 'system'")
        content = raw.get("content")
        if content is None:
            raise _bad(f"{at}.content", "Field required")
        if role == "system":  # (anthropic SDK >= 2 types take system turns in messages)
            out += _system(content, f"{at}.content")
        elif isinstance(content, str):
            if not content.strip():
                raise _bad(f"{at}.content", "text content blocks must be non-empty")
            out.append(Message(role=role, content=content))
        elif isinstance(content, list) and content:
            out += _user(content, at) if role == "user" else [_assistant(content, at)]
        else:
            raise _bad(f"{at}.content", "Input should be a string or a non-empty list of "
                       "content blocks")
    return out


def _user(content: list[Any], at: str) -> list[Message]:
    """A user turn: its tool results first (as ``tool`` turns), then the rest."""
    results: list[Message] = []
    parts: list[Part] = []
    for j, block in enumerate(content):
        where = f"{at}.content.{j}"
        kind = _kind(block, where)
        if kind == "tool_result":
            results.append(_tool_result(block, where))
        else:
            parts.append(_part(block, kind, where))
    if parts:
        results.append(Message(role="user", content=parts))
    return results


def _assistant(content: list[Any], at: str) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    signed: list[dict[str, Any]] = []  # the blocks an Anthropic member gets back verbatim
    thinks = False
    for j, block in enumerate(content):
        where = f"{at}.content.{j}"
        kind = _kind(block, where)
        if kind == "text":
            texts.append(_text(block, where))
        elif kind == "tool_use":
            calls.append(_tool_use(block, where, len(calls)))
        elif kind == "thinking":
            if not block.get("signature"):
                continue  # unsigned (a streamed answer's): no upstream takes it back
            thinks = True
        elif kind == "redacted_thinking":
            thinks = True
        else:
            raise _bad(f"{where}.type", f"{kind!r} blocks in an assistant turn are not "
                       "supported by this gateway")
        signed.append(block)
    message = Message(role="assistant", content="".join(texts))
    if calls:
        message["tool_calls"] = calls
    if thinks:
        message["provider_data"] = ProviderData(protocol="anthropic", content=signed)
    return message


def _kind(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _bad(where, "Input should be a content block with a 'type'")
    kind: str = block["type"]
    return kind


def _text(block: Mapping[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str) or not text:
        raise _bad(f"{where}.text", "text content blocks must be non-empty")
    return text


def _part(block: Mapping[str, Any], kind: str, where: str) -> Part:
    """A text, image or document block as a canonical content part."""
    if kind == "text":
        return {"type": "text", "text": _text(block, where)}
    return _normalized(_source(block, kind, where), where)


def _source(block: Mapping[str, Any], kind: str, where: str) -> dict[str, Any]:
    """An image or document block as a part in the library's input shape."""
    if kind not in ("image", "document"):
        raise _bad(f"{where}.type", f"{kind!r} blocks are not supported by this gateway; "
                   "use text, image, document, tool_use or tool_result")
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad(f"{where}.source", "Field required")
    how = source.get("type")
    if how == "base64":
        part = {"type": kind, "data": source.get("data"), "media_type": source.get("media_type")}
        if kind == "document" and isinstance(block.get("title"), str):
            part["name"] = block["title"]
        return part
    if how == "url" and kind == "image":
        return {"type": "image", "url": source.get("url")}
    if how == "text" and kind == "document" and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    raise _bad(f"{where}.source.type", f"{kind} sources of type {how!r} are not supported "
               "by this gateway")


def _normalized(part: dict[str, Any], where: str) -> Part:
    """The part checked and made canonical by the library (base64 decoded, media type
    known), so a bad image is this 400 naming its block, not a failure upstream."""
    try:
        [found] = normalize_parts([part], where)
    except InvalidInputError as exc:
        said = str(exc).removeprefix(f"{where} content[0]").removeprefix(": ")
        raise _bad(where, said) from None
    return found


def _tool_result(block: Mapping[str, Any], where: str) -> Message:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise _bad(f"{where}.tool_use_id", "Field required")
    given = block.get("content")
    content: Any
    if given is None or given == "" or given == []:
        content = EMPTY_RESULT
    elif isinstance(given, str):
        content = given
    elif isinstance(given, list):
        content = [_part(b, _kind(b, f"{where}.content.{k}"), f"{where}.content.{k}")
                   for k, b in enumerate(given)]
    else:
        raise _bad(f"{where}.content", "Input should be a string or a list of blocks")
    return Message(role="tool", content=content, tool_call_id=call_id)


def _tool_use(block: Mapping[str, Any], where: str, index: int) -> ToolCall:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not call_id:
        raise _bad(f"{where}.id", "Field required")
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}.name", "Field required")
    if not isinstance(arguments, dict):
        raise _bad(f"{where}.input", "Input should be a valid dictionary")
    return ToolCall(id=call_id, name=name, arguments=arguments, index=index)


def _has_cache_control(node: Any) -> bool:
    if isinstance(node, dict):
        return "cache_control" in node or any(_has_cache_control(v) for v in node.values()
                                               if isinstance(v, (dict, list)))
    if isinstance(node, list):
        return any(_has_cache_control(v) for v in node)
    return False


# ------------------------------------------------------------------- tools, reasoning


def _tools(body: Mapping[str, Any], overrides: dict[str, Any]) -> None:
    from synapsekit.llm.tools import Tool

    given = body.get("tools")
    if given is not None:
        if not isinstance(given, list):
            raise _bad("tools", "Input should be a valid list")
        tools = []
        for i, raw in enumerate(given):
            at = f"tools.{i}"
            if not isinstance(raw, dict):
                raise _bad(at, "Input should be a valid dictionary")
            if raw.get("type") not in (None, "custom"):
                raise _bad(f"{at}.type", f"server tools ({raw.get('type')!r}) are not "
                           "supported by this gateway")
            schema = raw.get("input_schema")
            if not isinstance(schema, dict):
                raise _bad(f"{at}.input_schema", "Field required")
            try:
                tools.append(Tool(
                    name=raw.get("name"),  # type: ignore[arg-type]
                    description=raw.get("description") or "", parameters=schema,
                    strict=raw.get("strict") is True,
                ))
            except ConfigError as exc:
                raise _bad(at, str(exc)) from None
        if tools:
            overrides["tools"] = tuple(tools)
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            raise _bad("tool_choice.name", "Field required")
        overrides["tool_choice"] = {"name": choice["name"]}
    elif kind in _CHOICES:
        overrides["tool_choice"] = _CHOICES[kind]
    else:
        raise _bad("tool_choice", "Input should be {'type': 'auto' | 'any' | 'tool' | "
                   f"'none'}}, got {choice!r}")
    if choice.get("disable_parallel_tool_use") is True:
        overrides["parallel_tool_calls"] = False


def _reasoning(body: Mapping[str, Any], overrides: dict[str, Any]) -> None:
    config = body.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise _bad("output_config", "Input should be a valid dictionary")
    config = config or {}
    effort = config.get("effort")
    if effort is not None:
        if effort not in _EFFORTS:
            raise _bad("output_config.effort", "Input should be 'low', 'medium', 'high', "
                       f"'xhigh' or 'max', got {effort!r}")
        overrides["reasoning_effort"] = _EFFORTS[effort]
    output = config.get("format")
    if output is not None:
        if not isinstance(output, dict) or output.get("type") != "json_schema" or (
            not isinstance(output.get("schema"), dict)
        ):
            raise _bad("output_config.format",
                       "Input should be {'type': 'json_schema', 'schema': {...}}")
        overrides["response_schema"] = OutputSchema(name="response", schema=output["schema"])
    thinking = body.get("thinking")
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
            raise _bad("thinking.budget_tokens",
                       "Input should be an integer greater than or equal to 1024")
        overrides["reasoning_budget"] = budget
    elif kind == "disabled":
        overrides["reasoning_budget"] = 0
    elif kind == "adaptive":
        overrides.setdefault("reasoning_effort", "high")  # the API's default effort
    else:
        raise _bad("thinking.type", "Input should be 'enabled', 'adaptive' or 'disabled', "
                   f"got {kind!r}")
