"""What Anthropic's Messages API refuses in tools, content blocks, thinking and caching, as
:func:`check_features` (called by
:func:`~synapsekit.testing.simulators.anthropic_protocol.check_body`).

Each rule is the real API's (platform.claude.com docs: tool use, vision, PDF support,
extended / adaptive thinking, structured outputs, prompt caching; the SDK's request types
in anthropic/types/*_param.py for field names and literals). Messages are the API's
``messages.<i>.content.<j>...: <text>`` where the real text is known; where it is not, a
message in the same style (marked "reconstructed").

Thinking signatures: this simulator issues them (:func:`sign`, an HMAC of the thinking
text, base64) and checks every thinking block sent back against it, as the real API checks
its own: a client that drops, edits or reorders thinking gets the real 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["IMAGE_TYPES", "check_features", "sign"]

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_TOOL_FIELDS = frozenset({
    "name", "description", "input_schema", "cache_control", "strict", "type",
    "input_examples", "defer_loading", "allowed_callers", "eager_input_streaming",
})
_CHOICES = {"auto": {"disable_parallel_tool_use"}, "any": {"disable_parallel_tool_use"},
            "tool": {"name", "disable_parallel_tool_use"}, "none": set()}
EFFORTS = ("low", "medium", "high", "xhigh", "max")
_SECRET = b"anthropic-simulator-signing-key"
MAX_BREAKPOINTS = 4
_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"

Invalid = Callable[[str], Any]


def sign(thinking: str) -> str:
    """The signature this simulator gives a thinking block (and accepts back)."""
    digest = hmac.new(_SECRET, thinking.encode(), hashlib.sha256).digest()
    return "Eq" + base64.b64encode(digest).decode()


def check_features(body: Mapping[str, Any], invalid: Invalid) -> Any:
    """The first rule ``body`` breaks, as ``invalid(message)``; None when it breaks none."""
    for check in (_tools, _tool_choice, _thinking, _output_config, _messages, _cache):
        found = check(body, invalid)
        if found is not None:
            return found
    return None


def _thinks(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


# ------------------------------------------------------------------------------- tools


def _tools(body: Mapping[str, Any], invalid: Invalid) -> Any:
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return invalid("tools: Input should be a valid list")
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            return invalid(f"tools.{i}: Input should be a valid dictionary")
        extra = sorted(set(tool) - _TOOL_FIELDS)
        if extra:
            return invalid(f"tools.{i}.custom.{extra[0]}: Extra inputs are not permitted")
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            return invalid(
                f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )
        if name in seen:
            return invalid("tools: Tool names must be unique.")
        seen.add(name)
        if "description" in tool and not isinstance(tool["description"], str):
            return invalid(f"tools.{i}.custom.description: Input should be a valid string")
        schema = tool.get("input_schema")
        if schema is None:
            return invalid(f"tools.{i}.custom.input_schema: Field required")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return invalid(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        if "strict" in tool and not isinstance(tool["strict"], bool):
            return invalid(f"tools.{i}.custom.strict: Input should be a valid boolean")
        if tool.get("strict"):
            found = _closed_objects(schema, f"tools.{i}.custom.input_schema", invalid)
            if found is not None:
                return found
    return None


def _closed_objects(schema: Any, where: str, invalid: Invalid) -> Any:
    """Structured outputs / strict tools: every object must say additionalProperties false."""
    if isinstance(schema, dict):
        if (schema.get("type") == "object" or "properties" in schema) and schema.get(
            "additionalProperties"
        ) is not False:
            return invalid(
                f"{where}: For 'object' type, 'additionalProperties' must be explicitly set "
                "to false"
            )
        for key, value in schema.items():
            found = _closed_objects(value, f"{where}.{key}", invalid)
            if found is not None:
                return found
    elif isinstance(schema, list):
        for j, item in enumerate(schema):
            found = _closed_objects(item, f"{where}.{j}", invalid)
            if found is not None:
                return found
    return None


def _tool_choice(body: Mapping[str, Any], invalid: Invalid) -> Any:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in _CHOICES:
        return invalid(
            "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', "
            "'tool', 'none'"
        )
    kind = choice["type"]
    extra = sorted(set(choice) - {"type"} - _CHOICES[kind])
    if extra:
        return invalid(f"tool_choice.{kind}.{extra[0]}: Extra inputs are not permitted")
    if "disable_parallel_tool_use" in choice and not isinstance(
        choice["disable_parallel_tool_use"], bool
    ):
        return invalid(f"tool_choice.{kind}.disable_parallel_tool_use: Input should be a "
                       "valid boolean")
    names = {t.get("name") for t in body.get("tools") or () if isinstance(t, dict)}
    if kind != "none" and not names:
        return invalid("tool_choice: tool_choice may only be specified while providing tools.")
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            return invalid("tool_choice.tool.name: Field required")
        if choice["name"] not in names:
            return invalid(f"Tool '{choice['name']}' not found in provided tools")  # reconstructed
    if kind in ("any", "tool") and _thinks(body):
        return invalid("Thinking may not be enabled when tool_choice forces tool use.")
    return None


# ---------------------------------------------------------------------------- thinking


def _thinking(body: Mapping[str, Any], invalid: Invalid) -> Any:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled", "adaptive"):
        return invalid(
            "thinking: Input tag does not match any of the expected tags: 'adaptive', "
            "'disabled', 'enabled'"
        )
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int):
            return invalid("thinking.enabled.budget_tokens: Field required")
        if budget < 1024:
            return invalid(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if budget >= body.get("max_tokens", 0):
            return invalid(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                f"documentation at {_THINKING_DOCS}#max-tokens-and-context-window-size"
            )
    elif "budget_tokens" in thinking:
        return invalid(f"thinking.{kind}.budget_tokens: Extra inputs are not permitted")
    return None


def _output_config(body: Mapping[str, Any], invalid: Invalid) -> Any:
    config = body.get("output_config")
    if config is None:
        return None
    if not isinstance(config, dict):
        return invalid("output_config: Input should be a valid dictionary")
    extra = sorted(set(config) - {"effort", "format"})
    if extra:
        return invalid(f"output_config.{extra[0]}: Extra inputs are not permitted")
    effort = config.get("effort")
    if effort is not None and effort not in EFFORTS:
        return invalid("output_config.effort: Input should be 'low', 'medium', 'high', "
                       "'xhigh' or 'max'")
    form = config.get("format")
    if form is not None:
        if not isinstance(form, dict) or form.get("type") != "json_schema":
            return invalid("output_config.format.type: Input should be 'json_schema'")
        if not isinstance(form.get("schema"), dict):
            return invalid("output_config.format.schema: Field required")
        return _closed_objects(form["schema"], "output_config.format.schema", invalid)
    return None


# ---------------------------------------------------------------------------- messages


def _messages(body: Mapping[str, Any], invalid: Invalid) -> Any:
    messages = body["messages"]
    thinks = _thinks(body)
    for i, message in enumerate(messages):
        content = message["content"]
        if isinstance(content, str):
            continue
        for j, block in enumerate(content):
            found = _block(block, f"messages.{i}.content.{j}", message["role"], invalid)
            if found is not None:
                return found
        found = _tool_turns(messages, i, invalid)
        if found is not None:
            return found
    if thinks:
        return _thinking_turn(messages, invalid)
    return None


def _block(block: dict[str, Any], where: str, role: str, invalid: Invalid) -> Any:
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            return invalid("messages: text content blocks must be non-empty")
    elif kind == "image":
        return _image(block.get("source"), f"{where}.image.source", invalid)
    elif kind == "document":
        return _document(block, f"{where}.document", invalid)
    elif kind == "tool_use":
        if role != "assistant":
            return invalid(f"{where}: tool_use blocks may only be in assistant messages")
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            return invalid(f"{where}.tool_use.id: Field required")
        if not isinstance(block.get("input"), dict):
            return invalid(f"{where}.tool_use.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            return invalid(f"{where}.tool_result.tool_use_id: Field required")
        if "is_error" in block and not isinstance(block["is_error"], bool):
            return invalid(f"{where}.tool_result.is_error: Input should be a valid boolean")
        inner = block.get("content")
        if isinstance(inner, list):
            for k, item in enumerate(inner):
                if not isinstance(item, dict) or item.get("type") not in (
                    "text", "image", "document", "search_result"
                ):
                    return invalid(f"{where}.tool_result.content.{k}: Input tag does not match")
                found = _block(item, f"{where}.tool_result.content.{k}", "user", invalid)
                if found is not None:
                    return found
    elif kind in ("thinking", "redacted_thinking"):
        if role != "assistant":
            return invalid(f"{where}: thinking blocks may only be in assistant messages")
        if "cache_control" in block:
            return invalid(f"{where}.{kind}.cache_control: Extra inputs are not permitted")
        if kind == "thinking" and block.get("signature") != sign(block.get("thinking") or ""):
            return invalid(f"{where}: Invalid `signature` in `thinking` block")
        if kind == "redacted_thinking" and not isinstance(block.get("data"), str):
            return invalid(f"{where}.redacted_thinking.data: Field required")
    return None


def _decode(data: Any) -> bytes | None:
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _image(source: Any, where: str, invalid: Invalid) -> Any:
    if not isinstance(source, dict) or source.get("type") not in ("base64", "url", "file"):
        return invalid(f"{where}: Input tag does not match any of the expected tags: "
                       "'base64', 'url', 'file'")
    if source["type"] == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return invalid(f"{where}.url.url: Input should be a valid URL")
        return None
    if source["type"] == "file":
        return None
    media_type = source.get("media_type")
    if media_type not in IMAGE_TYPES:
        return invalid(f"{where}.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                       "'image/gif' or 'image/webp'")
    blob = _decode(source.get("data"))
    if not blob:
        return invalid(f"{where}.base64.data: The image data is not valid base64.")  # reconstructed
    if not blob.startswith(_MAGIC[media_type]):
        return invalid(f"{where}.base64.data: Image does not match the provided media type "
                       f"{media_type}")
    return None


def _document(block: dict[str, Any], where: str, invalid: Invalid) -> Any:
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") not in (
        "base64", "text", "content", "url", "file"
    ):
        return invalid(f"{where}.source: Input tag does not match any of the expected tags")
    if "title" in block and not isinstance(block["title"], str):
        return invalid(f"{where}.title: Input should be a valid string")
    if source["type"] != "base64":
        return None
    if source.get("media_type") != "application/pdf":
        return invalid(f"{where}.source.base64.media_type: Input should be 'application/pdf'")
    blob = _decode(source.get("data"))
    if not blob or not blob.startswith(b"%PDF-"):
        return invalid(f"{where}.source.base64.data: The PDF specified was not valid.")
    return None


def _tool_turns(messages: list[dict[str, Any]], i: int, invalid: Invalid) -> Any:
    """tool_use <-> tool_result pairing between turn ``i`` and its neighbours."""
    content = messages[i]["content"]
    if messages[i]["role"] == "assistant":
        uses = [b["id"] for b in content if b["type"] == "tool_use"]
        if uses and i + 1 < len(messages):
            after = messages[i + 1]["content"]
            answered = {b.get("tool_use_id") for b in after if isinstance(b, dict)
                        and b.get("type") == "tool_result"} if isinstance(after, list) else set()
            missing = [u for u in uses if u not in answered]
            if missing or messages[i + 1]["role"] != "user":
                return invalid(
                    f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing or uses)}. Each `tool_use` block "
                    "must have a corresponding `tool_result` block in the next message."
                )
        return None
    results = [(j, b) for j, b in enumerate(content) if b["type"] == "tool_result"]
    if not results:
        return None
    before = messages[i - 1] if i else None
    ids: set[Any] = set()
    if before is not None and before["role"] == "assistant" and isinstance(
        before["content"], list
    ):
        ids = {b.get("id") for b in before["content"] if b.get("type") == "tool_use"}
    for j, result in results:
        if result["tool_use_id"] not in ids:
            return invalid(
                f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {result['tool_use_id']}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )
    first_other = next((j for j, b in enumerate(content) if b["type"] != "tool_result"), None)
    if first_other is not None and first_other < results[-1][0]:
        return invalid(
            f"messages.{i}: `tool_result` blocks must come first in the user message, before "
            "any other content."  # reconstructed
        )
    return None


def _thinking_turn(messages: list[dict[str, Any]], invalid: Invalid) -> Any:
    """With thinking on, the assistant turn of the ongoing tool use (the last assistant
    turn, answered by tool results in the last user turn) must start with its thinking."""
    last = messages[-1]
    if last["role"] != "user" or not isinstance(last["content"], list) or not any(
        b["type"] == "tool_result" for b in last["content"]
    ):
        return None
    i = len(messages) - 2
    if i < 0 or messages[i]["role"] != "assistant":
        return None
    content = messages[i]["content"]
    first = content[0]["type"] if isinstance(content, list) and content else "text"
    if first not in ("thinking", "redacted_thinking"):
        return invalid(
            f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
            f"found `{first}`. When `thinking` is enabled, a final `assistant` message must "
            "start with a thinking block (preceeding the lastmost set of `tool_use` and "
            "`tool_result` blocks). We recommend you include thinking blocks from previous "
            "turns. To avoid this requirement, disable `thinking`. Please consult our "
            f"documentation at {_THINKING_DOCS}"
        )
    return None


# ------------------------------------------------------------------------------- cache


def _cache(body: Mapping[str, Any], invalid: Invalid) -> Any:
    count = 0
    system = body.get("system")
    places: list[Any] = list(system) if isinstance(system, list) else []
    places += list(body.get("tools") or ())
    for message in body["messages"]:
        if isinstance(message["content"], list):
            places += message["content"]
    for item in places:
        if isinstance(item, dict) and "cache_control" in item:
            control = item["cache_control"]
            if not isinstance(control, dict) or control.get("type") != "ephemeral" or (
                control.get("ttl", "5m") not in ("5m", "1h")
            ):
                return invalid("cache_control: Input should be {'type': 'ephemeral'}")
            count += 1
    if count > MAX_BREAKPOINTS:
        return invalid(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {count}."
        )
    return None
