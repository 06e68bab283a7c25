"""RAG: ingest files, retrieve the right passages, answer through the LLM layer.

Names resolve lazily (PEP 562): ``from synapsekit.rag import RAG`` imports no numpy,
no SDK and no file loader until a RAG is built and used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapsekit._lazy import lazy_getattr

if TYPE_CHECKING:
    from synapsekit.rag.ingest import IngestProgress, IngestReport
    from synapsekit.rag.pipeline import (
        RAG,
        Answer,
        AnswerStream,
        Conversation,
    )

_LAZY = {
    "Answer": "synapsekit.rag.pipeline",
    "AnswerStream": "synapsekit.rag.pipeline",
    "Conversation": "synapsekit.rag.pipeline",
    "IngestProgress": "synapsekit.rag.ingest",
    "IngestReport": "synapsekit.rag.ingest",
    "RAG": "synapsekit.rag.pipeline",
}

__all__ = ["RAG", "Answer", "AnswerStream", "Conversation", "IngestProgress", "IngestReport"]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
