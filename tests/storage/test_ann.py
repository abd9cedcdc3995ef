"""The size-based index choice, on small synthetic sets (the big runs are in
``python -m bench --only scale``)."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from dsqa.storage import ann


def unit_vectors(n: int, d: int = 32, seed: int = 0, topics: int = 20) -> np.ndarray:
    """Clustered unit vectors, so nearest neighbours mean something."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, d))
    x = centres[rng.integers(0, topics, n)] + 0.5 * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def exact_top(vectors: np.ndarray, q: np.ndarray, k: int, allowed=None) -> list[int]:
    scores = vectors @ q
    ids = np.arange(len(vectors)) if allowed is None else np.asarray(allowed)
    order = ids[np.lexsort((ids, -scores[ids]))]
    return [int(i) for i in order[:k]]


@pytest.mark.parametrize(("n", "flat_max", "expected"), [(0, 10, "flat-ip"), (10, 10, "flat-ip"), (11, 10, "hnsw"), (5000, 20_000, "flat-ip")])
def test_choice_by_size(n, flat_max, expected):
    assert ann.choose(n, flat_max) == expected


def test_default_threshold_keeps_the_bundled_notes_exact():
    assert ann.choose(2_000) == "flat-ip"
    assert ann.choose(1_000_000) == "hnsw"


def test_small_set_gets_an_exact_index():
    x = unit_vectors(300)
    index = ann.build_index(x, flat_max=300)
    assert isinstance(index, faiss.IndexFlatIP)
    assert ann.describe(index) == "flat-ip"
    scores, ids = ann.search(index, x[7], 5)
    assert list(ids) == exact_top(x, x[7], 5)
    np.testing.assert_allclose(scores, (x @ x[7])[ids], rtol=1e-5)


def _recall(index, x, queries) -> float:
    return float(np.mean([len(set(ann.search(index, q, 10)[1]) & set(exact_top(x, q, 10))) / 10 for q in queries]))


def test_large_set_gets_hnsw_with_good_recall():
    x = unit_vectors(3000, seed=1)
    index = ann.build_index(x, flat_max=1000)
    assert isinstance(index, faiss.IndexHNSWFlat)
    assert ann.describe(index) == (
        f"hnsw-ip M={ann.HNSW_M} efConstruction={ann.HNSW_EF_CONSTRUCTION} efSearch={ann.HNSW_EF_SEARCH}"
    )
    assert _recall(index, x, unit_vectors(50, seed=2)) >= 0.95


def test_approximate_index_survives_a_write_and_read(tmp_path):
    x = unit_vectors(500)
    index = ann.build_index(x, kind="hnsw")
    faiss.write_index(index, str(tmp_path / "v.faiss"))
    back = faiss.read_index(str(tmp_path / "v.faiss"))
    assert ann.describe(back) == ann.describe(index)
    assert list(ann.search(back, x[3], 5)[1]) == list(ann.search(index, x[3], 5)[1])


@pytest.mark.parametrize("kind", ["flat-ip", "hnsw"])
def test_filtered_search_is_exact_among_allowed(kind):
    x = unit_vectors(800, seed=3)
    index = ann.build_index(x, kind=kind)
    allowed = list(range(100, 160))  # a "note": a few rows only
    q = x[500]  # a query whose nearest neighbours are mostly not allowed
    scores, ids = ann.search(index, q, 10, allowed)
    assert list(ids) == exact_top(x, q, 10, allowed)
    assert all(100 <= i < 160 for i in ids)
    assert len(ann.search(index, q, 100, allowed)[1]) == 60  # k capped at what is allowed


def test_filtered_search_on_a_large_allowed_set_stays_approximate(monkeypatch):
    monkeypatch.setattr(ann, "EXACT_FILTER_MAX", 10)
    x = unit_vectors(2000, seed=4)
    index = ann.build_index(x, kind="hnsw")
    allowed = list(range(0, 2000, 2))
    q = x[1]
    _, ids = ann.search(index, q, 10, allowed)
    assert all(i % 2 == 0 for i in ids)
    assert len(set(ids) & set(exact_top(x, q, 10, allowed))) >= 8


def test_incremental_update_is_a_rebuild_from_the_vectors():
    """Each write rebuilds from vectors.npy: after rows are removed and added
    the new index holds exactly the new vectors, for either type."""
    x = unit_vectors(600, seed=5)
    for kind in ("flat-ip", "hnsw"):
        before = ann.build_index(x, kind=kind)
        after_vectors = np.vstack([x[:200], x[300:], unit_vectors(50, seed=6)])
        after = ann.build_index(after_vectors, kind=kind)
        assert before.ntotal == 600 and after.ntotal == 550
        assert ann.describe(after).split()[0] == ann.describe(before).split()[0]
        _, ids = ann.search(after, after_vectors[520], 1)
        assert ids[0] == 520


