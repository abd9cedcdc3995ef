"""The approximate-nearest-neighbour part: which FAISS index to build and how
to query it.

All vectors are unit length, so inner product is cosine similarity.

The index type is chosen by size (measured by ``python -m bench --only scale``,
figures in ``bench/RESULTS.md`` and ``docs/scaling.md``):

* up to :data:`FLAT_MAX_VECTORS` vectors, an exact ``IndexFlatIP``: a query
  reads every vector, about 0.2 ms per 1,000 on this 2-core machine, so it
  stays within a few milliseconds and is always right;
* beyond, ``IndexHNSWFlat`` (a graph over the full vectors; ``M``
  neighbours per node, ``efConstruction`` while building, ``efSearch`` while
  searching), with parameters that keep recall@10 against exact search at
  0.95 or more: sub-millisecond queries at a million vectors, where a flat
  scan takes about 200 ms.

HNSW needs no training, so any size can be built in one pass, and the
serving engines dsqa hands over to at larger scale (OpenSearch's k-NN with the
FAISS engine, Qdrant) use the same structure and parameters.

Updates: dsqa never edits an index in place. Every reindex that writes
rebuilds the FAISS index from the whole ``vectors.npy`` (the source of truth)
in a new generation, so additions, changes and deletions work the same for
every type, and HNSW's lack of deletion never arises. The price is the
build time on every write: negligible for flat, and for HNSW measured by the
scale benchmark (about 2 minutes per million vectors here).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

FLAT = "flat-ip"
HNSW = "hnsw"

#: Exact search up to this many vectors; measured (bench --only scale): a
#: flat query costs ~4 ms at 20k vectors and ~20 ms at 100k on 2 shared
#: cores, HNSW stays under 0.5 ms with recall@10 >= 0.95 beyond.
FLAT_MAX_VECTORS = 20_000
#: HNSW graph degree: 32 gives recall@10 >= 0.95 at efSearch 128 up to 1M
#: (16 needed a larger efSearch for the same recall).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
#: A filtered search (``--note``) over at most this many allowed vectors is
#: done exactly on their vectors rather than through the graph: a graph walk
#: that may visit only allowed nodes finds too few when they are rare, and
#: scoring 50,000 vectors costs only a few milliseconds.
EXACT_FILTER_MAX = 50_000


def choose(n_vectors: int, flat_max: int = FLAT_MAX_VECTORS) -> str:
    """The index type for ``n_vectors``: ``"flat-ip"`` or ``"hnsw"``."""
    return FLAT if n_vectors <= flat_max else HNSW


def build_index(vectors: np.ndarray, *, flat_max: int = FLAT_MAX_VECTORS, kind: str | None = None) -> Any:
    """A FAISS inner-product index over ``vectors`` (unit rows), of the type
    :func:`choose` picks for their number unless ``kind`` says."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kind = kind or choose(len(vectors), flat_max)
    dim = vectors.shape[1]
    if kind == FLAT:
        index = faiss.IndexFlatIP(dim)
    elif kind == HNSW:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        raise ValueError(f"unknown index type {kind!r} (known: {FLAT}, {HNSW})")
    if len(vectors):
        index.add(vectors)
    return index


def describe(index: Any) -> str:
    """The index type as the manifest records it: ``"flat-ip"``, or
    ``"hnsw-ip M=32 efConstruction=80 efSearch=128"``."""
    import faiss

    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexFlatIP):
        return FLAT
    if isinstance(index, faiss.IndexHNSWFlat):
        h = index.hnsw
        m = (h.nb_neighbors(1) if hasattr(h, "nb_neighbors") else HNSW_M)
        return f"hnsw-ip M={m} efConstruction={h.efConstruction} efSearch={h.efSearch}"
    return type(index).__name__


def is_exact(index: Any) -> bool:
    import faiss

    return isinstance(faiss.downcast_index(index), faiss.IndexFlat)


def search(index: Any, query: np.ndarray, k: int, allowed: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, ids) for one query vector, optionally only among
    the ``allowed`` ids; ids of -1 (fewer hits than ``k``) are dropped."""
    import faiss

    k = min(k, index.ntotal if allowed is None else len(allowed))
    if k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    params = None
    if allowed is not None:
        ids = np.asarray(allowed, dtype=np.int64)
        if not is_exact(index) and len(ids) <= EXACT_FILTER_MAX:
            return _exact_among(index, q[0], k, ids)
        selector = faiss.IDSelectorBatch(ids)
        inner = faiss.downcast_index(index)
        if isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(inner.hnsw.efSearch, k))
        else:
            params = faiss.SearchParameters(sel=selector)
    scores, found = index.search(q, k, params=params)
    keep = found[0] >= 0
    return scores[0][keep], found[0][keep]


def _exact_among(index: Any, query: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` among ``ids``, from the vectors the index stores."""
    vectors = index.reconstruct_batch(ids)
    scores = vectors @ query
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((ids[top], -scores[top]))]
    return scores[top].astype(np.float32), ids[top]
