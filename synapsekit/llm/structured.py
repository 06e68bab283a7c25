"""Structured output: a validated object from the model (``llm.generate_object``), partial
objects as its JSON arrives (``llm.stream_object``), and SynapseKit's
``generate_structured``.

The schema is a pydantic model (the answer is an instance of it), a JSON Schema dict (the
answer is a dict checked against it), or a dataclass / TypedDict (validated by pydantic).
It goes to the provider as ``LLMConfig.response_schema`` (an
:class:`~synapsekit.llm.types.OutputSchema`), so each provider uses its own native mode
(OpenAI ``response_format`` json_schema, Gemini ``responseSchema``, Ollama ``format``,
Anthropic / Bedrock a forced tool, ...) -- and every provider's answer is read the same
way, from ``response.text``.

An answer that is not valid JSON, or does not match the schema, is re-asked up to
``retries`` times: the model's answer goes back in the history, followed by a user turn
listing exactly what failed (the validation errors, one per line). Every attempt is a
full call (cache, limiter, retries, tracer); its trace record says which attempt it was
(purpose ``"structured"``, then ``"structured_retry"`` with ``attempt`` 2, 3, ...). When
none is valid: :class:`~synapsekit.errors.StructuredOutputError` with the last text, its
errors and the number of attempts.

pydantic is imported only for a schema that needs it (every provider SDK but boto3
depends on it already); a JSON Schema dict is checked with ``jsonschema``, which is not a
core dependency: without it, a dict schema is a :class:`MissingDependencyError` naming
``pip install "synapsekit[structured]"``, before any request.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from synapsekit._lazy import lazy_pattern
from synapsekit.errors import ConfigError, MissingDependencyError, StructuredOutputError
from synapsekit.llm.types import Message, MessagesInput, OutputSchema, build_messages

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM

__all__ = [
    "generate_object",
    "generate_structured",
    "output_schema",
    "reask_message",
    "stream_object",
]

#: At most this many validation errors are told to the model (and kept in the error).
MAX_ERRORS = 10
_FENCE = lazy_pattern(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?\s*```\s*$", re.S)
_FENCE_OPEN = lazy_pattern(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n")
#: A number at the end of a partial answer may still be arriving ("4" of "42"): cut it.
_TRAILING_NUMBER = lazy_pattern(r"-?\d*\.?\d*(?:[eE][+-]?\d*)?\s*$")
_NAME_CHARS = lazy_pattern(r"[^A-Za-z0-9_-]+")


async def generate_object(
    llm: BaseLLM,
    messages: MessagesInput,
    *,
    schema: Any,
    retries: int = 2,
    **overrides: Any,
) -> Any:
    """A validated object of ``schema`` (see the module docstring): a pydantic model's
    instance, or a dict matching a JSON Schema. Re-asks up to ``retries`` times when the
    answer is invalid; raises :class:`~synapsekit.errors.StructuredOutputError` when every
    attempt failed."""
    from synapsekit.observability.purpose import call_purpose

    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries: must be an int >= 0, not {retries!r}")
    spec = _Spec.of(schema)
    history: list[Message] = build_messages(messages, None)
    text, errors = "", ["no answer"]
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        purpose = "structured" if attempt == 1 else "structured_retry"
        with call_purpose(purpose, attempt=attempt):
            response = await llm.respond(history, response_schema=spec.output, **overrides)
        text = response.text
        value, errors = spec.parse(text)
        if not errors:
            return value
        if response.finish_reason == "length":
            errors = [*errors, "the answer was cut at max_tokens (finish_reason 'length')"]
        if attempt < attempts:
            history.append(response.message)
            history.append({"role": "user", "content": reask_message(errors)})
    raise StructuredOutputError(
        f"No valid {spec.output.name} after {attempts} attempt(s): {errors[0]}",
        text=text,
        errors=errors,
        attempts=attempts,
        provider=llm.provider,
        model=llm.model,
    )


async def stream_object(
    llm: BaseLLM, messages: MessagesInput, *, schema: Any, **overrides: Any
) -> AsyncIterator[Any]:
    """Partial objects (dicts) as the answer's JSON arrives -- each one yielded once, when
    it differs from the one before (an empty one is not yielded); a string still arriving
    shows as far as it has come, a number only once whole -- then, last, the validated
    object (a model instance, or the dict). One attempt: an invalid answer raises
    :class:`~synapsekit.errors.StructuredOutputError` (no re-ask; use
    :func:`generate_object` for that)."""
    from synapsekit.observability.purpose import call_purpose

    spec = _Spec.of(schema)
    partial = _partial_parser()
    history: list[Message] = build_messages(messages, None)
    pieces: list[str] = []
    last: Any = None
    chunks = llm.stream_chunks(history, response_schema=spec.output, **overrides)
    # The purpose is set around each step of the call, never across a yield: the caller's
    # own code between two partials (another call, say) is not marked "structured".
    try:
        while True:
            with call_purpose("structured", attempt=1):
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
            if not chunk.text:
                continue
            pieces.append(chunk.text)
            current = partial("".join(pieces))
            if current and current != last:  # nothing yet ({} of '{"na') is not a partial
                last = current
                yield current
    finally:
        with call_purpose("structured", attempt=1):
            await chunks.aclose()
    text = "".join(pieces)
    value, errors = spec.parse(text)
    if errors:
        raise StructuredOutputError(
            f"No valid {spec.output.name}: {errors[0]}",
            text=text,
            errors=errors,
            attempts=1,
            provider=llm.provider,
            model=llm.model,
        )
    yield value


async def generate_structured(
    llm: BaseLLM, prompt: MessagesInput, schema: Any, max_retries: int = 3
) -> Any:
    """SynapseKit's name for :func:`generate_object`: up to ``max_retries`` re-asks."""
    return await generate_object(llm, prompt, schema=schema, retries=max_retries)


