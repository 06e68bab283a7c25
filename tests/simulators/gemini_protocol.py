"""A local simulator of the Gemini API's ``POST /v1beta/models/{model}:streamGenerateContent``,
and of ``:batchEmbedContents`` (at most 100 requests; ``{"embeddings": [{"values": [...]}]}``).

Shapes follow tests/wire/gemini (see its README): SSE with CRLF line ends, one ``data:`` line per
``GenerateContentResponse``, no ``event:`` lines and no terminator; ``usageMetadata`` cumulative on
every chunk; errors as ``google.rpc.Status`` bodies. An invalid key is answered the way Google
does: HTTP **400** ``API_KEY_INVALID`` (the captured body, its DebugInfo echoing the key sent), a
missing key 403. Requests are checked before the scripted queue is consumed (path, ``alt=sse``,
key, JSON field names, ``contents`` roles and parts), so a client bug shows up as the 4xx the real
service would return. Only the ``alt=sse`` form is served (the SDK always asks for it).

Run ``python -m tests.simulators.gemini_protocol --port 0 --tokens 50`` to serve from a separate
process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .openai_protocol import embedding_vector
from .server import Reply, Request, Server, serve_main
from .wire import read_wire, replay

__all__ = [
    "GeminiSimulator",
    "bad_key",
    "blocked_prompt",
    "camel",
    "capture",
    "check_embed_body",
    "embeddings",
    "error",
    "malformed",
    "rate_limited",
    "stream_error_event",
    "text_stream",
]

SSE_TYPE = "text/event-stream"
JSON_TYPE = "application/json; charset=UTF-8"
_PATH = re.compile(
    r"/(v1beta|v1)/models/([^/:]+):"
    r"(streamGenerateContent|generateContent|batchEmbedContents)"
)
_EMBED = "batchEmbedContents"
MAX_EMBED_REQUESTS = 100
TASK_TYPES = (
    "TASK_TYPE_UNSPECIFIED", "RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY",
    "CLASSIFICATION", "CLUSTERING", "QUESTION_ANSWERING", "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
)
_TOP_LEVEL = {
    "contents", "systemInstruction", "generationConfig", "safetySettings", "tools",
    "toolConfig", "cachedContent", "serviceTier", "store", "model",
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


def camel(obj: Any) -> Any:
    """``obj`` with every key in lowerCamelCase. The API reads proto JSON, which accepts a
    field's original snake_case name too (the SDK sends nested configs that way)."""
    if isinstance(obj, dict):
        return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k): camel(v)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [camel(v) for v in obj]
    return obj


def _dumps(obj: Any, indent: int | None = None) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=indent).encode()


def _event(obj: Any) -> bytes:
    # The captured streams use ", " / ": " separators and CRLF line ends.
    return b"data: " + _dumps(obj) + b"\r\n\r\n"


