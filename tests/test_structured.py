"""generate_object / stream_object / generate_structured through the real call path (the
scripted BaseLLM of test_tool_loop): native schema sent as response_schema, the exact
re-ask after an invalid answer, every attempt traced, dict schemas checked with
jsonschema, partial objects as the JSON arrives."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic's rule below Python 3.12

from synapsekit.errors import ConfigError, MissingDependencyError, StructuredOutputError
from synapsekit.llm.structured import (
    generate_object,
    generate_structured,
    output_schema,
    reask_message,
    stream_object,
)
from synapsekit.llm.types import Chunk, OutputSchema, Usage
from synapsekit.observability.tracer import TokenTracer
from tests.test_tool_loop import Scripted

pytestmark = pytest.mark.filterwarnings("ignore::synapsekit.llm.pricing.UnknownModelPriceWarning")


class Person(BaseModel):
    """A person."""

    name: str
    age: int = Field(ge=0)


def text(*pieces: str, finish: str = "stop") -> list[Chunk]:
    return [*(Chunk(p) for p in pieces), Chunk(usage=Usage(7, 3), finish_reason=finish)]


WEATHER = {
    "title": "Weather report",
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
    "required": ["city", "temp"],
    "additionalProperties": False,
}


async def test_invalid_then_valid_reask_exact_and_both_traced() -> None:
    tracer = TokenTracer()
    llm = Scripted([text('{"name": "Ada", ', '"age": "forty"}'),
                    text('{"name": "Ada", "age": 36}')], tracer=tracer)
    person = await llm.generate_object("Who wrote the first program?", schema=Person)

    assert person == Person(name="Ada", age=36)
    assert len(llm.requests) == 2
    schema = OutputSchema("Person", Person.model_json_schema(), description="A person.")
    assert [c.response_schema for _, c in llm.requests] == [schema, schema]
    reask = (
        "Your answer does not match the required JSON schema:\n"
        "- age: Input should be a valid integer, unable to parse string as an integer "
        "(got 'forty')\n"
        "Answer again with only the corrected JSON object."
    )
    assert llm.requests[1][0][1:] == [
        {"role": "user", "content": "Who wrote the first program?"},
        {"role": "assistant", "content": '{"name": "Ada", "age": "forty"}'},
        {"role": "user", "content": reask},
    ]
    assert [(r.purpose, r.attempt) for r in tracer.records] == [
        ("structured", 1), ("structured_retry", 2)]
    assert [r.error for r in tracer.records] == [None, None]


async def test_every_attempt_invalid_raises_with_text_errors_attempts() -> None:
    tracer = TokenTracer()
    llm = Scripted([text('{"name": "Bob", "age": -1}')], tracer=tracer)
    with pytest.raises(StructuredOutputError, match="No valid Person after 3 attempt") as caught:
        await generate_object(llm, "?", schema=Person)  # retries=2
    error = caught.value
    assert error.attempts == 3 and len(llm.requests) == 3 and len(tracer.records) == 3
    assert error.text == '{"name": "Bob", "age": -1}'
    assert error.errors == ["age: Input should be greater than or equal to 0 (got -1)"]
    # each re-ask sees the whole exchange so far
    assert [m["role"] for m in llm.requests[2][0]] == [
        "system", "user", "assistant", "user", "assistant", "user"]


async def test_retries_zero_is_one_attempt() -> None:
    llm = Scripted([text("not json")])
    with pytest.raises(StructuredOutputError) as caught:
        await llm.generate_object("?", schema=Person, retries=0)
    assert caught.value.attempts == 1 and len(llm.requests) == 1
    assert caught.value.errors == [
        "the answer is not valid JSON: Expecting value (line 1, column 1)"]


async def test_fenced_answer_is_accepted() -> None:
    llm = Scripted([text('```json\n{"name": "Al", "age": 3}\n```')])
    assert await llm.generate_object("?", schema=Person) == Person(name="Al", age=3)
    assert len(llm.requests) == 1


class Profile(BaseModel):
    name: str
    nick: str = "none given"
    best_friend: Person | None = None
    friends: list[Person] = []


async def test_strict_mode_nulls_of_optional_fields_take_the_defaults() -> None:
    """Strict modes make every property required (optional ones nullable), so a model
    answers null for "not given"; that must validate against the caller's own model."""
    llm = Scripted([text('{"name": "Ada", "nick": null, "best_friend": null, '
                         '"friends": [{"name": "Al", "age": 3}]}')])
    profile = await llm.generate_object("?", schema=Profile)
    assert profile == Profile(name="Ada", friends=[Person(name="Al", age=3)])
    assert len(llm.requests) == 1


