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
