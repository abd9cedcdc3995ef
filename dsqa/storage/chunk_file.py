"""``chunks.jsonl`` read one record at a time: a question reads the few
chunks it ranks, not the whole file.

:class:`ChunkFile` is the chunk list of a loaded generation whose files are
checked by their checksums (see :mod:`dsqa.storage.generations`): the file
is memory-mapped and a record is parsed, and checked for its fields, when
it is first asked for. :class:`ChunkWriter` appends records to a new
generation's file as a reindex makes them, so that no list of every chunk
is held while the index is built.
"""

from __future__ import annotations

import json
import mmap
import re
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from ..errors import IndexCorruptError
from .manifest import is_int
from .records import CHUNK_FIELDS, OPTIONAL_CHUNK_FIELDS, ChunkRecord

#: The ``key`` field of a record as :func:`record_line` writes it. Inside a
#: JSON string every quote is escaped, so these bytes occur only where a
#: record's own ``key`` field is.
_KEY_FIELD = re.compile(rb'"key": "((?:[^"\\]|\\.)*)"')
#: Bytes copied at a time between chunk files.
COPY_BLOCK = 1 << 22

#: Parsed records a :class:`ChunkFile` keeps (a question re-reads the
#: chunks it ranks while it scores, quotes and cites them).
KEPT_RECORDS = 4096


def chunk_problem(c: Any) -> str | None:
    """What makes a parsed ``chunks.jsonl`` line not a chunk record, or ``None``."""
    if not isinstance(c, dict):
        return "not a JSON object"
    missing = [f for f in CHUNK_FIELDS if f not in c]
    if missing:
        return f"lacks {', '.join(missing)}"
    if not all(isinstance(c[f], str) for f in ("source", "heading", "text", "key")):
        return "source, heading, text and key must be strings"
    if not all(is_int(c[f]) for f in ("start_line", "end_line", "start_char", "end_char")):
        return "line and character positions must be whole numbers"
    if not (1 <= c["start_line"] <= c["end_line"] and 0 <= c["start_char"] <= c["end_char"]):
        return "its line or character range is reversed"
    for f in OPTIONAL_CHUNK_FIELDS:
        if f in c and not (is_int(c[f]) and c[f] >= 1):
            return f"{f} must be a whole number from 1"
    return None


#: How a line that :func:`record_line` wrote starts: its source, a JSON string.
_SOURCE_FIELD = re.compile(rb'\{"source": ("(?:[^"\\\n]|\\.)*")')


def record_line(record: ChunkRecord) -> bytes:
    """One line of ``chunks.jsonl``."""
    return (json.dumps(record.to_json(), ensure_ascii=False) + "\n").encode("utf-8")


