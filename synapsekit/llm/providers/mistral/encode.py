"""Messages and settings -> the keyword arguments of the SDK's ``chat.stream_async``.

Pure functions of (messages, config, rules) but for the SDK method's signature, which says
which ``config.params`` keys are accepted (others are a ConfigError before any request).
``temperature=None`` is the SDK's explicit null, so an unset value is left out, not sent.

The mapping (Mistral chat completions; the SDK's models are the field names):

- text part ``{"type": "text", "text"}``; image bytes ``{"type": "image_url", "image_url":
  "data:<type>;base64,..."}`` and an image URL ``{"type": "image_url", "image_url": "<url>"}``
  (the API takes the string form); a PDF ``{"type": "document_url", "document_url":
  "data:application/pdf;base64,...", "document_name"?}``. Tool results may hold parts too.
- tools ``[{"type": "function", "function": {"name", "description"?, "parameters",
  "strict"?}}]``; tool_choice ``auto`` / ``none`` / ``any`` (our ``required``) /
  ``{"type": "function", "function": {"name"}}``; ``parallel_tool_calls`` as given.
- an assistant turn's tool calls ``[{"id", "type": "function", "function": {"name",
  "arguments": "<json>"}}]``; a tool turn ``{"role": "tool", "tool_call_id", "name",
  "content"}``. Mistral takes only ids of 9 letters and digits (400 ``invalid_function_call``
  otherwise): its own ids pass as they are; another provider's (``call_0``, ``toolu_...``)
  are replaced by :func:`mistral_id`, a digest of the id, the same on the assistant turn
  and on the tool turn answering it, so the pair still matches.
- ``response_schema`` -> ``response_format: {"type": "json_schema", "json_schema": {"name",
  "schema", "strict", "description"?}}``; a strict schema (and a strict tool's parameters)
  has every object closed with ``additionalProperties: false``, the dialect of the SDK's
  own ``response_format_from_pydantic_model``.
- reasoning: models with adjustable reasoning (models.json ``efforts``) get
  ``reasoning_effort`` (``"none"`` off, else the nearest level the model takes: ``"high"``
  on Mistral Small 4 / Medium 3.5, low / medium / high on Large 4); Magistral (always
  reasoning) gets ``prompt_mode: "reasoning"`` (its reasoning system prompt) and cannot be
  switched off. A budget is turned into a level (``RequestRules.effort``).
- a field the installed SDK's ``stream_async`` lacks (mistralai 2.0 has no
  ``reasoning_effort``) is an UnsupportedFeatureError naming the SDK, not a silent drop.
- an assistant turn whose ``provider_data`` is Mistral's is sent with that content
  verbatim: its ``thinking`` chunks (with any ``signature``) and text, in order.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
from collections.abc import Sequence
from typing import Any

from synapsekit.errors import ConfigError, UnsupportedFeatureError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Part, data_url
from synapsekit.llm.deadlines import timeouts
from synapsekit.llm.models import RequestRules, rules_for
from synapsekit.llm.tools import Tool, ToolChoice
from synapsekit.llm.types import Message, OutputSchema

from .connection import millis

__all__ = ["PROTOCOL", "message", "messages", "mistral_id", "request", "tool_choice", "tools"]

PROTOCOL = "mistral"
#: stream_async arguments synapsekit sets itself; never taken from ``config.params``.
_OWN_ARGS = frozenset({"self", "stream", "retries", "server_url", "timeout_ms", "http_headers"})
_ID = re.compile(r"^[A-Za-z0-9]{9}$")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHOICES = {"auto": "auto", "none": "none", "required": "any"}
#: Request fields of the features; an older SDK's ``stream_async`` may lack one (mistralai
#: 2.0 has no ``reasoning_effort``): then the call is refused, never sent without it.
_FEATURES = ("tools", "tool_choice", "parallel_tool_calls", "response_format",
             "reasoning_effort", "prompt_mode")


def request(
    provider: str, client: Any, turns: list[Message], config: LLMConfig
) -> dict[str, Any]:
    """The ``stream_async`` keyword arguments for one call."""
    rules = rules_for(provider, config)
    body: dict[str, Any] = {
        "model": config.model,
        "messages": messages(turns),
        "max_tokens": config.max_tokens,
        "timeout_ms": millis(timeouts(config).read),
    }
    temperature = rules.temperature(config)
    if temperature is not None:  # None is the SDK's explicit null: leave it UNSET
        body["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None:
        body["top_p"] = top_p
    if config.stop:
        body["stop"] = list(config.stop)
    if config.headers:
        body["http_headers"] = dict(config.headers)
    if config.tools:
        body["tools"] = tools(config.tools)
        if config.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = config.parallel_tool_calls
    if config.tool_choice is not None:
        body["tool_choice"] = tool_choice(config.tool_choice)
    if config.response_schema is not None:
        body["response_format"] = response_format(config.response_schema)
    body.update(reasoning(rules, config))
    allowed = param_names(type(client.chat).stream_async)
    for name in _FEATURES:
        if name in body and name not in allowed:
            raise UnsupportedFeatureError(
                f"{name}: the installed mistralai SDK ({_sdk_version()}) cannot send it; "
                "upgrade it (pip install -U mistralai). Nothing was sent."
            )
    params = rules.params(config)
    if params:
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ConfigError(
                f"params: {', '.join(unknown)} not accepted by Mistral chat; "
                f"valid: {', '.join(sorted(allowed))}"
            )
        body.update(params)
    return body


# --- messages ----------------------------------------------------------------------------------


def messages(turns: Sequence[Message]) -> list[dict[str, Any]]:
    """Canonical turns as Mistral messages. A tool turn without a ``name`` gets the name of
    the assistant tool call it answers (the API takes it; some models want it)."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for turn in turns:
        for call in turn.get("tool_calls", ()):
            names[call.id] = call.name
        out.append(message(turn, names))
    return out


