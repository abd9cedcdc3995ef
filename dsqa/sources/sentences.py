"""Splitting a passage into the sentences an answer can quote.

Notes are rarely plain prose: they are Markdown, often hard-wrapped at 80
columns, full of "e.g.", version numbers, ``..`` ranges and parentheses.
Sentences are therefore cut inside the blocks CommonMark finds
(:func:`dsqa.sources.markup.parse`), never across two of them and never at a soft
line break: a paragraph's lines are joined (their indent, blockquote and
list markers left out) before the segmenter reads them, and each sentence
found is mapped back to exact character offsets of the text, so a quote and
the page's highlight are always the note's own words. The segmenter is
``sentencex`` (chosen by measuring it against pysbd, syntok and blingfire on
the bundled notes: ``experiments/segmenters.py``).

Only prose is split: a heading is not an answer; each line of a code block
or a table row counts as one sentence (a command can be the answer); an
image link or an HTML tag says nothing. A hard line break (two trailing
spaces, a backslash) and an image end a sentence as a blank line would.

:func:`sentence_spans` is the one place sentences come from: the chunker
records each chunk's sentences with it, the index embeds a window around
each, and the answer quotes and the page highlights exactly those spans.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from . import markup

#: A sentence needs this many words to say something by itself.
MIN_WORDS = 4

_MARKUP_ONLY = re.compile(r"^\s*(!\[[^\]]*\]\([^)]*\)|<[^>]+>|[#>*\-•|`~=_:\s]+|\d+[.)]?)\s*$")
#: What opens a paragraph line without being its text: indent, blockquote
#: markers, and (on the first line of a list item) list markers.
_CONTAINER = re.compile(r"[ \t]*(?:>[ \t]?[ \t]*)*")
_LIST_MARKER = re.compile(r"(?:(?:[*+\-•]|\d{1,9}[.)])(?:[ \t]+|$))+")
#: A bullet glyph opening a line (text copied from slides, a PDF): the line
#: starts an item of its own, as a list marker would.
_GLYPH = re.compile(r"[•◦▪‣●○■□►▶➢✓✔][ \t]+")
#: Inline pieces that end a sentence where they stand: images, line-break tags.
_BREAKS = re.compile(r"!\[[^\]]*\]\([^)]*\)|<br\s*/?>", re.IGNORECASE)

Segmenter = Callable[[str], list[tuple[int, int]]]


def _sentencex(text: str) -> list[tuple[int, int]]:
    from sentencex import segment

    spans = []
    at = 0
    for piece in segment("en", text):
        start = text.find(piece, at)
        if start < 0:  # the segmenter never rewrites text; never lose it if it did
            return [(0, len(text))]
        spans.append((start, start + len(piece)))
        at = start + len(piece)
    return spans


#: The segmenter in use: text in, (start, end) of each sentence out.
SEGMENTER: Segmenter = _sentencex

_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
#: A sentence that ends in an enumeration number ("… four modules. 1.",
#: "(2.") is not one: the number belongs to the next.
_ENUMERATION = re.compile(r"(?:^|(?<!\.)[.!?:;,]\s+|\(|\s(?:and|or)\s+)\d{1,2}[.)]$")
#: Nothing starts a sentence with these: the cut was inside a path or a quote.
_NO_START = tuple("/.,;:)]}")


def markdown_sentences(text: str, segment: Segmenter | None = None) -> list[tuple[int, int]]:
    """The sentences of a run of Markdown prose: the segmenter's, joined
    again where it cut inside an inline code span, after an enumeration
    number, before a character no sentence starts with, or inside
    parentheses that close in the next sentence."""
    spans = (segment or SEGMENTER)(text)
    code = [(m.start(), m.end()) for m in _CODE_SPAN.finditer(text)] if "`" in text else []
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and _joins(text, out[-1], (a, b), code):
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _joins(text: str, previous: tuple[int, int], current: tuple[int, int], code: list[tuple[int, int]]) -> bool:
    cut = current[0]
    if any(a < cut < b for a, b in code):
        return True
    before = text[previous[0] : previous[1]].rstrip()
    after = text[current[0] : current[1]].lstrip()
    if not after or after.startswith(_NO_START) or _ENUMERATION.search(before):
        return True
    if before[-1:] == "." and before[-2:-1].isdigit() and not text[cut - 1 : cut].isspace():
        return True  # "run at least 1.Kubelet": a number glued to what it counts
    return before.count("(") > before.count(")") and after.count(")") > after.count("(")


def paragraph_pieces(text: str, lines: list[str], starts: list[int], block: markup.Block) -> Iterator[tuple[str, list[tuple[int, int, int]]]]:
    """The runs of prose of a paragraph block, each as the joined text the
    segmenter reads and its map back to ``text``: ``(joined offset, text
    offset, length)`` per line piece. Soft line breaks become one space;
    hard breaks, images and bullet glyphs end a run."""
    run = _Run()
    for k in range(block.first, block.end):
        line = lines[k]
        begin = _content_start(line, k == block.first and block.lead)
        glyph = _GLYPH.match(line, begin)
        if glyph:
            yield from run.flush()
            begin = glyph.end()
        end = len(line.rstrip())
        hard = k in block.hard_breaks
        if hard and line.rstrip().endswith("\\"):
            end -= 1
        pos = begin
        for m in _BREAKS.finditer(line, begin, end):
            run.add(starts[k] + pos, line[pos : m.start()])
            yield from run.flush()
            pos = m.end()
        run.add(starts[k] + pos, line[pos:end])
        if hard:
            yield from run.flush()
    yield from run.flush()


def _content_start(line: str, lead: bool) -> int:
    """Where a paragraph line's text starts: after its indent and blockquote
    markers, and on an item's first line after its list marker."""
    at = _CONTAINER.match(line)
    begin = at.end() if at else 0
    if lead:
        marker = _LIST_MARKER.match(line, begin)
        if marker:
            begin = marker.end()
    return begin


