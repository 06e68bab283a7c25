"""The tool loop: the model asks for tools, Python runs them, the results go back, until
the model answers (``llm.run_tools``); and SynapseKit's one-turn ``call_with_tools``.

Each model turn is one ``await llm.respond(history, tools=tools, **overrides)``: the whole
call path (cache, rate limiter, retries, tracer) applies to every turn, and each turn's
trace record says it was step *n* of a tool loop
(:func:`~synapsekit.observability.call_purpose`). The tools of one turn run concurrently
(async ones awaited, sync ones in a worker thread), and their results go back in the
model's order. Whatever goes wrong inside a tool -- it raises, the model named a tool
that does not exist, or sent arguments the function does not take -- becomes a result
the model reads (``"Error: <Type>: <message>"``) rather than a crash: the model can
correct itself on the next turn. Cancelling the loop cancels the turn or the tools in
flight (a sync tool already running in its thread finishes there; its result is dropped).

A ``tool_choice`` that forces a call (``"required"`` or ``{"name": ...}``) applies to the
first turn only; later turns use ``"auto"``, or the model could never stop calling.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from synapsekit._tasks import gather_or_cancel
from synapsekit.errors import ConfigError, MaxStepsError
from synapsekit.llm.content import normalize_parts
from synapsekit.llm.tools import Tool, check_tools
from synapsekit.llm.types import Message, MessagesInput, Response, ToolCall, build_messages
from synapsekit.observability.hooks import ToolRun, dispatch, global_hooks
from synapsekit.observability.purpose import call_purpose

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM

__all__ = ["call_with_tools", "run_tool_call", "run_tools"]

#: The part types a tool may return as its result's content (instead of a string).
_PART_TYPES = frozenset({"text", "image", "image_url", "document"})
#: The content of a tool turn whose function returned an empty string.
EMPTY = "(no output)"


async def run_tools(
    llm: BaseLLM,
    messages: MessagesInput,
    *,
    tools: Any,
    max_steps: int = 8,
    **overrides: Any,
) -> Response:
    """Run ``llm`` on ``messages`` with ``tools`` (each with its Python ``function``:
    ``@tool`` functions or :class:`Tool` s), executing the calls it asks for, until it
    answers without calling one. Returns that final :class:`Response`, its ``transcript``
    every turn in order (the caller's, the model's, the tools' results).

    ``max_steps`` model turns that all end in tool calls raise
    :class:`~synapsekit.errors.MaxStepsError`; its ``transcript`` includes the last turn's
    tool results, so it can be passed back to continue.
    """
    checked = check_tools(tools)
    if not checked:
        raise ConfigError("run_tools: give at least one tool")
    missing = [t.name for t in checked if t.function is None]
    if missing:
        raise ConfigError(
            f"run_tools: the tool(s) {', '.join(map(repr, missing))} have no Python function "
            "to run; build them with @tool, or Tool(..., function=...)"
        )
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigError(f"max_steps: must be an int >= 1, not {max_steps!r}")
    by_name = {t.name: t for t in checked}
    history: list[Message] = build_messages(messages, None)
    forced = overrides.get("tool_choice")
    for step in range(1, max_steps + 1):
        with call_purpose("tool_loop", step=step):
            response = await llm.respond(history, tools=checked, **overrides)
        history.append(response.message)
        if not response.tool_calls:
            return dataclasses.replace(response, transcript=history)
        history.extend(await _run_all(by_name, response.tool_calls, llm.hooks))
        if step == 1 and (forced == "required" or isinstance(forced, Mapping)):
            overrides = {**overrides, "tool_choice": "auto"}
    raise MaxStepsError(
        f"run_tools: the model still asks for tools after max_steps={max_steps} turns "
        f"(last: {', '.join(c.name for c in response.tool_calls)})",
        transcript=history,
        provider=llm.provider,
        model=llm.model,
    )


async def _run_all(
    tools: Mapping[str, Tool], calls: Sequence[ToolCall], hooks: tuple[Any, ...] = ()
) -> list[Message]:
    """The calls of one turn, concurrently; their results in the calls' order. If one of
    them leaves with a BaseException (the loop cancelled, a tool raising CancelledError or
    KeyboardInterrupt), the others are cancelled too: none is left running unawaited."""
    return await gather_or_cancel(run_tool_call(tools, call, hooks=hooks) for call in calls)


async def run_tool_call(
    tools: Mapping[str, Tool], call: ToolCall, *, hooks: tuple[Any, ...] = ()
) -> Message:
    """Run one tool call and return its result turn, ``{"role": "tool", "tool_call_id",
    "name", "content"}``: the function's result as text (a ``str`` as it is, anything else
    as JSON; a list of content parts as parts; ``"(no output)"`` for an empty string), or
    ``"Error: <Type>: <message>"``. ``hooks`` (the LLM's) and the process-wide hooks see
    it start and end (``on_tool_start`` / ``on_tool_end``: the OpenTelemetry
    ``execute_tool`` span)."""
    observers = hooks + global_hooks()
    if not observers:
        return await _run_tool_call(tools, call, None)
    found = tools.get(call.name)
    run = ToolRun(call, found.description if found is not None else None)
    dispatch(observers, "on_tool_start", run)
    try:
        result = await _run_tool_call(tools, call, run)
        run.result = result["content"]
        return result
    except BaseException as exc:
        run.error = type(exc).__name__
        raise
    finally:
        dispatch(observers, "on_tool_end", run)


async def _run_tool_call(
    tools: Mapping[str, Tool], call: ToolCall, run: ToolRun | None
) -> Message:
    found = tools.get(call.name)
    function = found.function if found is not None else None
    content: str | list[Any]
    if function is None:
        content = (
            f"Error: unknown tool {call.name!r}; the tools are: {', '.join(sorted(tools))}"
        )
        if run is not None:
            run.error = "unknown_tool"
    else:
        try:
            arguments = dict(call.arguments)
            if _is_async(function):
                result = await function(**arguments)
            else:
                result = await asyncio.to_thread(function, **arguments)
            if inspect.isawaitable(result):  # a sync callable that returned a coroutine
                result = await result
            content = _content(result, f"tool {call.name!r} result")
        except Exception as exc:  # the model sees it and may correct itself
            content = f"Error: {type(exc).__name__}: {exc}"
            if run is not None:
                run.error = type(exc).__name__
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}


async def call_with_tools(
    llm: BaseLLM, messages: MessagesInput, tools: Any
) -> dict[str, Any]:
    """SynapseKit's ``call_with_tools``: one model turn with ``tools`` (OpenAI-format dicts
    ``{"type": "function", "function": {"name", "description", "parameters"}}``, or Tools),
    nothing executed. Returns ``{"content": str | None, "tool_calls": [...] | None}``:
    ``content`` is the text (None when the model only called tools), and each tool call
    is OpenAI's shape ``{"id", "type": "function", "function": {"name", "arguments":
    "<json>"}}`` with SynapseKit's flat ``"name"`` and parsed ``"arguments"`` (a dict)
    beside it, so code written for either reads it, and it can be appended as the
    assistant turn's ``tool_calls`` as it is."""
    response = await llm.respond(messages, tools=check_tools(tools))
    calls = [
        {
            "id": call.id,
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": json.dumps(dict(call.arguments), ensure_ascii=False),
            },
            "name": call.name,
            "arguments": dict(call.arguments),
        }
        for call in response.tool_calls
    ]
    content: str | None = response.text
    if not content and calls:
        content = None
    return {"content": content, "tool_calls": calls or None}


def _is_async(function: Any) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def _content(result: Any, where: str) -> str | list[Any]:
    """A tool's result as a tool turn's content: a str as it is (``EMPTY`` for an empty
    one, which no provider takes as a turn), a list of content parts checked as parts,
    anything else as JSON."""
    if isinstance(result, str):
        return result if result.strip() else EMPTY
    if (
        isinstance(result, Sequence)
        and not isinstance(result, (bytes, bytearray))
        and result
        and all(isinstance(p, Mapping) and p.get("type") in _PART_TYPES for p in result)
    ):
        return list(normalize_parts(result, where))  # a bad part is an error result here
    return json.dumps(result, ensure_ascii=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    """What json.dumps cannot write itself: pydantic models, dataclasses, sets, else str."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
