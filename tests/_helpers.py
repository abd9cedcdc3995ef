"""Helpers shared by the index-lifecycle tests (incremental reindex,
staleness, locking, corruption, bad input, status, crash, properties); the
fake model and the fixtures live in conftest.py."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dsqa import storage
from dsqa.cli import cli

HERE = Path(__file__).resolve().parent

NOTES = "notes"
BIG = f"{NOTES}/unlimitediw-dist-sys-notes.md"
#: A phrase that occurs once in BIG, and an edit that keeps its token count
#: (so only the chunk(s) holding it change).
PHRASE = "This could be a shell script or a custom app."
EDITED = "This could be a fish script or a custom app."


def dsqa_logs(caplog, level=logging.INFO):
    return [r for r in caplog.records if r.name == "dsqa" and r.levelno >= level]


def count_index_reads(monkeypatch) -> Counter[str]:
    """Count every read of ``CURRENT`` and of a manifest from now on, by file
    name: both go through the one checked read of :mod:`dsqa.storage.manifest`."""
    from dsqa.storage import manifest

    reads: Counter[str] = Counter()
    original = manifest.read_regular

    def counting(path, *args, **kwargs):
        reads[path.name] += 1
        return original(path, *args, **kwargs)

    monkeypatch.setattr(manifest, "read_regular", counting)
    return reads


def invoke(settings, command, *args, **kwargs):
    """``dsqa COMMAND ARGS`` in-process, on the folders of ``settings`` and
    the fake model (``kwargs`` go to ``CliRunner.invoke``); the dsqa logger
    is put back as it was after it (the CLI points it at its own stderr).
    The one way the tests run the CLI, but for the subprocess tests of the
    installed ``dsqa`` command (test_cli.py)."""
    base = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-hash"]
    logger = logging.getLogger("dsqa")
    saved = logger.propagate, logger.handlers[:], logger.level
    try:
        return CliRunner().invoke(cli, [command, *args, *base], **kwargs)
    finally:
        logger.propagate, logger.handlers[:], logger.level = saved[0], saved[1], saved[2]


def rewrite_manifest(index_dir: Path, **changes) -> None:
    path = storage.current_generation(index_dir) / storage.MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def assert_consistent(index: storage.StoredIndex) -> None:
    """The invariants every loadable index must hold (storage.load checks them
    too; this says so independently, in the test's own words)."""
    n, w = len(index.chunks), len(index.windows)
    assert index.manifest["chunk_count"] == n
    assert index.manifest.get("vector_count", w) == w
    assert w == len(index.vectors)
    if index.distinct is None:
        assert index.faiss_index.ntotal == w
    else:  # each distinct vector once; entries no vector maps to are masked (dsqa.storage.ann.Distinct)
        assert index.faiss_index.ntotal == index.distinct.entries
        assert index.distinct.entries - index.distinct.dead <= w
        assert index.manifest.get("ann_masked", 0) == index.distinct.dead
        unique = index.faiss_index.reconstruct_n(0, index.faiss_index.ntotal)
        np.testing.assert_array_equal(unique[index.distinct.entry_of_row], np.asarray(index.vectors))
    assert index.vectors.shape[1] == index.manifest["model"]["dimension"] == index.faiss_index.d
    assert index.lexical.size == n or (n == 0 and index.lexical.size == 0)
    if n:
        assert set(index.windows[:, 0].tolist()) == set(range(n))
    per_note: dict[str, int] = {}
    for c in index.chunks:
        per_note[c.source] = per_note.get(c.source, 0) + 1
    assert per_note == {s: e["chunks"] for s, e in index.manifest["notes"].items() if e["chunks"]}
    norms = np.linalg.norm(index.vectors, axis=1)
    # unit vectors, as far as their codes hold them (dsqa.ann: float16, 8 bits)
    codes = index.manifest.get("index_type", "")
    assert np.allclose(norms, 1.0, atol=2e-2 if "sq8" in codes else 1e-3 if "fp16" in codes else 1e-4)


def edit_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@contextlib.contextmanager
def read_only(folder: Path):
    """Make ``folder`` unwritable for this process. As root, permissions do
    not stop writes, so the immutable attribute (``chattr +i``, which binds
    root too) is used instead; where neither works the test is skipped."""
    folder = Path(folder)
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root (chmod does not stop root) and chattr is not installed")
    r = subprocess.run([chattr, "+i", str(folder)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"running as root (chmod does not stop root) and chattr +i failed: {r.stderr.strip()}")
    try:
        probe = folder / f"probe-{uuid.uuid4().hex[:6]}"
        try:
            probe.mkdir()
        except OSError:
            pass
        else:
            probe.rmdir()
            pytest.skip("chattr +i does not stop writes on this filesystem")
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def write_format3(index_dir: Path) -> None:
    """Rewrite the live generation as dsqa wrote index format 3: float32
    vectors.npy beside an exact float32 FAISS index, no BM25 term counts,
    and (as the first indexes had) no checksums."""
    import faiss

    from dsqa.storage import lexical

    index = storage.load(index_dir)
    gen = index.path
    vectors = np.ascontiguousarray(np.asarray(index.vectors), dtype=np.float32)
    np.save(gen / "vectors.npy", vectors)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    faiss.write_index(flat, str(gen / "vectors.faiss"))
    for path in (gen / "ann_entries.npy", gen / "bm25" / lexical.COUNTS_FILE, gen / "bm25" / lexical.LENGTHS_FILE):
        path.unlink()
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest.update(format=3, index_type="flat-ip", ann_entries=len(vectors))
    del manifest["files"]
    (gen / "manifest.json").write_text(json.dumps(manifest))
