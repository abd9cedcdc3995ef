"""The approximate-nearest-neighbour part: which FAISS index to build and how
to query it.

All vectors are unit length, so inner product is cosine similarity.

The index type is chosen by size (``python -m bench --only scale`` measures
both; figures in ``bench/RESULTS.md`` and ``docs/scaling.md``):

* up to :data:`FLAT_MAX_VECTORS` vectors, an exact ``IndexFlatIP``: a query
  reads every vector, which stays cheap at that size, and is always right;
* beyond, ``IndexHNSWFlat``: a graph over the distinct vectors (``M``
  neighbours per node, ``efConstruction`` while building, ``efSearch`` while
  searching; repeated vectors are stored once, see :class:`Distinct`): a few
  milliseconds per query at a million vectors, where a flat scan reads them
  all.

Why HNSW and not IVF: on the real KEP vectors HNSW reached a higher recall
at a lower cost than IVF (``python -m bench --only kep`` compares them, with
an IVF index built by ``bench/ivf.py``).

Updates: dsqa never edits an index in place. Every reindex that writes
rebuilds the FAISS index from the whole ``vectors.npy`` (the source of truth)
in a new generation, so additions, changes and deletions work the same for
every type: HNSW cannot delete a node, and never has to. The price is the
build time on every write: negligible for flat, minutes per million vectors
for HNSW (the scale benchmark's "build s").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FLAT = "flat-ip"
HNSW = "hnsw"

#: Exact search up to this many vectors: below it a flat scan costs about
#: what an HNSW query does (``python -m bench --only scale``, the table
#: "Flat vs HNSW at small sizes").
FLAT_MAX_VECTORS = 20_000
#: HNSW graph degree and search breadth, chosen on the full KEP corpus's real
#: window vectors with real questions as queries (``python -m bench --only
#: kep``, the table "ANN on the real KEP window vectors"); off-topic
#: questions are the hard part. dsqa asks for 200 windows per query, and
#: faiss searches with max(efSearch, k).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 512
#: A filtered search (``--note``) over at most this many allowed vectors is
#: exact: HNSW scores the allowed vectors directly. A graph walk finds too
#: few when the allowed vectors are rare.
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
    """The index type as the manifest records it: ``"flat-ip"`` or
    ``"hnsw-ip M=32 efConstruction=80 efSearch=512"`` (another FAISS type:
    its class name)."""
    import faiss

    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexFlatIP):
        return FLAT
    if isinstance(index, faiss.IndexHNSWFlat):
        h = index.hnsw
        m = (h.nb_neighbors(1) if hasattr(h, "nb_neighbors") else HNSW_M)
        return f"hnsw-ip M={m} efConstruction={h.efConstruction} efSearch={h.efSearch}"
    return type(index).__name__


def prepare_for_search(index: Any) -> Any:
    """Give an index read from disk today's search breadth: efSearch is a
    query-time setting, but a FAISS file keeps the one it was built with,
    so a tuned setting would otherwise wait for the next full rebuild."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    return index


