"""TokenTracer: records, exact summaries, thread safety, and the SQLite ledger across
real processes."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from synapsekit.errors import SynapseKitError
from synapsekit.llm.pricing import UnknownModelPriceWarning
from synapsekit.llm.types import Usage
from synapsekit.observability import CallRecord, LedgerError, TokenTracer, read_ledger
from synapsekit.observability.ledger import MIGRATIONS

M = 1_000_000
ROOT = Path(__file__).resolve().parents[1]


def _gpt4o(tracer: TokenTracer, **kw: object) -> CallRecord:
    usage = Usage(input_tokens=1_000, cached_input_tokens=400, output_tokens=200)
    args: dict[str, object] = {"provider": "openai", "model": "gpt-4o", "usage": usage,
                               "latency_ms": 120.5, "ttft_ms": 30.25}
    args.update(kw)
    return tracer.record(**args)  # type: ignore[arg-type]


GPT4O_COST = (600 * 2.50 + 400 * 1.25 + 200 * 10.00) / M  # 0.004


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------------ records


def test_observability_exports_are_sorted_and_resolvable() -> None:
    import synapsekit.observability as obs

    assert obs.__all__ == sorted(obs._LAZY)
    assert all(getattr(obs, name) is not None for name in obs.__all__)


def test_record_fields_and_cost() -> None:
    tracer = TokenTracer()
    before = time.time()
    rec = _gpt4o(tracer)
    assert before <= rec.timestamp <= time.time()
    assert (rec.provider, rec.model, rec.input_tokens, rec.output_tokens) == (
        "openai", "gpt-4o", 1_000, 200)
    assert (rec.cached_input_tokens, rec.cache_write_tokens, rec.reasoning_tokens) == (400, 0, 0)
    assert (rec.latency_ms, rec.ttft_ms, rec.cache_hit, rec.complete, rec.error) == (
        120.5, 30.25, False, True, None)
    assert rec.total_tokens == 1_200
    assert rec.cost_usd == pytest.approx(GPT4O_COST, abs=1e-15)
    assert tracer.records == [rec]


def test_cache_hit_costs_nothing_and_unknown_model_is_unpriced() -> None:
    tracer = TokenTracer()
    assert _gpt4o(tracer, cache_hit=True).cost_usd == 0.0
    with pytest.warns(UnknownModelPriceWarning):
        rec = _gpt4o(tracer, model=f"mystery-{uuid.uuid4().hex[:8]}")
    assert rec.cost_usd is None


def test_incomplete_usage_and_errors_are_kept() -> None:
    tracer = TokenTracer()
    usage = Usage(input_tokens=50, output_tokens=7, complete=False)
    rec = tracer.record(provider="anthropic", model="claude-sonnet-4-6", usage=usage,
                        latency_ms=10.0, ttft_ms=None, error="StreamInterruptedError: cut")
    assert rec.complete is False and rec.error == "StreamInterruptedError: cut"
    assert rec.ttft_ms is None
    assert rec.cost_usd == pytest.approx((50 * 3.0 + 7 * 15.0) / M)


def test_records_is_a_copy_and_reset_clears() -> None:
    tracer = TokenTracer()
    _gpt4o(tracer)
    tracer.records.clear()
    assert len(tracer.records) == 1
    tracer.reset()
    assert tracer.records == [] and tracer.summary()["calls"] == 0
    tracer.close()  # harmless without a ledger


# ------------------------------------------------------------------ summary


def test_summary_figures_are_exact() -> None:
    tracer = TokenTracer()
    _gpt4o(tracer)
    _gpt4o(tracer, cache_hit=True, latency_ms=1.5)
    tracer.record(provider="gemini", model="gemini-2.5-flash",
                  usage=Usage(input_tokens=5_000, cached_input_tokens=1_000,
                              output_tokens=3_000, reasoning_tokens=2_000),
                  latency_ms=300.0, ttft_ms=80.0, error=None)
    unknown = f"mystery-{uuid.uuid4().hex[:8]}"
    with pytest.warns(UnknownModelPriceWarning):
        tracer.record(provider="groq", model=unknown, usage=Usage(input_tokens=10,
                      output_tokens=5, complete=False), latency_ms=2.0, ttft_ms=None,
                      error="ServerError: 503")
    gemini_cost = (4_000 * 0.30 + 1_000 * 0.03 + 3_000 * 2.50) / M

    s = tracer.summary()
    assert s["calls"] == 4
    assert s["total_input_tokens"] == 1_000 + 1_000 + 5_000 + 10
    assert s["total_output_tokens"] == 200 + 200 + 3_000 + 5
    assert s["total_tokens"] == 7_010 + 3_405
    assert s["total_cached_input_tokens"] == 400 + 400 + 1_000
    assert s["total_cache_write_tokens"] == 0
    assert s["total_reasoning_tokens"] == 2_000
    assert s["total_latency_ms"] == pytest.approx(120.5 + 1.5 + 300.0 + 2.0)
    assert (s["cache_hits"], s["errors"], s["incomplete_calls"]) == (1, 1, 1)
    assert s["unpriced_calls"] == 1
    assert s["estimated_cost_usd"] == pytest.approx(GPT4O_COST + 0.0 + gemini_cost, abs=1e-15)

    by_model = s["by_model"]
    assert set(by_model) == {"gpt-4o", "gemini-2.5-flash", unknown}
    assert by_model["gpt-4o"] == {
        "provider": "openai", "calls": 2, "input_tokens": 2_000, "output_tokens": 400,
        "total_tokens": 2_400, "cached_input_tokens": 800, "cache_write_tokens": 0,
        "reasoning_tokens": 0, "latency_ms": pytest.approx(122.0), "cache_hits": 1,
        "cost_usd": pytest.approx(GPT4O_COST, abs=1e-15),
    }
    assert by_model["gemini-2.5-flash"]["cost_usd"] == pytest.approx(gemini_cost, abs=1e-15)
    assert by_model[unknown]["cost_usd"] is None
    assert by_model[unknown]["provider"] == "groq"


def test_keep_bounds_the_records_not_the_summary() -> None:
    """keep=3: the records are the last three calls, the summary counts all five (tokens,
    latency and cost summed exactly), and equals summarize() over all five records."""
    import math

    from synapsekit.observability import summarize

    whole, kept = TokenTracer(), TokenTracer(keep=3)
    for i in range(5):
        for tracer in (whole, kept):
            tracer.record(provider="openai", model="gpt-4o", latency_ms=0.1 * (i + 1),
                          usage=Usage(input_tokens=100 + i, output_tokens=10))
    assert [r.input_tokens for r in kept.records] == [102, 103, 104]
    assert len(whole.records) == 5
    summary = kept.summary()
    assert summary == whole.summary() == {"model": "gpt-4o", **summarize(whole.records)}
    assert summary["calls"] == 5 and summary["total_input_tokens"] == 510
    assert summary["total_latency_ms"] == math.fsum(0.1 * (i + 1) for i in range(5))
    assert repr(kept) == "TokenTracer(calls=5)"
    kept.reset()
    assert kept.records == [] and kept.summary()["calls"] == 0
    assert TokenTracer(keep=0).record(120, 40, 3.0, model="gpt-4o").input_tokens == 120


def test_keep_must_be_a_count() -> None:
    for bad in (-1, 2.5, "3", True):
        with pytest.raises(SynapseKitError, match="keep: must be a whole number"):
            TokenTracer(keep=bad)  # type: ignore[arg-type]


def test_summary_does_not_depend_on_the_order_of_calls() -> None:
    """Latencies whose float sum changes with the order (1e16 + 1.0 - 1e16): the running
    totals are exact, like math.fsum over the records, whatever order they came in."""
    import math

    values = [1e16, 1.0, -1e16, 0.1, 0.2, 0.3]
    sums = set()
    for order in (values, values[::-1], sorted(values)):
        tracer = TokenTracer()
        for latency in order:
            tracer.record(1, 1, latency, model="gpt-4o")
        sums.add(tracer.summary()["total_latency_ms"])
    assert sums == {math.fsum(values)}
    assert sum(values) != math.fsum(values)  # the case a running float sum gets wrong


def test_same_model_on_two_providers_is_kept_apart() -> None:
    tracer = TokenTracer()
    _gpt4o(tracer)
    _gpt4o(tracer, provider="azure")
    assert set(tracer.summary()["by_model"]) == {"openai:gpt-4o", "azure:gpt-4o"}


def test_eight_threads_recording_at_once_lose_nothing() -> None:
    tracer = TokenTracer()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(500):
            _gpt4o(tracer)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = tracer.summary()
    assert s["calls"] == 4_000
    assert s["total_input_tokens"] == 4_000_000
    assert s["total_output_tokens"] == 800_000
    assert s["total_cached_input_tokens"] == 1_600_000
    assert s["total_latency_ms"] == pytest.approx(4_000 * 120.5)
    assert s["estimated_cost_usd"] == pytest.approx(4_000 * GPT4O_COST, rel=1e-12)
    assert s["by_model"]["gpt-4o"]["calls"] == 4_000


# ------------------------------------------------------------------ ledger

WRITER = """
import json, sys
from synapsekit.llm.types import Usage
from synapsekit.observability import TokenTracer
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
tracer = TokenTracer(ledger=path)
for i in range(n):
    tracer.record(provider="openai", model="gpt-4o", latency_ms=float(i), ttft_ms=None,
                  usage=Usage(input_tokens=1000, cached_input_tokens=400, output_tokens=200),
                  error=tag if i % 2 else None)
