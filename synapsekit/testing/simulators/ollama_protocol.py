"""A local simulator of Ollama's native ``POST /api/chat`` (NDJSON streaming), and of
``POST /api/embed`` (a list of inputs in, ``embeddings`` and ``prompt_eval_count`` out).

It checks requests the way the Ollama server does (server/routes.go): path, JSON body,
``model`` required, ``messages`` a list of role/content objects, and a 404
``model "x" not found, try pulling it first`` for a model that is not pulled (the set of
pulled models is configurable). Streaming is the default, as in the real API: one JSON
object per line (``application/x-ndjson``), the last with ``done: true``, ``done_reason``
and the usage/timing fields (captures/ollama, see its README). With ``api_key`` set it
acts like ollama.com and wants ``Authorization: Bearer <key>``.

Beyond text, as the server's request types and handlers do (api/types.go, server/routes.go):
``images`` must be base64 (Go's ``[]byte`` JSON decoding: ``illegal base64 data at input
byte N``); an assistant's ``tool_calls[].function.arguments`` must be an object (a JSON
string does not unmarshal into ``ToolCallFunctionArguments``); ``tools`` are ``{"type":
"function", "function": {"name", ...}}`` with an object ``parameters`` schema; ``format`` is
``""``, ``"json"`` or a JSON Schema object (``invalid format``); ``think`` is a bool or
``"high"`` / ``"medium"`` / ``"low"`` (``invalid think value``), and on (true or a level)
only to the models in ``thinking`` (``"<model>" does not support thinking``: the server adds
the thinking capability to the ones it checks when ``think`` is on), levels only to
``gpt-oss``; images
only to the models in ``vision`` (the message for that one is illustrative).

Run ``python -m synapsekit.testing.simulators.ollama_protocol --port 0 --tokens 50`` to serve from a
separate process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .openai_protocol import embedding_vector, token_count
from .server import BENCH_TOOL, Reply, Request, Server, bench_tool_arguments, serve_main
from .wire import read_wire

__all__ = [
    "OllamaSimulator",
    "capture",
    "embeddings",
    "error",
    "malformed",
    "stream_error",
    "text_stream",
    "tool_stream",
]

NDJSON_TYPE = "application/x-ndjson"
JSON_TYPE = "application/json; charset=utf-8"
ROLES = ("system", "user", "assistant", "tool")
PATH = "/api/chat"
EMBED_PATH = "/api/embed"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _line(obj: Any) -> bytes:
    return _dumps(obj) + b"\n"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _part(model: str, content: str, thinking: str | None = None) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    return _line({"model": model, "created_at": _now(), "message": message, "done": False})


def _final(model: str, done_reason: str, prompt_eval_count: int | None, eval_count: int) -> bytes:
    obj: dict[str, Any] = {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        "done_reason": done_reason,
        "done": True,
        "total_duration": 182242375,
        "load_duration": 41295167,
    }
    if prompt_eval_count is not None:  # omitted by Ollama when the whole prompt was cached
        obj["prompt_eval_count"] = prompt_eval_count
        obj["prompt_eval_duration"] = 24573166
    obj["eval_count"] = eval_count
    obj["eval_duration"] = 115959084
    return _line(obj)


def text_stream(
    tokens: Sequence[str],
    *,
    prompt_eval_count: int | None = 10,
    eval_count: int | None = None,
    thinking: Sequence[str] = (),
    model: str = "llama3.2",
    done_reason: str = "stop",
    done: bool = True,
    delay: float = 0.0,
    cut_after: int | None = None,
) -> Reply:
    """One line per ``thinking`` piece (``message.thinking``), one per token, then the
    ``done: true`` line with the counts (``done=False`` leaves it out: a body that ends
    early but cleanly). ``cut_after=N`` drops the connection after N lines."""
    n_out = len(thinking) + len(tokens) if eval_count is None else eval_count
    lines = [_part(model, "", thinking=t) for t in thinking]
    lines += [_part(model, t) for t in tokens]
    if done:
        lines.append(_final(model, done_reason, prompt_eval_count, n_out))
    return Reply(200, {"content-type": NDJSON_TYPE}, stream=lines, delay=delay,
                 cut_after=cut_after)


def tool_stream(
    calls: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    thinking: Sequence[str] = (),
    model: str = "llama3.2",
    prompt_eval_count: int = 169,
    eval_count: int = 15,
) -> Reply:
    """Like captures/ollama/stream_tool_call.ndjson: ``thinking`` lines, one line with
    every call (``function.name`` / ``function.arguments`` object), then the ``done`` line
    (``done_reason: stop``, as Ollama sends it after tool calls)."""
    lines = [_part(model, "", thinking=t) for t in thinking]
    message = {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": name, "arguments": dict(arguments)}} for name, arguments in calls
    ]}
    lines.append(_line({"model": model, "created_at": _now(), "message": message,
                        "done": False}))
    lines.append(_final(model, "stop", prompt_eval_count, eval_count))
    return Reply(200, {"content-type": NDJSON_TYPE}, stream=lines)


def _as_chat(raw: bytes) -> bytes:
    """An ``/api/generate`` line (``"response": "..."``) re-shaped as an ``/api/chat`` line;
    any other line (chat lines, ``{"error": ...}``) is returned byte for byte."""
    obj = json.loads(raw)
    if "response" not in obj:
        return raw
    text = obj.pop("response")
    chat: dict[str, Any] = {}
    for key, value in obj.items():
        chat[key] = value
        if key == "created_at":
            chat["message"] = {"role": "assistant", "content": text}
    return _line(chat)


def capture(
    relpath: str,
    *,
    delay: float = 0.0,
    cut_after: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Replay a capture: ``.ndjson`` one piece per line, ``.json`` whole. Lines of the
    ``/api/generate`` captures are re-shaped as ``/api/chat`` lines (``response`` becomes
    ``message.content``); chat lines and error lines are sent byte for byte."""
    data = read_wire(relpath)
    if relpath.endswith(".json"):
        return Reply(200, {"content-type": JSON_TYPE, **(headers or {})}, data, delay=delay)
    if not relpath.endswith(".ndjson"):
        raise ValueError(f"capture() replays .ndjson or .json files, not {relpath!r}")
    lines = [_as_chat(line) for line in data.splitlines(keepends=True) if line.strip()]
    return Reply(200, {"content-type": NDJSON_TYPE, **(headers or {})}, stream=lines,
                 delay=delay, cut_after=cut_after)


