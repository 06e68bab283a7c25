"""Canonical messages and an :class:`~synapsekit.llm.config.LLMConfig` -> a Messages API body.

Pure functions of (messages, config, rules, API version). Wire rules followed here:

- system messages become the top-level ``system`` field, joined by a blank line (the API
  rejects the role in ``messages``); ``max_tokens`` is always sent; ``stop`` goes out as
  ``stop_sequences``; ``params`` is merged into the body last, as-is (a ``thinking`` or
  ``tool_choice`` given there wins);
- content parts: text -> ``text`` blocks; an image -> ``image`` with a ``base64`` source
  (``media_type``, ``data``) or a ``url`` source; a PDF -> ``document`` with a ``base64``
  source (its ``name`` as ``title``);
- an assistant turn is its ``provider_data`` content verbatim when that came from this
  protocol (thinking blocks with their signatures, redacted_thinking, text, tool_use, in
  order: the API checks the signatures), each ``tool_use`` input taken from the turn's
  ``tool_calls`` by id; otherwise a text block and one ``tool_use`` block per call;
- tool results -> ``tool_result`` blocks in a user turn; consecutive results (a parallel
  call's) share ONE user turn, and a user turn right after them joins it, after them (the
  API wants the results first in the turn that follows the tool_use turn);
- tools -> ``tools: [{name, description, input_schema, strict?}]`` (``strict`` only on the
  models with structured outputs, which alone take it; elsewhere it is left out and the
  call path's JSON check is the guard); ``tool_choice`` auto /
  none / required / {name} -> ``{type: auto | none | any | tool}``;
  ``parallel_tool_calls=False`` -> ``disable_parallel_tool_use: true`` on it;
- reasoning (per model, models.json ``claude-*`` rows): a model that takes a budget gets
  ``thinking: {type: enabled, budget_tokens}`` with the budget clamped to ``>= 1024`` and
  ``< max_tokens`` (``max_tokens`` is never raised: it caps the bill; below 1025 thinking
  cannot fit and is an UnsupportedFeatureError saying so); a model that takes an effort
  gets ``thinking: {type: adaptive}`` and ``output_config.effort`` (xhigh is ``max`` on
  the 4.6 models, which have no xhigh); off ("none" / 0) sends no ``thinking``, except on
  a model that cannot switch thinking off (the lowest effort then). Thinking refuses a
  forced tool (``tool_choice`` any / tool), so that is an UnsupportedFeatureError here;
- ``temperature`` follows the API version the client sends: version 2026-10-21 (the
  default of anthropic >= 2.0) rejects any sampling parameter, so it is not sent; older
  versions (anthropic < 2.0, or ``headers={"anthropic-version": "2023-06-01"}``) get it
  in the body (anthropic >= 1.0 dropped the argument from ``create``), except when
  thinking is on (then only 1 is accepted); ``temperature=None`` is never sent;
  ``LLMConfig.top_p`` follows the same rule;
- structured output: ``output_config.format: {type: json_schema, schema}`` on the models
  with native structured outputs (every object gets ``additionalProperties: false``, which
  the API requires); elsewhere a forced tool named after the schema, whose arguments the
  decoder emits as text;
- ``cache_prompt``: ``cache_control: {type: ephemeral}`` on the system prompt, the last
  tool and the last block of the turn before the newest one (the stable prefix; at most 3
  of the API's 4 breakpoints; thinking blocks are never marked).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from synapsekit.errors import UnsupportedFeatureError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import Part, b64, text_of
from synapsekit.llm.models import RequestRules
from synapsekit.llm.types import Message, OutputSchema

__all__ = ["NO_SAMPLING_VERSION", "Plan", "request", "takes_temperature"]

#: The first API version that rejects temperature / top_p / top_k (a 400 at any value).
NO_SAMPLING_VERSION = "2026-10-21"
#: Thinking's own rules: ``budget_tokens >= 1024`` and ``< max_tokens``.
MIN_BUDGET = 1024
#: Families (models.json) with native structured outputs (``output_config.format``).
NATIVE_STRUCTURED = frozenset({"claude-4.5", "claude-4.6", "claude-adaptive"})
#: A canonical effort level sent under another name, per family.
WIRE_EFFORT: dict[str, dict[str, str]] = {"claude-4.6": {"xhigh": "max"}}
EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
_CHOICE = {"auto": "auto", "none": "none", "required": "any"}
_UNMARKABLE = frozenset({"thinking", "redacted_thinking"})
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")


class Plan:
    """A request body and what the decoder must know about it: ``text_tool``, the forced
    tool whose arguments are the structured answer (emitted as text), or None."""

    __slots__ = ("body", "text_tool")

    def __init__(self, body: dict[str, Any], text_tool: str | None) -> None:
        self.body = body
        self.text_tool = text_tool


def request(
    messages: list[Message], config: LLMConfig, rules: RequestRules, version: str | None
) -> Plan:
    """The streamed request body for ``messages`` under ``config``."""
    system = [text_of(m["content"]) for m in messages if m["role"] == "system"]
    turns = encode_turns(messages)
    body: dict[str, Any] = {
        "model": config.model,
        "max_tokens": config.max_tokens,
        "messages": turns,
        "stream": True,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if config.stop:
        body["stop_sequences"] = list(config.stop)
    native = rules.family in NATIVE_STRUCTURED  # also the models with strict tools
    tools = [tool_param(t.name, t.description, t.schema, t.strict and native)
             for t in config.tools]
    choice = tool_choice(config)
    text_tool = None
    schema = config.response_schema
    if schema is not None:
        if native:
            output_format = {"type": "json_schema", "schema": strict_schema(schema.schema)}
            body["output_config"] = {"format": output_format}
        else:
            text_tool = _tool_name(schema)
            tools.append(tool_param(text_tool, _describe(schema), dict(schema.schema), False))
            choice = {"type": "tool", "name": text_tool}
    if tools:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    _reasoning(body, config, rules)
    thinking = config.params.get("thinking", body.get("thinking"))
    if _thinks(thinking) and (config.params.get("tool_choice") or choice or {}).get(
        "type"
    ) in ("any", "tool"):
        forced = "structured output as a forced tool" if text_tool else (
            f"tool_choice={config.tool_choice!r}")
        raise UnsupportedFeatureError(
            f"anthropic (model {config.model!r}): thinking cannot be combined with {forced} "
            "(the API takes tool_choice auto or none with thinking); drop the reasoning "
            "setting or the forced choice. Nothing was sent."
        )
    sampling = takes_temperature(version, thinking)
    temperature = rules.temperature(config)
    if temperature is not None and sampling:
        body["temperature"] = temperature
    top_p = rules.top_p(config)
    if top_p is not None and sampling:  # the same rule as temperature
        body["top_p"] = top_p
    if config.cache_prompt:
        mark_cache(body)
    body.update(rules.params(config))
    return Plan(body, text_tool)


def takes_temperature(version: str | None, thinking: Any) -> bool:
    """Whether the request may carry ``temperature`` (see the module docstring)."""
    if version is None or version >= NO_SAMPLING_VERSION:
        return False
    return not _thinks(thinking)


def _thinks(thinking: Any) -> bool:
    return isinstance(thinking, Mapping) and thinking.get("type", "disabled") != "disabled"


# --------------------------------------------------------------------------- messages


def encode_turns(messages: list[Message]) -> list[dict[str, Any]]:
    """The ``messages`` array: user / assistant turns, tool results as user turns."""
    turns: list[dict[str, Any]] = []
    results = False  # the last turn holds tool results (a tool turn or a user one joins it)
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "tool":
            block = tool_result(message)
            if results:
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
                results = True
            continue
        if role == "user" and results:
            turns[-1]["content"].extend(blocks(message["content"]))
            results = False
            continue
        results = False
        if role == "assistant":
            turns.append({"role": "assistant", "content": assistant_content(message)})
        else:
            content = message["content"]
            turns.append(
                {"role": "user", "content": content if isinstance(content, str) else
                 blocks(content)}
            )
    return turns


def blocks(content: str | list[Part]) -> list[dict[str, Any]]:
    """Content as a list of content blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [block(part) for part in content]


