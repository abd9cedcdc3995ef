"""The lines of one note as dsqa indexed it, read safely: what an assistant
reads around a citation (``DSQA.read_note``) and what the page shows as a
passage's section.

A note is read only through :func:`dsqa.sources.reading.read_corpus_file`, the one
checked read that indexing uses too (inside the corpus when opened, never
through a symlink or FIFO put there after the check), and by its format's
reader, so the lines are those a citation counts: the file's own lines for
Markdown and text, a PDF page's extracted text, a web page's or notebook's
extracted text (where a notebook's lines are numbered across its cells).
"""

from __future__ import annotations

import hashlib
import posixpath
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorpusError, InvalidInputError
from ..results import NoteText
from . import formats, markup
from .formats.limits import DEFAULT_LIMITS, ReaderLimits
from .formats.worker import extract
from .reading import read_corpus_file

#: The most lines one read returns; a longer note is read a range at a time
#: (the result says how many lines the note has).
MAX_READ_LINES = 400


@dataclass(frozen=True)
class NoteLines:
    """A note's whole text as lines, as indexed: of page ``page`` for a PDF
    (``pages`` lists the PDF's pages with text), and the note's
    :class:`~dsqa.sources.formats.Layout` for notebooks' cells."""

    source: str
    kind: str
    lines: list[str]
    page: int | None = None
    pages: tuple[int, ...] = ()
    layout: formats.Layout | None = None


def check_note_path(note: object) -> str:
    """``note`` when it is a path relative to the corpus (as citations give
    them), else an ``InvalidInputError``: no absolute path, no ``..``, no
    home folder."""
    if not isinstance(note, str) or not note.strip():
        raise InvalidInputError("the note must be a note's path relative to the notes folder, as a citation gives it")
    shown = note if len(note) <= 200 else note[:200] + "…"
    if "\x00" in note:
        raise InvalidInputError(f"note {shown!r} holds a NUL character: give a note's path as a citation gives it")
    unix = note.replace("\\", "/")
    if unix.startswith(("/", "~")) or (len(unix) > 1 and unix[1] == ":"):
        raise InvalidInputError(
            f"note {shown!r} is an absolute path: only notes of the notes folder can be read, by their path relative to it"
        )
    if ".." in posixpath.normpath(unix).split("/") or ".." in unix.split("/"):
        raise InvalidInputError(f"note {shown!r} leads out of the notes folder: only its own notes can be read")
    return note


class _ExtractedNotes:
    """The extracted texts of the notes read last, by corpus, note and
    content hash: the page shows every passage of a question with its note
    section, and extracting a 500-page PDF again for each of twenty passages
    took minutes. Up to ``max_notes`` notes and ``max_chars`` characters are
    kept; a note whose bytes change is read anew. Markdown and text notes
    are their own text and are not kept."""

    def __init__(self, max_notes: int = 8, max_chars: int = 20_000_000) -> None:
        self.max_notes = max_notes
        self.max_chars = max_chars
        self._notes: OrderedDict[tuple[str, str, str], formats.Extracted] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, corpus_dir: Path, source: str, data: bytes, limits: ReaderLimits) -> formats.Extracted:
        if formats.reader_for(source).kind == "markdown":
            return extract(source, data, limits)
        key = (str(corpus_dir), source, hashlib.sha256(data).hexdigest())
        with self._lock:
            if key in self._notes:
                self._notes.move_to_end(key)
                return self._notes[key]
        extracted = extract(source, data, limits)
        with self._lock:
            self._notes[key] = extracted
            while len(self._notes) > self.max_notes or (
                len(self._notes) > 1 and sum(len(e.text) for e in self._notes.values()) > self.max_chars
            ):
                self._notes.popitem(last=False)
        return extracted


_EXTRACTED = _ExtractedNotes()


