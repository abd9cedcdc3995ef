"""A full reindex streams (issue 27): notes are read, chunked, embedded and
written in bounded batches, so the memory it takes does not grow with the
folder; the index it writes is the one a reindex of the whole at once
writes. Fake model, synthetic notes."""

from __future__ import annotations

import json
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from _helpers import assert_consistent
from conftest import FAST, FakeEmbedder, registered

from dsqa import IndexCorruptError, Settings, storage
from dsqa.build import reindex as reindex_module
from dsqa.build.reindex import reindex
from dsqa.storage import ann
from dsqa.storage.files import file_entry
from dsqa.storage.lexical import CountsBuilder, TermCounts

WORDS = (
    "raft paxos leader follower quorum replica shard gossip membership heartbeat timeout election term log "
    "commit snapshot lease clock vector lamport partition network overlay service discovery container volume "
    "scheduler node pod cluster etcd zookeeper consensus failure detector retry backoff idempotent queue stream"
).split()


def _write_notes(folder: Path, count: int, seed: int = 0) -> int:
    """``count`` notes of about 4 KB of distinct sentences each; returns
    the bytes written."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for n in range(count):
        parts = [f"# Note {n}\n"]
        for section in range(4):
            parts.append(f"\n## Section {section} of note {n}\n\n")
            for _ in range(3):
                sentences = [
                    " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + f" in note {n}."
                    for _ in range(rng.randint(2, 4))
                ]
                parts.append(" ".join(sentences) + "\n\n")
        text = "".join(parts)
        (folder / f"note-{n:04d}.md").write_text(text, encoding="utf-8")
        total += len(text.encode())
    return total


class CountingFake(FakeEmbedder):
    """The fake model with vectors of the real model's size, remembering the
    most texts it was given at once."""

    dimension = 384

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def embed(self, texts, *, progress=False):
        self.largest = max(self.largest, len(texts))
        out = super().embed(texts, progress=progress)
        self.batches.clear()  # the test keeps no list of every text either
        return out


def _full_reindex_peak(tmp_path: Path, notes: int, traced: bool = True) -> tuple[int, int, int]:
    """(peak bytes Python allocated during a full reindex of ``notes``
    synthetic notes, most texts embedded at once, vectors in the index)."""
    corpus = tmp_path / f"corpus-{notes}"
    _write_notes(corpus / "notes", notes)
    model = CountingFake()
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / f"index-{notes}", **FAST)
    peak = 0
    with registered("fake-hash", lambda: model):
        if traced:
            tracemalloc.start()
        try:
            report = reindex(settings, full=True)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert report.wrote and report.total_chunks
    return peak, model.largest, storage.read_manifest(settings.index_dir)["vector_count"]


def test_memory_of_a_full_reindex_does_not_grow_with_the_folder(tmp_path, monkeypatch):
    """Four times the notes: the encoder is never given more than one batch
    of texts, and the peak memory Python allocates grows by less than a
    quarter of the float32 vectors added (no copy of them is held; what
    grows is each chunk's entries in the index: its windows, BM25 counts,
    vector map). A reindex holding every chunk's text and vectors grows by
    twice those vectors and more."""
    monkeypatch.setattr(reindex_module, "STREAM_TEXTS", 300)
    _full_reindex_peak(tmp_path, 3, traced=False)  # what is imported or cached once is not measured
    small_peak, small_largest, small_vectors = _full_reindex_peak(tmp_path, 30)
    large_peak, large_largest, large_vectors = _full_reindex_peak(tmp_path, 120)
    assert large_vectors > 3.5 * small_vectors
    # A batch is cut once it reaches 300 distinct texts: one chunk's texts more at most.
    assert large_largest < 300 + 60 and small_largest < 300 + 60
    added_vectors = (large_vectors - small_vectors) * CountingFake.dimension * 4
    assert large_peak - small_peak < added_vectors / 4, (small_peak, large_peak, added_vectors)


def test_a_streamed_full_reindex_is_split_into_batches_and_equals_one_at_once(tmp_path, fake_model, monkeypatch):
    """Small batches give the index one batch would: the same chunks,
    windows, vectors, BM25 and calibration."""
    _write_notes(tmp_path / "corpus" / "notes", 12)
    one = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "one", **FAST)
    many = one.with_(index_dir=tmp_path / "many")
    reindex(one)
    calls = fake_model.calls
    monkeypatch.setattr(reindex_module, "STREAM_TEXTS", 50)
    steps = []
    report = reindex(many, progress=steps.append)
    assert fake_model.calls - calls > 5  # many batches, then the calibration's questions
    embed = [s for s in steps if s.stage == "embed"]
    assert all(s.total == report.total_chunks for s in embed) and embed[-1].done == report.total_chunks
    assert [s.done for s in embed] == sorted(s.done for s in embed)
    a, b = storage.load(one.index_dir), storage.load(many.index_dir)
    assert_consistent(b)
    assert a.chunks == b.chunks
    np.testing.assert_array_equal(a.windows, b.windows)
    np.testing.assert_array_equal(np.asarray(a.vectors), np.asarray(b.vectors))
    np.testing.assert_array_equal(a.distinct.entry_of_row, b.distinct.entry_of_row)
    for key in ("chunk_count", "vector_count", "ann_entries", "index_type", "notes", "calibration"):
        assert a.manifest[key] == b.manifest[key], key
    for q in ("leader election timeout", "gossip membership"):
        np.testing.assert_array_equal(a.lexical.scores(q), b.lexical.scores(q))
    assert not list(many.index_dir.glob(".tmp-*"))


def test_a_failed_streamed_reindex_leaves_the_live_index_and_nothing_else(tmp_path, fake_model, monkeypatch):
    _write_notes(tmp_path / "corpus" / "notes", 6)
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", **FAST)
    reindex(settings)
    gen = storage.current_generation(settings.index_dir)
    monkeypatch.setattr(reindex_module, "STREAM_TEXTS", 40)
    calls = {"n": 0}
    embed = fake_model.embed

    def failing(texts, *, progress=False):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the encoder died")
        return embed(texts, progress=progress)

    monkeypatch.setattr(fake_model, "embed", failing)
    with pytest.raises(RuntimeError, match="the encoder died"):
        reindex(settings, full=True)
    assert storage.current_generation(settings.index_dir) == gen
    assert not list(settings.index_dir.glob(".tmp-*"))
    assert_consistent(storage.load(settings.index_dir))


def test_counts_built_in_batches_equal_counts_of_the_whole():
    rng = random.Random(1)
    docs = [[rng.choice(WORDS) for _ in range(rng.randint(0, 30))] for _ in range(200)]
    builder = CountsBuilder()
    for at in range(0, len(docs), 37):
        builder.add(docs[at : at + 37])
    a, b = builder.counts(), TermCounts.of(docs)
    assert a.terms == b.terms
    for field in ("ptr", "rows", "tf", "lengths"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert getattr(a, field).dtype == getattr(b, field).dtype, field
    np.testing.assert_array_equal(a.scores(), b.scores())


@pytest.mark.parametrize("flat_max", [10_000, 100])
def test_stream_builder_builds_the_index_build_builds(tmp_path, flat_max):
    """Flat (float16) and HNSW (8-bit) alike: the same entries for the same
    rows, trained on the same ranges, so the same codes; repeats stored once."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((600, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[300:350] = vectors[10]  # repeats
    expected, rows = ann.build(vectors, flat_max=flat_max)
    builder = ann.StreamBuilder(16, tmp_path / "spill")
    builder.BLOCK = 64
    for at in range(0, len(vectors), 90):
        builder.add(vectors[at : at + 90])
    index, got = builder.finish(flat_max=flat_max)
    assert not (tmp_path / "spill").exists()
    assert ann.describe(index) == ann.describe(expected)
    np.testing.assert_array_equal(got.entry_of_row, rows.entry_of_row)
    assert index.ntotal == expected.ntotal == 600 - 50
    np.testing.assert_array_equal(index.reconstruct_n(0, index.ntotal), expected.reconstruct_n(0, expected.ntotal))


