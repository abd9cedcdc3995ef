"""The library API end to end, with the fake model (milliseconds)."""

from __future__ import annotations

import json
import sys
import threading

import pytest
from conftest import GATED

import dsqa
from dsqa import (
    DSQA,
    IndexCorruptError,
    IndexMissingError,
    LockedError,
    StaleIndexError,
    storage,
)


def test_ask_returns_cited_passages(built):
    answer = built.ask("docker swarm overlay network", k=3)
    assert answer.found and len(answer.passages) == 3
    p = answer.passages[0]
    assert p.source.startswith("notes/") and p.start_line <= p.end_line and p.text
    assert answer.passages[0].score >= answer.passages[-1].score
    rendered = str(answer)
    assert f"{p.source}:{p.start_line}-{p.end_line}" in rendered
    assert json.loads(json.dumps(answer.to_dict()))["passages"][0]["citation"] == p.citation


def test_search_returns_passages(built):
    hits = built.search("S3 bucket versioning", k=4)
    assert len(hits) == 4 and all(isinstance(h, dsqa.Passage) for h in hits)


def test_second_ask_reuses_model_and_index(built, fake_model):
    built.ask("what is docker")
    retriever = built.retriever()
    calls = fake_model.calls
    built.ask("what is hadoop")
    assert built.retriever() is retriever
    assert fake_model.calls == calls + 1  # one query embedding, nothing reloaded


@pytest.mark.parametrize("bad", ["", "   \n\t ", "\x00\x01"])
def test_empty_question_is_a_value_error(built, bad):
    with pytest.raises(ValueError, match="empty"):
        built.ask(bad)


def test_huge_question_is_a_value_error(built):
    with pytest.raises(ValueError, match="limit is 2,000"):
        built.ask("docker " * 20_000)


@pytest.mark.parametrize("k", [0, -1, 10_000, 2.5, "3", True])
def test_bad_k_is_a_value_error(built, k):
    with pytest.raises(ValueError, match="k must"):
        built.search("docker", k=k)


def test_k_larger_than_the_index_returns_all(tmp_path, fake_model):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.md").write_text("# A\nalpha beta\n")
    engine = DSQA(dsqa.Settings(corpus_dir=corpus, index_dir=tmp_path / "i", model="fake-hash"))
    engine.reindex()
    assert len(engine.search("alpha", k=50)) == 1


def test_note_filter(built):
    hits = built.search("docker", k=5, notes=["anonymous-short-notes"])
    assert hits and {h.source for h in hits} == {"notes/anonymous-short-notes.md"}
    with pytest.raises(ValueError, match="no note"):
        built.search("docker", notes=["../../etc/passwd"])


def test_a_note_filter_parses_only_that_notes_records(built, monkeypatch):
    """The rows of the notes asked for are found from each record's source
    field: no other note's record is parsed (it was every record)."""
    parsed: list[int] = []
    record = storage.ChunkFile._record

    def counted(self, row):
        parsed.append(row)
        return record(self, row)

    monkeypatch.setattr(storage.ChunkFile, "_record", counted)
    hits = built.search("docker", k=5, notes=["anonymous-short-notes", "notes/unlimitediw-dist-sys-notes.md"])
    chunks = built.retriever().index.chunks
    assert isinstance(chunks, storage.ChunkFile)
    wanted = {"notes/anonymous-short-notes.md", "notes/unlimitediw-dist-sys-notes.md"}
    assert hits and {h.source for h in hits} <= wanted
    assert parsed and {record(chunks, r).source for r in parsed} <= wanted
    rows = [r for r in range(len(chunks)) if record(chunks, r).source in wanted]
    assert chunks.rows_of(wanted) == rows and len(rows) < len(chunks)


def test_missing_index_names_the_command(tmp_path, settings):
    with pytest.raises(IndexMissingError, match=f"`dsqa reindex --corpus {settings.corpus_dir} --index {settings.index_dir} "):
        DSQA(settings, auto_reindex=False).ask("docker")


def test_missing_index_is_built_on_the_first_question(settings):
    assert DSQA(settings).ask("docker swarm").found


def test_corrupt_vectors_file_is_named(built):
    gen = storage.current_generation(built.settings.index_dir)
    (gen / storage.FAISS).write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError, match=r"vectors.faiss.*reindex --full"):
        DSQA(built.settings).ask("docker")


def test_chunks_not_matching_vectors_is_an_error(built):
    gen = storage.current_generation(built.settings.index_dir)
    lines = (gen / storage.CHUNKS).read_text().splitlines(keepends=True)
    (gen / storage.CHUNKS).write_text("".join(lines[:-1]))
    with pytest.raises(IndexCorruptError, match="chunks.jsonl"):
        DSQA(built.settings).ask("docker")


def test_stale_index_raises_when_auto_reindex_is_off(built):
    (built.settings.corpus_dir / "notes" / "new.md").write_text("# New\nzookeeper leader election\n")
    strict = DSQA(built.settings.with_(auto_reindex=False))
    with pytest.raises(StaleIndexError, match=r"1 added \(notes/new.md\).*dsqa reindex"):
        strict.ask("zookeeper")


