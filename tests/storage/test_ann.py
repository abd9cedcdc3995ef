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


def decoded(index) -> np.ndarray:
    """The vectors an index holds, as its codes give them back."""
    return index.reconstruct_n(0, index.ntotal)


def test_small_set_gets_an_exact_index():
    x = unit_vectors(300)
    index = ann.build_index(x, flat_max=300)
    assert isinstance(index, faiss.IndexScalarQuantizer)
    assert ann.describe(index) == "flat-ip fp16"
    scores, ids = ann.search(index, x[7], 5)
    held = decoded(index)
    assert list(ids) == exact_top(held, x[7], 5)
    np.testing.assert_allclose(scores, (held @ x[7])[ids], rtol=1e-5)
    np.testing.assert_allclose(held, x, atol=5e-4)  # float16 codes


def _recall(index, x, queries) -> float:
    return float(np.mean([len(set(ann.search(index, q, 10)[1]) & set(exact_top(x, q, 10))) / 10 for q in queries]))


def test_large_set_gets_hnsw_with_good_recall():
    x = unit_vectors(3000, seed=1)
    index = ann.build_index(x, flat_max=1000)
    assert isinstance(index, faiss.IndexHNSWSQ)
    assert ann.describe(index) == (
        f"hnsw-ip sq8 M={ann.HNSW_M} efConstruction={ann.HNSW_EF_CONSTRUCTION} efSearch={ann.HNSW_EF_SEARCH}"
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
    assert list(ids) == exact_top(decoded(index), q, 10, allowed)
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


@pytest.mark.parametrize("flat_max", [20_000, 100])
def test_update_adds_new_vectors_and_masks_the_unused(flat_max):
    """An update adds the new vectors to the index and keeps the old
    entries; the ones no row uses any more are never found, and every row
    holds what a rebuild would give it (float16: the very codes)."""
    x, new = np.split(unit_vectors(650, seed=5), [600])
    new = np.clip(new, x.min(axis=0), x.max(axis=0))  # inside the range the 8-bit codes were trained on
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    new = np.clip(new, x.min(axis=0), x.max(axis=0))
    index, rows = ann.build(x, flat_max=flat_max)
    reused = np.concatenate([rows.entry_of_row[:200], rows.entry_of_row[300:], np.full(50, -1)])
    after, after_rows, rebuilt = ann.update(index, reused, new, flat_max=flat_max)
    expected = np.vstack([x[:200], x[300:], new])
    assert not rebuilt and after is index and after.ntotal == 650
    assert after_rows.dead == 100 and not after_rows.live[200:300].any()
    held = np.asarray(ann.StoredVectors(after, after_rows))
    if flat_max > 600:
        fresh, fresh_rows = ann.build(expected, flat_max=flat_max)
        np.testing.assert_array_equal(held, np.asarray(ann.StoredVectors(fresh, fresh_rows)))
    np.testing.assert_allclose(held, expected, atol=1e-2)
    for i in (0, 199, 200, 520, 549):
        scores, found = ann.search(after, expected[i], 5, rows=after_rows)
        assert found[0] == i and len(found) == 5
    for gone in range(200, 300, 20):  # a removed vector as the query: skipped, k rows all the same
        scores, found = ann.search(after, x[gone], 20, rows=after_rows)
        assert len(found) == 20 and scores[0] < 0.999


def test_update_rebuilds_once_the_masked_share_passes_the_bound():
    x = unit_vectors(600, seed=7)
    index, rows = ann.build(x)
    keep = int(600 * (1 - ann.COMPACT_DEAD_SHARE)) - 10  # masks more than the bound
    after, after_rows, rebuilt = ann.update(index, rows.entry_of_row[:keep], np.zeros((0, 32), np.float32))
    assert rebuilt and after is not index and after.ntotal == keep and after_rows.dead == 0
    np.testing.assert_array_equal(np.asarray(ann.StoredVectors(after, after_rows)), decoded(index)[:keep])


def test_update_holds_vectors_outside_the_8bit_range_without_a_rebuild():
    x = unit_vectors(600, seed=5)
    index, rows = ann.build(x, flat_max=100)
    new = unit_vectors(50, seed=6)  # other topics: other ranges
    after, after_rows, rebuilt = ann.update(index, np.concatenate([rows.entry_of_row, np.full(50, -1)]), new, flat_max=100)
    assert not rebuilt and after_rows.dead == 0
    held = np.asarray(ann.StoredVectors(after, after_rows))
    np.testing.assert_allclose(held[600:], new, atol=1e-2)
    np.testing.assert_allclose(held[:600], x, atol=1.5e-2)
    for i in range(0, 650, 50):
        assert ann.search(after, np.vstack([x, new])[i], 1, rows=after_rows)[1][0] == i


def test_update_changes_the_type_with_the_size():
    x = unit_vectors(300, seed=8)
    index, rows = ann.build(x, flat_max=400)
    after, after_rows, rebuilt = ann.update(index, np.concatenate([rows.entry_of_row, np.full(200, -1)]), unit_vectors(200, seed=9), flat_max=400)
    assert rebuilt and ann.kind_of(after) == ann.HNSW and ann.kind_of(index) == ann.FLAT


def test_a_mapped_index_is_read_in_place_and_a_writable_copy_takes_additions(tmp_path):
    x = unit_vectors(500)
    for kind in ("flat-ip", "hnsw"):
        faiss.write_index(ann.build_index(x, kind=kind), str(tmp_path / "v.faiss"))
        mapped = ann.read(tmp_path / "v.faiss")
        assert list(ann.search(mapped, x[3], 3)[1])[0] == 3
        writable = ann.read(tmp_path / "v.faiss", writable=True)
        writable.add(unit_vectors(2, seed=9))
        assert writable.ntotal == 502 and mapped.ntotal == 500


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
    held = decoded(index)[rows.entry_of_row]  # 8-bit codes: ranked by what they hold
    allowed = list(range(0, len(x), 3))
    for i in (0, 7, 50, 333, 900):
        q = x[i]
        scores, ids = ann.search(index, q, 10, rows=rows)
        assert tie_aware_top(held, q, ids, 10)
        np.testing.assert_allclose(scores, held[ids] @ q, atol=1e-4)
        scores, ids = ann.search(index, q, 10, allowed, rows)
        assert tie_aware_top(held, q, ids, 10, allowed)
        np.testing.assert_allclose(scores, held[ids] @ q, atol=1e-4)
    # A copied vector as query: every copy is found, in row order.
    copied = np.flatnonzero(rows.entry_of_row == rows.entry_of_row[np.argmax(np.bincount(rows.entry_of_row)[rows.entry_of_row])])
    _, ids = ann.search(index, x[copied[0]], len(copied), rows=rows)
    assert list(ids) == list(copied)


def test_small_sets_keep_each_vector_once_in_an_exact_index():
    x = with_copies(300)
    index, rows = ann.build(x)
    assert index.ntotal == rows.entries < 300 and ann.describe(index) == f"{ann.FLAT} {ann.FLAT_CODE}"
    no_copies, identity = ann.build(unit_vectors(50))
    assert identity.entries == no_copies.ntotal == 50 and list(identity.entry_of_row) == list(range(50))


def test_one_query_is_searched_on_one_thread(monkeypatch):
    """A flat index's scan of one query is not split among OpenMP threads
    (on a busy machine waiting for the second thread cost far more than the
    scan), and the thread count is given back for the builds after it."""
    index = ann.build_index(unit_vectors(300), flat_max=300)
    seen = []
    search = type(index).search

    def recording(self, *args, **kwargs):
        seen.append(faiss.omp_get_max_threads())
        return search(self, *args, **kwargs)

    monkeypatch.setattr(type(index), "search", recording)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        assert len(ann.search(index, unit_vectors(1, seed=1)[0], 5)[1]) == 5
        assert seen == [1] and faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)


