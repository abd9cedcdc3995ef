"""Loading notes from the corpus folder.

A notes folder is whatever a user keeps: exported pages, stray PDFs, editor
back-ups, files in other encodings. Loading therefore never fails because of one
file: anything that cannot be read (not UTF-8 text, a damaged or encrypted PDF,
a notebook that is not JSON) is skipped with a warning naming it and the
reason, and the rest is indexed. Each file's bytes are read here and handed to
the reader for its format (``dsqa.sources.formats``). Which files are
candidates is :mod:`dsqa.sources.walk`'s, how each is read
:mod:`dsqa.sources.reading`'s.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorpusError
from ..settings import Settings
from . import formats
from .formats import Layout
from .formats.limits import DEFAULT_LIMITS, ReaderLimits, over_memory, over_time
from .formats.worker import extract
from .reading import MAX_NOTE_BYTES, read_corpus_file
from .walk import NOTE_SUFFIXES, iter_note_paths, refuse_whole_machine

log = logging.getLogger("dsqa")


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
    #: this version of the note already (``open_corpus(known=...)``).
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


@dataclass(frozen=True)
class CorpusReading:
    """How a notes folder is walked and each of its notes read: the walking
    and reading fields of :class:`dsqa.Settings` (:meth:`of`). The defaults
    are a plain read of a folder: no bound on how many notes it holds, the
    filesystem's root and the home folder refused, other filesystems not
    walked, each note within :data:`DEFAULT_LIMITS`."""

    #: A bigger note file is skipped unread (see :mod:`dsqa.sources.reading`).
    max_note_bytes: int = MAX_NOTE_BYTES
    #: Walk into folders on other filesystems (``Settings.cross_mounts``).
    cross_mounts: bool = False
    #: ``CorpusTooLargeError`` before any note is read when the folder holds
    #: more notes, or more bytes of notes, than this (``None``: no bound).
    max_files: int | None = None
    max_total_bytes: int | None = None
    #: Read the filesystem's root or the home folder too (:func:`refuse_whole_machine`).
    allow_whole: bool = False
    #: The bounds on reading one note.
    limits: ReaderLimits = DEFAULT_LIMITS

    @classmethod
    def of(cls, settings: Settings) -> CorpusReading:
        """The reading ``settings`` ask for: with ``allow_large_corpus``, no
        bound on the folder's size and the whole machine allowed."""
        large = settings.allow_large_corpus
        return cls(
            cross_mounts=settings.cross_mounts,
            max_files=None if large else settings.max_corpus_files,
            max_total_bytes=None if large else settings.max_corpus_bytes,
            allow_whole=large,
            limits=ReaderLimits.of(settings),
        )


#: :class:`CorpusReading`'s defaults.
DEFAULT_READING = CorpusReading()


def load_corpus(corpus_dir: Path, reading: CorpusReading = DEFAULT_READING) -> LoadedCorpus:
    """Read every note under ``corpus_dir`` as ``reading`` says; raise
    ``CorpusError`` only when there is no folder or nothing in it can be
    indexed, and ``CorpusTooLargeError`` (before reading any note) when it
    holds more than ``reading.max_files`` notes or ``reading.max_total_bytes``,
    or (before walking it) when it is the filesystem's root or the home
    folder, unless ``reading.allow_whole`` (:func:`refuse_whole_machine`).

    Each note is read within ``reading.limits`` (:func:`dsqa.sources.formats.worker.extract`:
    whatever goes wrong in its reader skips it, with a warning naming it and
    why)."""
    stream = open_corpus(corpus_dir, reading)
    notes = list(stream)
    return LoadedCorpus(notes=notes, skipped=stream.skipped, warnings=stream.warnings)


