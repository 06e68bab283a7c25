"""Tools the model may call: :class:`Tool`, and the canonical ``tool_choice``.

A :class:`Tool` is a name, a description and a JSON Schema of its parameters (an object
schema), plus, optionally, the Python function that runs it (``run_tools`` calls it).
Every provider's encoder turns ``LLMConfig.tools`` into its native tools API; the
canonical ``tool_choice`` is ``"auto" | "none" | "required" | {"name": ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from synapsekit.errors import ConfigError

__all__ = ["TOOL_CHOICES", "Tool", "ToolChoice", "check_tool_choice", "check_tools"]

#: The string tool choices; ``{"name": "<tool>"}`` forces one tool.
TOOL_CHOICES = ("auto", "none", "required")
ToolChoice = str | Mapping[str, str]

#: What every provider accepts as a function name (OpenAI's rule is the tightest common one).
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Tool:
    """One function the model may call. ``parameters`` is a JSON Schema object (``{"type":
    "object", "properties": {...}, "required": [...]}``); ``function`` (sync or async) is
    what :meth:`BaseLLM.run_tools` calls with the parsed arguments as keywords."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    #: Ask providers with a strict mode (OpenAI ``strict``) to hold the arguments to the
    #: schema exactly (then every property must be required and no others allowed).
    strict: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"Tool name {self.name!r}: must be 1-64 letters, digits, '_' or '-', "
                "starting with a letter or '_' (every provider's rule)"
            )
        if not isinstance(self.description, str):
            raise ConfigError(f"Tool {self.name!r}: description must be a string")
        schema = self.parameters
        if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
            raise ConfigError(
                f"Tool {self.name!r}: parameters must be a JSON Schema object "
                "({'type': 'object', 'properties': {...}})"
            )

    @property
    def schema(self) -> dict[str, Any]:
        """``parameters`` with ``type: object`` and ``properties`` always present (some
        APIs reject a schema without them)."""
        return {"type": "object", "properties": {}, **dict(self.parameters)}


def check_tools(tools: Any) -> tuple[Tool, ...]:
    """``tools`` as a tuple of :class:`Tool` (names unique); a dict in OpenAI's format
    (``{"type": "function", "function": {"name", "description", "parameters"}}``) or a
    function decorated with ``@tool`` is accepted too."""
    if tools is None:
        return ()
    if isinstance(tools, (str, bytes, Mapping)) or not hasattr(tools, "__iter__"):
        raise ConfigError(f"tools: must be a list of Tool, not {type(tools).__name__}")
    found: list[Tool] = []
    for item in tools:
        found.append(_as_tool(item))
    names = [t.name for t in found]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"tools: the name {duplicate!r} is given twice")
    return tuple(found)


def _as_tool(item: Any) -> Tool:
    if isinstance(item, Tool):
        return item
    attached = getattr(item, "tool", None)  # a function decorated with @tool
    if isinstance(attached, Tool):
        return attached
    if isinstance(item, Mapping):
        spec = item.get("function") if item.get("type") == "function" else item
        if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
            return Tool(
                spec["name"],
                spec.get("description") or "",
                spec.get("parameters") or {"type": "object", "properties": {}},
                strict=bool(spec.get("strict", False)),
            )
    raise ConfigError(
        f"tools: {item!r} is not a Tool (use Tool(name, description, parameters), @tool, "
        "or an OpenAI-format {'type': 'function', 'function': {...}} dict)"
    )


def check_tool_choice(choice: Any, tools: tuple[Tool, ...]) -> ToolChoice | None:
    """The canonical ``tool_choice``: one of :data:`TOOL_CHOICES` or ``{"name": <tool>}``
    (OpenAI's ``{"type": "function", "function": {"name"}}`` accepted), naming a tool
    that is in ``tools``."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise ConfigError(
                f"tool_choice: {choice!r}; choose one of {', '.join(TOOL_CHOICES)} "
                "or {'name': '<tool>'}"
            )
        if choice == "required" and not tools:
            raise ConfigError("tool_choice='required' needs tools")
        return choice
    if isinstance(choice, Mapping):
        inner = choice.get("function")
        name = inner.get("name") if isinstance(inner, Mapping) else choice.get("name")
        if isinstance(name, str):
            if name not in {t.name for t in tools}:
                raise ConfigError(
                    f"tool_choice names {name!r}, which is not one of the tools: "
                    f"{', '.join(t.name for t in tools) or '(none given)'}"
                )
            return {"name": name}
    raise ConfigError(f"tool_choice: {choice!r} is not a tool choice")
