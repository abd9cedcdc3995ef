"""BM25 from stored term counts (issue 27): the same scores as bm25s's own
build, and an update that tokenizes only new chunks gives what a build of
the whole new list gives (the bm25s parity pattern: against a reference)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bm25s
import numpy as np
import pytest

from dsqa.storage.lexical import (
    BM25S_FORMAT,
    COUNTS_FILE,
    LENGTHS_FILE,
    MATRIX_FILES,
    PARAMS_FILE,
    STOPWORDS_EN,
    VOCAB_FILE,
    LexicalIndex,
    document_tokens,
    tokenize,
)

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ["overlay network service discovery", "docker run --rm -p 8080:80", "kafka partitions", "s3 bucket", "zzzz"]


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus" / "notes").glob("*.md"))]
    return [p for t in texts for p in t.split("\n\n") if p.strip()]


def test_scores_equal_bm25s_own_build(paragraphs):
    reference = bm25s.BM25()
    reference.index([document_tokens(p) for p in paragraphs], show_progress=False)
    ours = LexicalIndex.build(paragraphs)
    assert set(ours.vocabulary) == set(reference.vocab_dict)
    for q in QUERIES:
        ids = [reference.vocab_dict[t] for t in tokenize(q) if t in reference.vocab_dict]
        expected = np.asarray(reference.get_scores_from_ids(ids), np.float32) if ids else np.zeros(len(paragraphs), np.float32)
        np.testing.assert_array_equal(ours.scores(q), expected)


@pytest.mark.parametrize("twice", [True, False], ids=["an old chunk twice", "old chunks in order (renumbered, not re-sorted)"])
def test_update_equals_a_build_of_the_new_list(paragraphs, tmp_path, twice):
    LexicalIndex.build(paragraphs).save(tmp_path)
    old = LexicalIndex.load(tmp_path)  # as a reindex finds it: counts from disk
    new_texts, old_row = [], []
    for i, p in enumerate(paragraphs):
        if i % 7 == 0:
            continue  # removed
        if i % 11 == 0:
            new_texts.append(p + " with a gossip protocol")  # changed
            old_row.append(-1)
        else:
            new_texts.append(p)
            old_row.append(i)
        if i % 50 == 0:
            new_texts.append("a new paragraph on raft elections")
            old_row.append(-1)
    if twice:
        new_texts.append(paragraphs[3])  # one old chunk twice
        old_row.append(3)
    updated = old.updated(np.array(old_row), [t for t, r in zip(new_texts, old_row, strict=True) if r < 0])
    rebuilt = LexicalIndex.build(new_texts)
    assert set(updated.vocabulary) == set(rebuilt.vocabulary)  # words of removed chunks only are gone
    for q in QUERIES + ["gossip protocol", "raft elections"] + new_texts[::40]:
        np.testing.assert_array_equal(updated.scores(q), rebuilt.scores(q))
    np.testing.assert_array_equal(updated.counts.lengths, rebuilt.counts.lengths)


def test_counts_are_checked_on_load(paragraphs, tmp_path):
    LexicalIndex.build(paragraphs[:20]).save(tmp_path)
    assert LexicalIndex.load(tmp_path).problem(20) is None
    np.save(tmp_path / COUNTS_FILE, np.load(tmp_path / COUNTS_FILE)[:-1])
    assert LexicalIndex.load(tmp_path).problem(20) == "its term counts do not match its scores"
    (tmp_path / COUNTS_FILE).unlink()
    (tmp_path / LENGTHS_FILE).unlink()
    without = LexicalIndex.load(tmp_path)  # an index written before the counts
    assert without.problem(20) is None and without.counts is None
    with pytest.raises(ValueError, match="no term counts"):
        without.updated(np.arange(20), [])


def test_an_empty_index_round_trips(tmp_path):
    LexicalIndex.build([]).save(tmp_path)
    empty = LexicalIndex.load(tmp_path)
    assert empty.size == 0 and empty.problem(0) is None and len(empty.scores("anything")) == 0


def test_the_stop_words_are_bm25s_lucene_list():
    """dsqa writes Lucene's list out so that a question need not import
    bm25s; it must stay the list bm25s tokenizes with."""
    from bm25s.stopwords import STOPWORDS_EN as BM25S_STOPWORDS

    assert STOPWORDS_EN == frozenset(BM25S_STOPWORDS)


def test_a_saved_index_scores_as_bm25s_reads_it(paragraphs, tmp_path):
    """Reading bm25s's folder and scoring are dsqa's own (no bm25s on a
    question's path): the same scores as bm25s's own load of the folder,
    a repeated query term counted as bm25s counts it."""
    LexicalIndex.build(paragraphs).save(tmp_path)
    ours = LexicalIndex.load(tmp_path)
    reference = bm25s.BM25.load(str(tmp_path), allow_pickle=False)
    assert ours.vocabulary == reference.vocab_dict and ours.size == len(paragraphs)
    for q in QUERIES + ["overlay overlay network", "the"]:
        ids = [reference.vocab_dict[t] for t in tokenize(q) if t in reference.vocab_dict]
        expected = np.asarray(reference.get_scores_from_ids(ids), np.float32) if ids else np.zeros(len(paragraphs), np.float32)
        np.testing.assert_array_equal(ours.scores(q), expected)


def _saved_by_bm25s(index: LexicalIndex, folder: Path) -> None:
    """The folder as bm25s's own ``BM25.save`` writes it from these scores."""
    retriever = bm25s.BM25()
    m = index._matrix
    retriever.scores = {"data": m.data, "indices": m.indices, "indptr": m.indptr, "num_docs": m.num_docs}
    retriever.vocab_dict = index.vocabulary
    retriever.nonoccurrence_array = None
    retriever.save(str(folder), show_progress=False)


def test_the_folder_is_the_one_bm25s_writes(paragraphs, tmp_path):
    """dsqa writes the bm25/ folder itself (a reindex imports neither
    bm25s nor scipy): the same arrays and parameters as bm25s's own save,
    the same vocabulary."""
    import json

    index = LexicalIndex.build(paragraphs + ["ünïcode “quotes” \u2028 and a \\ backslash"])
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    index.save(ours)
    _saved_by_bm25s(index, theirs)
    for name in MATRIX_FILES.values():
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name
    params = json.loads((ours / PARAMS_FILE).read_text("utf-8"))
    assert params.pop("version") == BM25S_FORMAT
    assert params == {k: v for k, v in json.loads((theirs / PARAMS_FILE).read_text("utf-8")).items() if k != "version"}
    assert json.loads((ours / VOCAB_FILE).read_text("utf-8")) == json.loads((theirs / VOCAB_FILE).read_text("utf-8"))


def test_a_write_imports_neither_bm25s_nor_scipy(tmp_path):
    code = (
        "import sys; from pathlib import Path; from dsqa.storage.lexical import LexicalIndex; "
        f"LexicalIndex.build(['docker swarm overlay', 'raft leader']).save(Path({str(tmp_path)!r})); "
        "print([m for m in ('bm25s', 'scipy', 'tqdm') if m in sys.modules])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def _bytes_read() -> int:
    with open("/proc/self/io", encoding="ascii") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts bytes read from /proc/self/io")
def test_loading_maps_the_score_arrays_instead_of_reading_them(paragraphs, tmp_path):
    """A cold question on a big index reads the columns of its own terms
    only: loading reads the JSON files and the arrays' headers, the arrays
    are memory-mapped."""
    LexicalIndex.build(paragraphs * 20).save(tmp_path)
    arrays = sum((tmp_path / name).stat().st_size for name in MATRIX_FILES.values())
    arrays += (tmp_path / COUNTS_FILE).stat().st_size + (tmp_path / LENGTHS_FILE).stat().st_size
    json_files = (tmp_path / VOCAB_FILE).stat().st_size + (tmp_path / PARAMS_FILE).stat().st_size
    assert arrays > 10 * json_files  # else the check below would prove little
    before = _bytes_read()
    loaded = LexicalIndex.load(tmp_path)
    read = _bytes_read() - before
    assert read < json_files + 5 * 16384, (read, arrays)  # a buffered read of each header
    assert loaded.problem(len(paragraphs) * 20) is None and loaded.scores("overlay network").max() > 0
