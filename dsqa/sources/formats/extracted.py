"""What a reader returns (:class:`Extracted`), how its text is cited
(:class:`Layout`), and what a reader is (:class:`Reader`): apart from the
package's registry of readers, so the readers import it without importing the
registry that imports them."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Protocol

from .limits import ReaderLimits


@dataclass(frozen=True)
class Layout:
    """How lines of an extracted text are cited.

    ``sections`` (first line, end line exclusive, heading path; 0-based line
    indexes) replaces the chunker's own Markdown section finding when given:
    a PDF's sections never cross a page. ``unit`` is ``"page"`` or ``"cell"``
    when the text is made of numbered units, ``unit_starts`` the 0-based line
    index where each unit's text begins and ``unit_numbers`` each unit's
    number (a page left out, having no text, leaves a gap in the numbers).
    """

    sections: tuple[tuple[int, int, str], ...] | None = None
    unit: str | None = None
    unit_starts: tuple[int, ...] = ()
    unit_numbers: tuple[int, ...] = ()

    def unit_at(self, line: int) -> int:
        """Index into ``unit_starts`` of the unit holding 0-based ``line``."""
        return max(0, bisect.bisect_right(self.unit_starts, line) - 1)

    def locate(self, first: int, last: int) -> dict[str, int]:
        """Citation fields of the 1-based lines ``first``..``last`` of the text.

        Pages: ``page`` and the lines within that page's text (a chunk never
        spans pages). Cells: ``cell`` and ``end_cell``; line numbers stay those
        of the whole extracted text. Other texts: just the lines.
        """
        if self.unit == "page":
            i = self.unit_at(first - 1)
            offset = self.unit_starts[i]
            return {"page": self.unit_numbers[i], "start_line": first - offset, "end_line": last - offset}
        if self.unit == "cell":
            return {
                "start_line": first,
                "end_line": last,
                "cell": self.unit_numbers[self.unit_at(first - 1)],
                "end_cell": self.unit_numbers[self.unit_at(last - 1)],
            }
        return {"start_line": first, "end_line": last}

    def unit_text(self, text: str, number: int) -> str:
        """The text of unit ``number`` (a page, a cell); ``ValueError`` when
        there is no such unit."""
        if number not in self.unit_numbers:
            raise ValueError(f"no {self.unit or 'unit'} {number}")
        i = self.unit_numbers.index(number)
        lines = text.split("\n")
        end = self.unit_starts[i + 1] if i + 1 < len(self.unit_starts) else len(lines)
        return "\n".join(lines[self.unit_starts[i] : end]).rstrip("\n")


@dataclass(frozen=True)
class Extracted:
    """A note's text as a reader extracted it, how to cite it, and what was
    left out of it (e.g. PDF pages without a text layer)."""

    text: str
    layout: Layout | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


class Reader(Protocol):
    #: Short name of the format ("markdown", "pdf", "html", "notebook").
    kind: str
    suffixes: tuple[str, ...]
    #: Bump when the extracted text or its layout changes for the same bytes.
    version: int

    def read(self, data: bytes, limits: ReaderLimits = ...) -> Extracted:
        """The note's text; ``ValueError`` saying why it cannot be used
        (``LimitExceeded`` for a note over one of ``limits``)."""
        ...
