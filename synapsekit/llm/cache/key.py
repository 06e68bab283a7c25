"""The cache key: a SHA-256 over everything that shapes an answer, and whose answer it is.

Two callers share an answer only when they asked the same question of the same endpoint
with the same credential scope: the key covers the provider, the *effective* endpoint
(``base_url``, or the one taken from the environment, Bedrock's region included), the
model, every message (content parts by a SHA-256 of their bytes, tool calls, tool results,
provider data), every generation parameter (tools, tool choice, response schema and reasoning
settings included), and the credential's scope
(:func:`credential_scope`: the ``cache_namespace`` if set, else a fingerprint of the API
key). The API key itself is never in the key, nor in anything stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from synapsekit.errors import ConfigError
from synapsekit.llm.config import LLMConfig
from synapsekit.llm.content import part_digest
from synapsekit.llm.types import Message

__all__ = ["ANONYMOUS", "KEY_VERSION", "cache_key", "credential_scope"]

#: Version of the key format and of the stored value; bump it when either changes, so an
#: old entry can never be read as a new one. 2: the credential scope and the effective
#: endpoint joined the key. 3: tools, tool choice, response schema, reasoning settings,
#: cache_prompt, content parts (by digest) and tool turns joined it; the stored value
#: gained tool calls, reasoning and provider data (codec format 2).
KEY_VERSION: int = 3

#: The credential scope of a call made without an API key (e.g. a local Ollama).
ANONYMOUS = "anonymous"

#: Header names containing one of these (lower-cased) are credentials: never in a key.
_SECRET_HEADER_PARTS = ("auth", "key", "token", "secret", "cookie")


def credential_scope(api_key: str | None, namespace: str | None = None) -> str:
    """Whose answers a call may see: ``"ns:<namespace>"`` when a ``cache_namespace`` is
    set (callers with different keys that share it share answers), else
    ``"key:<16 hex digits of the key's SHA-256>"``, else ``"anonymous"``.

    The fingerprint identifies the key without revealing it (the same 16 hex digits
    name the key's rate-limit bucket, :func:`synapsekit.llm.ratelimit.key_fingerprint`).
    """
    if namespace is not None:
        return f"ns:{namespace}"
    if api_key is None:
        return ANONYMOUS
    return "key:" + hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def cache_key(
    config: LLMConfig,
    messages: Sequence[Message],
    *,
    credential: str,
    endpoint: str | None,
) -> str:
    """The hex SHA-256 naming the answer to ``messages`` under ``config``.

    ``credential`` is the call's :func:`credential_scope`; ``endpoint`` the effective
    endpoint the request goes to (``llm.endpoint``; None: ``config.base_url``). Covers
    the key format version, both of those, provider, model, every message (the system
    prompt is the first one when there is one; parts by digest, never their bytes), temperature,
    top_p, max_tokens, stop, params, api_version, the headers that are not credentials, the
    tools (name, description, schema, strict), tool_choice, parallel_tool_calls,
    response_schema, reasoning_effort / reasoning_budget and cache_prompt. Never the API key.
    A ``params`` value JSON cannot encode is a ConfigError, before any request: an
    SDK object (e.g. a pydantic config) counts by its ``model_dump()``.
    """
    headers = {
        name.lower(): value
        for name, value in config.headers.items()
        if not any(part in name.lower() for part in _SECRET_HEADER_PARTS)
    }
    temperature = config.temperature
    payload = {
        "version": KEY_VERSION,
        "credential": credential,
        "endpoint": endpoint if endpoint is not None else config.base_url,
        "provider": config.provider,
        "model": config.model,
        "messages": [_message(message) for message in messages],
        "temperature": float(temperature) if temperature is not None else None,
        "max_tokens": config.max_tokens,
        "stop": list(config.stop) if config.stop is not None else None,
        "params": dict(config.params),
        "api_version": config.api_version,
        "base_model": config.base_model,  # changes the body (e.g. an Azure reasoning model)
        "headers": headers,
    }
    if config.top_p is not None:  # only when set: keys made before the field stay valid
        payload["top_p"] = float(config.top_p)
    if config.tools:
        payload["tools"] = [
            {"name": t.name, "description": t.description, "schema": t.schema,
             "strict": t.strict}
            for t in config.tools
        ]
    schema = config.response_schema
    for name, value in (
        ("tool_choice", config.tool_choice),
        ("parallel_tool_calls", config.parallel_tool_calls),
        ("response_schema", None if schema is None else {
            "name": schema.name, "schema": schema.schema, "strict": schema.strict,
            "description": schema.description,
        }),
        ("reasoning_effort", config.reasoning_effort),
        ("reasoning_budget", config.reasoning_budget),
        ("cache_prompt", config.cache_prompt or None),
    ):
        if value is not None:  # only when set: a plain text call's key has none of them
            payload[name] = value
    try:
        text = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params: cannot be part of a cache key: {exc}") from None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _message(message: Message) -> dict[str, Any]:
    """A turn as the key sees it: parts by digest (never raw bytes), tool calls as plain
    dicts, tool_call_id / name / provider_data when present."""
    content = message["content"]
    shown: dict[str, Any] = {
        "role": message["role"],
        "content": content if isinstance(content, str) else [part_digest(p) for p in content],
    }
    calls = message.get("tool_calls")
    if calls:
        shown["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": dict(c.arguments), "index": c.index}
            for c in calls
        ]
    for name in ("tool_call_id", "name", "provider_data"):
        if name in message:
            shown[name] = message[name]
    return shown


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models, e.g. google-genai configs
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    raise TypeError(f"a {type(value).__name__} is not JSON")