async def test_a_null_for_a_required_field_is_still_an_error() -> None:
    llm = Scripted([text('{"name": null}'), text('{"name": "Ada"}')])
    assert await llm.generate_object("?", schema=Profile) == Profile(name="Ada")
    assert len(llm.requests) == 2  # the null name was re-asked


async def test_cut_answer_says_so() -> None:
    llm = Scripted([text('{"name": "Al", "ag', finish="length")])
    with pytest.raises(StructuredOutputError) as caught:
        await llm.generate_object("?", schema=Person, retries=0, max_tokens=5)
    assert caught.value.errors == [
        "the answer is not valid JSON: Unterminated string starting at (line 1, column 16)",
        "the answer was cut at max_tokens (finish_reason 'length')",
    ]
    assert llm.requests[0][1].max_tokens == 5


async def test_dict_schema_validated_with_jsonschema() -> None:
    llm = Scripted([text('{"city": "Oslo", "wind": 3}'), text('{"city": "Oslo", "temp": -2.5}')])
    report = await llm.generate_object("Oslo weather", schema=WEATHER)
    assert report == {"city": "Oslo", "temp": -2.5}
    sent = llm.requests[0][1].response_schema
    assert sent == OutputSchema("Weather_report", WEATHER)
    assert llm.requests[1][0][-1]["content"] == (
        "Your answer does not match the required JSON schema:\n"
        "- (root): 'temp' is a required property\n"
        "- (root): Additional properties are not allowed ('wind' was unexpected)\n"
        "Answer again with only the corrected JSON object."
    )


async def test_dict_schema_nested_paths() -> None:
    schema = {"type": "object", "properties": {"items": {"type": "array",
              "items": {"type": "integer"}}}, "required": ["items"]}
    llm = Scripted([text('{"items": [1, "two", 3]}')])
    with pytest.raises(StructuredOutputError) as caught:
        await llm.generate_object("?", schema=schema, retries=0)
    assert caught.value.errors == ["items.1: 'two' is not of type 'integer'"]
    assert llm.requests[0][1].response_schema == OutputSchema("output", schema)


async def test_dataclass_and_typeddict_schemas() -> None:
    @dataclasses.dataclass
    class City:
        name: str
        population: int

    class Tag(TypedDict):
        label: str

    llm = Scripted([text('{"name": "Lyon", "population": 520000}'), text('{"label": "x"}')])
    assert await llm.generate_object("?", schema=City) == City("Lyon", 520000)
    assert await llm.generate_object("?", schema=Tag) == {"label": "x"}
    assert output_schema(City).name == "City"


async def test_bad_schemas_refused_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = Scripted([text("{}")])
    with pytest.raises(ConfigError, match="is not a schema"):
        await llm.generate_object("?", schema=42)
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        await llm.generate_object("?", schema={"type": "nope"})
    with pytest.raises(ConfigError, match="retries"):
        await llm.generate_object("?", schema=Person, retries=-1)
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # not installed
    with pytest.raises(MissingDependencyError, match=r'pip install "synapsekit\[structured\]"'):
        await llm.generate_object("?", schema=WEATHER)
    assert llm.requests == []


async def test_generate_structured_is_synapsekits_name() -> None:
    llm = Scripted([text("{}"), text("{}"), text("{}"), text('{"name": "Z", "age": 1}')])
    assert await generate_structured(llm, "?", Person) == Person(name="Z", age=1)
    assert len(llm.requests) == 4  # max_retries=3 re-asks
    llm = Scripted([text("[]")])
    with pytest.raises(StructuredOutputError) as caught:
        await generate_structured(llm, "?", Person, max_retries=1)
    assert caught.value.attempts == 2
    assert caught.value.errors == [
        "(root): Input should be a valid dictionary or instance of Person"]


