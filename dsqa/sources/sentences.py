"""Splitting a passage into the sentences an answer can quote.

Notes are rarely prose: a bullet line is a sentence, a heading is not an
answer, an image link says nothing. Spans are character offsets into the
passage so the page can highlight exactly what was quoted.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[`*A-Z0-9])")
_MARKUP_ONLY = re.compile(r"^\s*(!\[[^\]]*\]\([^)]*\)|<[^>]+>|[#>*\-•|`~=_\s]+|\d+[.)]?)\s*$")
_LEAD = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[*\-+•]\s+|\d+[.)]\s+)*")
MIN_WORDS = 4


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the quotable sentences in ``text``."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        line_start = pos
        pos += len(line) + 1
        # Any line opening with "#": headings (``dsqa.sources.markup.heading``), and
        # comment lines of code and tags too, which answer nothing either.
        if line.lstrip().startswith("#") or _MARKUP_ONLY.match(line):
            continue
        lead = m.end() if (m := _LEAD.match(line)) else 0
        cursor = line_start + lead
        body = line[lead:]
        pieces = _SENTENCE_END.split(body)
        offset = 0
        for piece in pieces:
            at = body.find(piece, offset)
            offset = at + len(piece)
            stripped = piece.strip()
            if len(stripped.split()) < MIN_WORDS:
                continue
            start = cursor + at + (len(piece) - len(piece.lstrip()))
            spans.append((start, start + len(stripped)))
    return spans


def sentence_windows(text: str, size: int = 3) -> list[tuple[int, int, list[str]]]:
    """One window per quotable sentence: the sentence with its neighbours
    (``size`` sentences in all), as (sentence start, sentence end, the
    window's sentences).

    Scoring a chunk by its best window finds the one bullet that answers a
    question inside a long passage, where a single vector for the whole chunk
    blurs it; the neighbours supply the context a lone bullet lacks. The
    window's centre sentence is then the natural quote for the answer.
    """
    spans = sentence_spans(text)
    before = (size - 1) // 2
    after = size - 1 - before
    out = []
    for i, (start, end) in enumerate(spans):
        lo, hi = max(0, i - before), min(len(spans), i + after + 1)
        out.append((start, end, [text[a:b] for a, b in spans[lo:hi]]))
    return out
