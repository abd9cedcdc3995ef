"""Cutting notes into citable chunks.

A note is read as CommonMark by markdown-it-py (:func:`dsqa.sources.markup.parse`):
its headings, paragraphs, list items with their nesting, blockquotes, code
blocks and tables, each with its source lines. Headings, and the one-line
labels authors title parts with (a bold line, a short blockquote, "Section 3
- X": :func:`dsqa.sources.markup.label_text`), cut the note into sections with their
heading paths. Each section's blocks are then packed into chunks of at most
``chunk_tokens`` word pieces of the embedding model, cut where the structure
says to (:meth:`Chunker._pack`): between top-level blocks and items rather
than between the items of a deeper level, so that a list item stays with the
items nested under it, and inside a block only when one block alone is too
long (between its sentences, then its lines, then inside a line with
``RecursiveCharacterTextSplitter``). A chunk that starts inside a list item,
or is mostly one item's nested items, carries that item's text in its
heading path. A section too small to stand alone (a title with a line or
two under it) shares a chunk with the start of the subsections it
introduces, under its own heading path, rather than becoming a scrap whose
vector is mostly its headings; a section is never packed with the one
before it, nor with a sibling. Chunks are bounded in characters too (``MAX_CHARS_PER_TOKEN``),
so a megabyte line without a space still becomes chunks of a readable size.

Every chunk is an exact slice ``note.text[start_char:end_char]``, so its line
numbers are computed, not guessed, and a citation always points at the words
shown; so are its sentences (:mod:`dsqa.sources.sentences`), found once in the whole
note. For a PDF the line numbers count within the chunk's page, and the
reader's sections keep every chunk on one page (see ``dsqa.sources.formats``). The
embedded text is the heading path plus the chunk without its image links
and code-span backticks, and is never longer than the model's ``max_seq_length``: the encoder would
silently drop the rest.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..sources import markup, sentences
from ..sources.formats import Layout
from ..sources.loading import Note
from ..sources.markup import HEADING_SEPARATOR

#: Bump when the chunking algorithm changes: indexes built by another
#: version are then stale, since their chunks would differ. (7: a chunk
#: records which sentences are lines of one code block or table; a line of
#: code or a table row inside a blockquote starts after its markers.)
CHUNKER_VERSION = 7
#: The heading path may take at most this share of the model's window; longer
#: paths keep only their innermost headings when embedded.
_MAX_HEADING_SHARE = 0.25
#: Chunks are bounded in characters as well as tokens: at most
#: ``chunk_tokens * MAX_CHARS_PER_TOKEN``. A token count alone does not bound
#: a chunk's size: a word longer than the tokenizer takes counts as one
#: unknown token however long it is, and whitespace counts as nothing. The
#: bound is far above what real notes need, so it cuts only pathological
#: text (a megabyte line) and leaves the chunks of real notes as they are.
MAX_CHARS_PER_TOKEN = 40
#: Each heading of a heading path is cut to this many characters (a whole
#: note can be one heading line); longer than any real heading.
MAX_HEADING_CHARS = 500
#: A list item's text, when a chunk's heading path carries it, is cut to
#: this many characters.
MAX_ITEM_CHARS = 100

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Chunk:
    source: str
    heading: str
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    start_char: int  # offset into the note's text
    end_char: int  # exclusive
    text: str
    #: What the encoder sees: heading path and text.
    embed_text: str
    #: PDFs: the page, and ``start_line``/``end_line`` count within its text.
    page: int | None = None
    #: Notebooks: the cells of the first and the last line.
    cell: int | None = None
    end_cell: int | None = None
    #: The sentences an answer may quote, as offsets into ``text``
    #: (:mod:`dsqa.sources.sentences`, found in the whole note).
    sentences: tuple[tuple[int, int], ...] = ()
    #: Per sentence, the text of the list item it is nested in ("" for
    #: none): context for the sentence's window, as the item's own line is.
    contexts: tuple[str, ...] = ()
    #: The label lines among its lines (titles, never quoted): its sentences'
    #: windows read them as the neighbours they are.
    titles: tuple[tuple[int, int], ...] = ()
    #: Per sentence, the code block or table it is a line of (the same number
    #: for the lines of one block, -1 for prose): a block is one window.
    units: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        """Identity of the vector: equal embed texts share one vector, so an
        edit re-embeds only the chunks it really changed."""
        return hashlib.sha256(self.embed_text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class _Unit:
    """An unbreakable piece of a section: a block, or a sentence, line or
    piece of a block too long for one chunk.

    ``rank`` says how good a place the boundary before it is for a chunk to
    end (lower is better): before a heading, then between top-level blocks
    and top-level list items, then between the items of each deeper level,
    then inside an item, and last inside a block. ``items`` are the list
    items holding it, outermost first: a chunk that starts inside an item
    carries the item's text in its heading path."""

    start: int
    end: int
    tokens: int
    rank: float
    whole_lines: bool
    items: tuple[int, ...] = ()
    #: A blank line (or the section start) precedes it.
    after_blank: bool = True
    #: It starts a chunk that opens with units repeated from the one before.
    own_start: bool = False
    #: The section it is in (an index into the note's sections), and whether
    #: it is that section's first unit.
    section: int = 0
    opens_section: bool = False
    #: Its section's chunk size, and what the model's window leaves beside
    #: that section's heading path.
    budget: int = 0
    room: int = 0


