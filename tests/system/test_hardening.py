"""Odd files in the notes and index folders (issue 19): symlink loops, names
that are not UTF-8, symlinks and FIFOs swapped in while reading, damaged
``CURRENT`` and manifest files, megabyte lines, and corpora that are whole
filesystems. Each must be skipped or refused with a one-line error, never
crash, hang, or read outside the corpus."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from _helpers import invoke

from dsqa import DSQA, CorpusTooLargeError, DsqaError, IndexCorruptError, storage
from dsqa.build.chunking import MAX_CHARS_PER_TOKEN, Chunker
from dsqa.sources import loading, walk
from dsqa.sources.loading import CorpusReading, Note, load_corpus

SECRET = "outside-secret-hunter2"


def in_thread(func, timeout: float = 10.0):
    """Run ``func`` in a thread; (finished, result or exception)."""
    box: dict = {}

    def target():
        try:
            box["value"] = func()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["value"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive(), box.get("value"), t


@pytest.fixture
def small(tmp_path, fake_model):
    """A three-note corpus and a secret file beside it, outside."""
    from dsqa import Settings

    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\nalpha notes about docker swarm overlay networks\n")
    (corpus / "b.md").write_text("# Beta\nbeta notes about kubernetes pods and services\n")
    (corpus / "c.md").write_text("# Gamma\ngamma notes about hadoop and map reduce jobs\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(f"# Secret\n{SECRET}\n")
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash", chunk_tokens=60, chunk_overlap_tokens=8)


# -- 1. symlink loops ----------------------------------------------------------
def test_a_symlink_loop_is_skipped_with_a_warning_and_the_rest_answers(small, caplog):
    corpus = small.corpus_dir
    os.symlink("loop.md", corpus / "loop.md")
    os.symlink("pong.md", corpus / "ping.md")
    os.symlink("ping.md", corpus / "pong.md")
    os.symlink("loopdir", corpus / "loopdir")
    engine = DSQA(small)
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        report = engine.reindex()
    assert sorted(report.added) == ["a.md", "b.md", "c.md"]
    assert dict(report.skipped) == {"loop.md": "symlink loop", "ping.md": "symlink loop", "pong.md": "symlink loop"}
    assert "skipped loop.md: symlink loop" in caplog.text
    status = engine.status()
    assert status.up_to_date, status.problems
    assert engine.ask("docker swarm overlay").passages[0].source == "a.md"
    r = invoke(small, "status")
    assert r.exit_code == 0, r.output


# -- 2. file names that are not UTF-8 --------------------------------------------
def test_a_file_name_that_is_not_utf8_is_skipped_by_its_escaped_name(small, caplog):
    corpus = os.fsencode(small.corpus_dir)
    with open(os.path.join(corpus, b"bad\xffname.md"), "wb") as fh:
        fh.write(b"# Bad\nnotes under a name that is not UTF-8\n")
    os.mkdir(os.path.join(corpus, b"dir\xfe"))
    with open(os.path.join(corpus, b"dir\xfe", b"inner.md"), "wb") as fh:
        fh.write(b"# Inner\nin a folder whose name is not UTF-8\n")
    engine = DSQA(small)
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        report = engine.reindex()
    assert sorted(report.added) == ["a.md", "b.md", "c.md"]
    assert dict(report.skipped) == {
        "bad\\xffname.md": "file name is not valid UTF-8 (rename the file)",
        "dir\\xfe/": "folder name is not valid UTF-8 (rename the folder)",
    }
    assert "skipped bad\\xffname.md" in caplog.text
    json.dumps(report.to_dict()).encode("utf-8")
    manifest = storage.read_manifest(small.index_dir)
    assert "bad\\xffname.md" in manifest["skipped"]
    assert engine.status().up_to_date
    assert engine.ask("kubernetes pods services").passages[0].source == "b.md"
    for args in (("status", "--json"), ("reindex", "--json"), ("ask", "kubernetes pods", "--json")):
        r = invoke(small, *args)
        assert r.exit_code == 0, r.output
        json.loads(r.stdout_bytes.decode("utf-8"))  # strict UTF-8: no raw 0xFF byte


# -- 3. reading outside the corpus by a race -------------------------------------
def swap_after_listing(monkeypatch, swap):
    """Make ``load_corpus`` list the corpus, then run ``swap`` before it
    reads: the window the race needs, made certain."""
    real = loading.iter_note_paths

    def listing_then_swap(*args, **kwargs):
        found = real(*args, **kwargs)
        swap()
        return found

    monkeypatch.setattr(loading, "iter_note_paths", listing_then_swap)


def test_a_note_swapped_for_a_symlink_after_listing_is_not_followed(small, monkeypatch, caplog):
    corpus = small.corpus_dir
    secret = corpus.parent / "outside" / "secret.md"

    def swap():
        os.unlink(corpus / "a.md")
        os.symlink(secret, corpus / "a.md")

    swap_after_listing(monkeypatch, swap)
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        loaded = load_corpus(corpus)
    assert not any(SECRET in n.text for n in loaded.notes)
    assert [n.source for n in loaded.notes] == ["b.md", "c.md"]
    assert "skipped a.md: symlink leads outside the corpus" in caplog.text


def test_a_note_swapped_for_a_symlink_after_its_check_is_not_opened(small, monkeypatch, caplog):
    """The narrower window: between resolving the path to check it and
    opening it. Opening walks the checked path without following links."""
    corpus = small.corpus_dir
    secret = corpus.parent / "outside" / "secret.md"
    real_realpath = os.path.realpath
    calls = []

    def realpath_then_swap(path, *args, **kwargs):
        result = real_realpath(path, *args, **kwargs)
        # The check before reading (the listing resolves a note that is no
        # symlink through its folder, not by name).
        if os.fspath(path).endswith("a.md") and sys._getframe(1).f_globals["__name__"] == "dsqa.sources.reading":
            calls.append(path)
            if len(calls) == 1:
                os.unlink(corpus / "a.md")
                os.symlink(secret, corpus / "a.md")
        return result

    monkeypatch.setattr(os.path, "realpath", realpath_then_swap)
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        loaded = load_corpus(corpus)
    assert not any(SECRET in n.text for n in loaded.notes)
    assert [n.source for n in loaded.notes] == ["b.md", "c.md"]
    assert "skipped a.md: changed while being read" in caplog.text


def test_a_folder_swapped_for_a_symlink_after_listing_is_not_followed(small, monkeypatch):
    corpus = small.corpus_dir
    (corpus / "sub").mkdir()
    (corpus / "sub" / "secret.md").write_text("# Inside\nharmless\n")

    def swap():
        os.rename(corpus / "sub", corpus / "sub-old")
        os.symlink(corpus.parent / "outside", corpus / "sub")

    swap_after_listing(monkeypatch, swap)
    loaded = load_corpus(corpus)
    assert not any(SECRET in n.text for n in loaded.notes)
    assert "sub/secret.md" not in [n.source for n in loaded.notes]


def test_racing_swaps_never_read_the_outside_file(small):
    """A thread swaps a note for a symlink to an outside file and back, as
    fast as it can, while the corpus is loaded again and again."""
    corpus = small.corpus_dir
    secret = corpus.parent / "outside" / "secret.md"
    regular, link = corpus / ".a-regular", corpus / ".a-link"
    stop = threading.Event()

    def swapper():
        while not stop.is_set():
            (corpus / ".a-tmp").write_text("# Alpha\nalpha notes\n")
            os.replace(corpus / ".a-tmp", regular)
            os.replace(regular, corpus / "a.md")
            os.symlink(secret, link)
            os.replace(link, corpus / "a.md")

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    leaked = 0
    try:
        for _ in range(1500):
            try:
                loaded = load_corpus(corpus)
            except DsqaError:
                continue
            leaked += sum(SECRET in n.text for n in loaded.notes)
            if leaked:
                break
    finally:
        stop.set()
        thread.join()
    assert leaked == 0


def test_hashing_a_changed_file_does_not_follow_a_swapped_symlink(small, monkeypatch):
    """status hashes a note whose mtime changed; the hash must come from
    the corpus, not from where a symlink swapped in meanwhile points."""
    from dsqa.build import freshness

    engine = DSQA(small)
    engine.reindex()
    corpus = small.corpus_dir
    secret = corpus.parent / "outside" / "secret.md"
    # same size as the note, so only its hash can tell; then a new mtime
    secret.write_bytes((corpus / "a.md").read_bytes())
    os.utime(corpus / "a.md", ns=(1, 1))
    real = freshness.iter_note_paths

    def listing_then_swap(*args, **kwargs):
        found = real(*args, **kwargs)
        os.unlink(corpus / "a.md")
        os.symlink(secret, corpus / "a.md")
        return found

    monkeypatch.setattr(freshness, "iter_note_paths", listing_then_swap)
    diff = freshness.corpus_diff(corpus, storage.read_manifest(small.index_dir))
    assert diff.changed == ["a.md"]  # the outside file's bytes were not taken for the note's


# -- 7. FIFOs ---------------------------------------------------------------------
def test_a_note_swapped_for_a_fifo_after_listing_is_skipped_not_waited_on(small, monkeypatch):
    corpus = small.corpus_dir
    fifo = corpus / "a.md"

    def swap():
        os.unlink(fifo)
        os.mkfifo(fifo)

    swap_after_listing(monkeypatch, swap)
    finished, result, thread = in_thread(lambda: load_corpus(corpus))
    if not finished:  # unblock the reader so the test run can end
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
    assert finished, "reading a FIFO hung"
    assert not isinstance(result, BaseException), result
    assert [n.source for n in result.notes] == ["b.md", "c.md"]
    assert ("a.md", "not a regular file") in result.skipped


def test_a_fifo_as_current_is_an_error_not_a_hang(small):
    DSQA(small).reindex()
    pointer = small.index_dir / storage.POINTER
    pointer.unlink()
    os.mkfifo(pointer)
    finished, result, thread = in_thread(lambda: DSQA(small).status())
    if not finished:
        fd = os.open(pointer, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
    assert finished, "reading CURRENT hung"
    assert isinstance(result, IndexCorruptError) and "not a regular file" in str(result)


def test_a_fifo_in_a_generation_is_an_error_not_a_hang(small):
    DSQA(small).reindex()
    gen = storage.current_generation(small.index_dir)
    (gen / storage.MANIFEST).unlink()
    os.mkfifo(gen / storage.MANIFEST)
    finished, result, thread = in_thread(lambda: storage.read_manifest(small.index_dir))
    if not finished:
        os.close(os.open(gen / storage.MANIFEST, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
    assert finished, "reading the manifest hung"
    assert isinstance(result, IndexCorruptError)


# -- 8. damaged CURRENT and manifest: one-line errors ---------------------------------
@pytest.mark.parametrize("damage", ["long-name", "50MB", "nested-manifest"])
def test_damaged_pointer_or_manifest_is_a_one_line_error(small, damage):
    DSQA(small).reindex()
    pointer = small.index_dir / storage.POINTER
    if damage == "long-name":
        pointer.write_text("gen-" + "x" * 296 + "\n")
    elif damage == "50MB":  # a good name, then 50 MB of blanks
        with open(pointer, "ab") as fh:
            fh.write(b" " * (50 * 1024 * 1024))
    else:
        gen = storage.current_generation(small.index_dir)
        (gen / storage.MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(IndexCorruptError):
        DSQA(small).status()
    r = invoke(small, "status")
    assert r.exit_code == 1
    assert r.output.startswith("Error: index file ") and r.output.count("\n") == 1, r.output
    assert "Traceback" not in r.output


def test_a_deeply_nested_chunk_record_is_an_index_error(small):
    DSQA(small).reindex()
    gen = storage.current_generation(small.index_dir)
    manifest = json.loads((gen / storage.MANIFEST).read_text())
    data = ("[" * 100_000 + "]" * 100_000 + "\n").encode() * manifest["chunk_count"]
    (gen / storage.CHUNKS).write_bytes(data)
    manifest[storage.FILES][storage.CHUNKS] = storage.files.data_entry(data)  # a consistent checksum: only the nesting is wrong
    (gen / storage.MANIFEST).write_text(json.dumps(manifest))
    # Records vouched for by their checksum are parsed when read (issue 27).
    with pytest.raises(IndexCorruptError, match="nested too deeply"):
        storage.load(small.index_dir).chunks[0]
    with pytest.raises(IndexCorruptError, match="nested too deeply"):
        DSQA(small, auto_reindex=False).ask("docker swarm")
    del manifest[storage.FILES]
    (gen / storage.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="nested too deeply"):
        storage.load(small.index_dir)


# -- 9. chunks bounded in characters ----------------------------------------------
def test_a_megabyte_line_without_separators_becomes_bounded_chunks(fake_model):
    chunker = Chunker(fake_model.count_tokens, fake_model.max_tokens, chunk_tokens=60, overlap_tokens=8)
    bound = 60 * MAX_CHARS_PER_TOKEN
    text = "# Title\nintro line\n" + "x" * 1_000_000 + "\n" + "a" + " " * 50_000 + "b\nlast line\n"
    note = Note("big.md", text, "0")
    chunks = chunker.chunk(note)
    assert max(len(c.text) for c in chunks) <= bound
    assert max(len(c.embed_text) for c in chunks) <= bound + 600
    covered = "".join(c.text for c in chunks)
    assert covered.count("x") == 1_000_000 and "last line" in covered
    lines = text.split("\n")
    for c in chunks:
        assert c.text == text[c.start_char : c.end_char]
        assert c.start_line == text.count("\n", 0, c.start_char) + 1
        assert c.end_line == text.count("\n", 0, max(c.end_char - 1, c.start_char)) + 1
        assert c.text.split("\n")[0] in lines[c.start_line - 1]
    assert {c.start_line for c in chunks if "x" in c.text} == {3}


def test_a_megabyte_heading_is_cut(fake_model):
    chunker = Chunker(fake_model.count_tokens, fake_model.max_tokens, chunk_tokens=60, overlap_tokens=8)
    text = "# " + "h" * 200_000 + "\nbody text under it\n"
    chunks = chunker.chunk(Note("h.md", text, "0"))
    assert max(len(c.heading) for c in chunks) <= 500
    assert max(len(c.embed_text) for c in chunks) <= 60 * MAX_CHARS_PER_TOKEN + 501


def test_reindex_of_a_5_MB_line_writes_bounded_chunks(small):
    (small.corpus_dir / "dump.md").write_text("z" * (5 * 1024 * 1024) + "\n")
    engine = DSQA(small)
    engine.reindex()
    index = storage.load(small.index_dir)
    assert max(len(c.text) for c in index.chunks) <= small.chunk_tokens * MAX_CHARS_PER_TOKEN


# -- 10. whole filesystems as a corpus ----------------------------------------------
def test_proc_is_never_walked():
    started = time.perf_counter()
    with pytest.raises(DsqaError, match="pseudo-filesystem"):
        load_corpus(Path("/proc"))
    assert time.perf_counter() - started < 5


def test_pseudo_filesystems_inside_the_corpus_are_not_walked(small, monkeypatch, caplog):
    fake_proc = small.corpus_dir / "proc"
    fake_proc.mkdir()
    (fake_proc / "status.txt").write_text("process state, not a note\n")
    monkeypatch.setattr(walk, "PSEUDO_FILESYSTEMS", (os.path.realpath(fake_proc),), raising=False)
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        loaded = load_corpus(small.corpus_dir, CorpusReading(cross_mounts=True))
    assert [n.source for n in loaded.notes] == ["a.md", "b.md", "c.md"]
    assert ("proc/", "kernel pseudo-filesystem, never indexed") in loaded.skipped


def test_other_filesystems_are_not_crossed_unless_asked(small, monkeypatch):
    mounted = small.corpus_dir / "usb"
    mounted.mkdir()
    (mounted / "d.md").write_text("# Delta\nnotes on another disk\n")
    real_stat = os.stat

    class FakeStat:
        def __init__(self, st, dev):
            self._st, self.st_dev = st, dev

        def __getattr__(self, name):
            return getattr(self._st, name)

    def fake_stat(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        if os.fspath(path) == os.path.realpath(mounted):
            return FakeStat(st, st.st_dev + 1)
        return st

    monkeypatch.setattr(os, "stat", fake_stat)
    loaded = load_corpus(small.corpus_dir)
    assert [n.source for n in loaded.notes] == ["a.md", "b.md", "c.md"]
    assert any(rel == "usb/" and "another filesystem" in why for rel, why in loaded.skipped)
    loaded = load_corpus(small.corpus_dir, CorpusReading(cross_mounts=True))
    assert [n.source for n in loaded.notes] == ["a.md", "b.md", "c.md", "usb/d.md"]


@pytest.mark.parametrize("limit", [{"max_corpus_files": 2}, {"max_corpus_bytes": 100}])
def test_a_corpus_over_the_limits_stops_before_embedding(small, fake_model, limit):
    settings = small.with_(**limit)
    engine = DSQA(settings)
    with pytest.raises(CorpusTooLargeError, match="--yes"):
        engine.reindex()
    assert fake_model.embedded == 0
    assert not (settings.index_dir / storage.POINTER).exists()
    report = DSQA(settings.with_(allow_large_corpus=True)).reindex()
    assert sorted(report.added) == ["a.md", "b.md", "c.md"]


def test_the_cli_asks_for_yes_on_a_corpus_over_the_limits(small, fake_model):
    corpus = small.corpus_dir
    # Sparse files: over the default byte limit without writing a gigabyte.
    for n in range(60):
        with open(corpus / f"big{n:02}.md", "wb") as fh:
            fh.truncate(19 * 1024 * 1024)
    r = invoke(small, "reindex")
    assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
    assert "reindex --yes" in r.output and "MB of notes" in r.output
    assert fake_model.embedded == 0
    r = invoke(small, "reindex", "--yes")
    assert r.exit_code == 0, r.output
    assert "3 notes" in r.output