def test_stale_index_is_updated_by_default(built):
    (built.settings.corpus_dir / "notes" / "new.md").write_text("# New\nzookeeper leader election\n")
    hits = DSQA(built.settings).search("zookeeper leader election", k=1)
    assert hits[0].source == "notes/new.md"


def test_other_chunk_settings_make_the_index_stale(built):
    other = built.settings.with_(chunk_tokens=80, auto_reindex=False)
    with pytest.raises(StaleIndexError, match="chunk_tokens"):
        DSQA(other).ask("docker")


def test_reindex_writes_manifest_and_no_pickle(built):
    gen = storage.current_generation(built.settings.index_dir)
    manifest = json.loads((gen / storage.MANIFEST).read_text())
    assert manifest["model"] == {"name": "fake-hash", "dimension": 64, "max_tokens": 128}
    assert manifest["chunking"]["chunk_tokens"] == 60
    assert manifest["vector_count"] > manifest["chunk_count"]  # sentence windows
    assert set(manifest["notes"]) == {p for p in (c.source for c in built.retriever().index.chunks)}
    assert all(len(e["sha256"]) == 64 for e in manifest["notes"].values())
    assert {p.name for p in gen.iterdir()} == {
        "manifest.json", "chunks.jsonl", "windows.npy", "ann_entries.npy", "vectors.faiss", "bm25"
    }
    for path in gen.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), f"{path} looks pickled"


def test_noop_reindex_writes_nothing(built):
    before = storage.current_generation(built.settings.index_dir)
    report = built.reindex()
    assert not report.wrote and "up to date" in str(report)
    assert storage.current_generation(built.settings.index_dir) == before


def test_module_level_functions_share_one_engine(settings, monkeypatch):
    monkeypatch.setenv("DSQA_CORPUS", str(settings.corpus_dir))
    monkeypatch.setenv("DSQA_INDEX", str(settings.index_dir))
    dsqa.reindex(model="fake-hash", chunk_tokens=60, chunk_overlap_tokens=8)
    a = dsqa.ask("docker", model="fake-hash", chunk_tokens=60, chunk_overlap_tokens=8)
    assert a.found
    assert dsqa.get_engine(model="fake-hash", chunk_tokens=60, chunk_overlap_tokens=8) is dsqa.get_engine(
        model="fake-hash", chunk_tokens=60, chunk_overlap_tokens=8
    )
    # the shared engine's function does not hide the module dsqa.engine
    assert dsqa.engine is sys.modules["dsqa.engine"] and "engine" not in dsqa.__all__


@pytest.mark.parametrize("notes", [123, 1.5, b"notes/a.md", {"a": 1}, object()])
def test_notes_that_are_not_names_are_a_value_error(built, notes):
    with pytest.raises(ValueError, match="notes must be a note name or a list of note names"):
        built.ask("docker", notes=notes)
    with pytest.raises(ValueError, match="note"):
        built.search("docker", notes=[notes])


# -- answering while a reindex runs -------------------------------------------------


def _in_thread(call):
    """Run ``call`` in a thread; the box gets its ``value`` or ``error``."""
    box: dict = {}

    def run():
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


@pytest.mark.parametrize("started_by", ["reindex", "a question on a changed corpus"])
def test_questions_are_answered_while_a_reindex_runs(built, gated_model, monkeypatch, started_by):
    """Readers never wait for a rebuild: they get the generation already
    loaded, and a second reindex meanwhile is refused with a clear message."""
    monkeypatch.setattr(dsqa.engine, "STALE_CHECK_SECONDS", 0.0)
    started, release = gated_model
    built.ask("docker swarm")  # the engine has a generation loaded
    note = built.settings.corpus_dir / "notes" / "new.md"
    note.write_text(f"# Gossip\nZookeeper gossip protocols elect a leader. {GATED}\n")
    if started_by == "reindex":
        writer, written = _in_thread(built.reindex)
    else:
        writer, written = _in_thread(lambda: built.ask("zookeeper leader election"))
    try:
        assert started.wait(30), "the reindex did not start"
        reader, read = _in_thread(lambda: built.search("zookeeper gossip leader", k=3))
        reader.join(5)
        assert not reader.is_alive(), "a question waited for the reindex"
        assert "error" not in read and "notes/new.md" not in {p.source for p in read["value"]}  # the old generation

        second, refused = _in_thread(built.reindex)
        second.join(5)
        assert not second.is_alive(), "a second reindex waited for the first"
        assert isinstance(refused.get("error"), LockedError)
        assert "a reindex is already running" in str(refused["error"])
    finally:
        release.set()
        writer.join(30)
    assert "error" not in written
    assert built.search("zookeeper gossip leader", k=1)[0].source == "notes/new.md"  # the new generation, swapped in
