"""The safe read: the bytes of one corpus file, opened so that nothing
outside the corpus folder is ever read, and no FIFO or device hangs or feeds
the reader. Every read of a corpus file goes through :func:`read_corpus_file`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

#: A note bigger than this is almost certainly a data dump, not a note; it
#: would dominate the index and the embedding time.
MAX_NOTE_BYTES = 20 * 1024 * 1024


OUTSIDE = "symlink leads outside the corpus"


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


#: What opening with O_NOFOLLOW gives for a symlink (EMLINK on FreeBSD), or
#: O_DIRECTORY for something else than a folder.
_SWAPPED = {errno.ELOOP, errno.EMLINK, errno.ENOTDIR}


def read_corpus_file(corpus_dir: Path, rel: str, max_bytes: int = MAX_NOTE_BYTES) -> tuple[bytes, os.stat_result]:
    """The bytes of the corpus file ``rel`` and the ``fstat`` of what was
    read; every read of a corpus file goes through here.

    The file must be a regular file inside the corpus when it is opened, not
    only when it was listed (a symlink swapped in between must not make dsqa
    read a file outside). So: resolve the path (symlinks inside the corpus are
    allowed), check that it lies inside the corpus, then open the corpus
    folder and walk the resolved path down from it one component at a time
    with ``O_NOFOLLOW`` (``O_DIRECTORY`` for folders): each component is then
    the real folder or file named, never a symlink put there after the
    check, so what is opened lies inside the corpus. The file is opened with
    ``O_NONBLOCK`` (a FIFO does not hang the open) and refused unless
    ``fstat`` of the open descriptor says it is a regular file; the bytes are
    read from that descriptor, at most ``max_bytes``.

    Raises ``OSError`` when it cannot be read and ``ValueError`` saying why
    it is refused.
    """
    root = os.path.realpath(corpus_dir)
    try:
        real = os.path.realpath(os.path.join(root, rel), strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("symlink loop") from None
        raise
    inner = os.path.relpath(real, root)
    parts = inner.split(os.sep)
    if inner == os.curdir or os.pardir in parts or os.path.isabs(inner):
        raise ValueError(OUTSIDE)
    fd_file = _open_inside(root, parts, real)
    with os.fdopen(fd_file, "rb") as fh:
        stat_result = os.fstat(fh.fileno())
        if not stat.S_ISREG(stat_result.st_mode):
            raise ValueError("not a regular file")
        if stat_result.st_size > max_bytes:
            raise ValueError(f"too large ({stat_result.st_size / 1e6:.1f} MB, limit {max_bytes / 1e6:.0f} MB)")
        data = fh.read(max_bytes + 1)  # it may have grown since
    if len(data) > max_bytes:
        raise ValueError(f"too large (over the {max_bytes / 1e6:.0f} MB limit)")
    return data, stat_result


def _open_inside(root: str, parts: list[str], real: str) -> int:
    """A read-only, non-blocking descriptor of the file ``real``, opened by
    walking ``parts`` (its path relative to ``root``) down from ``root`` with
    ``O_NOFOLLOW`` (see :func:`read_corpus_file`). Raises ``ValueError`` when
    a component turns out to be a symlink or not a folder, else ``OSError``."""
    file_flags = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
    try:
        if os.open in os.supports_dir_fd:
            fd = os.open(root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
            try:
                for part in parts[:-1]:
                    child = os.open(part, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=fd)
                    os.close(fd)
                    fd = child
                fd_file = os.open(parts[-1], file_flags, dir_fd=fd)
            finally:
                os.close(fd)
        else:  # no openat (Windows): the last component alone is checked
            fd_file = os.open(real, file_flags)
    except OSError as exc:
        if exc.errno in _SWAPPED:
            raise ValueError("changed while being read (a symlink or another file was put on its path)") from None
        raise
    return fd_file