def output_schema(schema: Any) -> OutputSchema:
    """The :class:`~synapsekit.llm.types.OutputSchema` a schema is sent as: named after
    the model class or the JSON Schema's ``title``, described by its ``description``."""
    return _Spec.of(schema).output


def reask_message(errors: list[str]) -> str:
    """The user turn that re-asks after an invalid answer (exactly what failed)."""
    listed = "\n".join(f"- {e}" for e in errors)
    return (
        "Your answer does not match the required JSON schema:\n"
        f"{listed}\n"
        "Answer again with only the corrected JSON object."
    )


# ----------------------------------------------------------------- schemas


class _Spec:
    """A schema as sent (``output``) and how an answer is checked against it
    (``validate``: the JSON value -> the object, or the errors). A slotted class, not a
    dataclass: it is built at import, and ``generate_structured`` should stay cheap."""

    __slots__ = ("output", "validate")

    def __init__(
        self, output: OutputSchema, validate: Callable[[Any], tuple[Any, list[str]]]
    ) -> None:
        self.output = output
        self.validate = validate

    @classmethod
    def of(cls, schema: Any) -> _Spec:
        if isinstance(schema, Mapping):
            return cls._json_schema(schema)
        if isinstance(schema, type):
            if hasattr(schema, "model_json_schema") and hasattr(schema, "model_validate"):
                return cls._pydantic(schema)
            return cls._adapted(schema)
        raise ConfigError(
            f"schema: {schema!r} is not a schema; give a pydantic model class, a JSON "
            "Schema dict, or a dataclass / TypedDict"
        )

    @classmethod
    def _pydantic(cls, model: Any) -> _Spec:
        from pydantic import ValidationError

        body = dict(model.model_json_schema())

        def validate(value: Any) -> tuple[Any, list[str]]:
            try:
                return model.model_validate(value), []
            except ValidationError as exc:
                return None, _pydantic_errors(exc)

        return cls(_output(model.__name__, body), validate)

    @classmethod
    def _adapted(cls, kind: type) -> _Spec:
        try:
            from pydantic import TypeAdapter, ValidationError
        except ImportError:
            raise MissingDependencyError(
                "pydantic", "structured", feature=f"A {kind.__name__} schema"
            ) from None
        try:
            adapter: Any = TypeAdapter(kind)
            body = dict(adapter.json_schema())
        except Exception as exc:  # pydantic's schema errors: not one public class
            raise ConfigError(f"schema: {kind.__name__} has no JSON Schema ({exc})") from None

        def validate(value: Any) -> tuple[Any, list[str]]:
            try:
                return adapter.validate_python(value), []
            except ValidationError as exc:
                return None, _pydantic_errors(exc)

        return cls(_output(kind.__name__, body), validate)

    @classmethod
    def _json_schema(cls, schema: Mapping[str, Any]) -> _Spec:
        try:
            jsonschema: Any = importlib.import_module("jsonschema")
        except ImportError:
            raise MissingDependencyError(
                "jsonschema", "structured", feature="A JSON Schema dict schema"
            ) from None
        body = dict(schema)
        validator_class = jsonschema.validators.validator_for(body)
        try:
            validator_class.check_schema(body)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"schema: not a valid JSON Schema: {exc.message}") from None
        validator = validator_class(body)

        def validate(value: Any) -> tuple[Any, list[str]]:
            found = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
            return value, [f"{_path(e.absolute_path)}: {e.message}" for e in found]

        return cls(_output(str(body.get("title") or "output"), body), validate)

    def parse(self, text: str) -> tuple[Any, list[str]]:
        """The answer's object, or what is wrong with it (at most MAX_ERRORS lines)."""
        body = _unfenced(text)
        if not body.strip():
            return None, ["the answer is empty; expected a JSON object"]
        import json  # with the first answer, not with the module

        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            return None, [
                f"the answer is not valid JSON: {exc.msg} (line {exc.lineno}, "
                f"column {exc.colno})"
            ]
        if self.output.strict:
            value = _without_strict_nulls(value, self.output.schema, self.output.schema)
        result, errors = self.validate(value)
        if len(errors) > MAX_ERRORS:
            errors = [*errors[:MAX_ERRORS], f"(and {len(errors) - MAX_ERRORS} more)"]
        return result, errors