def open_corpus(
    corpus_dir: Path,
    reading: CorpusReading = DEFAULT_READING,
    *,
    known: dict[str, str] | None = None,
    known_skipped: dict[str, tuple[str | None, str]] | None = None,
) -> CorpusStream:
    """The notes of :func:`load_corpus`, read one at a time as they are
    iterated (a full reindex keeps one batch of notes at a time). The folder
    is walked here, and the same errors raised before any note is read; a
    folder with nothing to index raises ``CorpusError`` at the end of the
    iteration.

    ``known`` maps notes to the content hash of a version the caller has
    already chunked (an index's manifest): a note whose bytes still hash the
    same is returned with ``extracted=False`` and no text, since extracting
    a PDF's text costs far more than hashing it. ``known_skipped`` maps
    files skipped before to (content hash, reason): one that took the whole
    time or memory bound and still hashes the same is skipped again for that
    reason without reading it anew."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist (set --corpus or DSQA_CORPUS)")
    if not reading.allow_whole:
        refuse_whole_machine(corpus_dir)
    passed: list[tuple[str, str]] = []
    paths = iter_note_paths(
        corpus_dir,
        passed,
        cross_mounts=reading.cross_mounts,
        max_files=reading.max_files,
        max_total_bytes=reading.max_total_bytes,
        max_note_bytes=reading.max_note_bytes,
    )
    stream = CorpusStream(corpus_dir, [rel for _path, rel in paths], reading, known or {}, known_skipped or {})
    for rel, why in sorted(passed):
        log.warning("skipped %s: %s", rel, why)
        stream.skipped.append((rel, why))
    return stream


@dataclass
class CorpusStream:
    """The candidate notes of a folder (``sources``), read as they are
    iterated; :attr:`skipped` and :attr:`warnings` fill as they are read."""

    corpus_dir: Path
    sources: list[str]
    reading: CorpusReading
    known: dict[str, str]
    known_skipped: dict[str, tuple[str | None, str]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sources)

    def __iter__(self) -> Iterator[Note]:
        limits = self.reading.limits
        costly = {str(over_time(limits)), str(over_memory(limits))}
        read = 0
        for rel in self.sources:
            try:
                note, warnings = _load_note(self.corpus_dir, rel, self.reading.max_note_bytes, self.known.get(rel),
                                            self.known_skipped.get(rel), costly, limits)
            except (OSError, ValueError) as exc:
                why = str(exc) if isinstance(exc, ValueError) else (exc.strerror or str(exc))
                log.warning("skipped %s: %s", rel, why)
                self.skipped.append((rel, why))
                continue
            for warning in warnings:
                log.warning("%s: %s", rel, warning)
                self.warnings.append((rel, warning))
            read += 1
            yield note
        if not read:
            why = f" ({len(self.skipped)} files skipped)" if self.skipped else ""
            raise CorpusError(
                f"no notes to index in {self.corpus_dir}{why}: add {', '.join(NOTE_SUFFIXES)} files and run `dsqa reindex`"
            )


def _load_note(
    corpus_dir: Path,
    rel: str,
    max_bytes: int,
    known: str | None,
    skipped_before: tuple[str | None, str] | None,
    costly: set[str],
    limits: ReaderLimits,
) -> tuple[Note, tuple[str, ...]]:
    """The note ``rel`` and what its reader left out; ``OSError`` or
    ``ValueError`` saying why it is skipped. ``known``: the hash of the
    version the caller has chunked (unchanged: not extracted);
    ``skipped_before``: (hash, reason) of its last skip, repeated without
    reading when the hash is the same and the reason one of ``costly``."""
    data, stat_result = read_corpus_file(corpus_dir, rel, max_bytes)
    digest = content_hash(data)
    kind = formats.reader_for(rel).kind
    if known == digest:
        return Note(rel, "", digest, stat_result.st_size, stat_result.st_mtime_ns, kind, extracted=False), ()
    if skipped_before is not None and skipped_before[0] == digest and skipped_before[1] in costly:
        raise ValueError(skipped_before[1])
    extracted = extract(rel, data, limits)
    if not extracted.text.strip():
        raise ValueError("empty note")
    note = Note(rel, extracted.text, digest, stat_result.st_size, stat_result.st_mtime_ns, kind, extracted.layout)
    return note, extracted.warnings
