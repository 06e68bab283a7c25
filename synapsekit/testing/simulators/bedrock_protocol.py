"""A local simulator of Amazon Bedrock Runtime's ``POST /model/{modelId}/converse-stream``, and
of ``POST /model/{modelId}/invoke`` for the embedding models (Titan Text Embeddings: one
``inputText`` per request; Cohere Embed: up to 96 ``texts``), answering JSON with the input token
count in ``X-Amzn-Bedrock-Input-Token-Count`` as Bedrock does.

Answers are binary ``application/vnd.amazon.eventstream`` messages, encoded here exactly as the
Smithy event-stream spec lays them out (see captures/bedrock/README.md): prelude (total length,
headers length, CRC32 of both), headers, payload, CRC32 of everything before it. Requests are
checked like the real service does: the path, the SigV4 signature (recomputed from the request and
the secret key, so a wrong secret is caught too) or a Bedrock API key (``Authorization: Bearer``),
the credential scope (region, service ``bedrock``) and the JSON body. Rejections happen before the
scripted queue is consumed, so a client bug shows up as the 4xx the real service would send.

Run ``python -m synapsekit.testing.simulators.bedrock_protocol --port 0 --tokens 50`` to serve from
a separate
process (benchmarks): it prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import struct
import uuid
import zlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

from .bedrock_converse import check_converse, tool_events
from .openai_protocol import embedding_vector, token_count
from .server import BENCH_TOOL, Reply, Request, Server, bench_tool_arguments, serve_main
from .wire import read_wire

__all__ = [
    "EVENTSTREAM_TYPE",
    "BedrockSimulator",
    "capture",
    "check_embed_body",
    "decode_messages",
    "embeddings",
    "encode_headers",
    "encode_message",
    "error",
    "event",
    "exception_event",
    "malformed",
    "split_messages",
    "stream_exception",
    "text_stream",
    "tool_stream",
]

EVENTSTREAM_TYPE = "application/vnd.amazon.eventstream"
JSON_TYPE = "application/json"
_PATH = re.compile(r"/model/(?P<model>[^/]+)/converse-stream")
_INVOKE = re.compile(r"/model/(?P<model>[^/]+)/invoke")
_COUNT = re.compile(r"/model/(?P<model>[^/]+)/count-tokens")
_TITAN_DIMENSIONS = (256, 512, 1024)
_COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
_MODEL_ID = re.compile(r"(?:arn:aws[\w-]*:bedrock:.+|(?:[a-z]{2,4}\.)?[a-z0-9-]+\.[\w.:-]+)")
_INFERENCE_KEYS = {"maxTokens", "temperature", "topP", "stopSequences"}


# --- event-stream encoding -----------------------------------------------------------------------

HeaderValue = str | tuple[int, Any]


def encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    """Encode headers in the given order; a plain ``str`` value is a string (type 7) header,
    ``(type, value)`` gives any of the ten types (0 true ... 9 uuid)."""
    out = bytearray()
    for name, spec in headers.items():
        kind, value = (7, spec) if isinstance(spec, str) else spec
        raw_name = name.encode()
        out += struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">B", kind)
        if kind in (0, 1):
            continue
        if kind in (2, 3, 4, 5, 8):
            out += struct.pack({2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}[kind], value)
        elif kind in (6, 7):
            data = value.encode() if isinstance(value, str) else bytes(value)
            out += struct.pack(">H", len(data)) + data
        elif kind == 9:
            data = value.encode() if isinstance(value, str) else bytes(value)
            if len(data) != 16:
                raise ValueError("a uuid header value is 16 bytes")
            out += data
        else:
            raise ValueError(f"unknown header value type {kind}")
    return bytes(out)


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes = b"") -> bytes:
    """One event-stream message: prelude, prelude CRC, headers, payload, message CRC."""
    head = encode_headers(headers)
    prelude = struct.pack(">II", 16 + len(head) + len(payload), len(head))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    return body + struct.pack(">I", zlib.crc32(body))


def split_messages(data: bytes) -> list[bytes]:
    """Split an event-stream body into its messages, by each prelude's total length."""
    messages, offset = [], 0
    while offset < len(data):
        (total,) = struct.unpack_from(">I", data, offset)
        messages.append(data[offset : offset + total])
        offset += total
    return messages


