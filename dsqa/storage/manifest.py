"""What a generation holds and which one is live: the names of its files,
the ``CURRENT`` pointer, and the manifest, read and checked field by field.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from ..errors import IndexCorruptError, IndexMissingError, IndexNotAFolderError
from .files import CHECKSUMS, describe_error, read_regular

FORMAT_VERSION = 4


#: Formats this dsqa reads. Format 4 keeps the vectors only in the FAISS
#: index, as codes, and adds the term counts to bm25/. Formats 2 and 3 hold
#: float32 vectors.npy beside a FAISS index (3 added ann_entries.npy); they
#: are read as they are, and the next reindex writes format 4 reusing their
#: vectors (no note is embedded again).
READABLE_FORMATS = (2, 3, 4)


POINTER = "CURRENT"


MANIFEST = "manifest.json"


CHUNKS = "chunks.jsonl"


#: Formats 2 and 3 only: the float32 vectors beside the FAISS index.
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


#: Key of a ``files`` entry: the file's inode, modification and change
#: times (nanoseconds) when its writer had checksummed it. A reader finding
#: the file with the same size and these three unchanged knows it is the
#: file that was checksummed, and does not read it again for its CRC: any
#: write, truncation or replacement through the filesystem changes its
#: change time (which no program can set back) or its inode. A copied index
#: (new inodes) is checked by its CRCs once per load, as before.
STAT = "stat"


#: ``CURRENT`` is read no further than this: a generation's name is short
#: (the writer's are about 30 characters).
POINTER_MAX_BYTES = 256


GENERATION_NAME_MAX = 128


def current_generation(index_dir: Path) -> Path:
    """The live generation folder, or ``IndexMissingError``."""
    pointer = Path(index_dir) / POINTER
    try:
        data = read_regular(pointer, POINTER_MAX_BYTES)
    except FileNotFoundError:
        raise IndexMissingError(index_dir) from None
    except NotADirectoryError:
        raise IndexNotAFolderError(index_dir) from None
    except OSError as exc:
        raise IndexCorruptError(pointer, describe_error(exc)) from None
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


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_manifest(path: Path, manifest: Any) -> None:
    """Types of the fields the rest of dsqa relies on, so that a hand-edited
    or garbled manifest is an ``IndexCorruptError``, not a ``KeyError``."""
    if not isinstance(manifest, dict) or not is_int(manifest.get("format")):
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
    if not (isinstance(model, dict) and isinstance(model.get("name"), str) and is_int(model.get("dimension"))
            and model["dimension"] > 0):
        return "the model entry needs a name and a dimension"
    if not isinstance(manifest["chunking"], dict):
        return "the chunking entry is not a mapping"
    if not is_int(manifest["chunk_count"]) or manifest["chunk_count"] < 0:
        return "chunk_count is not a count"
    notes = manifest["notes"]
    if not isinstance(notes, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("sha256"), str) and is_int(e.get("chunks")) for e in notes.values()
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
        and is_int(e.get("size"))
        and any(isinstance(e.get(k), str) for k in CHECKSUMS)
        and all(isinstance(e.get(k, ""), str) for k in CHECKSUMS)
        for e in files.values()
    )


def read_manifest(index_dir: Path, gen: Path | None = None) -> dict[str, Any]:
    path = (gen or current_generation(index_dir)) / MANIFEST
    try:
        manifest = json.loads(read_regular(path).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(path, describe_error(exc)) from None
    except RecursionError:  # nesting deeper than the JSON parser's recursion
        raise IndexCorruptError(path, "nested too deeply to be a dsqa manifest") from None
    _check_manifest(path, manifest)
    return manifest
