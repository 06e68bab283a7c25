"""Token counting before a call: ``await llm.count_tokens(messages, tools=...)``.

What is counted is the request the call would send: the turns with the system prompt, the
tools and the other per-call settings, encoded by the provider's own encode module. How it
is counted depends on the provider, and the answer says which (:class:`TokenCount`):

- the provider's counting endpoint where one exists, sent over the LLM's connection (the
  call's ``api_key`` / ``base_url`` if given) with its errors mapped like a chat call's:
  Anthropic ``count_tokens``, Gemini ``countTokens``, Bedrock ``CountTokens``
  (``providers/<x>/count.py``); Cohere's ``tokenize`` counts text only, not the chat
  template around it, so its count is marked inexact;
- ``tiktoken`` for OpenAI models when the package and the encoding's file are on this
  machine (tiktoken's own cache: ``TIKTOKEN_CACHE_DIR``); nothing is ever downloaded
  during a call, so an offline machine never waits on a download;
- otherwise :func:`estimate`, ``.exact=False``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from synapsekit.llm.types import Message, MessagesInput, build_messages

if TYPE_CHECKING:
    from synapsekit.llm.base import BaseLLM
    from synapsekit.llm.config import LLMConfig

__all__ = ["ESTIMATE", "TokenCount", "chat_tokens", "count_tokens", "estimate", "tiktoken_for"]

#: ``TokenCount.method`` of a count that is a character-based estimate.
ESTIMATE = "estimate"
#: Providers with a counting endpoint: the module ``providers/<x>/count.py`` of each.
ENDPOINTS = {"anthropic": "anthropic", "gemini": "gemini", "cohere": "cohere",
             "bedrock": "bedrock"}
#: tiktoken's encoding files (name -> file and its sha256, as tiktoken_ext.openai_public
#: names them). A file is used only when tiktoken's cache already holds it with this hash:
#: then ``tiktoken.get_encoding`` reads it and never downloads.
ENCODING_FILES = {
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}
#: OpenAI's documented chat framing (the cookbook's ``num_tokens_from_messages`` for the
#: gpt-4o / gpt-4 families): tokens around each message, and the reply's priming.
PER_MESSAGE = 3
REPLY_PRIMING = 3


class TokenCount(int):
    """A token count: an ``int``, plus how it was obtained. ``exact`` is True when the
    provider's tokenizer counted the whole request (its counting endpoint, or tiktoken on
    a text-only OpenAI request); False for an estimate or a partial count. ``method`` names
    the way, e.g. ``"anthropic count_tokens"``, ``"tiktoken o200k_base"``, ``"estimate"``."""

    exact: bool
    method: str

    def __new__(cls, value: int, *, exact: bool, method: str) -> TokenCount:
        count = super().__new__(cls, value)
        count.exact = exact
        count.method = method
        return count

    def __repr__(self) -> str:
        return f"TokenCount({int(self)}, exact={self.exact}, method={self.method!r})"

    def __reduce__(self) -> Any:
        return (_rebuild, (int(self), self.exact, self.method))


def _rebuild(value: int, exact: bool, method: str) -> TokenCount:
    return TokenCount(value, exact=exact, method=method)


async def count_tokens(
    llm: BaseLLM, messages: MessagesInput, *, tools: Any = None, **overrides: Any
) -> TokenCount:
    """The input tokens of the request ``llm`` would send for ``messages`` (see the module
    docstring). ``overrides`` are a call's settings (``system_prompt``, ``tool_choice``,
    ``response_schema``, ``api_key``, ``base_url`` ...); ``budget`` is ignored: counting is
    not billed. A request the provider cannot take is refused as the call would be."""
    overrides.pop("budget", None)
    if tools is not None:
        overrides["tools"] = tools
    config = llm._call_config(overrides)
    turns = build_messages(messages, config.system_prompt)
    llm._check_request(turns, config, messages)
    module = ENDPOINTS.get(llm.provider)
    if module is not None:
        import importlib

        counter = importlib.import_module(f"synapsekit.llm.providers.{module}.count")
        found: TokenCount = await counter.count(llm, turns, config)
        return found
    if llm.provider in _OPENAI_FAMILY:
        from synapsekit.llm.providers.openai_compat.count import count as openai_count

        return openai_count(llm, turns, config)
    return estimate(turns, config)


#: The providers speaking the chat-completions protocol (providers/openai_compat).
_OPENAI_FAMILY = frozenset({
    "openai", "azure", "groq", "deepseek", "together", "fireworks", "openrouter",
    "perplexity", "cerebras",
})


def estimate(turns: Sequence[Message], config: LLMConfig, *, method: str = ESTIMATE) -> TokenCount:
    """The rate limiter's estimate (:func:`~synapsekit.llm.ratelimit.estimate_tokens`:
    characters / 4 of the turns, the tools' names, descriptions and schemas and the
    response schema, a fixed figure per image or document; no ``max_tokens``); marked
    ``exact=False``. Off by 10-30% for English prose, more for code or CJK."""
    from synapsekit.llm.ratelimit import estimate_tokens

    found = estimate_tokens(
        turns, 0, tools=config.tools, response_schema=config.response_schema
    )
    return TokenCount(found, exact=False, method=method)


def chat_tokens(
    messages: Sequence[Mapping[str, Any]], encode: Callable[[str], int]
) -> tuple[int, bool]:
    """Chat-completions input tokens of ``messages`` (the wire's dicts), OpenAI's framing:
    :data:`PER_MESSAGE` per message, its role and text content encoded, a ``name`` one more
    token, :data:`REPLY_PRIMING` at the end. Also whether that is the whole request: parts
    other than text and tool calls are not in the documented rule (False then; their text
    is still counted)."""
    import json

    total = REPLY_PRIMING
    whole = True
    for message in messages:
        total += PER_MESSAGE
        for key, value in message.items():
            if key == "name" and isinstance(value, str):
                total += encode(value) + 1
            elif key in ("role", "content") and isinstance(value, str):
                total += encode(value)
            elif key == "content" and isinstance(value, list):
                for part in value:
                    if isinstance(part, Mapping) and part.get("type") == "text":
                        total += encode(str(part.get("text", "")))
                    else:
                        whole = False
            elif value is not None:
                whole = False
                total += encode(json.dumps(value, separators=(",", ":")))
    return total, whole


def tiktoken_for(model: str) -> Any | None:
    """tiktoken's encoding for an OpenAI model when tiktoken and the encoding's file are
    on this machine, else None. Never downloads: the file must already be in tiktoken's
    cache (``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``, else the temp dir's
    ``data-gym-cache``) with its published sha256."""
    try:
        import tiktoken
    except ImportError:
        return None
    name = None
    for candidate in (model, model.rsplit("/", 1)[-1]):
        try:
            name = tiktoken.encoding_name_for_model(candidate)
            break
        except KeyError:
            continue
    if name is None or name not in ENCODING_FILES:
        return None
    url, sha256 = ENCODING_FILES[name]
    import hashlib

    path = os.path.join(_cache_dir(), hashlib.sha1(url.encode()).hexdigest())
    return _load(name, path, sha256)


def _cache_dir() -> str:
    """Where tiktoken keeps its files (its own rule, read at each call as tiktoken does)."""
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            return os.environ[variable]
    import tempfile

    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


@functools.lru_cache(maxsize=8)
def _load(name: str, path: str, sha256: str) -> Any | None:
    """The encoding, read once per file (a few hundred ms); None when the file is missing
    or not the published one (tiktoken would then download it again: never here)."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return None
    import hashlib

    if hashlib.sha256(data).hexdigest() != sha256:
        return None
    import tiktoken

    return tiktoken.get_encoding(name)
