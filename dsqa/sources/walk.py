"""The folder walk: which files under the corpus folder are candidate notes.

Hidden files and folders, symlinks that lead outside the corpus, symlink
loops, names that are not UTF-8, kernel pseudo-filesystems and (unless asked)
other filesystems are passed over, each with the reason.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from ..errors import CorpusError, CorpusTooLargeError
from . import formats
from .reading import MAX_NOTE_BYTES, OUTSIDE

#: Markdown and text, PDF, saved web pages, Jupyter notebooks (see dsqa.sources.formats).
NOTE_SUFFIXES = formats.SUFFIXES


#: Kernel pseudo-filesystems: their entries are processes, devices and kernel
#: state, never notes, and /proc leads into every other process's folders.
#: They are never walked, even when asked to cross mount points.
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")


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


def refuse_whole_machine(corpus_dir: Path) -> None:
    """``CorpusTooLargeError`` when ``corpus_dir`` is the root of the
    filesystem, or the user's home folder as a whole (or a folder holding
    it): either would read every note-like file of the machine or of the
    user, which is never a notes folder given on purpose and can stay under
    the size limits (a machine's root held 10,982 such files, 190 MB)."""
    real = Path(os.path.realpath(corpus_dir))
    try:
        home = Path(os.path.realpath(Path.home()))
    except (RuntimeError, KeyError, OSError):  # no home folder known
        home = None
    if real.parent == real:
        what = "is the root of the filesystem: dsqa would read every note-like file on this machine"
    elif home is not None and home.is_relative_to(real):
        what = ("is your home folder as a whole" if home == real else f"holds your home folder ({home})") + (
            ": dsqa would read every note-like file you have (downloads, caches, other programs' files)"
        )
    else:
        return
    raise CorpusTooLargeError(
        f"the corpus {corpus_dir} {what}. Point --corpus (or DSQA_CORPUS) at your notes folder, "
        "or index it anyway with `dsqa reindex --yes` (in Python: Settings(allow_large_corpus=True))"
    )


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
        real_here = _first_visit(dirpath, seen_dirs)
        if real_here is None:
            dirnames[:] = []
            continue
        dirnames[:] = _folders_to_walk(dirpath, dirnames, prefix, root, root_device, cross_mounts, pass_over)
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(NOTE_SUFFIXES):
                continue
            path = here / name
            rel = prefix + name
            stat_result = _note_stat(path, name, rel, root_path, pass_over, real_here)
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


def _first_visit(dirpath: str, seen_dirs: set[str]) -> str | None:
    """The real path of the folder at ``dirpath`` if the walk goes into it:
    ``None`` when it can no longer be resolved, or when its real path was
    walked already (a symlink loop, or two links to one folder); records it
    in ``seen_dirs``."""
    try:
        real_here = os.path.realpath(dirpath, strict=True)
    except OSError:
        return None
    if real_here in seen_dirs:
        return None
    seen_dirs.add(real_here)
    return real_here


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
    path: Path, name: str, rel: str, root_path: Path, pass_over: Callable[[str, str], None], real_dir: str
) -> os.stat_result | None:
    """The ``stat`` of the candidate note at ``path`` (what its symlinks lead
    to), or ``None`` when it is no note: a name that is not UTF-8, a symlink
    loop or one leading outside the corpus (passed over), a dangling symlink
    or a file gone meanwhile, or not a regular file. ``real_dir`` is the
    real path of its folder: a note that is no symlink is resolved by it,
    without a lookup per folder of its path."""
    if not _is_utf8(name):
        pass_over(rel, "file name is not valid UTF-8 (rename the file)")
        return None
    try:
        stat_result = os.lstat(path)
        if stat.S_ISLNK(stat_result.st_mode):
            real = os.path.realpath(path, strict=True)
            stat_result = os.stat(real)
        else:
            real = os.path.join(real_dir, name)
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
