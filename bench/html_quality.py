"""What the ``html`` bench part counts in an index of saved pages (issue 29):
chunks that are mostly page chrome, and quotable spans that are fragments of
wrapped source lines.

Both are read from the indexed text alone, whatever reader made it, so the
same rules score the reader before and after a change.

A line of a chunk is *navigation* when, with its Markdown marks taken off,

* every word is a navigation word (Prev, Next, Up, Home, Index, Search,
  "Table of Contents", "Skip to content", ...), or
* it is a list item or a table row whose every item or cell is a heading of
  the corpus (a table of contents, a Prev / Next row naming the pages), or
* the same line is on at least :data:`BOILERPLATE_SHARE` of the corpus's
  pages (and on at least :data:`BOILERPLATE_MIN_PAGES`): site boilerplate
  such as a copyright line or a "This Page / Show Source" box.

A chunk is a *chrome chunk* when at least half of its words are on
navigation lines.

A quotable span (``dsqa.sentences.sentence_spans``) is a *wrapped-line
fragment* when it ends at the end of a line without closing punctuation and
the next line goes on with the same paragraph (a non-blank line that opens
no block: no heading, list item, definition, table row, quote, fence or
indented code).

Today's code knows which of a chunk's quotable spans are lines of code or
table rows (``Chunk.units``, from the whole note): :func:`chunker_fragments`
counts its prose sentences only. A chunk's text read alone cannot always
tell (a chunk that starts inside a code block pairs its fences the wrong
way round), so the as-filed row, whose code records no such thing, is read
from the text with :func:`fragments`' own rule for code.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: Words of page navigation, lower case.
NAV_WORDS = frozenset(
    "prev previous next up home top index contents table of toc search quick go navigation nav menu skip to content "
    "main jump this page show source view report a bug edit on github back older newer posts topic chapter "
    "related links tags categories share print permalink breadcrumbs sidebar footer header theme auto light dark "
    "frames no all classes overview package tree deprecated help".split()
)
BOILERPLATE_SHARE = 0.2
BOILERPLATE_MIN_PAGES = 3
#: A chunk is chrome when at least this share of its words is on navigation lines.
CHROME_SHARE = 0.5

_MARKS = re.compile(r"^\s*(?:>\s*)*(?:#{1,7}\s+|[-*+•]\s+|\d+[.)]\s+)?")
_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")
_BLOCK_START = re.compile(r"^\s*(?:#{1,7}\s|[-*+•]\s|\d+[.)]\s|:\s|\||>|```|~~~|    |\t)")
_CLOSING = tuple(".!?:;")
#: A fence line, in a block quote or opening a list item too ("> - ```").
_FENCE = re.compile(r"^\s*(?:>\s?)*\s*(?:(?:[-*+]|\d{1,9}[.)])\s+)?(?:```|~~~)")


def _norm(text: str) -> str:
    """Letters and digits only, lower case: "5.4.1.Check Constraints" and
    "5.4.1. Check Constraints" are one heading."""
    return re.sub(r"[\W_]+", "", text.lower())


def _body(line: str) -> str:
    return _MARKS.sub("", line).strip()


@dataclass
class Corpus:
    """The indexed chunks of one corpus, as (source, heading path, text)."""

    chunks: Sequence[tuple[str, str, str]]

    def __post_init__(self) -> None:
        self.headings = {_norm(h) for _, path, _ in self.chunks for h in path.split(" › ") if _norm(h)}
        pages: dict[str, set[str]] = defaultdict(set)
        for source, _, text in self.chunks:
            for line in text.split("\n"):
                key = _norm(line)
                if key:
                    pages[key].add(source)
        n = len({source for source, _, _ in self.chunks})
        least = max(BOILERPLATE_MIN_PAGES, BOILERPLATE_SHARE * n)
        self.boilerplate = {line for line, sources in pages.items() if len(sources) >= least}

    def navigation_line(self, line: str) -> bool:
        body = _body(line)
        words = [w.lower() for w in _WORD.findall(body)]
        if not words:
            return False
        if all(w in NAV_WORDS for w in words):
            return True
        if _norm(line) in self.boilerplate:
            return True
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            named = [c for c in cells if _norm(c)]
            return bool(named) and all(_norm(c) in self.headings or all(w.lower() in NAV_WORDS for w in _WORD.findall(c)) for c in named)
        if _MARKS.match(line) and _MARKS.match(line).group(0).strip() not in ("", ">") and not stripped.startswith("#"):
            return _norm(body) in self.headings  # a list item naming a heading: a table of contents
        return False

    def chrome_chunk(self, text: str) -> bool:
        total = nav = 0
        for line in text.split("\n"):
            n = len(_WORD.findall(line))
            total += n
            if n and self.navigation_line(line):
                nav += n
        return total > 0 and nav >= CHROME_SHARE * total

    def chrome_share(self) -> float:
        """Share of the chunks that are chrome chunks."""
        if not self.chunks:
            return 0.0
        return sum(self.chrome_chunk(text) for _, _, text in self.chunks) / len(self.chunks)


def fragments(text: str, spans: Iterable[tuple[int, int]], prose: bool = False) -> int:
    """How many of the quotable ``spans`` of ``text`` are wrapped-line
    fragments: they end at a line's end without closing punctuation while
    the paragraph goes on, or start a line that goes on with the paragraph
    of the line before (see the module's docstring). Lines inside fences
    are taken for code, unless ``prose`` says every span is prose."""
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    fenced = [False] * len(lines) if prose else _fenced(lines)
    count = 0
    for start, end in spans:
        first, last = _line_index(starts, start), _line_index(starts, end - 1)
        cut_after = (
            not fenced[last]
            and not text[end:].split("\n", 1)[0].strip()
            and text[end - 1 : end] not in _CLOSING
            and last + 1 < len(lines)
            and _continues(lines[last], lines[last + 1])
        )
        cut_before = (
            not fenced[first]
            and not text[starts[first] : start].strip(" >\t")
            and first > 0
            and lines[first - 1].rstrip()[-1:] not in _CLOSING
            and _continues(lines[first - 1], lines[first])
        )
        count += cut_after or cut_before
    return count


def chunker_fragments(settings: Any, embedder: Any) -> tuple[int, int]:
    """(quotable spans, wrapped-line fragments) of the chunks today's
    chunker makes of ``settings.corpus_dir`` (as a reindex does): every
    span counted, fragments among the prose sentences only, since the
    chunker knows which spans are lines of a code block or rows of a table
    (``Chunk.units``)."""
    from dsqa.build.reindex import chunker_for
    from dsqa.sources.loading import open_corpus

    chunker = chunker_for(settings, embedder)
    spans = count = 0
    for note in open_corpus(settings.corpus_dir):
        for chunk in chunker.chunk(note):
            spans += len(chunk.sentences)
            count += fragments(chunk.text, [s for s, unit in zip(chunk.sentences, chunk.units, strict=True) if unit < 0], prose=True)
    return spans, count


def _continues(line: str, nxt: str) -> bool:
    """``nxt`` goes on with the paragraph of ``line``."""
    if not line.strip() or not nxt.strip():
        return False
    quoted = line.lstrip().startswith(">")
    if quoted != nxt.lstrip().startswith(">"):
        return False
    if quoted:
        line, nxt = line.lstrip()[1:], nxt.lstrip()[1:]
        if not line.strip() or not nxt.strip():
            return False
        nxt = nxt[1:] if nxt.startswith(" ") else nxt
    return _BLOCK_START.match(nxt) is None and not line.lstrip().startswith(("#", "|"))


def _fenced(lines: list[str]) -> list[bool]:
    """Which lines are code: inside a fenced block (in a block quote too).
    A chunk can start or end inside a code block; with an odd number of
    fences, the lines before the first fence and after the last are taken
    for code as well."""
    fences = [i for i, line in enumerate(lines) if _FENCE.match(line)]
    out, inside = [], False
    for i, _ in enumerate(lines):
        fence = i in fences
        out.append(inside or fence)
        if fence:
            inside = not inside
    if len(fences) % 2:
        for i in list(range(fences[0])) + list(range(fences[-1], len(lines))):
            out[i] = True
    return out


def _line_index(starts: list[int], offset: int) -> int:
    import bisect

    return bisect.bisect_right(starts, offset) - 1