def decode_messages(data: bytes) -> list[dict[str, Any]]:
    """Decode (and CRC-check) string-header messages into ``{"headers", "payload"}`` dicts."""
    decoded = []
    for message in split_messages(data):
        total, head_len, prelude_crc = struct.unpack_from(">III", message)
        if zlib.crc32(message[:8]) != prelude_crc:
            raise ValueError("prelude CRC mismatch")
        if zlib.crc32(message[:-4]) != struct.unpack(">I", message[-4:])[0]:
            raise ValueError("message CRC mismatch")
        headers: dict[str, str] = {}
        pos, end = 12, 12 + head_len
        while pos < end:
            n = message[pos]
            name = message[pos + 1 : pos + 1 + n].decode()
            pos += 1 + n
            if message[pos] != 7:
                raise ValueError("only string headers are decoded here")
            (size,) = struct.unpack_from(">H", message, pos + 1)
            headers[name] = message[pos + 3 : pos + 3 + size].decode()
            pos += 3 + size
        payload = message[end : total - 4]
        decoded.append({"headers": headers, "payload": json.loads(payload) if payload else None})
    return decoded


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """A ``:message-type: event`` message, headers in the order the captures use."""
    headers = {":event-type": event_type, ":content-type": JSON_TYPE, ":message-type": "event"}
    return encode_message(headers, _compact(payload))


