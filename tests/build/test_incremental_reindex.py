"""Incremental reindex: after notes are added, edited or removed, a reindex
re-embeds only the chunks that changed, says what it did, writes nothing
when nothing changed, and leaves the same index as a full rebuild. Fake
model throughout."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from _helpers import BIG, EDITED, NOTES, PHRASE, assert_consistent, edit_once

from dsqa import DSQA, storage
from dsqa.build.reindex import reindex
from dsqa.query.calibration import OFF_TOPIC

QUERIES = ["docker swarm overlay network", "S3 bucket versioning", "hadoop mapreduce", "kubectl --rm 8080:80", "zzz"]


def test_summary_says_what_was_done(built):
    notes = built.settings.corpus_dir / NOTES
    (notes / "new.md").write_text("# Raft\nRaft elects a leader.\n\n## Log\nEntries are replicated to a majority.\n")
    edit_once(notes / "unlimitediw-dist-sys-notes.md", PHRASE, EDITED)
    old = storage.read_manifest(built.settings.index_dir)
    (notes / "bbowman410-dist-sys-practice.md").unlink()
    report = built.reindex()
    text = str(report)
    m = re.fullmatch(
        r"3 notes unchanged, 1 added \((\d+) chunks?\), 1 changed \((\d+) chunks? re-embedded, (\d+) reused\), "
        r"1 removed \((\d+) chunks?\) in \d+\.\d s",
        text,
    )
    assert m, text
    added, reembedded, reused, removed = map(int, m.groups())
    new = storage.read_manifest(built.settings.index_dir)
    assert added == new["notes"]["notes/new.md"]["chunks"] == report.added["notes/new.md"]
    assert removed == old["notes"]["notes/bbowman410-dist-sys-practice.md"]["chunks"]
    assert reembedded + reused == new["notes"][BIG]["chunks"]
    assert 1 <= reembedded <= 2 and report.embedded == added + reembedded
    assert set(report.unchanged) == set(old["notes"]) - {BIG, "notes/bbowman410-dist-sys-practice.md"}
    data = report.to_dict()
    assert data["changed"] == {BIG: reembedded + reused} and data["removed"] == {
        "notes/bbowman410-dist-sys-practice.md": removed
    }


def calibration_questions(index) -> int:
    """Texts a reindex embeds for the refusal calibration (dsqa.query.calibration)."""
    return len(OFF_TOPIC) + index.manifest["calibration"]["pseudo_questions"]


def test_one_paragraph_edit_reembeds_only_its_chunks(built, fake_model):
    before = built.retriever().index
    old_keys = {c.key for c in before.chunks}
    calls, embedded = fake_model.calls, fake_model.embedded
    edit_once(built.settings.corpus_dir / BIG, PHRASE, EDITED)
    report = built.reindex()
    after = storage.load(built.settings.index_dir)
    new_rows = [r for r, c in enumerate(after.chunks) if c.key not in old_keys]
    assert 1 <= len(new_rows) <= 2, "one line changed: its chunk, and the next one if the line is in the overlap"
    assert report.embedded == len(new_rows) and report.changed == {BIG: before.manifest["notes"][BIG]["chunks"]}
    assert report.reused == report.changed[BIG] - len(new_rows)
    # The model saw the texts of those chunks' windows, in one call (each
    # chunk, each of its sentences, and the title or item lines a window
    # reads beside its sentence), then the refusal calibration's questions
    # (dsqa.query.calibration).
    assert fake_model.calls == calls + 2
    windows = sum(len(after.window_rows(r)) for r in new_rows)
    assert windows <= fake_model.embedded - embedded - calibration_questions(after) <= windows + 2 * len(new_rows)
    assert all(EDITED.split()[3] in after.chunks[r].text for r in new_rows)


def test_noop_and_touch_write_nothing(built, fake_model):
    gen = storage.current_generation(built.settings.index_dir)
    calls = fake_model.calls
    for path in (built.settings.corpus_dir / NOTES).iterdir():
        os.utime(path, None)  # a fresh clone: new mtimes, same bytes
    assert built.status().up_to_date
    report = built.reindex()
    assert not report.wrote and str(report).startswith("index up to date: 5 notes unchanged")
    assert storage.current_generation(built.settings.index_dir) == gen and fake_model.calls == calls


def _mutate_round_one(corpus: Path) -> None:
    notes = corpus / NOTES
    (notes / "new.md").write_text(
        "# Consensus\n\nRaft elects a leader with randomized timeouts.\n\n## Paxos\n\n"
        "Paxos has proposers, acceptors and learners. A value is chosen by a majority.\n"
        "```\npropose(n, v)\n```\n"
    )
    edit_once(notes / "unlimitediw-dist-sys-notes.md", PHRASE, EDITED)
    # A paragraph inserted at the top shifts every line of the note below it.
    text = (notes / "jialiang-jiang-dist-sys-notes.md").read_text()
    (notes / "jialiang-jiang-dist-sys-notes.md").write_text("A new first paragraph about etcd.\n\n" + text)
    (notes / "bbowman410-dist-sys-practice.md").unlink()


def _mutate_round_two(corpus: Path) -> None:
    notes = corpus / NOTES
    (notes / "sub").mkdir()
    (notes / "new.md").rename(notes / "sub" / "moved.md")
    with open(notes / "anonymous-short-notes.md", "a") as fh:
        fh.write("\n## Area 9: Gossip\n* Gossip protocols spread membership changes epidemically.\n")
    (notes / "empty.md").write_text("  \n")


def assert_same_index(a: storage.StoredIndex, b: storage.StoredIndex) -> None:
    assert a.chunks == b.chunks
    np.testing.assert_array_equal(a.windows, b.windows)
    np.testing.assert_allclose(a.vectors, b.vectors, rtol=0, atol=1e-6)
    for key in ("notes", "skipped", "model", "chunking", "chunk_count", "vector_count", "format"):
        assert a.manifest[key] == b.manifest[key], key
    for q in QUERIES + [c.text[:80] for c in a.chunks[::97]]:
        np.testing.assert_allclose(a.lexical.scores(q), b.lexical.scores(q), rtol=1e-6)


def test_incremental_equals_full_rebuild(built, fake_model):
    settings = built.settings
    full = settings.with_(index_dir=settings.index_dir.parent / "full")
    for mutate in (_mutate_round_one, _mutate_round_two):
        mutate(settings.corpus_dir)
        embedded = fake_model.embedded
        report = built.reindex()
        assert not report.full and report.embedded < report.total_chunks / 4
        incremental_windows = fake_model.embedded - embedded
        reindex(full, full=True)
        inc, reb = storage.load(settings.index_dir), storage.load(full.index_dir)
        # a full rebuild embeds each distinct text (a chunk, a sentence, or a
        # title or item line a window reads beside its sentence) once (a
        # window's vector averages its texts'), then the refusal calibration's
        # questions
        texts = fake_model.batches[-2]
        assert fake_model.last_texts[: len(OFF_TOPIC)] == list(OFF_TOPIC)
        assert fake_model.embedded - embedded - incremental_windows - calibration_questions(reb) == len(texts) == len(set(texts))
        assert_consistent(inc)
        assert_same_index(inc, reb)
        strict = dict(auto_reindex=False)
        a, b = DSQA(settings, **strict), DSQA(full, **strict)
        for q in QUERIES:
            assert [p.to_dict() for p in a.search(q, k=10)] == [p.to_dict() for p in b.search(q, k=10)]
            assert a.ask(q).to_dict() == b.ask(q).to_dict()
        assert not any(p.name.startswith(".tmp") for p in settings.index_dir.iterdir())
        assert len(list(settings.index_dir.glob("gen-*"))) == 1


def test_an_index_whose_records_are_not_in_the_manifests_order_is_updated_right(built, fake_model):
    """A reindex takes each unchanged note's rows as one run, from the
    manifest's note order and counts, checked at each note's first and last
    record. An index written otherwise (here: the manifest's notes listed in
    reverse) is read record by record instead, and the update is still the
    full rebuild's."""
    import json

    settings = built.settings
    gen = storage.current_generation(settings.index_dir)
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    manifest["notes"] = dict(reversed(list(manifest["notes"].items())))
    (gen / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    with open(settings.corpus_dir / "notes" / "anonymous-short-notes.md", "a", encoding="utf-8") as fh:
        fh.write("\n\n## Gossip\n\nNodes spread membership changes by gossip, a few peers at a time.\n")
    report = built.reindex()
    assert not report.full and report.changed
    full = settings.with_(index_dir=settings.index_dir.parent / "full")
    reindex(full, full=True)
    inc, reb = storage.load(settings.index_dir), storage.load(full.index_dir)
    assert_consistent(inc)
    assert [c.source for c in inc.chunks] == [c.source for c in reb.chunks]
    strict = dict(auto_reindex=False)
    a, b = DSQA(settings, **strict), DSQA(full, **strict)
    for q in QUERIES:
        assert [p.to_dict() for p in a.search(q, k=10)] == [p.to_dict() for p in b.search(q, k=10)]


def test_the_lines_of_a_code_block_share_one_stored_vector(tmp_path, fake_model):
    """Each line of a command or a table stays a sentence an answer can quote
    (a row of the window table), and the lines of one block share one window
    vector, which the vector index stores once (issue 29): a window per line
    stored as many vectors as the block had lines."""
    from conftest import FAST

    from dsqa import Settings

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "swarm.md").write_text(
        "# Swarm\n\nStart the service with these commands. Then check that it answers.\n\n"
        "```\ndocker network create -d overlay overnet\ndocker service create --name web --network overnet nginx\n"
        "docker service ps web --no-trunc\n```\n\n"
        "| Flag | What it does here |\n|---|---|\n| --detach | runs the task in the background |\n"
        "| --publish | maps a port of the host to the task |\n"
    )
    settings = Settings(corpus_dir=folder, index_dir=tmp_path / "index", **{**FAST, "chunk_tokens": 200})
    reindex(settings)
    index = storage.load(settings.index_dir)
    assert len(index.chunks) == 1
    text = index.chunks[0].text
    rows = {text[index.windows[w, 1] : index.windows[w, 2]]: w for w in index.window_rows(0) if index.windows[w, 1] >= 0}
    code = [rows[line] for line in text.split("\n") if line.startswith("docker")]
    table = [rows[line] for line in text.split("\n") if line.startswith("| ") and "---" not in line]
    assert len(code) == 3 and len(table) == 3
    for block in (code, table):
        assert len({index.vectors[w].tobytes() for w in block}) == 1
        assert len({int(index.distinct.entry_of_row[w]) for w in block}) == 1
    assert index.manifest["ann_entries"] == 1 + 2 + 1 + 1  # the chunk, two sentences, the commands, the table
    assert index.manifest["vector_count"] == 1 + 2 + 3 + 3