class _Run:
    """A run of prose being joined: its text and its map back to the note."""

    def __init__(self) -> None:
        self.joined = ""
        self.pieces: list[tuple[int, int, int]] = []

    def add(self, offset: int, piece: str) -> None:
        if not piece.strip():
            return
        if self.joined:
            self.joined += " "
        self.pieces.append((len(self.joined), offset, len(piece)))
        self.joined += piece

    def flush(self) -> Iterator[tuple[str, list[tuple[int, int, int]]]]:
        if self.joined.strip():
            yield self.joined, self.pieces
        self.joined, self.pieces = "", []


def _to_text(pieces: list[tuple[int, int, int]], pos: int) -> int:
    """The ``text`` offset of joined offset ``pos`` (which is not a joining space)."""
    for joined_at, text_at, length in reversed(pieces):
        if pos >= joined_at:
            return text_at + min(pos - joined_at, length)
    return pieces[0][1]


def _block_spans(text: str, lines: list[str], starts: list[int], block: markup.Block) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if block.kind == markup.PARAGRAPH:
        for joined, pieces in paragraph_pieces(text, lines, starts, block):
            for a, b in markdown_sentences(joined):
                while a < b and joined[a].isspace():
                    a += 1
                while b > a and joined[b - 1].isspace():
                    b -= 1
                if a < b and _says_something(joined[a:b]):
                    spans.append((_to_text(pieces, a), _to_text(pieces, b - 1) + 1))
    elif block.kind in (markup.CODE, markup.TABLE):
        for k in range(block.first, block.end):
            line = lines[k]
            begin = _quote_markers_end(line, block.quotes)
            body = line[begin:].strip()
            if body.startswith("#") or markup.fence(body) or not _says_something(body):
                continue
            start = starts[k] + len(line) - len(line[begin:].lstrip())
            spans.append((start, start + len(body)))
    return spans


_QUOTE_MARKER = re.compile(r"[ ]{0,3}>[ \t]?")


