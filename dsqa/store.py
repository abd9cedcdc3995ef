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
        ann_entries.npy per vector, its entry in vectors.faiss, when an
                        approximate index holds repeated vectors once
                        (format 3; see ``ann.Distinct``)
        bm25/           the keyword index over the chunks (bm25s format)
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
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from . import ann
from .errors import IndexCorruptError, IndexMissingError, IndexNotAFolderError
from .lexical import LexicalIndex

FORMAT_VERSION = 3
#: Formats this dsqa reads. Format 3 added ann_entries.npy; a format-2
#: index is read as one entry per vector, and its vectors are reused by the
#: next reindex (which writes format 3).
READABLE_FORMATS = (2, 3)
POINTER = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.npy"
FAISS = "vectors.faiss"
WINDOWS = "windows.npy"
ANN_ENTRIES = "ann_entries.npy"
BM25 = "bm25"
#: Manifest key: size and CRC-32 of every other file of the generation. A
#: CRC catches any accidental damage (truncation, garbled bytes) and runs at
#: several GB/s, so checking it on every load costs little even at a million
#: vectors; it is not meant to resist deliberate tampering. Entries holding a
#: SHA-256 instead (the first indexes with checksums, the committed one among
#: them) are checked with that.
FILES = "files"

CHUNK_FIELDS = ("source", "heading", "start_line", "end_line", "start_char", "end_char", "text", "key")
#: Where a chunk of a PDF (its page) or a notebook (its first and last cell) is.
OPTIONAL_CHUNK_FIELDS = ("page", "cell", "end_cell")


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
    #: How vectors map onto the entries of ``faiss_index`` when it holds
    #: repeated vectors once; ``None``: one entry per vector.
    distinct: ann.Distinct | None = None

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


#: ``CURRENT`` is read no further than this: a generation's name is short
#: (the writer's are about 30 characters).
POINTER_MAX_BYTES = 256
GENERATION_NAME_MAX = 128


def _open_regular(path: Path):
    """``path`` opened for reading in binary, if it is a regular file.

    Opened with ``O_NONBLOCK`` and refused unless the open descriptor is a
    regular file: a FIFO or device put in the index folder must not hang or
    feed a reader. ``OSError`` when it cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    fh = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        fh.close()
        raise OSError(errno.EINVAL, "not a regular file")
    return fh


def _read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`_open_regular`),
    at most ``limit`` + 1 of them when a limit is given."""
    with _open_regular(path) as fh:
        return fh.read() if limit is None else fh.read(limit + 1)


def current_generation(index_dir: Path) -> Path:
    """The live generation folder, or ``IndexMissingError``."""
    pointer = Path(index_dir) / POINTER
    try:
        data = _read_regular(pointer, POINTER_MAX_BYTES)
    except FileNotFoundError:
        raise IndexMissingError(index_dir) from None
    except NotADirectoryError:
        raise IndexNotAFolderError(index_dir) from None
    except OSError as exc:
        raise IndexCorruptError(pointer, _why(exc)) from None
    if len(data) > POINTER_MAX_BYTES:
        raise IndexCorruptError(pointer, f"over {POINTER_MAX_BYTES} bytes, too long to name a generation")
    try:
        name = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise IndexCorruptError(pointer, "not UTF-8 text") from None
    if (
        not name.startswith("gen-")
        or len(name) > GENERATION_NAME_MAX
        or any(ch in name for ch in "/\\\0")
        or not name.isprintable()
    ):
        raise IndexCorruptError(pointer, f"does not name a generation: {name[:60]!r}")
    gen = Path(index_dir) / name
    try:
        exists = stat.S_ISDIR(os.stat(gen).st_mode)
    except OSError:
        exists = False
    if not exists:
        raise IndexCorruptError(pointer, f"names {name}, which does not exist")
    return gen


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_manifest(path: Path, manifest: Any) -> None:
    """Types of the fields the rest of dsqa relies on, so that a hand-edited
    or garbled manifest is an ``IndexCorruptError``, not a ``KeyError``."""
    if not isinstance(manifest, dict) or not _is_int(manifest.get("format")):
        raise IndexCorruptError(path, "not a dsqa manifest")
    if manifest["format"] > FORMAT_VERSION:
        raise IndexCorruptError(
            path, f"written by a newer dsqa (index format {manifest['format']}, this dsqa reads {FORMAT_VERSION})"
        )
    for key in ("model", "chunking", "notes", "chunk_count"):
        if key not in manifest:
            raise IndexCorruptError(path, f"manifest lacks {key!r}")
    problem = _entry_problem(manifest)
    if problem:
        raise IndexCorruptError(path, problem)