#: Ranks of :class:`_Unit` boundaries.
_RANK_HEADING = 0.0
_RANK_INSIDE_BLOCK = 20.0
#: Added when the unit before introduces this one (it ends in a colon).
_RANK_INTRODUCED = 1.5
#: What each chunk costs the packing, and a chunk under a quarter of the
#: target size costs more: fewer, fuller chunks unless the structure says
#: otherwise.
_CHUNK_COST = 1.0
_SCRAP_COST = 2.0
#: What a chunk costs for each section that starts inside it (after its
#: first): more than another chunk, less than another chunk that is a
#: scrap, so a section shares a chunk with the subsections under it only
#: when it is too small to stand alone.
_SECTION_COST = 1.5


@dataclass(frozen=True)
class _Sentences:
    """A note's quotable sentences (offsets), each one's item context and
    block (:attr:`Chunk.units`), and its title lines."""

    spans: list[tuple[int, int]]
    contexts: list[str]
    titles: list[tuple[int, int]]
    units: list[int]


@dataclass(frozen=True)
class _Section:
    """Lines ``first:end`` of a note under one heading path, and their blocks."""

    first: int
    end: int
    heading: str
    blocks: tuple[markup.Block, ...]
    #: The list items the blocks' ``item`` indexes point into.
    items: tuple[markup.Item, ...]


class _TokenCounts:
    """Token counts of one note's pieces, asked for in batches.

    One tokenizer call per line, block and chunk is slow on a large corpus;
    the chunker primes the counts of each step with one batch call
    (``count_many``, e.g. tokenizers' ``encode_batch``), and asks for single
    counts only for the rare over-long line it must cut."""

    def __init__(self, count: TokenCounter, count_many: Callable[[list[str]], list[int]] | None):
        self._one = count
        self._many = count_many or (lambda texts: [count(t) for t in texts])
        self._known: dict[str, int] = {}

    def prime(self, texts: list[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self._known]
        if missing:
            self._known.update(zip(missing, self._many(missing), strict=True))

    def clear(self) -> None:
        self._known.clear()

    def __call__(self, text: str) -> int:
        n = self._known.get(text)
        if n is None:
            n = self._known[text] = self._one(text)
        return n


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer("\n", text)]


def _cut(heading: str) -> str:
    return heading if len(heading) <= MAX_HEADING_CHARS else heading[: MAX_HEADING_CHARS - 1] + "…"


def _is_title(block: markup.Block) -> bool:
    return block.kind in (markup.HEADING, markup.LABEL) and bool(block.content.strip())