tracer.close()
print(json.dumps(tracer.summary()))
"""


def test_ledger_round_trip_across_a_process(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "calls.db"  # parent directories are created
    done = _run(WRITER, str(path), "p1", "5")
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)

    records = read_ledger(path)
    assert [r.latency_ms for r in records] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [r.error for r in records] == [None, "p1", None, "p1", None]
    first = records[0]
    assert (first.provider, first.model, first.input_tokens, first.cached_input_tokens,
            first.output_tokens, first.ttft_ms, first.cache_hit, first.complete) == (
        "openai", "gpt-4o", 1_000, 400, 200, None, False, True)
    assert first.cost_usd == pytest.approx(GPT4O_COST, abs=1e-15)
    assert TokenTracer.load(path).summary() == written
    later = read_ledger(path, since=records[2].timestamp)
    assert [r.latency_ms for r in later] == [2.0, 3.0, 4.0]


def test_ledger_records_its_migrations_by_name(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    TokenTracer(ledger=path).close()
    TokenTracer(ledger=path).close()  # reopening applies nothing twice
    with sqlite3.connect(path) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM migrations ORDER BY name")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert names == [name for name, _ in MIGRATIONS]
    assert mode == "wal"


def test_flush_makes_records_visible_while_the_tracer_stays_open(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    tracer = TokenTracer(ledger=path)
    for _ in range(1_200):  # more than one writer batch
        _gpt4o(tracer)
    tracer.flush()
    assert len(read_ledger(path)) == 1_200
    _gpt4o(tracer)
    tracer.close()
    tracer.close()  # idempotent
    assert len(read_ledger(path)) == 1_201


def test_two_processes_append_to_one_ledger(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, "400"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert err == ""
    records = read_ledger(path)
    assert len(records) == 800
    assert sum(r.error == "a" for r in records) == 200
    assert sum(r.error == "b" for r in records) == 200
    assert TokenTracer.load(path).summary()["calls"] == 800


def test_corrupt_ledger_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(LedgerError, match=re.escape(str(path))) as info:
        TokenTracer(ledger=path)
    assert isinstance(info.value, SynapseKitError)
    with pytest.raises(LedgerError, match=re.escape(path.name)):
        read_ledger(path)


def test_directory_missing_file_and_foreign_database_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=re.escape(tmp_path.name)):
        TokenTracer(ledger=tmp_path)
    with pytest.raises(LedgerError, match="No ledger file"):
        read_ledger(tmp_path / "absent.db")
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(LedgerError, match="not a synapsekit ledger"):
        read_ledger(foreign)


def test_ledger_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    TokenTracer(ledger=path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO migrations VALUES ('999_future', 0)")
    with pytest.raises(LedgerError, match="newer synapsekit"):
        TokenTracer(ledger=path)
    with pytest.raises(LedgerError, match="999_future"):
        read_ledger(path)


def test_unflushed_records_are_written_at_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    code = """
    import sys
    from synapsekit.llm.types import Usage
    from synapsekit.observability import TokenTracer
    t = TokenTracer(ledger=sys.argv[1])
    for _ in range(50):
        t.record(provider="ollama", model="llama3.2", usage=Usage(3, 4), latency_ms=1.0,
                 ttft_ms=None)
    """  # no flush, no close
    done = _run(code, str(path))
    assert done.returncode == 0, done.stderr
    assert len(read_ledger(path)) == 50