def block(part: Part) -> dict[str, Any]:
    """One canonical part as a content block."""
    raw = cast("dict[str, Any]", part)
    kind = raw["type"]
    if kind == "text":
        return {"type": "text", "text": raw["text"]}
    if kind == "image" and "url" in raw:
        return {"type": "image", "source": {"type": "url", "url": raw["url"]}}
    source = {"type": "base64", "media_type": raw["media_type"], "data": b64(part)}  # type: ignore[arg-type]
    if kind == "image":
        return {"type": "image", "source": source}
    found: dict[str, Any] = {"type": "document", "source": source}
    if raw.get("name"):
        found["title"] = raw["name"]
    return found


def assistant_content(message: Message) -> str | list[dict[str, Any]]:
    """An assistant turn: its own blocks back (provider_data) or built from the turn."""
    calls = message.get("tool_calls") or []
    data = message.get("provider_data")
    if data is not None and data["protocol"] == "anthropic" and isinstance(
        data["content"], list
    ):
        inputs = {call.id: dict(call.arguments) for call in calls}
        found = []
        for raw in data["content"]:
            if isinstance(raw, Mapping):
                item = dict(raw)
                if item.get("type") == "tool_use" and item.get("id") in inputs:
                    item["input"] = inputs[item["id"]]
                found.append(item)
        return found
    content = message["content"]
    if not calls:
        return content if isinstance(content, str) else blocks(content)
    built = blocks(content)
    built.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}
        for call in calls
    )
    return built


