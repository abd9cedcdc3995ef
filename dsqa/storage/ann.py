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

Storage: the index holds the only copy of the vectors, each distinct vector
once (:class:`Distinct` maps the rows of a generation onto its entries),
as codes: float16 in a flat index (:data:`FLAT_CODE`), 8-bit scalar
quantisation in HNSW (:data:`HNSW_CODE`; ``python -m bench --only large``
measures both against float32: recall@10 against exact search and the
dev-set figures). Half the size of float32 costs a flat index nothing
measurable and keeps its codes independent of the other vectors, so an
updated index holds exactly the codes a rebuilt one would; HNSW's 8-bit
codes are a quarter of float32 and are trained on the vectors the graph is
built from (each dimension's range, widened by :data:`SQ_MARGIN` for
vectors added later). Readers map the file (:func:`read`), so a query reads
the graph and only the codes it visits.

Updates (:func:`update`): new vectors are added to the existing index and
the entries no row uses any more are masked out of every search; the index
is rebuilt from its live vectors (no re-embedding) only when the masked
share would pass :data:`COMPACT_DEAD_SHARE`, when the number of vectors
crosses :data:`FLAT_MAX_VECTORS` and the type changes. A new vector just
outside the 8-bit codes' trained range (by less than their rounding error,
:func:`_fits`) is clipped into it; one further out widens the range, the
stored codes re-encoded and the graph kept (:func:`_widen_codes`).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FLAT = "flat-ip"
HNSW = "hnsw"


def faiss_module() -> Any:
    """The ``faiss`` module, imported when first needed, as an untyped
    module: the stubs it bundles are SWIG's partial ones (no
    ``SearchParametersHNSW``, constructors with the wrong signatures), so
    type-checking against them would only report their gaps."""
    return importlib.import_module("faiss")

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
#: The codes each type stores (FAISS scalar quantiser names), and the
#: share of each dimension's trained range added on both sides for HNSW's
#: 8-bit codes (room for vectors added later; beyond it a value is clipped).
FLAT_CODE = "fp16"
HNSW_CODE = "sq8"
SQ_MARGIN = 0.1
#: An update rebuilds the index from its live vectors once more than this
#: share of its entries would be masked (vectors no row uses any more).
COMPACT_DEAD_SHARE = 0.2
#: A filtered search (``--note``) over at most this many allowed vectors is
#: exact: HNSW scores the allowed vectors directly. A graph walk finds too
#: few when the allowed vectors are rare.
EXACT_FILTER_MAX = 50_000


def choose(n_vectors: int, flat_max: int = FLAT_MAX_VECTORS) -> str:
    """The index type for ``n_vectors``: ``"flat-ip"`` or ``"hnsw"``."""
    return FLAT if n_vectors <= flat_max else HNSW


def _qtype(code: str) -> int:
    faiss = faiss_module()

    return {"fp16": faiss.ScalarQuantizer.QT_fp16, "sq8": faiss.ScalarQuantizer.QT_8bit}[code]


