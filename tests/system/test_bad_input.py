"""Bad input gets a clear one-line error and loses nothing: bad questions and
``k``; notes that cannot be read (skipped with a warning, remembered); a
notes folder that is gone or empty, an index folder that cannot be written
or is a file."""

from __future__ import annotations

import logging
import os

import pytest
from _helpers import NOTES, assert_consistent, invoke, read_only

from dsqa import DSQA, DsqaError, storage
from dsqa.errors import CorpusError, IndexWriteError
from dsqa.sources.reading import MAX_NOTE_BYTES

#: dsqa's logger as caplog needs it (see conftest.dsqa_logs_propagate).
pytestmark = pytest.mark.usefixtures("dsqa_logs_propagate")


# -- questions and k ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, match",
    [("", "empty"), ("  \n\t  ", "empty"), ("\x00\x07\x1b\u200b\ufeff", "empty"), ("docker " * 15_000, "limit is 2,000")],
    ids=["empty", "whitespace", "control", "100kB"],
)
def test_bad_questions(built, question, match):
    with pytest.raises(ValueError, match=match):
        built.ask(question)
    r = invoke(built.settings.with_(chunk_tokens=200), "ask", question or " ")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1


def test_control_characters_inside_a_question_are_spaces(built):
    assert built.ask("docker\x00swarm\x1b[31m overlay").passages


@pytest.mark.parametrize("k", [0, -1, -(10**9), 101, 10**9, 10**30])
def test_bad_k(built, k):
    with pytest.raises(ValueError, match="k must be between 1 and 100"):
        built.ask("docker", k=k)


def test_k_at_the_limit(built):
    assert len(built.search("docker", k=100)) == 100


# -- notes that cannot be read -----------------------------------------------------------


def test_unreadable_notes_are_skipped_with_a_warning(built, caplog, tmp_path):
    notes = built.settings.corpus_dir / NOTES
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\npassword hunter2\n")
    (notes / "empty.md").write_bytes(b"")
    (notes / "blank.md").write_bytes(b" \n\t\n")
    (notes / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (notes / "latin1.md").write_bytes("café crème brûlée".encode("latin-1"))
    os.symlink(outside / "secret.md", notes / "link.md")
    os.symlink(outside, notes / "linkdir")
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        report = built.reindex()
    skipped = dict(report.skipped)
    assert skipped == {
        "notes/empty.md": "empty note",
        "notes/blank.md": "empty note",
        "notes/binary.md": "binary file (contains NUL bytes)",
        "notes/latin1.md": "not UTF-8 text (invalid byte at offset 3)",
        "notes/link.md": "symlink leads outside the corpus",
        "notes/linkdir/": "symlink leads outside the corpus",
    }
    for name in skipped:
        assert f"skipped {name}:" in caplog.text
    assert "6 files skipped" in str(report) and not report.added and not report.changed
    index = storage.load(built.settings.index_dir)
    assert_consistent(index)
    assert not any("hunter2" in c.text for c in index.chunks)
    manifest = index.manifest
    assert manifest["skipped"]["notes/link.md"]["sha256"] is None  # never read
    # Remembered, so they are not "new notes" to status or ask.
    status = built.status()
    assert status.up_to_date, status.problems
    assert not built.reindex().wrote
    # A note that turns unreadable leaves the index, with a warning.
    (notes / "anonymous-short-notes.md").write_bytes(b"\xff\xfe broken")
    report = built.reindex()
    assert report.removed == {"notes/anonymous-short-notes.md": manifest["notes"]["notes/anonymous-short-notes.md"]["chunks"]}
    assert_consistent(storage.load(built.settings.index_dir))


def _bytes_read_by_this_process() -> int:
    """``rchar`` of /proc/self/io: every byte this process has read() so far."""
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("rchar:"))


def test_a_50_MB_note_is_skipped_unread(built, caplog):
    # Skipped by its size alone: the reindex reads far fewer bytes than the note
    # holds (a wall-clock bound would fail on a busy machine for other reasons).
    big = built.settings.corpus_dir / NOTES / "dump.md"
    line = b"word " * 19 + b"\n"
    with open(big, "wb") as fh:
        fh.write(line * (50 * 1024 * 1024 // len(line)))
    assert big.stat().st_size > 50e6 > MAX_NOTE_BYTES
    before = _bytes_read_by_this_process()
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        report = built.reindex()
    assert _bytes_read_by_this_process() - before < MAX_NOTE_BYTES
    assert dict(report.skipped) == {"notes/dump.md": "too large (52.4 MB, limit 21 MB)"}
    assert "skipped notes/dump.md: too large" in caplog.text
    assert built.status().up_to_date and not built.reindex().wrote
    assert built.ask("docker swarm").found


# -- folders that cannot be used ---------------------------------------------------------


def test_missing_or_empty_corpus_loses_nothing(built, caplog):
    gen = storage.current_generation(built.settings.index_dir)
    moved = built.settings.corpus_dir.with_name("moved")
    built.settings.corpus_dir.rename(moved)
    with pytest.raises(CorpusError, match="does not exist"):
        DSQA(built.settings).reindex()
    r = invoke(built.settings.with_(chunk_tokens=200), "reindex")
    assert r.exit_code == 1 and "does not exist" in r.output
    status = built.status()
    assert not status.up_to_date and len(status.removed) == 5
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        answer = DSQA(built.settings).ask("docker swarm")
    assert answer.passages and "answering from it as it is" in caplog.text
    built.settings.corpus_dir.mkdir()
    with pytest.raises(CorpusError, match="no notes to index"):
        DSQA(built.settings).reindex()
    assert storage.current_generation(built.settings.index_dir) == gen
    assert_consistent(storage.load(built.settings.index_dir))


def test_read_only_index_folder_loses_nothing(built, fake_model, caplog):
    settings = built.settings
    gen = storage.current_generation(settings.index_dir)
    (settings.corpus_dir / NOTES / "new.md").write_text("# New\nzookeeper leader election\n")
    embedded = fake_model.embedded
    with read_only(settings.index_dir):
        with pytest.raises(IndexWriteError, match=r"cannot write the index folder .*the index there .* is unchanged"):
            DSQA(settings).reindex()
        assert fake_model.embedded == embedded, "fails before embedding anything"
        assert storage.current_generation(settings.index_dir) == gen
        assert_consistent(storage.load(settings.index_dir))
        with caplog.at_level(logging.WARNING, logger="dsqa"):
            assert DSQA(settings).ask("docker swarm").passages
        assert "could not update the index" in caplog.text
        r = invoke(settings.with_(chunk_tokens=200), "reindex")
        assert r.exit_code == 1 and "cannot write the index folder" in r.output
    assert "notes/new.md" in DSQA(settings).reindex().added


def test_index_path_that_is_a_file(settings):
    settings.index_dir.write_text("not a folder")
    with pytest.raises(IndexWriteError, match="is a file, not a folder") as writing:
        DSQA(settings).reindex()
    with pytest.raises(DsqaError, match="is a file, not a folder") as reading:
        DSQA(settings).ask("docker")
    # one error, whether the index is written or read
    assert type(writing.value) is type(reading.value) and str(writing.value) == str(reading.value)
    r = invoke(settings, "status")  # click itself refuses it, as a misused flag
    assert r.exit_code == 2 and "is a file" in r.output