def note_sections(text: str, layout: Layout | None = None) -> list[_Section]:
    """The note's sections with their blocks (:func:`dsqa.sources.markup.parse`).

    A heading or a label (:func:`dsqa.sources.markup.label_text`) starts a section;
    its path is the headings above it, a label ranking below every heading.
    A heading without text (``#`` used as a spacer) starts nothing. A title
    with nothing under it is kept with what follows. A reader may fix the
    sections itself (a PDF's never cross a page): each is then read on its
    own, its leading lines that spell its title taken as that title.
    """
    lines = text.split("\n")
    if layout is not None and layout.sections is not None:
        return [_layout_section(lines, first, end, heading) for first, end, heading in layout.sections]
    structure = markup.parse(text)
    blocks = structure.blocks
    starts: list[tuple[int, str, int]] = []  # (first line, heading path, first block)
    path: list[tuple[int, str]] = []
    for n, block in enumerate(blocks):
        if not _is_title(block):
            continue
        level = block.level
        path = [(lv, t) for lv, t in path if lv < level] + [(level, _cut(" ".join(block.content.split())))]
        starts.append((block.first, HEADING_SEPARATOR.join(t for _, t in path), n))
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, "", 0))
    sections: list[_Section] = []
    carry: int | None = None
    for i, (at, heading, first_block) in enumerate(starts):
        last = i + 1 == len(starts)
        end = len(lines) if last else starts[i + 1][0]
        stop_block = len(blocks) if last else starts[i + 1][2]
        body = blocks[first_block:stop_block]
        begin = at if carry is None else carry
        if not last and all(_is_title(b) for b in body):
            carry = begin  # a title with nothing under it says what follows: keep it with that
            continue
        carry_blocks = () if carry is None else tuple(b for b in blocks if carry <= b.first < at)
        carry = None
        if not body and not carry_blocks and sections:
            continue
        sections.append(_Section(begin, end, heading, carry_blocks + tuple(body), structure.items))
    return sections


def _layout_section(lines: list[str], first: int, end: int, heading: str) -> _Section:
    """A section a reader fixed: its text parsed alone, the leading lines
    that spell its title (a PDF's title lines) made one heading block."""
    title = _squash(heading.split(HEADING_SEPARATOR)[-1]) if heading else ""
    k, spelled = first, ""
    while k < end and title and lines[k].strip() and k - first < 4:
        candidate = spelled + _squash(lines[k])
        if not title.startswith(candidate):
            break
        spelled, k = candidate, k + 1
    if spelled != title:
        k = first
    blocks: list[markup.Block] = []
    if k > first:
        blocks.append(markup.Block(markup.HEADING, first, k, level=1, content=heading.split(HEADING_SEPARATOR)[-1]))
    body = markup.parse("\n".join(lines[k:end]))
    blocks.extend(markup.shift(b, k) for b in body.blocks)
    return _Section(first, end, heading, tuple(blocks), body.items)


def _squash(text: str) -> str:
    return "".join(text.split()).casefold()


def note_sentences(text: str, layout: Layout | None = None) -> list[tuple[int, int]]:
    """The quotable sentences of a whole note (offsets into ``text``), read
    as the chunker reads it (a reader's sections parsed one by one): the
    spans a chunk's ``sentences`` are taken from."""
    return sentences.block_sentence_spans(text, [b for sec in note_sections(text, layout) for b in sec.blocks])


def split_sections(text: str) -> list[tuple[int, int, str]]:
    """Sections as (first line index, end line index exclusive, heading path)."""
    return [(s.first, s.end, s.heading) for s in note_sections(text)]