def build_index(vectors: np.ndarray, *, flat_max: int = FLAT_MAX_VECTORS, kind: str | None = None) -> Any:
    """A FAISS inner-product index over ``vectors`` (unit rows), of the type
    :func:`choose` picks for their number unless ``kind`` says, storing them
    as that type's codes."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = empty_index(vectors.shape[1], kind or choose(len(vectors), flat_max))
    _add(index, vectors)
    return index


def empty_index(dim: int, kind: str) -> Any:
    """An empty FAISS inner-product index of type ``kind`` with its codes."""
    faiss = faiss_module()

    if kind == FLAT:
        index = faiss.IndexScalarQuantizer(dim, _qtype(FLAT_CODE), faiss.METRIC_INNER_PRODUCT)
    elif kind == HNSW:
        index = faiss.IndexHNSWSQ(dim, _qtype(HNSW_CODE), HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        faiss.downcast_index(index.storage).sq.rangestat_arg = SQ_MARGIN
    else:
        raise ValueError(f"unknown index type {kind!r} (known: {FLAT}, {HNSW})")
    return index


def _add(index: Any, vectors: np.ndarray) -> None:
    """Add ``vectors``, training the codes on them first if the index has
    never been trained (an index built empty)."""
    if not len(vectors):
        return
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not index.is_trained:
        index.train(vectors)
    index.add(vectors)


def kind_of(index: Any) -> str:
    """``"flat-ip"`` or ``"hnsw"``: the type of a FAISS index dsqa built."""
    faiss = faiss_module()

    return HNSW if isinstance(faiss.downcast_index(index), faiss.IndexHNSW) else FLAT


def describe(index: Any) -> str:
    """The index type as the manifest records it: ``"flat-ip fp16"``, or
    ``"hnsw-ip sq8 M=32 efConstruction=80 efSearch=512"``; an index of the
    earlier formats (float32): ``"flat-ip"``, ``"hnsw-ip M=32 ..."``;
    another FAISS type: its class name."""
    faiss = faiss_module()

    # A new name for the downcast view: it does not own the index, ``index`` does
    # (rebinding ``index`` would free a temporary caller's index under it).
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexFlatIP):
        return FLAT
    if isinstance(inner, faiss.IndexScalarQuantizer):
        return f"{FLAT} {_code_name(inner.sq.qtype)}"
    if isinstance(inner, faiss.IndexHNSW):
        h = inner.hnsw
        m = (h.nb_neighbors(1) if hasattr(h, "nb_neighbors") else HNSW_M)
        storage = faiss.downcast_index(inner.storage)
        code = f" {_code_name(storage.sq.qtype)}" if isinstance(storage, faiss.IndexScalarQuantizer) else ""
        return f"hnsw-ip{code} M={m} efConstruction={h.efConstruction} efSearch={h.efSearch}"
    return type(inner).__name__


def _code_name(qtype: int) -> str:
    faiss = faiss_module()

    names = {faiss.ScalarQuantizer.QT_fp16: "fp16", faiss.ScalarQuantizer.QT_8bit: "sq8"}
    return names.get(qtype, f"sq-type-{qtype}")


def read(path: Any, *, writable: bool = False) -> Any:
    """An index from its file, ready to search: memory-mapped (its codes are
    read from disk as a search visits them), or, when ``writable``, read into
    memory so that vectors can be added (FAISS aborts the process on adding
    to a mapped index)."""
    faiss = faiss_module()

    flags = 0 if writable else faiss.IO_FLAG_MMAP_IFC
    return prepare_for_search(faiss.read_index(str(path), flags))


def prepare_for_search(index: Any) -> Any:
    """Give an index read from disk today's search breadth: efSearch is a
    query-time setting, but a FAISS file keeps the one it was built with,
    so a tuned setting would otherwise wait for the next full rebuild."""
    faiss = faiss_module()

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    return index


@dataclass
class Distinct:
    """How the rows of a generation map onto the entries of its index.

    Rows that share one vector share one entry. Why: a corpus that repeats
    template text (the KEP corpus does, one text hundreds of times) has many
    identical vectors. Copies crowd an HNSW node's neighbour list with each
    other, and the graph walks into them and stops, so recall against exact
    search drops (``python -m bench --only kep`` shows both), and the graph
    has fewer nodes to build without them. A search returns every row of each
    entry found, so the copies are all still there.

    An entry no row maps to any more (its chunk was changed or removed since
    the index was built) is dead: searches skip it (:attr:`live`).
    """

    #: Per row, its entry in the index.
    entry_of_row: np.ndarray
    #: Number of entries in the index (default: one past the highest used).
    entries: int = -1
    #: Per entry, whether a row maps to it.
    live: np.ndarray = field(init=False, repr=False)
    _order: np.ndarray = field(init=False, repr=False)
    _bounds: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.entry_of_row = np.asarray(self.entry_of_row, dtype=np.int64)
        if self.entries < 0:
            self.entries = int(self.entry_of_row.max()) + 1 if len(self.entry_of_row) else 0
        self._order = np.argsort(self.entry_of_row, kind="stable")
        self._bounds = np.searchsorted(self.entry_of_row[self._order], np.arange(self.entries + 1))
        self.live = np.diff(self._bounds) > 0

    @property
    def dead(self) -> int:
        """Entries no row maps to."""
        return int(self.entries - np.count_nonzero(self.live))

    def rows_of(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``entries``, entry by entry (rows ascending within
        one), and for each row the position of its entry in ``entries``."""
        counts = self._bounds[entries + 1] - self._bounds[entries]
        where = np.repeat(np.arange(len(entries)), counts)
        within = np.arange(len(where)) - np.repeat(np.cumsum(counts) - counts, counts)
        return self._order[self._bounds[entries][where] + within], where

    def entries_of(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return np.unique(self.entry_of_row[np.asarray(rows, dtype=np.int64)])


def identity(n: int) -> Distinct:
    """One entry per row."""
    return Distinct(np.arange(n, dtype=np.int64), n)


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


def build(vectors: np.ndarray, *, flat_max: int | None = None) -> tuple[Any, Distinct]:
    """The index dsqa uses for ``vectors``: exact up to ``flat_max``
    (:data:`FLAT_MAX_VECTORS`), else approximate, over the distinct vectors
    (see :class:`Distinct`), and how the rows map onto its entries."""
    unique, rows = distinct(vectors)
    kind = choose(len(unique), FLAT_MAX_VECTORS if flat_max is None else flat_max)
    return build_index(unique, kind=kind), rows or identity(len(vectors))


class StreamBuilder:
    """The index of vectors given a block at a time, as a full reindex
    embeds them, without holding them all: each distinct vector goes once,
    in order of first appearance, to a file (``spill``) as it arrives, and
    :meth:`finish` builds the index :func:`build` would build from them all,
    reading that file a block at a time. The same :class:`Distinct` map and
    codes: repeats are found by a 128-bit hash of each vector's bytes, and
    8-bit codes are trained on each dimension's range, which is all that
    training on every vector reads."""

    #: Vectors read back from the file at a time.
    BLOCK = 8192

    def __init__(self, dimension: int, spill: Path):
        self.d = dimension
        self.spill = Path(spill)
        self._fh = open(self.spill, "wb")  # noqa: SIM115 (closed by finish)
        self._seen: dict[bytes, int] = {}
        self._entries: list[np.ndarray] = []
        self._low = np.full(dimension, np.inf, dtype=np.float32)
        self._high = np.full(dimension, -np.inf, dtype=np.float32)

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.d)
        entry = np.empty(len(vectors), dtype=np.int64)
        fresh = []
        for row, vector in enumerate(vectors):
            key = hashlib.blake2b(vector.tobytes(), digest_size=16).digest()
            found = self._seen.get(key)
            if found is None:
                found = self._seen[key] = len(self._seen)
                fresh.append(row)
            entry[row] = found
        self._entries.append(entry)
        new = vectors[fresh]
        if len(new):
            self._fh.write(new.tobytes())
            np.minimum(self._low, new.min(axis=0), out=self._low)
            np.maximum(self._high, new.max(axis=0), out=self._high)

    def close(self) -> None:
        """Remove the file (done by :meth:`finish`; for a build given up)."""
        self._fh.close()
        self.spill.unlink(missing_ok=True)

    def finish(self, *, flat_max: int | None = None) -> tuple[Any, Distinct]:
        """The index and the map of the vectors added onto its entries; the
        file is removed."""
        self._fh.close()
        try:
            n = len(self._seen)
            self._seen = {}
            index = empty_index(self.d, choose(n, FLAT_MAX_VECTORS if flat_max is None else flat_max))
            if n and not index.is_trained:
                index.train(np.stack([self._low, self._high]))
            with open(self.spill, "rb") as fh:
                while len(block := np.fromfile(fh, dtype=np.float32, count=self.BLOCK * self.d)):
                    index.add(block.reshape(-1, self.d))
        finally:
            self.spill.unlink(missing_ok=True)
        entry_of_row = np.concatenate(self._entries) if self._entries else np.zeros(0, dtype=np.int64)
        return index, Distinct(entry_of_row, n)


