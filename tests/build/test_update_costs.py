"""A change costs what it changes (issue 27): a reindex adds the new vectors
to the previous generation's vector index instead of rebuilding it, updates
BM25 from its term counts, and keeps the refusal calibration of a large
index until enough of it changed. Fake model; the notes' index is made to
use HNSW by lowering the flat threshold."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import BIG, EDITED, PHRASE, assert_consistent, edit_once

from dsqa import DSQA, storage
from dsqa.build import reindex as reindex_module
from dsqa.storage import ann

QUERIES = ["how do overlay networks do service discovery", "what does docker swarm use for scheduling", "hadoop mapreduce"]


@pytest.fixture
def spied(monkeypatch):
    """Counts of full vector-index builds and calibrations."""
    calls = {"build": 0, "calibrate": 0}
    build, calibrate = ann.build, reindex_module.calibrate

    def counting_build(*args, **kwargs):
        calls["build"] += 1
        return build(*args, **kwargs)

    def counting_calibrate(*args, **kwargs):
        calls["calibrate"] += 1
        return calibrate(*args, **kwargs)

    monkeypatch.setattr(ann, "build", counting_build)
    monkeypatch.setattr(reindex_module, "calibrate", counting_calibrate)
    return calls


def test_an_edit_adds_to_the_vector_index_and_masks_what_it_replaced(built, spied):
    before = storage.load(built.settings.index_dir)
    edit_once(built.settings.corpus_dir / BIG, PHRASE, EDITED)
    report = built.reindex()
    after = storage.load(built.settings.index_dir)
    assert report.embedded >= 1 and spied["build"] == 0
    assert after.faiss_index.ntotal > before.faiss_index.ntotal and after.distinct is not None
    assert after.distinct.dead == after.manifest["ann_masked"] > 0
    assert_consistent(after)
    # the replaced vectors are in the index but never found
    _, rows = ann.search(after.faiss_index, np.asarray(before.vectors)[0], 20, rows=after.distinct)
    assert len(rows) == 20 and np.all(rows < len(after.windows))


def test_hnsw_update_ranks_like_a_full_rebuild(built, monkeypatch):
    """With an approximate index the incremental one may differ from a
    rebuild only as two HNSW graphs and their 8-bit codes do: the same top
    passages for the dev questions, scores within 0.01."""
    monkeypatch.setattr(ann, "FLAT_MAX_VECTORS", 200)
    built.reindex(full=True)
    assert "hnsw" in storage.read_manifest(built.settings.index_dir)["index_type"]
    edit_once(built.settings.corpus_dir / BIG, PHRASE, EDITED)
    built.reindex()
    incremental = storage.load(built.settings.index_dir)
    assert incremental.distinct is not None and incremental.distinct.dead > 0
    full = built.settings.with_(index_dir=built.settings.index_dir.parent / "full")
    reindex_module.reindex(full, full=True)
    a, b = DSQA(built.settings, auto_reindex=False), DSQA(full, auto_reindex=False)
    for q in QUERIES:
        pa, pb = a.search(q, k=5), b.search(q, k=5)
        assert [p.text for p in pa[:3]] == [p.text for p in pb[:3]]
        assert len({p.text for p in pa} & {p.text for p in pb}) >= 4
        np.testing.assert_allclose([p.score for p in pa[:3]], [p.score for p in pb[:3]], atol=0.01)


def test_calibration_is_kept_until_enough_changed(built, spied, monkeypatch):
    monkeypatch.setattr(reindex_module, "RECALIBRATE_ALWAYS", 0)  # as for a large index
    monkeypatch.setattr(reindex_module, "RECALIBRATE_SHARE", 0.05)
    kept = storage.read_manifest(built.settings.index_dir)["calibration"]
    edit_once(built.settings.corpus_dir / BIG, PHRASE, EDITED)
    report = built.reindex()
    now = storage.read_manifest(built.settings.index_dir)["calibration"]
    assert spied["calibrate"] == 0 and now["drift"] == report.embedded > 0
    assert {k: v for k, v in now.items() if k != "drift"} == {k: v for k, v in kept.items() if k != "drift"}
    monkeypatch.setattr(reindex_module, "RECALIBRATE_SHARE", 0.0)
    edit_once(built.settings.corpus_dir / BIG, EDITED, PHRASE)
    built.reindex()
    assert spied["calibrate"] == 1 and storage.read_manifest(built.settings.index_dir)["calibration"]["drift"] == 0


def test_an_edit_parses_and_writes_only_the_changed_notes_records(built, monkeypatch):
    """The unchanged notes' records go to the new generation as the old
    file's bytes: a one-note edit parses a few records per note (the
    bounds of each note's rows are checked) and those its changed chunks
    reuse, and serialises only the changed note's; before, every record was
    parsed and written anew."""
    from dsqa.storage import chunk_file

    monkeypatch.setattr(reindex_module, "RECALIBRATE_ALWAYS", 0)  # as for a large index: calibration kept
    parsed, written = [0], [0]
    record, line = chunk_file.ChunkFile._record, chunk_file.record_line

    def counting_record(self, row):
        parsed[0] += 1
        return record(self, row)

    def counting_line(r):
        written[0] += 1
        return line(r)

    before = storage.load(built.settings.index_dir)
    old_lines = before.chunks.path.read_bytes().splitlines(keepends=True)
    notes = len(before.manifest["notes"])
    small = min(before.manifest["notes"], key=lambda s: before.manifest["notes"][s]["chunks"])
    monkeypatch.setattr(chunk_file.ChunkFile, "_record", counting_record)
    monkeypatch.setattr(chunk_file, "record_line", counting_line)
    with open(built.settings.corpus_dir / small, "a", encoding="utf-8") as fh:
        fh.write("\n\n## Gossip\n\nNodes spread membership changes by gossip, a few peers at a time.\n")
    report = built.reindex()
    after = storage.load(built.settings.index_dir)
    changed = report.changed[small]
    assert written[0] == changed
    assert parsed[0] <= 2 * notes + changed < len(before.chunks) // 4
    new_lines = after.chunks.path.read_bytes().splitlines(keepends=True)
    mine = {i for i, c in enumerate(after.chunks) if c.source == small}
    assert [x for i, x in enumerate(new_lines) if i not in mine] == [
        x for x, c in zip(old_lines, before.chunks, strict=True) if c.source != small
    ]
    assert_consistent(after)