class Chunker:
    """Chunks notes for one model (its token counter and window size)."""

    def __init__(
        self,
        count_tokens: TokenCounter,
        max_tokens: int,
        chunk_tokens: int = 200,
        overlap_tokens: int = 24,
        embed_headings: bool = True,
        count_many: Callable[[list[str]], list[int]] | None = None,
    ):
        #: Room for the encoder's [CLS] and [SEP].
        self.window = max_tokens - 2
        self.count = _TokenCounts(count_tokens, count_many)
        self.chunk_tokens = min(chunk_tokens, self.window)
        #: No chunk's text is longer than this (see MAX_CHARS_PER_TOKEN).
        self.max_chars = self.chunk_tokens * MAX_CHARS_PER_TOKEN
        self.overlap_tokens = overlap_tokens
        self.embed_headings = embed_headings

    # -- public -----------------------------------------------------------
    def chunk(self, note: Note) -> list[Chunk]:
        text = note.text
        lines = text.split("\n")
        starts = _line_starts(text)
        count = self.count
        count.clear()
        sections = note_sections(text, note.layout)
        # The sentences a chunk can quote, found once in the whole note.
        leads = _item_leads(sections, starts)
        spans, contexts, blocks = _sentences_and_contexts(text, sections, leads)
        titles = sentences.title_spans(text, [b for sec in sections for b in sec.blocks])
        # Each step counts all it needs in one batch: headings, then every
        # block of every section, then every chunk's embedded text.
        count.prime([sec.heading for sec in sections])
        prefixes = [self._embed_prefix(sec.heading) for sec in sections]
        count.prime(prefixes)
        count.prime([text[starts[b.first] : _block_stop(lines, starts, b)] for sec in sections for b in sec.blocks
                     if _block_stop(lines, starts, b) - starts[b.first] <= self.max_chars])
        # A note's sections are packed together, so that a section too small
        # to stand alone can share a chunk with the subsections under it;
        # those a reader fixed (a PDF's never cross a page) each alone.
        runs = [list(range(len(sections)))] if note.layout is None else [[k] for k in range(len(sections))]
        ancestors = _ancestors(sections)
        packed = []
        for run in runs:
            units: list[_Unit] = []
            for k in run:
                room = self.window - count(prefixes[k])
                budget = min(self.chunk_tokens, room)
                sec_units = self._units(text, lines, starts, sections[k], budget)
                if sec_units:
                    sec_units[0] = dataclasses.replace(sec_units[0], opens_section=True)
                units.extend(dataclasses.replace(u, section=k, budget=budget, room=room) for u in sec_units)
            groups = self._pack(units, ancestors)
            packed.append((min((u.budget for u in units), default=self.chunk_tokens), groups))
        # A chunk that starts inside a list item carries the item's text in its path.
        # (Its context comes from where it starts, not from the units it
        # repeats of the chunk before.)
        headings = [[self._run_heading(sections, group[_own_start(group):], leads) for group in groups] for _, groups in packed]
        count.prime([self._embed_prefix(h) for hs in headings for h in hs])
        count.prime([self._embed_prefix(h) + _embeddable(text[g[0].start : g[-1].end])
                     for (_, groups), hs in zip(packed, headings, strict=True) for g, h in zip(groups, hs, strict=True) if len(g) > 1])
        chunks: list[Chunk] = []
        found = _Sentences(spans, contexts, titles, blocks)
        for (budget, groups), hs in zip(packed, headings, strict=True):
            for group, heading in zip(groups, hs, strict=True):
                chunks.extend(self._make_chunks(note, starts, heading, self._embed_prefix(heading), group, budget, found))
        count.clear()
        return chunks

    # -- helpers -----------------------------------------------------------
    def _embed_prefix(self, heading: str) -> str:
        if not (self.embed_headings and heading):
            return ""
        parts = heading.split(HEADING_SEPARATOR)
        limit = int(self.window * _MAX_HEADING_SHARE)
        while parts and self.count(HEADING_SEPARATOR.join(parts)) > limit:
            parts = parts[1:]
        if not parts:
            return ""
        return HEADING_SEPARATOR.join(parts) + "\n"

    @classmethod
    def _run_heading(cls, sections: list[_Section], group: list[_Unit], leads: dict[tuple[int, int], tuple[int, str]]) -> str:
        """A chunk's heading path: its section's (:meth:`_group_heading`);
        for a chunk that holds a small section and the start of the
        subsections under it, that section's path (theirs go on from it, and
        their titles are in the chunk's text)."""
        first = sections[group[0].section]
        if any(u.section != group[0].section for u in group):
            return first.heading
        return cls._group_heading(first, group, leads)

    @staticmethod
    def _group_heading(sec: _Section, group: list[_Unit], leads: dict[tuple[int, int], tuple[int, str]]) -> str:
        """The section's heading path, then the text of each list item that
        is the group's context: one it starts inside of (its first line is
        in an earlier chunk), or one whose nested items make up most of the
        group (an item that introduces nested items titles them, as a
        heading would; a short last item folded in does not change that)."""
        parts = [sec.heading] if sec.heading else []
        total = sum(u.tokens for u in group)
        for item in group[0].items:
            lead = leads.get((id(sec.items), item))
            if lead is None or not lead[1]:
                continue
            inside = sum(u.tokens for u in group[1:] if item in u.items)
            if lead[0] < group[0].start or (len(group) > 1 and inside >= total * 3 // 4):
                parts.append(lead[1])
        return HEADING_SEPARATOR.join(parts)

    def _units(self, text: str, lines: list[str], starts: list[int], sec: _Section, budget: int) -> list[_Unit]:
        units: list[_Unit] = []
        introduced = False
        for b in sec.blocks:
            begin, stop = starts[b.first], _block_stop(lines, starts, b)
            if stop <= begin:
                continue
            items = tuple(reversed(_chain(sec.items, b.item)))
            rank = _block_rank(sec.items, b) + (_RANK_INTRODUCED if introduced else 0.0)
            introduced = b.kind in (markup.PARAGRAPH, markup.LABEL) and text[begin:stop].rstrip().endswith(":")
            too_wide = stop - begin > self.max_chars  # not counted: it may be megabytes
            tokens = 0 if too_wide else self.count(text[begin:stop])
            if not too_wide and tokens <= budget:
                units.append(_Unit(begin, stop, tokens, rank, True, items, _after_blank(text, begin)))
                continue
            if b.kind == markup.PARAGRAPH:
                # a line of its own (a bullet glyph's, after a hard break) is
                # cut before as between an item's blocks; other sentences last
                pieces = [(a, z, False, line) for a, z, line in sentences.sentence_cuts(text, lines, starts, b)]
            else:  # code, a table, anything else too long: its lines
                pieces = [(starts[k], starts[k] + len(lines[k]), True, False) for k in range(b.first, b.end) if lines[k].strip()]
            first_piece = True
            for a, z, whole, own_line in pieces:
                piece_rank = rank if first_piece else (_block_rank(sec.items, b) + 0.5 if own_line else _RANK_INSIDE_BLOCK)
                for u in self._piece_units(text, lines, starts, a, z, budget, whole):
                    units.append(_Unit(u.start, u.end, u.tokens, piece_rank, u.whole_lines, items, _after_blank(text, u.start)))
                    piece_rank = _RANK_INSIDE_BLOCK
                first_piece = False
        return units

    def _piece_units(self, text: str, lines: list[str], starts: list[int], begin: int, stop: int, budget: int,
                     whole: bool) -> list[_Unit]:
        """A sentence or line as units: itself when it fits, else its lines,
        else pieces cut inside it."""
        if stop - begin <= self.max_chars and self.count(text[begin:stop]) <= budget:
            return [_Unit(begin, stop, self.count(text[begin:stop]), 0.0, whole)]
        if "\n" in text[begin:stop]:
            out: list[_Unit] = []
            at = begin
            while at < stop:
                nl = text.find("\n", at, stop)
                end = stop if nl < 0 else nl
                if text[at:end].strip():
                    whole_line = at == 0 or text[at - 1] == "\n"
                    out.extend(self._piece_units(text, lines, starts, at, end, budget, whole_line))
                at = end + 1
            return out
        return self._line_units(text, begin, stop, budget, False)

    def _line_units(self, text: str, begin: int, stop: int, budget: int, whole: bool) -> list[_Unit]:
        """``text[begin:stop]`` (one line or one sentence) as units of at most
        ``budget`` tokens: cut at sentence ends, then clauses, then words."""
        if stop - begin > self.max_chars:
            units: list[_Unit] = []
            for at, end in self._char_pieces(text, begin, stop):
                units.extend(_Unit(u.start, u.end, u.tokens, 0.0, False) for u in self._line_units(text, at, end, budget, False))
            return units
        piece = text[begin:stop]
        if not piece.strip():
            return []
        tokens = self.count(piece)
        if tokens <= budget:
            return [_Unit(begin, stop, tokens, 0.0, whole)]
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            separators=[". ", "? ", "! ", "; ", ", ", " ", ""],
            keep_separator="end",
            chunk_size=budget,
            chunk_overlap=0,
            length_function=self.count,
            add_start_index=True,
        )
        units = []
        for doc in splitter.create_documents([piece]):
            at = begin + doc.metadata["start_index"]
            units.append(_Unit(at, at + len(doc.page_content), self.count(doc.page_content), 0.0, False))
        return units

    def _char_pieces(self, text: str, begin: int, stop: int) -> list[tuple[int, int]]:
        """``text[begin:stop]`` cut into pieces of at most ``max_chars``, each
        after the last whitespace in the second half of its window when there
        is one (else in the middle of a word: it has no better place)."""
        pieces = []
        at = begin
        while stop - at > self.max_chars:
            end = at + self.max_chars
            space = max(text.rfind(" ", at + self.max_chars // 2, end), text.rfind("\t", at + self.max_chars // 2, end))
            if space > at:
                end = space + 1
            pieces.append((at, end))
            at = end
        pieces.append((at, stop))
        return pieces

    def _pack(self, units: list[_Unit], ancestors: dict[int, set[int]]) -> list[list[_Unit]]:
        """The units cut into chunks of at most ``budget`` tokens where the
        structure says to (:class:`_Unit` ``rank``): of all the ways to cut
        them, the one whose boundaries cost least (the square of their rank),
        each chunk costing :data:`_CHUNK_COST` more and a scrap of a chunk
        more again. The units are a whole note's (its sections one after the
        other, each unit with its section's ``budget`` and ``room``): a
        heading is always the best place to cut (rank 0), but a chunk may hold
        a section whole and then the start of the subsections under it
        (``ancestors``), at :data:`_SECTION_COST` for each, which pays only
        where cutting would leave a scrap. The last chunk of a section may
        take up to a quarter more (within ``room``, what the model's window
        leaves) rather than leave a scrap. Then a chunk that does not start
        after a blank line (inside a list, a paragraph, a run of lines)
        repeats a few trailing units of the one before (``overlap_tokens``),
        never across the start of a section."""
        n = len(units)
        if n == 0:
            return []
        best = [0.0] + [float("inf")] * n
        back = [0] * (n + 1)
        for j in range(1, n + 1):
            end_cost = units[j].rank ** 2 if j < n else 0.0
            last = j == n or units[j].opens_section
            tokens = 0
            inner: list[int] = []  # the sections that start inside the chunk, after its first unit
            budget, room = units[j - 1].budget, units[j - 1].room
            for i in range(j - 1, -1, -1):
                tokens += units[i].tokens
                if i < j - 1 and units[i + 1].opens_section:
                    inner.append(units[i + 1].section)
                budget, room = min(budget, units[i].budget), min(room, units[i].room)
                limit = min(room, budget * 5 // 4) if last else budget
                if i < j - 1 and (tokens > limit or units[j - 1].end - units[i].start > self.max_chars):
                    break
                cost = best[i] + end_cost + _CHUNK_COST + (_SCRAP_COST if tokens < budget // 4 and n > 1 else 0.0)
                cost += _sections_cost(units[i], inner, ancestors)
                if cost < best[j]:
                    best[j], back[j] = cost, i
        cuts = [n]
        while cuts[-1] > 0:
            cuts.append(back[cuts[-1]])
        cuts.reverse()
        groups = []
        for i, j in zip(cuts, cuts[1:], strict=False):
            start = self._overlap_start(units, i, j, min(u.room for u in units[i:j])) if i > 0 and not units[i].after_blank else i
            if start < i:
                units[i] = dataclasses.replace(units[i], own_start=True)
            groups.append(units[start:j])
        return groups

    def _overlap_start(self, units: list[_Unit], i: int, j: int, room: int) -> int:
        """Where the chunk of ``units[i:j]`` starts once it repeats the whole
        trailing units of the chunk before that fit in ``overlap_tokens``."""
        start, total, overlap = i, sum(u.tokens for u in units[i:j]), 0
        while (start - 1 > 0 and not units[start].opens_section and units[start - 1].whole_lines and overlap + units[start - 1].tokens <= self.overlap_tokens
               and total + units[start - 1].tokens <= room and units[j - 1].end - units[start - 1].start <= self.max_chars):
            start -= 1
            overlap += units[start].tokens
            total += units[start].tokens
        return start

    def _make_chunks(self, note: Note, starts: list[int], heading: str, prefix: str, group: list[_Unit], budget: int,
                     found: _Sentences) -> list[Chunk]:
        begin, stop = group[0].start, group[-1].end
        text = note.text[begin:stop]
        embed_text = prefix + _embeddable(text)
        if len(group) > 1 and self.count(embed_text) > self.window:
            # Token counts of lines do not always add up exactly; halve and retry.
            half = len(group) // 2
            return self._make_chunks(note, starts, heading, prefix, group[:half], budget, found) + self._make_chunks(
                note, starts, heading, prefix, group[half:], budget, found
            )
        first, last = _line_of(starts, begin), _line_of(starts, max(stop - 1, begin))
        where = note.layout.locate(first, last) if note.layout is not None else {"start_line": first, "end_line": last}
        return [
            Chunk(
                source=note.source,
                heading=heading,
                start_char=begin,
                end_char=stop,
                text=text,
                embed_text=embed_text,
                sentences=_spans_within(found.spans, begin, stop),
                contexts=tuple(c for (a, b), c in zip(found.spans, found.contexts, strict=True) if a >= begin and b <= stop),
                titles=_spans_within(found.titles, begin, stop),
                units=tuple(u for (a, b), u in zip(found.spans, found.units, strict=True) if a >= begin and b <= stop),
                **where,
            )
        ]


#: What a note shows but does not say: image links and empty HTML anchors.
_NOT_SAID = re.compile(r"!\[[^\]]*\]\([^)]*\)|<a\s[^>]*>\s*</a>", re.IGNORECASE)


def _embeddable(text: str) -> str:
    """A chunk's text as the encoder should read it: without image links
    and empty anchors (a URL says nothing of what the note says, and takes
    word pieces from what does) and without the backticks of code spans
    (the words inside are what counts); lines left empty are dropped. The
    chunk's own text, which is cited and shown, keeps all of it."""
    cleaned = _NOT_SAID.sub("", text).replace("`", "")
    return "\n".join(line for line in cleaned.split("\n") if line.strip()) or text


def _sections_cost(first: _Unit, inner: list[int], ancestors: dict[int, set[int]]) -> float:
    """What a chunk starting with ``first`` costs for the sections that
    start inside it (``inner``): :data:`_SECTION_COST` each when it holds a
    section whole and then only subsections under it, else it may not be."""
    if not inner:
        return 0.0
    if first.opens_section and all(first.section in ancestors[k] for k in inner):
        return _SECTION_COST * len(inner)
    return float("inf")


def _ancestors(sections: list[_Section]) -> dict[int, set[int]]:
    """For each section, the sections before it that it is nested under:
    the latest one of each heading path its own path goes on from."""
    latest: dict[str, int] = {}
    out: dict[int, set[int]] = {}
    for k, sec in enumerate(sections):
        parts = sec.heading.split(HEADING_SEPARATOR) if sec.heading else []
        prefixes = (HEADING_SEPARATOR.join(parts[:n]) for n in range(1, len(parts)))
        out[k] = {latest[p] for p in prefixes if p in latest}
        latest[sec.heading] = k
    return out


def _own_start(group: list[_Unit]) -> int:
    """Where a chunk's own units start, after those it repeats (overlap)."""
    return next((k for k, u in enumerate(group) if u.own_start), 0)


def _spans_within(spans: list[tuple[int, int]], begin: int, stop: int) -> tuple[tuple[int, int], ...]:
    """The sentences lying wholly in ``begin:stop``, relative to ``begin``."""
    lo = bisect.bisect_left(spans, (begin, begin))
    out = []
    for a, b in spans[lo:]:
        if a >= stop:
            break
        if b <= stop:
            out.append((a - begin, b - begin))
    return tuple(out)


def _after_blank(text: str, at: int) -> bool:
    """Whether the line before offset ``at``'s line is blank (or there is none)."""
    line_start = text.rfind("\n", 0, at) + 1
    if text[line_start:at].strip():
        return False  # ``at`` is inside a line
    if line_start == 0:
        return True
    prev_start = text.rfind("\n", 0, line_start - 1) + 1
    return not text[prev_start : line_start - 1].strip()


def _sentences_and_contexts(
    text: str, sections: list[_Section], leads: dict[tuple[int, int], tuple[int, str]]
) -> tuple[list[tuple[int, int]], list[str], list[int]]:
    """The note's quotable sentences, for each the text of the list item it
    is nested in (the item holding its block, or for an item's own first
    block the item above it; "" when there is none), and the code block or
    table it is a line of (its first line's index; -1 for prose)."""
    lines = text.split("\n")
    starts = _line_starts(text)
    spans: list[tuple[int, int]] = []
    contexts: list[str] = []
    units: list[int] = []
    for sec in sections:
        for b in sec.blocks:
            found = sentences.block_sentence_spans(text, [b], lines, starts)
            item = (sec.items[b.item].parent if b.lead else b.item) if b.item >= 0 else -1
            lead = leads.get((id(sec.items), item)) if item >= 0 else None
            spans.extend(found)
            contexts.extend([lead[1] if lead else ""] * len(found))
            units.extend([b.first if b.kind in (markup.CODE, markup.TABLE) else -1] * len(found))
    return spans, contexts, units


def _block_stop(lines: list[str], starts: list[int], block: markup.Block) -> int:
    """The character offset where ``block``'s last line ends."""
    last = min(block.end, len(lines)) - 1
    return starts[last] + len(lines[last])


def _chain(items: tuple[markup.Item, ...], item: int) -> list[int]:
    """``item`` and the items it is nested in, innermost first."""
    chain = []
    while item >= 0:
        chain.append(item)
        item = items[item].parent
    return chain


def _block_rank(items: tuple[markup.Item, ...], block: markup.Block) -> float:
    """How good a chunk boundary is just before ``block`` (see :class:`_Unit`)."""
    if _is_title(block):
        return _RANK_HEADING
    if block.item < 0:
        return 1.0
    depth = items[block.item].depth
    return float(depth) if block.lead else depth + 0.5


def _item_leads(sections: list[_Section], starts: list[int]) -> dict[tuple[int, int], tuple[int, str]]:
    """For each list item (keyed by its structure and index), the offset
    of its first line and its first line's text, as a heading path shows it."""
    leads: dict[tuple[int, int], tuple[int, str]] = {}
    for sec in sections:
        for b in sec.blocks:
            if b.lead and b.item >= 0 and (id(sec.items), b.item) not in leads:
                text = " ".join(b.content.split("\n", 1)[0].split())
                if len(text) > MAX_ITEM_CHARS:
                    text = text[: MAX_ITEM_CHARS - 1] + "…"
                leads[(id(sec.items), b.item)] = (starts[b.first], text if b.kind == markup.PARAGRAPH else "")
    return leads


def _line_of(starts: list[int], offset: int) -> int:
    """1-based line number of a character offset."""
    return bisect.bisect_right(starts, offset)
