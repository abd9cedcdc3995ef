"""A damaged index is refused, naming the file, never read wrong: each file
is checked against the manifest's checksums, and the files against each
other (also for indexes written before checksums); nothing is unpickled;
``dsqa reindex`` (``--full`` too) repairs it. Fake model throughout."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from _helpers import NOTES, assert_consistent, invoke, rewrite_manifest
from conftest import FakeEmbedder, registered

import dsqa
from dsqa import DSQA, IndexCorruptError, storage
from dsqa.build.reindex import reindex

#: dsqa's logger as caplog needs it (see conftest.dsqa_logs_propagate).
pytestmark = pytest.mark.usefixtures("dsqa_logs_propagate")


BM25_FILES = ["bm25/data.csc.index.npy", "bm25/indices.csc.index.npy", "bm25/indptr.csc.index.npy",
              "bm25/params.index.json", "bm25/vocab.index.json"]


FILES = ["chunks.jsonl", "ann_entries.npy", "windows.npy", "vectors.faiss", *BM25_FILES]


def _garble(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flipped":  # one byte in the middle: only a checksum can tell
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes([data[mid] ^ 0x20]) + data[mid + 1 :])
    elif how == "junk":
        path.write_bytes(os.urandom(len(data)))
    elif how == "missing":
        path.unlink()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """One built index (small corpus) that each corruption test copies."""
    model = FakeEmbedder()
    root = tmp_path_factory.mktemp("pristine")
    corpus = root / "corpus"
    (corpus / NOTES).mkdir(parents=True)
    from conftest import CORPUS

    for name in ("anonymous-short-notes.md", "jialiang-jiang-dist-sys-notes.md"):
        shutil.copy(CORPUS / NOTES / name, corpus / NOTES / name)
    s = dsqa.Settings(corpus_dir=corpus, index_dir=root / "index", model="fake-hash")
    with registered("fake-hash", lambda: model):
        reindex(s)
        yield s


@pytest.fixture
def damaged(pristine, tmp_path, fake_model):
    # the index with its notes beside it, as built: it names them as ../corpus
    shutil.copytree(pristine.corpus_dir, tmp_path / "corpus")
    shutil.copytree(pristine.index_dir, tmp_path / "index")
    return pristine.with_(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")


def _repairs(settings, *flags) -> str:
    r = invoke(settings, "reindex", *flags)
    assert r.exit_code == 0, r.output
    assert "full rebuild" in r.output
    assert_consistent(storage.load(settings.index_dir))
    assert DSQA(settings, auto_reindex=False).ask("docker swarm").passages
    return r.output


HOWS = ["truncated", "empty", "flipped", "junk", "missing"]


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("name", FILES)
def test_damaged_file_is_named(damaged, name, how):
    _garble(storage.current_generation(damaged.index_dir) / name, how)
    with pytest.raises(IndexCorruptError) as info:
        storage.load(damaged.index_dir)
    message = str(info.value)
    shown = name  # the checksums name the very file
    assert shown in message and "repair it with `dsqa reindex --full`" in message, message
    with pytest.raises(IndexCorruptError, match=re.escape(shown)):
        DSQA(damaged).ask("docker")
    r = invoke(damaged, "ask", "docker")
    assert r.exit_code == 1 and "dsqa reindex --full" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(("name", "how"), [(name, HOWS[n % len(HOWS)]) for n, name in enumerate(FILES)])
def test_damaged_index_is_repaired(damaged, name, how):
    """A reindex rebuilds an index that does not load (and says why), as
    ``--full`` does. Every file and every kind of damage is repaired once:
    the repair follows from ``storage.load`` raising ``IndexCorruptError``,
    which test_damaged_file_is_named checks for each pair."""
    _garble(storage.current_generation(damaged.index_dir) / name, how)
    assert "rebuilding the index from scratch" in _repairs(damaged)
    _garble(storage.current_generation(damaged.index_dir) / name, how)
    _repairs(damaged, "--full")


def _drop_checksums(index_dir: Path) -> None:
    path = storage.current_generation(index_dir) / storage.MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("how", ["truncated", "empty", "junk"])
@pytest.mark.parametrize("name", FILES)
def test_damage_without_checksums_is_caught_by_structure(damaged, name, how):
    """Indexes written before checksums were recorded (the committed one was)
    are checked by shape and cross-references alone."""
    _drop_checksums(damaged.index_dir)
    _garble(storage.current_generation(damaged.index_dir) / name, how)
    with pytest.raises(IndexCorruptError, match="dsqa reindex --full"):
        storage.load(damaged.index_dir)


def _rewrite_bm25(gen: Path, name: str, change) -> None:
    path = gen / storage.BM25 / name
    if name.endswith(".json"):
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    else:
        np.save(path, change(np.load(path)))


def _a_word(vocab: dict) -> str:
    return next(word for word in vocab if word)


#: file of the BM25 index, how it is changed, what the error says
BM25_DAMAGE = {
    "word-id-past-arrays": ("vocab.index.json", lambda v: v.update({_a_word(v): 10**6}), "its vocabulary does not match its score arrays"),
    "word-id-not-a-number": ("vocab.index.json", lambda v: v.update({_a_word(v): "x"}), "its vocabulary maps words to something other than ids"),
    "pointers-reversed": ("indptr.csc.index.npy", lambda a: a[::-1].copy(), "its column pointers do not match its scores"),
    "document-id-past-chunks": ("indices.csc.index.npy", lambda a: np.full_like(a, 10**6), "its document ids do not match the chunk records"),
    "scores-not-flat": ("data.csc.index.npy", lambda a: a.reshape(1, -1), "its score arrays are missing or not flat"),
    "document-count": ("params.index.json", lambda p: p.update(num_docs=p["num_docs"] + 1), r"\d+ documents, expected \d+"),
}


@pytest.mark.parametrize("damage", list(BM25_DAMAGE))
def test_bm25_arrays_that_do_not_fit_together_are_refused(damaged, damage):
    """Without checksums, the BM25 index's arrays are checked against each
    other and against the chunks, so that no query can read past them."""
    name, change, problem = BM25_DAMAGE[damage]
    _drop_checksums(damaged.index_dir)
    _rewrite_bm25(storage.current_generation(damaged.index_dir), name, change)
    with pytest.raises(IndexCorruptError, match=rf"{storage.BM25} is unusable \({problem}\)"):
        storage.load(damaged.index_dir)


def test_sha256_checksums_are_checked_too(damaged):
    """The first indexes with checksums (the committed one among them)
    record SHA-256s; they are verified like CRCs."""
    import hashlib

    gen = storage.current_generation(damaged.index_dir)
    manifest = json.loads((gen / storage.MANIFEST).read_text())
    for rel, entry in manifest["files"].items():
        manifest["files"][rel] = {"size": entry["size"], "sha256": hashlib.sha256((gen / rel).read_bytes()).hexdigest()}
    (gen / storage.MANIFEST).write_text(json.dumps(manifest))
    assert_consistent(storage.load(damaged.index_dir))
    _garble(gen / "bm25/data.csc.index.npy", "flipped")
    with pytest.raises(IndexCorruptError, match=r"data.csc.index.npy is unusable \(contents do not match the checksum"):
        storage.load(damaged.index_dir)


def test_hnsw_generation_round_trips(settings, monkeypatch):
    """Big indexes are HNSW (dsqa.storage.ann) over the distinct vectors: written,
    checked and loaded alike, and a note copied under another name is found
    under both names though its vectors are in the graph once."""
    from dsqa.storage import ann

    monkeypatch.setattr(ann, "FLAT_MAX_VECTORS", 10)
    note = sorted(settings.corpus_dir.rglob("*.md"))[0]
    (settings.corpus_dir / "copy-of-a-note.md").write_bytes(note.read_bytes())
    DSQA(settings).reindex()
    index = storage.load(settings.index_dir)
    assert index.manifest["index_type"].startswith("hnsw") and ann.describe(index.faiss_index).startswith("hnsw")
    assert index.distinct is not None and index.faiss_index.ntotal == index.distinct.entries < len(index.vectors)
    assert index.manifest["ann_entries"] == index.distinct.entries
    assert_consistent(index)
    engine = DSQA(settings, auto_reindex=False)
    top = engine.search("docker swarm overlay network", k=3)
    assert top
    copy = note.relative_to(settings.corpus_dir).as_posix()
    for source in (copy, "copy-of-a-note.md"):
        assert engine.search(top[0].text[:200], k=1, notes=[source])[0].source == source
    entries = index.path / storage.ANN_ENTRIES
    for damaged, garble in ((entries, "flipped"), (index.path / storage.FAISS, "flipped")):
        saved = damaged.read_bytes()
        _garble(damaged, garble)
        with pytest.raises(IndexCorruptError, match=damaged.name):
            storage.load(settings.index_dir)
        damaged.write_bytes(saved)


def test_committed_index_loads_and_is_consistent():
    from conftest import INDEX

    assert_consistent(storage.load(INDEX))


@pytest.mark.parametrize(
    "change",
    [
        {"format": storage.FORMAT_VERSION + 1},
        {"chunk_count": 3},
        {"model": {"name": "fake-hash", "dimension": 65, "max_tokens": 128}},
        {"model": "fake-hash"},
        {"notes": []},
        {"format": "2"},
    ],
    ids=["future-format", "chunk-count", "dimension", "model-type", "notes-type", "format-type"],
)
def test_foreign_manifest(damaged, change):
    rewrite_manifest(damaged.index_dir, **change)
    with pytest.raises(IndexCorruptError, match=r"(manifest|chunks|vectors|windows)\S* is unusable.*reindex --full"):
        storage.load(damaged.index_dir)
    if "format" in change and change["format"] == storage.FORMAT_VERSION + 1:
        with pytest.raises(IndexCorruptError, match="written by a newer dsqa"):
            DSQA(damaged).ask("docker")
    _repairs(damaged, "--full")


def test_chunk_records_not_matching_the_manifest(damaged):
    gen = storage.current_generation(damaged.index_dir)
    _drop_checksums(damaged.index_dir)
    records = [json.loads(line) for line in (gen / storage.CHUNKS).read_text().splitlines()]
    records[0]["source"] = "notes/elsewhere.md"
    (gen / storage.CHUNKS).write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(IndexCorruptError, match="do not match the notes listed in the manifest"):
        storage.load(damaged.index_dir)


@pytest.mark.parametrize("pointer", ["gen-does-not-exist\n", "", "../../etc\n", "\xff\xfe"])
def test_current_pointing_nowhere(damaged, pointer):
    (damaged.index_dir / storage.POINTER).write_bytes(pointer.encode("latin-1"))
    with pytest.raises(IndexCorruptError, match=r"CURRENT is unusable.*reindex --full"):
        DSQA(damaged).ask("docker")
    _repairs(damaged)


def test_nothing_is_unpickled(damaged, monkeypatch):
    import pickle

    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    def no_pickle(*args, **kwargs):
        raise AssertionError("index files must never be unpickled")

    monkeypatch.setattr(np, "load", spy)
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    storage.load(damaged.index_dir)
    assert calls and all(flag is False for flag in calls), calls
    # A pickled object array where numbers belong is refused, not run.
    monkeypatch.undo()
    _drop_checksums(damaged.index_dir)
    gen = storage.current_generation(damaged.index_dir)
    for name in ("ann_entries.npy", "bm25/data.csc.index.npy"):
        saved = (gen / name).read_bytes()
        np.save(gen / name, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
        with pytest.raises(IndexCorruptError, match=re.escape(name.split("/")[0])):
            storage.load(damaged.index_dir)
        (gen / name).write_bytes(saved)
    storage.load(damaged.index_dir)