def _usage(prompt: int, candidates: int, thoughts: int = 0, cached: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = prompt + candidates + thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _chunk(
    parts: list[dict[str, Any]], usage: dict[str, Any], model: str, finish: str | None = None
) -> bytes:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return _event({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                   "responseId": "sim-0J-HaJetAqv0jrEPwu"})


def text_stream(
    tokens: Sequence[str],
    *,
    prompt_tokens: int = 7,
    candidates_tokens: int | None = None,
    thoughts: Sequence[str] = (),
    thoughts_tokens: int = 0,
    cached_tokens: int = 0,
    finish_reason: str | None = "STOP",
    model: str = "gemini-2.5-flash",
    delay: float = 0.0,
    cut_after: int | None = None,
) -> Reply:
    """One chunk per thought summary (``"thought": true``), then one per token.

    Usage rides on every chunk and grows as the real API's does (cumulative, so a client that
    sums it is wrong by a lot); the last chunk carries ``finish_reason`` and the final counts:
    ``candidates_tokens`` (default: one per token), ``thoughts_tokens``, ``cached_tokens``.
    ``finish_reason=None`` ends the body without one, as a broken stream would.
    """
    n_out = len(tokens) if candidates_tokens is None else candidates_tokens
    events = [
        _chunk([{"text": t, "thought": True}], _usage(prompt_tokens, 0, thoughts_tokens,
                                                       cached_tokens), model)
        for t in thoughts
    ]
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        usage = _usage(prompt_tokens, n_out if last else i + 1, thoughts_tokens, cached_tokens)
        events.append(_chunk([{"text": token}], usage, model, finish_reason if last else None))
    if not tokens:
        usage = _usage(prompt_tokens, n_out, thoughts_tokens, cached_tokens)
        events.append(_chunk([{"text": ""}], usage, model, finish_reason))
    return Reply(200, {"content-type": SSE_TYPE}, stream=events, delay=delay, cut_after=cut_after)


def capture(relpath: str, **faults: Any) -> Reply:
    """Replay a tests/wire capture byte for byte (``delay``, ``cut_after``, ``headers``)."""
    return replay(relpath, SSE_TYPE, JSON_TYPE, **faults)


def _status_body(code: int, message: str, details: Sequence[Any] = ()) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message,
                             "status": _STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = list(details)
    return {"error": error}


def error(
    status: int,
    body: Mapping[str, Any] | str | bytes | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A ``google.rpc.Status`` error reply: ``body`` is a dict, a tests/wire relpath, raw bytes,
    or None for a Google-shaped default of that status (403 uses the captured body)."""
    if isinstance(body, Mapping):
        data = _dumps(dict(body), indent=2)
    elif isinstance(body, str):
        data = read_wire(body)
    elif isinstance(body, bytes):
        data = body
    elif status == 403:
        data = read_wire("gemini/error_403_api_not_enabled.json")
    else:
        message = {
            404: "models/gemini-nope is not found for API version v1beta, or is not supported "
                 "for generateContent. Call ListModels to see the list of available models "
                 "and their supported methods.",
            500: "An internal error has occurred. Please retry or report in "
                 "https://developers.generativeai.google/guide/troubleshooting",
            503: "The model is overloaded. Please try again later.",
        }.get(status, f"Simulated error {status}.")
        data = _dumps(_status_body(status, message), indent=2)
    return Reply(status, {"content-type": JSON_TYPE, **(headers or {})}, data)


def bad_key(key: str) -> Reply:
    """The captured invalid-key answer (HTTP 400), its DebugInfo echoing ``key`` as Google does."""
    body = json.loads(read_wire("gemini/error_401.json"))
    for detail in body["error"]["details"]:
        if detail["@type"].endswith("DebugInfo"):
            detail["detail"] = f"Invalid API key: {key}"
    return error(400, body)


def rate_limited(
    retry_delay: str | None = "26s", headers: Mapping[str, str] | None = None
) -> Reply:
    """The captured 429 body plus the documented ``RetryInfo`` detail (``retryDelay``)."""
    body = json.loads(read_wire("gemini/error_429.json"))
    if retry_delay is not None:
        body["error"]["details"].append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    return error(429, body, headers=headers)


def stream_error_event(
    code: int = 500, message: str = "An internal error has occurred.", *,
    tokens_before: Sequence[str] = (),
) -> Reply:
    """A 200 stream with ``data: {"error": {...}}`` after some tokens (and nothing after it)."""
    events = [_chunk([{"text": t}], _usage(7, i + 1), "gemini-2.5-flash")
              for i, t in enumerate(tokens_before)]
    events.append(_event(_status_body(code, message)))
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def malformed(tokens_before: Sequence[str] = ("Hi",)) -> Reply:
    """A 200 stream whose event after ``tokens_before`` is truncated JSON."""
    events = [_chunk([{"text": t}], _usage(7, i + 1), "gemini-2.5-flash")
              for i, t in enumerate(tokens_before)]
    events.append(b'data: {"candidates": [{"content": {"parts": [{"text": "oops"\r\n\r\n')
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def blocked_prompt(reason: str = "SAFETY", *, tokens_before: Sequence[str] = ()) -> Reply:
    """The prompt was blocked: after ``tokens_before``, a chunk with only
    ``promptFeedback.blockReason`` and no candidates, as in the source repo's
    ``mock-responses/googleai/streaming-failure-prompt-blocked-safety.txt``."""
    events = [_chunk([{"text": t}], _usage(7, 0), "gemini-2.0-flash") for t in tokens_before]
    feedback = {"blockReason": reason, "safetyRatings": [
        {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "HIGH"}]}
    events.append(_event({"promptFeedback": feedback}))
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


# --- request validation ------------------------------------------------------------------------


def _invalid(message: str) -> Reply:
    return error(400, _status_body(400, message))


def check_body(body: Any) -> Reply | None:
    """The real API's 400s for a GenerateContentRequest, or None if it is acceptable."""
    if not isinstance(body, dict):
        return _invalid("Invalid JSON payload received. Expected an object.")
    body = camel(body)
    for name in body:
        if name not in _TOP_LEVEL:
            return _invalid(f'Invalid JSON payload received. Unknown name "{name}": '
                            "Cannot find field.")
    contents = body.get("contents")
    if not contents or not isinstance(contents, list):
        return _invalid("* GenerateContentRequest.contents: contents is not specified\n")
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            return _invalid(f"Invalid value at 'contents[{i}]'")
        if content.get("role", "user") not in ("user", "model"):
            return _invalid("Please use a valid role: user, model.")
        if not content.get("parts"):
            return _invalid(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must "
                            "not be empty.\n")
    system = body.get("systemInstruction")
    if system is not None and not (isinstance(system, dict) and system.get("parts")):
        return _invalid("* GenerateContentRequest.system_instruction.parts: must not be empty.\n")
    config = body.get("generationConfig") or {}
    temperature = config.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        return _invalid("* GenerateContentRequest.generation_config.temperature: must be in "
                        "[0.0, 2.0]\n")
    stops = config.get("stopSequences") or []
    if len(stops) > 5:
        return _invalid("* GenerateContentRequest.generation_config.stop_sequences: at most 5 "
                        "stop sequences are allowed\n")
    return None


def _embed_text(request: dict[str, Any]) -> str:
    return "".join(str(p.get("text", "")) for p in request["content"]["parts"])


def embeddings(body: Mapping[str, Any]) -> Reply:
    """The ``batchEmbedContents`` answer for a valid body: one deterministic vector per
    request (``outputDimensionality`` values, default 8), in order. No usage: the Gemini API
    reports none for embeddings."""
    requests = camel(dict(body))["requests"]
    vectors = [{"values": embedding_vector(_embed_text(r), r.get("outputDimensionality") or 8)}
               for r in requests]
    return Reply(200, {"content-type": JSON_TYPE}, _dumps({"embeddings": vectors}, indent=2))


def check_embed_body(body: Any, model: str) -> Reply | None:
    """The real API's 400s for a BatchEmbedContentsRequest to ``models/{model}``."""
    if not isinstance(body, dict):
        return _invalid("Invalid JSON payload received. Expected an object.")
    body = camel(body)
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return _invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    if len(requests) > MAX_EMBED_REQUESTS:
        return _invalid(f"* BatchEmbedContentsRequest.requests: at most {MAX_EMBED_REQUESTS} "
                        "requests can be in one batch\n")
    for i, request in enumerate(requests):
        where = f"BatchEmbedContentsRequest.requests[{i}]"
        if not isinstance(request, dict) or request.get("model") != f"models/{model}":
            return _invalid(f"* {where}.model: the model of each request must be the model "
                            "of the batch\n")
        content = request.get("content")
        if not isinstance(content, dict) or not content.get("parts") or not _embed_text(request):
            return _invalid(f"* {where}.content: contents.parts must not be empty.\n")
        if request.get("taskType", "TASK_TYPE_UNSPECIFIED") not in TASK_TYPES:
            return _invalid(f"Invalid value at 'requests[{i}].task_type'")
        size = request.get("outputDimensionality")
        if size is not None and (not isinstance(size, int) or size < 1):
            return _invalid(f"* {where}.output_dimensionality: must be positive\n")
    return None


class GeminiSimulator(Server):
    """The Gemini Developer API on a local port; ``url`` is what ``base_url`` takes."""

    def __init__(
        self,
        api_key: str = "AIza-test-key",
        *,
        default: Reply | None = None,
        models: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        super().__init__(host=host, port=port, record=record)
        self.api_key = api_key
        self.models = None if models is None else set(models)
        self.default = default or text_stream(["Hello", ",", " world", "!"], prompt_tokens=7)

    @property
    def url(self) -> str:
        return self.base_url

    def default_reply(self, request: Request) -> Reply:
        if request.path.endswith(":" + _EMBED):
            return embeddings(request.json())
        return self.default

    def validate(self, request: Request) -> Reply | None:
        match = _PATH.fullmatch(request.path)
        if match is None:
            return error(404, _status_body(404, f"Requested entity was not found: {request.path}"))
        if request.method != "POST":
            return error(405, _status_body(405, f"Method {request.method} not allowed."))
        if match.group(3) == "streamGenerateContent" and request.query.get("alt") != "sse":
            return _invalid("simulator: only the alt=sse form of streamGenerateContent is served")
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return error(403, _status_body(403, _UNREGISTERED))
        if key != self.api_key:
            return bad_key(key)
        if self.models is not None and match.group(2) not in self.models:
            return error(404)
        try:
            body = request.json()
        except ValueError:
            return _invalid("Invalid JSON payload received. Unexpected token.")
        if match.group(3) == _EMBED:
            return check_embed_body(body, match.group(2))
        return check_body(body)


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: GeminiSimulator(
            a.api_key, default=text_stream(tokens, delay=a.delay), port=a.port, record=False
        ),
        argv,
        api_key="AIza-test-key",
    )


if __name__ == "__main__":
    main()