def exception_event(exception_type: str, message: str) -> bytes:
    """A modeled in-stream error (``throttlingException``, ``internalServerException``, ...)."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": JSON_TYPE,
        ":message-type": "exception",
    }
    return encode_message(headers, _compact({"message": message}))


# --- replies -------------------------------------------------------------------------------------


def _stream_reply(pieces: Sequence[bytes], delay: float, cut_after: int | None) -> Reply:
    return Reply(200, {"content-type": EVENTSTREAM_TYPE}, stream=list(pieces), delay=delay,
                 cut_after=cut_after)


def capture(relpath: str, *, delay: float = 0.0, cut_after: int | None = None) -> Reply:
    """Replay a capture: ``.eventstream`` bytes as they are, ``.jsonl`` re-encoded;
    one chunked-encoding piece per message."""
    data = read_wire(relpath)
    if relpath.endswith(".eventstream"):
        pieces = split_messages(data)
    elif relpath.endswith(".jsonl"):
        lines = [json.loads(line) for line in data.splitlines() if line.strip()]
        pieces = [encode_message(m["headers"], _compact(m["payload"])) for m in lines]
    else:
        raise ValueError(f"capture() replays .eventstream or .jsonl files, not {relpath!r}")
    return _stream_reply(pieces, delay, cut_after)


def text_stream(
    tokens: Sequence[str],
    *,
    input_tokens: int = 10,
    output_tokens: int | None = None,
    cache_read: int | None = None,
    cache_write: int | None = None,
    stop_reason: str = "end_turn",
    reasoning: Sequence[str] = (),
    metadata: bool = True,
    delay: float = 0.0,
    cut_after: int | None = None,
) -> Reply:
    """messageStart, reasoning deltas (block 0, if any), one text delta per token, block stops,
    messageStop, then ``metadata`` with usage (the real order; ``metadata=False`` drops it).
    ``input_tokens`` is the wire's ``inputTokens``, which excludes ``cache_read`` and
    ``cache_write`` (as on the real API); ``totalTokens`` is the sum of all four counts.
    ``cut_after`` counts messages, messageStart included."""
    text_block = 1 if reasoning else 0
    pieces = [event("messageStart", {"role": "assistant"})]
    if reasoning:
        for part in reasoning:
            delta = {"reasoningContent": {"text": part}}
            pieces.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta}))
        signature = {"reasoningContent": {"signature": "c2lnbmF0dXJl"}}
        pieces.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": signature}))
        pieces.append(event("contentBlockStop", {"contentBlockIndex": 0}))
    for token in tokens:
        block = {"contentBlockIndex": text_block, "delta": {"text": token}}
        pieces.append(event("contentBlockDelta", block))
    pieces.append(event("contentBlockStop", {"contentBlockIndex": text_block}))
    pieces.append(event("messageStop", {"stopReason": stop_reason}))
    if metadata:
        n_out = len(tokens) + len(reasoning) if output_tokens is None else output_tokens
        usage: dict[str, int] = {"inputTokens": input_tokens, "outputTokens": n_out}
        if cache_read is not None:
            usage["cacheReadInputTokens"] = cache_read
        if cache_write is not None:
            usage["cacheWriteInputTokens"] = cache_write
        usage["totalTokens"] = input_tokens + (cache_read or 0) + (cache_write or 0) + n_out
        pieces.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 321}}))
    return _stream_reply(pieces, delay, cut_after)


def tool_stream(
    calls: Sequence[tuple[str, str, Sequence[str]]],
    *,
    text: Sequence[str] = (),
    stop_reason: str = "tool_use",
    usage: Mapping[str, int] | None = None,
) -> Reply:
    """An answer with tool calls: optional text, then one toolUse block per ``(toolUseId,
    name, input fragments)`` call (parallel calls are consecutive blocks), messageStop,
    metadata."""
    pieces = [event(kind, payload) for kind, payload in
              tool_events(calls, text=text, stop_reason=stop_reason, usage=usage)]
    return _stream_reply(pieces, 0.0, None)


def stream_exception(
    exception_type: str = "throttlingException",
    message: str = "Too many requests, please wait before trying again.",
    *,
    tokens_before: Sequence[str] = (),
) -> Reply:
    """A 200 stream that fails in-band with a modeled exception message after some tokens."""
    pieces = [event("messageStart", {"role": "assistant"})]
    pieces += [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}})
        for t in tokens_before
    ]
    pieces.append(exception_event(exception_type, message))
    return _stream_reply(pieces, 0.0, None)


def malformed(tokens_before: Sequence[str] = ("Hi",)) -> Reply:
    """A 200 stream whose message after ``tokens_before`` has a corrupted message CRC."""
    good = text_stream(tokens_before, cut_after=None).stream or []
    pieces = list(good[: 1 + len(tokens_before)])
    bad = bytearray(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}))
    bad[-1] ^= 0xFF
    pieces.append(bytes(bad))
    pieces += list(good[1 + len(tokens_before) :])
    return _stream_reply(pieces, 0.0, None)


_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationException",
          "Malformed input request, please reformat your input and try again."),
    403: ("UnrecognizedClientException", ""),
    404: ("ResourceNotFoundException",
          "Could not resolve the foundation model from the provided model identifier."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model returned an error."),
    429: ("ThrottlingException", ""),
    500: ("InternalServerException",
          "The server encountered an internal error while processing the request."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}


def error(
    status: int,
    code: str | None = None,
    message: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A restJson1 error: ``{"message": ...}`` with the type in ``x-amzn-ErrorType`` (service
    errors suffixed the way AWS often sends them). 403 and 429 default to the captured bodies."""
    default_code, default_message = _DEFAULT_ERRORS.get(status, ("InternalServerException", ""))
    code = code or default_code
    if message is not None:
        body = _compact({"message": message})
    elif status in (403, 429) and code == default_code:
        body = read_wire("bedrock/error_401.json" if status == 403 else "bedrock/error_429.json")
    else:
        body = _compact({"message": default_message or f"Simulated error {status}."})
    # Auth failures come from the front door with a bare type; the service suffixes its own.
    suffix = "" if status == 403 else ":http://internal.amazon.com/coral/com.amazon.bedrock/"
    error_type = code + suffix
    return Reply(
        status,
        {"content-type": JSON_TYPE, "x-amzn-ErrorType": error_type, **(headers or {})},
        body,
    )


