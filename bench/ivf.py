"""An IVF index for the ANN comparison (``python -m bench --only kep``): the
alternative dsqa measured against HNSW and does not use (see dsqa/ann.py).

IVF cuts the vectors into about 4 sqrt(n) cells by k-means and scans the
``nprobe`` cells nearest a query. Training is on a subsample (64 points per
cell, 10 rounds): training on everything took most of the build time at a
million vectors for no measurable recall.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NPROBE = 32
TRAIN_POINTS_PER_LIST = 64
TRAIN_ITERATIONS = 10


def lists(n_vectors: int) -> int:
    """Number of IVF cells for ``n_vectors``: about 4 sqrt(n)."""
    return max(1, min(65_536, int(4 * n_vectors**0.5), n_vectors // 8 or 1))


def build(vectors: np.ndarray) -> Any:
    """A trained ``IndexIVFFlat`` (inner product) holding ``vectors``."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim, n_lists = vectors.shape[1], lists(len(vectors))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, n_lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
    index.cp.min_points_per_centroid = 1
    index.cp.niter = TRAIN_ITERATIONS
    index.cp.seed = 1234
    index.nprobe = min(NPROBE, n_lists)
    if len(vectors):
        index.train(vectors)
        index.add(vectors)
    return index


def describe(index: Any) -> str:
    return f"ivf-ip lists={index.nlist} nprobe={index.nprobe}"
