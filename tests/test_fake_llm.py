"""FakeLLM and the base call path it shares with every provider."""

from __future__ import annotations

import asyncio

import pytest

from synapsekit.errors import AuthenticationError, RateLimitError, StreamInterruptedError
from synapsekit.testing import FakeLLM, fake_tokens


def test_fake_tokens_join_back_exactly() -> None:
    text = "  Hello,  world!\nNew line "
    assert "".join(fake_tokens(text)) == text
    assert fake_tokens("A short summary.") == ["A", " short", " summary."]


async def test_replies_in_order_then_last_repeats() -> None:
    llm = FakeLLM(["one", "two"], system_prompt=None)
    assert [await llm.generate("q") for _ in range(3)] == ["one", "two", "two"]
    assert llm.calls[0] == [{"role": "user", "content": "q"}]
    assert llm.tokens_used == {"input": 3, "output": 3}


async def test_thousand_concurrent_calls_account_exactly() -> None:
    llm = FakeLLM(["a b c d e"], input_tokens=7, delay=0.001)
    answers = await asyncio.gather(*(llm.generate(f"q{i}") for i in range(1000)))
    assert answers == ["a b c d e"] * 1000
    assert llm.tokens_used == {"input": 7000, "output": 5000}


async def test_scripted_retryable_error_is_retried() -> None:
    llm = FakeLLM([RateLimitError("slow down", retry_after=0), "ok"], max_retries=1)
    assert await llm.generate("q") == "ok"
    assert len(llm.calls) == 2


async def test_scripted_auth_error_is_not_retried() -> None:
    llm = FakeLLM([AuthenticationError("bad key"), "never"], max_retries=3)
    with pytest.raises(AuthenticationError):
        await llm.generate("q")
    assert len(llm.calls) == 1


async def test_retries_exhausted_raise_the_last_error() -> None:
    llm = FakeLLM([RateLimitError("1", retry_after=0), RateLimitError("2", retry_after=0)],
                  max_retries=1)
    with pytest.raises(RateLimitError, match="2"):
        await llm.generate("q")
    assert len(llm.calls) == 2


async def test_length_finish_is_reported() -> None:
    llm = FakeLLM(["cut"], finish_reason="length")
    final = [c async for c in llm.stream_chunks("q")][-1]
    assert final.finish_reason == "length"
    assert final.usage is not None and final.usage.output_tokens == 1


async def test_interrupted_error_has_partial_text() -> None:
    # The call path, not the provider, turns a late failure into StreamInterruptedError.
    llm = FakeLLM(["x"], max_retries=3)

    async def broken(messages, config):  # type: ignore[no-untyped-def]
        from synapsekit.llm.types import Chunk

        yield Chunk("par")
        yield Chunk("tial")
        raise RateLimitError("late", retry_after=0)

    llm._stream = broken  # type: ignore[method-assign]  # our own class, not an SDK
    with pytest.raises(StreamInterruptedError) as err:
        await llm.generate("q", max_tokens=5)
    assert err.value.partial_text == "partial"
    assert llm.tokens_used == {"input": 0, "output": 0}
