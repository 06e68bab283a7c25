"""The OpenAI Chat Completions request, parsed into the wire-neutral
:class:`~synapsekit.gateway.types.GatewayRequest`: :func:`parse_chat`.

Why strict: a client's mistake must come back as OpenAI itself would say it -- 400 with
the field in ``param`` (``messages[1].content``) -- and never reach an upstream, which
would bill for it or answer something else. A field OpenAI does not know is refused as it
refuses it (``unknown_parameter``); fields that change nothing here (``user``, ``store``,
``metadata``, ``service_tier``) are accepted; ``logprobs`` and ``n`` > 1, which the gateway
cannot honour, are refused rather than silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from synapsekit.gateway.types import GatewayError, GatewayRequest
from synapsekit.llm.types import Message, OutputSchema, ToolCall

__all__ = ["parse_chat"]

_ROLES = {"system", "developer", "user", "assistant", "tool"}
#: Accepted and not passed on: they do not change the answer.
_IGNORED = {"user", "store", "metadata", "service_tier"}
#: Accepted only switched off: the gateway cannot return what they ask for.
_OFF = {"logprobs", "top_logprobs"}
#: Passed to the members as provider extras (``params``).
_EXTRAS = {"seed", "presence_penalty", "frequency_penalty", "logit_bias"}
_KNOWN = {
    "model", "messages", "stream", "stream_options", "n", "temperature", "top_p", "stop",
    "max_tokens", "max_completion_tokens", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "reasoning_effort",
} | _IGNORED | _EXTRAS | _OFF


def _bad(param: str, message: str, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, code, message, param=param)


def parse_chat(body: Mapping[str, Any]) -> GatewayRequest:
    """A Chat Completions body as a :class:`GatewayRequest`; 400 naming the field."""
    for name in body:
        if name not in _KNOWN:
            raise _bad(name, f"Unrecognized request argument supplied: {name}",
                       "unknown_parameter")
    for name in _OFF:
        if body.get(name):
            raise _bad(name, f"'{name}' is not supported by this gateway.", "unsupported_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "you must provide a model parameter", "missing_required_parameter")
    n = body.get("n", 1)
    if n is not None and n != 1:
        raise _bad("n", "This gateway returns one choice per request: n must be 1.",
                   "unsupported_value")
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or not stream):
        raise _bad("stream_options",
                   "stream_options is only allowed when stream is true, as an object.")
    include_usage = bool(options and options.get("include_usage") is True)
    overrides: dict[str, Any] = {}
    for name, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        if body.get(name) is not None:
            overrides[name] = _number(body, name, low, high)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        which = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _bad(which, f"Invalid '{which}': expected an integer >= 1, got {limit!r}.")
        overrides["max_tokens"] = limit
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or (
            len(stop) > 4
        ):
            raise _bad("stop", "Invalid 'stop': a string or a list of up to 4 strings.")
        if stop:
            overrides["stop"] = tuple(stop)
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str):
            raise _bad("reasoning_effort", "Invalid 'reasoning_effort': expected a string.")
        overrides["reasoning_effort"] = effort
    extras = {k: body[k] for k in _EXTRAS if body.get(k) is not None}
    if extras:
        overrides["params"] = extras
    _tools(body, overrides)
    schema = _response_format(body.get("response_format"))
    if schema is not None:
        overrides["response_schema"] = schema
    return GatewayRequest(
        api="openai", model=model, messages=_messages(body.get("messages")),
        overrides=overrides, stream=stream, include_usage=include_usage,
    )


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(name, f"Invalid '{name}': expected a boolean, got {value!r}.")
    return value


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        low <= value <= high
    ):
        raise _bad(name, f"Invalid '{name}': expected a number from {low:g} to {high:g}, "
                   f"got {value!r}.")
    return float(value)


def _messages(given: Any) -> list[Message]:
    if given is None:
        raise _bad("messages", "you must provide a messages parameter",
                   "missing_required_parameter")
    if not isinstance(given, list) or not given:
        raise _bad("messages", "Invalid 'messages': expected a non-empty array.")
    out: list[Message] = []
    for i, raw in enumerate(given):
        at = f"messages[{i}]"
        if not isinstance(raw, dict):
            raise _bad(at, f"Invalid '{at}': expected an object.")
        role = raw.get("role")
        if role not in _ROLES:
            raise _bad(f"{at}.role", f"Invalid '{at}.role': expected one of "
                       f"{', '.join(sorted(_ROLES))}, got {role!r}.")
        content = raw.get("content")
        calls = raw.get("tool_calls")
        if content is None and not (role == "assistant" and calls):
            raise _bad(f"{at}.content", f"Missing required parameter: '{at}.content'.",
                       "missing_required_parameter")
        if content is not None and not isinstance(content, (str, list)):
            raise _bad(f"{at}.content",
                       f"Invalid '{at}.content': expected a string or an array of parts.")
        message = Message(role="system" if role == "developer" else role,
                          content=content if content is not None else "")
        if role == "tool":
            call_id = raw.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _bad(f"{at}.tool_call_id",
                           f"Missing required parameter: '{at}.tool_call_id'.",
                           "missing_required_parameter")
            message["tool_call_id"] = call_id
        if calls:
            message["tool_calls"] = _assistant_calls(calls, at)
        out.append(message)
    return out


def _assistant_calls(calls: Any, at: str) -> list[ToolCall]:
    if not isinstance(calls, list):
        raise _bad(f"{at}.tool_calls", f"Invalid '{at}.tool_calls': expected an array.")
    out = []
    for j, call in enumerate(calls):
        where = f"{at}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise _bad(where, f"Invalid '{where}': expected id and function.")
        name, arguments = function.get("name"), function.get("arguments", "{}")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else None
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(name, str) or not isinstance(parsed, dict):
            raise _bad(f"{where}.function.arguments",
                       f"Invalid '{where}.function': a name and arguments as a JSON object.")
        out.append(ToolCall(id=call["id"], name=name, arguments=parsed, index=j))
    return out


def _tools(body: Mapping[str, Any], overrides: dict[str, Any]) -> None:
    from synapsekit.errors import ConfigError
    from synapsekit.llm.tools import Tool

    given = body.get("tools")
    if given is not None:
        if not isinstance(given, list):
            raise _bad("tools", "Invalid 'tools': expected an array.")
        tools = []
        for i, raw in enumerate(given):
            at = f"tools[{i}]"
            function = raw.get("function") if isinstance(raw, dict) else None
            if not isinstance(raw, dict) or raw.get("type") != "function" or not isinstance(
                function, dict
            ):
                raise _bad(at, f"Invalid '{at}': expected {{'type': 'function', "
                           "'function': {...}}.")
            try:
                tools.append(Tool(
                    name=function.get("name"),  # type: ignore[arg-type]
                    description=function.get("description") or "",
                    parameters=function.get("parameters") or {"type": "object",
                                                              "properties": {}},
                    strict=function.get("strict") is True,
                ))
            except ConfigError as exc:
                raise _bad(f"{at}.function", str(exc)) from None
        if tools:
            overrides["tools"] = tuple(tools)
    choice = body.get("tool_choice")
    if choice is not None:
        if isinstance(choice, dict):
            function = choice.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if choice.get("type") != "function" or not isinstance(name, str):
                raise _bad("tool_choice", "Invalid 'tool_choice': expected 'auto', 'none', "
                           "'required' or {'type': 'function', 'function': {'name': ...}}.")
            overrides["tool_choice"] = {"name": name}
        elif choice in ("auto", "none", "required"):
            overrides["tool_choice"] = choice
        else:
            raise _bad("tool_choice", f"Invalid 'tool_choice': {choice!r}.")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        overrides["parallel_tool_calls"] = _flag(body, "parallel_tool_calls")


def _response_format(given: Any) -> OutputSchema | None:
    if given is None:
        return None
    kind = given.get("type") if isinstance(given, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":  # JSON mode: any object (the library's schema mode)
        return OutputSchema(name="json_object", schema={"type": "object"}, strict=False)
    if kind == "json_schema":
        spec = given.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or (
            not isinstance(spec.get("schema"), dict)
        ):
            raise _bad("response_format.json_schema",
                       "Invalid 'response_format.json_schema': expected name and schema.")
        return OutputSchema(
            name=spec["name"], schema=spec["schema"], strict=spec.get("strict") is True,
            description=spec.get("description") or "",
        )
    raise _bad("response_format.type", "Invalid 'response_format.type': expected 'text', "
               f"'json_object' or 'json_schema', got {kind!r}.")
