"""Finding the chunks that answer a query.

The retriever works on row numbers of the loaded index and returns
(row, score) pairs best first; turning rows into ``Passage`` objects is the
engine's job.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import ann
from .embedding import Embedder
from .store import StoredIndex


class Retriever:
    def __init__(self, index: StoredIndex, embedder: Embedder):
        self.index = index
        self.embedder = embedder

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.embed([query])[0]

    def dense(self, query: str, k: int, allowed: Sequence[int] | None = None) -> list[tuple[int, float]]:
        scores, ids = ann.search(self.index.faiss_index, self.embed_query(query), k, allowed)
        return [(int(i), float(s)) for s, i in zip(scores, ids)]

    def search(self, query: str, k: int, allowed: Sequence[int] | None = None) -> list[tuple[int, float]]:
        return self.dense(query, k, allowed)
