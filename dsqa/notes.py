"""Loading notes from the corpus folder.

A notes folder is whatever a user keeps: exported pages, stray PDFs, editor
back-ups, files in other encodings. Loading therefore never fails because of one
file: anything that cannot be read (not UTF-8 text, a damaged or encrypted PDF,
a notebook that is not JSON) is skipped with a warning naming it and the
reason, and the rest is indexed. Each file's bytes are read here and handed to
the reader for its format (``dsqa.formats``).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import formats
from .errors import CorpusError, CorpusTooLargeError
from .formats import Layout

log = logging.getLogger("dsqa")

#: Markdown and text, PDF, saved web pages, Jupyter notebooks (see dsqa.formats).
NOTE_SUFFIXES = formats.SUFFIXES
#: A note bigger than this is almost certainly a data dump, not a note; it
#: would dominate the index and the embedding time.
MAX_NOTE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Note:
    """One note: its path relative to the corpus (POSIX form) and its text
    with line endings normalised to ``\\n`` (line numbers are unchanged).
    For a PDF, a web page or a notebook, the text its reader extracted, and
    how that text is cited (``layout``)."""

    source: str
    text: str
    sha256: str
    #: Size and modification time of the file as read (stat taken before
    #: reading, so an edit made meanwhile shows as a change next time).
    size: int = -1
    mtime_ns: int = -1
    #: Which reader made ``text`` ("markdown", "pdf", "html", "notebook").
    kind: str = "markdown"
    layout: Layout | None = None
    #: False when the text was not extracted because the caller said it has
    #: this version of the note already (``load_corpus(known=...)``).
    extracted: bool = True


@dataclass
class LoadedCorpus:
    notes: list[Note]
    #: (relative path, reason) for every candidate file that was not loaded.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: (relative path, what was left out of it), e.g. PDF pages with no text.
    warnings: list[tuple[str, str]] = field(default_factory=list)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_note(data: bytes) -> str:
    """Decode a note's bytes or raise ``ValueError`` saying why it is not text."""
    if b"\x00" in data:
        raise ValueError("binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


#: Kernel pseudo-filesystems: their entries are processes, devices and kernel
#: state, never notes, and /proc leads into every other process's folders.
#: They are never walked, even when asked to cross mount points.
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")

OUTSIDE = "symlink leads outside the corpus"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: What opening with O_NOFOLLOW gives for a symlink (EMLINK on FreeBSD), or
#: O_DIRECTORY for something else than a folder.
_SWAPPED = {errno.ELOOP, errno.EMLINK, errno.ENOTDIR}


def display_name(name: str) -> str:
    """``name`` as printable, JSON-safe text: the bytes of a file name that
    are not UTF-8 (which Python carries as lone surrogates) shown as ``\\xff``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_pseudo(real: str) -> bool:
    return any(real == p or real.startswith(p + "/") for p in PSEUDO_FILESYSTEMS)


def _device(path: str) -> int:
    """The filesystem (device) a folder is on: a folder on another one is a
    mount point."""
    return os.stat(path).st_dev


def iter_note_paths(
    corpus_dir: Path,
    passed: list[tuple[str, str]] | None = None,
    *,
    cross_mounts: bool = False,
    max_files: int | None = None,
    max_total_bytes: int | None = None,
    max_note_bytes: int = MAX_NOTE_BYTES,
) -> list[tuple[Path, str]]:
    """Candidate note files as (absolute path, relative POSIX path), sorted.

    Hidden files and folders are skipped, and so is anything reached through a
    symlink that leads outside the corpus: indexing must never read a file the
    user did not put in their notes folder. Also passed over: symlink loops,
    names that are not valid UTF-8 (they could not be cited, nor written to
    the index's JSON), kernel pseudo-filesystems (``PSEUDO_FILESYSTEMS``), and
    folders on another filesystem unless ``cross_mounts``. Each of these is
    appended to ``passed`` as (name, reason) when it is given, the name made
    printable by :func:`display_name`; :func:`load_corpus` warns about them, a
    mere check of the corpus does not.

    With ``max_files`` / ``max_total_bytes`` the walk stops with
    ``CorpusTooLargeError`` as soon as the candidates exceed either (only
    notes of at most ``max_note_bytes`` count towards the bytes: bigger ones
    are never read).
    """
    root = os.path.realpath(corpus_dir)
    if _is_pseudo(root):
        raise CorpusError(
            f"{corpus_dir} is on a kernel pseudo-filesystem ({root}), which holds no notes: "
            "point --corpus (or DSQA_CORPUS) at your notes folder"
        )
    root_path = Path(root)
    root_device = _device(root)

    pass_over = _recorder(passed)
    found: list[tuple[Path, str]] = []
    total_bytes = 0
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        rel_here = here.relative_to(root_path).as_posix()
        prefix = "" if rel_here == "." else rel_here + "/"
        if not _first_visit(dirpath, seen_dirs):
            dirnames[:] = []
            continue
        dirnames[:] = _folders_to_walk(dirpath, dirnames, prefix, root, root_device, cross_mounts, pass_over)
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(NOTE_SUFFIXES):
                continue
            path = here / name
            rel = prefix + name
            stat_result = _note_stat(path, name, rel, root_path, pass_over)
            if stat_result is None:
                continue
            found.append((path, rel))
            if stat_result.st_size <= max_note_bytes:
                total_bytes += stat_result.st_size
            _check_size(corpus_dir, len(found), total_bytes, max_files, max_total_bytes)
    return sorted(found, key=lambda pair: pair[1])


def _recorder(passed: list[tuple[str, str]] | None) -> Callable[[str, str], None]:
    """``pass_over(rel, why)``: appends (rel made printable, why) to
    ``passed`` when it is given, else does nothing."""

    def pass_over(rel: str, why: str) -> None:
        if passed is not None:
            passed.append((display_name(rel), why))

    return pass_over


def _first_visit(dirpath: str, seen_dirs: set[str]) -> bool:
    """Whether the walk goes into the folder at ``dirpath``: not when it can
    no longer be resolved, nor when its real path was walked already (a
    symlink loop, or two links to one folder); records it in ``seen_dirs``."""
    try:
        real_here = os.path.realpath(dirpath, strict=True)
    except OSError:
        return False
    if real_here in seen_dirs:
        return False
    seen_dirs.add(real_here)
    return True


def _folders_to_walk(
    dirpath: str,
    dirnames: list[str],
    prefix: str,
    root: str,
    root_device: int,
    cross_mounts: bool,
    pass_over: Callable[[str, str], None],
) -> list[str]:
    """The sub-folders of ``dirpath`` the walk goes into, sorted: not hidden
    ones, and not those :func:`_folder_problem` refuses (passed over)."""
    keep = []
    for name in sorted(dirnames):
        if name.startswith("."):
            continue
        rel = prefix + name + "/"
        why = _folder_problem(os.path.join(dirpath, name), root, root_device, cross_mounts, name)
        if why:
            pass_over(rel, why)
        else:
            keep.append(name)
    return keep


def _note_stat(
    path: Path, name: str, rel: str, root_path: Path, pass_over: Callable[[str, str], None]
) -> os.stat_result | None:
    """The ``stat`` of the candidate note at ``path`` (what its symlinks lead
    to), or ``None`` when it is no note: a name that is not UTF-8, a symlink
    loop or one leading outside the corpus (passed over), a dangling symlink
    or a file gone meanwhile, or not a regular file."""
    if not _is_utf8(name):
        pass_over(rel, "file name is not valid UTF-8 (rename the file)")
        return None
    try:
        real = os.path.realpath(path, strict=True)
        stat_result = os.stat(real)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            pass_over(rel, "symlink loop")
        elif exc.errno != errno.ENOENT:  # a dangling symlink, or a file gone meanwhile
            pass_over(rel, exc.strerror or str(exc))
        return None
    if not Path(real).is_relative_to(root_path):
        pass_over(rel, OUTSIDE)
        return None
    if not stat.S_ISREG(stat_result.st_mode):
        return None
    return stat_result


def _folder_problem(path: str, root: str, root_device: int, cross_mounts: bool, name: str) -> str | None:
    """Why the folder at ``path`` is not walked, or ``None``."""
    if not _is_utf8(name):
        return "folder name is not valid UTF-8 (rename the folder)"
    try:
        real = os.path.realpath(path, strict=True)
        device = _device(real)
    except OSError as exc:
        return "symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
    if not Path(real).is_relative_to(root):
        return OUTSIDE
    if _is_pseudo(real):
        return "kernel pseudo-filesystem, never indexed"
    if device != root_device and not cross_mounts:
        return "on another filesystem (a mount point); cross_mounts (--cross-mounts) includes it"
    return None


def _check_size(corpus_dir: Path, files: int, total: int, max_files: int | None, max_total: int | None) -> None:
    if max_files is not None and files > max_files:
        what = f"more than {max_files:,} note files (Settings.max_corpus_files)"
    elif max_total is not None and total > max_total:
        what = f"more than {max_total / 1e6:,.0f} MB of notes (Settings.max_corpus_bytes)"
    else:
        return
    raise CorpusTooLargeError(
        f"the corpus {corpus_dir} holds {what}: check that --corpus is your notes folder, or index it "
        "anyway with `dsqa reindex --yes` (in Python: Settings(allow_large_corpus=True))"
    )


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


def load_corpus(
    corpus_dir: Path,
    max_bytes: int = MAX_NOTE_BYTES,
    *,
    cross_mounts: bool = False,
    max_files: int | None = None,
    max_total_bytes: int | None = None,
    known: dict[str, str] | None = None,
) -> LoadedCorpus:
    """Read every note under ``corpus_dir``; raise ``CorpusError`` only when
    there is no folder or nothing in it can be indexed, and
    ``CorpusTooLargeError`` (before reading any note) when it holds more
    than ``max_files`` notes or ``max_total_bytes``.

    ``known`` maps notes to the content hash of a version the caller has
    already chunked (an index's manifest): a note whose bytes still hash the
    same is returned with ``extracted=False`` and no text, since extracting
    a PDF's text costs far more than hashing it."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist (set --corpus or DSQA_CORPUS)")
    result = LoadedCorpus(notes=[])
    passed: list[tuple[str, str]] = []
    paths = iter_note_paths(
        corpus_dir,
        passed,
        cross_mounts=cross_mounts,
        max_files=max_files,
        max_total_bytes=max_total_bytes,
        max_note_bytes=max_bytes,
    )
    for rel, why in sorted(passed):
        log.warning("skipped %s: %s", rel, why)
        result.skipped.append((rel, why))
    for _path, rel in paths:
        try:
            data, stat_result = read_corpus_file(corpus_dir, rel, max_bytes)
            digest = content_hash(data)
            if known is not None and known.get(rel) == digest:
                result.notes.append(
                    Note(rel, "", digest, stat_result.st_size, stat_result.st_mtime_ns, formats.reader_for(rel).kind,
                         extracted=False)
                )
                continue
            extracted = formats.read(rel, data)
            text = extracted.text
        except (OSError, ValueError) as exc:
            why = str(exc) if isinstance(exc, ValueError) else (exc.strerror or str(exc))
            log.warning("skipped %s: %s", rel, why)
            result.skipped.append((rel, why))
            continue
        if not text.strip():
            log.warning("skipped %s: empty note", rel)
            result.skipped.append((rel, "empty note"))
            continue
        for warning in extracted.warnings:
            log.warning("%s: %s", rel, warning)
            result.warnings.append((rel, warning))
        result.notes.append(
            Note(
                source=rel,
                text=text,
                sha256=digest,
                size=stat_result.st_size,
                mtime_ns=stat_result.st_mtime_ns,
                kind=formats.reader_for(rel).kind,
                layout=extracted.layout,
            )
        )
    if not result.notes:
        why = f" ({len(result.skipped)} files skipped)" if result.skipped else ""
        raise CorpusError(
            f"no notes to index in {corpus_dir}{why}: add {', '.join(NOTE_SUFFIXES)} files and run `dsqa reindex`"
        )
    return result
