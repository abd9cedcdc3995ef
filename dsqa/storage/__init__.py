"""The index on disk (see :mod:`dsqa.storage.generations` for its layout).

:mod:`~dsqa.storage.files` holds the safe file I/O (atomic writes, reads of
regular files only, checksums), :mod:`~dsqa.storage.manifest` the file names,
the ``CURRENT`` pointer and the manifest's checks,
:mod:`~dsqa.storage.generations` loading and writing a whole generation;
:mod:`~dsqa.storage.ann` is the vector index and :mod:`~dsqa.storage.lexical`
the keyword index. What the rest of dsqa uses is exported here.
"""

from __future__ import annotations

from .chunk_file import ChunkFile
from .files import check_writable
from .generations import (
    GenerationWriter,
    StoredIndex,
    collect_garbage,
    load,
    write,
)
from .manifest import (
    ANN_ENTRIES,
    BM25,
    CHUNKS,
    FAISS,
    FILES,
    FORMAT_VERSION,
    MANIFEST,
    POINTER,
    READABLE_FORMATS,
    VECTORS,
    WINDOWS,
    current_generation,
    read_manifest,
)
from .records import CHUNK_FIELDS, OPTIONAL_CHUNK_FIELDS, ChunkRecord

__all__ = [
    "ANN_ENTRIES",
    "BM25",
    "CHUNKS",
    "CHUNK_FIELDS",
    "ChunkFile",
    "ChunkRecord",
    "FAISS",
    "FILES",
    "FORMAT_VERSION",
    "GenerationWriter",
    "MANIFEST",
    "OPTIONAL_CHUNK_FIELDS",
    "POINTER",
    "READABLE_FORMATS",
    "StoredIndex",
    "VECTORS",
    "WINDOWS",
    "check_writable",
    "collect_garbage",
    "current_generation",
    "load",
    "read_manifest",
    "write",
]
