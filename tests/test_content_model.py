"""The content model: parts in one canonical shape, tool turns, and their checks."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from synapsekit.errors import InvalidInputError, UnsupportedFeatureError
from synapsekit.llm.content import (
    Capabilities,
    b64,
    check_parts,
    data_url,
    normalize_parts,
    part_digest,
    text_of,
)
from synapsekit.llm.types import ToolCall, build_messages

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x02" * 8
PDF = b"%PDF-1.7\n" + b"\x03" * 8
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 "


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ({"type": "text", "text": "hi"}, {"type": "text", "text": "hi"}),
        ({"type": "input_text", "text": "hi"}, {"type": "text", "text": "hi"}),
        ({"type": "image", "data": PNG}, {"type": "image", "data": PNG, "media_type": "image/png"}),
        ({"type": "image", "data": base64.b64encode(JPEG).decode()},
         {"type": "image", "data": JPEG, "media_type": "image/jpeg"}),
        ({"type": "image", "data": WEBP}, {"type": "image", "data": WEBP,
                                            "media_type": "image/webp"}),
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,"
                                             + base64.b64encode(PNG).decode()}},
         {"type": "image", "data": PNG, "media_type": "image/png"}),
        ({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
         {"type": "image", "url": "https://example.com/a.png"}),
        ({"type": "image", "url": "https://example.com/a", "media_type": "IMAGE/PNG"},
         {"type": "image", "url": "https://example.com/a", "media_type": "image/png"}),
        ({"type": "document", "data": PDF, "name": "a.pdf"},
         {"type": "document", "data": PDF, "media_type": "application/pdf", "name": "a.pdf"}),
        ({"type": "file", "file": {"file_data": "data:application/pdf;base64,"
                                   + base64.b64encode(PDF).decode(), "filename": "r.pdf"}},
         {"type": "document", "data": PDF, "media_type": "application/pdf", "name": "r.pdf"}),
    ],
)
def test_parts_in_our_shape_or_openais_become_one_canonical_shape(
    raw: dict[str, Any], canonical: dict[str, Any]
) -> None:
    assert normalize_parts([raw], "m") == [canonical]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"type": "audio", "data": b"x"}, "has type 'audio'"),
        ({"type": "text", "text": ""}, "a text part without text"),
        ({"type": "image", "data": "not base64!"}, "not valid base64"),
        ({"type": "image", "data": b""}, "'data' is empty"),
        ({"type": "image", "data": b"\x00\x01\x02"}, "cannot tell the media type"),
        ({"type": "image", "data": PDF}, "application/pdf is not an image type"),
        ({"type": "document", "data": PNG}, "documents are PDFs"),
        ({"type": "image", "url": "ftp://x/y.png"}, "neither http(s):// nor a data: URL"),
        ({"type": "image_url", "image_url": {"url": "data:image/png,abc"}}, "data: URL must be"),
        ("just text", "must be a dict"),
    ],
)
def test_a_bad_part_is_named_before_any_request(raw: Any, says: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        build_messages([{"role": "user", "content": [raw]}], None)
    assert says in str(err.value) and "messages[0] (user) content[0]" in str(err.value)


def test_helpers_encode_digest_and_read_text() -> None:
    [image] = normalize_parts([{"type": "image", "data": PNG}], "m")
    assert b64(image) == base64.b64encode(PNG).decode()  # type: ignore[arg-type]
    assert data_url(image) == "data:image/png;base64," + base64.b64encode(PNG).decode()  # type: ignore[arg-type]
    assert part_digest(image) == {"type": "image", "media_type": "image/png",
                                  "sha256": hashlib.sha256(PNG).hexdigest()}
    assert text_of([{"type": "text", "text": "a"}, image, {"type": "text", "text": "b"}]) == "ab"
    assert text_of("plain") == "plain"


def test_tool_turns_are_canonical() -> None:
    turns = build_messages([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            ToolCall("call_2", "get_time", {}, 1),
        ], "provider_data": {"protocol": "anthropic", "content": [{"type": "thinking"}]}},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "9"}]},
    ], "Be brief.")
    assert turns == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [
            ToolCall("call_1", "get_weather", {"city": "Paris"}, 0),
            ToolCall("call_2", "get_time", {}, 1),
        ], "provider_data": {"protocol": "anthropic", "content": [{"type": "thinking"}]}},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1", "name": "get_weather"},
        {"role": "tool", "content": [{"type": "text", "text": "9"}], "tool_call_id": "call_2"},
    ]


@pytest.mark.parametrize(
    ("turn", "says"),
    [
        ({"role": "tool", "content": "x"}, "needs 'tool_call_id'"),
        ({"role": "assistant", "content": "", "tool_calls": [
            {"id": "c", "function": {"name": "f", "arguments": "{bad"}}]},
         "arguments are not valid JSON"),
        ({"role": "assistant", "content": "", "tool_calls": [
            {"id": "c", "function": {"name": "f", "arguments": "[1]"}}]},
         "arguments must be a JSON object"),
        ({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f"}}]},
         "needs an 'id' and a 'name'"),
        ({"role": "assistant", "content": "", "tool_calls": "call"}, "must be a list"),
        ({"role": "system", "content": [{"type": "text", "text": "x"}]}, "must be a string"),
        ({"role": "user", "content": []}, "empty list of content parts"),
    ],
)
def test_bad_tool_turns_are_refused(turn: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidInputError, match=says.replace("(", r"\(").replace("[", r"\[")):
        build_messages([turn, {"role": "user", "content": "q"}], None)


def test_check_parts_raises_unsupported_feature_naming_what_the_provider_takes() -> None:
    parts = normalize_parts([{"type": "text", "text": "see"}, {"type": "document", "data": PDF}],
                            "m")
    caps = Capabilities(images=True)
    with pytest.raises(UnsupportedFeatureError) as err:
        check_parts(parts, caps, "ollama (model 'llava')", "messages[0] (user)")
    assert str(err.value) == (
        "messages[0] (user) content[1]: ollama (model 'llava') does not take document parts; "
        "it accepts: text, images (bytes)."
    )
    url = normalize_parts([{"type": "image", "url": "https://x.org/a.png"}], "m")
    with pytest.raises(UnsupportedFeatureError, match="takes images as bytes, not URLs"):
        check_parts(url, caps, "bedrock", "messages[0] (user)")
    check_parts(url, Capabilities(images=True, image_urls=True), "openai", "m")
    check_parts("text only", Capabilities(), "custom", "m")
