"""The index on disk: written whole, switched atomically, checked on load.

Layout of the index folder::

    CURRENT             name of the live generation (one line)
    gen-<id>/           one complete index
        manifest.json   format, dsqa version, model, chunking settings, notes
        chunks.jsonl    one chunk record per line
        windows.npy     per vector: chunk row, start and end of its sentence
                        in the chunk text (-1 for a whole-chunk vector)
        vectors.faiss   the FAISS index, the only copy of the vectors (as
                        float16 or 8-bit codes, see ``ann``)
        ann_entries.npy per vector, its entry in vectors.faiss (repeated
                        vectors share one; an entry no vector maps to is
                        masked, see ``ann.Distinct``)
        bm25/           the keyword index over the chunks (bm25s format, plus
                        the term counts it was computed from)
    .lock               held by the one process that writes

A writer builds a new generation in a temporary folder, renames it into place
and only then replaces ``CURRENT`` with ``os.replace``. A process killed at
any moment therefore leaves ``CURRENT`` naming a complete generation, either
the old or the new one, and readers, who resolve ``CURRENT`` once, never see a
half-written index. Nothing here is pickled: JSON, JSON Lines, ``.npy`` read
with ``allow_pickle=False``, and FAISS's own format.

The manifest lists the size and CRC-32 of every other file of its generation,
and :func:`load` checks them, then cross-checks the files against each other
(chunk records against the manifest's notes, windows against chunks, vectors
against windows and the FAISS index, BM25 arrays against the chunks). A
damaged file is therefore an ``IndexCorruptError`` naming it, never a crash or
a wrong answer later. Indexes written before checksums were recorded are
checked by structure alone.

A cold question reads little of a big generation: a file found as its
writer left it (size, inode, modification and change times, see
``manifest.STAT``) is not read again for its CRC, and chunk records vouched
for by their checksum are parsed one by one as they are read
(:class:`~dsqa.storage.chunk_file.ChunkFile`), each checked then.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import IndexCorruptError, IndexMissingError
from . import ann
from .chunk_file import ChunkFile, ChunkWriter, LineEnds, chunk_problem
from .files import (
    describe_error,
    file_entry,
    fsync_dir,
    read_npy,
    stat_identity,
    verify,
    write_file,
)
from .lexical import LexicalIndex
from .manifest import (
    ANN_ENTRIES,
    BM25,
    CHUNKS,
    FAISS,
    FILES,
    MANIFEST,
    POINTER,
    STAT,
    VECTORS,
    WINDOWS,
    current_generation,
    read_manifest,
)
from .records import ChunkRecord


@dataclass
class StoredIndex:
    """One loaded generation: its manifest, chunk records, vectors (one per
    sentence window, grouped by chunk) and keyword index."""

    path: Path
    manifest: dict[str, Any]
    #: The chunk records: a list, or read from ``chunks.jsonl`` as they are
    #: asked for (:class:`~dsqa.storage.chunk_file.ChunkFile`).
    chunks: Sequence[ChunkRecord]
    #: One vector per window: float32 rows (formats 2 and 3), or decoded
    #: from ``faiss_index`` as they are read (``ann.StoredVectors``).
    vectors: np.ndarray | ann.StoredVectors
    windows: np.ndarray  # (n_vectors, 3) int32: chunk row, sentence start, end
    faiss_index: Any
    lexical: LexicalIndex
    #: How vectors map onto the entries of ``faiss_index``; ``None`` (formats
    #: 2 and 3 without repeats): one entry per vector.
    distinct: ann.Distinct | None = None

    def __post_init__(self) -> None:
        #: window rows of chunk r are offsets[r]:offsets[r + 1]
        self.offsets = np.searchsorted(self.windows[:, 0], np.arange(len(self.chunks) + 1)).astype(np.int64)

    @property
    def sources(self) -> list[str]:
        return sorted(self.manifest["notes"])

    def window_rows(self, chunk_row: int) -> range:
        return range(int(self.offsets[chunk_row]), int(self.offsets[chunk_row + 1]))

    def sentence_spans(self, chunk_row: int) -> list[tuple[int, int]]:
        """The spans in the chunk's text of the sentences its windows are
        centred on (its whole-chunk vector has none)."""
        spans = self.windows[self.offsets[chunk_row] : self.offsets[chunk_row + 1], 1:]
        return [(int(s), int(e)) for s, e in spans if s >= 0]


def load(index_dir: Path, gen: Path | None = None, manifest: dict[str, Any] | None = None) -> StoredIndex:
    """Load and cross-check the live generation.

    ``gen`` and its ``manifest``, when the caller has just read them (the
    engine reads them once to check freshness), are loaded without reading
    ``CURRENT`` or the manifest again.

    A writer deletes the previous generation right after switching; a reader
    caught loading it in that instant simply loads the new one.
    """
    if gen is not None:
        try:
            return _load_generation(index_dir, gen, manifest)
        except IndexCorruptError:
            if current_generation(index_dir) == gen:
                raise
    for _ in range(3):
        gen = current_generation(index_dir)
        try:
            return _load_generation(index_dir, gen)
        except IndexCorruptError:
            if current_generation(index_dir) == gen:
                raise
    return _load_generation(index_dir, current_generation(index_dir))


def _load_generation(index_dir: Path, gen: Path, manifest: dict[str, Any] | None = None) -> StoredIndex:
    if manifest is None:
        manifest = read_manifest(index_dir, gen)
    files = manifest.get(FILES)
    chunks = _load_chunks(gen, files, manifest)
    windows = _load_windows(gen, files, chunks if isinstance(chunks, list) else None, len(chunks))
    lexical = _load_lexical(gen, files, len(chunks))
    if manifest["format"] < 4:
        vectors = _load_vectors(gen, files, manifest["model"]["dimension"], len(windows))
        faiss_index, distinct = _load_faiss(gen, files, manifest, vectors)
        return StoredIndex(gen, manifest, chunks, vectors, windows, faiss_index, lexical, distinct)
    faiss_index, rows = _load_codes(gen, files, manifest, len(windows))
    return StoredIndex(gen, manifest, chunks, ann.StoredVectors(faiss_index, rows), windows, faiss_index, lexical, rows)


def _load_codes(gen: Path, files: dict[str, Any] | None, manifest: dict[str, Any], w: int) -> tuple[Any, ann.Distinct]:
    """A format-4 FAISS index, memory-mapped, and the map of the ``w``
    vectors onto its entries: every vector maps to an entry."""
    dim = manifest["model"]["dimension"]
    faiss_path = gen / FAISS
    verify(gen, FAISS, files)
    try:
        faiss_index = ann.read(faiss_path)
    except Exception as exc:  # faiss raises RuntimeError, or MemoryError on a garbled size
        raise IndexCorruptError(faiss_path, describe_error(exc)) from None
    if faiss_index.d != dim:
        raise IndexCorruptError(faiss_path, f"vectors of dimension {faiss_index.d}, expected {dim}")
    path = gen / ANN_ENTRIES
    verify(gen, ANN_ENTRIES, files)
    entry = read_npy(path, np.int64, 1)[:, 0]
    if len(entry) != w:
        raise IndexCorruptError(path, f"{len(entry)} entries for {w} vectors")
    if w and (entry.min() < 0 or entry.max() >= faiss_index.ntotal):
        raise IndexCorruptError(path, f"maps vectors onto entries outside the index's {faiss_index.ntotal}")
    return faiss_index, ann.Distinct(entry, int(faiss_index.ntotal))


def _load_chunks(gen: Path, files: dict[str, Any] | None, manifest: dict[str, Any]) -> Sequence[ChunkRecord]:
    """The chunk records: as many as the manifest counts, read when asked
    for (:class:`ChunkFile`) when the file's checksum vouches that it is the
    file its writer wrote; else parsed whole here, each well-formed, as many
    per note as the manifest lists."""
    chunks_path = gen / CHUNKS
    if files is not None and CHUNKS in files:
        return _chunk_file(gen, files, manifest["chunk_count"])
    try:
        text = cast(bytes, verify(gen, CHUNKS, files, keep=True)).decode("utf-8")
        chunks = [json.loads(line) for line in text.split("\n") if line.strip()]  # not splitlines: U+2028 is data
    except ValueError as exc:
        raise IndexCorruptError(chunks_path, describe_error(exc)) from None
    except RecursionError:
        raise IndexCorruptError(chunks_path, "a record is nested too deeply to be a chunk") from None
    for row, c in enumerate(chunks):
        problem = chunk_problem(c)
        if problem:
            raise IndexCorruptError(chunks_path, f"record {row + 1}: {problem}")
    n = len(chunks)
    if manifest["chunk_count"] != n:
        raise IndexCorruptError(chunks_path, f"{n} chunk records, the manifest says {manifest['chunk_count']}")
    per_note: dict[str, int] = {}
    for c in chunks:
        per_note[c["source"]] = per_note.get(c["source"], 0) + 1
    expected = {s: e["chunks"] for s, e in manifest["notes"].items() if e["chunks"]}
    if per_note != expected:
        raise IndexCorruptError(chunks_path, "the chunk records do not match the notes listed in the manifest")
    return [ChunkRecord.from_json(c) for c in chunks]


def _chunk_file(gen: Path, files: dict[str, Any], count: int) -> ChunkFile:
    """The records of a checksummed ``chunks.jsonl``, parsed as they are
    read; here only the checksum and the number of lines are checked."""
    path = gen / CHUNKS
    lines = LineEnds()
    verify(gen, CHUNKS, files, scan=lines.update)
    offsets = lines.offsets()
    if offsets[-1] != lines.size:
        raise IndexCorruptError(path, "its last record is cut off")
    if count != len(offsets) - 1:
        raise IndexCorruptError(path, f"{len(offsets) - 1} chunk records, the manifest says {count}")
    return ChunkFile(path, offsets)


def _load_windows(gen: Path, files: dict[str, Any] | None, chunks: list[ChunkRecord] | None, n: int) -> np.ndarray:
    """The window table: every one of the ``n`` chunks has windows, in chunk
    order, each inside its chunk's text (checked against ``chunks`` when
    they are parsed already; else their checksums vouch for both files)."""
    windows_path = gen / WINDOWS
    verify(gen, WINDOWS, files)
    windows = read_npy(windows_path, np.int32, 3)
    w = len(windows)
    if n and w:
        rows = windows[:, 0]
        steps = np.diff(rows)
        # Sorted rows, so every chunk has a window when the rows step up n - 1
        # times (np.unique would sort them again, and import numpy.ma).
        if rows.min() < 0 or rows.max() >= n or np.any(steps < 0) or np.count_nonzero(steps) + 1 != n:
            raise IndexCorruptError(windows_path, "the window table does not match the chunk records")
        starts, ends = windows[:, 1].astype(np.int64), windows[:, 2].astype(np.int64)
        whole = (starts == -1) & (ends == -1)
        inside = (starts >= 0) & (starts < ends)
        if chunks is not None:
            inside &= ends <= np.array([len(c.text) for c in chunks], dtype=np.int64)[rows]
        if not np.all(whole | inside):
            raise IndexCorruptError(windows_path, "a sentence window lies outside its chunk")
    elif n or w:
        raise IndexCorruptError(windows_path, f"{w} windows for {n} chunks")
    return windows


def _load_vectors(gen: Path, files: dict[str, Any] | None, dim: int, w: int) -> np.ndarray:
    """The vectors: one per window, finite numbers."""
    vectors_path = gen / VECTORS
    verify(gen, VECTORS, files)
    vectors = read_npy(vectors_path, np.float32, dim)
    if len(vectors) != w:
        raise IndexCorruptError(vectors_path, f"{len(vectors)} vectors for {w} windows")
    if not np.all(np.isfinite(vectors)):
        raise IndexCorruptError(vectors_path, "holds values that are not finite numbers")
    return vectors


def _load_faiss(
    gen: Path, files: dict[str, Any] | None, manifest: dict[str, Any], vectors: np.ndarray
) -> tuple[Any, ann.Distinct | None]:
    """The FAISS index and its vector-to-entry map: as many entries as
    distinct vectors, of the model's dimension; a flat index holds the very
    vectors of ``vectors.npy``."""
    faiss = ann.faiss_module()

    dim, w = manifest["model"]["dimension"], len(vectors)
    faiss_path = gen / FAISS
    verify(gen, FAISS, files)
    try:
        with open(faiss_path, "rb") as fh:
            fourcc, size = fh.read(4), os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise IndexCorruptError(faiss_path, describe_error(exc)) from None
    if manifest.get("index_type", "flat-ip") == "flat-ip" and (fourcc != b"IxFI" or size != _FLAT_HEADER + w * dim * 4):
        raise IndexCorruptError(faiss_path, f"not a flat index of {w} vectors of dimension {dim} ({size} bytes)")
    try:
        faiss_index = ann.prepare_for_search(faiss.read_index(str(faiss_path)))
    except Exception as exc:  # faiss raises RuntimeError, or MemoryError on a garbled size
        raise IndexCorruptError(faiss_path, describe_error(exc)) from None
    distinct = _load_distinct(gen, files, w)
    entries = w if distinct is None else distinct.entries
    if faiss_index.ntotal != entries or faiss_index.d != dim:
        raise IndexCorruptError(faiss_path, f"{faiss_index.ntotal} vectors of dimension {faiss_index.d}, expected {entries} of {dim}")
    if isinstance(faiss_index, faiss.IndexFlat) and w and not np.array_equal(faiss_index.reconstruct_n(0, w), vectors):
        raise IndexCorruptError(faiss_path, "its vectors differ from vectors.npy")
    return faiss_index, distinct


def _load_distinct(gen: Path, files: dict[str, Any] | None, w: int) -> ann.Distinct | None:
    """The vector-to-entry map, if this generation has one: every vector
    maps to an entry, and every entry has a vector."""
    path = gen / ANN_ENTRIES
    if files is None or ANN_ENTRIES not in files:
        return None
    verify(gen, ANN_ENTRIES, files)
    entry = read_npy(path, np.int64, 1)[:, 0]
    if len(entry) != w:
        raise IndexCorruptError(path, f"{len(entry)} entries for {w} vectors")
    if w and (entry.min() < 0 or np.any(np.bincount(entry) == 0)):
        raise IndexCorruptError(path, "does not map the vectors onto entries 0, 1, 2, ... without gaps")
    return ann.Distinct(entry)


#: Bytes before the vectors in a FAISS IndexFlat file: fourcc, d, ntotal,
#: two unused counts, is_trained, metric type, then the length of the codes.
_FLAT_HEADER = 4 + 4 + 8 + 8 + 8 + 1 + 4 + 8


def _load_lexical(gen: Path, files: dict[str, Any] | None, n: int) -> LexicalIndex:
    """The BM25 index, checked so that no query can index past its arrays."""
    folder = gen / BM25
    for rel in files or {}:
        if rel.startswith(BM25 + "/"):
            verify(gen, rel, files)
    try:
        lexical = LexicalIndex.load(folder)
    except Exception as exc:  # bm25s on garbage: JSON, numpy or constructor errors
        raise IndexCorruptError(folder, describe_error(exc)) from None
    problem = lexical.problem(n, words=not any(rel.startswith(BM25 + "/") for rel in files or {}))
    if problem:
        raise IndexCorruptError(folder, problem)
    return lexical


def write(
    index_dir: Path,
    manifest: dict[str, Any],
    chunks: Iterable[ChunkRecord],
    windows: np.ndarray,
    faiss_index: Any,
    lexical: LexicalIndex,
    rows: ann.Distinct,
) -> Path:
    """Write a new generation (the current format) and make it live; return
    its folder (see :class:`GenerationWriter`, which writes it).

    Must be called with the index lock held (see ``dsqa.build.reindex``).
    """
    writer = GenerationWriter(index_dir)
    try:
        writer.add_chunks(chunks)
    except BaseException:
        writer.abort()
        raise
    return writer.finish(manifest, windows, faiss_index, lexical, rows)


class GenerationWriter:
    """A new generation, written in a temporary folder of the index folder:
    its chunk records as they are made (:meth:`add_chunks`), then the rest,
    the manifest last, and only then renamed into place and made live by
    :meth:`finish`. Until then the live generation is untouched; after a
    crash the next writer's :func:`collect_garbage` removes the folder.

    The manifest written gets a ``files`` entry: size and CRC-32 of every
    other file, so that a damaged file is caught on load and named.
    Must be used with the index lock held (see ``dsqa.build.reindex``).
    """

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.tmp = self.index_dir / f".tmp-{self.name}"
        self.tmp.mkdir()
        self.files: dict[str, Any] = {}
        try:
            self._chunks = ChunkWriter(self.tmp / CHUNKS)
        except BaseException:
            self.abort()
            raise

    def add_chunks(self, records: Iterable[ChunkRecord]) -> None:
        self._chunks.add(records)

    def copy_chunks(self, source: Sequence[ChunkRecord], start: int, end: int) -> None:
        """Append records ``start:end`` of a loaded generation's ``source``,
        as bytes when its file vouches for them (``ChunkWriter.copy``)."""
        self._chunks.copy(source, start, end)

    @property
    def chunk_count(self) -> int:
        return len(self._chunks)

    def chunks(self) -> ChunkFile:
        """The chunk records written so far, read back from the new file."""
        return self._chunks.reader()

    def abort(self) -> None:
        """Give up: remove the temporary folder."""
        if hasattr(self, "_chunks"):
            self._chunks.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def finish(
        self, manifest: dict[str, Any], windows: np.ndarray, faiss_index: Any, lexical: LexicalIndex, rows: ann.Distinct
    ) -> Path:
        """Write the rest of the generation, then switch ``CURRENT`` to it;
        return its folder. On any failure the temporary folder is removed
        and the live generation stays as it was."""
        faiss = ann.faiss_module()

        tmp, files, index_dir = self.tmp, self.files, self.index_dir

        def save_npy(rel: str, array: np.ndarray) -> None:
            with open(tmp / rel, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
            files[rel] = file_entry(tmp / rel)

        try:
            self._chunks.close()
            files[CHUNKS] = file_entry(tmp / CHUNKS)
            save_npy(WINDOWS, np.ascontiguousarray(windows, dtype=np.int32))
            faiss.write_index(faiss_index, str(tmp / FAISS))
            files[FAISS] = file_entry(tmp / FAISS)
            save_npy(ANN_ENTRIES, rows.entry_of_row.reshape(-1, 1))
            (tmp / BM25).mkdir()
            lexical.save(tmp / BM25)
            for path in sorted((tmp / BM25).iterdir()):
                files[f"{BM25}/{path.name}"] = file_entry(path)
            fsync_dir(tmp / BM25)
            for rel, entry in files.items():
                entry[STAT] = stat_identity(os.stat(tmp / rel))
            # The manifest goes last: a generation folder with a manifest is complete.
            manifest = {**manifest, FILES: files}
            write_file(tmp / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
            fsync_dir(tmp)
            gen = index_dir / self.name
            os.rename(tmp, gen)
            fsync_dir(index_dir)
            # A failure from here on leaves at worst an unused generation or
            # pointer file, which the next writer's collect_garbage removes.
            pointer_tmp = index_dir / f".tmp-{POINTER}-{uuid.uuid4().hex[:8]}"
            write_file(pointer_tmp, (self.name + "\n").encode("utf-8"))
            # The switch: before it readers get the old generation, after it the new one.
            os.replace(pointer_tmp, index_dir / POINTER)
            fsync_dir(index_dir)
        except BaseException:
            self.abort()
            raise
        return gen


def collect_garbage(index_dir: Path) -> None:
    """Remove leftovers of interrupted writes and every generation but the
    live one (readers that were loading one retry, see :func:`load`).
    Nothing is removed while ``CURRENT`` is missing or broken, and what
    cannot be removed (a read-only folder) is left for next time.

    Must be called with the index lock held.
    """
    index_dir = Path(index_dir)
    try:
        live = current_generation(index_dir).name
    except (IndexMissingError, IndexCorruptError):
        return
    for tmp in index_dir.glob(".tmp-*"):
        try:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass
    for gen in index_dir.glob("gen-*"):
        if gen.is_dir() and not gen.is_symlink() and gen.name != live:
            shutil.rmtree(gen, ignore_errors=True)