def test_update_adds_a_vector_just_past_the_8bit_range_without_a_rebuild():
    """A new vector a little outside the range the 8-bit codes were trained
    on (one value past it by less than rounding may move a vector) is
    clipped into it and added: a one-note change on a big index does not
    rebuild it for one odd value. Its stored copy is off by no more than
    rounding may put any vector off."""
    x = unit_vectors(600, seed=5)
    index, rows = ann.build(x, flat_max=100)
    sq = faiss.downcast_index(faiss.downcast_index(index).storage).sq
    low, span = faiss.vector_to_array(sq.trained).reshape(2, -1)
    bound = ann._rounding_bound(span)
    new = x[:3].copy()
    new[0, 0] = low[0] + span[0] + 0.5 * bound  # past the top of the range
    new[1, 1] = low[1] - 0.5 * bound  # past the bottom
    after, after_rows, rebuilt = ann.update(index, np.concatenate([rows.entry_of_row, np.full(3, -1)]), new, flat_max=100)
    assert not rebuilt and after is index and after.ntotal == 603
    held = np.asarray(ann.StoredVectors(after, after_rows))[600:]
    assert np.all(np.linalg.norm(held - new, axis=1) <= 1.5 * bound)


def test_update_widens_the_8bit_range_for_a_vector_far_past_it_and_keeps_the_graph():
    """A new vector far outside the codes' range widens it: the stored
    codes are re-encoded in the new range (each vector moves by less than a
    code step of it) and the graph is kept, not rebuilt."""
    x = unit_vectors(600, seed=5)
    index, rows = ann.build(x, flat_max=100)
    sq = faiss.downcast_index(faiss.downcast_index(index).storage).sq
    low, span = faiss.vector_to_array(sq.trained).reshape(2, -1)
    held_before = np.asarray(ann.StoredVectors(index, rows))
    new = x[:1].copy()
    new[0, 0] = low[0] + span[0] + 2 * ann._rounding_bound(span)
    after, after_rows, rebuilt = ann.update(index, np.concatenate([rows.entry_of_row, np.full(1, -1)]), new, flat_max=100)
    assert not rebuilt and after is index and after.ntotal == 601
    assert ann._fits(after, new)
    held = np.asarray(ann.StoredVectors(after, after_rows))
    wider = faiss.vector_to_array(sq.trained).reshape(2, -1)[1]
    assert np.linalg.norm(held[600] - new[0]) <= ann._rounding_bound(wider) * 1.01
    assert np.all(np.abs(held[:600] - held_before) <= wider / 255 + 1e-6)
    for i in (0, 77, 599):
        assert ann.search(after, x[i], 1, rows=after_rows)[1][0] == i
