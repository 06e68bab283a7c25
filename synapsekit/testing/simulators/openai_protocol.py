"""A local simulator of OpenAI's ``POST /v1/chat/completions`` (and Azure OpenAI's variant),
and of ``POST /v1/embeddings`` (Azure: ``/openai/deployments/{d}/embeddings``).

It rejects requests the way the real API does (auth, path, body checks) *before* consuming the
scripted queue, so a client bug shows up as the same 4xx the real service would return instead of
being masked by a scripted reply. Stream shapes follow captures/openai (see its README).

Run ``python -m synapsekit.testing.simulators.openai_protocol --port 0 --tokens 50`` to serve from
a separate
process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import re
import string
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .openai_checks import VENDORS, check_features
from .server import Reply, Request, Server, serve_main
from .wire import read_wire, replay

__all__ = [
    "OpenAISimulator",
    "capture",
    "check_body",
    "check_embeddings_body",
    "check_reasoning",
    "completion",
    "embedding_vector",
    "embeddings",
    "error",
    "malformed",
    "stream_error_event",
    "text_stream",
    "token_count",
]

SSE_TYPE = "text/event-stream; charset=utf-8"
JSON_TYPE = "application/json"
ROLES = ("system", "user", "assistant", "tool", "developer")
DONE = b"data: [DONE]\n\n"
_AZURE_PATH = re.compile(r"/openai/deployments/[^/]+/(chat/completions|embeddings)")
EMBED_DIMENSIONS = 8
MAX_EMBED_INPUTS = 2048
_ALNUM = string.ascii_letters + string.digits


def _dumps(obj: Any, indent: int | None = None) -> bytes:
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators).encode()


def _event(obj: Any) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The modern usage object (captures/openai/stream_usage_details_obfuscation.sse)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class _Chunks:
    """Builds chunk events sharing one id/created/model, in the real API's field order."""

    def __init__(self, model: str, *, usage_field: bool = False, obfuscation: bool = True) -> None:
        rng = random.Random()
        self.rng = rng
        self.id = "chatcmpl-" + "".join(rng.choices(_ALNUM, k=29))
        self.created = int(time.time())
        self.model = model
        self.usage_field = usage_field
        self.obfuscation = obfuscation

    def chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": "fp_560af6e559",
            "choices": choices,
        }
        if self.usage_field or usage is not None:
            obj["usage"] = usage
        if self.obfuscation:
            obj["obfuscation"] = "".join(self.rng.choices(_ALNUM, k=self.rng.randint(3, 15)))
        return _event(obj)

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self.chunk([choice], **extra)

    def opening(self, tokens: Iterable[str]) -> list[bytes]:
        """The role chunk, then one content chunk per token."""
        first = self.delta({"role": "assistant", "content": "", "refusal": None})
        return [first, *(self.delta({"content": t}) for t in tokens)]


def completion(
    content: str,
    *,
    prompt_tokens: int = 10,
    completion_tokens: int = 1,
    model: str = "gpt-4o-mini",
    finish_reason: str = "stop",
) -> Reply:
    """A non-streaming ``chat.completion`` body shaped like captures/openai/nonstream_ok.json."""
    body = {
        "id": _Chunks(model).id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": _usage(prompt_tokens, completion_tokens),
        "service_tier": "default",
    }
    return Reply(200, {"content-type": JSON_TYPE}, _dumps(body, indent=2))


