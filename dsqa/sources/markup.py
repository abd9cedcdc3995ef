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
from dataclasses import dataclass, replace
from typing import Any

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


# -- block structure ---------------------------------------------------------

#: Kinds of :class:`Block`.
HEADING, LABEL, PARAGRAPH, CODE, TABLE, HTML, RULE, OTHER = (
    "heading", "label", "paragraph", "code", "table", "html", "rule", "other")
#: A label (one-line title without heading syntax) ranks below every heading.
LABEL_LEVEL = MAX_LEVEL + 1
#: Longest label, in characters.
MAX_LABEL_CHARS = 80

#: ``**Title**`` (or ``__Title__``) alone on a line, a colon allowed after it.
_BOLD_LINE = re.compile(r"^(\*\*|__)([^*_\n]{2,80}?)\1:?$")
#: "Section 3 - Overlay Networking", "Part #2: Storage", "Lab 4. Swarm".
_NUMBERED_TITLE = re.compile(
    r"^(?:section|part|chapter|module|lab|lecture|lesson|unit|week|step|topic)\s*#?\s*\d+[a-z]?\s*[-–—:.)]\s*\S", re.IGNORECASE
)
#: In a note without any heading (a copied web page), a short line without
#: closing punctuation between blank lines is a title.
_PLAIN_TITLE = re.compile(r"^(?!\w+:\s*\d)[A-Z0-9][^.;!?]{1,70}(?<!:)$")
_LABEL_CONTAINER = re.compile(r"^[ \t]*(?:>[ \t]?[ \t]*)*")
#: A bold label run into the text after it ("**Note:** ...", "**See also:**
#: ..."): a labelled box's text, not a title of what follows.
_RUN_IN_LABEL = re.compile(r"^(\*\*|__)[^*_\n]{1,40}?(?::\1|\1:)[ \t]+\S")


@dataclass(frozen=True)
class Item:
    """A list item: lines ``first:end`` (0-based, end exclusive, its nested
    items included), its nesting ``depth`` (1 for an item of a top-level
    list) and the index of the item it is nested in (``-1``: none)."""

    first: int
    end: int
    depth: int
    parent: int


@dataclass(frozen=True)
class Block:
    """A leaf block of a note as CommonMark reads it: lines ``first:end``
    (0-based, end exclusive).

    ``item`` is the index (into :attr:`Structure.items`) of the innermost list
    item holding the block (``-1``: none), ``lead`` whether the block opens
    that item (its first line carries the list marker), ``quotes`` how many
    blockquotes hold it (each adds a ``>`` marker to its lines;
    ``quote_lines`` of one paragraph: the blockquote's whole size,
    in lines), ``level`` a heading's level and
    ``content`` the block's inline source (a heading's or a paragraph's text,
    markers and container prefixes removed; empty for other kinds)."""

    kind: str
    first: int
    end: int
    item: int = -1
    lead: bool = False
    quotes: int = 0
    quote_lines: int = 0
    level: int = 0
    content: str = ""
    #: A paragraph's lines that end in a hard line break (two trailing spaces
    #: or a backslash), as 0-based line indexes.
    hard_breaks: tuple[int, ...] = ()

    @property
    def quote(self) -> bool:
        """Whether the block is inside a blockquote."""
        return self.quotes > 0


@dataclass(frozen=True)
class Structure:
    blocks: tuple[Block, ...]
    items: tuple[Item, ...]

    def item_chain(self, item: int) -> list[int]:
        """``item`` and the items it is nested in, innermost first."""
        chain = []
        while item >= 0:
            chain.append(item)
            item = self.items[item].parent
        return chain


def shift(block: Block, by: int) -> Block:
    """``block`` moved ``by`` lines down (a block of a text read on its own
    that starts at line ``by`` of a larger one)."""
    if not by:
        return block
    return replace(block, first=block.first + by, end=block.end + by, hard_breaks=tuple(k + by for k in block.hard_breaks))


def _parser():  # type: ignore[no-untyped-def]
    from markdown_it import MarkdownIt

    # Raw HTML on: an ``<a name=…>`` line is an HTML block, not a paragraph.
    return MarkdownIt("commonmark", {"html": True}).enable("table")


_PARSER = None
_LEAF_KINDS = {"heading_open": HEADING, "paragraph_open": PARAGRAPH, "fence": CODE, "code_block": CODE,
               "table_open": TABLE, "html_block": HTML, "hr": RULE}


def parse(text: str) -> Structure:
    """``text`` read as CommonMark (with tables): its leaf blocks in order,
    each with its source lines, and its list items with their nesting.

    Every non-blank line of ``text`` belongs to exactly one block: lines
    CommonMark gives no block (link reference definitions, a list marker
    alone) become ``other`` blocks, so nothing of a note is ever lost."""
    global _PARSER
    if _PARSER is None:
        _PARSER = _parser()
    tokens = _PARSER.parse(text)
    lines = text.split("\n")
    reader = _TokenReader(lines)
    for i, tok in enumerate(tokens):
        reader.read(tok, tokens[i + 1] if i + 1 < len(tokens) else None)
    return Structure(tuple(_labels(_fill_gaps(reader.blocks, reader.items, lines), lines)), tuple(reader.items))


