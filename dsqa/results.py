"""What a question gets back: passages with citations, and an answer."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from typing_extensions import (
    TypedDict,  # pydantic reads its schemas (FastAPI, MCP) only from this one on 3.11
)

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


# -- the JSON views (``to_dict()``): what ``--json``, the MCP tools and the
# page's /api return, declared once so that their schemas are documented.


class PassageJSON(TypedDict):
    """A passage: its text, where it is (``citation`` says it in one line),
    its score, and the character spans of the answer's quotes in it."""

    text: str
    source: str
    heading: str
    start_line: int
    end_line: int
    score: float
    highlights: list[list[int]]
    page: int | None
    cell: int | None
    end_cell: int | None
    citation: str


class AnswerJSON(TypedDict):
    """An answer: the short text with ``[n]`` markers (``[n]`` is
    ``passages[n-1]``), the verdict (answered, low confidence, not covered)
    and why, the confidence, and the passages."""

    question: str
    found: bool
    text: str
    confidence: float
    coverage: str
    verdict: str
    reason: str
    passages: list[PassageJSON]


class SearchJSON(TypedDict):
    """The passages that match a query, best first."""

    query: str
    passages: list[PassageJSON]


def search_json(query: str, passages: list[Passage]) -> SearchJSON:
    """The JSON view of what ``search(query)`` returned."""
    return SearchJSON(query=" ".join(query.split()), passages=[p.to_dict() for p in passages])


class NoteTextJSON(TypedDict):
    """Lines of a note (``DSQA.read_note``)."""

    source: str
    kind: str
    start_line: int
    end_line: int
    lines: list[str]
    total_lines: int
    page: int | None
    pages: list[int]
    cell: int | None
    end_cell: int | None
    citation: str


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
    #: Whether the passage holds every topic term of the question (its rare
    #: words; see ``dsqa.query.topics``): only such a passage is a strong match.
    covers_topic: bool = True

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

    def to_dict(self) -> PassageJSON:
        return PassageJSON(
            text=self.text,
            source=self.source,
            heading=self.heading,
            start_line=self.start_line,
            end_line=self.end_line,
            score=self.score,
            highlights=[list(span) for span in self.highlights],
            page=self.page,
            cell=self.cell,
            end_cell=self.end_cell,
            citation=self.citation,
        )


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
    #: was decided on (see ``dsqa.query.confidence.confidence``).
    confidence: float = 0.0
    #: Which of three outcomes this is: ``"answered"`` (``found``: the notes
    #: cover the question), ``"weak"`` (the best passage is the closest match,
    #: but the evidence is weak: shown as such) or ``"not_covered"``.
    coverage: str = ""
    #: Why the verdict is what it is, in one sentence: what the notes lack
    #: when the question's topic terms decided it (``gap``), else where the
    #: confidence stands (see :func:`verdict_reason`); "" for answers made by hand.
    reason: str = ""
    #: What the notes lack, in a sentence a reader is shown ("Your notes don't
    #: mention paxos."); "" when nothing more particular than the confidence
    #: says why (see ``dsqa.query.topics``).
    gap: str = ""
    #: The refusal threshold ``coverage`` was decided with (and the weak band's
    #: lower end), so the confidence can be read: ``None`` when not known.
    threshold: float | None = None
    weak_from: float | None = None

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
            out += [f"{WEAK_LABEL}: {self.gap}".rstrip(), *([self.text] if self.text else []), ""]
        elif self.coverage == NOT_COVERED:
            nearest = " The nearest passages are listed below." if self.passages else ""
            out += [(self.gap or NOT_COVERED_LABEL) + nearest, ""]
        elif self.text:
            out += [self.text, ""]
        if self.scale_line():
            out += [self.scale_line(), ""]
        out += passage_lines(self.passages)
        return "\n".join(out).rstrip() + "\n"

    def scale_line(self) -> str:
        """The confidence and how to read it, in one line ("" without a
        threshold to read it against)."""
        if self.threshold is None:
            return ""
        weak = f", closest match from {self.weak_from:.2f}" if self.weak_from is not None and self.weak_from < self.threshold else ""
        return (
            f"Confidence {self.confidence:.2f} on this folder's scale (0: off-topic questions, "
            f"1: questions its notes nearly answer); answered from {self.threshold:.2f}{weak}."
        )

    def __repr__(self) -> str:
        return (
            f"Answer({_clip(self.question)!r}, found={self.found}, confidence={self.confidence:.3f}, "
            f"text={_clip(self.text)!r}, passages={len(self.passages)})"
        )

    def _repr_html_(self) -> str:
        """How a notebook shows an answer: the short answer (or that the notes
        do not cover the question), then the passages as a numbered list."""
        if self.coverage == NOT_COVERED:
            head = f"<i>{html.escape(self.gap or NOT_COVERED_LABEL)}</i>"
        elif self.coverage == WEAK:
            head = f"<i>{html.escape(f'{WEAK_LABEL}: {self.gap}'.rstrip())}</i> {html.escape(self.text)}".rstrip()
        else:
            head = html.escape(self.text)
        items = "".join(f"<li>{p._repr_html_()}</li>" for p in self.passages)
        return f"<div><p>{head}</p><ol>{items}</ol></div>"

    def to_dict(self) -> AnswerJSON:
        return AnswerJSON(
            question=self.question,
            found=self.found,
            text=self.text,
            confidence=round(self.confidence, 4),
            coverage=self.coverage,
            verdict=VERDICTS[self.coverage],
            reason=self.reason,
            passages=[p.to_dict() for p in self.passages],
        )