def _entry_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with the type of one of the manifest's entries, or
    ``None``."""
    model = manifest["model"]
    if not (isinstance(model, dict) and isinstance(model.get("name"), str) and _is_int(model.get("dimension"))
            and model["dimension"] > 0):
        return "the model entry needs a name and a dimension"
    if not isinstance(manifest["chunking"], dict):
        return "the chunking entry is not a mapping"
    if not _is_int(manifest["chunk_count"]) or manifest["chunk_count"] < 0:
        return "chunk_count is not a count"
    notes = manifest["notes"]
    if not isinstance(notes, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("sha256"), str) and _is_int(e.get("chunks")) for e in notes.values()
    ):
        return "the notes entry needs a sha256 and a chunk count per note"
    if not isinstance(manifest.get("skipped", {}), dict):
        return "the skipped entry is not a mapping"
    files = manifest.get(FILES)
    if files is not None and not _files_entry_ok(files):
        return "the files entry needs a size and a checksum (crc32) per file"
    return None


def _files_entry_ok(files: Any) -> bool:
    return isinstance(files, dict) and all(
        isinstance(e, dict)
        and _is_int(e.get("size"))
        and any(isinstance(e.get(k), str) for k in _CHECKSUMS)
        and all(isinstance(e.get(k, ""), str) for k in _CHECKSUMS)
        for e in files.values()
    )


def read_manifest(index_dir: Path, gen: Path | None = None) -> dict[str, Any]:
    path = (gen or current_generation(index_dir)) / MANIFEST
    try:
        manifest = json.loads(_read_regular(path).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(path, _why(exc)) from None
    except RecursionError:  # nesting deeper than the JSON parser's recursion
        raise IndexCorruptError(path, "nested too deeply to be a dsqa manifest") from None
    _check_manifest(path, manifest)
    return manifest


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]


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


def _crc(data: bytes, crc: int = 0) -> int:
    return zlib.crc32(data, crc)


class _Checksums:
    """The checksums an entry of the manifest's ``files`` holds, computed
    over a file read in blocks."""

    def __init__(self, entry: dict[str, Any]):
        self.entry = entry
        self.crc = 0 if "crc32" in entry else None
        self.sha = hashlib.sha256() if "sha256" in entry else None

    def update(self, block: bytes) -> None:
        if self.crc is not None:
            self.crc = _crc(block, self.crc)
        if self.sha is not None:
            self.sha.update(block)

    def match(self) -> bool:
        return (self.crc is None or f"{self.crc:08x}" == self.entry["crc32"]) and (
            self.sha is None or self.sha.hexdigest() == self.entry["sha256"]
        )


#: The checksums a ``files`` entry may hold; dsqa writes ``crc32``.
_CHECKSUMS = ("crc32", "sha256")


def _entry(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "crc32": f"{_crc(data):08x}"}


def _verify(gen: Path, rel: str, files: dict[str, Any] | None, keep: bool = False) -> bytes | None:
    """Check one index file against the manifest's size and CRC-32, reading
    it in blocks (a big vectors file is never held twice); return its bytes
    when ``keep``. Indexes written before checksums were recorded are checked
    for existence here and by structure later."""
    path = gen / rel
    entry = files.get(rel) if files is not None else None
    if files is not None and entry is None:
        raise IndexCorruptError(path, "not listed in the manifest")
    try:
        with _open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if entry is not None and size != entry["size"]:
                raise IndexCorruptError(path, f"{size} bytes, the manifest says {entry['size']} (truncated or overwritten)")
            if entry is None and not keep:
                return None
            blocks, sums = [], _Checksums(entry or {})
            while block := fh.read(1 << 22):
                sums.update(block)
                if keep:
                    blocks.append(block)
    except OSError as exc:
        raise IndexCorruptError(path, _why(exc)) from None
    if not sums.match():
        raise IndexCorruptError(path, "contents do not match the checksum in the manifest (garbled)")
    return b"".join(blocks) if keep else None


def _npy(path: Path, dtype: Any, ncols: int) -> np.ndarray:
    """A 2-d ``.npy`` array of ``dtype``, never unpickled; the header is
    checked against the file size before anything is allocated."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dt = np.lib.format.read_array_header_1_0(fh)  # reads the header only
            elif version == (2, 0):
                shape, fortran, dt = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f".npy format version {version}, which dsqa does not write")
            if dt.hasobject:
                raise ValueError("holds Python objects, which dsqa never writes (and never unpickles)")
            if dt != np.dtype(dtype) or len(shape) != 2 or shape[1] != ncols or fortran:
                raise ValueError(f"holds a {dt} array of shape {shape}, expected (n, {ncols}) {np.dtype(dtype)}")
            size = os.fstat(fh.fileno()).st_size
            if fh.tell() + shape[0] * shape[1] * dt.itemsize != size:
                raise ValueError(f"{size} bytes do not hold a {shape[0]} x {shape[1]} array (truncated?)")
        return np.load(path, allow_pickle=False)
    except OSError as exc:
        raise IndexCorruptError(path, _why(exc)) from None
    except Exception as exc:  # anything numpy makes of garbage
        raise IndexCorruptError(path, _why(exc)) from None