def _without_strict_nulls(value: Any, schema: Any, root: Mapping[str, Any]) -> Any:
    """``value`` without the ``null`` s of optional properties. A strict mode (OpenAI's)
    must make every property required, so providers send optional ones as nullable and the
    model answers ``null`` for "not given"; validated against the caller's own schema
    (``nick: str = "x"``), that null would fail. Dropping the key gives the default."""
    if isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part) if isinstance(target, Mapping) else None
            schema = target
    if not isinstance(schema, Mapping):
        return value
    if isinstance(value, dict) and isinstance(schema.get("properties"), Mapping):
        required = set(schema.get("required") or ())
        properties = schema["properties"]
        return {
            key: _without_strict_nulls(item, properties.get(key), root)
            for key, item in value.items()
            if not (item is None and key in properties and key not in required)
        }
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_without_strict_nulls(item, schema["items"], root) for item in value]
    return value


def _output(name: str, body: dict[str, Any]) -> OutputSchema:
    clean = _NAME_CHARS().sub("_", name).strip("_")[:64] or "output"
    description = body.get("description")
    return OutputSchema(
        clean, body, description=description if isinstance(description, str) else ""
    )


def _pydantic_errors(exc: Any) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        line = f"{_path(error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        given = error.get("input")
        if error.get("type") != "missing" and not isinstance(given, (dict, list)):
            shown = repr(given)
            line += f" (got {shown if len(shown) <= 40 else shown[:37] + '...'})"
        lines.append(line)
    return lines


def _path(location: Any) -> str:
    return ".".join(str(p) for p in location) or "(root)"


def _unfenced(text: str) -> str:
    """The answer without a Markdown code fence around it (```json ... ```)."""
    match = _FENCE().match(text)
    return match.group(1) if match else text


def _partial_parser() -> Callable[[str], Any]:
    """Text of an unfinished JSON answer -> the object so far (None before there is one)."""
    try:
        from pydantic_core import from_json
    except ImportError:
        raise MissingDependencyError(
            "pydantic", "structured", feature="stream_object"
        ) from None
    mode: Any = "trailing-strings"
    try:
        from_json('{"a": "b', allow_partial=mode)
    except (TypeError, ValueError):  # an older pydantic-core: strings only once whole
        mode = True

    def parse(text: str) -> Any:
        body = _FENCE_OPEN().sub("", text, count=1).rstrip().removesuffix("```")
        body = _TRAILING_NUMBER().sub("", body) if body[-1:].isdigit() else body
        if not body.strip():
            return None
        try:
            return from_json(body, allow_partial=mode)
        except ValueError:
            return None

    return parse