def tool_result(message: Message) -> dict[str, Any]:
    """A ``tool`` turn as a ``tool_result`` block (its content a string or blocks)."""
    found: dict[str, Any] = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    content = message["content"]
    if isinstance(content, str):
        if content:
            found["content"] = content
    else:
        found["content"] = blocks(content)
    return found


# ------------------------------------------------------------------------------ tools


def tool_param(
    name: str, description: str, schema: Mapping[str, Any], strict: bool
) -> dict[str, Any]:
    """One tool definition; a strict tool's schema gets ``additionalProperties: false``."""
    found: dict[str, Any] = {"name": name}
    if description:
        found["description"] = description
    found["input_schema"] = strict_schema(schema) if strict else dict(schema)
    if strict:
        found["strict"] = True
    return found


def tool_choice(config: LLMConfig) -> dict[str, Any] | None:
    """The canonical choice (and the parallel switch) as Anthropic's ``tool_choice``."""
    choice = config.tool_choice
    found: dict[str, Any] | None
    if choice is None:
        found = {"type": "auto"} if config.parallel_tool_calls is False and config.tools else None
    elif isinstance(choice, str):
        found = {"type": _CHOICE[choice]}
    else:
        found = {"type": "tool", "name": choice["name"]}
    if found is not None and config.parallel_tool_calls is False and found["type"] != "none":
        found["disable_parallel_tool_use"] = True
    return found


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with ``additionalProperties: false`` on every object that does not say
    (structured outputs and strict tools require it); the caller's mapping is not changed."""
    return _closed(schema)  # type: ignore[no-any-return]


def _closed(node: Any) -> Any:
    if isinstance(node, Mapping):
        found = {key: _closed(value) for key, value in node.items()}
        if found.get("type") == "object" or "properties" in found:
            found.setdefault("additionalProperties", False)
        return found
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


def _tool_name(schema: OutputSchema) -> str:
    return _TOOL_NAME.sub("_", schema.name)[:64] or "response"


def _describe(schema: OutputSchema) -> str:
    return schema.description or f"Give the answer as the {schema.name} object."


# -------------------------------------------------------------------------- reasoning


def _reasoning(body: dict[str, Any], config: LLMConfig, rules: RequestRules) -> None:
    """``thinking`` (and ``output_config.effort``) from the reasoning settings."""
    if rules.reasoning == "" or (
        config.reasoning_effort is None and config.reasoning_budget is None
    ):
        return
    off = config.reasoning_effort == "none" or config.reasoning_budget == 0
    if off and rules.reasoning_off:
        return  # no thinking field: thinking is off by default
    by_budget = rules.reasoning == "budget" or (
        rules.reasoning == "both" and config.reasoning_budget is not None
    )
    if by_budget and not off:
        budget = min(rules.budget(config) or MIN_BUDGET, config.max_tokens - 1)
        budget = max(budget, MIN_BUDGET, rules.budget_min)
        if budget >= config.max_tokens:
            raise UnsupportedFeatureError(
                f"anthropic (model {config.model!r}): thinking needs budget_tokens >= "
                f"{MIN_BUDGET} and below max_tokens, and max_tokens={config.max_tokens}; "
                f"raise max_tokens (thinking tokens count toward it). Nothing was sent."
            )
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        return
    effort = rules.effort(config) if not off else None
    if effort is None or effort == "none":
        effort = rules.efforts[0] if rules.efforts else "low"
    wire = WIRE_EFFORT.get(rules.family, {}).get(effort, effort)
    body["thinking"] = {"type": "adaptive"}
    body.setdefault("output_config", {})["effort"] = wire


# ------------------------------------------------------------------------------ cache


def mark_cache(body: dict[str, Any]) -> None:
    """``cache_control`` breakpoints on the stable prefix: system, last tool, the turn
    before the newest one (see the module docstring)."""
    system = body.get("system")
    if isinstance(system, str):
        body["system"] = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    tools = body.get("tools")
    if tools:
        tools[-1] = {**tools[-1], "cache_control": EPHEMERAL}
    turns = body["messages"]
    if len(turns) < 2:
        return
    turn = turns[-2]
    content = turn["content"]
    if isinstance(content, str):
        if content:
            turn["content"] = [{"type": "text", "text": content, "cache_control": EPHEMERAL}]
        return
    for i in range(len(content) - 1, -1, -1):
        if content[i].get("type") not in _UNMARKABLE:
            content[i] = {**content[i], "cache_control": EPHEMERAL}
            return
