"""Local HTTP simulators of LLM provider protocols, for tests and benchmarks.

Protocol modules (``openai_protocol`` …) are imported explicitly, so ``python -m`` can run them
without a double import.
"""

from .server import Headers, Reply, Request, Server
from .wire import WIRE, read_wire, sse_events

__all__ = ["WIRE", "Headers", "Reply", "Request", "Server", "read_wire", "sse_events"]
