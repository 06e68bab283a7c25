"""A local simulator of the Gemini API's ``POST /v1beta/models/{model}:streamGenerateContent``,
and of ``:batchEmbedContents`` (at most 100 requests; ``{"embeddings": [{"values": [...]}]}``).

Shapes follow captures/gemini (see its README): SSE with CRLF line ends, one ``data:`` line per
``GenerateContentResponse``, no ``event:`` lines and no terminator; ``usageMetadata`` cumulative on
every chunk; errors as ``google.rpc.Status`` bodies. An invalid key is answered the way Google
does: HTTP **400** ``API_KEY_INVALID`` (the captured body, its DebugInfo echoing the key sent), a
missing key 403. Requests are checked before the scripted queue is consumed (path, ``alt=sse``,
key, JSON field names, ``contents`` roles and parts), so a client bug shows up as the 4xx the real
service would return. Only the ``alt=sse`` form is served (the SDK always asks for it).

Beyond text (issue 10), requests are validated the way the Gemini API documents and answers
them (400 ``INVALID_ARGUMENT`` with a ``google.rpc.Status`` body): ``functionDeclarations`` (names,
one schema field, object schemas, no duplicates), ``toolConfig.functionCallingConfig``
(mode, ``allowedFunctionNames`` only with ANY and declared), ``functionResponse`` turns (right
after a model turn with calls, as many responses as calls, the names and ids of those calls,
an object ``response``), ``thoughtSignature`` on the first function call of each model step of
the current turn for Gemini 3 models (a signature this simulator issued, or Google's
documented placeholder), ``inlineData`` (a supported ``mimeType``, valid base64), ``fileData``
(``fileUri``), ``thinkingConfig`` (budget ranges per Gemini 2.5 model, ``thinkingLevel``
refused on 2.5 and checked per Gemini 3 model, never both), and structured output
(``responseJsonSchema`` an object schema, with ``responseMimeType`` application/json).
:func:`function_call_stream` builds answers with several (parallel) calls.

Run ``python -m synapsekit.testing.simulators.gemini_protocol --port 0 --tokens 50`` to serve from
a separate
process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .openai_protocol import embedding_vector
from .server import BENCH_TOOL, Reply, Request, Server, bench_tool_arguments, serve_main
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
    "function_call_stream",
    "malformed",
    "rate_limited",
    "stream_error_event",
    "text_stream",
]

SSE_TYPE = "text/event-stream"
JSON_TYPE = "application/json; charset=UTF-8"
_PATH = re.compile(
    r"/(v1beta|v1)/models/([^/:]+):"
    r"(streamGenerateContent|generateContent|batchEmbedContents|countTokens)"
)
_COUNT = "countTokens"
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
    signature: str | None = None,
) -> Reply:
    """One chunk per thought summary (``"thought": true``), then one per token; a
    ``signature`` rides on a last, empty text part, as Gemini 3 signs a text answer.

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
    if signature is not None:
        ISSUED_SIGNATURES.add(signature)
        usage = _usage(prompt_tokens, n_out, thoughts_tokens, cached_tokens)
        events[-1] = _chunk([{"text": tokens[-1] if tokens else ""}], usage, model)
        events.append(_chunk([{"text": "", "thoughtSignature": signature}], usage, model,
                             finish_reason))
    return Reply(200, {"content-type": SSE_TYPE}, stream=events, delay=delay, cut_after=cut_after)


