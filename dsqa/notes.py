"""Loading notes from the corpus folder.

A notes folder is whatever a user keeps: exported pages, stray PDFs, editor
back-ups, files in other encodings. Loading therefore never fails because of one
file: anything that is not UTF-8 text is skipped with a warning naming it, and
the rest is indexed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorpusError

log = logging.getLogger("dsqa")

NOTE_SUFFIXES = (".md", ".markdown", ".txt")
#: A note bigger than this is almost certainly a data dump, not a note; it
#: would dominate the index and the embedding time.
MAX_NOTE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Note:
    """One note: its path relative to the corpus (POSIX form) and its text
    with line endings normalised to ``\\n`` (line numbers are unchanged)."""

    source: str
    text: str
    sha256: str
    #: Size and modification time of the file as read (stat taken before
    #: reading, so an edit made meanwhile shows as a change next time).
    size: int = -1
    mtime_ns: int = -1


@dataclass
class LoadedCorpus:
    notes: list[Note]
    #: (relative path, reason) for every candidate file that was not loaded.
    skipped: list[tuple[str, str]] = field(default_factory=list)


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


def iter_note_paths(corpus_dir: Path, outside: list[str] | None = None) -> list[tuple[Path, str]]:
    """Candidate note files as (absolute path, relative POSIX path), sorted.

    Hidden files and folders are skipped, and so is anything reached through a
    symlink that leads outside the corpus: indexing must never read a file the
    user did not put in their notes folder. The relative paths of such
    symlinks (files and folders) are appended to ``outside`` when it is given;
    :func:`load_corpus` warns about them, a mere check of the corpus does not.
    """
    root = corpus_dir.resolve()
    found: list[tuple[Path, str]] = []
    seen_dirs: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real = here.resolve()
        if not real.is_relative_to(root):
            if outside is not None:
                outside.append(here.relative_to(root).as_posix() + "/")
            dirnames[:] = []
            continue
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(NOTE_SUFFIXES):
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            if not path.resolve().is_relative_to(root):
                if outside is not None:
                    outside.append(rel)
                continue
            if path.is_file():
                found.append((path, rel))
    return sorted(found, key=lambda pair: pair[1])


def load_corpus(corpus_dir: Path, max_bytes: int = MAX_NOTE_BYTES) -> LoadedCorpus:
    """Read every note under ``corpus_dir``; raise ``CorpusError`` only when
    there is no folder or nothing in it can be indexed."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist (set --corpus or DSQA_CORPUS)")
    result = LoadedCorpus(notes=[])
    outside: list[str] = []
    paths = iter_note_paths(corpus_dir, outside)
    for rel in sorted(outside):
        log.warning("skipped %s: symlink leads outside the corpus", rel)
        result.skipped.append((rel, "symlink leads outside the corpus"))
    for path, rel in paths:
        try:
            with open(path, "rb") as fh:
                stat = os.fstat(fh.fileno())
                if stat.st_size > max_bytes:
                    raise ValueError(f"too large ({stat.st_size / 1e6:.1f} MB, limit {max_bytes / 1e6:.0f} MB)")
                data = fh.read(max_bytes + 1)  # it may have grown since
            if len(data) > max_bytes:
                raise ValueError(f"too large (over the {max_bytes / 1e6:.0f} MB limit)")
            text = decode_note(data)
        except (OSError, ValueError) as exc:
            log.warning("skipped %s: %s", rel, exc)
            result.skipped.append((rel, str(exc)))
            continue
        if not text.strip():
            log.warning("skipped %s: empty note", rel)
            result.skipped.append((rel, "empty note"))
            continue
        result.notes.append(
            Note(source=rel, text=text, sha256=content_hash(data), size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        )
    if not result.notes:
        why = f" ({len(result.skipped)} files skipped)" if result.skipped else ""
        raise CorpusError(
            f"no notes to index in {corpus_dir}{why}: add .md, .markdown or .txt files and run `dsqa reindex`"
        )
    return result