@dataclass
class Distinct:
    """Rows that share one vector, stored once in the approximate index.

    Why: a corpus that repeats template text (the KEP corpus does, one text
    hundreds of times) has many identical vectors. Copies crowd an HNSW
    node's neighbour list with each other, and the graph walks into them and
    stops, so recall against exact search drops (``python -m bench --only
    kep`` shows both), and the graph has fewer nodes to build without them.
    A search returns every row of each entry found, so the copies are all
    still there.
    """

    #: Per row of vectors.npy, its entry (row) in the approximate index.
    entry_of_row: np.ndarray
    #: Number of entries (distinct vectors).
    entries: int = field(init=False)
    _order: np.ndarray = field(init=False, repr=False)
    _bounds: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.entry_of_row = np.asarray(self.entry_of_row, dtype=np.int64)
        self.entries = int(self.entry_of_row.max()) + 1 if len(self.entry_of_row) else 0
        self._order = np.argsort(self.entry_of_row, kind="stable")
        self._bounds = np.searchsorted(self.entry_of_row[self._order], np.arange(self.entries + 1))

    def rows_of(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``entries``, entry by entry (rows ascending within
        one), and for each row the position of its entry in ``entries``."""
        counts = self._bounds[entries + 1] - self._bounds[entries]
        where = np.repeat(np.arange(len(entries)), counts)
        within = np.arange(len(where)) - np.repeat(np.cumsum(counts) - counts, counts)
        return self._order[self._bounds[entries][where] + within], where

    def entries_of(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return np.unique(self.entry_of_row[np.asarray(rows, dtype=np.int64)])


def distinct(vectors: np.ndarray) -> tuple[np.ndarray, Distinct | None]:
    """Each distinct row of ``vectors`` once, in order of first appearance,
    and how the rows map onto them; ``(vectors, None)`` when no row repeats.

    Rows are grouped by a key mixed from their bytes in integer arithmetic
    (equal bytes, equal key; much faster than sorting the rows' bytes), then
    checked row by row, falling back to comparing bytes if two different
    rows ever share a key.
    """
    if len(vectors) < 2:
        return vectors, None
    vectors = np.ascontiguousarray(vectors)
    words = vectors.view(np.uint64) if vectors.nbytes % (8 * len(vectors)) == 0 else vectors.view(np.uint8)
    mix = np.random.default_rng(0).integers(1, 2**63, words.shape[1], dtype=np.uint64) | np.uint64(1)
    block = 65_536
    key = np.concatenate([(words[i : i + block] * mix).sum(axis=1, dtype=np.uint64) for i in range(0, len(words), block)])
    _, first, entry = np.unique(key, return_index=True, return_inverse=True)
    if not _same_rows(vectors, first[entry.ravel()]):
        rows = vectors.view(np.dtype((np.void, vectors.dtype.itemsize * vectors.shape[1])))
        _, first, entry = np.unique(rows.ravel(), return_index=True, return_inverse=True)
    if len(first) == len(vectors):
        return vectors, None
    by_appearance = np.argsort(first, kind="stable")
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[by_appearance] = np.arange(len(first))
    return vectors[first[by_appearance]], Distinct(renumber[entry.ravel()])


def _same_rows(vectors: np.ndarray, source: np.ndarray, block: int = 65_536) -> bool:
    """Whether every row equals the row ``source`` names, a block at a time
    (a whole copy of a million vectors would take gigabytes)."""
    return all(
        np.array_equal(vectors[i : i + block], vectors[source[i : i + block]]) for i in range(0, len(vectors), block)
    )


def build(vectors: np.ndarray, *, flat_max: int | None = None) -> tuple[Any, Distinct | None]:
    """The index dsqa uses for ``vectors``: exact up to ``flat_max``
    (:data:`FLAT_MAX_VECTORS`; copies cost an exact scan nothing but their
    share of the reading), else an approximate index over the distinct
    vectors (see :class:`Distinct`)."""
    kind = choose(len(vectors), FLAT_MAX_VECTORS if flat_max is None else flat_max)
    if kind == FLAT:
        return build_index(vectors, kind=kind), None
    unique, rows = distinct(vectors)
    return build_index(unique, kind=kind), rows


def search(
    index: Any, query: np.ndarray, k: int, allowed: Sequence[int] | None = None, rows: Distinct | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, ids) for one query vector, optionally only among
    the ``allowed`` ids; ids of -1 (fewer hits than ``k``) are dropped.

    With ``rows`` (the index holds each distinct vector once), ids and
    ``allowed`` are rows of the vectors, and every row of an entry found is
    returned, copies in row order: ``k`` entries give at least ``k`` rows."""
    if rows is None:
        return _search(index, query, k, allowed)
    allowed_rows = None if allowed is None else np.asarray(allowed, dtype=np.int64)
    entries = None if allowed_rows is None else rows.entries_of(allowed_rows)
    scores, found = _search(index, query, k, entries)
    ids, at = rows.rows_of(found)
    if allowed_rows is not None:
        keep = np.isin(ids, allowed_rows)
        ids, at = ids[keep], at[keep]
    return scores[at][:k], ids[:k]


def _search(
    index: Any, query: np.ndarray, k: int, allowed: Sequence[int] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    k = min(k, index.ntotal if allowed is None else len(allowed))
    if k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    params = None
    if allowed is not None:
        ids = np.asarray(allowed, dtype=np.int64)
        selector = faiss.IDSelectorBatch(ids)
        inner = faiss.downcast_index(index)
        if isinstance(inner, faiss.IndexHNSW):
            if len(ids) <= EXACT_FILTER_MAX:
                return _exact_among(inner, q[0], k, ids)
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(inner.hnsw.efSearch, k))
        else:
            params = faiss.SearchParameters(sel=selector)
    scores, found = index.search(q, k, params=params)
    keep = found[0] >= 0
    return scores[0][keep], found[0][keep]


def _exact_among(index: Any, query: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` among ``ids``, from the vectors an HNSW index stores."""
    vectors = index.reconstruct_batch(ids)
    scores = vectors @ query
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((ids[top], -scores[top]))]
    return scores[top].astype(np.float32), ids[top]