def _stream_options(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        return {}
    opts = body.get("stream_options") if isinstance(body, dict) else None
    return opts if isinstance(opts, dict) else {}


def _wants_stream(request: Request) -> bool:
    try:
        body = request.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("stream") is True


def text_stream(
    tokens: Sequence[str],
    *,
    prompt_tokens: int = 10,
    completion_tokens: int | None = None,
    model: str = "gpt-4o-mini",
    finish_reason: str = "stop",
    usage_in_final_chunk: bool = True,
    delay: float = 0.0,
    cut_after: int | None = None,
) -> Reply:
    """A realistic text stream: role chunk, one chunk per token, finish chunk, usage, ``[DONE]``.

    Usage is sent only if the request asked ``stream_options.include_usage`` (as the real API
    does): in an extra ``choices: []`` chunk, or with ``usage_in_final_chunk=False`` on the finish
    chunk (the Groq/DeepSeek/Cerebras placement). ``include_obfuscation: false`` drops the
    ``obfuscation`` field. A non-streaming request gets the same answer as one JSON completion,
    so one script serves both call styles. Variants are encoded once, on first use; change
    ``delay``/``cut_after`` through the arguments, not ``dataclasses.replace`` (the variants are
    chosen by ``Reply.adapt`` and would not see the change).
    """
    n_out = len(tokens) if completion_tokens is None else completion_tokens
    usage = _usage(prompt_tokens, n_out)
    variants: dict[tuple[bool, bool] | None, Reply] = {}

    def build(include_usage: bool, obfuscation: bool) -> Reply:
        c = _Chunks(model, usage_field=include_usage, obfuscation=obfuscation)
        events = c.opening(tokens)
        if include_usage and not usage_in_final_chunk:
            events.append(c.delta({}, finish_reason, usage=usage))
        else:
            events.append(c.delta({}, finish_reason))
            if include_usage:
                events.append(c.chunk([], usage=usage))
        events.append(DONE)
        return Reply(
            200, {"content-type": SSE_TYPE}, stream=events, delay=delay, cut_after=cut_after
        )

    def choose(request: Request) -> Reply:
        key: tuple[bool, bool] | None = None
        if _wants_stream(request):
            opts = _stream_options(request)
            key = (opts.get("include_usage") is True, opts.get("include_obfuscation") is not False)
        if key not in variants:
            variants[key] = (
                build(*key)
                if key is not None
                else completion(
                    "".join(tokens),
                    prompt_tokens=prompt_tokens,
                    completion_tokens=n_out,
                    model=model,
                    finish_reason=finish_reason,
                )
            )
        return variants[key]

    reply = build(False, True)
    variants[(False, True)] = reply
    reply.adapt = choose
    return reply


def capture(relpath: str, **faults: Any) -> Reply:
    """Replay a capture byte for byte (``delay``, ``cut_after``, ``headers``)."""
    return replay(relpath, SSE_TYPE, JSON_TYPE, **faults)


def _error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> bytes:
    error_obj = {"message": message, "type": type_, "param": param, "code": code}
    return _dumps({"error": error_obj}, indent=4)


_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    403: (
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
    ),
    404: (
        "The model `gpt-4o-mini` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def error(
    status: int,
    body: Mapping[str, Any] | str | bytes | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A JSON error reply. ``body``: a dict, a capture's relpath, raw bytes, or None for the
    OpenAI-shaped default of that status (401/429 use the real captured bodies)."""
    if isinstance(body, Mapping):
        data = _dumps(dict(body), indent=4)
    elif isinstance(body, str):
        data = read_wire(body)
    elif isinstance(body, bytes):
        data = body
    elif status in (401, 429):
        data = read_wire(f"openai/error_{status}.json")
    else:
        message, type_, code = _DEFAULT_ERRORS.get(
            status, (f"Simulated error {status}.", "server_error", None)
        )
        data = _error_body(message, type_, None, code)
    return Reply(status, {"content-type": JSON_TYPE, **(headers or {})}, data)


def stream_error_event(error_obj: Mapping[str, Any], *, tokens_before: Sequence[str] = ()) -> Reply:
    """A 200 stream carrying ``data: {"error": error_obj}`` after some tokens, with no ``[DONE]``:
    how OpenAI reports failures that happen after the response started."""
    c = _Chunks("gpt-4o-mini")
    inner = error_obj["error"] if set(error_obj) == {"error"} else error_obj
    events = c.opening(tokens_before) if tokens_before else []
    events.append(_event({"error": inner}))
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def malformed(tokens_before: Sequence[str] = ("Hi",)) -> Reply:
    """A 200 stream whose event after ``tokens_before`` is truncated JSON (then ``[DONE]``)."""
    c = _Chunks("gpt-4o-mini")
    bad = f'data: {{"id":"{c.id}","object":"chat.completion.chunk","choices":[{{"index":0,'
    events = [*c.opening(tokens_before), bad.encode() + b'"delta":{"content":"oops"\n\n', DONE]
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


# --- embeddings ----------------------------------------------------------------------------------


def embedding_vector(text: str, dimensions: int = EMBED_DIMENSIONS) -> list[float]:
    """The simulators' deterministic embedding of ``text``: ``dimensions`` values in [-1, 1]
    from SHA-256 of the text (every simulator's embeddings endpoint uses this one)."""
    digest = b""
    block = 0
    while len(digest) < 2 * dimensions:
        digest += hashlib.sha256(f"{block}:{text}".encode()).digest()
        block += 1
    return [
        round(int.from_bytes(digest[2 * i : 2 * i + 2], "big") / 32767.5 - 1.0, 6)
        for i in range(dimensions)
    ]


def token_count(text: str) -> int:
    """The simulators' token count of a text: its whitespace-separated words."""
    return len(text.split())


def embeddings(body: Mapping[str, Any]) -> Reply:
    """The ``/v1/embeddings`` answer for a valid body: one :func:`embedding_vector` per input,
    of ``dimensions`` values (default 8), as floats or base64 float32 (``encoding_format``);
    ``usage.prompt_tokens`` is the inputs' :func:`token_count`."""
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    size = body.get("dimensions") or EMBED_DIMENSIONS
    rows = []
    for i, text in enumerate(texts):
        vector: Any = embedding_vector(text, size)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        rows.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(token_count(t) for t in texts)
    answer = {"object": "list", "data": rows, "model": body.get("model") or "deployment",
              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return Reply(200, {"content-type": JSON_TYPE}, _dumps(answer))


def check_embeddings_body(body: Any, *, require_model: bool = True) -> Reply | None:
    """The real API's 400s for an embeddings body, or None if it is acceptable."""
    if not isinstance(body, dict):
        return _invalid(_BAD_JSON)
    model = body.get("model")
    if require_model and (not isinstance(model, str) or not model):
        return _invalid("you must provide a model parameter")
    texts = body.get("input")
    if texts is None:
        return _missing("input")
    items = texts if isinstance(texts, list) else [texts]
    if not items or len(items) > MAX_EMBED_INPUTS:
        return _invalid(f"'$.input' is invalid: between 1 and {MAX_EMBED_INPUTS} inputs are "
                        "accepted.", "input")
    for text in items:
        if not isinstance(text, str) or not text:
            return _invalid("'$.input' is invalid. Please check the API reference: "
                            "https://platform.openai.com/docs/api-reference.", "input")
    size = body.get("dimensions")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        return _invalid("Invalid value for 'dimensions'.", "dimensions")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return _invalid("Invalid value for 'encoding_format'.", "encoding_format")
    return None


# --- request validation ------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _invalid(
    message: str, param: str | None = None, code: str | None = None, status: int = 400
) -> Reply:
    return error(status, _error_body(message, "invalid_request_error", param, code))


def _missing(param: str) -> Reply:
    return _invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str, value: Any) -> Reply:
    message = (
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead."
    )
    return _invalid(message, param, "invalid_type")


_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
    "help center at help.openai.com.)"
)


def _check_message(i: int, msg: Any) -> Reply | None:
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        return _wrong_type(where, "an object", msg)
    role = msg.get("role")
    if role is None:
        return _missing(f"{where}.role")
    if role not in ROLES:
        allowed = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f", and '{ROLES[-1]}'"
        message = f"Invalid value: '{role}'. Supported values are: {allowed}."
        return _invalid(message, f"{where}.role", "invalid_value")
    content = msg.get("content")
    if content is None:
        # An assistant turn that only calls tools may omit content.
        if role == "assistant" and (msg.get("tool_calls") or msg.get("function_call")):
            return None
        return _missing(f"{where}.content")
    if not isinstance(content, (str, list)):
        return _wrong_type(f"{where}.content", "one of a string or array of objects", content)
    for j, part in enumerate(content if isinstance(content, list) else ()):
        if not isinstance(part, dict):
            return _wrong_type(f"{where}.content[{j}]", "an object", part)
        if not isinstance(part.get("type"), str):
            return _missing(f"{where}.content[{j}].type")
    if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
        return _missing(f"{where}.tool_call_id")
    return None


#: OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 families; gpt-5-chat is not one), kept
#: here apart from synapsekit's models.json so a test proves the request, not the table.
_REASONING = re.compile(r"(?:o1|o3|o4-mini)(?:-.*)?|gpt-5(?!-chat)(?:[.-].*)?")
#: Of those, the ones that refuse the sampling parameters outright; the others (o1, gpt-5)
#: accept only the default value 1.
_NO_SAMPLING_AT_ALL = re.compile(r"(?:o3|o4-mini)(?:-.*)?")


def check_reasoning(body: dict[str, Any], model: str) -> Reply | None:
    """The real API's 400s for what a reasoning model refuses (captures/openai/README):
    ``max_tokens`` and ``temperature`` / ``top_p`` (``unsupported_parameter``, or
    ``unsupported_value`` for a value but the default 1)."""
    if not _REASONING.fullmatch(model.lower()):
        return None
    if "max_tokens" in body:
        return _invalid(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter"
        )
    for param in ("temperature", "top_p"):
        if param not in body:
            continue
        if _NO_SAMPLING_AT_ALL.fullmatch(model.lower()):
            return _invalid(
                f"Unsupported parameter: '{param}' is not supported with this model.",
                param, "unsupported_parameter",
            )
        if body[param] != 1:
            return _invalid(
                f"Unsupported value: '{param}' does not support {body[param]!r} with this "
                "model. Only the default (1) value is supported.", param, "unsupported_value",
            )
    return None


def check_body(
    body: Any,
    *,
    require_model: bool = True,
    served_model: str | None = None,
    vendor: str = "openai",
) -> Reply | None:
    """The real API's 400s for a chat-completions body, or None if it is acceptable.
    ``served_model``: the model behind an Azure deployment (default: the body's model);
    ``vendor``: whose rules for tools, parts, structured output and reasoning
    (:mod:`.openai_checks`)."""
    if not isinstance(body, dict):
        return _invalid(_BAD_JSON)
    model = body.get("model")
    if require_model and model is None:
        return _invalid("you must provide a model parameter")
    if model is not None and not isinstance(model, str):
        return _wrong_type("model", "a string", model)
    if require_model and not model:
        return _invalid("you must provide a model parameter")
    messages = body.get("messages")
    if messages is None:
        return _missing("messages")
    if not isinstance(messages, list):
        return _wrong_type("messages", "an array", messages)
    if not messages:
        message = (
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead."
        )
        return _invalid(message, "messages", "empty_array")
    for i, msg in enumerate(messages):
        rejected = _check_message(i, msg)
        if rejected is not None:
            return rejected
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return _wrong_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    if options is not None:
        if stream is not True:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return _invalid(message, "stream_options")
        if not isinstance(options, dict):
            return _wrong_type("stream_options", "an object", options)
    served = served_model or model
    if isinstance(served, str):
        rejected = check_reasoning(body, served) if vendor == "openai" else None
        return rejected or check_features(body, served, vendor, _invalid)
    return None


def _azure_error(status: int, message: str) -> Reply:
    body = _dumps({"error": {"code": str(status), "message": message}})
    return Reply(status, {"content-type": JSON_TYPE}, body)


class OpenAISimulator(Server):
    """OpenAI chat completions on a local port; ``auth="azure"`` switches to Azure's URL layout
    (``/openai/deployments/{d}/chat/completions?api-version=…``) and ``api-key`` header."""

    def __init__(
        self,
        api_key: str = "sk-test-key",
        auth: str = "bearer",
        *,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        deployments: Mapping[str, str] | None = None,
        vendor: str = "openai",
    ) -> None:
        """``deployments`` (Azure): deployment name -> the model it serves, for the checks
        that depend on the model (a deployment not listed serves the model it is named).
        ``vendor``: which OpenAI-compatible API's request rules to enforce (Groq, DeepSeek,
        ...: tools, parts, structured output and reasoning values; see openai_checks)."""
        if auth not in ("bearer", "azure"):
            raise ValueError(f"auth must be 'bearer' or 'azure', not {auth!r}")
        if vendor not in VENDORS:
            raise ValueError(f"vendor must be one of {', '.join(VENDORS)}, not {vendor!r}")
        self.vendor = vendor
        super().__init__(host=host, port=port, record=record)
        self.api_key = api_key
        self.auth = auth
        self.deployments = dict(deployments or {})
        self.default: Reply = default or text_stream(
            ["Hello", ",", " world", "!"], prompt_tokens=12
        )
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """``base_url`` for ``openai.OpenAI`` (bearer) or ``azure_endpoint`` (azure)."""
        return self.base_url + "/v1" if self.auth == "bearer" else self.base_url

    def default_reply(self, request: Request) -> Reply:
        if request.path.endswith("/embeddings"):
            return embeddings(request.json())
        return self.default

    def reset(self) -> None:
        """Also restart request ids at ``req_1``."""
        super().reset()
        self._ids = itertools.count(1)

    def response_headers(self, request: Request, reply: Reply) -> Mapping[str, str]:
        return {"x-request-id": f"req_{next(self._ids)}"}

    def validate(self, request: Request) -> Reply | None:
        azure = self.auth == "azure"
        if azure:
            if not _AZURE_PATH.fullmatch(request.path) or "api-version" not in request.query:
                return _azure_error(404, "Resource not found")
        elif not request.path.endswith(("/chat/completions", "/v1/embeddings")):
            return _invalid(f"Invalid URL ({request.method} {request.path})", status=404)
        if request.method != "POST":
            if azure:
                return _azure_error(405, "Method not allowed")
            return _invalid(f"Invalid method for URL ({request.method} {request.path})", status=405)
        if azure and request.headers.get("api-key") != self.api_key:
            return error(401, "openai_compatible/azure/error_401.json")
        if not azure:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token.strip() != self.api_key:
                return error(401)
        try:
            body = request.json()
        except ValueError:
            return _invalid(_BAD_JSON)
        if request.path.endswith("/embeddings"):
            return check_embeddings_body(body, require_model=not azure)
        served = None
        if azure:
            deployment = request.path.split("/")[3]
            served = self.deployments.get(deployment, deployment)
        return check_body(body, require_model=not azure, served_model=served, vendor=self.vendor)


def bench_tool_call(fragments: int) -> Reply:
    """``--tool-fragments``: the benchmarks' call, its arguments in ``fragments`` pieces."""
    from synapsekit.testing.simulators.openai_streams import long_tool_call

    return long_tool_call(fragments)


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: OpenAISimulator(
            a.api_key, a.auth, default=text_stream(tokens, delay=a.delay), port=a.port,
            record=False,
        ),
        argv,
        api_key="sk-test-key",
        extra=lambda parser: parser.add_argument(
            "--auth", choices=("bearer", "azure"), default="bearer"
        ),
        tool=bench_tool_call,
    )


if __name__ == "__main__":
    main()
