"""The named scorers: ways to score the candidates of both retrievers.

``hybrid`` is the product's ranking (see :mod:`dsqa.query.retrieval`); the
others exist so that ``dsqa eval --compare`` can show, side by side, what
concept coverage adds (``no-concepts``), each retriever alone (``dense``,
``bm25``) and the usual alternative fusion (``rrf``). Only the engine's
``scorer`` attribute chooses among them; ``ask`` and ``search`` take none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..settings import Settings

#: Reciprocal rank fusion's constant: a rank r counts 1 / (RRF_K + r).
RRF_K = 60


@dataclass(frozen=True)
class Signals:
    """What a scorer may use, one value per candidate chunk."""

    semantic: np.ndarray  # chunk_weight * cosine(whole chunk) + window_weight * cosine(best window)
    lexical: np.ndarray  # raw BM25 score
    top_lexical: float  # the best BM25 score of the query over the allowed chunks
    coverage: Callable[[], np.ndarray]  # concept coverage, computed only when asked for
    settings: Settings


@dataclass(frozen=True)
class Scorer:
    """A named way to score candidates; ``dense``/``lexical`` say which
    retrievers propose them."""

    name: str
    score: Callable[[Signals], np.ndarray]
    dense: bool = True
    lexical: bool = True


def _no_concepts(s: Signals) -> np.ndarray:
    norm = s.lexical / s.top_lexical if s.top_lexical > 0 else np.zeros(len(s.lexical))
    return s.semantic + s.settings.bm25_weight * norm


def _hybrid(s: Signals) -> np.ndarray:
    scores = _no_concepts(s)
    if s.settings.concept_weight:
        scores = scores + s.settings.concept_weight * s.coverage()
    return scores


def rrf(semantic: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    """Reciprocal rank fusion of the candidates' dense and BM25 rankings."""
    return 1 / (RRF_K + _ranks(semantic)) + 1 / (RRF_K + _ranks(lexical))


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, best first."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


HYBRID = Scorer("hybrid", _hybrid)
#: Every named scorer, the product's first: the columns of ``dsqa eval --compare``.
SCORERS: dict[str, Scorer] = {
    s.name: s
    for s in (
        HYBRID,
        Scorer("no-concepts", _no_concepts),
        Scorer("dense", lambda s: s.semantic, lexical=False),
        Scorer("bm25", lambda s: s.lexical.astype(np.float64), dense=False),
        Scorer("rrf", lambda s: rrf(s.semantic, s.lexical)),
    )
}