def update(
    index: Any, reused: np.ndarray, new_vectors: np.ndarray, *, flat_max: int | None = None
) -> tuple[Any, Distinct, bool]:
    """The index for a new list of rows: row ``r`` keeps entry
    ``reused[r]`` of ``index``, or, where that is -1, takes the next of
    ``new_vectors``. The new vectors are added to ``index`` (which must be
    writable, see :func:`read`) unless a rebuild is due: then a new index is
    built from the live vectors, decoded from ``index``. Returns the index,
    the rows' map onto it, and whether it was rebuilt."""
    reused = np.asarray(reused, dtype=np.int64)
    flat_max = FLAT_MAX_VECTORS if flat_max is None else flat_max
    if int(np.count_nonzero(reused < 0)) != len(new_vectors):
        raise ValueError(f"{len(new_vectors)} new vectors for {int(np.count_nonzero(reused < 0))} new rows")
    unique, new_rows = distinct(np.asarray(new_vectors, dtype=np.float32).reshape(-1, index.d))
    new_map = new_rows.entry_of_row if new_rows is not None else np.arange(len(unique), dtype=np.int64)
    live_old = len(np.unique(reused[reused >= 0]))
    entries = index.ntotal + len(unique)
    dead = entries - live_old - len(unique)
    same_kind = kind_of(index) == choose(live_old + len(unique), flat_max)
    if same_kind and dead <= COMPACT_DEAD_SHARE * entries:
        if not _fits(index, unique):
            _widen_codes(index, unique)
        base = index.ntotal
        _add(index, unique)
        entry_of_row = reused.copy()
        entry_of_row[reused < 0] = base + new_map
        return index, Distinct(entry_of_row, entries), False
    matrix = np.empty((len(reused), index.d), dtype=np.float32)
    old = reused >= 0
    if old.any():
        matrix[old] = StoredVectors(index, Distinct(reused[old], index.ntotal))[np.arange(int(old.sum()))]
    matrix[~old] = unique[new_map]
    rebuilt, rows = build(matrix, flat_max=flat_max)
    return rebuilt, rows, True