def _validation(message: str) -> Reply:
    return error(400, "ValidationException", message)


def _is_cohere(model: str) -> bool:
    return ".cohere.embed" in f".{model}"


def embeddings(model: str, body: Mapping[str, Any]) -> Reply:
    """The InvokeModel answer of an embedding model for a valid body: Titan's ``embedding``
    (``dimensions`` values, default 8) or Cohere's ``embeddings`` (``output_dimension``),
    and the input token count in the ``X-Amzn-Bedrock-Input-Token-Count`` header."""
    if _is_cohere(model):
        texts = list(body["texts"])
        size = body.get("output_dimension") or 8
        answer: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "texts": texts,
            "embeddings": [embedding_vector(t, size) for t in texts],
            "response_type": "embeddings_floats",
        }
    else:
        texts = [body["inputText"]]
        vector = embedding_vector(texts[0], body.get("dimensions") or 8)
        answer = {"embedding": vector, "inputTextTokenCount": token_count(texts[0]),
                  "embeddingsByType": {"float": vector}}
    tokens = sum(token_count(t) for t in texts)
    headers = {"content-type": JSON_TYPE, "X-Amzn-Bedrock-Input-Token-Count": str(tokens)}
    return Reply(200, headers, _compact(answer))


def check_embed_body(model: str, body: Any) -> Reply | None:
    """The ValidationExceptions of an embedding model's InvokeModel body, or None."""
    if not isinstance(body, dict):
        return _validation("Malformed input request, please reformat your input and try again.")
    if _is_cohere(model):
        texts = body.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return _validation("Malformed input request: #: required key [texts] not found")
        if len(texts) > 96:
            return _validation(f"Malformed input request: #/texts: expected maxItems: 96, "
                               f"actual: {len(texts)}")
        if any(len(t) > 2048 for t in texts):
            return _validation("Malformed input request: #/texts: expected maxLength: 2048")
        if body.get("input_type") not in _COHERE_INPUT_TYPES:
            return _validation("Malformed input request: #/input_type: "
                               f"{body.get('input_type')} is not a valid enum value")
        return None
    if not isinstance(body.get("inputText"), str) or not body["inputText"]:
        return _validation("Malformed input request: #: required key [inputText] not found")
    extra = set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}
    if extra:
        return _validation(f"Malformed input request: #: extraneous key [{extra.pop()}] is "
                           "not permitted")
    size = body.get("dimensions")
    if size is not None and size not in _TITAN_DIMENSIONS:
        return _validation(f"Malformed input request: #/dimensions: {size} is not a valid "
                           "enum value")
    return None