def _quote_markers_end(line: str, quotes: int) -> int:
    """Where a line of a block held in ``quotes`` blockquotes starts after
    their ``>`` markers: a line of code or a table row in a quoted box is
    quoted without them, and a ``>`` of the code itself (``>>>``) stays."""
    at = 0
    for _ in range(quotes):
        m = _QUOTE_MARKER.match(line, at)
        if m is None:
            break  # a lazy continuation line carries no marker
        at = m.end()
    return at


def _says_something(sentence: str) -> bool:
    return len(sentence.split()) >= MIN_WORDS and not _MARKUP_ONLY.match(sentence)


def block_sentence_spans(
    text: str, blocks: Iterable[markup.Block], lines: list[str] | None = None, starts: list[int] | None = None
) -> list[tuple[int, int]]:
    """The quotable sentences of ``text``, whose blocks (from
    :func:`dsqa.sources.markup.parse`) are ``blocks``, in order (``lines`` and
    their ``starts``: ``text``'s, when the caller has them)."""
    lines = text.split("\n") if lines is None else lines
    starts = _line_starts(lines) if starts is None else starts
    spans: list[tuple[int, int]] = []
    for block in blocks:
        spans.extend(_block_spans(text, lines, starts, block))
    return spans


def title_spans(text: str, blocks: Iterable[markup.Block]) -> list[tuple[int, int]]:
    """The label lines among ``blocks`` long enough to say something
    (:data:`MIN_WORDS`), as spans of their text: never quoted, but the
    neighbours of the sentences under them in a window."""
    lines = text.split("\n")
    starts = _line_starts(lines)
    spans = []
    for b in blocks:
        if b.kind == markup.LABEL and len(b.content.split()) >= MIN_WORDS:
            line = lines[b.first]
            begin = _content_start(line, False)
            end = len(line.rstrip())
            if end > begin:
                spans.append((starts[b.first] + begin, starts[b.first] + end))
    return spans


def sentence_cuts(text: str, lines: list[str], starts: list[int], block: markup.Block) -> list[tuple[int, int, bool]]:
    """A paragraph block cut into consecutive pieces, each a whole sentence
    (short ones too): where a paragraph too long for one chunk may be cut.
    The pieces cover the block's text. Each says whether it opens a line of
    its own (after a bullet glyph or a hard line break): a better place to
    cut than between two sentences of one line."""
    begin = starts[block.first]
    last = min(block.end, len(lines)) - 1
    stop = starts[last] + len(lines[last])
    cuts = {begin: True}
    for joined, pieces in paragraph_pieces(text, lines, starts, block):
        for n, (a, _) in enumerate(markdown_sentences(joined)):
            while a < len(joined) and joined[a].isspace():
                a += 1
            if a >= len(joined):
                continue
            at = _line_start_if_first(text, _to_text(pieces, a))
            if at > begin:
                cuts[at] = n == 0 and (at == 0 or text[at - 1] == "\n")
    order = sorted(cuts)
    out = []
    for a, b in zip(order, order[1:] + [stop], strict=True):
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b, cuts[a]))
    return out


def _line_start_if_first(text: str, at: int) -> int:
    """``at``, or the start of its line when only indent and markers precede
    it there (a piece then starts with its line, markers included)."""
    line_start = text.rfind("\n", 0, at) + 1
    return line_start if not text[line_start:at].strip(" \t>*+-•") or _LIST_MARKER.fullmatch(text[line_start:at].strip() + " ") else at


def _line_starts(lines: list[str]) -> list[int]:
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    return starts


@functools.lru_cache(maxsize=8)
def _all_spans(text: str) -> tuple[tuple[int, int], ...]:
    indent = _common_indent(text)
    if indent:
        # A passage cut from inside a list: read it as the list it was in,
        # not as indented code (offsets shift by the same amount per line).
        lines = text.split("\n")
        view = "\n".join(line[indent:] for line in lines)
        spans = block_sentence_spans(view, markup.parse(view).blocks)
        starts, view_starts = _line_starts(lines), _line_starts(view.split("\n"))
        out = []
        for a, b in spans:
            k = _line_index(view_starts, a)
            m = _line_index(view_starts, b - 1)
            out.append((a - view_starts[k] + starts[k] + indent, b - view_starts[m] + starts[m] + indent))
        return tuple(out)
    return tuple(block_sentence_spans(text, markup.parse(text).blocks))


