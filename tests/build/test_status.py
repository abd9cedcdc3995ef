"""``dsqa status``: what the index holds (model, settings, size) and whether
it is up to date, naming the notes added, changed or removed and the command
that fixes it; it reads, never writes."""

from __future__ import annotations

import json
import re

import pytest
from _helpers import BIG, EDITED, NOTES, PHRASE, edit_once, invoke

from dsqa import DSQA, storage

#: dsqa's logger as caplog needs it (see conftest.dsqa_logs_propagate).
pytestmark = pytest.mark.usefixtures("dsqa_logs_propagate")


def test_status_text_and_json(cli_built):
    r = invoke(cli_built, "status")
    assert r.exit_code == 0, r.output
    assert "model:    fake-hash (64-d)" in r.output and "chunk_tokens=200" in r.output
    assert re.search(r"size:     5 notes, \d+ chunks, \d+ windows, \d+ vectors", r.output)
    assert "state:    up to date" in r.output and "built 20" in r.output
    notes = cli_built.corpus_dir / NOTES
    (notes / "new.md").write_text("# New\nzookeeper\n")
    edit_once(notes / "unlimitediw-dist-sys-notes.md", PHRASE, EDITED)
    (notes / "anonymous-short-notes.md").unlink()
    r = invoke(cli_built, "status")
    assert "state:    stale: notes 1 added (notes/new.md); 1 changed" in r.output
    assert "added:    notes/new.md" in r.output and f"changed:  {BIG}" in r.output
    assert "removed:  notes/anonymous-short-notes.md" in r.output and "fix:      dsqa reindex --corpus" in r.output
    data = json.loads(invoke(cli_built, "status", "--json").output)
    assert data["up_to_date"] is False
    assert (data["added"], data["changed"], data["removed"]) == (
        ["notes/new.md"], [BIG], ["notes/anonymous-short-notes.md"]
    )
    assert data["model"] == {"name": "fake-hash", "dimension": 64, "max_tokens": 128}
    assert data["chunking"]["chunk_tokens"] == 200 and data["notes"] == 5 and data["chunks"] > 0
    assert data["created"].endswith("Z") and data["format"] == storage.FORMAT_VERSION
    # status reads, never writes
    assert invoke(cli_built, "status").exit_code == 0 and not json.loads(
        invoke(cli_built, "status", "--json").output
    )["up_to_date"]
    r = invoke(cli_built, "reindex")
    assert r.output.startswith("3 notes unchanged, 1 added (1 chunk), 1 changed (")
    assert json.loads(invoke(cli_built, "status", "--json").output)["up_to_date"] is True


def test_status_names_model_and_settings_differences(built):
    s = DSQA(built.settings.with_(chunk_tokens=90)).status()
    assert not s.up_to_date and s.problems == ["chunking settings differ (chunk_tokens 60 -> 90)"]
    assert s.added == s.changed == s.removed == []


def test_status_without_an_index(settings):
    """Not an error: the first question builds it (tests/test_first_run.py)."""
    r = invoke(settings, "status")
    assert r.exit_code == 0 and "not built yet" in r.output and "dsqa reindex" in r.output


def test_status_counts_the_vectors_stored_not_the_window_rows(settings):
    """Windows with the same text share one stored vector: status says how
    many windows the index has and how many vectors it stores."""
    repeated = "Raft elects a leader with randomized election timeouts."
    (settings.corpus_dir / "a.md").write_text(f"# A\n{repeated}\n")
    (settings.corpus_dir / "b.md").write_text(f"# A\n{repeated}\n")
    engine = DSQA(settings)
    engine.reindex()
    manifest = storage.read_manifest(settings.index_dir)
    s = engine.status()
    assert s.windows == manifest["vector_count"]
    assert s.vectors == manifest["ann_entries"] - manifest["ann_masked"] < s.windows
    assert f"{s.windows} windows, {s.vectors} vectors" in str(s)
