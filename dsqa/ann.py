"""The approximate-nearest-neighbour part: which FAISS index to build and how
to query it.

All vectors are unit length, so inner product is cosine similarity.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def build_index(vectors: np.ndarray) -> Any:
    """An exact inner-product index: at the sizes notes reach, exact search
    over a flat array costs well under a millisecond per query."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def search(index: Any, query: np.ndarray, k: int, allowed: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, ids) for one query vector, optionally only among
    the ``allowed`` ids; ids of -1 (fewer hits than ``k``) are dropped."""
    import faiss

    k = min(k, index.ntotal if allowed is None else len(allowed))
    if k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    params = None
    if allowed is not None:
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
    scores, ids = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params)
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
