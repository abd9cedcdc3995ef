"""Stale-index detection: an index is stale when notes changed since it was
built, or it was built with another model, other chunking settings or an
older format; the manifest records what is compared. A question then
updates it first (or raises ``StaleIndexError`` with ``auto_reindex`` off,
naming the command), a long-lived engine notices changes, and what cannot
be fixed is warned about once. Fake model throughout."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
from _helpers import (
    BIG,
    EDITED,
    NOTES,
    PHRASE,
    assert_consistent,
    dsqa_logs,
    edit_once,
    invoke,
    read_only,
    rewrite_manifest,
    write_format3,
)
from conftest import FakeEmbedder

import dsqa
from dsqa import DSQA, StaleIndexError, storage
from dsqa.query.calibration import OFF_TOPIC

#: dsqa's logger as caplog needs it (see conftest.dsqa_logs_propagate).
pytestmark = pytest.mark.usefixtures("dsqa_logs_propagate")


# -- what the manifest records -----------------------------------------------------------


def test_manifest_records_identity_and_checksums(built):
    gen = storage.current_generation(built.settings.index_dir)
    m = json.loads((gen / storage.MANIFEST).read_text())
    assert m["format"] == storage.FORMAT_VERSION
    assert m["model"] == {"name": "fake-hash", "dimension": 64, "max_tokens": 128}
    assert {"chunk_tokens", "chunk_overlap_tokens", "embed_headings", "window_sentences", "chunker_version"} <= set(
        m["chunking"]
    )
    listed = set(m["files"])
    on_disk = {p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file()} - {storage.MANIFEST}
    assert listed == on_disk


# -- notes changed -----------------------------------------------------------------------


def test_changed_corpus_updates_with_one_log_line(built, caplog):
    (built.settings.corpus_dir / NOTES / "new.md").write_text("# New\nzookeeper leader election\n")
    with caplog.at_level(logging.INFO, logger="dsqa"):
        hits = DSQA(built.settings).search("zookeeper leader election", k=1)
    assert hits[0].source == "notes/new.md"
    records = dsqa_logs(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert re.search(r"stale \(notes 1 added \(notes/new\.md\)\): reindexing", records[0].getMessage())


def test_a_long_lived_engine_notices_changes(built, monkeypatch, fake_model):
    """The web page keeps one engine: it re-checks the corpus (at most every
    STALE_CHECK_SECONDS, 0 here) and updates the index when notes change."""
    monkeypatch.setattr(dsqa.engine, "STALE_CHECK_SECONDS", 0.0)
    assert built.search("zookeeper leader election", k=1)[0].source != "notes/new.md"
    calls = fake_model.calls
    built.search("docker", k=1)
    assert fake_model.calls == calls + 1, "nothing changed: only the query is embedded"
    (built.settings.corpus_dir / NOTES / "new.md").write_text("# New\nzookeeper leader election\n")
    assert built.search("zookeeper leader election", k=1)[0].source == "notes/new.md"


def test_unfixable_staleness_warns_once(built, monkeypatch, caplog):
    monkeypatch.setattr(dsqa.engine, "STALE_CHECK_SECONDS", 0.0)
    built.ask("docker")
    (built.settings.corpus_dir / NOTES / "new.md").write_text("# New\nzookeeper\n")
    with read_only(built.settings.index_dir), caplog.at_level(logging.INFO, logger="dsqa"):
        for _ in range(3):
            assert built.ask("docker swarm").passages
    assert len(dsqa_logs(caplog, logging.WARNING)) == 1 and len(dsqa_logs(caplog)) == 2


def test_changed_corpus_raises_when_auto_reindex_is_off(built):
    notes = built.settings.corpus_dir / NOTES
    (notes / "new.md").write_text("# New\nzookeeper\n")
    edit_once(notes / "unlimitediw-dist-sys-notes.md", PHRASE, EDITED)
    (notes / "anonymous-short-notes.md").unlink()
    with pytest.raises(StaleIndexError) as info:
        DSQA(built.settings, auto_reindex=False).ask("zookeeper")
    message = str(info.value)
    assert "1 added (notes/new.md)" in message and f"1 changed ({BIG})" in message
    assert "1 removed (notes/anonymous-short-notes.md)" in message
    assert f"dsqa reindex --corpus {built.settings.corpus_dir} --index {built.settings.index_dir}" in message


def test_no_auto_reindex_flag(cli_built):
    (cli_built.corpus_dir / NOTES / "new.md").write_text("# New\nzookeeper\n")
    r = invoke(cli_built, "ask", "zookeeper", "--no-auto-reindex")
    assert r.exit_code == 1 and "stale" in r.output and "dsqa reindex" in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = invoke(cli_built, "ask", "zookeeper")
    assert r.exit_code == 0 and "notes/new.md" in r.output


# -- another model, other settings, an older format --------------------------------------


class OtherFake(FakeEmbedder):
    """Another model: other name, other dimension, other vectors."""

    name = "fake-other"
    dimension = 32


def test_switching_model_reembeds_everything(built, fake_model, caplog, tmp_path, register):
    DSQA(built.settings.with_(index_dir=tmp_path / "scratch")).reindex()
    assert fake_model.calls == 2  # a full build: the notes, then the calibration questions
    texts_in_full_build = fake_model.embedded
    other = OtherFake()
    register("fake-other", lambda: other)
    settings = built.settings.with_(model="fake-other")
    with pytest.raises(StaleIndexError, match=r"built with model fake-hash, settings use fake-other.*--model fake-other"):
        DSQA(settings, auto_reindex=False).ask("docker")
    calls = fake_model.calls
    with caplog.at_level(logging.INFO, logger="dsqa"):
        answer = DSQA(settings).ask("docker swarm")
    assert answer.passages
    assert [r.getMessage() for r in dsqa_logs(caplog)] == [
        "index is stale (built with model fake-hash, settings use fake-other): reindexing"
    ]
    index = storage.load(settings.index_dir)
    assert index.manifest["model"]["name"] == "fake-other" and index.vectors.shape[1] == 32
    # Every vector is the new model's: all embedded anew, none reused (two
    # calls for the reindex, notes and calibration, one for the question).
    assert other.calls == 3 and other.embedded == texts_in_full_build + 1
    assert fake_model.calls == calls
    assert_consistent(index)


def test_same_model_name_other_dimension_is_another_model(built, register):
    class Wider(FakeEmbedder):
        dimension = 48

    register("fake-hash", Wider)
    with pytest.raises(StaleIndexError, match=r"fake-hash \(64-d, 128 tokens\), settings use fake-hash \(48-d"):
        DSQA(built.settings, auto_reindex=False).ask("docker")
    report = DSQA(built.settings).reindex()
    assert report.full and "built with model fake-hash (64-d" in str(report)
    assert storage.load(built.settings.index_dir).vectors.shape[1] == 48


def test_chunking_change(built):
    other = built.settings.with_(chunk_tokens=80)
    with pytest.raises(StaleIndexError, match=r"chunking settings differ \(chunk_tokens 60 -> 80\)"):
        DSQA(other, auto_reindex=False).ask("docker")
    report = DSQA(other).reindex()
    assert report.full and report.reason == "chunking settings differ (chunk_tokens 60 -> 80)"
    assert storage.read_manifest(other.index_dir)["chunking"]["chunk_tokens"] == 80
    assert DSQA(other, auto_reindex=False).ask("docker").passages


def test_confidence_settings_change_recalibrates_without_reembedding(built, fake_model):
    """The refusal calibration is measured with the confidence settings
    (``Settings.confidence``): an index calibrated with others is stale, and
    a reindex recalibrates it with the new ones, reusing every vector."""
    old = storage.read_manifest(built.settings.index_dir)["calibration"]
    other = built.settings.with_(unknown_term_penalty=0.3, confidence_passages=2)
    why = "refusal calibration settings differ (confidence_passages 3 -> 2, unknown_term_penalty 0.9 -> 0.3)"
    assert DSQA(other, auto_reindex=False).status().problems == [why]
    with pytest.raises(StaleIndexError, match=re.escape(why)):
        DSQA(other, auto_reindex=False).ask("docker")
    embedded = fake_model.embedded
    report = DSQA(other).reindex()
    assert report.wrote and not report.full and report.embedded == 0
    assert report.reason == "the refusal calibration was outdated"
    assert fake_model.embedded - embedded == len(OFF_TOPIC) + old["pseudo_questions"]  # its questions only
    manifest = storage.read_manifest(other.index_dir)
    assert manifest["chunking"]["unknown_term_penalty"] == 0.3 and manifest["chunking"]["confidence_passages"] == 2
    assert manifest["calibration"]["low"] != old["low"]
    assert DSQA(other, auto_reindex=False).status().up_to_date
    assert DSQA(built.settings, auto_reindex=False).status().problems == [
        "refusal calibration settings differ (confidence_passages 2 -> 3, unknown_term_penalty 0.3 -> 0.9)"
    ]


def test_older_format_is_brought_up_to_date(built):
    """Format 3 (float32 vectors.npy beside the FAISS index) is read as it
    is, reported stale, and rewritten as format 4 without re-embedding;
    format 1 is rebuilt."""
    write_format3(built.settings.index_dir)
    old = storage.load(built.settings.index_dir)
    assert DSQA(built.settings, auto_reindex=False).status().format == 3 and isinstance(old.vectors, np.ndarray)
    with pytest.raises(StaleIndexError, match="index format 3"):
        DSQA(built.settings, auto_reindex=False).ask("docker")
    report = DSQA(built.settings).reindex()
    assert report.wrote and not report.full and report.embedded == 0
    assert str(report).endswith(f"because the index had format 3, this dsqa writes {storage.FORMAT_VERSION}")
    new = storage.load(built.settings.index_dir)
    assert new.manifest["format"] == storage.FORMAT_VERSION == 4 and not (new.path / "vectors.npy").exists()
    np.testing.assert_allclose(np.asarray(new.vectors), old.vectors, atol=1e-3)
    rewrite_manifest(built.settings.index_dir, format=1)
    assert DSQA(built.settings).ask("docker").passages
    assert storage.read_manifest(built.settings.index_dir)["format"] == storage.FORMAT_VERSION
    assert DSQA(built.settings).reindex().wrote is False