def test_reask_message() -> None:
    assert reask_message(["a: bad", "b: worse"]) == (
        "Your answer does not match the required JSON schema:\n- a: bad\n- b: worse\n"
        "Answer again with only the corrected JSON object.")


# ----------------------------------------------------------------- stream_object


async def test_stream_object_partials_then_the_validated_object() -> None:
    tracer = TokenTracer()
    llm = Scripted([text('{"na', 'me": "Ad', 'a", "ag', 'e": 3', "6", "}")], tracer=tracer)
    seen: list[Any] = [item async for item in llm.stream_object("?", schema=Person)]
    assert seen == [  # '{"na' is {} so far: nothing to show yet
        {"name": "Ad"},
        {"name": "Ada"},  # '"ag' and '3' add nothing yet: not yielded again
        {"name": "Ada", "age": 36},
        Person(name="Ada", age=36),
    ]
    assert isinstance(seen[-1], Person)
    assert len(llm.requests) == 1
    assert llm.requests[0][1].response_schema == output_schema(Person)
    assert [(r.purpose, r.attempt) for r in tracer.records] == [("structured", 1)]


async def test_stream_object_dict_schema_and_fence() -> None:
    llm = Scripted([text("```json\n", '{"city": "Ri', 'o", "temp": 3', "1.5}", "\n```")])
    seen = [item async for item in stream_object(llm, "?", schema=WEATHER)]
    assert seen == [{"city": "Ri"}, {"city": "Rio"}, {"city": "Rio", "temp": 31.5},
                    {"city": "Rio", "temp": 31.5}]


async def test_stream_object_invalid_raises_after_the_partials() -> None:
    llm = Scripted([text('{"name": "Bo', 'b"}')])
    seen: list[Any] = []
    with pytest.raises(StructuredOutputError) as caught:
        async for item in llm.stream_object("?", schema=Person):
            seen.append(item)
    assert seen == [{"name": "Bo"}, {"name": "Bob"}]
    assert caught.value.attempts == 1
    assert caught.value.errors == ["age: Field required"]


async def test_reask_over_the_openai_sdk_and_simulator(openai_sim: Any) -> None:
    """generate_object through OpenAILLM, the real SDK and the simulator: the schema goes
    as response_format json_schema, the re-ask is the next request's last turn."""
    from synapsekit import make_llm
    from synapsekit.testing.simulators.openai_protocol import text_stream

    openai_sim.enqueue(text_stream(['{"name": "Ada", ', '"age": "forty"}']),
                       text_stream(['{"name": "Ada", "age": 36}']))
    tracer = TokenTracer()
    llm = make_llm("gpt-4o", api_key="sk-test-key-0123456789", base_url=openai_sim.url,
                   tracer=tracer)
    assert await llm.generate_object("Who?", schema=Person) == Person(name="Ada", age=36)
    bodies = [r.json() for r in openai_sim.requests]
    assert len(bodies) == 2
    fmt = bodies[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Person"
    assert fmt["json_schema"]["schema"]["properties"]["age"]["type"] == "integer"
    assert bodies[1]["messages"][-2:] == [
        {"role": "assistant", "content": '{"name": "Ada", "age": "forty"}'},
        {"role": "user", "content": reask_message([
            "age: Input should be a valid integer, unable to parse string as an integer "
            "(got 'forty')"])},
    ]
    assert [(r.purpose, r.attempt) for r in tracer.records] == [
        ("structured", 1), ("structured_retry", 2)]


async def test_stream_object_marks_only_its_own_call() -> None:
    from synapsekit.observability.purpose import current_purpose

    llm = Scripted([text('{"name": "A', '", "age": 1}')])
    between = [current_purpose() async for _ in llm.stream_object("?", schema=Person)]
    assert between == [None, None, None]  # the caller's code between items: no purpose