def message(turn: Message, names: dict[str, str] | None = None) -> dict[str, Any]:
    role, content = turn["role"], turn["content"]
    if role == "tool":
        call_id = turn["tool_call_id"]
        native: dict[str, Any] = {
            "role": "tool",
            "tool_call_id": mistral_id(call_id),
            "content": content if isinstance(content, str) else parts(content),
        }
        name = turn.get("name") or (names or {}).get(call_id)
        if name:
            native["name"] = name
        return native
    if role == "assistant":
        data = turn.get("provider_data")
        if data is not None and data.get("protocol") == PROTOCOL and data.get("content"):
            body: Any = data["content"]  # thinking chunks (+ signatures) and text, verbatim
        else:
            body = content if isinstance(content, str) else parts(content)
        native = {"role": "assistant", "content": body}
        calls = turn.get("tool_calls")
        if calls:
            native["tool_calls"] = [
                {"id": mistral_id(call.id), "type": "function", "index": position,
                 "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))}}
                for position, call in enumerate(calls)
            ]
        return native
    return {"role": role, "content": content if isinstance(content, str) else parts(content)}


def parts(content: Sequence[Part]) -> list[dict[str, Any]]:
    """Canonical parts as Mistral content chunks (see the module docstring)."""
    out: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "text":
            out.append({"type": "text", "text": part["text"]})
        elif part["type"] == "image":
            url = part.get("url")
            out.append({"type": "image_url",
                        "image_url": url if url is not None else data_url(part)})
        else:
            chunk: dict[str, Any] = {"type": "document_url", "document_url": data_url(part)}
            if part.get("name"):
                chunk["document_name"] = part["name"]
            out.append(chunk)
    return out


def mistral_id(call_id: str) -> str:
    """``call_id`` if Mistral takes it (9 letters and digits), else a stable 9-character
    digest of it: the same input always gives the same id, so an assistant tool call and
    the tool result answering it keep matching."""
    if _ID.match(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


# --- tools, structured output, reasoning --------------------------------------------------------


def tools(given: Sequence[Tool]) -> list[dict[str, Any]]:
    out = []
    for tool in given:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.schema}
        if tool.description:
            function["description"] = tool.description
        if tool.strict:
            function["strict"] = True
            function["parameters"] = strict_schema(function["parameters"])
        out.append({"type": "function", "function": function})
    return out


def tool_choice(choice: ToolChoice) -> Any:
    if isinstance(choice, str):
        return _CHOICES[choice]
    return {"type": "function", "function": {"name": choice["name"]}}


def response_format(schema: OutputSchema) -> dict[str, Any]:
    body = strict_schema(schema.schema) if schema.strict else dict(schema.schema)
    spec: dict[str, Any] = {"name": schema.name, "schema": body, "strict": schema.strict}
    if schema.description:
        spec["description"] = schema.description
    return {"type": "json_schema", "json_schema": spec}


def strict_schema(node: Any) -> Any:
    """A copy of a JSON Schema in Mistral's strict dialect: every object schema closed
    (``additionalProperties: false`` unless it says otherwise), as the SDK's own
    ``response_format_from_pydantic_model`` does (``rec_strict_json_schema``)."""
    if isinstance(node, dict):
        out = {key: strict_schema(value) for key, value in node.items()}
        if out.get("type") == "object":
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [strict_schema(value) for value in node]
    return node


def reasoning(rules: RequestRules, config: LLMConfig) -> dict[str, Any]:
    """``reasoning_effort`` / ``prompt_mode`` for the model (see the module docstring)."""
    if not rules.reasoning:
        return {}  # a non-reasoning model: the call path let only "none" / 0 through
    effort = rules.effort(config)
    if effort is None:
        return {}
    if effort == "none" and not rules.reasoning_off:
        raise UnsupportedFeatureError(
            f"{config.model} always reasons (Mistral's {rules.family} models): reasoning "
            "cannot be switched off; leave reasoning_effort / reasoning_budget unset."
        )
    if rules.family.startswith("magistral"):
        return {"prompt_mode": "reasoning"}
    return {"reasoning_effort": effort}


def _sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"mistralai {version('mistralai')}"
    except PackageNotFoundError:  # pragma: no cover - vendored
        return "mistralai, version unknown"


@functools.cache
def param_names(method: Any) -> frozenset[str]:
    """The generation parameters ``stream_async`` accepts (``config.params`` is checked)."""
    return frozenset(inspect.signature(method).parameters) - _OWN_ARGS - {"model", "messages"}
