"""The index on disk: written whole, switched atomically, checked on load.

Layout of the index folder::

    CURRENT             name of the live generation (one line)
    gen-<id>/           one complete index
        manifest.json   format, dsqa version, model, chunking settings, notes
        chunks.jsonl    one chunk record per line
        windows.npy     per vector: chunk row, start and end of its sentence
                        in the chunk text (-1 for a whole-chunk vector)
        vectors.npy     the unit vectors (float32), the source of truth
        vectors.faiss   the FAISS index built from them
        bm25/           the keyword index over the chunks (bm25s format)
    .lock               held by the one process that writes

A writer builds a new generation in a temporary folder, renames it into place
and only then replaces ``CURRENT`` with ``os.replace``. A process killed at
any moment therefore leaves ``CURRENT`` naming a complete generation, either
the old or the new one, and readers, who resolve ``CURRENT`` once, never see a
half-written index. Nothing here is pickled: JSON, JSON Lines, ``.npy`` read
with ``allow_pickle=False``, and FAISS's own format.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexCorruptError, IndexMissingError
from .lexical import LexicalIndex

FORMAT_VERSION = 2
POINTER = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.npy"
FAISS = "vectors.faiss"
WINDOWS = "windows.npy"
BM25 = "bm25"

CHUNK_FIELDS = ("source", "heading", "start_line", "end_line", "start_char", "end_char", "text", "key")


@dataclass
class StoredIndex:
    """One loaded generation: its manifest, chunk records, vectors (one per
    sentence window, grouped by chunk) and keyword index."""

    path: Path
    manifest: dict[str, Any]
    chunks: list[dict[str, Any]]
    vectors: np.ndarray
    windows: np.ndarray  # (n_vectors, 3) int32: chunk row, sentence start, end
    faiss_index: Any
    lexical: LexicalIndex

    def __post_init__(self) -> None:
        #: window rows of chunk r are offsets[r]:offsets[r + 1]
        self.offsets = np.searchsorted(self.windows[:, 0], np.arange(len(self.chunks) + 1)).astype(np.int64)

    @property
    def sources(self) -> list[str]:
        return sorted(self.manifest["notes"])

    def window_rows(self, chunk_row: int) -> range:
        return range(int(self.offsets[chunk_row]), int(self.offsets[chunk_row + 1]))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def current_generation(index_dir: Path) -> Path:
    """The live generation folder, or ``IndexMissingError``."""
    pointer = Path(index_dir) / POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexMissingError(index_dir) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(pointer, str(exc)) from None
    if not name.startswith("gen-") or "/" in name or "\\" in name:
        raise IndexCorruptError(pointer, f"does not name a generation: {name[:60]!r}")
    gen = Path(index_dir) / name
    if not gen.is_dir():
        raise IndexCorruptError(pointer, f"names {name}, which does not exist")
    return gen


def read_manifest(index_dir: Path, gen: Path | None = None) -> dict[str, Any]:
    path = (gen or current_generation(index_dir)) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(path, str(exc)) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
        raise IndexCorruptError(path, "not a dsqa manifest")
    if manifest["format"] > FORMAT_VERSION:
        raise IndexCorruptError(
            path, f"written by a newer dsqa (index format {manifest['format']}, this dsqa reads {FORMAT_VERSION})"
        )
    for key in ("model", "chunking", "notes", "chunk_count"):
        if key not in manifest:
            raise IndexCorruptError(path, f"manifest lacks {key!r}")
    return manifest


def load(index_dir: Path) -> StoredIndex:
    """Load and cross-check the live generation.

    A writer deletes the previous generation right after switching; a reader
    caught loading it in that instant simply loads the new one.
    """
    for _ in range(3):
        gen = current_generation(index_dir)
        try:
            return _load_generation(index_dir, gen)
        except IndexCorruptError:
            if current_generation(index_dir) == gen:
                raise
    return _load_generation(index_dir, current_generation(index_dir))


def _load_generation(index_dir: Path, gen: Path) -> StoredIndex:
    import faiss

    manifest = read_manifest(index_dir, gen)
    chunks_path = gen / CHUNKS
    try:
        with open(chunks_path, encoding="utf-8") as fh:
            chunks = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(chunks_path, str(exc)) from None
    if any(not isinstance(c, dict) or any(f not in c for f in CHUNK_FIELDS) for c in chunks):
        raise IndexCorruptError(chunks_path, "a chunk record lacks required fields")
    vectors_path = gen / VECTORS
    try:
        vectors = np.load(vectors_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorruptError(vectors_path, str(exc)) from None
    faiss_path = gen / FAISS
    try:
        faiss_index = faiss.read_index(str(faiss_path))
    except RuntimeError as exc:
        raise IndexCorruptError(faiss_path, str(exc).strip().splitlines()[-1][:200]) from None
    windows_path = gen / WINDOWS
    try:
        windows = np.load(windows_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorruptError(windows_path, str(exc)) from None
    try:
        lexical = LexicalIndex.load(gen / BM25)
    except (OSError, ValueError, KeyError) as exc:
        raise IndexCorruptError(gen / BM25, str(exc)) from None
    dim = manifest["model"]["dimension"]
    n = len(chunks)
    if manifest["chunk_count"] != n:
        raise IndexCorruptError(chunks_path, f"{n} chunk records, manifest says {manifest['chunk_count']}")
    if windows.ndim != 2 or windows.shape[1:] != (3,) or windows.dtype != np.int32:
        raise IndexCorruptError(windows_path, f"shape {windows.shape} {windows.dtype}, expected (n, 3) int32")
    if len(windows) and (windows[:, 0].min() < 0 or windows[:, 0].max() >= n or np.any(np.diff(windows[:, 0]) < 0)):
        raise IndexCorruptError(windows_path, "window table does not match the chunk records")
    w = len(windows)
    if vectors.dtype != np.float32 or vectors.shape != (w, dim):
        raise IndexCorruptError(vectors_path, f"shape {vectors.shape} {vectors.dtype}, expected ({w}, {dim}) float32")
    if faiss_index.ntotal != w or faiss_index.d != dim:
        raise IndexCorruptError(faiss_path, f"{faiss_index.ntotal} vectors of dimension {faiss_index.d}, expected {w} of {dim}")
    if lexical.size != n:
        raise IndexCorruptError(gen / BM25, f"{lexical.size} documents, expected {n}")
    return StoredIndex(gen, manifest, chunks, vectors, windows, faiss_index, lexical)


def write(
    index_dir: Path,
    manifest: dict[str, Any],
    chunks: list[dict[str, Any]],
    vectors: np.ndarray,
    windows: np.ndarray,
    faiss_index: Any,
    lexical: LexicalIndex,
) -> Path:
    """Write a new generation and make it live; return its folder.

    Must be called with the index lock held (see ``dsqa.indexing``).
    """
    import faiss

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    try:
        _write_file(tmp / CHUNKS, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks).encode("utf-8"))
        with open(tmp / VECTORS, "wb") as fh:
            np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        with open(tmp / WINDOWS, "wb") as fh:
            np.save(fh, np.ascontiguousarray(windows, dtype=np.int32), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        faiss.write_index(faiss_index, str(tmp / FAISS))
        (tmp / BM25).mkdir()
        lexical.save(tmp / BM25)
        for path in [tmp / FAISS, *(tmp / BM25).iterdir()]:
            with open(path, "rb+") as fh:
                os.fsync(fh.fileno())
        # The manifest goes last: a generation folder with a manifest is complete.
        _write_file(tmp / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        _fsync_dir(tmp)
        gen = index_dir / name
        os.rename(tmp, gen)
        _fsync_dir(index_dir)
        pointer_tmp = index_dir / f".tmp-{POINTER}-{uuid.uuid4().hex[:8]}"
        _write_file(pointer_tmp, (name + "\n").encode("utf-8"))
        os.replace(pointer_tmp, index_dir / POINTER)
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return gen


def collect_garbage(index_dir: Path) -> None:
    """Remove leftovers of interrupted writes and every generation but the
    live one (readers that were loading one retry, see :func:`load`).

    Must be called with the index lock held.
    """
    index_dir = Path(index_dir)
    try:
        live = current_generation(index_dir).name
    except (IndexMissingError, IndexCorruptError):
        return
    for tmp in index_dir.glob(".tmp-*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    for gen in index_dir.glob("gen-*"):
        if gen.is_dir() and gen.name != live:
            shutil.rmtree(gen, ignore_errors=True)
