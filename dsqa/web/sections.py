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
from ..sources import markup
from ..sources.formats.limits import ReaderLimits
from ..sources.note_text import read_lines


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
    ``start_line``..``end_line``: from the nearest Markdown heading at or above
    the passage to just before the next heading of the same or a higher level
    (headings inside fenced code do not count), cut to ``max_lines`` around the
    passage. Notes without headings give the passage with some lines around it.
    A PDF, a web page or a notebook is read with its reader (dsqa.sources.formats), so
    the lines are those of its extracted text (of page ``page`` for a PDF).
    """
    _check_indexed(engine, source)
    lines = _note_lines(engine, source, page)
    if not lines:
        return NoteSection(source, 1, [])
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
    return NoteSection(source, first, lines[first - 1 : last])

