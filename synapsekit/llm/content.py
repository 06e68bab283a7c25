"""Content parts: what a message may hold besides a string, in one canonical shape.

A message's ``content`` is a string or a list of parts. The caller may write a part in our
shape or OpenAI's; :func:`normalize_parts` turns either into the canonical dicts below, once,
before any request, so every provider's encoder reads one shape::

    {"type": "text", "text": str}
    {"type": "image", "data": bytes, "media_type": "image/png"}     # bytes, decoded
    {"type": "image", "url": "https://..."}                         # a remote image
    {"type": "document", "data": bytes, "media_type": "application/pdf", "name": str?}

Accepted on input: ``data`` as bytes or a base64 string; ``{"type": "image", "url":
"data:image/png;base64,..."}`` and OpenAI's ``{"type": "image_url", "image_url": {"url":
...}}`` (a ``data:`` URL becomes bytes); ``{"type": "text"}`` with OpenAI's ``input_text``
name too. A missing ``media_type`` is read from the bytes' signature (PNG, JPEG, GIF, WebP,
PDF). Anything else is an :class:`~synapsekit.errors.InvalidInputError` naming the part.
Which parts a provider can send is its :class:`Capabilities`; the call path checks that
before any request (:func:`check_parts`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Union

from synapsekit.errors import InvalidInputError, UnsupportedFeatureError

__all__ = [
    "IMAGE_TYPES",
    "Capabilities",
    "DocumentPart",
    "ImagePart",
    "Part",
    "TextPart",
    "b64",
    "check_parts",
    "data_url",
    "normalize_parts",
    "part_digest",
    "text_of",
]

#: Image media types every provider with vision takes.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImagePart(TypedDict, total=False):
    type: Literal["image"]
    data: bytes
    url: str
    media_type: str


class DocumentPart(TypedDict, total=False):
    type: Literal["document"]
    data: bytes
    media_type: str
    name: str


Part = Union[TextPart, ImagePart, DocumentPart]  # noqa: UP007 - a runtime alias on 3.10


@dataclass(frozen=True)
class Capabilities:
    """What one provider's API can take and do (docs/providers.md is generated from these).

    ``images``: image parts as bytes; ``image_urls``: remote image URLs passed as URLs (when
    False, a URL part is refused: synapsekit never downloads on the caller's behalf);
    ``documents``: PDF parts; ``tools``: function tools; ``parallel_tool_calls``: the API
    has the switch; ``tool_choices``: which of ``auto none required name`` it accepts;
    ``structured``: how ``generate_object`` gets JSON (``"json_schema"`` native schema mode,
    ``"tool"`` a forced tool call, ``"json"`` JSON mode plus validation, ``""`` none);
    ``reasoning``: which controls map (``"effort"``, ``"budget"``, both, or none).
    """

    images: bool = False
    image_urls: bool = False
    documents: bool = False
    tools: bool = False
    parallel_tool_calls: bool = False
    tool_choices: frozenset[str] = frozenset()
    structured: str = ""
    reasoning: frozenset[str] = frozenset()
    note: str = ""


def normalize_parts(content: Any, where: str) -> list[Part]:
    """A list of parts (ours or OpenAI's) as canonical parts; ``where`` names the message
    in errors (e.g. ``"messages[2] (user)"``)."""
    if isinstance(content, (str, bytes, Mapping)) or not isinstance(content, Sequence):
        raise InvalidInputError(
            f"{where} content must be a string or a list of parts, not "
            f"{type(content).__name__}."
        )
    if not content:
        raise InvalidInputError(f"{where} has an empty list of content parts.")
    return [_part(raw, f"{where} content[{i}]") for i, raw in enumerate(content)]


def _part(raw: Any, where: str) -> Part:
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"{where} must be a dict with a 'type', not {type(raw).__name__}.")
    kind = raw.get("type")
    if kind in ("text", "input_text"):
        text = raw.get("text")
        if not isinstance(text, str) or not text:
            raise InvalidInputError(f"{where} is a text part without text.")
        return {"type": "text", "text": text}
    if kind == "image_url":  # OpenAI's shape: {"image_url": {"url": ...}} or a bare string
        inner = raw.get("image_url")
        url = inner.get("url") if isinstance(inner, Mapping) else inner
        return _image({"url": url}, where)
    if kind == "image":
        return _image(raw, where)
    if kind in ("document", "file"):
        return _document(raw, where)
    raise InvalidInputError(
        f"{where} has type {kind!r}; a part is one of: text, image, image_url, document."
    )


def _image(raw: Mapping[str, Any], where: str) -> ImagePart:
    url, data = raw.get("url"), raw.get("data")
    media_type = raw.get("media_type") or raw.get("mime_type")
    if url is not None and data is None:
        if not isinstance(url, str) or not url:
            raise InvalidInputError(f"{where}: an image url must be a non-empty string.")
        if url.startswith("data:"):
            media_type, data = _parse_data_url(url, where)
        elif url.startswith(("http://", "https://")):
            part: ImagePart = {"type": "image", "url": url}
            if media_type:
                part["media_type"] = _media_type(media_type, where)
            return part
        else:
            raise InvalidInputError(
                f"{where}: image url {url[:40]!r} is neither http(s):// nor a data: URL."
            )
    blob = _bytes(data, where)
    found = _media_type(media_type, where) if media_type else _sniff(blob, where)
    if found not in IMAGE_TYPES:
        raise InvalidInputError(
            f"{where}: {found} is not an image type; images are {', '.join(IMAGE_TYPES)}."
        )
    return {"type": "image", "data": blob, "media_type": found}


def _document(raw: Mapping[str, Any], where: str) -> DocumentPart:
    data = raw.get("data")
    if data is None and isinstance(raw.get("file"), Mapping):  # OpenAI: {"file": {"file_data"}}
        inner = raw["file"]
        data = inner.get("file_data")
        if isinstance(data, str) and data.startswith("data:"):
            _, data = _parse_data_url(data, where)
        raw = {"name": inner.get("filename"), **raw}
    blob = _bytes(data, where)
    media_type = raw.get("media_type")
    found = _media_type(media_type, where) if media_type else _sniff(blob, where)
    if found != "application/pdf":
        raise InvalidInputError(f"{where}: documents are PDFs (application/pdf), not {found}.")
    part: DocumentPart = {"type": "document", "data": blob, "media_type": found}
    name = raw.get("name")
    if isinstance(name, str) and name:
        part["name"] = name
    return part


def _bytes(data: Any, where: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        blob = bytes(data)
    elif isinstance(data, str):
        try:
            blob = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(f"{where}: 'data' is a string but not valid base64.") from None
    else:
        raise InvalidInputError(
            f"{where} needs 'data' (bytes or a base64 string) or a 'url', "
            f"not {type(data).__name__}."
        )
    if not blob:
        raise InvalidInputError(f"{where}: 'data' is empty.")
    return blob


def _parse_data_url(url: str, where: str) -> tuple[str, bytes]:
    header, comma, payload = url[5:].partition(",")
    if not comma or not header.endswith(";base64"):
        raise InvalidInputError(f"{where}: a data: URL must be 'data:<type>;base64,<data>'.")
    return header[: -len(";base64")] or "application/octet-stream", _bytes(payload, where)


def _media_type(value: Any, where: str) -> str:
    if not isinstance(value, str) or "/" not in value:
        raise InvalidInputError(f"{where}: media_type {value!r} is not a MIME type.")
    return value.lower()


def _sniff(blob: bytes, where: str) -> str:
    for signature, media_type in _SIGNATURES:
        if blob.startswith(signature):
            return media_type
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return "image/webp"
    raise InvalidInputError(
        f"{where}: cannot tell the media type from the bytes; pass media_type=... "
        "(PNG, JPEG, GIF, WebP and PDF are recognised)."
    )


def b64(part: ImagePart | DocumentPart) -> str:
    """The part's bytes as base64 text (what JSON APIs send)."""
    return base64.b64encode(part["data"]).decode("ascii")


def data_url(part: ImagePart | DocumentPart) -> str:
    """``data:<media_type>;base64,<data>`` (OpenAI-style image_url / file_data)."""
    return f"data:{part['media_type']};base64,{b64(part)}"


def part_digest(part: Part) -> dict[str, Any]:
    """The part as the cache key sees it: bytes by SHA-256, never the bytes themselves."""
    if "data" in part:
        import hashlib  # only a cached call with bytes parts hashes here

        shown: dict[str, Any] = {k: v for k, v in part.items() if k != "data"}
        shown["sha256"] = hashlib.sha256(part["data"]).hexdigest()  # type: ignore[typeddict-item]
        return shown
    return dict(part)


def text_of(content: str | Sequence[Part]) -> str:
    """The text of a content (parts' texts joined): for providers and traces that need it."""
    if isinstance(content, str):
        return content
    return "".join(p["text"] for p in content if p["type"] == "text")


def check_parts(
    content: str | Sequence[Part], caps: Capabilities, provider: str, where: str
) -> None:
    """Refuse, before any request, a part the provider cannot take, naming what it accepts
    (an :class:`~synapsekit.errors.UnsupportedFeatureError`, an InvalidInputError)."""
    if isinstance(content, str):
        return
    for i, part in enumerate(content):
        kind = part["type"]
        if kind == "text":
            continue
        if kind == "image" and "url" in part and not caps.image_urls and caps.images:
            raise UnsupportedFeatureError(
                f"{where} content[{i}]: {provider} takes images as bytes, not URLs; pass "
                "{'type': 'image', 'data': <bytes>} (synapsekit does not download for you)."
            )
        if (kind == "image" and not caps.images) or (kind == "document" and not caps.documents):
            raise UnsupportedFeatureError(
                f"{where} content[{i}]: {provider} does not take {kind} parts; it accepts: "
                f"{_accepted(caps)}."
            )


def _accepted(caps: Capabilities) -> str:
    kinds = ["text"]
    if caps.images:
        kinds.append("images" + (" (bytes or URL)" if caps.image_urls else " (bytes)"))
    if caps.documents:
        kinds.append("PDF documents")
    return ", ".join(kinds)
