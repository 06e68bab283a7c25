"""@tool: the schema a function's signature, hints and docstring give (exact, per hint
kind), the arguments turned back into the hinted types, and the hints it refuses."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
from typing import Annotated, Any, Literal, Optional, TypedDict, Union

import pytest
from pydantic import BaseModel

from synapsekit.errors import ConfigError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.tools import Tool, check_tool_choice, check_tools, function_schema, tool


def schema_of(function: Any) -> dict[str, Any]:
    return function_schema(function)[0]


def prop(hint: Any) -> dict[str, Any]:
    """The schema of one parameter hinted ``hint`` (no default)."""

    def f(x: Any) -> None: ...

    f.__annotations__ = {"x": hint}
    return schema_of(f)["properties"]["x"]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(TypedDict):
    street: str
    zip: int


class Partial(TypedDict, total=False):
    note: str


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0
    tags: list[str] = dataclasses.field(default_factory=list)


class Pet(BaseModel):
    kind: str


class Owner(BaseModel):
    """Someone with pets."""

    name: str
    pets: list[Pet] = []


# ----------------------------------------------------------------- schemas per hint


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (type(None), {"type": "null"}),
        (Any, {}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),  # noqa: UP007
        (int | str | None,
         {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list, {"type": "array"}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (tuple[int, str], {"type": "array", "prefixItems": [{"type": "integer"},
                                                             {"type": "string"}],
                           "minItems": 2, "maxItems": 2}),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (frozenset[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (dict, {"type": "object"}),
        (list[dict[str, int]], {"type": "array", "items": {
            "type": "object", "additionalProperties": {"type": "integer"}}}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (Color, {"type": "string", "enum": ["red", "green"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (Address, {"type": "object", "properties": {"street": {"type": "string"},
                                                    "zip": {"type": "integer"}},
                   "required": ["street", "zip"]}),
        (Partial, {"type": "object", "properties": {"note": {"type": "string"}}}),
        (Point, {"type": "object", "properties": {
            "x": {"type": "number"},
            "y": {"type": "number", "default": 0.0},
            "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["x"]}),
        (Annotated[int, "how many"], {"description": "how many", "type": "integer"}),
        (Annotated[list[str], "names", "in order"],
         {"description": "names in order", "type": "array", "items": {"type": "string"}}),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_schema_per_hint(hint: Any, schema: dict[str, Any]) -> None:
    assert prop(hint) == schema


def test_pydantic_model_schema_and_defs_hoisted() -> None:
    def adopt(owner: Owner) -> str:
        return owner.name

    assert schema_of(adopt) == {
        "type": "object",
        "properties": {
            "owner": {
                "description": "Someone with pets.",
                "properties": {
                    "name": {"title": "Name", "type": "string"},
                    "pets": {"default": [], "items": {"$ref": "#/$defs/Pet"},
                             "title": "Pets", "type": "array"},
                },
                "required": ["name"],
                "title": "Owner",
                "type": "object",
            }
        },
        "required": ["owner"],
        "$defs": {"Pet": {"properties": {"kind": {"title": "Kind", "type": "string"}},
                          "required": ["kind"], "title": "Pet", "type": "object"}},
    }


SENTINEL = object()


def test_defaults_are_not_required_and_are_in_the_schema() -> None:
    def search(query: str, limit: int = 5, color: Color = Color.RED,
               scope: str | None = None, fn: Any = SENTINEL) -> None: ...

    assert schema_of(search) == {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer", "default": 5},
            "color": {"type": "string", "enum": ["red", "green"], "default": "red"},
            "scope": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "fn": {},  # a default that is not JSON is left out
        },
        "required": ["query"],
    }


def test_no_parameters() -> None:
    @tool
    def now() -> str:
        """The time."""
        return "noon"

    assert now.tool.parameters == {"type": "object", "properties": {}}
    assert now.tool.schema == {"type": "object", "properties": {}}


# ----------------------------------------------------------------- docstrings


def test_google_docstring() -> None:
    @tool
    def weather(city: str, unit: str = "c", days: int = 1) -> str:
        """Get the weather
        for a city.

        Longer text the model does not need.

        Args:
            city: The city, e.g. "Paris";
                a second line.
            unit (str): "c" or "f".
            days: How many days.

        Returns:
            The forecast.
        """
        return city

    t = weather.tool
    assert t.name == "weather"
    assert t.description == "Get the weather for a city."
    props = t.parameters["properties"]
    assert props["city"] == {"description": 'The city, e.g. "Paris"; a second line.',
                             "type": "string"}
    assert props["unit"] == {"description": '"c" or "f".', "type": "string", "default": "c"}
    assert props["days"]["description"] == "How many days."


def test_numpy_docstring() -> None:
    @tool
    def area(width: float, height: float) -> float:
        """Area of a rectangle.

        Parameters
        ----------
        width : float
            The width,
            in metres.
        height : float
            The height.

        Returns
        -------
        float
        """
        return width * height

    props = area.tool.parameters["properties"]
    assert area.tool.description == "Area of a rectangle."
    assert props["width"]["description"] == "The width, in metres."
    assert props["height"]["description"] == "The height."


def test_sphinx_docstring() -> None:
    @tool
    def send(to: str, body: str) -> None:
        """Send a message.
        :param to: Who gets it.
        :param str body: What it says,
            in full.
        :returns: nothing
        """

    assert send.tool.description == "Send a message."
    props = send.tool.parameters["properties"]
    assert props["to"]["description"] == "Who gets it."
    assert props["body"]["description"] == "What it says, in full."


def test_annotated_description_wins_over_the_docstring() -> None:
    @tool
    def f(n: Annotated[int, "from the hint"]) -> None:
        """F.

        Args:
            n: from the docstring
        """

    assert f.tool.parameters["properties"]["n"]["description"] == "from the hint"


def test_no_docstring() -> None:
    @tool
    def bare(x: int) -> int:
        return x

    assert bare.tool.description == ""
    assert bare.tool.parameters["properties"]["x"] == {"type": "integer"}


# ----------------------------------------------------------------- the decorator


def test_decorator_keeps_the_function() -> None:
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    decorated = tool(add)
    assert decorated is add
    assert add(2, 3) == 5
    assert isinstance(add.tool, Tool)  # type: ignore[attr-defined]
    assert add.tool.function is add  # type: ignore[attr-defined]
    assert check_tools([add]) == (add.tool,)  # type: ignore[attr-defined]


def test_decorator_with_options() -> None:
    @tool(name="lookup-user", description="Find a user.", strict=True)
    def find(user_id: int) -> str:
        """Ignored docstring."""
        return str(user_id)

    assert find(7) == "7"
    assert find.tool.name == "lookup-user"
    assert find.tool.description == "Find a user."
    assert find.tool.strict is True


async def test_async_function_stays_async() -> None:
    @tool
    async def fetch(url: str) -> str:
        """Fetch."""
        await asyncio.sleep(0)
        return url

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch("u") == "u"
    assert inspect.iscoroutinefunction(fetch.tool.function)


def test_tools_in_config_and_tool_choice() -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    config = LLMConfig(model="gpt-4o-mini", tools=[ping], tool_choice={"name": "ping"})
    assert config.tools == (ping.tool,)
    assert config.tool_choice == {"name": "ping"}
    assert check_tool_choice("required", config.tools) == "required"


def test_bound_method() -> None:
    class Store:
        def price(self, item: str) -> float:
            """Price of an item."""
            return 1.5

    store = Store()
    t = Tool.from_function(store.price)
    assert t.name == "price"
    assert t.parameters == {"type": "object", "properties": {"item": {"type": "string"}},
                            "required": ["item"]}
    assert t.function is not None and t.function(item="x") == 1.5


# ----------------------------------------------------------------- arguments converted


async def test_arguments_become_the_hinted_types() -> None:
    seen: dict[str, Any] = {}

    @tool
    def record(color: Color, point: Point, owner: Owner, pair: tuple[int, str],
               ids: set[int], points: list[Point], by_name: dict[str, Color],
               maybe: Point | None = None, ratio: float = 1.0) -> None:
        """Record."""
        seen.update(locals())

    assert record.tool.function is not record  # the converting wrapper
    record.tool.function(
        color="green", point={"x": 1, "y": 2}, owner={"name": "Al", "pets": [{"kind": "cat"}]},
        pair=[3, "c"], ids=[1, 2, 2], points=[{"x": 5}], by_name={"a": "red"}, maybe=None,
        ratio=2,
    )
    assert seen["color"] is Color.GREEN
    assert seen["point"] == Point(1, 2)
    assert seen["owner"] == Owner(name="Al", pets=[Pet(kind="cat")])
    assert seen["pair"] == (3, "c")
    assert seen["ids"] == {1, 2}
    assert seen["points"] == [Point(5)]
    assert seen["by_name"] == {"a": Color.RED}
    assert seen["maybe"] is None
    assert seen["ratio"] == 2.0 and isinstance(seen["ratio"], float)

    @tool
    async def arecord(color: Color) -> Color:
        """Async."""
        return color

    assert await arecord.tool.function(color="red") is Color.RED


def test_plain_hints_need_no_wrapper() -> None:
    @tool
    def plain(a: str, b: list[int], c: dict[str, Any] | None = None) -> None:
        """Plain."""

    assert plain.tool.function is plain


# ----------------------------------------------------------------- refused


def test_star_args_refused() -> None:
    with pytest.raises(ConfigError, match=r"\*args cannot be described"):
        @tool
        def f(*args: int) -> None: ...
    with pytest.raises(ConfigError, match=r"\*\*options cannot be described"):
        @tool
        def g(a: int, **options: Any) -> None: ...


def test_positional_only_refused() -> None:
    with pytest.raises(ConfigError, match="parameter 'a' is positional-only"):
        @tool
        def f(a: int, /) -> None: ...


def test_missing_hint_refused() -> None:
    with pytest.raises(ConfigError, match="parameter 'x' has no type hint"):
        @tool
        def f(x) -> None:  # type: ignore[no-untyped-def]
            ...


@pytest.mark.parametrize(
    ("hint", "message"),
    [
        (bytes, "parameter 'x': bytes has no JSON Schema"),
        (dict[int, str], "parameter 'x': dict\\[int, str\\] has keys that are not str"),
        (list[complex], "parameter 'x': complex has no JSON Schema"),
        (Literal[b"x"], "has the value b'x', which is not JSON"),
    ],
)
def test_unsupported_hint_names_the_parameter(hint: Any, message: str) -> None:
    def f(x: Any) -> None: ...

    f.__annotations__ = {"x": hint}
    with pytest.raises(ConfigError, match=message):
        tool(f)


@dataclasses.dataclass
class Node:
    child: Node | None = None


def test_recursive_dataclass_refused() -> None:
    def f(node: Node) -> None: ...

    with pytest.raises(ConfigError, match="parameter 'node': Node refers to itself"):
        tool(f)


def test_unresolvable_hint_inside_a_class_refused() -> None:
    @dataclasses.dataclass
    class Local:
        inner: Local | None = None

    def f(x: Any) -> None: ...

    f.__annotations__ = {"x": Local}
    with pytest.raises(ConfigError, match="parameter 'x': Local has type hints that do not"):
        tool(f)


def test_unresolvable_hint_refused() -> None:
    def f(x: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        ...

    with pytest.raises(ConfigError, match="its type hints do not resolve"):
        tool(f)


def test_bad_name_refused() -> None:
    def f(x: int) -> None: ...

    with pytest.raises(ConfigError, match="Tool name 'a b'"):
        tool(name="a b")(f)


def test_tool_without_function_kept() -> None:
    plain = Tool("lookup", "Look up.", {"type": "object", "properties": {"q": {"type": "string"}}})
    assert plain.function is None
    assert check_tools([plain, {"type": "function", "function": {"name": "other"}}])[1] == Tool(
        "other", "", {"type": "object", "properties": {}}
    )


async def test_partials_and_callable_objects() -> None:
    import functools

    def scale(value: float, factor: float) -> float:
        return value * factor

    double = Tool.from_function(functools.partial(scale, factor=2.0), name="double")
    assert double.parameters == {
        "type": "object",
        "properties": {"value": {"type": "number"}, "factor": {"type": "number",
                                                               "default": 2.0}},
        "required": ["value"],
    }

    class Greeter:
        """Greets."""

        async def __call__(self, name: str) -> str:
            return f"hi {name}"

    with pytest.raises(ConfigError, match="has no __name__; pass name="):
        Tool.from_function(Greeter())
    greet = Tool.from_function(Greeter(), name="greet")
    assert greet.parameters == {"type": "object", "properties": {"name": {"type": "string"}},
                                "required": ["name"]}
    assert greet.function is not None and await greet.function(name="Ann") == "hi Ann"
