"""The index lifecycle (issue 4): incremental reindex equal to a full
rebuild, stale-index detection, one writer at a time, corruption, bad input
and ``dsqa status``. Fake model throughout; the crash test is in
test_crash.py, the property-based tests in test_properties.py."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import dsqa
from dsqa import DSQA, DsqaError, IndexCorruptError, LockedError, StaleIndexError, store
from dsqa.calibration import OFF_TOPIC
from dsqa.cli import cli
from dsqa import register_model
from dsqa.errors import CorpusError, IndexWriteError
from dsqa.indexing import reindex
from dsqa.notes import MAX_NOTE_BYTES

from _helpers import assert_consistent, edit_once, read_only
from conftest import FakeEmbedder

NOTES = "notes"
BIG = f"{NOTES}/unlimitediw-dist-sys-notes.md"
#: A phrase that occurs once in BIG, and an edit that keeps its token count
#: (so only the chunk(s) holding it change).
PHRASE = "This could be a shell script or a custom app."
EDITED = "This could be a fish script or a custom app."
QUERIES = ["docker swarm overlay network", "S3 bucket versioning", "hadoop mapreduce", "kubectl --rm 8080:80", "zzz"]


@pytest.fixture(autouse=True)
def _dsqa_logs_propagate(monkeypatch):
    """The CLI sets the dsqa logger not to propagate; caplog needs it to."""
    logger = logging.getLogger("dsqa")
    monkeypatch.setattr(logger, "propagate", True)
    monkeypatch.setattr(logger, "handlers", [])


def dsqa_logs(caplog, level=logging.INFO):
    return [r for r in caplog.records if r.name == "dsqa" and r.levelno >= level]


def invoke(settings, *args):
    """The CLI in-process; the dsqa logger is put back as it was after it
    (the CLI points it at its own stderr)."""
    base = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-hash"]
    logger = logging.getLogger("dsqa")
    saved = logger.propagate, logger.handlers[:], logger.level
    try:
        return CliRunner().invoke(cli, [args[0], *args[1:], *base])
    finally:
        logger.propagate, logger.handlers[:], logger.level = saved[0], saved[1], saved[2]


# -- 1. incremental reindex -----------------------------------------------------------


def test_summary_says_what_was_done(built):
    notes = built.settings.corpus_dir / NOTES
    (notes / "new.md").write_text("# Raft\nRaft elects a leader.\n\n## Log\nEntries are replicated to a majority.\n")
    edit_once(notes / "unlimitediw-dist-sys-notes.md", PHRASE, EDITED)
    old = store.read_manifest(built.settings.index_dir)
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
    new = store.read_manifest(built.settings.index_dir)
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
    """Texts a reindex embeds for the refusal calibration (dsqa.calibration)."""
    return len(OFF_TOPIC) + index.manifest["calibration"]["pseudo_questions"]


def test_one_paragraph_edit_reembeds_only_its_chunks(built, fake_model):
    before = built.retriever().index
    old_keys = {c["key"] for c in before.chunks}
    calls, embedded = fake_model.calls, fake_model.embedded
    edit_once(built.settings.corpus_dir / BIG, PHRASE, EDITED)
    report = built.reindex()
    after = store.load(built.settings.index_dir)
    new_rows = [r for r, c in enumerate(after.chunks) if c["key"] not in old_keys]
    assert 1 <= len(new_rows) <= 2, "one line changed: its chunk, and the next one if the line is in the overlap"
    assert report.embedded == len(new_rows) and report.changed == {BIG: before.manifest["notes"][BIG]["chunks"]}
    assert report.reused == report.changed[BIG] - len(new_rows)
    # The model saw exactly the sentence windows of those chunks, in one
    # call, then the refusal calibration's questions (dsqa.calibration).
    assert fake_model.calls == calls + 2
    assert fake_model.embedded - embedded - calibration_questions(after) == sum(len(after.window_rows(r)) for r in new_rows)
    assert all(EDITED.split()[3] in after.chunks[r]["text"] for r in new_rows)


def test_noop_and_touch_write_nothing(built, fake_model):
    gen = store.current_generation(built.settings.index_dir)
    calls = fake_model.calls
    for path in (built.settings.corpus_dir / NOTES).iterdir():
        os.utime(path, None)  # a fresh clone: new mtimes, same bytes
    assert built.status().up_to_date
    started = time.perf_counter()
    report = built.reindex()
    assert time.perf_counter() - started < 1.0
    assert not report.wrote and str(report).startswith("index up to date: 5 notes unchanged")
    assert store.current_generation(built.settings.index_dir) == gen and fake_model.calls == calls


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


def assert_same_index(a: store.StoredIndex, b: store.StoredIndex) -> None:
    assert a.chunks == b.chunks
    np.testing.assert_array_equal(a.windows, b.windows)
    np.testing.assert_allclose(a.vectors, b.vectors, rtol=0, atol=1e-6)
    for key in ("notes", "skipped", "model", "chunking", "chunk_count", "vector_count", "format"):
        assert a.manifest[key] == b.manifest[key], key
    for q in QUERIES + [c["text"][:80] for c in a.chunks[::97]]:
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
        inc, reb = store.load(settings.index_dir), store.load(full.index_dir)
        # a full rebuild embeds each distinct text (chunk or sentence) once,
        # fewer texts than vectors (a window's vector averages its sentences'),
        # then the refusal calibration's questions
        texts = fake_model.batches[-2]
        assert fake_model.last_texts[: len(OFF_TOPIC)] == list(OFF_TOPIC)
        assert fake_model.embedded - embedded - incremental_windows - calibration_questions(reb) == len(texts) == len(set(texts)) < len(reb.vectors)
        assert_consistent(inc)
        assert_same_index(inc, reb)
        strict = dict(auto_reindex=False)
        a, b = DSQA(settings, **strict), DSQA(full, **strict)
        for q in QUERIES:
            assert [p.to_dict() for p in a.search(q, k=10)] == [p.to_dict() for p in b.search(q, k=10)]
            assert a.ask(q).to_dict() == b.ask(q).to_dict()
        assert not any(p.name.startswith(".tmp") for p in settings.index_dir.iterdir())
        assert len(list(settings.index_dir.glob("gen-*"))) == 1


# -- 2. stale detection ---------------------------------------------------------------


def test_manifest_records_identity_and_checksums(built):
    gen = store.current_generation(built.settings.index_dir)
    m = json.loads((gen / store.MANIFEST).read_text())
    assert m["format"] == store.FORMAT_VERSION
    assert m["model"] == {"name": "fake-hash", "dimension": 64, "max_tokens": 128}
    assert {"chunk_tokens", "chunk_overlap_tokens", "embed_headings", "window_sentences", "chunker_version"} <= set(
        m["chunking"]
    )
    listed = set(m["files"])
    on_disk = {p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file()} - {store.MANIFEST}
    assert listed == on_disk


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


def test_no_auto_reindex_flag(cli_settings):
    assert invoke(cli_settings, "reindex").exit_code == 0
    (cli_settings.corpus_dir / NOTES / "new.md").write_text("# New\nzookeeper\n")
    r = invoke(cli_settings, "ask", "zookeeper", "--no-auto-reindex")
    assert r.exit_code == 1 and "stale" in r.output and "dsqa reindex" in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = invoke(cli_settings, "ask", "zookeeper")
    assert r.exit_code == 0 and "notes/new.md" in r.output


class OtherFake(FakeEmbedder):
    """Another model: other name, other dimension, other vectors."""

    name = "fake-other"
    dimension = 32


def test_switching_model_reembeds_everything(built, fake_model, caplog, tmp_path):
    DSQA(built.settings.with_(index_dir=tmp_path / "scratch")).reindex()
    assert fake_model.calls == 2  # a full build: the notes, then the calibration questions
    texts_in_full_build = fake_model.embedded
    other = OtherFake()
    register_model("fake-other", lambda: other)
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
    index = store.load(settings.index_dir)
    assert index.manifest["model"]["name"] == "fake-other" and index.vectors.shape[1] == 32
    # Every vector is the new model's: all embedded anew, none reused (two
    # calls for the reindex, notes and calibration, one for the question).
    assert other.calls == 3 and other.embedded == texts_in_full_build + 1
    assert fake_model.calls == calls
    assert_consistent(index)


def test_same_model_name_other_dimension_is_another_model(built):
    class Wider(FakeEmbedder):
        dimension = 48

    register_model("fake-hash", Wider)
    with pytest.raises(StaleIndexError, match=r"fake-hash \(64-d, 128 tokens\), settings use fake-hash \(48-d"):
        DSQA(built.settings, auto_reindex=False).ask("docker")
    report = DSQA(built.settings).reindex()
    assert report.full and "built with model fake-hash (64-d" in str(report)
    assert store.load(built.settings.index_dir).vectors.shape[1] == 48


def test_chunking_change(built):
    other = built.settings.with_(chunk_tokens=80)
    with pytest.raises(StaleIndexError, match=r"chunking settings differ \(chunk_tokens 60 -> 80\)"):
        DSQA(other, auto_reindex=False).ask("docker")
    report = DSQA(other).reindex()
    assert report.full and report.reason == "chunking settings differ (chunk_tokens 60 -> 80)"
    assert store.read_manifest(other.index_dir)["chunking"]["chunk_tokens"] == 80
    assert DSQA(other, auto_reindex=False).ask("docker").passages


def _rewrite_manifest(index_dir: Path, **changes) -> None:
    path = store.current_generation(index_dir) / store.MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_older_format_is_brought_up_to_date(built):
    """Format 2 (before ann_entries.npy) has the same vectors: it is read,
    reported stale, and rewritten without re-embedding; format 1 is rebuilt."""
    _rewrite_manifest(built.settings.index_dir, format=2)
    assert DSQA(built.settings, auto_reindex=False).status().format == 2
    with pytest.raises(StaleIndexError, match="index format 2"):
        DSQA(built.settings, auto_reindex=False).ask("docker")
    report = DSQA(built.settings).reindex()
    assert report.wrote and not report.full and report.embedded == 0
    assert str(report).endswith(f"because the index had format 2, this dsqa writes {store.FORMAT_VERSION}")
    assert store.read_manifest(built.settings.index_dir)["format"] == store.FORMAT_VERSION
    _rewrite_manifest(built.settings.index_dir, format=1)
    assert DSQA(built.settings).ask("docker").passages
    assert store.read_manifest(built.settings.index_dir)["format"] == store.FORMAT_VERSION
    assert DSQA(built.settings).reindex().wrote is False


# -- 4. one writer at a time ----------------------------------------------------------

HOLD_LOCK = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1], timeout=0)
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_second_writer_fails_at_once_and_readers_read(built, caplog):
    settings = built.settings
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(settings.index_dir / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        (settings.corpus_dir / NOTES / "new.md").write_text("# New\nzookeeper leader election\n")
        started = time.perf_counter()
        with pytest.raises(LockedError, match=r"another dsqa reindex is writing .*try again when it has finished"):
            DSQA(settings).reindex()
        assert time.perf_counter() - started < 1.0, "fails at once, does not wait"
        r = invoke(settings.with_(chunk_tokens=200), "reindex")
        assert r.exit_code == 1 and "another dsqa reindex is writing" in r.output
        # Readers load the live index meanwhile; a stale one is answered from as it is.
        assert_consistent(store.load(settings.index_dir))
        with caplog.at_level(logging.INFO, logger="dsqa"):
            answer = DSQA(settings).ask("docker swarm")
        assert answer.found and answer.passages
        warnings = dsqa_logs(caplog, logging.WARNING)
        assert len(warnings) == 1 and "another dsqa reindex is writing" in warnings[0].getMessage()
    finally:
        holder.kill()
        holder.wait()
    assert "notes/new.md" in DSQA(settings).reindex().added


def test_a_real_reindex_holds_the_lock(settings, tmp_path):
    """The same, against a reindex in progress (the crash driver, slowed)."""
    DSQA(settings).reindex()
    (settings.corpus_dir / NOTES / "new.md").write_text("# New\n" + "\n\n".join(f"Para {i} on gossip." for i in range(40)))
    env = {**os.environ, "DSQA_CRASH_PAUSE": "0.3", "DSQA_CRASH_BATCH": "4"}
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "_crash_driver.py"), str(settings.corpus_dir), str(settings.index_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for line in child.stdout:
            if line.startswith("embed"):
                break
        with pytest.raises(LockedError):
            DSQA(settings).reindex()
        assert_consistent(store.load(settings.index_dir))
    finally:
        child.kill()
        child.wait()


# -- 5. corruption --------------------------------------------------------------------

BM25_FILES = ["bm25/data.csc.index.npy", "bm25/indices.csc.index.npy", "bm25/indptr.csc.index.npy",
              "bm25/params.index.json", "bm25/vocab.index.json"]
FILES = ["chunks.jsonl", "vectors.npy", "windows.npy", "vectors.faiss", *BM25_FILES]


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
    register_model("fake-hash", lambda: model)
    root = tmp_path_factory.mktemp("pristine")
    corpus = root / "corpus"
    (corpus / NOTES).mkdir(parents=True)
    from conftest import CORPUS

    for name in ("anonymous-short-notes.md", "jialiang-jiang-dist-sys-notes.md"):
        shutil.copy(CORPUS / NOTES / name, corpus / NOTES / name)
    s = dsqa.Settings(corpus_dir=corpus, index_dir=root / "index", model="fake-hash")
    reindex(s)
    return s


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
    assert_consistent(store.load(settings.index_dir))
    assert DSQA(settings, auto_reindex=False).ask("docker swarm").passages
    return r.output


@pytest.mark.parametrize("how", ["truncated", "empty", "flipped", "junk", "missing"])
@pytest.mark.parametrize("name", FILES)
def test_damaged_file_is_named_and_repaired(damaged, name, how):
    _garble(store.current_generation(damaged.index_dir) / name, how)
    with pytest.raises(IndexCorruptError) as info:
        store.load(damaged.index_dir)
    message = str(info.value)
    shown = name  # the checksums name the very file
    assert shown in message and "repair it with `dsqa reindex --full`" in message, message
    with pytest.raises(IndexCorruptError, match=re.escape(shown)):
        DSQA(damaged).ask("docker")
    r = invoke(damaged, "ask", "docker")
    assert r.exit_code == 1 and "dsqa reindex --full" in r.output and "Traceback" not in r.output
    # plain reindex rebuilds (and says why), --full too
    assert "rebuilding the index from scratch" in _repairs(damaged)
    _garble(store.current_generation(damaged.index_dir) / name, how)
    _repairs(damaged, "--full")


def _drop_checksums(index_dir: Path) -> None:
    path = store.current_generation(index_dir) / store.MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("how", ["truncated", "empty", "junk"])
@pytest.mark.parametrize("name", FILES)
def test_damage_without_checksums_is_caught_by_structure(damaged, name, how):
    """Indexes written before checksums were recorded (the committed one was)
    are checked by shape and cross-references alone."""
    _drop_checksums(damaged.index_dir)
    _garble(store.current_generation(damaged.index_dir) / name, how)
    with pytest.raises(IndexCorruptError, match="dsqa reindex --full"):
        store.load(damaged.index_dir)


def test_sha256_checksums_are_checked_too(damaged):
    """The first indexes with checksums (the committed one among them)
    record SHA-256s; they are verified like CRCs."""
    import hashlib

    gen = store.current_generation(damaged.index_dir)
    manifest = json.loads((gen / store.MANIFEST).read_text())
    for rel, entry in manifest["files"].items():
        manifest["files"][rel] = {"size": entry["size"], "sha256": hashlib.sha256((gen / rel).read_bytes()).hexdigest()}
    (gen / store.MANIFEST).write_text(json.dumps(manifest))
    assert_consistent(store.load(damaged.index_dir))
    _garble(gen / "bm25/data.csc.index.npy", "flipped")
    with pytest.raises(IndexCorruptError, match=r"data.csc.index.npy is unusable \(contents do not match the checksum"):
        store.load(damaged.index_dir)


def test_hnsw_generation_round_trips(settings, monkeypatch):
    """Big indexes are HNSW (dsqa.ann) over the distinct vectors: written,
    checked and loaded alike, and a note copied under another name is found
    under both names though its vectors are in the graph once."""
    from dsqa import ann

    monkeypatch.setattr(ann, "FLAT_MAX_VECTORS", 10)
    note = sorted(settings.corpus_dir.rglob("*.md"))[0]
    (settings.corpus_dir / "copy-of-a-note.md").write_bytes(note.read_bytes())
    DSQA(settings).reindex()
    index = store.load(settings.index_dir)
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
    entries = index.path / store.ANN_ENTRIES
    for damaged, garble in ((entries, "flipped"), (index.path / store.FAISS, "flipped")):
        saved = damaged.read_bytes()
        _garble(damaged, garble)
        with pytest.raises(IndexCorruptError, match=damaged.name):
            store.load(settings.index_dir)
        damaged.write_bytes(saved)


def test_committed_index_loads_and_is_consistent():
    from conftest import INDEX

    assert_consistent(store.load(INDEX))


@pytest.mark.parametrize(
    "change",
    [
        {"format": store.FORMAT_VERSION + 1},
        {"chunk_count": 3},
        {"model": {"name": "fake-hash", "dimension": 65, "max_tokens": 128}},
        {"model": "fake-hash"},
        {"notes": []},
        {"format": "2"},
    ],
    ids=["future-format", "chunk-count", "dimension", "model-type", "notes-type", "format-type"],
)
def test_foreign_manifest(damaged, change):
    _rewrite_manifest(damaged.index_dir, **change)
    with pytest.raises(IndexCorruptError, match=r"(manifest|chunks|vectors|windows)\S* is unusable.*reindex --full"):
        store.load(damaged.index_dir)
    if "format" in change and change["format"] == store.FORMAT_VERSION + 1:
        with pytest.raises(IndexCorruptError, match="written by a newer dsqa"):
            DSQA(damaged).ask("docker")
    _repairs(damaged, "--full")


def test_chunk_records_not_matching_the_manifest(damaged):
    gen = store.current_generation(damaged.index_dir)
    _drop_checksums(damaged.index_dir)
    records = [json.loads(line) for line in (gen / store.CHUNKS).read_text().splitlines()]
    records[0]["source"] = "notes/elsewhere.md"
    (gen / store.CHUNKS).write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(IndexCorruptError, match="do not match the notes listed in the manifest"):
        store.load(damaged.index_dir)


@pytest.mark.parametrize("pointer", ["gen-does-not-exist\n", "", "../../etc\n", "\xff\xfe"])
def test_current_pointing_nowhere(damaged, pointer):
    (damaged.index_dir / store.POINTER).write_bytes(pointer.encode("latin-1"))
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
    store.load(damaged.index_dir)
    assert calls and all(flag is False for flag in calls), calls
    # A pickled object array where numbers belong is refused, not run.
    monkeypatch.undo()
    _drop_checksums(damaged.index_dir)
    gen = store.current_generation(damaged.index_dir)
    for name in ("vectors.npy", "bm25/data.csc.index.npy"):
        saved = (gen / name).read_bytes()
        np.save(gen / name, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
        with pytest.raises(IndexCorruptError, match=re.escape(name.split("/")[0])):
            store.load(damaged.index_dir)
        (gen / name).write_bytes(saved)
    store.load(damaged.index_dir)


# -- 6. bad input ---------------------------------------------------------------------


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
    index = store.load(built.settings.index_dir)
    assert_consistent(index)
    assert not any("hunter2" in c["text"] for c in index.chunks)
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
    assert_consistent(store.load(built.settings.index_dir))


def test_a_50_MB_note_is_skipped_quickly(built, caplog):
    big = built.settings.corpus_dir / NOTES / "dump.md"
    line = b"word " * 19 + b"\n"
    with open(big, "wb") as fh:
        fh.write(line * (50 * 1024 * 1024 // len(line)))
    assert big.stat().st_size > 50e6 > MAX_NOTE_BYTES
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        report = built.reindex()
    assert time.perf_counter() - started < 5
    assert dict(report.skipped) == {"notes/dump.md": "too large (52.4 MB, limit 21 MB)"}
    assert "skipped notes/dump.md: too large" in caplog.text
    assert built.status().up_to_date and not built.reindex().wrote
    assert built.ask("docker swarm").found


def test_missing_or_empty_corpus_loses_nothing(built, caplog):
    gen = store.current_generation(built.settings.index_dir)
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
    assert store.current_generation(built.settings.index_dir) == gen
    assert_consistent(store.load(built.settings.index_dir))


def test_read_only_index_folder_loses_nothing(built, fake_model, caplog):
    settings = built.settings
    gen = store.current_generation(settings.index_dir)
    (settings.corpus_dir / NOTES / "new.md").write_text("# New\nzookeeper leader election\n")
    embedded = fake_model.embedded
    with read_only(settings.index_dir):
        with pytest.raises(IndexWriteError, match=r"cannot write the index folder .*the index there .* is unchanged"):
            DSQA(settings).reindex()
        assert fake_model.embedded == embedded, "fails before embedding anything"
        assert store.current_generation(settings.index_dir) == gen
        assert_consistent(store.load(settings.index_dir))
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


# -- 7. status ------------------------------------------------------------------------


def test_status_text_and_json(cli_settings):
    assert invoke(cli_settings, "reindex").exit_code == 0
    r = invoke(cli_settings, "status")
    assert r.exit_code == 0, r.output
    assert "model:    fake-hash (64-d)" in r.output and "chunk_tokens=200" in r.output
    assert re.search(r"size:     5 notes, \d+ chunks, \d+ vectors", r.output)
    assert "state:    up to date" in r.output and "built 20" in r.output
    notes = cli_settings.corpus_dir / NOTES
    (notes / "new.md").write_text("# New\nzookeeper\n")
    edit_once(notes / "unlimitediw-dist-sys-notes.md", PHRASE, EDITED)
    (notes / "anonymous-short-notes.md").unlink()
    r = invoke(cli_settings, "status")
    assert "state:    stale: notes 1 added (notes/new.md); 1 changed" in r.output
    assert "added:    notes/new.md" in r.output and f"changed:  {BIG}" in r.output
    assert "removed:  notes/anonymous-short-notes.md" in r.output and "fix:      dsqa reindex --corpus" in r.output
    data = json.loads(invoke(cli_settings, "status", "--json").output)
    assert data["up_to_date"] is False
    assert (data["added"], data["changed"], data["removed"]) == (
        ["notes/new.md"], [BIG], ["notes/anonymous-short-notes.md"]
    )
    assert data["model"] == {"name": "fake-hash", "dimension": 64, "max_tokens": 128}
    assert data["chunking"]["chunk_tokens"] == 200 and data["notes"] == 5 and data["chunks"] > 0
    assert data["created"].endswith("Z") and data["format"] == store.FORMAT_VERSION
    # status reads, never writes
    assert invoke(cli_settings, "status").exit_code == 0 and not json.loads(
        invoke(cli_settings, "status", "--json").output
    )["up_to_date"]
    r = invoke(cli_settings, "reindex")
    assert r.output.startswith("3 notes unchanged, 1 added (1 chunk), 1 changed (")
    assert json.loads(invoke(cli_settings, "status", "--json").output)["up_to_date"] is True


def test_status_names_model_and_settings_differences(built):
    s = DSQA(built.settings.with_(chunk_tokens=90)).status()
    assert not s.up_to_date and s.problems == ["chunking settings differ (chunk_tokens 60 -> 90)"]
    assert s.added == s.changed == s.removed == []


def test_status_without_an_index(settings):
    r = invoke(settings, "status")
    assert r.exit_code == 1 and "no index in" in r.output and "dsqa reindex" in r.output
