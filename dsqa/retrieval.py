"""Finding and ranking the chunks that answer a query.

Two retrievers propose candidates: FAISS over the sentence-window vectors
(meaning) and BM25 over the chunks (exact terms: ``--rm``, ``8080:80``,
``EMRFS``). Every candidate is then scored the same way:

    score = best window cosine + bm25_weight * bm25 / (best bm25 of the query)

A chunk's dense score is the cosine of its best sentence window, computed
exactly from its stored vectors, so the score does not depend on which
retriever proposed the chunk. On the dev set this normalised combination beat
reciprocal rank fusion (see ``dsqa eval --compare`` and the issue notes), and
window scoring beat one vector per chunk by a wide margin.

The retriever works on row numbers of the loaded index; turning rows into
``Passage`` objects is the engine's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from . import ann
from .embedding import Embedder
from .settings import Settings
from .store import StoredIndex

Method = Literal["hybrid", "dense", "bm25", "rrf"]
#: "rrf" (reciprocal rank fusion of the dense and BM25 rankings) is kept only
#: so that ``dsqa eval --compare`` shows why the score combination won.
METHODS: tuple[Method, ...] = ("hybrid", "dense", "bm25", "rrf")
RRF_K = 60


@dataclass
class Hit:
    row: int  # chunk row in the index
    score: float  # the ranking score
    dense: float  # cosine of the best window
    lexical: float  # raw BM25 score
    window: int  # row of the best window vector


class Retriever:
    def __init__(self, index: StoredIndex, embedder: Embedder, settings: Settings):
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.embed([query])[0]

    def rank(
        self,
        query: str,
        k: int,
        allowed: Sequence[int] | None = None,
        method: Method = "hybrid",
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The best ``k`` chunks for ``query``, best first, among ``allowed``
        chunk rows when given."""
        index = self.index
        if not index.chunks:
            return []
        qv = self.embed_query(query) if query_vector is None else query_vector
        n_cand = max(k, self.settings.candidates)

        lexical = index.lexical.scores(query)
        if allowed is not None:
            mask = np.zeros(len(index.chunks), dtype=bool)
            mask[np.asarray(allowed, dtype=np.int64)] = True
            lexical = np.where(mask, lexical, 0.0)
        candidates: list[int] = []
        if method != "bm25":
            candidates.extend(self._dense_candidates(qv, n_cand, allowed))
        if method != "dense":
            top = np.argsort(-lexical, kind="stable")[:n_cand]
            candidates.extend(int(r) for r in top if lexical[r] > 0)
        if not candidates:
            return []
        rows = np.array(sorted(set(candidates)), dtype=np.int64)
        dense, best_window = self.window_scores(qv, rows)
        top_lexical = float(lexical.max()) if len(lexical) else 0.0
        norm_lexical = lexical[rows] / top_lexical if top_lexical > 0 else np.zeros(len(rows))
        if method == "dense":
            scores = dense
        elif method == "bm25":
            scores = lexical[rows].astype(np.float64)
        elif method == "rrf":
            scores = 1 / (RRF_K + _ranks(dense)) + 1 / (RRF_K + _ranks(lexical[rows]))
        else:
            scores = dense + self.settings.bm25_weight * norm_lexical
        order = np.lexsort((rows, -scores))[:k]
        return [
            Hit(int(rows[i]), float(scores[i]), float(dense[i]), float(lexical[rows[i]]), int(best_window[i]))
            for i in order
        ]

    def _dense_candidates(self, qv: np.ndarray, n: int, allowed: Sequence[int] | None) -> list[int]:
        """Chunks owning the nearest windows: several windows per chunk may
        be near, so ask for more windows than chunks wanted."""
        allowed_windows = None
        if allowed is not None:
            allowed_windows = [w for r in allowed for w in self.index.window_rows(int(r))]
            if not allowed_windows:
                return []
        _, ids = ann.search(self.index.faiss_index, qv, n * 4, allowed_windows)
        owners = self.index.windows[ids, 0] if len(ids) else np.zeros(0, dtype=np.int32)
        return list(dict.fromkeys(int(o) for o in owners))[:n]

    def window_scores(self, qv: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(best window cosine, best window row) of each chunk in ``rows``."""
        offsets = self.index.offsets
        starts, ends = offsets[rows], offsets[rows + 1]
        lengths = ends - starts
        flat = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if len(rows) else np.zeros(0, np.int64)
        sims = self.index.vectors[flat] @ qv if len(flat) else np.zeros(0, np.float32)
        best = np.full(len(rows), -1.0)
        best_row = np.full(len(rows), -1, dtype=np.int64)
        pos = 0
        for i, n in enumerate(lengths):
            if n:
                j = int(np.argmax(sims[pos : pos + n]))
                best[i] = float(sims[pos + j])
                best_row[i] = int(flat[pos + j])
            pos += n
        return best, best_row


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, best first."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks
