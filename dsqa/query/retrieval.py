"""Finding and ranking the chunks that answer a query.

Each chunk has several vectors: one for the whole chunk (heading path
included) and one per sentence window (a sentence with its neighbours). Two
retrievers propose candidates: FAISS over all those vectors (meaning) and BM25
over the chunks (exact terms: ``--rm``, ``8080:80``, ``EMRFS``). Every
candidate is then scored the same way, exactly, from its stored vectors:

    score = chunk_weight    * cosine(query, whole chunk)
          + window_weight   * cosine(query, best window)   (0 with no window)
          + bm25_weight     * bm25 / (best bm25 of the query)
          + concept_weight  * concept coverage

so a score never depends on which retriever proposed the chunk. Concept
coverage makes a passage cover *each* thing the question asks about: the
question's concepts are the runs of words between its stop words ("overlay
networks", "service discovery"); a chunk covers a concept by the share of
the concept's terms it contains (heading included), each term weighted by
its IDF; the chunk's coverage is its worst-covered concept. Without it the
louder concept outvotes the other: the cosines and BM25 reward a passage
that says "overlay network" five times and never "discovery". The window
term finds the one bullet that answers in a list of notes; the whole-chunk
term, with its heading path, keeps long documents on topic. ``dsqa eval
--compare`` ranks with this score and the other named scorers of
:mod:`dsqa.query.scorers` side by side (the weights
were chosen on both dev sets; figures in bench/RESULTS.md).

The retriever works on row numbers of the loaded index; turning rows into
``Passage`` objects is the engine's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..encoders import Embedder
from ..settings import Settings
from ..storage import StoredIndex, ann
from ..storage.lexical import LexicalIndex, concepts
from .scorers import HYBRID, Scorer, Signals

#: Nearest vectors asked of the vector index per chunk wanted: a chunk has a
#: vector per sentence window, and several of one chunk are often near.
WINDOW_OVERFETCH = 4


@dataclass
class Hit:
    row: int  # chunk row in the index
    score: float  # the ranking score
    dense: float  # cosine of the best sentence window (the whole chunk if it has none)
    lexical: float  # raw BM25 score
    window: int  # row of the best window vector
    chunk: float = 0.0  # cosine of the whole chunk


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
        scorer: Scorer = HYBRID,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The best ``k`` chunks for ``query``, best first, among ``allowed``
        chunk rows when given, as ``scorer`` (:mod:`dsqa.query.scorers`) scores them."""
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
        if scorer.dense:
            candidates.extend(self._dense_candidates(qv, n_cand, allowed))
        if scorer.lexical:
            candidates.extend(int(r) for r in top_rows(lexical, n_cand))
        if not candidates:
            return []
        rows = np.array(sorted(set(candidates)), dtype=np.int64)
        chunk, dense, best_window = self.window_scores(qv, rows)
        st = self.settings
        # A chunk with no quotable sentence (a title line, a table, a link
        # list) earns no window credit: its whole-chunk vector would
        # otherwise count twice, and a bare section title matches a
        # question's topic without answering it.
        has_window = index.windows[best_window, 1] >= 0
        semantic = st.chunk_weight * chunk + st.window_weight * np.where(has_window, dense, 0.0)
        top_lexical = float(lexical.max()) if len(lexical) else 0.0
        scores = scorer.score(
            Signals(semantic, lexical[rows], top_lexical, lambda: concept_coverage(index.lexical, query, rows), st)
        )
        order = np.lexsort((rows, -scores))[:k]
        return [
            Hit(
                int(rows[i]),
                float(scores[i]),
                float(dense[i]),
                float(lexical[rows[i]]),
                int(best_window[i]),
                float(chunk[i]),
            )
            for i in order
        ]

    def _dense_candidates(self, qv: np.ndarray, n: int, allowed: Sequence[int] | None) -> list[int]:
        """Chunks owning the nearest windows: several windows per chunk may
        be near, so ask for :data:`WINDOW_OVERFETCH` times more windows than
        chunks wanted."""
        allowed_windows = None
        if allowed is not None:
            allowed_windows = [w for r in allowed for w in self.index.window_rows(int(r))]
            if not allowed_windows:
                return []
        _, ids = ann.search(self.index.faiss_index, qv, n * WINDOW_OVERFETCH, allowed_windows, self.index.distinct)
        owners = self.index.windows[ids, 0] if len(ids) else np.zeros(0, dtype=np.int32)
        return list(dict.fromkeys(int(o) for o in owners))[:n]

    def window_scores(self, qv: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per chunk in ``rows``: cosine of the whole chunk, cosine of the best
        sentence window, and that window's row. A chunk's whole-chunk vector
        is its row with no sentence span (-1); a chunk without quotable
        sentences uses it for both. Ties go to the earlier window."""
        index = self.index
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = index.offsets[rows], index.offsets[rows + 1]
        counts = ends - starts
        chunk = np.full(len(rows), -1.0)
        best = np.full(len(rows), -1.0)
        best_row = np.full(len(rows), -1, dtype=np.int64)
        if not counts.sum():
            return chunk, best, best_row
        # Every vector row of every chunk, chunk after chunk, and which chunk it belongs to.
        owner = np.repeat(np.arange(len(rows)), counts)
        flat = starts[owner] + np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        sims = (index.vectors[flat] @ qv).astype(np.float64)
        whole = index.windows[flat, 1] < 0
        # First per chunk: its windows before its whole-chunk vector, each by
        # falling cosine, ties to the earlier row.
        order = np.lexsort((flat, -sims, whole, owner))
        first = order[np.r_[0, np.flatnonzero(np.diff(owner[order])) + 1]]
        has = counts > 0
        best[has], best_row[has] = sims[first], flat[first]
        chunk[has] = sims[first]
        whole_max = np.full(len(rows), -np.inf)
        np.maximum.at(whole_max, owner[whole], sims[whole])
        has_whole = np.isfinite(whole_max)
        chunk[has_whole] = whole_max[has_whole]
        return chunk, best, best_row


def concept_coverage(lexical: LexicalIndex, query: str, rows: np.ndarray) -> np.ndarray:
    """Per chunk in ``rows``: how well it covers the query's worst-covered
    concept, from 0 (a concept none of whose terms it has) to 1."""
    found = concepts(query)
    if not found:
        return np.zeros(len(rows))
    coverage = np.ones(len(rows))
    for terms in found:
        idf = lexical.idf(terms)
        present = lexical.presence(terms, rows)
        coverage = np.minimum(coverage, idf @ present / idf.sum())
    return coverage


def top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the ``n`` best positive scores, best first, ties to the lower
    row: what ``np.argsort(-scores, kind="stable")[:n]`` keeps of the
    positive ones, without sorting every chunk (a partition is linear, where
    a full sort of a large corpus's scores would dominate a query)."""
    rows = np.flatnonzero(scores > 0)
    values = scores[rows]
    if len(rows) > n:
        nth = np.partition(values, len(values) - n)[len(values) - n]  # the n-th best score
        keep = values >= nth
        rows, values = rows[keep], values[keep]
    return rows[np.lexsort((rows, -values))][:n]