def capture(relpath: str, **faults: Any) -> Reply:
    """Replay a capture byte for byte (``delay``, ``cut_after``, ``headers``)."""
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
    """A ``google.rpc.Status`` error reply: ``body`` is a dict, a capture's relpath, raw bytes,
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


def count_reply(body: Any, model: str) -> Reply:
    """countTokens: ``contents`` or a whole ``generateContentRequest`` (never both; the
    request's ``model`` must be ``models/<the path's model>`` and the request valid),
    counted by the rule of synapsekit/testing/simulators/count_rule.py (``totalTokens`` and the
    per-modality detail the API sends)."""
    from .count_rule import json_reply, tokens

    if not isinstance(body, dict):
        return _invalid("Invalid JSON payload received.")
    request = body.get("generateContentRequest")
    if request is not None and "contents" in body:
        return _invalid("Only one of contents or generate_content_request may be set.")
    if request is not None:
        if request.get("model") != f"models/{model}":
            return _invalid("generate_content_request.model must match the model in the path.")
        rejected = check_body({k: v for k, v in request.items() if k != "model"}, model)
        if rejected is not None:
            return rejected
        counted = tokens(request)
    else:
        counted = tokens({"contents": body.get("contents", [])})
    return json_reply({
        "totalTokens": counted,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": counted}],
    })


def check_body(body: Any, model: str = "gemini-2.5-flash") -> Reply | None:
    """The real API's 400s for a GenerateContentRequest to ``model``, or None if it is
    acceptable."""
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
        for j, part in enumerate(content["parts"]):
            found = _check_part(part, f"contents[{i}].parts[{j}]")
            if found is not None:
                return found
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
    return (
        _check_tools(body)
        or _check_turns(contents, model)
        or _check_thinking(config, model)
        or _check_schema(config, bool(body.get("tools")), model)
    )


#: The image and document types the Gemini API reads inline (image understanding, document
#: processing pages); anything else is "Unsupported MIME type".
INLINE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", "application/pdf",
    "text/plain",
})
#: Google's documented placeholder for calls that did not come from Gemini
#: (ai.google.dev/gemini-api/docs/thought-signatures).
SKIP_SIGNATURES = frozenset({"skip_thought_signature_validator",
                             "context_engineering_is_the_way_to_go"})
#: The signatures this simulator's answers carried: Gemini 3 accepts only those back.
ISSUED_SIGNATURES: set[str] = set()
_FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")


def _b64(text: Any) -> bytes | None:
    """Proto JSON bytes: standard or url-safe base64 (padding optional); None if invalid."""
    if not isinstance(text, str):
        return None
    alphabet = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(alphabet + "=" * (-len(alphabet) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _check_part(part: Any, where: str) -> Reply | None:
    if not isinstance(part, dict) or not part:
        return _invalid(f"Invalid value at '{where}': a Part needs one data field.")
    inline = part.get("inlineData")
    if inline is not None:
        mime = inline.get("mimeType") if isinstance(inline, dict) else None
        if not mime:
            return _invalid(f"* GenerateContentRequest.{where}.inline_data.mime_type: "
                            "mime_type must be specified.\n")
        if mime not in INLINE_TYPES:
            return _invalid(f"Unsupported MIME type: {mime}")
        if _b64(inline.get("data")) in (None, b""):
            return _invalid(f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), "
                            "Base64 decoding failed")
    file_data = part.get("fileData")
    if file_data is not None:
        uri = file_data.get("fileUri") if isinstance(file_data, dict) else None
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://", "gs://")):
            return _invalid(f"* GenerateContentRequest.{where}.file_data.file_uri: "
                            "Invalid or unsupported file uri: " + str(uri))
    signature = part.get("thoughtSignature")
    if signature is not None and signature not in SKIP_SIGNATURES and _b64(signature) is None:
        return _invalid(f"Invalid value at '{where}.thought_signature' (TYPE_BYTES), "
                        "Base64 decoding failed")
    return None


def _check_tools(body: dict[str, Any]) -> Reply | None:
    names: list[str] = []
    for i, tool in enumerate(body.get("tools") or ()):
        for j, declaration in enumerate(tool.get("functionDeclarations") or ()):
            where = f"GenerateContentRequest.tools[{i}].function_declarations[{j}]"
            name = declaration.get("name")
            if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
                return _invalid(
                    f"* {where}.name: Invalid function name. Must start with a letter or an "
                    "underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots "
                    "(.), colons (:), or dashes (-), with a maximum length of 64.\n")
            if name in names:
                return _invalid(f"* {where}.name: Duplicate function declaration name: {name}\n")
            names.append(name)
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                return _invalid(f"* {where}: parameters and parameters_json_schema cannot both "
                                "be set.\n")
            schema = declaration.get("parametersJsonSchema", declaration.get("parameters"))
            if schema is not None and (not isinstance(schema, dict)
                                       or schema.get("type") not in ("object", "OBJECT")):
                return _invalid(f"* {where}.parameters: the parameters schema must be of type "
                                "OBJECT.\n")
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig")
    if calling is not None:
        mode = calling.get("mode", "MODE_UNSPECIFIED")
        if mode not in _MODES:
            return _invalid("Invalid value at 'tool_config.function_calling_config.mode' "
                            f'(type.googleapis.com/google.ai.generativelanguage.v1beta.'
                            f'FunctionCallingConfig.Mode), "{mode}"')
        allowed = calling.get("allowedFunctionNames")
        if allowed is not None:
            if mode not in ("ANY", "VALIDATED"):
                return _invalid("* GenerateContentRequest.tool_config.function_calling_config."
                                "allowed_function_names: allowed_function_names should only be "
                                "set when the Function calling mode is ANY.\n")
            unknown = [n for n in allowed if n not in names]
            if unknown:
                return _invalid("* GenerateContentRequest.tool_config.function_calling_config."
                                f"allowed_function_names: {unknown[0]} is not a declared "
                                "function.\n")
    return None


def _calls(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in content["parts"] if isinstance(p.get("functionCall"), dict)]


def _check_turns(contents: list[dict[str, Any]], model: str) -> Reply | None:
    """Function responses answer the model turn just before them; on Gemini 3, every model
    step of the current turn signs its first function call."""
    for i, content in enumerate(contents):
        responses = [p["functionResponse"] for p in content["parts"]
                     if isinstance(p.get("functionResponse"), dict)]
        if not responses:
            continue
        previous = contents[i - 1] if i else None
        calls = [c["functionCall"] for c in _calls(previous)] if previous else []
        if previous is None or previous.get("role") != "model" or not calls:
            return _invalid("Please ensure that function response turn comes immediately after "
                            "a function call turn.")
        if len(responses) != len(calls):
            return _invalid("Please ensure that the number of function response parts is equal "
                            "to the number of function call parts of the function call turn.")
        for response in responses:
            matches = [c for c in calls if c.get("name") == response.get("name")]
            if not matches:
                return _invalid(f"* GenerateContentRequest.contents[{i}]: function response "
                                f"name {response.get('name')!r} matches no function call of "
                                "the function call turn.\n")
            if response.get("id") is not None and not any(
                    c.get("id") == response["id"] for c in matches):
                return _invalid(f"* GenerateContentRequest.contents[{i}]: function response id "
                                f"{response['id']!r} matches no function call id.\n")
            if not isinstance(response.get("response"), dict):
                return _invalid(f"* GenerateContentRequest.contents[{i}].function_response."
                                "response: must be a JSON object.\n")
    if not model.startswith("gemini-3"):
        return None
    start = 0  # the current turn begins at the last user turn that is not only responses
    for i, content in enumerate(contents):
        if content.get("role", "user") == "user" and any(
                "functionResponse" not in p for p in content["parts"]):
            start = i
    for i in range(start, len(contents)):
        calls = _calls(contents[i]) if contents[i].get("role") == "model" else []
        if not calls:
            continue
        signature = calls[0].get("thoughtSignature")
        if signature is None:
            name = calls[0]["functionCall"].get("name")
            return _invalid(
                "Function call is missing a thought_signature in functionCall parts. This is "
                "required for tools to work correctly, and missing thought_signature may lead "
                f"to degraded model performance. Additional data, function call `default_api:"
                f"{name}` , position {i + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")
        if signature not in SKIP_SIGNATURES and _b64(signature) not in {
                _b64(s) for s in ISSUED_SIGNATURES}:
            return _invalid(f"Corrupted thought signature in contents[{i}].")
    return None


#: thinkingBudget ranges (min, max, 0 allowed) per Gemini 2.5 model prefix, longest first;
#: -1 (dynamic) is allowed everywhere (ai.google.dev/gemini-api/docs/thinking).
BUDGETS = (("gemini-2.5-flash-lite", 512, 24576, True), ("gemini-2.5-flash", 1, 24576, True),
           ("gemini-2.5-pro", 128, 32768, False))
#: thinkingLevel values per Gemini 3 model prefix, first match wins.
LEVELS = (("gemini-3-flash", "MINIMAL LOW MEDIUM HIGH"),
          ("gemini-3.1-flash", "MINIMAL LOW MEDIUM HIGH"),
          ("gemini-3.5-flash", "MINIMAL LOW MEDIUM HIGH"),
          ("gemini-3.1-pro", "LOW MEDIUM HIGH"), ("gemini-3", "LOW HIGH"))


def _check_thinking(config: dict[str, Any], model: str) -> Reply | None:
    thinking = config.get("thinkingConfig")
    if not thinking:
        return None
    budget, level = thinking.get("thinkingBudget"), thinking.get("thinkingLevel")
    if budget is not None and level is not None:
        return _invalid("You can only set only one of thinking budget and thinking level.")
    if level is not None:
        levels = next((v.split() for p, v in LEVELS if model.startswith(p)), None)
        if levels is None:
            return _invalid("Thinking level is not supported for this model.")
        if str(level).upper() not in levels:
            return _invalid(f"Thinking level {level} is not supported for this model. "
                            f"Supported levels: {', '.join(levels)}.")
    if budget is not None and model.startswith("gemini-2.5") and budget != -1:
        low, high, off = next(((lo, hi, z) for p, lo, hi, z in BUDGETS if model.startswith(p)),
                              (0, 24576, True))
        if budget == 0 and not off:
            return _invalid("Budget 0 is invalid. This model only works in thinking mode.")
        if budget != 0 and not low <= budget <= high:
            return _invalid(f"The thinking budget {budget} is invalid. Please choose a value "
                            f"between {low} and {high}.")
    return None


def _check_schema(config: dict[str, Any], tools: bool = False, model: str = "") -> Reply | None:
    schema = config.get("responseJsonSchema")
    if schema is None:
        return None
    if tools and not model.startswith("gemini-3"):
        return _invalid("Function calling with a response mime type: 'application/json' is "
                        "unsupported")
    if "responseSchema" in config:
        return _invalid("* GenerateContentRequest.generation_config: response_schema and "
                        "response_json_schema cannot both be set.\n")
    if config.get("responseMimeType") != "application/json":
        return _invalid("* GenerateContentRequest.generation_config.response_mime_type: "
                        "response_json_schema needs response_mime_type application/json.\n")
    if not isinstance(schema, dict) or not isinstance(schema.get("type", "object"), str):
        return _invalid("* GenerateContentRequest.generation_config.response_json_schema: "
                        "must be a JSON Schema object.\n")
    return None


def function_call_stream(
    calls: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    ids: Sequence[str] | None = None,
    signature: str | None = "c2lnbmF0dXJlLW9mLXRoZS1maXJzdC1jYWxs",
    thoughts: Sequence[str] = (),
    text: str = "",
    prompt_tokens: int = 20,
    model: str = "gemini-3-flash-preview",
    finish_reason: str = "STOP",
    one_chunk: bool = False,
) -> Reply:
    """An answer with (parallel) function calls: thought summaries, optional text, then one
    ``functionCall`` part per call (``ids`` as Gemini 3 may send them); only the first call
    carries ``signature``, as Gemini documents for parallel calls. ``one_chunk`` puts every
    call in one chunk (else one chunk each)."""
    if signature is not None:
        ISSUED_SIGNATURES.add(signature)
    thoughts_tokens = 10 * len(thoughts)
    events = [_chunk([{"text": t, "thought": True}], _usage(prompt_tokens, 0, thoughts_tokens),
                     model) for t in thoughts]
    if text:
        events.append(_chunk([{"text": text}], _usage(prompt_tokens, 2, thoughts_tokens), model))
    parts = []
    for n, (name, args) in enumerate(calls):
        call: dict[str, Any] = {"name": name, "args": dict(args)}
        if ids is not None:
            call["id"] = ids[n]
        part: dict[str, Any] = {"functionCall": call}
        if n == 0 and signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
    out = 2 + 5 * len(calls)
    final = _usage(prompt_tokens, out, thoughts_tokens)
    if one_chunk:
        events.append(_chunk(parts, final, model, finish_reason))
    else:
        for n, part in enumerate(parts):
            last = n == len(parts) - 1
            events.append(_chunk([part], final, model, finish_reason if last else None))
    return Reply(200, {"content-type": SSE_TYPE}, stream=events)


def _capture_signatures(relpath: str) -> None:
    for found in re.finditer(rb'"thoughtSignature": ?"([^"]+)"', read_wire(relpath)):
        ISSUED_SIGNATURES.add(found.group(1).decode())


_capture_signatures("gemini/stream_function_call_thinking.sse")


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
        self.default: Reply = default or text_stream(["Hello", ",", " world", "!"], prompt_tokens=7)

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
        if match.group(3) == _COUNT:
            return count_reply(body, match.group(2))
        return check_body(body, match.group(2))


def bench_tool_call(fragments: int) -> Reply:
    """``--tool-fragments``: the benchmarks' call (arguments of ``4 * fragments``
    characters) the way Gemini streams calls: a whole ``functionCall`` part."""
    arguments, _ = bench_tool_arguments(fragments)
    return function_call_stream([(BENCH_TOOL, arguments)])


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: GeminiSimulator(
            a.api_key, default=text_stream(tokens, delay=a.delay), port=a.port, record=False
        ),
        argv,
        api_key="AIza-test-key",
        tool=bench_tool_call,
    )


if __name__ == "__main__":
    main()
