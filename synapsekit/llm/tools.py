"""Tools the model may call: :class:`Tool`, the ``@tool`` decorator, and the canonical
``tool_choice``.

A :class:`Tool` is a name, a description and a JSON Schema of its parameters (an object
schema), plus, optionally, the Python function that runs it (``run_tools`` calls it).
Every provider's encoder turns ``LLMConfig.tools`` into its native tools API; the
canonical ``tool_choice`` is ``"auto" | "none" | "required" | {"name": ...}``.

``@tool`` builds a Tool from a function: the schema from its signature and type hints, the
description from its docstring's first paragraph, each parameter's description from the
docstring's Google (``Args:``), NumPy (``Parameters`` + dashes) or Sphinx (``:param x:``)
section. The function stays itself (callable as written, sync or async); the Tool rides on
it as ``fn.tool``, which ``check_tools`` / ``tools=[...]`` read. Arguments the model sends
as JSON are turned back into the hinted Python types (Enum members, dataclasses, pydantic
models, tuples, sets) before the function is called. A hint that has no JSON Schema is a
:class:`~synapsekit.errors.ConfigError` naming the parameter, when the function is
decorated -- never a surprise in the middle of a tool loop.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from synapsekit._lazy import lazy_pattern
from synapsekit.errors import ConfigError

__all__ = [
    "TOOL_CHOICES",
    "Tool",
    "ToolChoice",
    "check_tool_choice",
    "check_tools",
    "function_schema",
    "tool",
]

#: The string tool choices; ``{"name": "<tool>"}`` forces one tool.
TOOL_CHOICES = ("auto", "none", "required")
ToolChoice = str | Mapping[str, str]

#: What every provider accepts as a function name (OpenAI's rule is the tightest common one).
_NAME = lazy_pattern(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")

F = TypeVar("F", bound=Callable[..., Any])


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
        if not isinstance(self.name, str) or not _NAME().match(self.name):
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

    @classmethod
    def from_function(
        cls,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool = False,
    ) -> Tool:
        """The Tool ``@tool`` builds for ``function`` (see :func:`tool`), without attaching
        it to the function."""
        if not callable(function):
            raise ConfigError(f"Tool.from_function: {function!r} is not callable")
        from synapsekit.llm._docstrings import Docstring  # only @tool functions need it

        doc = Docstring(inspect.getdoc(function) or "")
        parameters, convert = function_schema(function, doc.params)
        tool_name = name if name is not None else getattr(function, "__name__", None)
        if tool_name is None:
            raise ConfigError(f"Tool.from_function: {function!r} has no __name__; pass name=")
        return cls(
            tool_name,
            doc.summary if description is None else description,
            parameters,
            _converting(function, convert) if convert else function,
            strict,
        )


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


# ----------------------------------------------------------------- @tool


@overload
def tool(function: F, /) -> F: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, strict: bool = False
) -> Callable[[F], F]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
) -> Any:
    """Make a function a tool the model may call: ``@tool`` or ``@tool(name=...,
    description=..., strict=...)``.

    The function is returned as it is (callable as before, sync or async) with its
    :class:`Tool` as ``function.tool``; pass the function itself in ``tools=[...]``. The
    schema comes from the signature: ``str int float bool None``, ``Optional`` / ``Union``
    / ``X | None``, ``list[X]`` / ``tuple`` / ``set``, ``dict[str, X]``, ``Literal``,
    ``Enum``, ``TypedDict``, dataclasses, pydantic models, ``Annotated[X, "description"]``
    and ``Any``; a parameter with a default is not required (its default is in the
    schema). ``*args`` / ``**kwargs``, positional-only parameters, a missing hint or one
    with no JSON Schema are a :class:`~synapsekit.errors.ConfigError` naming the
    parameter.
    """

    def attach(fn: F) -> F:
        built = Tool.from_function(fn, name=name, description=description, strict=strict)
        try:
            fn.tool = built  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            raise ConfigError(
                f"@tool: cannot attach a Tool to {fn!r} (it takes no attributes); "
                "use Tool.from_function(fn) and pass that Tool instead"
            ) from None
        return fn

    if function is not None:
        return attach(function)
    return attach


def function_schema(
    function: Callable[..., Any], descriptions: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, Callable[[Any], Any]]]:
    """The JSON Schema object of ``function``'s parameters, and the converters that turn
    each JSON argument back into its hinted Python type (only for parameters that need
    one: Enum, dataclass, pydantic model, tuple, set, and containers of those)."""
    where = getattr(function, "__qualname__", None) or repr(function)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"@tool {where}: no signature to read ({exc})") from None
    try:
        hints = typing.get_type_hints(_annotated(function), include_extras=True)
    except Exception as exc:  # a NameError / TypeError of an unresolvable annotation
        raise ConfigError(f"@tool {where}: its type hints do not resolve ({exc!r})") from None
    builder = _SchemaBuilder(where)
    properties: dict[str, Any] = {}
    required: list[str] = []
    convert: dict[str, Callable[[Any], Any]] = {}
    for pname, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise ConfigError(
                f"@tool {where}: {star}{pname} cannot be described to the model; "
                "give every parameter a name and a type hint"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ConfigError(
                f"@tool {where}: parameter {pname!r} is positional-only; the model's "
                "arguments are passed by name"
            )
        if pname not in hints:
            raise ConfigError(
                f"@tool {where}: parameter {pname!r} has no type hint (hint it, or use "
                "typing.Any to accept any JSON value)"
            )
        builder.param = pname
        schema, converter = builder.build(hints[pname])
        if descriptions and pname in descriptions and "description" not in schema:
            schema = {"description": descriptions[pname], **schema}
        if param.default is param.empty:
            required.append(pname)
        else:
            default = _json_default(param.default)
            if default is not _NO_DEFAULT:
                schema = {**schema, "default": default}
        properties[pname] = schema
        if converter is not None:
            convert[pname] = converter
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    if builder.defs:
        parameters["$defs"] = builder.defs
    return parameters, convert


def _annotated(function: Any) -> Any:
    """Where ``function``'s annotations are: a partial's function, a callable object's
    ``__call__``."""
    while isinstance(function, functools.partial):
        function = function.func
    if inspect.isroutine(function) or isinstance(function, type):
        return function
    return type(function).__call__


_NO_DEFAULT = object()


def _json_default(value: Any) -> Any:
    """A parameter's default as JSON (an Enum's value), or _NO_DEFAULT when it has none."""
    import json  # only a @tool function's defaults are read through it

    if isinstance(value, enum.Enum):
        value = value.value
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return _NO_DEFAULT


_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_NONE = (None, type(None))


class _SchemaBuilder:
    """Type hint -> JSON Schema (+ a converter from JSON back to the hinted type)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.param = ""
        self.defs: dict[str, Any] = {}
        self._open: set[Any] = set()  # the classes being described (recursion guard)

    def fail(self, hint: Any, why: str) -> ConfigError:
        return ConfigError(
            f"@tool {self.where}: parameter {self.param!r}: {_hint_name(hint)} {why}"
        )

    def _hints(self, cls: type) -> dict[str, Any]:
        try:
            return typing.get_type_hints(cls, include_extras=True)
        except Exception as exc:  # an unresolvable annotation inside the class
            raise self.fail(cls, f"has type hints that do not resolve ({exc!r})") from None

    def build(self, hint: Any) -> tuple[dict[str, Any], Callable[[Any], Any] | None]:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Annotated:
            schema, converter = self.build(args[0])
            notes = [a for a in args[1:] if isinstance(a, str)]
            if notes:
                schema = {"description": " ".join(notes), **schema}
            return schema, converter
        if hint is Any:
            return {}, None
        if hint in _NONE:
            return {"type": "null"}, None
        if hint in _SCALARS:
            return {"type": _SCALARS[hint]}, (float if hint is float else None)
        if origin in (typing.Union, types.UnionType):
            return self._union(args)
        if origin is typing.Literal:
            return _literal(hint, args, self), None
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return _literal(hint, tuple(m.value for m in hint), self), hint
        if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set, frozenset):
            return self._array(hint, origin or hint, args)
        if origin is not None and _is_abc(origin, ("Sequence", "MutableSequence", "Iterable",
                                                   "Collection", "Set", "MutableSet")):
            return self._array(hint, set if "Set" in origin.__name__ else list, args)
        if origin is dict or hint is dict or (
            origin is not None and _is_abc(origin, ("Mapping", "MutableMapping"))
        ):
            return self._mapping(hint, args)
        if isinstance(hint, type):
            if typing.is_typeddict(hint) or (
                issubclass(hint, dict) and hasattr(hint, "__required_keys__")
            ):
                return self._typeddict(hint)
            if dataclasses.is_dataclass(hint):
                return self._dataclass(hint)
            if _is_pydantic_model(hint):
                return self._pydantic(hint)
        raise self.fail(hint, "has no JSON Schema; use str, int, float, bool, a list, a dict, "
                              "Literal, an Enum, a TypedDict, a dataclass or a pydantic model")

    def _union(self, args: tuple[Any, ...]) -> tuple[dict[str, Any], Callable[[Any], Any] | None]:
        arms = [a for a in args if a not in _NONE]
        nullable = len(arms) < len(args)
        built = [self.build(a) for a in arms]
        schemas = [s for s, _ in built]
        if nullable:
            schemas.append({"type": "null"})
        schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        converters = [c for _, c in built if c is not None]
        if len(arms) == 1 and converters:
            inner = converters[0]
            return schema, lambda value: None if value is None else inner(value)
        return schema, None  # several typed arms: the JSON value is passed as it is

    def _array(
        self, hint: Any, kind: Any, args: tuple[Any, ...]
    ) -> tuple[dict[str, Any], Callable[[Any], Any] | None]:
        if kind is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if args == ((),):  # tuple[()]
                return {"type": "array", "maxItems": 0}, tuple
            built = [self.build(a) for a in args]
            fixed = {
                "type": "array",
                "prefixItems": [s for s, _ in built],
                "minItems": len(args),
                "maxItems": len(args),
            }
            convs = [c for _, c in built]

            def fixed_tuple(value: Any) -> Any:
                return tuple(c(v) if c else v for c, v in zip(convs, value, strict=False))

            return fixed, fixed_tuple
        schema: dict[str, Any] = {"type": "array"}
        item_conv: Callable[[Any], Any] | None = None
        if args:
            items, item_conv = self.build(args[0])
            schema["items"] = items
        if kind in (set, frozenset):
            schema["uniqueItems"] = True
        container: Callable[[Any], Any] = (
            kind if kind in (tuple, set, frozenset) else list
        )
        if item_conv is None and container is list:
            return schema, None
        conv = item_conv

        def array(value: Any) -> Any:
            if not isinstance(value, list):
                return value  # the function says what is wrong with it
            return container([conv(v) for v in value] if conv else value)

        return schema, array

    def _mapping(
        self, hint: Any, args: tuple[Any, ...]
    ) -> tuple[dict[str, Any], Callable[[Any], Any] | None]:
        schema: dict[str, Any] = {"type": "object"}
        if not args:
            return schema, None
        if args[0] is not str:
            raise self.fail(hint, "has keys that are not str; JSON object keys are strings")
        values, conv = self.build(args[1])
        schema["additionalProperties"] = values
        if conv is None:
            return schema, None
        inner = conv

        def mapping(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            return {k: inner(v) for k, v in value.items()}

        return schema, mapping

    def _object(
        self, cls: type, hints: Mapping[str, Any], required: list[str],
        defaults: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Callable[[Any], Any]]]:
        if cls in self._open:
            raise self.fail(cls, "refers to itself; a recursive type has no inline schema")
        self._open.add(cls)
        try:
            properties: dict[str, Any] = {}
            convs: dict[str, Callable[[Any], Any]] = {}
            for key, sub in hints.items():
                schema, conv = self.build(sub)
                if key in defaults:
                    default = _json_default(defaults[key])
                    if default is not _NO_DEFAULT:
                        schema = {**schema, "default": default}
                properties[key] = schema
                if conv is not None:
                    convs[key] = conv
        finally:
            self._open.discard(cls)
        schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return schema, convs

    def _typeddict(self, cls: type) -> tuple[dict[str, Any], Callable[[Any], Any] | None]:
        hints = self._hints(cls)
        keys = getattr(cls, "__required_keys__", frozenset(hints))
        required = [k for k in hints if k in keys]
        schema, convs = self._object(cls, hints, required, {})
        if not convs:
            return schema, None

        def typed_dict(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            return {k: convs[k](v) if k in convs else v for k, v in value.items()}

        return schema, typed_dict

    def _dataclass(self, cls: type) -> tuple[dict[str, Any], Callable[[Any], Any] | None]:
        hints = self._hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.init]
        required = [
            f.name for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
        schema, convs = self._object(cls, {f.name: hints[f.name] for f in fields}, required,
                                     defaults)

        def build_dataclass(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            return cls(**{k: convs[k](v) if k in convs else v for k, v in value.items()})

        return schema, build_dataclass

    def _pydantic(self, cls: Any) -> tuple[dict[str, Any], Callable[[Any], Any] | None]:
        schema = dict(cls.model_json_schema())
        for key, value in schema.pop("$defs", {}).items():
            self.defs.setdefault(key, value)
        return schema, cls.model_validate


def _literal(hint: Any, values: tuple[Any, ...], builder: _SchemaBuilder) -> dict[str, Any]:
    if not values:
        raise builder.fail(hint, "has no values")
    kinds = set()
    for value in values:
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, int):
            kinds.add("integer")
        elif isinstance(value, float):
            kinds.add("number")
        elif isinstance(value, str):
            kinds.add("string")
        elif value is None:
            kinds.add("null")
        else:
            raise builder.fail(hint, f"has the value {value!r}, which is not JSON")
    schema: dict[str, Any] = {"enum": list(values)}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), **schema}
    return schema


def _is_abc(origin: Any, names: tuple[str, ...]) -> bool:
    return getattr(origin, "__module__", "") == "collections.abc" and origin.__name__ in names


def _is_pydantic_model(cls: type) -> bool:
    """A pydantic v2 model class, told without importing pydantic (it is imported only by
    the user's own module that defines the model)."""
    return any(
        base.__module__.startswith("pydantic") and base.__name__ == "BaseModel"
        for base in cls.__mro__
    ) and hasattr(cls, "model_json_schema")


def _hint_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return repr(hint).replace("typing.", "")


def _converting(
    function: Callable[..., Any], convert: Mapping[str, Callable[[Any], Any]]
) -> Callable[..., Any]:
    """``function`` called with its JSON arguments turned into the hinted types first (sync
    stays sync -- run_tools runs it in a worker thread; async stays async)."""

    def arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
        return {k: convert[k](v) if k in convert else v for k, v in kwargs.items()}

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def call_async(**kwargs: Any) -> Any:
            return await function(**arguments(kwargs))

        return call_async

    @functools.wraps(function)
    def call(**kwargs: Any) -> Any:
        return function(**arguments(kwargs))

    return call
