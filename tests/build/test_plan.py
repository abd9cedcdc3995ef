"""The reindex plan (issue 25): what a reindex does with the index it finds
is decided once, from the live generation's manifest
(:func:`dsqa.build.freshness.plan`), then carried out. Fake model throughout."""

from __future__ import annotations

import pytest
from _helpers import count_index_reads, rewrite_manifest, write_format3
from conftest import FakeEmbedder

from dsqa import DSQA, CorpusMismatchError, storage
from dsqa.build import freshness
from dsqa.build.chunking import CHUNKER_VERSION
from dsqa.build.freshness import UNUSABLE, ReindexPlan, plan
from dsqa.build.reindex import reindex
from dsqa.encoders import get_embedder
from dsqa.sources.loading import content_hash
from dsqa.storage import manifest as manifest_module


def _plan(settings, *, full: bool = False) -> ReindexPlan:
    return plan(settings, get_embedder(settings.model), full=full)


@pytest.fixture
def small(settings, tmp_path):
    """``settings`` over a folder of four short notes, indexed: the tests
    that carry a plan out write an index this size in a moment."""
    corpus = tmp_path / "small"
    corpus.mkdir()
    for name, text in {
        "raft.md": "# Raft\n\nRaft elects a leader by majority vote.\n",
        "gossip.md": "# Gossip\n\nNodes spread membership by gossip.\n",
        "quorum.md": "# Quorum\n\nA quorum is a majority of replicas.\n",
        "clocks.md": "# Clocks\n\nLamport clocks order events.\n",
    }.items():
        (corpus / name).write_text(text, encoding="utf-8")
    small = settings.with_(corpus_dir=corpus, index_dir=tmp_path / "small-index")
    reindex(small)
    return small


def test_an_up_to_date_index_is_reused_whole(built):
    settings = built.settings
    manifest = storage.read_manifest(settings.index_dir)
    planned = _plan(settings)
    assert planned.generation == storage.current_generation(settings.index_dir)
    assert planned.manifest == manifest and planned.reason == "" and planned.rewrite == ""
    assert dict(planned.reusable) == {src: e["sha256"] for src, e in manifest["notes"].items()}
    assert planned.keep_calibration
    assert planned.model == manifest["model"] and planned.chunking == manifest["chunking"]
    assert reindex(settings).wrote is False


def test_changed_added_and_removed_notes(small):
    """The plan reuses a note's chunks only while its bytes are the ones it
    had: a changed note is re-chunked, an added one chunked, a removed one
    dropped; the others are taken whole."""
    settings = small
    notes = sorted(settings.corpus_dir.rglob("*.md"))
    changed, removed = notes[0], notes[1]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nZebrafinch overlay appendix.\n", encoding="utf-8")
    removed.unlink()
    added = settings.corpus_dir / "added.md"
    added.write_text("# Added\n\nA note about quorum reads in etcd.\n", encoding="utf-8")
    rel = {p: p.relative_to(settings.corpus_dir).as_posix() for p in (changed, removed, added)}

    planned = _plan(settings)
    assert planned.manifest is not None and planned.reason == ""
    assert planned.reusable[rel[changed]] != content_hash(changed.read_bytes())
    assert rel[removed] in planned.reusable and rel[added] not in planned.reusable

    report = reindex(settings)
    assert list(report.changed) == [rel[changed]] and list(report.added) == [rel[added]]
    assert list(report.removed) == [rel[removed]] and not report.full
    assert len(report.unchanged) == len(notes) - 2


def test_another_folders_index_is_refused(built, tmp_path):
    other = tmp_path / "other-notes"
    other.mkdir()
    (other / "a.md").write_text("# A\n\nOther notes.\n", encoding="utf-8")
    settings = built.settings.with_(corpus_dir=other)
    for full in (False, True):
        with pytest.raises(CorpusMismatchError, match="belongs to"):
            _plan(settings, full=full)


def test_no_index_and_full(built, tmp_path):
    fresh = _plan(built.settings.with_(index_dir=tmp_path / "new-index"))
    assert fresh == ReindexPlan(None, None, model=fresh.model, chunking=fresh.chunking)
    full = _plan(built.settings, full=True)
    assert full.generation is not None and full.manifest is None and full.reason == "" and not full.reusable


def test_format_upgrade_reuses_an_older_readable_format(built):
    write_format3(built.settings.index_dir)
    planned = _plan(built.settings)
    assert planned.manifest is not None and planned.manifest["format"] == 3
    assert planned.rewrite == f"the index had format 3, this dsqa writes {storage.FORMAT_VERSION}"
    rewrite_manifest(built.settings.index_dir, format=1)
    planned = _plan(built.settings)
    assert planned.manifest is None
    assert planned.reason == f"the index has format 1, this dsqa writes {storage.FORMAT_VERSION}"


def test_chunking_or_model_change_rebuilds_everything(built, register):
    chunks = _plan(built.settings.with_(chunk_tokens=80))
    assert chunks.manifest is None and chunks.reason == "chunking settings differ (chunk_tokens 60 -> 80)"
    chunking = storage.read_manifest(built.settings.index_dir)["chunking"]
    rewrite_manifest(built.settings.index_dir, chunking={**chunking, "chunker_version": CHUNKER_VERSION - 1})
    chunker = _plan(built.settings)
    assert chunker.manifest is None
    assert chunker.reason == f"chunking settings differ (chunker_version {CHUNKER_VERSION - 1} -> {CHUNKER_VERSION})"

    class Wider(FakeEmbedder):
        dimension = 48

    register("fake-hash", Wider)
    model = _plan(built.settings)
    assert model.manifest is None and model.reason.startswith("built with model fake-hash (64-d")


def test_confidence_change_reuses_vectors_but_recalibrates(built):
    planned = _plan(built.settings.with_(unknown_term_penalty=0.3))
    assert planned.manifest is not None and not planned.keep_calibration
    assert planned.rewrite == "the refusal calibration was outdated"


def test_an_unreadable_manifest_is_rebuilt(small):
    (storage.current_generation(small.index_dir) / storage.MANIFEST).write_text("{not json")
    planned = _plan(small)
    assert planned.manifest is None and planned.reason == UNUSABLE and "manifest" in planned.problem
    assert _plan(small, full=True).problem == ""
    report = reindex(small)
    assert report.full and report.reason == UNUSABLE


def test_a_reindex_reads_the_manifest_once(small, monkeypatch):
    """Planned once: before, a reindex read the manifest three times (its
    corpus check, the format check, the load)."""
    reads = count_index_reads(monkeypatch)
    assert DSQA(small).reindex().wrote is False
    assert reads[manifest_module.MANIFEST] == 1


def test_a_writer_that_switched_the_generation_meanwhile_is_planned_for(small, monkeypatch):
    """A plan made before the lock is made again under it when another
    writer switched the live generation in between."""
    settings = small
    made = []
    real = freshness.plan

    def planning(*args, **kwargs):
        made.append(real(*args, **kwargs))
        if len(made) == 1:  # another writer finishes while this one waits for the lock
            note = next(settings.corpus_dir.rglob("*.md"))
            note.write_text(note.read_text(encoding="utf-8") + "\n\nKestrel quorum note.\n", encoding="utf-8")
            monkeypatch.setattr("dsqa.build.reindex.plan", real)
            reindex(settings)
            monkeypatch.setattr("dsqa.build.reindex.plan", planning)
        return made[-1]

    monkeypatch.setattr("dsqa.build.reindex.plan", planning)
    report = reindex(settings)
    assert len(made) == 2 and made[0].generation != made[1].generation
    assert report.wrote is False  # the other writer's generation is up to date
