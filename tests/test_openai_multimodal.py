"""Images and PDFs on the OpenAI protocol: bytes as data URLs, remote images as URLs, PDFs as
``file`` parts (OpenAI, OpenRouter); a part a vendor cannot take refused before any request;
the simulator's own checks of image / file parts."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from synapsekit import make_llm
from synapsekit.errors import InvalidInputError, UnsupportedFeatureError
from synapsekit.llm.tools import Tool
from synapsekit.testing.simulators.openai_checks import check_features
from synapsekit.testing.simulators.openai_protocol import (
    OpenAISimulator,
    _invalid,
    capture,
    text_stream,
)
from tests.conftest import API_KEY

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
PDF_URL = "data:application/pdf;base64," + base64.b64encode(PDF).decode()


@pytest.fixture
def sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(API_KEY) as server:
        yield server


def _question(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, *parts]}]


async def test_image_bytes_and_url_as_image_url_parts(sim: OpenAISimulator) -> None:
    sim.enqueue(text_stream(["A", " cat."]))
    llm = make_llm("openai:gpt-4o", api_key=API_KEY, base_url=sim.url)
    response = await llm.respond(_question(
        {"type": "image", "data": PNG},
        {"type": "image", "url": "https://example.com/cat.jpg"},
    ))
    assert response.text == "A cat."
    assert sim.requests[0].json()["messages"][-1]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize("provider", ["openai", "openrouter"])
async def test_pdf_as_file_part(provider: str) -> None:
    with OpenAISimulator(API_KEY, vendor=provider) as sim:
        sim.enqueue(text_stream(["A", " form."]))
        llm = make_llm(f"{provider}:gpt-4o", api_key=API_KEY, base_url=sim.url)
        await llm.respond(_question({"type": "document", "data": PDF, "name": "form.pdf"}))
        assert sim.requests[0].json()["messages"][-1]["content"][1] == {
            "type": "file", "file": {"filename": "form.pdf", "file_data": PDF_URL}}


async def test_openai_shaped_parts_round_trip(sim: OpenAISimulator) -> None:
    sim.enqueue(text_stream(["ok"]))
    llm = make_llm("openai:gpt-4o", api_key=API_KEY, base_url=sim.url)
    await llm.respond(_question(
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF_URL}},
    ))
    content = sim.requests[0].json()["messages"][-1]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": PNG_URL}}
    assert content[2] == {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF_URL}}


@pytest.mark.parametrize(("spec", "part", "error"), [
    ("deepseek:deepseek-chat", {"type": "image", "data": PNG}, InvalidInputError),
    ("cerebras:gpt-oss-120b", {"type": "image", "data": PNG}, InvalidInputError),
    ("groq:meta-llama/llama-4-scout-17b-16e-instruct", {"type": "document", "data": PDF},
     InvalidInputError),
    ("azure:gpt-4o", {"type": "document", "data": PDF}, InvalidInputError),
    ("perplexity:sonar", {"type": "document", "data": PDF}, InvalidInputError),
    ("together:meta-llama/Llama-4-Scout", {"type": "document", "data": PDF},
     InvalidInputError),
])
async def test_part_the_vendor_cannot_take_refused_before_any_request(
    sim: OpenAISimulator, spec: str, part: dict[str, Any], error: type[Exception],
) -> None:
    llm = make_llm(spec, api_key=API_KEY, base_url=sim.url)
    with pytest.raises(error, match="does not take"):
        await llm.respond(_question(part))
    assert sim.requests == []


async def test_image_in_a_tool_result_refused_before_any_request(sim: OpenAISimulator) -> None:
    llm = make_llm("openai:gpt-4o", api_key=API_KEY, base_url=sim.url)
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "snap", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_a",
         "content": [{"type": "image", "data": PNG}]},
    ]
    with pytest.raises(UnsupportedFeatureError, match="only text in a tool message"):
        await llm.respond(history, tools=[Tool("snap")])
    assert sim.requests == []


async def test_image_question_then_tool_call_capture(sim: OpenAISimulator) -> None:
    sim.enqueue(capture("openai/stream_tool_call.sse"))
    llm = make_llm("openai:gpt-4o", api_key=API_KEY, base_url=sim.url)
    response = await llm.respond(_question({"type": "image", "data": PNG}),
                                 tools=[Tool("get_weather")])
    assert response.tool_calls[0].name == "get_weather"


@pytest.mark.parametrize(("url", "fragment"), [
    ("data:image/png;base64,@@@not-base64@@@", b"Expected a base64-encoded data URL"),
    ("data:image/tiff;base64,AAAA", b"Expected a base64-encoded data URL"),
    ("ftp://example.com/a.png", b"expected a URL"),
])
def test_simulator_refuses_bad_image_urls(url: str, fragment: bytes) -> None:
    body = {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}]}
    reply = check_features(body, "gpt-4o", "openai", _invalid)
    assert reply is not None and reply.status == 400 and fragment in reply.body
    assert b'"param": "messages[0].content[0].image_url.url"' in reply.body


def test_simulator_refuses_file_parts_where_the_vendor_has_none() -> None:
    body = {"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF_URL}}]}]}
    assert check_features(body, "gpt-4o", "openai", _invalid) is None
    reply = check_features(body, "llama", "groq", _invalid)
    assert reply is not None and b"Invalid value: 'file'" in reply.body
    no_name = {"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": PDF_URL}}]}]}
    reply = check_features(no_name, "gpt-4o", "openai", _invalid)
    assert reply is not None and b"file.filename" in reply.body