def _load_generation(index_dir: Path, gen: Path) -> StoredIndex:
    manifest = read_manifest(index_dir, gen)
    files = manifest.get(FILES)
    chunks = _load_chunks(gen, files, manifest)
    windows = _load_windows(gen, files, chunks)
    vectors = _load_vectors(gen, files, manifest["model"]["dimension"], len(windows))
    faiss_index, distinct = _load_faiss(gen, files, manifest, vectors)
    lexical = _load_lexical(gen, files, len(chunks))
    return StoredIndex(gen, manifest, chunks, vectors, windows, faiss_index, lexical, distinct)


def _load_chunks(gen: Path, files: dict[str, Any] | None, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunk records, each well-formed, as many per note as the
    manifest lists."""
    chunks_path = gen / CHUNKS
    try:
        text = cast(bytes, _verify(gen, CHUNKS, files, keep=True)).decode("utf-8")
        chunks = [json.loads(line) for line in text.split("\n") if line.strip()]  # not splitlines: U+2028 is data
    except ValueError as exc:
        raise IndexCorruptError(chunks_path, _why(exc)) from None
    except RecursionError:
        raise IndexCorruptError(chunks_path, "a record is nested too deeply to be a chunk") from None
    for row, c in enumerate(chunks):
        problem = _chunk_problem(c)
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
    return chunks


def _load_windows(gen: Path, files: dict[str, Any] | None, chunks: list[dict[str, Any]]) -> np.ndarray:
    """The window table: every chunk has windows, in chunk order, each
    inside its chunk's text."""
    windows_path = gen / WINDOWS
    _verify(gen, WINDOWS, files)
    windows = _npy(windows_path, np.int32, 3)
    n, w = len(chunks), len(windows)
    if n and w:
        rows = windows[:, 0]
        if rows.min() < 0 or rows.max() >= n or np.any(np.diff(rows) < 0) or len(np.unique(rows)) != n:
            raise IndexCorruptError(windows_path, "the window table does not match the chunk records")
        lengths = np.array([len(c["text"]) for c in chunks], dtype=np.int64)[rows]
        starts, ends = windows[:, 1].astype(np.int64), windows[:, 2].astype(np.int64)
        whole = (starts == -1) & (ends == -1)
        inside = (starts >= 0) & (starts < ends) & (ends <= lengths)
        if not np.all(whole | inside):
            raise IndexCorruptError(windows_path, "a sentence window lies outside its chunk")
    elif n or w:
        raise IndexCorruptError(windows_path, f"{w} windows for {n} chunks")
    return windows


def _load_vectors(gen: Path, files: dict[str, Any] | None, dim: int, w: int) -> np.ndarray:
    """The vectors: one per window, finite numbers."""
    vectors_path = gen / VECTORS
    _verify(gen, VECTORS, files)
    vectors = _npy(vectors_path, np.float32, dim)
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
    import faiss

    dim, w = manifest["model"]["dimension"], len(vectors)
    faiss_path = gen / FAISS
    _verify(gen, FAISS, files)
    try:
        with open(faiss_path, "rb") as fh:
            fourcc, size = fh.read(4), os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise IndexCorruptError(faiss_path, _why(exc)) from None
    if manifest.get("index_type", "flat-ip") == "flat-ip" and (fourcc != b"IxFI" or size != _FLAT_HEADER + w * dim * 4):
        raise IndexCorruptError(faiss_path, f"not a flat index of {w} vectors of dimension {dim} ({size} bytes)")
    try:
        faiss_index = ann.prepare_for_search(faiss.read_index(str(faiss_path)))
    except Exception as exc:  # faiss raises RuntimeError, or MemoryError on a garbled size
        raise IndexCorruptError(faiss_path, _why(exc)) from None
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
    _verify(gen, ANN_ENTRIES, files)
    entry = _npy(path, np.int64, 1)[:, 0]
    if len(entry) != w:
        raise IndexCorruptError(path, f"{len(entry)} entries for {w} vectors")
    if w and (entry.min() < 0 or np.any(np.bincount(entry) == 0)):
        raise IndexCorruptError(path, "does not map the vectors onto entries 0, 1, 2, ... without gaps")
    return ann.Distinct(entry)


#: Bytes before the vectors in a FAISS IndexFlat file: fourcc, d, ntotal,
#: two unused counts, is_trained, metric type, then the length of the codes.
_FLAT_HEADER = 4 + 4 + 8 + 8 + 8 + 1 + 4 + 8


def _chunk_problem(c: Any) -> str | None:
    if not isinstance(c, dict):
        return "not a JSON object"
    missing = [f for f in CHUNK_FIELDS if f not in c]
    if missing:
        return f"lacks {', '.join(missing)}"
    if not all(isinstance(c[f], str) for f in ("source", "heading", "text", "key")):
        return "source, heading, text and key must be strings"
    if not all(_is_int(c[f]) for f in ("start_line", "end_line", "start_char", "end_char")):
        return "line and character positions must be whole numbers"
    if not (1 <= c["start_line"] <= c["end_line"] and 0 <= c["start_char"] <= c["end_char"]):
        return "its line or character range is reversed"
    for f in OPTIONAL_CHUNK_FIELDS:
        if f in c and not (_is_int(c[f]) and c[f] >= 1):
            return f"{f} must be a whole number from 1"
    return None


def _load_lexical(gen: Path, files: dict[str, Any] | None, n: int) -> LexicalIndex:
    """The BM25 index, checked so that no query can index past its arrays."""
    folder = gen / BM25
    for rel in files or {}:
        if rel.startswith(BM25 + "/"):
            _verify(gen, rel, files)
    try:
        lexical = LexicalIndex.load(folder)
    except Exception as exc:  # bm25s on garbage: JSON, numpy or constructor errors
        raise IndexCorruptError(folder, _why(exc)) from None
    problem = lexical.problem(n)
    if problem:
        raise IndexCorruptError(folder, problem)
    return lexical


def check_writable(index_dir: Path) -> None:
    """Raise ``OSError`` now if a new generation could not be written, before
    minutes of embedding are spent on it (root ignores permissions, so only
    trying tells)."""
    probe = Path(index_dir) / f".tmp-probe-{uuid.uuid4().hex[:8]}"
    probe.mkdir()
    probe.rmdir()


def _file_entry(path: Path) -> dict[str, Any]:
    """Size and CRC-32 of a file just written (read back in blocks), after
    flushing it to disk."""
    crc, size = 0, 0
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
        while block := fh.read(1 << 22):
            crc, size = _crc(block, crc), size + len(block)
    return {"size": size, "crc32": f"{crc:08x}"}


def write(
    index_dir: Path,
    manifest: dict[str, Any],
    chunks: list[dict[str, Any]],
    vectors: np.ndarray,
    windows: np.ndarray,
    faiss_index: Any,
    lexical: LexicalIndex,
    distinct: ann.Distinct | None = None,
) -> Path:
    """Write a new generation and make it live; return its folder.

    The manifest written gets a ``files`` entry: size and CRC-32 of every
    other file, so that a damaged file is caught on load and named.
    Must be called with the index lock held (see ``dsqa.indexing``).
    """
    import faiss

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    files: dict[str, Any] = {}

    def put(rel: str, data: bytes) -> None:
        _write_file(tmp / rel, data)
        files[rel] = _entry(data)

    def save_npy(rel: str, array: np.ndarray) -> None:
        with open(tmp / rel, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        files[rel] = _file_entry(tmp / rel)

    try:
        put(CHUNKS, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks).encode("utf-8"))
        save_npy(WINDOWS, np.ascontiguousarray(windows, dtype=np.int32))
        save_npy(VECTORS, np.ascontiguousarray(vectors, dtype=np.float32))
        faiss.write_index(faiss_index, str(tmp / FAISS))
        files[FAISS] = _file_entry(tmp / FAISS)
        if distinct is not None:
            save_npy(ANN_ENTRIES, distinct.entry_of_row.reshape(-1, 1))
        (tmp / BM25).mkdir()
        lexical.save(tmp / BM25)
        for path in sorted((tmp / BM25).iterdir()):
            files[f"{BM25}/{path.name}"] = _file_entry(path)
        _fsync_dir(tmp / BM25)
        # The manifest goes last: a generation folder with a manifest is complete.
        manifest = {**manifest, FILES: files}
        _write_file(tmp / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        _fsync_dir(tmp)
        gen = index_dir / name
        os.rename(tmp, gen)
        _fsync_dir(index_dir)
        # A failure from here on leaves at worst an unused generation or
        # pointer file, which the next writer's collect_garbage removes.
        pointer_tmp = index_dir / f".tmp-{POINTER}-{uuid.uuid4().hex[:8]}"
        _write_file(pointer_tmp, (name + "\n").encode("utf-8"))
        # The switch: before it readers get the old generation, after it the new one.
        os.replace(pointer_tmp, index_dir / POINTER)
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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
