"""The note section around a passage, read safely: only for notes that are
in the index, only through :func:`dsqa.sources.note_text.read_lines` (the checked
read of indexing: inside the corpus when opened, never through a symlink or
FIFO swapped in after indexing), and as dsqa indexed it (a PDF's page, a web page's or notebook's
extracted text).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import DSQA
from ..errors import InvalidInputError
from ..sources.formats.limits import ReaderLimits
from ..sources.note_text import read_lines, section_around


@dataclass
class NoteSection:
    """Lines ``first``..``first + len(lines) - 1`` of note ``source``."""

    source: str
    first: int
    lines: list[str]

    @property
    def last(self) -> int:
        return self.first + len(self.lines) - 1




def _check_indexed(engine: DSQA, source: str) -> None:
    """An ``InvalidInputError`` unless ``source`` is a note in the index: the page
    never reads a file the index does not name."""
    if not isinstance(source, str) or source not in engine.note_names():
        raise InvalidInputError(f"no note {source!r} in the index")


def _note_lines(engine: DSQA, source: str, page: int | None) -> list[str]:
    """The note's text as dsqa indexed it (for a PDF, page ``page``'s
    text), read through the checked read of :mod:`dsqa.sources.note_text`."""
    return read_lines(engine.settings.corpus_dir, source, page, ReaderLimits.of(engine.settings)).lines


def note_section(
    engine: DSQA, source: str, start_line: int, end_line: int, *, page: int | None = None, max_lines: int = 120
) -> NoteSection:
    """The section of indexed note ``source`` around lines
    ``start_line``..``end_line`` (:func:`dsqa.sources.note_text.section_around`).
    A PDF, a web page or a notebook is read with its reader (dsqa.sources.formats), so
    the lines are those of its extracted text (of page ``page`` for a PDF).
    """
    _check_indexed(engine, source)
    lines = _note_lines(engine, source, page)
    if not lines:
        return NoteSection(source, 1, [])
    first, last = section_around(lines, start_line, end_line, max_lines)
    return NoteSection(source, first, lines[first - 1 : last])
