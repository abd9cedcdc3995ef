"""What a question gets back: passages with citations, and an answer."""

from __future__ import annotations

import html
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any

#: How much of a passage's text a ``repr`` shows.
_REPR_CHARS = 60


ANSWERED, WEAK, NOT_COVERED = "answered", "weak", "not_covered"
COVERAGES = (ANSWERED, WEAK, NOT_COVERED)
#: How an answer that is not one says so, in the CLI, the page and
#: ``str(answer)`` alike (``Answer.text`` never holds these).
WEAK_LABEL = "Closest match, low confidence"
NOT_COVERED_LABEL = "The notes do not seem to cover this."


def _clip(text: str, limit: int = _REPR_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class Passage:
    """A retrieved chunk of a note, with where it lives."""

    text: str
    source: str  # note path relative to the corpus
    heading: str  # heading path, " › "-separated; "" for notes without headings
    #: 1-based, inclusive: lines of the note's text, or of page ``page``'s
    #: text for a PDF (web pages and notebooks: of the text dsqa extracted).
    start_line: int
    end_line: int
    score: float
    #: Character spans in ``text`` of the sentences that answer the question,
    #: for highlighting.
    highlights: list[tuple[int, int]] = field(default_factory=list)
    #: PDFs: the page the passage is on.
    page: int | None = None
    #: Notebooks: the cells of the passage's first and last line.
    cell: int | None = None
    end_cell: int | None = None

    @property
    def citation(self) -> str:
        """``note.md:3-9 · heading``; ``slides.pdf p. 12, lines 4–9 · heading``;
        ``lab.ipynb cell 4 · heading`` (``cells 4–5``)."""
        if self.page is not None:
            where = f"{self.source} p. {self.page}, " + (
                f"line {self.start_line}" if self.start_line == self.end_line else f"lines {self.start_line}–{self.end_line}"
            )
        elif self.cell is not None:
            last = self.end_cell if self.end_cell is not None else self.cell
            where = f"{self.source} cell {self.cell}" if last == self.cell else f"{self.source} cells {self.cell}–{last}"
        else:
            where = f"{self.source}:{self.start_line}-{self.end_line}"
        return f"{where} · {self.heading}" if self.heading else where

    def __str__(self) -> str:
        """The citation, then the passage's text."""
        return f"{self.citation}\n{self.text.strip()}"

    def __repr__(self) -> str:
        # Short on purpose: a list of passages in a REPL or a log stays readable.
        return f"Passage({self.citation!r}, score={self.score:.3f}, text={_clip(self.text)!r})"

    def _repr_html_(self) -> str:
        """How a notebook shows a passage: its citation above its text."""
        return (
            f"<div><b>{html.escape(self.citation)}</b> <small>(score {self.score:.3f})</small>"
            f"<pre style='white-space: pre-wrap'>{html.escape(self.text.strip())}</pre></div>"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["highlights"] = [list(span) for span in self.highlights]
        d["citation"] = self.citation
        return d


@dataclass
class Answer:
    """The answer to one question: a short text drawn from the passages
    (empty when there is none), the passages, and whether the notes cover
    the question at all.

    ``text`` holds only what the notes say, never a statement that they do
    not cover the question: ``str()`` and the CLI word the three outcomes
    (see ``coverage``)."""

    question: str
    passages: list[Passage]
    #: Whether the notes cover the question: ``confidence`` reached the
    #: refusal threshold (``Settings.refusal_threshold``).
    found: bool
    text: str = ""
    #: How sure dsqa is that the best passage answers the question, on the
    #: scale of the refusal threshold (not a probability): the score ``found``
    #: was decided on (see ``dsqa.answering.confidence``).
    confidence: float = 0.0
    #: Which of three outcomes this is: ``"answered"`` (``found``: the notes
    #: cover the question), ``"weak"`` (the best passage is the closest match,
    #: but the evidence is weak: shown as such) or ``"not_covered"``.
    coverage: str = ""

    def __post_init__(self) -> None:
        if not self.coverage:
            self.coverage = ANSWERED if self.found else NOT_COVERED
        if self.coverage not in COVERAGES:
            raise ValueError(f"coverage must be one of {', '.join(COVERAGES)}, not {self.coverage!r}")
        if self.found != (self.coverage == ANSWERED):
            raise ValueError(f"found={self.found} contradicts coverage={self.coverage!r}")

    def __str__(self) -> str:
        out: list[str] = []
        if self.coverage == WEAK:
            out += [WEAK_LABEL + ":", *([self.text] if self.text else []), ""]
        elif self.coverage == NOT_COVERED:
            nearest = " The nearest passages are listed below." if self.passages else ""
            out += [NOT_COVERED_LABEL + nearest, ""]
        elif self.text:
            out += [self.text, ""]
        for n, p in enumerate(self.passages, 1):
            out.append(f"[{n}] {p.citation}  (score {p.score:.3f})")
            body = p.text.strip()
            out.append(textwrap.indent(body, "    "))
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def __repr__(self) -> str:
        return (
            f"Answer({_clip(self.question)!r}, found={self.found}, confidence={self.confidence:.3f}, "
            f"text={_clip(self.text)!r}, passages={len(self.passages)})"
        )

    def _repr_html_(self) -> str:
        """How a notebook shows an answer: the short answer (or that the notes
        do not cover the question), then the passages as a numbered list."""
        if self.coverage == NOT_COVERED:
            head = f"<i>{NOT_COVERED_LABEL}</i>"
        elif self.coverage == WEAK:
            head = f"<i>{WEAK_LABEL}:</i> {html.escape(self.text)}".rstrip()
        else:
            head = html.escape(self.text)
        items = "".join(f"<li>{p._repr_html_()}</li>" for p in self.passages)
        return f"<div><p>{head}</p><ol>{items}</ol></div>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "found": self.found,
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "coverage": self.coverage,
            "passages": [p.to_dict() for p in self.passages],
        }