def _fits(index: Any, vectors: np.ndarray) -> bool:
    """Whether ``index``'s codes hold ``vectors`` about as well as the ones
    they were trained on. An 8-bit code covers the range it was trained on
    (widened by :data:`SQ_MARGIN`); FAISS clips a value beyond it into the
    range. A new vector may be clipped as long as that moves it no further
    than rounding to the nearest code may move any stored vector (half a
    code step in every dimension, :func:`_rounding_bound`): its scores then
    stay within the error every 8-bit score already has. One far outside
    makes the update widen the range first (:func:`_widen_codes`)."""
    faiss = faiss_module()

    inner = faiss.downcast_index(index)
    storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
    if not len(vectors) or not isinstance(storage, faiss.IndexScalarQuantizer) or not storage.is_trained:
        return True
    sq = storage.sq
    if sq.qtype != faiss.ScalarQuantizer.QT_8bit:
        return True
    trained = faiss.vector_to_array(sq.trained).reshape(2, -1)
    low, span = trained[0], trained[1]
    return bool(np.all(_clipping(vectors, low, span) <= _rounding_bound(span)))


def _widen_codes(index: Any, vectors: np.ndarray) -> None:
    """Widen the 8-bit codes' range of an HNSW index to hold ``vectors``
    (plus :data:`SQ_MARGIN` of the old range on the side it grows, as
    training adds), re-encoding the stored codes in the new range, a block
    at a time. The graph is kept: each stored vector moves by less than
    one code step of the new range, so its neighbours stay its neighbours,
    and no vector is re-embedded or re-linked (a rebuild of the graph costs
    minutes at a million vectors; this, one pass over the codes)."""
    faiss = faiss_module()

    storage = faiss.downcast_index(faiss.downcast_index(index).storage)
    sq = storage.sq
    low, span = faiss.vector_to_array(sq.trained).reshape(2, -1)
    high = low + span
    new_low = np.minimum(low, vectors.min(axis=0) - SQ_MARGIN * span)
    new_high = np.maximum(high, vectors.max(axis=0) + SQ_MARGIN * span)
    before = faiss.ScalarQuantizer(int(index.d), sq.qtype)
    faiss.copy_array_to_vector(np.concatenate([low, span]).astype(np.float32), before.trained)
    faiss.copy_array_to_vector(np.concatenate([new_low, new_high - new_low]).astype(np.float32), sq.trained)
    codes = faiss.vector_to_array(storage.codes).reshape(-1, sq.code_size)
    for at in range(0, len(codes), 65_536):
        block = codes[at : at + 65_536]
        codes[at : at + 65_536] = sq.compute_codes(before.decode(block))
    faiss.copy_array_to_vector(codes.ravel(), storage.codes)