#: How each outcome is named to a reader of the JSON (an assistant, a script).
VERDICTS = {ANSWERED: "answered", WEAK: "low confidence", NOT_COVERED: "not covered"}


def verdict_reason(coverage: str, confidence: float, threshold: float, passages: int) -> str:
    """Why an answer got its verdict, in one sentence: where its confidence
    stands against the refusal threshold (the confidence is on each index's
    calibrated scale, not a probability)."""
    if not passages:
        return "no passage of the notes matches the question"
    # the confidence as the JSON gives it (to 4 places), so both round alike
    where = f"confidence {round(confidence, 4):.2f} against the refusal threshold {threshold:.2f}"
    if coverage == ANSWERED:
        return f"{where}: the top passages answer the question"
    if coverage == WEAK:
        return f"{where}: just below it, so the best passage is only the closest match"
    return f"{where}: no passage seems to answer the question"


@dataclass
class NoteText:
    """Lines ``start_line``..``end_line`` (1-based, inclusive) of one note,
    counted as citations count them: the file's lines for Markdown and text,
    page ``page``'s lines for a PDF, the extracted text's for a web page or
    notebook (whose lines are numbered across cells ``cell``..``end_cell``)."""

    source: str
    #: Which reader made the text ("markdown", "pdf", "html", "notebook").
    kind: str
    start_line: int
    end_line: int
    lines: list[str]
    #: Lines in the note (in the page, for a PDF): more can be read when
    #: ``end_line`` is below it.
    total_lines: int
    page: int | None = None
    #: A PDF's pages with text (what ``page`` may be).
    pages: list[int] = field(default_factory=list)
    cell: int | None = None
    end_cell: int | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def citation(self) -> str:
        """Where the lines are, as passages' citations say it."""
        return Passage(
            "", self.source, "", self.start_line, self.end_line, 0.0, page=self.page, cell=self.cell, end_cell=self.end_cell
        ).citation

    def __str__(self) -> str:
        """The citation, then each line under its number."""
        width = len(str(self.end_line))
        body = [f"{n:>{width}}  {line}" for n, line in enumerate(self.lines, self.start_line)]
        more = f"\n(lines {self.end_line + 1}-{self.total_lines} not shown)" if self.end_line < self.total_lines else ""
        return "\n".join([self.citation, *body]) + more

    def to_dict(self) -> NoteTextJSON:
        return NoteTextJSON(
            source=self.source,
            kind=self.kind,
            start_line=self.start_line,
            end_line=self.end_line,
            lines=list(self.lines),
            total_lines=self.total_lines,
            page=self.page,
            pages=list(self.pages),
            cell=self.cell,
            end_cell=self.end_cell,
            citation=self.citation,
        )


def passage_lines(passages: Sequence[Passage]) -> list[str]:
    """Numbered passages as ``dsqa ask`` and ``dsqa search`` print them: the
    citation and score, the text indented under it, a blank line."""
    out: list[str] = []
    for n, p in enumerate(passages, 1):
        out += [f"[{n}] {p.citation}  (score {p.score:.3f})", textwrap.indent(p.text.strip(), "    "), ""]
    return out
