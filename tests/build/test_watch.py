"""Following the folder: the watcher reindexes after a note is saved, and
ignores editors' temporary files."""

from __future__ import annotations

import time

import pytest

from dsqa import DSQA, Settings
from dsqa.build.watch import Watcher, WatchTiming, is_ignored

pytest.importorskip("watchfiles")

#: How long a saved note may take to become answerable in the test (the
#: watcher settles for 0.2 s, then a fake-model reindex of two notes).
BOUND_SECONDS = 30.0


def wait_for(check, what: str):
    deadline = time.monotonic() + BOUND_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {BOUND_SECONDS} s: {what}")


@pytest.mark.parametrize(
    "name",
    [".raft.md.swp", "raft.md.swp", "raft.md.swx", "raft.md~", "4913", ".#raft.md", "#raft.md#", "raft.md.tmp",
     "raft.md___jb_tmp___", "raft.md.kate-swp", "slides.pdf.crdownload", "slides.pdf.part", ".hidden/raft.md"],
)
def test_editor_temporary_and_hidden_files_are_ignored(tmp_path, name):
    assert is_ignored(tmp_path / name, tmp_path)


@pytest.mark.parametrize("name", ["raft.md", "notes/raft.md", "slides/week 3.pdf", "lab.ipynb", "saved/page.html", "notes"])
def test_notes_and_folders_are_not_ignored(tmp_path, name):
    assert not is_ignored(tmp_path / name, tmp_path)


def test_a_note_saved_while_watching_is_answerable_within_a_bounded_wait(tmp_path, fake_model):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "paxos.md").write_text("# Paxos\n\nPaxos uses proposers and acceptors to agree on a value.\n")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash", chunk_tokens=40, chunk_overlap_tokens=4)
    engine = DSQA(settings, auto_reindex=False)  # answers only from what the watcher indexed
    reports = []
    with Watcher(settings, reports.append, WatchTiming(settle_ms=200, retry_seconds=0.5)) as watcher:
        assert watcher.ready.wait(BOUND_SECONDS) and watcher.error is None
        assert reports and reports[0].added == {"paxos.md": 1}
        assert engine.ask("what does raft elect").passages[0].source == "paxos.md"

        # An editor's save: swap file and write probe first, then the note.
        (corpus / ".raft.md.swp").write_bytes(b"\x00swap")
        (corpus / "4913").write_bytes(b"")
        (corpus / "raft.md").write_text("# Raft\n\nRaft elects a leader with randomized election timeouts.\n")
        (corpus / "4913").unlink()
        wait_for(lambda: engine.status().up_to_date and "raft.md" in engine.note_names(), "the new note indexed")
        top = engine.ask("what does raft elect").passages[0]
        assert top.source == "raft.md" and "randomized election timeouts" in top.text

        # Editing it changes the answer.
        (corpus / "raft.md").write_text("# Raft\n\nRaft elects a leader; followers redirect clients to the leader.\n")
        wait_for(lambda: "redirect clients" in engine.ask("what does raft elect").passages[0].text, "the edit indexed")
        assert all(not r.skipped for r in reports)  # the swap file and the probe were never candidates
    assert not watcher._thread.is_alive()


def test_a_locked_index_is_retried_not_reported(tmp_path, fake_model):
    from filelock import FileLock

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# A\n\nalpha beta gamma\n")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash", chunk_tokens=40, chunk_overlap_tokens=4)
    settings.index_dir.mkdir()
    lock = FileLock(str(settings.index_dir / ".lock"))
    lock.acquire()  # another writer holds the index
    reports = []
    with Watcher(settings, reports.append, WatchTiming(settle_ms=100, retry_seconds=0.2)) as watcher:
        time.sleep(1.0)
        assert reports == [] and watcher.error is None
        lock.release()
        wait_for(lambda: reports, "the retried reindex")
    assert reports[0].added == {"a.md": 1}
