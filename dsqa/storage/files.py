"""Safe file I/O for the index folder: writes flushed to disk, reads that
refuse anything but a regular file, and the size and checksum of every file
a generation holds, checked block by block on load.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError


def fsync_dir(path: Path) -> None:
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


def write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


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


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`_open_regular`),
    at most ``limit`` + 1 of them when a limit is given."""
    with _open_regular(path) as fh:
        return fh.read() if limit is None else fh.read(limit + 1)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]


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
CHECKSUMS = ("crc32", "sha256")


def data_entry(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "crc32": f"{_crc(data):08x}"}


def verify(
    gen: Path, rel: str, files: dict[str, Any] | None, keep: bool = False, scan: Callable[[bytes], None] | None = None
) -> bytes | None:
    """Check one index file against the manifest's size and CRC-32, reading
    it in blocks (a big vectors file is never held twice); return its bytes
    when ``keep``, and hand each block to ``scan`` when given. Indexes
    written before checksums were recorded are checked for existence here
    and by structure later."""
    path = gen / rel
    entry = files.get(rel) if files is not None else None
    if files is not None and entry is None:
        raise IndexCorruptError(path, "not listed in the manifest")
    try:
        with _open_regular(path) as fh:
            st = os.fstat(fh.fileno())
            size = st.st_size
            if entry is not None and size != entry["size"]:
                raise IndexCorruptError(path, f"{size} bytes, the manifest says {entry['size']} (truncated or overwritten)")
            if not keep and scan is None and (entry is None or entry.get("stat") == stat_identity(st)):
                return None  # no checksum to check, or the very file its writer checksummed
            blocks, sums = [], _Checksums(entry or {})
            while block := fh.read(1 << 22):
                sums.update(block)
                if scan is not None:
                    scan(block)
                if keep:
                    blocks.append(block)
    except OSError as exc:
        raise IndexCorruptError(path, describe_error(exc)) from None
    if not sums.match():
        raise IndexCorruptError(path, "contents do not match the checksum in the manifest (garbled)")
    return b"".join(blocks) if keep else None


def stat_identity(st: os.stat_result) -> list[int]:
    """What tells a file from any other version of it: inode, modification
    and change times (see ``manifest.STAT``)."""
    return [st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def read_npy(path: Path, dtype: Any, ncols: int) -> np.ndarray:
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
        raise IndexCorruptError(path, describe_error(exc)) from None
    except Exception as exc:  # anything numpy makes of garbage
        raise IndexCorruptError(path, describe_error(exc)) from None


def check_writable(index_dir: Path) -> None:
    """Raise ``OSError`` now if a new generation could not be written, before
    minutes of embedding are spent on it (root ignores permissions, so only
    trying tells)."""
    probe = Path(index_dir) / f".tmp-probe-{uuid.uuid4().hex[:8]}"
    probe.mkdir()
    probe.rmdir()


def file_entry(path: Path) -> dict[str, Any]:
    """Size and CRC-32 of a file just written (read back in blocks), after
    flushing it to disk."""
    crc, size = 0, 0
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
        while block := fh.read(1 << 22):
            crc, size = _crc(block, crc), size + len(block)
    return {"size": size, "crc32": f"{crc:08x}"}