@pytest.mark.parametrize("kind", ["flat-ip", "hnsw"])
def test_empty_and_tiny_indexes(kind):
    empty = ann.build_index(np.zeros((0, 16), np.float32), kind=kind)
    assert ann.search(empty, np.ones(16, np.float32), 5)[1].size == 0
    one = ann.build_index(unit_vectors(1, d=16), kind=kind)
    assert list(ann.search(one, unit_vectors(1, d=16)[0], 5)[1]) == [0]


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown index type"):
        ann.build_index(unit_vectors(5), kind="ivf")


def test_an_index_read_back_gets_todays_search_breadth(tmp_path):
    index = ann.build_index(unit_vectors(300, seed=3), flat_max=100)
    index.hnsw.efSearch = 16  # as an index built with an older setting
    faiss.write_index(index, str(tmp_path / "old.faiss"))
    again = ann.prepare_for_search(faiss.read_index(str(tmp_path / "old.faiss")))
    assert again.hnsw.efSearch == ann.HNSW_EF_SEARCH
    flat = ann.build_index(unit_vectors(10, seed=4))
    assert ann.prepare_for_search(flat) is flat


def with_copies(n: int = 1200, seed: int = 8) -> np.ndarray:
    """Vectors like the KEP corpus's: many rows repeat a few template rows."""
    x = unit_vectors(n, seed=seed)
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, n, 12)
    copies = rng.choice(n, n // 3, replace=False)
    x[copies] = x[rng.choice(templates, len(copies))]
    return x


def test_distinct_keeps_each_vector_once_in_order_of_appearance():
    x = with_copies()
    unique, rows = ann.distinct(x)
    assert rows is not None and len(unique) == rows.entries < len(x)
    np.testing.assert_array_equal(unique[rows.entry_of_row], x)
    assert len(np.unique(unique, axis=0)) == len(unique)
    firsts = [int(np.flatnonzero(rows.entry_of_row == e)[0]) for e in range(rows.entries)]
    assert firsts == sorted(firsts)
    got, where = rows.rows_of(np.array([rows.entry_of_row[5], rows.entry_of_row[0]]))
    assert set(got[where == 0]) == set(np.flatnonzero(rows.entry_of_row == rows.entry_of_row[5]))
    assert ann.distinct(unit_vectors(50))[1] is None
    assert ann.distinct(unit_vectors(1))[1] is None


def test_distinct_falls_back_to_bytes_when_keys_collide(monkeypatch):
    x = with_copies(300)
    expected = ann.distinct(x)
    monkeypatch.setattr(ann, "_same_rows", lambda vectors, source, block=0: False)
    unique, rows = ann.distinct(x)
    np.testing.assert_array_equal(unique, expected[0])
    np.testing.assert_array_equal(rows.entry_of_row, expected[1].entry_of_row)


def tie_aware_top(x: np.ndarray, q: np.ndarray, ids, k: int, allowed=None) -> bool:
    """Whether ``ids`` are a right top ``k``: distinct, allowed, and each
    scoring at least the exact k-th best (copies tie, so any of them is right)."""
    pool = np.arange(len(x)) if allowed is None else np.asarray(allowed)
    kth = np.sort(x[pool] @ q)[::-1][min(k, len(pool)) - 1]
    return len(set(ids)) == len(ids) == min(k, len(pool)) and set(ids) <= set(pool) and bool(np.all(x[ids] @ q >= kth - 1e-6))


def test_search_over_distinct_vectors_returns_rows_like_exact_search():
    """Parity with brute force: HNSW over the distinct vectors, searched with
    the row map, gives a right top k of the rows, with or without a filter."""
    x = with_copies()
    index, rows = ann.build(x, flat_max=100)
    assert rows is not None and index.ntotal == rows.entries
    allowed = list(range(0, len(x), 3))
    for i in (0, 7, 50, 333, 900):
        q = x[i]
        scores, ids = ann.search(index, q, 10, rows=rows)
        assert tie_aware_top(x, q, ids, 10)
        np.testing.assert_allclose(scores, x[ids] @ q, rtol=1e-5)
        scores, ids = ann.search(index, q, 10, allowed, rows)
        assert tie_aware_top(x, q, ids, 10, allowed)
        np.testing.assert_allclose(scores, x[ids] @ q, rtol=1e-5)
    # A copied vector as query: every copy is found, in row order.
    copied = np.flatnonzero(rows.entry_of_row == rows.entry_of_row[np.argmax(np.bincount(rows.entry_of_row)[rows.entry_of_row])])
    _, ids = ann.search(index, x[copied[0]], len(copied), rows=rows)
    assert list(ids) == list(copied)


def test_small_sets_keep_every_row_in_an_exact_index():
    x = with_copies(300)
    index, rows = ann.build(x)
    assert rows is None and index.ntotal == 300 and ann.describe(index) == ann.FLAT
