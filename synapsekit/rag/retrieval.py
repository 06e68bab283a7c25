"""Ranking: what a retrieved passage is, and the three ways passages are ranked.

Why a module apart from the store: the store keeps rows on disk; these are the pure
ranking pieces it and the RAG pipeline share, testable without a database.

- :func:`query_terms` and :func:`fts_match` turn any user text into an FTS5 query that
  cannot be a syntax error: words are taken out of the text, quoted, and joined with OR,
  so quotes, ``*``, ``-``, ``:``, parentheses and the words NEAR / AND / NOT are only ever
  searched for, never parsed. BM25 then ranks the passages that share the most (and
  rarest) words first. :func:`select_terms` leaves out the words so frequent that scoring
  them would cost much and change little, which keeps a query fast on a large store.
- :class:`VectorIndex` holds every vector of a store as one normalised float32 matrix and
  answers cosine top-k with one matrix-vector product (numpy, imported when first built).
- :func:`rrf` fuses rankings (lexical and dense) by reciprocal rank, which needs no
  calibration between BM25 scores and cosine similarities.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from synapsekit.errors import InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "LEXICAL_BUDGET",
    "RRF_CONSTANT",
    "Hit",
    "VectorIndex",
    "fts_match",
    "query_terms",
    "rrf",
    "select_terms",
]

#: The usual RRF constant (Cormack et al., 2009): damps the weight of the very first ranks.
RRF_CONSTANT = 60
#: At most this many distinct words of a query are looked up.
MAX_QUERY_TERMS = 32
#: Lexical search scores at most about this many (passage, term) matches: ~1 µs each, so
#: a query stays near 20 ms however large the store (see :func:`select_terms`).
LEXICAL_BUDGET = 10_000

# Frequent English words: matched by most passages, they make an OR query slow and add
# nothing to the ranking. Dropped unless the query has nothing else.
_STOPWORDS = frozenset(
    (
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "does", "for", "from",
        "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "of", "on", "or",
        "so", "than", "that", "the", "their", "then", "there", "these", "this", "to", "was",
        "were", "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
    )
)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved passage: its store id, text, source, metadata and score.

    ``score`` is higher for a better match; its scale depends on the ranking (negated
    BM25, cosine similarity, or a fused RRF score), so compare scores of one ranking only.
    """

    id: int
    text: str
    source: str
    metadata: Mapping[str, Any]
    score: float


def query_terms(text: str) -> list[str]:
    """The distinct words of ``text``, lower-cased, in order, at most MAX_QUERY_TERMS.

    Common English words are left out when the text has others.
    """
    terms = list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))
    return ([term for term in terms if term not in _STOPWORDS] or terms)[:MAX_QUERY_TERMS]


def select_terms(frequencies: Sequence[tuple[str, int]], budget: int = LEXICAL_BUDGET) -> list[str]:
    """The terms worth searching for, given each term's document frequency.

    BM25 work grows with the number of passages that contain a query term, so terms are
    taken rarest first while their frequencies add up to at most ``budget``; the rest
    are so common that they would cost the most and weigh the least (a term in half the
    passages or more has no weight at all in FTS5's BM25). Below the budget the ranking
    is exact BM25. A term in no passage is left out; the rarest present term is always
    taken, so a query whose words occur somewhere finds something.
    """
    kept: list[str] = []
    spent = 0
    for term, count in sorted(frequencies, key=lambda pair: pair[1]):
        if count == 0:
            continue
        if kept and spent + count > budget:
            break
        kept.append(term)
        spent += count
    return kept


def fts_match(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression for ``terms``: each one quoted, joined by OR.

    A quoted string is only ever searched for, never parsed, so no term can be an FTS5
    syntax error (a term holds no double quote: it is a run of word characters).
    """
    return " OR ".join(f'"{term}"' for term in terms)


def rrf(rankings: Sequence[Sequence[Hit]], k: int = 5, constant: int = RRF_CONSTANT) -> list[Hit]:
    """Reciprocal rank fusion of ``rankings`` by ``Hit.id``: the best ``k`` hits.

    A hit's fused score is the sum over the rankings it appears in of
    ``1 / (constant + rank)``, ranks counted from 1. The returned hits carry that score;
    ties keep the order in which the hits were first seen (ranking by ranking).
    """
    _check_k(k)
    if constant < 0:
        raise InvalidInputError(f"rrf: constant must be >= 0, got {constant}")
    scores: dict[int, float] = {}
    first: dict[int, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + 1.0 / (constant + rank)
            first.setdefault(hit.id, hit)
    best = sorted(scores, key=lambda hit_id: -scores[hit_id])[:k]
    return [replace(first[hit_id], score=scores[hit_id]) for hit_id in best]


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        raise MissingDependencyError("numpy", "rag", feature="Dense retrieval") from None
    return numpy


class VectorIndex:
    """Every vector of a store as one matrix of unit rows, for exact cosine top-k.

    ``ids[i]`` is the passage id of row ``i``; ``data`` holds the rows as consecutive
    little-endian float32 values (the store's blobs, concatenated). A zero vector stays a
    zero row (cosine 0 to everything). Immutable once built: searching needs no lock.
    """

    def __init__(self, ids: Sequence[int], data: bytearray, dimension: int) -> None:
        numpy = _numpy()
        self.dimension = dimension
        self.ids: NDArray[np.int64] = numpy.asarray(ids, dtype=numpy.int64)
        matrix = numpy.frombuffer(data, dtype="<f4").reshape(len(ids), dimension)
        if matrix.dtype != numpy.float32:  # a big-endian machine
            matrix = matrix.astype(numpy.float32)
        norms = numpy.linalg.norm(matrix, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        matrix /= norms
        self.matrix: NDArray[np.float32] = matrix

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, vector: Sequence[float], k: int) -> list[tuple[int, float]]:
        """The ``k`` (id, cosine) pairs closest to ``vector``, best first (ties: lower id)."""
        _check_k(k)
        numpy = _numpy()
        query = numpy.asarray(vector, dtype=numpy.float32)
        if query.shape != (self.dimension,):
            raise InvalidInputError(
                f"The query vector has {query.size} dimensions; the store's vectors have "
                f"{self.dimension}."
            )
        if not numpy.isfinite(query).all():
            raise InvalidInputError("The query vector contains NaN or infinite values.")
        if len(self.ids) == 0:
            return []
        norm = float(numpy.linalg.norm(query))
        scores = self.matrix @ (query / norm if norm else query)
        top = _top_k(numpy, scores, k)
        return [(int(self.ids[i]), float(scores[i])) for i in top]


def _top_k(numpy: Any, scores: NDArray[np.float32], k: int) -> NDArray[np.intp]:
    """Row numbers of the ``k`` highest scores, highest first, ties by row (= id) order."""
    whole = k >= len(scores)
    candidates = numpy.arange(len(scores)) if whole else numpy.argpartition(-scores, k - 1)[:k]
    order = numpy.lexsort((candidates, -scores[candidates]))
    result: NDArray[np.intp] = candidates[order]
    return result