# --- request checks ------------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _sigv4_signature(request: Request, signed: str, scope: str, secret: str) -> str:
    """The SigV4 signature the client should have sent (botocore's non-S3 rules: the already
    URI-encoded path is encoded once more; header values whitespace-collapsed)."""
    canonical_headers = "".join(
        f"{name}:{' '.join(request.headers.get(name, '').split())}\n"
        for name in signed.split(";")
    )
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(request.query.items())
    )
    payload_hash = request.headers.get("x-amz-content-sha256") or hashlib.sha256(
        request.body
    ).hexdigest()
    canonical = "\n".join(
        [request.method, quote(request.path, safe="/~"), query, canonical_headers, signed,
         payload_hash]
    )
    amz_date = request.headers.get("x-amz-date", "")
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def check_body(body: Any, model: str = "") -> Reply | None:
    """The real service's ValidationExceptions for a Converse body, or None if acceptable
    (tools, tool results, images, documents, reasoning: :mod:`.bedrock_converse`)."""
    if not isinstance(body, dict):
        return _validation("Malformed input request, please reformat your input and try again.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _validation("1 validation error detected: Value null at 'messages' failed to "
                           "satisfy constraint: Member must not be null")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            return _validation(f"1 validation error detected: Value at 'messages.{i + 1}.member"
                               ".role' failed to satisfy constraint: Member must satisfy enum "
                               "value set: [user, assistant]")
        content = msg.get("content")
        if not isinstance(content, list) or not content or not all(
            isinstance(block, dict) and block for block in content
        ):
            return _validation(f"The content field in the Message object at messages.{i} is "
                               "empty. Add a ContentBlock object to the content field and try "
                               "again.")
    if messages[0]["role"] != "user":
        return _validation("A conversation must start with a user message. Try again with a "
                           "conversation that starts with a user message.")
    system = body.get("system")
    if system is not None and not (
        isinstance(system, list) and all(isinstance(s, dict) and s for s in system)
    ):
        return _validation("The system field must be a list of SystemContentBlock objects.")
    config = body.get("inferenceConfig")
    if config is not None:
        if not isinstance(config, dict) or set(config) - _INFERENCE_KEYS:
            return _validation("Malformed input request: inferenceConfig has unknown fields.")
        max_tokens = config.get("maxTokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            return _validation("1 validation error detected: Value at 'inferenceConfig."
                               "maxTokens' failed to satisfy constraint: Member must have "
                               "value greater than or equal to 1")
    problem = check_converse(body, model)
    return None if problem is None else _validation(problem)


