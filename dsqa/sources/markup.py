"""The few Markdown conventions dsqa reads in a line of a note, in one place:
what a heading is, what opens a fenced code block, and how a heading path is
written.

Each reader of notes bounds these itself where it must agree with another
program: the chunker reads headings as langchain's splitter does (at any
indent, since the splitter strips lines), the page reads them as CommonMark
does (:func:`heading_level`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Between the headings of a heading path: "Docker › Networking › Overlay".
HEADING_SEPARATOR = " › "
#: The markers of a fenced code block.
FENCES = ("```", "~~~")
#: The deepest heading level Markdown has.
MAX_LEVEL = 6
#: A line without heading syntax can still title what follows when it is
#: short: at most this many words, without closing punctuation.
TITLE_WORDS = 10

_HEADING = re.compile(r"(\s*)(#+)(?=\s|$)")


@dataclass(frozen=True)
class Heading:
    """A line read as an ATX heading: ``indent`` whitespace characters, then
    ``level`` ``#`` marks, then ``rest`` (empty, or whitespace and the text)."""

    indent: int
    level: int
    rest: str

    @property
    def text(self) -> str:
        return self.rest.strip()


def heading(line: str) -> Heading | None:
    """``line`` read as an ATX heading: ``#`` marks, after any indent, followed
    by whitespace or the end of the line; ``None`` for any other line. The
    caller bounds the indent and the level (CommonMark: :func:`heading_level`)."""
    m = _HEADING.match(line)
    if m is None:
        return None
    return Heading(len(m.group(1)), len(m.group(2)), line[m.end() :])


def heading_level(line: str) -> int:
    """The level (1 to :data:`MAX_LEVEL`) of ``line`` as a CommonMark heading
    (at most three characters of indent), or 0 when it is not one."""
    h = heading(line)
    return h.level if h is not None and h.indent <= 3 and h.level <= MAX_LEVEL else 0


def fence(line: str) -> str | None:
    """The fence (one of :data:`FENCES`) that ``line`` starts with, after any
    indent, or ``None``: the line opens or closes a fenced code block, or is a
    single line of code between two fences."""
    marker = line.strip()[:3]
    return marker if marker in FENCES else None
