"""A local simulator of Ollama's native ``POST /api/chat`` (NDJSON streaming), and of
``POST /api/embed`` (a list of inputs in, ``embeddings`` and ``prompt_eval_count`` out).

It checks requests the way the Ollama server does (server/routes.go): path, JSON body,
``model`` required, ``messages`` a list of role/content objects, and a 404
``model "x" not found, try pulling it first`` for a model that is not pulled (the set of
pulled models is configurable). Streaming is the default, as in the real API: one JSON
object per line (``application/x-ndjson``), the last with ``done: true``, ``done_reason``
and the usage/timing fields (tests/wire/ollama, see its README). With ``api_key`` set it
acts like ollama.com and wants ``Authorization: Bearer <key>``.

Run ``python -m tests.simulators.ollama_protocol --port 0 --tokens 50`` to serve from a
separate process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .openai_protocol import embedding_vector, token_count
from .server import Reply, Request, Server, serve_main
from .wire import read_wire

__all__ = [
    "OllamaSimulator",
    "capture",
    "embeddings",
    "error",
    "malformed",
    "stream_error",
    "text_stream",
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
    """Replay a tests/wire file: ``.ndjson`` one piece per line, ``.json`` whole. Lines of the
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
    tests/wire relpath, raw bytes, or None for the captured/documented body of that status."""
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
    line (the last line of tests/wire/ollama/stream_error_midstream.ndjson, verbatim)."""
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


def _canonical(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaSimulator(Server):
    """Ollama on a local port; ``models`` are the pulled models (``llama3.2`` and
    ``llama3.2:latest`` are the same model, as in Ollama)."""

    def __init__(
        self,
        models: Sequence[str] = ("llama3.2", "qwen3:0.6b", "gemma4"),
        *,
        api_key: str | None = None,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        super().__init__(host=host, port=port, record=record)
        self.models = {_canonical(m) for m in models}
        self.api_key = api_key
        self.default = default or text_stream(["Hello", ",", " world", "!"],
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
        if not isinstance(body.get("stream", True), bool):
            return _bad("json: cannot unmarshal into Go struct field ChatRequest.stream")
        if _canonical(model) not in self.models:
            return error(404, {"error": f'model "{model}" not found, try pulling it first'})
        return None


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: OllamaSimulator(
            default=text_stream(tokens, delay=a.delay), port=a.port, record=False
        ),
        argv,
    )


if __name__ == "__main__":
    main()
