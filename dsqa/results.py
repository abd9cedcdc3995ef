"""What a question gets back: passages with citations, and an answer."""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Passage:
    """A retrieved chunk of a note, with where it lives."""

    text: str
    source: str  # note path relative to the corpus
    heading: str  # heading path, " › "-separated; "" for notes without headings
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    score: float
    #: Character spans in ``text`` of the sentences that answer the question,
    #: for highlighting.
    highlights: list[tuple[int, int]] = field(default_factory=list)

    @property
    def citation(self) -> str:
        where = f"{self.source}:{self.start_line}-{self.end_line}"
        return f"{where} · {self.heading}" if self.heading else where

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["highlights"] = [list(span) for span in self.highlights]
        d["citation"] = self.citation
        return d


@dataclass
class Answer:
    """The answer to one question: a short text drawn from the passages
    (empty when there is none), the passages, and whether the notes cover
    the question at all."""

    question: str
    passages: list[Passage]
    found: bool
    text: str = ""
    #: The score ``found`` was decided on (see ``dsqa.answering.confidence``).
    confidence: float = 0.0

    def __str__(self) -> str:
        out: list[str] = []
        if self.text:
            out += [self.text, ""]
        elif not self.found:
            out += ["The notes do not seem to cover this.", ""]
        for n, p in enumerate(self.passages, 1):
            out.append(f"[{n}] {p.citation}  (score {p.score:.3f})")
            body = p.text.strip()
            out.append(textwrap.indent(body, "    "))
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "found": self.found,
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "passages": [p.to_dict() for p in self.passages],
        }