def _line_index(starts: list[int], offset: int) -> int:
    import bisect

    return bisect.bisect_right(starts, offset) - 1


def _common_indent(text: str) -> int:
    widths = [len(line) - len(line.lstrip(" ")) for line in text.split("\n") if line.strip()]
    return min(widths, default=0)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of the quotable sentences in ``text[start:end]``,
    relative to ``start``. ``text`` is read as Markdown as a whole (so a
    chunk's sentences come out the same as in its note); the sentences of
    the range are those lying wholly inside it."""
    stop = len(text) if end is None else end
    return [(a - start, b - start) for a, b in _all_spans(text) if a >= start and b <= stop]


def sentence_windows(
    text: str,
    size: int = 3,
    spans: Sequence[tuple[int, int]] | None = None,
    contexts: Sequence[str] = (),
    titles: Sequence[tuple[int, int]] = (),
    units: Sequence[int] = (),
) -> list[tuple[int, int, list[str]]]:
    """One window per quotable sentence: the sentence with its neighbours
    (``size`` sentences in all), as (sentence start, sentence end, the
    window's sentences). ``spans`` are the sentences of ``text`` when the
    caller has them (a chunk's, found in its whole note), else
    :func:`sentence_spans` finds them. ``titles`` (label lines) count as
    neighbours but are never a window's centre; ``contexts`` (per sentence,
    the list item it is nested in) open a window that lacks its item's line.
    ``units`` (per sentence, the code block or table it is a line of, -1 for
    prose) make the lines of one block one window: the block's lines (those
    in ``spans``), shared by each of them. A command or a table is read
    whole, as its author wrote it: one line of it is rarely a statement by
    itself, and a window per line stored as many vectors as the block has
    lines. (Its lines, not its text as one: a line repeated in the folder,
    or in the overlap of two chunks, is then embedded once.)

    Scoring a chunk by its best window finds the one bullet that answers a
    question inside a long passage, where a single vector for the whole chunk
    blurs it; the neighbours supply the context a lone bullet lacks. The
    window's centre sentence is then the natural quote for the answer.
    """
    spans = list(sentence_spans(text) if spans is None else spans)
    merged = sorted([(a, b, True) for a, b in spans] + [(a, b, False) for a, b in titles])
    at = {(a, b): i for i, (a, b, quotable) in enumerate(merged) if quotable}
    before = (size - 1) // 2
    after = size - 1 - before
    blocks: dict[int, list[str]] = {}
    for n, (start, end) in enumerate(spans):
        if n < len(units) and units[n] >= 0:
            blocks.setdefault(units[n], []).append(sentence_text(text, start, end))
    out = []
    for n, (start, end) in enumerate(spans):
        unit = units[n] if n < len(units) else -1
        if unit >= 0:
            group = blocks[unit]
        else:
            i = at[(start, end)]
            lo, hi = max(0, i - before), min(len(merged), i + after + 1)
            group = [sentence_text(text, a, b) for a, b, _ in merged[lo:hi]]
        context = contexts[n] if n < len(contexts) else ""
        if context and not any(context in g for g in group):
            group = [context] + group
        out.append((start, end, group))
    return out


_LINE_PREFIX = re.compile(r"\n[ \t]*(?:>[ \t]?[ \t]*)*")


def sentence_text(text: str, start: int, end: int) -> str:
    """The sentence ``text[start:end]`` as one line: the indent and
    blockquote markers of its continuation lines left out, whitespace runs
    made one space."""
    return " ".join(_LINE_PREFIX.sub(" ", text[start:end]).split())