def _clipping(vectors: np.ndarray, low: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Per vector, how far clipping into ``[low, low + span]`` moves it."""
    return np.linalg.norm(vectors - np.clip(vectors, low, low + span), axis=1)


def _rounding_bound(span: np.ndarray) -> float:
    """How far rounding to the nearest 8-bit code may move a vector whose
    value in dimension ``d`` lies in a range of ``span[d]``: half a step of
    ``span / 255`` in every dimension."""
    return float(np.linalg.norm(span / 255 / 2))


class StoredVectors:
    """The vectors of a generation, one per row, decoded from its index's
    codes when asked for (``vectors[rows]``): the index is their only copy."""

    def __init__(self, index: Any, rows: Distinct):
        self.index = index
        self.rows = rows
        self.dtype = np.dtype(np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows.entry_of_row), int(self.index.d))

    def __len__(self) -> int:
        return len(self.rows.entry_of_row)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64)
        entries = self.rows.entry_of_row[rows.reshape(-1)]
        out = np.empty((len(entries), self.index.d), dtype=np.float32)
        for at in range(0, len(entries), 65_536):  # FAISS decodes into a buffer of its own per call
            part = entries[at : at + 65_536]
            out[at : at + len(part)] = self.index.reconstruct_batch(part)
        return out.reshape(rows.shape + (self.index.d,))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype)


def search(
    index: Any, query: np.ndarray, k: int, allowed: Sequence[int] | None = None, rows: Distinct | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, ids) for one query vector, optionally only among
    the ``allowed`` ids; ids of -1 (fewer hits than ``k``) are dropped.

    With ``rows`` (how rows map onto the index's entries), ids and
    ``allowed`` are rows, every row of an entry found is returned, copies in
    row order (``k`` entries give at least ``k`` rows), and dead entries are
    never found."""
    if rows is None:
        return _search(index, query, k, allowed)
    allowed_rows = None if allowed is None else np.asarray(allowed, dtype=np.int64)
    entries = None if allowed_rows is None else rows.entries_of(allowed_rows)
    scores, found = _search(index, query, k, entries, rows.live if rows.dead and entries is None else None)
    ids, at = rows.rows_of(found)
    if allowed_rows is not None:
        keep = np.isin(ids, allowed_rows)
        ids, at = ids[keep], at[keep]
    return scores[at][:k], ids[:k]


def _search(
    index: Any,
    query: np.ndarray,
    k: int,
    allowed: Sequence[int] | np.ndarray | None = None,
    live: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` entries, among ``allowed`` ones, or the ``live`` ones (a
    mask over all entries) when given."""
    faiss = faiss_module()

    k = min(k, index.ntotal if allowed is None else len(allowed), index.ntotal if live is None else int(live.sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    inner = faiss.downcast_index(index)
    params, selector, bitmap = None, None, None
    if allowed is not None:
        ids = np.asarray(allowed, dtype=np.int64)
        if isinstance(inner, faiss.IndexHNSW) and len(ids) <= EXACT_FILTER_MAX:
            return _exact_among(inner, q[0], k, ids)
        selector = faiss.IDSelectorBatch(ids)
    elif live is not None:
        bitmap = np.packbits(live, bitorder="little")  # kept alive until the search is done
        selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
    if selector is not None:
        if isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(inner.hnsw.efSearch, k))
        else:
            params = faiss.SearchParameters(sel=selector)
    # One query on one thread: FAISS would split a flat index's scan among
    # OpenMP threads, and on a busy machine waiting for all of them to be
    # scheduled costs more than the scan saves (an HNSW walk is one thread's
    # work anyway). Building an index keeps every thread.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, found = index.search(q, k, params=params)
    finally:
        faiss.omp_set_num_threads(threads)
    del bitmap
    keep = found[0] >= 0
    return scores[0][keep], found[0][keep]


def _exact_among(index: Any, query: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` among ``ids``, from the vectors an HNSW index stores."""
    vectors = index.reconstruct_batch(ids)
    scores = vectors @ query
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((ids[top], -scores[top]))]
    return scores[top].astype(np.float32), ids[top]
