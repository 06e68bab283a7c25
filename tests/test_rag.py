"""The RAG facade and the ``synapsekit`` CLI, against the OpenAI-protocol simulator.

What the simulator receives is the proof: the prompt carries the right passage and not
the corpus, calls go through the LLM layer (traced, cached), a reopened store makes no
embedding call, and bad input leaves the store exactly as it was.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synapsekit import RAG
from synapsekit.cli import main
from synapsekit.errors import InvalidInputError, MissingAPIKeyError, StoreError
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parent.parent
HELLO = ["Hello", ",", " world", "!"]
TOPICS = {
    "zanzibar.md": "# Zanzibar\n\nThe old town of Zanzibar City is called Stone Town. "
                   "Its carved wooden doors are famous.\n",
    "volcanoes.md": "# Volcanoes\n\nMauna Loa on Hawaii is the largest active volcano on "
                    "Earth by volume.\n",
    "bees.txt": "Honey bees communicate the direction of flowers with a waggle dance.\n",
    "rust.rst": "Ownership\n=========\n\nRust frees memory when the owner goes out of scope.\n",
    "tea.html": "<html><head><title>Tea</title><script>var x = 1;</script></head><body>"
                "<h1>Tea</h1><p>Darjeeling tea grows in the foothills of the Himalayas.</p>"
                "</body></html>",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in TOPICS.items():
        (folder / name).write_text(text)
    for i in range(40):  # filler, so "the whole corpus" is much bigger than top-k
        (folder / f"filler{i:02}.txt").write_text(
            f"Filler note {i}. The weather report for district {i} mentions light rain "
            f"and a gentle breeze over the hills of region {i}.\n"
        )
    return folder


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def _rag(sim: OpenAISimulator, **fields: Any) -> RAG:
    fields.setdefault("api_key", API_KEY)
    return RAG(model="gpt-4o-mini", base_url=sim.url, **fields)


def _chat_requests(sim: OpenAISimulator) -> list[dict[str, Any]]:
    return [r.json() for r in sim.requests if r.path.endswith("/chat/completions")]


def _embedding_requests(sim: OpenAISimulator) -> list[Any]:
    return [r for r in sim.requests if r.path.endswith("/embeddings")]


async def test_the_prompt_holds_the_right_passage_not_the_corpus(
    openai_sim: OpenAISimulator, corpus: Path
) -> None:
    rag = _rag(openai_sim, top_k=3)
    report = await rag.aadd(corpus)
    assert len(report.added) == 45 and report.skipped == []
    answer = await rag.ask("What is the old town of Zanzibar City called?", return_sources=True)
    assert str(answer) == "Hello, world!"
    assert answer.sources[0].source == str(corpus / "zanzibar.md")
    (body,) = _chat_requests(openai_sim)
    prompt = body["messages"][-1]["content"]
    assert "[1] " + str(corpus / "zanzibar.md") in prompt
    assert "Stone Town" in prompt
    assert "Mauna Loa" not in prompt and "waggle dance" not in prompt
    assert prompt.count("\n[") <= 3  # top_k sources, numbered
    assert body["messages"][0]["role"] == "system"
    assert len(prompt) < _size(corpus) / 5
    await rag.aclose()


async def test_answers_stream_and_are_traced(openai_sim: OpenAISimulator, corpus: Path) -> None:
    rag = _rag(openai_sim)
    await rag.aadd(corpus / "bees.txt")
    stream = rag.stream("How do bees tell where flowers are?")
    assert [t async for t in stream] == HELLO
    assert [h.source for h in stream.sources] == [str(corpus / "bees.txt")]
    assert stream.answer == "Hello, world!" and stream.answer.sources == stream.sources
    assert (stream.answer.usage.input_tokens, stream.answer.usage.output_tokens) == (12, 4)
    assert stream.answer.cost_usd == rag.tracer.records[0].cost_usd > 0
    assert not hasattr(rag, "last_sources")
    summary = rag.tracer.summary()
    assert summary["calls"] == 1
    assert summary["total_input_tokens"] == 12 and summary["total_output_tokens"] == 4
    assert summary["estimated_cost_usd"] > 0
    await rag.aclose()


async def test_the_llm_layer_is_consumed_cache_included(
    openai_sim: OpenAISimulator, corpus: Path
) -> None:
    rag = _rag(openai_sim, cache=True, cache_maxsize=777, history=0)
    await rag.aadd(corpus / "tea.html")
    first = await rag.ask("Where does Darjeeling tea grow?")
    second = await rag.ask("Where does Darjeeling tea grow?")
    assert first == second == "Hello, world!"
    assert len(_chat_requests(openai_sim)) == 1
    assert [r.cache_hit for r in rag.tracer.records] == [False, True]
    await rag.aclose()


async def test_follow_ups_carry_the_conversation(
    openai_sim: OpenAISimulator, corpus: Path
) -> None:
    rag = _rag(openai_sim, history=2)
    await rag.aadd(corpus)
    chat = rag.conversation()
    await chat.ask("Which volcano is the largest?")
    await chat.ask("Where is it?")
    second = _chat_requests(openai_sim)[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[1]["content"] == "Which volcano is the largest?"
    assert second[2]["content"] == "Hello, world!"
    await rag.ask("Where is it?")  # no conversation named: no memory, and none shared
    assert len(_chat_requests(openai_sim)[2]["messages"]) == 2
    await rag.conversation().ask("Where is it?")  # a new conversation starts afresh
    assert len(_chat_requests(openai_sim)[3]["messages"]) == 2
    await rag.ask("Which bees dance?", session_id="alice")
    await rag.ask("Why?", session_id="bob")
    await rag.ask("How?", session_id="alice")
    alice = _chat_requests(openai_sim)[6]["messages"]
    assert [m["content"] for m in alice[1:-1]] == ["Which bees dance?", "Hello, world!"]
    assert "Why?" not in str(alice)
    chat.reset()
    await chat.ask("Where is it?")
    assert len(_chat_requests(openai_sim)[7]["messages"]) == 2
    await rag.aclose()


def test_a_file_store_reopens_without_reindexing_or_embedding(
    openai_sim: OpenAISimulator, corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "kb.db"
    emb = {"embedding_model": "text-embedding-3-small", "embedding_api_key": API_KEY,
           "embedding_base_url": openai_sim.url}
    with _rag(openai_sim, path=db, **emb) as rag:
        report = rag.add(corpus)
        count = rag.store.count()
        hits = [h.id for h in rag.retrieve_sync("Stone Town doors")]
    embedding_calls = len(_embedding_requests(openai_sim))
    assert report.passages == count and embedding_calls >= 1
    with _rag(openai_sim, path=db, **emb) as again:
        assert again.store.count() == count
        report = again.add(corpus)  # unchanged files: no-ops
        assert report.added == [] and len(report.unchanged) == 45
        assert len(_embedding_requests(openai_sim)) == embedding_calls  # nothing re-embedded
        assert again.store.embedding() == ("text-embedding-3-small", 8)
    with RAG(path=db, embedding_model="text-embedding-3-small", embedding_api_key=API_KEY,
             embedding_base_url=openai_sim.url) as third:
        assert [h.id for h in third.retrieve_sync("Stone Town doors")] == hits


def test_a_store_refuses_another_embedding_model(openai_sim: OpenAISimulator, corpus: Path,
                                                  tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    with RAG(path=db, embedding_model="text-embedding-3-small", embedding_api_key=API_KEY,
             embedding_base_url=openai_sim.url) as rag:
        rag.add(corpus / "bees.txt")
    with pytest.raises(StoreError, match="text-embedding-3-small"):
        RAG(path=db, embedding_model="text-embedding-3-large", embedding_api_key=API_KEY)
    with pytest.raises(StoreError, match="embedding_model='text-embedding-3-small'"):
        RAG(path=db)


def test_bad_input_is_a_clear_error_and_writes_nothing(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    (tmp_path / "empty").mkdir()
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    with RAG(path=db) as rag:
        rag.add(corpus / "bees.txt")
        before = rag.store.count()
        with pytest.raises(InvalidInputError, match="does not exist"):
            rag.add(tmp_path / "missing")
        with pytest.raises(InvalidInputError, match="does not exist"):
            rag.add("docs/missing.md")  # looks like a path: not indexed as text
        with pytest.raises(InvalidInputError, match="no supported files"):
            rag.add(tmp_path / "empty")
        with pytest.raises(InvalidInputError, match=r"blob\.txt"):
            rag.add(tmp_path / "blob.txt")
        with pytest.raises(InvalidInputError):
            rag.add("   ")
        assert rag.store.count() == before


def test_a_corrupt_store_file_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=str(db)):
        RAG(path=db)
    assert db.read_bytes() == b"this is not a database" * 100  # left as it was


def test_construction_makes_no_call_and_asking_names_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    rag = RAG(model="claude-haiku-4-5")  # no key, no network: fine until a question
    rag.add("Synapsekit streams tokens from fifteen providers.")
    assert rag.retrieve_sync("How many providers?")[0].text.startswith("Synapsekit")
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        rag.ask_sync("How many providers?")
    rag.close()


# ---------------------------------------------------------------- the CLI


def test_cli_index_then_ask_streams_and_prints_sources_and_cost(
    openai_sim: OpenAISimulator, corpus: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = str(tmp_path / "kb.db")
    assert main(["index", str(corpus), "--db", db]) == 0
    assert "45 added" in capsys.readouterr().out
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    status = main(["ask", "What is Stone Town?", "--db", db, "--model", "gpt-4o-mini",
                   "--base-url", openai_sim.url, "-k", "2"])
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith("Hello, world!\n")
    assert f"[1] {corpus / 'zanzibar.md'} > Zanzibar" in out
    assert "tokens: 12 in, 4 out" in out and "cost: $" in out


def test_cli_ask_without_a_key_prints_sources_and_the_env_var(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = str(tmp_path / "kb.db")
    main(["index", str(corpus / "volcanoes.md"), "--db", db])
    capsys.readouterr()
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    status = main(["ask", "largest volcano?", "--db", db, "--model", "claude-haiku-4-5"])
    captured = capsys.readouterr()
    assert status == 2
    assert f"[1] {corpus / 'volcanoes.md'}" in captured.out
    assert "ANTHROPIC_API_KEY" in captured.err


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "q", "--db", str(tmp_path / "none.db"), "--model", "gpt-4o"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No store at") and err.count("\n") == 1
    assert not (tmp_path / "none.db").exists()
    assert main(["index", str(tmp_path / "nope"), "--db", str(tmp_path / "kb.db")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_providers_lists_all_fifteen() -> None:
    out = subprocess.run([sys.executable, "-m", "synapsekit.cli", "providers"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    from synapsekit.llm.registry import PROVIDERS

    rows = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert set(PROVIDERS) <= rows
    assert 'pip install "synapsekit[groq]"' in out and "GEMINI_API_KEY or GOOGLE_API_KEY" in out


# ---------------------------------------------------------------- sharing one RAG


async def test_100_concurrent_asks_on_one_rag_each_get_their_own_sources(
    openai_sim: OpenAISimulator, tmp_path: Path
) -> None:
    folder = tmp_path / "stations"
    folder.mkdir()
    words = [f"zq{i:03}x" for i in range(100)]
    for i, word in enumerate(words):
        (folder / f"station{i:03}.md").write_text(
            f"# Station {i}\n\nThe codeword {word} opens the gate of station {i}.\n"
        )
    rag = _rag(openai_sim, top_k=1)
    await rag.aadd(folder)
    import asyncio

    answers = await asyncio.gather(
        *(rag.ask(f"Which gate does codeword {word} open?") for word in words)
    )
    for i, (word, answer) in enumerate(zip(words, answers, strict=True)):
        assert answer == "Hello, world!"
        assert [h.source for h in answer.sources] == [str(folder / f"station{i:03}.md")]
        assert answer.question == f"Which gate does codeword {word} open?"
        assert (answer.usage.input_tokens, answer.usage.output_tokens) == (12, 4)
    bodies = _chat_requests(openai_sim)
    assert len(bodies) == 100
    seen = set()
    for body in bodies:
        assert len(body["messages"]) == 2  # system + this question: no one else's turns
        prompt = body["messages"][-1]["content"]
        (word,) = [w for w in words if w in prompt]  # one codeword: its own passage only
        i = words.index(word)
        assert prompt.endswith(f"Question: Which gate does codeword {word} open?")
        assert prompt.count("Question:") == 1
        assert f"[1] {folder / f'station{i:03}.md'} > Station {i}\n" in prompt
        seen.add(word)
    assert seen == set(words)
    assert rag.tracer.summary()["calls"] == 100
    await rag.aclose()


def test_unknown_keywords_fail_at_construction() -> None:
    from synapsekit.errors import ConfigError

    with pytest.raises(ConfigError, match="'temprature'; did you mean 'temperature'"):
        RAG(model="gpt-4o-mini", temprature=0.2)
    with pytest.raises(ConfigError, match="'embeding_model'; did you mean 'embedding_model'"):
        RAG(model="gpt-4o-mini", embeding_model="text-embedding-3-small")
    with pytest.raises(ValueError, match="'colour'"):
        RAG(model="gpt-4o-mini", colour="blue")
    import dataclasses

    from synapsekit.llm.config import LLMConfig

    # every LLMConfig field is accepted, read from LLMConfig itself
    names = [f.name for f in dataclasses.fields(LLMConfig) if f.name != "model"]
    assert "max_tokens" in names and "cache_ttl" in names
    RAG(model="gpt-4o-mini", max_tokens=50, cache_ttl=None, timeout=5.0).close()


def test_the_system_prompt_replaces_the_instructions(
    openai_sim: OpenAISimulator, corpus: Path
) -> None:
    with _rag(openai_sim, system_prompt="Answer in French.", max_tokens=33) as rag:
        rag.add(corpus / "bees.txt")
        rag.ask_sync("How do bees find flowers?")
    (body,) = _chat_requests(openai_sim)
    assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 33


# ---------------------------------------------------------------- the store follows the folder


def test_reindexing_a_folder_removes_sources_whose_files_are_gone(
    corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "kb.db"
    with RAG(path=db) as rag:
        assert len(rag.add(corpus).added) == 45
    (corpus / "bees.txt").unlink()
    (corpus / "filler07.txt").unlink()
    with RAG(path=db) as rag:
        report = rag.add(corpus)
        assert report.removed == [str(corpus / "bees.txt"), str(corpus / "filler07.txt")]
        assert report.added == [] and len(report.unchanged) == 43
        assert len(rag.store.sources()) == 43 and rag.store.count() == 43
        assert rag.retrieve_sync("waggle dance") == []
        assert rag.add(corpus).removed == []  # nothing more is gone


def test_turning_on_embeddings_computes_the_missing_vectors(
    openai_sim: OpenAISimulator, corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "kb.db"
    with RAG(path=db) as rag:
        rag.add(corpus)
        count = rag.store.count()
    assert count == 45
    emb = {"embedding_model": "text-embedding-3-small", "embedding_api_key": API_KEY,
           "embedding_base_url": openai_sim.url}
    with RAG(path=db, **emb) as rag:  # type: ignore[arg-type]
        assert _embedding_requests(openai_sim) == []  # opening embeds nothing
        report = rag.add(corpus)
        assert report.added == [] and len(report.unchanged) == 45
        assert report.embedded == 45
        inputs = [text for r in _embedding_requests(openai_sim) for text in r.json()["input"]]
        assert len(inputs) == 45
        assert rag.store.missing_vectors() == []
        assert rag.store.embedding() == ("text-embedding-3-small", 8)
        assert rag.add(corpus).embedded == 0
    openai_sim.reset()
    with RAG(path=db, **emb) as rag:  # type: ignore[arg-type]
        hits = rag.retrieve_sync("Stone Town doors")
        assert hits[0].source == str(corpus / "zanzibar.md")
        (request,) = _embedding_requests(openai_sim)  # the question only: nothing re-embedded
        assert request.json()["input"] == ["Stone Town doors"]


def test_asking_a_store_that_does_not_exist_is_an_error_and_creates_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "no-such-dir" / "kb.db"
    rag = RAG(model="gpt-4o-mini", api_key=API_KEY, path=db)
    with pytest.raises(StoreError, match=r"its directory .*no-such-dir does not exist"):
        rag.retrieve_sync("anything")
    with pytest.raises(StoreError, match="No RAG store at"):
        rag.ask_sync("anything")
    rag.close()
    assert not (tmp_path / "no-such-dir").exists()
    with RAG(path=tmp_path / "kb.db") as rag:
        with pytest.raises(StoreError, match="the file does not exist"):
            rag.retrieve_sync("anything")
        with pytest.raises(InvalidInputError, match="does not exist"):
            rag.add(tmp_path / "missing-folder")
    assert list(tmp_path.iterdir()) == []  # a failed add created no store either


async def test_concurrent_questions_embed_the_missing_vectors_once(
    openai_sim: OpenAISimulator, corpus: Path, tmp_path: Path
) -> None:
    import asyncio

    db = tmp_path / "kb.db"
    with RAG(path=db) as rag:
        rag.add(corpus)
    rag = RAG(path=db, embedding_model="text-embedding-3-small", embedding_api_key=API_KEY,
              embedding_base_url=openai_sim.url)
    questions = [f"Which district has report {i}?" for i in range(20)]
    await asyncio.gather(*(rag.retrieve(q) for q in questions))
    inputs = [text for r in _embedding_requests(openai_sim) for text in r.json()["input"]]
    assert sorted(inputs) == sorted(
        questions + [text for _, text in _stored_texts(rag)]
    )  # each passage embedded once, however many questions came at once
    assert rag.store.missing_vectors() == []
    await rag.aclose()


def _stored_texts(rag: RAG) -> list[tuple[int, str]]:
    with rag.store._db() as connection:
        rows = connection.execute("SELECT id, heading, text FROM passages").fetchall()
    return [(i, f"{h}\n\n{t}" if h else t) for i, h, t in rows]
