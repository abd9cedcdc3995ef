from __future__ import annotations

import logging
import os

import pytest

from dsqa.errors import CorpusError
from dsqa.settings import Settings
from dsqa.sources.loading import CorpusReading, load_corpus
from dsqa.sources.walk import iter_note_paths


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_loads_md_markdown_txt_recursively(tmp_path):
    write(tmp_path / "a.md", b"# A\nalpha")
    write(tmp_path / "sub" / "b.markdown", b"beta")
    write(tmp_path / "sub" / "deeper" / "c.txt", b"gamma")
    write(tmp_path / "d.pdf", b"%PDF")
    loaded = load_corpus(tmp_path)
    assert [n.source for n in loaded.notes] == ["a.md", "sub/b.markdown", "sub/deeper/c.txt"]


def test_hidden_files_and_folders_are_skipped(tmp_path):
    write(tmp_path / "a.md", b"alpha")
    write(tmp_path / ".hidden.md", b"secret")
    write(tmp_path / ".git" / "x.md", b"secret")
    assert [n.source for n in load_corpus(tmp_path).notes] == ["a.md"]


def test_binary_and_non_utf8_are_skipped_with_a_warning(tmp_path, caplog):
    write(tmp_path / "good.md", b"fine text")
    write(tmp_path / "latin1.md", "café crème".encode("latin-1"))
    write(tmp_path / "binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        loaded = load_corpus(tmp_path)
    assert [n.source for n in loaded.notes] == ["good.md"]
    assert {s for s, _ in loaded.skipped} == {"latin1.md", "binary.md"}
    assert "latin1.md" in caplog.text and "not UTF-8" in caplog.text
    assert "binary.md" in caplog.text and "binary" in caplog.text


def test_crlf_and_bom_are_normalised(tmp_path):
    write(tmp_path / "w.md", b"\xef\xbb\xbf# T\r\nline\r\n")
    (n,) = load_corpus(tmp_path).notes
    assert n.text == "# T\nline\n"


def test_symlink_outside_corpus_is_skipped(tmp_path, caplog):
    corpus = tmp_path / "corpus"
    outside = tmp_path / "outside"
    write(corpus / "a.md", b"alpha")
    write(outside / "secret.md", b"secret")
    os.symlink(outside / "secret.md", corpus / "link.md")
    os.symlink(outside, corpus / "linkdir")
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        loaded = load_corpus(corpus)
    assert [n.source for n in loaded.notes] == ["a.md"]


def test_symlink_inside_corpus_is_followed(tmp_path):
    write(tmp_path / "real" / "a.md", b"alpha")
    os.symlink(tmp_path / "real" / "a.md", tmp_path / "alias.md")
    assert [n.source for n in load_corpus(tmp_path).notes] == ["alias.md", "real/a.md"]


def test_the_walk_resolves_folders_and_symlinks_not_every_note(tmp_path, monkeypatch):
    """Every cold command walks the folder to compare it with the index: a
    note that is no symlink is resolved through its folder's real path, not
    by a lookup of each folder on its path (the same notes, links followed
    or refused as before)."""
    corpus = tmp_path / "corpus"
    for i in range(30):
        write(corpus / "sub" / "deeper" / f"n{i}.md", b"alpha")
    write(tmp_path / "outside" / "secret.md", b"secret")
    os.symlink(corpus / "sub" / "deeper" / "n0.md", corpus / "alias.md")
    os.symlink(tmp_path / "outside" / "secret.md", corpus / "leak.md")
    resolved: list[str] = []
    realpath = os.path.realpath

    def counted(path, *args, **kwargs):
        resolved.append(str(path))
        return realpath(path, *args, **kwargs)

    monkeypatch.setattr(os.path, "realpath", counted)
    found = [rel for _, rel in iter_note_paths(corpus)]
    assert found == ["alias.md"] + [f"sub/deeper/n{i}.md" for i in sorted(range(30), key=str)]
    assert len(resolved) < 10, resolved  # the root, its folders, the two links


def test_empty_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="no notes to index"):
        load_corpus(tmp_path)


def test_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")


def test_corpus_of_only_unreadable_files_names_the_count(tmp_path):
    write(tmp_path / "x.md", b"\x00\x01")
    with pytest.raises(CorpusError, match="1 files skipped"):
        load_corpus(tmp_path)


def test_oversized_note_is_skipped(tmp_path):
    write(tmp_path / "big.md", b"a " * 1000)
    write(tmp_path / "ok.md", b"ok")
    loaded = load_corpus(tmp_path, CorpusReading(max_note_bytes=100))
    assert [n.source for n in loaded.notes] == ["ok.md"]
    assert "too large" in loaded.skipped[0][1]


def test_corpus_reading_of_settings_bounds_the_folder_unless_large_is_allowed(tmp_path):
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", cross_mounts=True, reader_timeout=7.0)
    reading = CorpusReading.of(settings)
    assert (reading.max_files, reading.max_total_bytes) == (settings.max_corpus_files, settings.max_corpus_bytes)
    assert reading.cross_mounts and not reading.allow_whole and reading.limits.seconds == 7.0
    large = CorpusReading.of(settings.with_(allow_large_corpus=True))
    assert (large.max_files, large.max_total_bytes, large.allow_whole) == (None, None, True)
