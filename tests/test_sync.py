"""The sync wrappers' shared background loop."""

from __future__ import annotations

from synapsekit import make_llm
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator
from tests.conftest import API_KEY


def test_generate_sync_works_in_a_forked_child(openai_sim: OpenAISimulator) -> None:
    """A child forked after the parent used generate_sync (Celery prefork) gets its own
    sync loop: the parent's loop thread does not exist in the child."""
    import os

    from synapsekit.testing.simulators.openai_protocol import text_stream

    llm = make_llm("gpt-4o-mini", api_key=API_KEY, base_url=openai_sim.url)
    openai_sim.enqueue(text_stream(["parent"]), text_stream(["child"]))
    assert llm.generate_sync("hi") == "parent"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, then leave at once
        try:
            os.write(write, llm.generate_sync("hi").encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 100) == b"child" and status == 0


def test_an_interrupted_sync_call_returns_after_its_clean_up() -> None:
    """Ctrl-C during a sync call cancels its coroutine on the background loop, and the
    caller gets the KeyboardInterrupt only once the coroutine's clean-up has run (the CLI
    then counts what a write under way left in the store: found by CI, a source short)."""
    import asyncio
    import signal
    import threading
    import time

    import pytest

    from synapsekit.llm._sync import run_sync

    cleaned: list[str] = []
    started = threading.Event()

    async def call() -> None:
        try:
            started.set()
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0.3)  # a write under way, a stream being closed
            cleaned.append("done")

    def interrupt() -> None:
        started.wait(5)
        time.sleep(0.2)  # the caller is waiting on the result by now
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_sync(call())
    assert cleaned == ["done"]