def error(
    status: int,
    body: Mapping[str, Any] | str | bytes | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A JSON error reply (``{"error": "..."}``, Ollama's one shape). ``body``: a dict, a
    capture's relpath, raw bytes, or None for the captured/documented body of that status."""
    if isinstance(body, Mapping):
        data = _dumps(dict(body))
    elif isinstance(body, str):
        data = read_wire(body)
    elif isinstance(body, bytes):
        data = body
    elif status == 401:
        data = read_wire("ollama/error_401.json")
    elif status == 404:
        data = read_wire("ollama/error_404_model_not_found.json")
    elif status == 500:
        data = read_wire("ollama/error_generic_docs.json")
    elif status == 429:
        data = _dumps({"error": "too many requests"})  # no 429 body is documented
    else:
        data = _dumps({"error": f"simulated error {status}"})
    return Reply(status, {"content-type": JSON_TYPE, **(headers or {})}, data)


def stream_error(tokens_before: Sequence[str] = (), model: str = "llama3.2") -> Reply:
    """A 200 stream whose line after ``tokens_before`` is the documented mid-stream error
    line (the last line of captures/ollama/stream_error_midstream.ndjson, verbatim)."""
    error_line = read_wire("ollama/stream_error_midstream.ndjson").splitlines(keepends=True)[-1]
    lines = [_part(model, t) for t in tokens_before] + [error_line]
    return Reply(200, {"content-type": NDJSON_TYPE}, stream=lines)


def malformed(tokens_before: Sequence[str] = ("Hi",), model: str = "llama3.2") -> Reply:
    """A 200 stream whose line after ``tokens_before`` is truncated JSON."""
    lines = [_part(model, t) for t in tokens_before]
    lines.append(b'{"model":"' + model.encode() + b'","message":{"role":"assis\n')
    return Reply(200, {"content-type": NDJSON_TYPE}, stream=lines)


def embeddings(body: Mapping[str, Any]) -> Reply:
    """The ``/api/embed`` answer for a valid body: one deterministic vector per input
    (``dimensions`` values, default 8) and the inputs' token count as ``prompt_eval_count``."""
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    size = body.get("dimensions") or 8
    answer = {
        "model": body["model"],
        "embeddings": [embedding_vector(t, size) for t in texts],
        "total_duration": 14143917,
        "load_duration": 1019500,
        "prompt_eval_count": sum(token_count(t) for t in texts),
    }
    return Reply(200, {"content-type": JSON_TYPE}, _dumps(answer))


def _check_embed(body: dict[str, Any]) -> Reply | None:
    texts = body.get("input")
    items = texts if isinstance(texts, list) else [texts]
    if not all(isinstance(t, str) for t in items):
        return _bad("invalid input type")
    if not items or not all(items):
        return _bad("input is empty")
    size = body.get("dimensions")
    if size is not None and (not isinstance(size, int) or size < 1):
        return _bad("json: cannot unmarshal into Go struct field EmbedRequest.dimensions")
    return None


# --- request validation ------------------------------------------------------------------------


def _bad(message: str, status: int = 400) -> Reply:
    return Reply(status, {"content-type": JSON_TYPE}, _dumps({"error": message}))


THINK_LEVELS = ("high", "medium", "low")


def _check_message(msg: dict[str, Any]) -> Reply | None:
    images = msg.get("images")
    if images is not None:
        if not isinstance(images, list):
            return _bad("json: cannot unmarshal into Go struct field Message.messages.images")
        for image in images:
            if not isinstance(image, str):
                return _bad("json: cannot unmarshal into Go struct field Message.messages."
                            "images of type []uint8")
            try:
                base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                return _bad("illegal base64 data at input byte 0")
    calls = msg.get("tool_calls")
    if calls is not None:
        if msg.get("role") != "assistant" or not isinstance(calls, list):
            return _bad("json: cannot unmarshal into Go struct field Message.messages.tool_calls")
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                return _bad("json: cannot unmarshal into Go struct field ToolCall.messages."
                            "tool_calls.function")
            if not isinstance(function.get("arguments", {}), dict):
                kind = type(function["arguments"]).__name__.replace("str", "string")
                return _bad(f"json: cannot unmarshal {kind} into Go struct field "
                            "ToolCallFunction.messages.tool_calls.function.arguments of type "
                            "api.ToolCallFunctionArguments")
    name = msg.get("tool_name")
    if name is not None and not isinstance(name, str):
        return _bad("json: cannot unmarshal into Go struct field Message.messages.tool_name")
    return None


def _check_tools(tools: Any) -> Reply | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _bad("json: cannot unmarshal into Go struct field ChatRequest.tools")
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type", "function") != "function":
            return _bad("json: cannot unmarshal into Go struct field ChatRequest.tools")
        if not isinstance(function.get("name"), str) or not function["name"]:
            return _bad("invalid tool: function name is required")
        parameters = function.get("parameters")
        if parameters is not None and (
            not isinstance(parameters, dict) or parameters.get("type", "object") != "object"
            or not isinstance(parameters.get("properties", {}), dict)
        ):
            return _bad("json: cannot unmarshal into Go struct field ToolFunction.tools."
                        "function.parameters")
    return None


def _check_format(body: dict[str, Any]) -> Reply | None:
    fmt = body.get("format")
    if fmt is None or fmt in ("", "json") or isinstance(fmt, dict):
        return None
    shown = json.dumps(fmt)
    return _bad(f'invalid format: {json.dumps(shown)}; expected "json" or a valid JSON Schema')


def _canonical(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaSimulator(Server):
    """Ollama on a local port; ``models`` are the pulled models (``llama3.2`` and
    ``llama3.2:latest`` are the same model, as in Ollama)."""

    def __init__(
        self,
        models: Sequence[str] = ("llama3.2", "qwen3:0.6b", "gemma4", "gpt-oss:20b"),
        *,
        thinking: Sequence[str] = ("qwen3:0.6b", "gpt-oss:20b"),
        vision: Sequence[str] = ("gemma4",),
        api_key: str | None = None,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        super().__init__(host=host, port=port, record=record)
        self.models = {_canonical(m) for m in models}
        self.thinking = {_canonical(m) for m in thinking}
        self.vision = {_canonical(m) for m in vision}
        self.api_key = api_key
        self.default: Reply = default or text_stream(["Hello", ",", " world", "!"],
                                              prompt_eval_count=12)

    @property
    def url(self) -> str:
        """``host`` for ``ollama.AsyncClient``."""
        return self.base_url

    def default_reply(self, request: Request) -> Reply:
        if request.path == EMBED_PATH:
            return embeddings(request.json())
        if request.json().get("stream") is False:
            return capture("ollama/nonstream_ok.json")
        return self.default

    def validate(self, request: Request) -> Reply | None:
        if request.path not in (PATH, EMBED_PATH) or request.method != "POST":
            return Reply(404, {"content-type": "text/plain"}, b"404 page not found")
        if self.api_key is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token.strip() != self.api_key:
                return error(401)
        if not request.body:
            return _bad("missing request body")
        try:
            body = request.json()
        except ValueError as exc:
            return _bad(f"invalid character in JSON body: {exc}")
        if not isinstance(body, dict):
            return _bad("json: cannot unmarshal into Go value of type api.ChatRequest")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _bad("model is required")
        if request.path == EMBED_PATH:
            rejected = _check_embed(body)
            if rejected is None and _canonical(model) not in self.models:
                rejected = error(404, {"error": f'model "{model}" not found, try pulling it first'})
            return rejected
        messages = body.get("messages")
        if messages is not None and not isinstance(messages, list):
            return _bad("json: cannot unmarshal into Go struct field ChatRequest.messages")
        for i, msg in enumerate(messages or ()):
            if not isinstance(msg, dict) or msg.get("role") not in ROLES:
                return _bad(f"messages[{i}]: invalid role")
            if not isinstance(msg.get("content", ""), str):
                return _bad(f"json: cannot unmarshal into messages[{i}].content of type string")
            rejected = _check_message(msg)
            if rejected is not None:
                return rejected
        if not isinstance(body.get("stream", True), bool):
            return _bad("json: cannot unmarshal into Go struct field ChatRequest.stream")
        rejected = _check_tools(body.get("tools")) or _check_format(body)
        if rejected is not None:
            return rejected
        think = body.get("think")
        if think is not None and not isinstance(think, bool) and think not in THINK_LEVELS:
            return _bad(f'invalid think value: "{think}" (must be "high", "medium", "low", '
                        "true, or false)")
        if _canonical(model) not in self.models:
            return error(404, {"error": f'model "{model}" not found, try pulling it first'})
        if think not in (None, False) and _canonical(model) not in self.thinking:
            return _bad(f'"{model}" does not support thinking')
        if isinstance(think, str) and not model.startswith("gpt-oss"):
            return _bad(f'"{model}" does not support thinking levels; use true or false')
        if any(m.get("images") for m in messages or ()) and _canonical(model) not in self.vision:
            return _bad(f'"{model}" does not support image input')
        return None


def bench_tool_call(fragments: int) -> Reply:
    """``--tool-fragments``: the benchmarks' call (arguments of ``4 * fragments``
    characters) the way Ollama streams calls: whole, on one line."""
    arguments, _ = bench_tool_arguments(fragments)
    return tool_stream([(BENCH_TOOL, arguments)])


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: OllamaSimulator(
            default=text_stream(tokens, delay=a.delay), port=a.port, record=False
        ),
        argv,
        tool=bench_tool_call,
    )


if __name__ == "__main__":
    main()