class BedrockSimulator(Server):
    """Bedrock Runtime ConverseStream on a local port.

    ``credentials`` maps access key ids to secret keys (SigV4); ``api_keys`` are accepted Bedrock
    API keys (bearer). ``region`` is the only region a signature may be scoped to.
    """

    def __init__(
        self,
        credentials: Mapping[str, str] | None = None,
        *,
        api_keys: Sequence[str] = (),
        region: str = "us-east-1",
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        super().__init__(host=host, port=port, record=record)
        self.credentials = dict(credentials or {"AKIDSIMULATOR": "simulator-secret"})
        self.api_keys = set(api_keys)
        self.region = region
        self.default: Reply = default or text_stream(["Hello", ",", " world", "!"], input_tokens=12)
        self._ids = itertools.count(1)
        #: The ``x-amzn-RequestId`` of every response, in order (cleared by :meth:`reset`).
        self.request_ids: list[str] = []

    @property
    def url(self) -> str:
        """``endpoint_url`` for ``boto3.client("bedrock-runtime", ...)``."""
        return self.base_url

    @staticmethod
    def model_id(request: Request) -> str | None:
        """The decoded ``modelId`` of a ConverseStream request path."""
        match = _PATH.fullmatch(request.path)
        return unquote(match["model"]) if match else None

    def default_reply(self, request: Request) -> Reply:
        invoked = _INVOKE.fullmatch(request.path)
        if invoked:
            return embeddings(unquote(invoked["model"]), json.loads(request.body))
        return self.default

    def response_headers(self, request: Request, reply: Reply) -> Mapping[str, str]:
        request_id = str(uuid.UUID(int=next(self._ids)))
        self.request_ids.append(request_id)
        return {"x-amzn-RequestId": request_id}

    def reset(self) -> None:
        super().reset()
        self.request_ids.clear()

    def validate(self, request: Request) -> Reply | None:
        model = self.model_id(request)
        invoked = _INVOKE.fullmatch(request.path)
        counted = _COUNT.fullmatch(request.path)
        if model is None and counted is not None:
            return self._validate_count(request, unquote(counted["model"]))
        if model is None and invoked is not None:
            return self._validate_invoke(request, unquote(invoked["model"]))
        if model is None:
            return error(404, "UnknownOperationException", "Unknown operation")
        body, refused = self._posted_json(request, model)
        if refused is not None:
            return refused
        return check_body(body, model)

    def _posted_json(self, request: Request, model: str) -> tuple[Any, Reply | None]:
        """What every runtime operation checks first, as the service does: a POST, a valid
        signature or key, a well-formed model id, a JSON body."""
        if request.method != "POST":
            return None, error(405, "UnknownOperationException", "Method not allowed")
        rejected = self._check_auth(request)
        if rejected is not None:
            return None, rejected
        if not _MODEL_ID.fullmatch(model):
            return None, _validation("The provided model identifier is invalid.")
        try:
            return json.loads(request.body), None
        except ValueError:
            return None, _validation(
                "Malformed input request, please reformat your input and try again.")

    def _validate_count(self, request: Request, model: str) -> Reply | None:
        """CountTokens: ``{"input": {"converse": {...}}}`` (or ``invokeModel``) for a
        foundation model id -> ``{"inputTokens": n}`` by
        synapsekit/testing/simulators/count_rule.py."""
        from .count_rule import json_reply, tokens

        body, refused = self._posted_json(request, model)
        if refused is not None:
            return refused
        given = body.get("input") if isinstance(body, dict) else None
        if not isinstance(given, dict) or len(given) != 1:
            return _validation("input: exactly one of converse or invokeModel must be set")
        converse = given.get("converse")
        if converse is not None:
            extra = set(converse) - {"messages", "system", "toolConfig",
                                     "additionalModelRequestFields"}
            if extra:
                return _validation(f"Unknown parameter in input.converse: {sorted(extra)[0]}")
            return json_reply({"inputTokens": tokens(converse)})
        return json_reply({"inputTokens": tokens(given)})

    def _validate_invoke(self, request: Request, model: str) -> Reply | None:
        if request.method != "POST":
            return error(405, "UnknownOperationException", "Method not allowed")
        rejected = self._check_auth(request)
        if rejected is not None:
            return rejected
        if "embed" not in model or not _MODEL_ID.fullmatch(model):
            return _validation("The provided model identifier is invalid.")
        try:
            body = json.loads(request.body)
        except ValueError:
            return _validation("Malformed input request, please reformat your input and try again.")
        return check_embed_body(model, body)

    def _check_auth(self, request: Request) -> Reply | None:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return None if auth[7:].strip() in self.api_keys else error(403)
        match = _AUTH.fullmatch(auth)
        if match is None:
            return error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        secret = self.credentials.get(match["key"])
        if secret is None:
            return error(403)  # UnrecognizedClientException + the captured body
        if match["service"] != "bedrock":
            return error(403, "InvalidSignatureException",
                         "Credential should be scoped to correct service: 'bedrock'. ")
        if match["region"] != self.region:
            return error(403, "InvalidSignatureException",
                         "Credential should be scoped to a valid region. ")
        scope = f"{match['date']}/{match['region']}/{match['service']}/aws4_request"
        expected = _sigv4_signature(request, match["signed"], scope, secret)
        if not hmac.compare_digest(expected, match["signature"]):
            return error(403, "InvalidSignatureException", _BAD_SIGNATURE)
        return None


def bench_tool_call(fragments: int) -> Reply:
    """``--tool-fragments``: the benchmarks' call, one ``toolUse`` block whose input
    deltas are the arguments in ``fragments`` pieces."""
    _, pieces = bench_tool_arguments(fragments)
    return tool_stream([("tooluse_bench0001", BENCH_TOOL, pieces)])


def main(argv: Sequence[str] | None = None) -> None:
    serve_main(
        __doc__,
        lambda a, tokens: BedrockSimulator(
            region=a.region, default=text_stream(tokens, delay=a.delay), port=a.port,
            record=False,
        ),
        argv,
        extra=lambda parser: parser.add_argument("--region", default="us-east-1"),
        tool=bench_tool_call,
    )


if __name__ == "__main__":
    main()