class _TokenReader:
    """markdown-it's token stream in, leaf blocks and list items out."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.blocks: list[Block] = []
        self.items: list[Item] = []
        self.open_items: list[int] = []  # indexes of the list items being read
        self.item_has_block: list[bool] = []
        self.quotes: list[int] = []  # sizes (lines) of the blockquotes being read

    def read(self, tok: Any, following: Any) -> None:
        kind = tok.type
        if kind == "list_item_open":
            first, end = tok.map if tok.map else (0, 0)
            parent = self.open_items[-1] if self.open_items else -1
            self.items.append(Item(first, end, len(self.open_items) + 1, parent))
            self.open_items.append(len(self.items) - 1)
            self.item_has_block.append(False)
        elif kind == "list_item_close":
            self.open_items.pop()
            self.item_has_block.pop()
        elif kind == "blockquote_open":
            self.quotes.append((tok.map[1] - tok.map[0]) if tok.map else 0)
        elif kind == "blockquote_close":
            self.quotes.pop()
        elif tok.map and kind in _LEAF_KINDS:
            self.leaf(tok, _LEAF_KINDS[kind], following)

    def leaf(self, tok: Any, kind: str, following: Any) -> None:
        first, end = tok.map
        item = self.open_items[-1] if self.open_items else -1
        lead = bool(self.open_items) and not self.item_has_block[-1]
        if self.open_items:
            self.item_has_block[-1] = True
        content = following.content if kind in (HEADING, PARAGRAPH) and following is not None else ""
        level = int(tok.tag[1:]) if kind == HEADING else 0
        hard: tuple[int, ...] = ()
        if kind == PARAGRAPH:
            hard = tuple(k for k in range(first, end - 1) if self.lines[k].endswith(("  ", "\\")))
        quote = self.quotes[0] if self.quotes else 0
        self.blocks.append(Block(kind, first, end, item, lead, len(self.quotes), quote, level, content, hard))


def label_text(block: Block, lines: list[str]) -> str | None:
    """The title a paragraph's first line gives what follows, or ``None``.

    Authors title parts without heading syntax: a bold line alone
    (``**Swarm**``, ``> **Swarm**``), a short one-line blockquote
    (``> Overlay Networking``), a numbered line ("Section 3 - Overlay
    Networking"). A line inside a list item is never a label: it is the
    item's text."""
    if block.kind != PARAGRAPH or block.item >= 0:
        return None
    first = lines[block.first][_LABEL_CONTAINER.match(lines[block.first]).end() :].strip()  # type: ignore[union-attr]
    bold = _BOLD_LINE.match(first)
    if bold:
        return bold.group(2).strip()
    if block.end - block.first != 1 or len(first) > MAX_LABEL_CHARS or len(first.split()) > TITLE_WORDS:
        return None
    if block.quote and block.quote_lines == 1 and not first.endswith((".", "!", "?", ",", ";")) and not _RUN_IN_LABEL.match(first):
        return first.rstrip(":").strip() or None
    if _NUMBERED_TITLE.match(first):
        return first
    return None


def _labels(blocks: list[Block], lines: list[str]) -> list[Block]:
    """``blocks`` with label lines (:func:`label_text`) as ``label`` blocks
    of level :data:`LABEL_LEVEL`; a paragraph whose first line is a bold
    title keeps its other lines as a paragraph. In a note without any
    heading, a short line alone between blank lines is a label too."""
    plain = not any(b.kind == HEADING and b.content.strip() for b in blocks)
    out: list[Block] = []
    for b in blocks:
        title = label_text(b, lines)
        if title is None and plain and b.kind == PARAGRAPH and b.end - b.first == 1 and b.item < 0 and not b.quote:
            line = lines[b.first].strip()
            before_blank = b.first == 0 or not lines[b.first - 1].strip()
            after_blank = b.end >= len(lines) or not lines[b.end].strip()
            if _PLAIN_TITLE.match(line) and len(line.split()) <= TITLE_WORDS and before_blank and after_blank:
                title = line
        if title is None:
            out.append(b)
            continue
        out.append(replace(b, kind=LABEL, end=b.first + 1, level=LABEL_LEVEL, content=title, hard_breaks=()))
        if b.end - b.first > 1:
            hard = tuple(k for k in b.hard_breaks if k > b.first)
            out.append(replace(b, kind=PARAGRAPH, first=b.first + 1, lead=False, level=0, content=b.content.split("\n", 1)[-1], hard_breaks=hard))
    return out


def _fill_gaps(blocks: list[Block], items: list[Item], lines: list[str]) -> list[Block]:
    """``blocks`` with an ``other`` block for each run of non-blank lines no
    block covers, and each block's lines clipped to its last non-blank one
    (CommonMark counts the blank lines after a fenced block into it)."""
    covered = [False] * len(lines)
    out: list[Block] = []
    for b in blocks:
        end = b.end
        while end - 1 > b.first and not lines[end - 1].strip():
            end -= 1
        b = replace(b, end=end)
        for k in range(b.first, min(b.end, len(lines))):
            covered[k] = True
        out.append(b)
    k = 0
    extra: list[Block] = []
    while k < len(lines):
        if covered[k] or not lines[k].strip():
            k += 1
            continue
        j = k
        while j < len(lines) and not covered[j] and lines[j].strip():
            j += 1
        holder = max((n for n, it in enumerate(items) if it.first <= k < it.end), default=-1, key=lambda n: items[n].depth if n >= 0 else 0)
        extra.append(Block(OTHER, k, j, holder))
        k = j
    if extra:
        out = sorted(out + extra, key=lambda b: (b.first, b.end))
    return out
