"""Local HTTP simulators of LLM provider protocols, for tests and benchmarks.

Each speaks one provider's wire protocol on 127.0.0.1 (SSE, NDJSON, AWS event stream), checks
requests as the real API does, and injects faults (statuses with Retry-After, slow or cut
streams, malformed events); the real captures it replays are package data in ``captures/``
(:mod:`.wire`). ``python -m synapsekit.testing.simulators <protocol>`` runs one (:mod:`.__main__`).

Protocol modules (``openai_protocol`` …) are imported explicitly, so ``python -m`` can run them
without a double import.
"""

from .server import Headers, Reply, Request, Server
from .wire import WIRE, read_wire, sse_events

__all__ = ["WIRE", "Headers", "Reply", "Request", "Server", "read_wire", "sse_events"]