def test_chunk_records_are_read_when_asked_for(tmp_path, fake_model):
    """A loaded generation parses a chunk record when a question reads it,
    and still refuses a damaged one by name; it stays readable after a
    writer removes its generation."""
    _write_notes(tmp_path / "corpus" / "notes", 4)
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", **FAST)
    reindex(settings)
    index = storage.load(settings.index_dir)
    assert isinstance(index.chunks, storage.ChunkFile)
    records = list(index.chunks)
    assert index.chunks == records and index.chunks[::3] == records[::3] and index.chunks[-1] == records[-1]
    (settings.corpus_dir / "notes" / "note-0000.md").unlink()
    reindex(settings)  # removes the generation `index` was loaded from
    assert not index.path.exists() and list(index.chunks) == records

    gen = storage.current_generation(settings.index_dir)
    data = (gen / storage.CHUNKS).read_bytes()
    lines = data.split(b"\n")
    lines[2] = lines[2].replace(b'"start_line": ', b'"start_line": -')
    (gen / storage.CHUNKS).write_bytes(b"\n".join(lines))
    with pytest.raises(IndexCorruptError, match="chunks.jsonl"):
        storage.load(settings.index_dir)  # the checksum: caught on load
    # A record that is not well formed under a matching checksum (a faulty
    # writer): refused, by name, when it is read.
    manifest = json.loads((gen / storage.MANIFEST).read_text())
    manifest["files"][storage.CHUNKS] = file_entry(gen / storage.CHUNKS)
    (gen / storage.MANIFEST).write_text(json.dumps(manifest))
    index = storage.load(settings.index_dir)
    assert index.chunks[1].text
    with pytest.raises(IndexCorruptError, match=r"chunks.jsonl is unusable \(record 3: its line or character range is reversed"):
        index.chunks[2]