class LineEnds:
    """The start of each line of a file read block by block (fed to
    :meth:`update`): ``offsets()`` holds one more than there are lines,
    the last one the file's size."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        self.size = 0

    def update(self, block: bytes) -> None:
        ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
        self._parts.append(ends.astype(np.int64) + (self.size + 1))
        self.size += len(block)

    def offsets(self) -> np.ndarray:
        return np.concatenate(self._parts)


class ChunkFile(Sequence[ChunkRecord]):
    """The records of a ``chunks.jsonl`` whose line ``r`` is bytes
    ``offsets[r]:offsets[r + 1]``, parsed when asked for. A record that is
    not well formed is an ``IndexCorruptError`` naming the file when it is
    read. The file stays readable while this object lives, even after a
    writer has removed its generation (the map holds it)."""

    def __init__(self, path: Path, offsets: np.ndarray):
        self.path = Path(path)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._map: mmap.mmap | None = None
        if len(self._offsets) > 1 and self._offsets[-1] > 0:
            with open(self.path, "rb") as fh:
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            if len(self._map) < self._offsets[-1]:
                raise IndexCorruptError(self.path, f"{len(self._map)} bytes, its records need {self._offsets[-1]}")
        self._kept: dict[int, ChunkRecord] = {}
        #: Each row's source (see :meth:`rows_of`), read when first asked for.
        self._sources: tuple[list[str], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, key: int) -> ChunkRecord: ...

    @overload
    def __getitem__(self, key: slice) -> list[ChunkRecord]: ...

    def __getitem__(self, key: int | slice) -> ChunkRecord | list[ChunkRecord]:
        if isinstance(key, slice):
            return [self._record(r) for r in range(*key.indices(len(self)))]
        row = int(key)
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"chunk {key} of {len(self)}")
        record = self._kept.get(row)
        if record is None:
            if len(self._kept) >= KEPT_RECORDS:
                self._kept.clear()
            record = self._kept[row] = self._record(row)
        return record

    def __iter__(self) -> Iterator[ChunkRecord]:
        for row in range(len(self)):
            yield self._record(row)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def rows_of(self, sources: Collection[str]) -> list[int]:
        """The rows whose record's source is one of ``sources``. Each row's
        source is read once, from its line's leading source field instead
        of parsing the record (a line that does not start with it is parsed
        whole), and kept as a number per row for the next call."""
        if self._sources is None:
            self._sources = self._row_sources()
        names, of_row = self._sources
        wanted = [i for i, name in enumerate(names) if name in sources]
        return np.flatnonzero(np.isin(of_row, wanted)).tolist() if wanted else []

    def _row_sources(self) -> tuple[list[str], np.ndarray]:
        """The distinct sources, and for each row the index of its own."""
        ids: dict[bytes, int] = {}  # a source's JSON string -> its index in names
        names: list[str] = []
        of_row = np.zeros(len(self), dtype=np.int32)
        for row in range(len(self)):
            start, end = int(self._offsets[row]), int(self._offsets[row + 1])
            match = _SOURCE_FIELD.match(self._map, start, end) if self._map is not None else None
            literal = match.group(1) if match is not None else None
            if literal is None or literal not in ids:
                try:
                    name = json.loads(literal) if literal is not None else self[row].source
                except ValueError:
                    name = self[row].source  # raises IndexCorruptError naming the file
                key = literal if literal is not None else json.dumps(name, ensure_ascii=False).encode()
                if key not in ids:
                    ids[key] = len(names)
                    names.append(name)
                literal = key
            of_row[row] = ids[literal]
        return names, of_row

    def lines(self, start: int, end: int) -> Iterator[memoryview]:
        """The bytes of records ``start:end`` as the file holds them (every
        line whole, newline included), a block at a time, unparsed."""
        if start >= end:
            return
        assert self._map is not None
        view = memoryview(self._map)
        first, last = int(self._offsets[start]), int(self._offsets[end])
        for at in range(first, last, COPY_BLOCK):
            yield view[at : min(last, at + COPY_BLOCK)]

    def byte_offsets(self, start: int, end: int) -> np.ndarray:
        """Where records ``start`` to ``end`` (included) begin in the file."""
        return self._offsets[start : end + 1]

    def key_rows(self) -> dict[str, int]:
        """The first row holding each chunk key, found by scanning the
        file's bytes for the ``key`` fields, without parsing any record.
        What a row found here holds is checked when it is read."""
        rows: dict[str, int] = {}
        if self._map is None:
            return rows
        found = [(m.start(), m.group(1)) for m in _KEY_FIELD.finditer(self._map)]
        starts = np.fromiter((at for at, _ in found), dtype=np.int64, count=len(found))
        row_of = np.searchsorted(self._offsets, starts, side="right") - 1
        for (_, raw), row in zip(found, row_of.tolist(), strict=True):
            key = raw.decode("utf-8") if b"\\" not in raw else json.loads(b'"' + raw + b'"')
            rows.setdefault(key, row)
        return rows

    def _record(self, row: int) -> ChunkRecord:
        assert self._map is not None
        line = self._map[int(self._offsets[row]) : int(self._offsets[row + 1])]
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise IndexCorruptError(self.path, f"record {row + 1}: {exc}") from None
        except RecursionError:
            raise IndexCorruptError(self.path, f"record {row + 1} is nested too deeply to be a chunk") from None
        problem = chunk_problem(data)
        if problem:
            raise IndexCorruptError(self.path, f"record {row + 1}: {problem}")
        return ChunkRecord.from_json(data)


class ChunkWriter:
    """A new ``chunks.jsonl``, appended to a record at a time; it knows where
    each line starts, so the file can be read back (:meth:`reader`) before
    it is complete."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self._offsets = array("q", [0])

    def add(self, records: Iterable[ChunkRecord]) -> None:
        for record in records:
            line = record_line(record)
            self._fh.write(line)
            self._offsets.append(self._offsets[-1] + len(line))

    def copy(self, source: Sequence[ChunkRecord], start: int, end: int) -> None:
        """Append records ``start:end`` of ``source``: as bytes when it is a
        :class:`ChunkFile` (their lines as its file holds them, which are
        the lines :func:`record_line` wrote), else written anew."""
        if not isinstance(source, ChunkFile):
            self.add(source[r] for r in range(start, end))
            return
        for block in source.lines(start, end):
            self._fh.write(block)
        offsets = source.byte_offsets(start, end)
        self._offsets.frombytes((offsets[1:] - offsets[0] + self._offsets[-1]).astype(np.int64).tobytes())

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def reader(self) -> ChunkFile:
        """The records written so far."""
        self._fh.flush()
        return ChunkFile(self.path, np.frombuffer(self._offsets, dtype=np.int64).copy())

    def close(self) -> None:
        self._fh.close()