def read_lines(
    corpus_dir: Path, source: str, page: int | None = None, limits: ReaderLimits = DEFAULT_LIMITS
) -> NoteLines:
    """The text of corpus note ``source`` as it was indexed, split into
    lines the way citations count them (see the module's docstring); for a
    PDF, page ``page``'s lines (the first page with text when ``None``).
    The note is read within ``limits`` (as a reindex reads it), and its
    extracted text kept for the next read of the same bytes.
    A note that is gone or cannot be opened is a ``CorpusError``; one that
    now leads out of the folder (or is no longer readable as its format, or
    over a bound), or a page the PDF does not have, is an ``InvalidInputError``."""
    if page is not None:
        page = _line_number(page, "page")
    try:
        data = read_corpus_file(corpus_dir, source)[0]
        extracted = _EXTRACTED.get(corpus_dir, source, data, limits)
    except OSError as exc:
        raise CorpusError(f"cannot read note {source}: {exc.strerror or exc} (run `dsqa reindex` if it was removed)") from None
    except ValueError as exc:  # refused by the checked read, or not readable as its format
        raise InvalidInputError(f"cannot read note {source}: {exc}") from None
    kind = formats.reader_for(source).kind
    layout = extracted.layout
    if layout is not None and layout.unit == "page":
        pages = layout.unit_numbers
        if page is None:
            page = pages[0] if pages else None
        if page is None or page not in pages:
            shown = ", ".join(map(str, pages)) or "none"
            raise InvalidInputError(f"{source} has no page {page} with text; its pages with text: {shown}")
        return NoteLines(source, kind, _split(layout.unit_text(extracted.text, page)), page, pages, layout)
    if page is not None:
        raise InvalidInputError(f"{source} is not a PDF: it has no pages (give lines only)")
    return NoteLines(source, kind, _split(extracted.text), layout=layout)


def section_around(lines: list[str], start_line: int, end_line: int, max_lines: int = 120) -> tuple[int, int]:
    """The first and last line (1-based) of the section of ``lines`` (not
    empty) around lines ``start_line``..``end_line``: from the nearest
    Markdown heading at or above the passage to just before the next heading
    of the same or a higher level (headings inside fenced code do not
    count), cut to ``max_lines`` around the passage. Lines without headings
    give the passage with some lines around it."""
    start = min(max(1, int(start_line)), len(lines))
    end = min(max(start, int(end_line)), len(lines))

    headings: list[tuple[int, int]] = []  # (line number, level)
    fence: str | None = None
    for number, line in enumerate(lines, 1):
        marker = markup.fence(line)
        if marker:
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
            continue
        level = markup.heading_level(line) if fence is None else 0
        if level:
            headings.append((number, level))

    above = [(n, level) for n, level in headings if n <= start]
    if above:
        first, level = above[-1]
        after = [n for n, lv in headings if n > first and lv <= level]
        last = after[0] - 1 if after else len(lines)
    else:
        first, last = max(1, start - 10), min(len(lines), end + 10)
    last = max(last, end)
    if last - first + 1 > max_lines:
        spare = max(0, max_lines - (end - start + 1))
        first = max(first, start - spare // 2)
        last = min(last, max(end, first + max_lines - 1))
    return first, last


def _split(text: str) -> list[str]:
    """Lines as the chunker counts them: split at ``\\n`` only (a form feed
    or a line separator inside a line does not start a new one)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def excerpt(note: NoteLines, start_line: int | None = None, end_line: int | None = None) -> NoteText:
    """Lines ``start_line``..``end_line`` (1-based, inclusive) of ``note``;
    from the first line, and at most :data:`MAX_READ_LINES` lines, when not
    given. A range outside the note is an ``InvalidInputError`` saying how many
    lines it has."""
    total = len(note.lines)
    first = 1 if start_line is None else _line_number(start_line, "start_line")
    if total == 0:
        raise InvalidInputError(f"{note.source} has no text{_of_page(note)}")
    if first > total:
        raise InvalidInputError(f"{note.source}{_of_page(note)} has {total} lines; start_line {first} is past its end")
    last = min(total, first + MAX_READ_LINES - 1) if end_line is None else _line_number(end_line, "end_line")
    if last < first:
        raise InvalidInputError(f"end_line {last} is before start_line {first}")
    last = min(last, total, first + MAX_READ_LINES - 1)
    cell = end_cell = None
    if note.layout is not None and note.layout.unit == "cell":
        where = note.layout.locate(first, last)
        cell, end_cell = where.get("cell"), where.get("end_cell")
    return NoteText(
        source=note.source,
        kind=note.kind,
        start_line=first,
        end_line=last,
        lines=note.lines[first - 1 : last],
        total_lines=total,
        page=note.page,
        pages=list(note.pages),
        cell=cell,
        end_cell=end_cell,
    )


def _of_page(note: NoteLines) -> str:
    return f" page {note.page}" if note.page is not None else ""


def _line_number(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be a whole number, not {value!r}")
    if value < 1:
        raise InvalidInputError(f"{name} must be 1 or more (numbered from 1), got {value}")
    return value
