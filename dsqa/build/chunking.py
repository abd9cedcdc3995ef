"""Cutting notes into citable chunks.

Two steps, both from langchain-text-splitters: ``MarkdownHeaderTextSplitter``
finds the sections and their heading paths, then each section is packed into
chunks of at most ``chunk_tokens`` word pieces of the embedding model. Packing
works on whole lines and whole fenced code blocks, prefers to break at blank
lines, and only cuts inside a line (with ``RecursiveCharacterTextSplitter``, at
sentence ends first) when one line alone is too long. Chunks are bounded in
characters too (``MAX_CHARS_PER_TOKEN``), so a megabyte line without a space
still becomes chunks of a readable size.

Every chunk is an exact slice ``note.text[start_char:end_char]``, so its line
numbers are computed, not guessed, and a citation always points at the words
shown. For a PDF the line numbers count within the chunk's page, and the
reader's sections keep every chunk on one page (see ``dsqa.sources.formats``). The
embedded text is the heading path plus the chunk, and is never longer than
the model's ``max_seq_length``: the encoder would silently drop the rest.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..sources import markup
from ..sources.loading import Note
from ..sources.markup import HEADING_SEPARATOR

#: Bump when the chunking algorithm changes: indexes built by another
#: version are then stale, since their chunks would differ.
CHUNKER_VERSION = 4
#: ``**Title**`` or ``> **Title**`` alone on a line: how many authors title
#: sections without heading syntax.
_BOLD_TITLE = re.compile(r"^\s*(?:>\s*)?\*\*([^*]{2,80})\*\*\s*$")
#: In a plain-text note (a copied web page), a short line without closing
#: punctuation between blank lines is a title.
_PLAIN_TITLE = re.compile(r"^(?!\w+:\s*\d)[A-Z0-9][^.;!?]{1,70}(?<!:)$")
#: Such pseudo-headings rank below every real heading.
_PSEUDO_LEVEL = markup.MAX_LEVEL + 1
_PSEUDO = "#" * _PSEUDO_LEVEL
_HEADERS = [("#" * n, f"h{n}") for n in range(1, _PSEUDO_LEVEL + 1)]
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

    @property
    def key(self) -> str:
        """Identity of the vector: equal embed texts share one vector, so an
        edit re-embeds only the chunks it really changed."""
        return hashlib.sha256(self.embed_text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class _Unit:
    """An unbreakable piece of a section: a line, a fenced code block, or a
    piece of an over-long line."""

    start: int
    end: int
    tokens: int
    paragraph_start: bool  # a blank line (or the section start) precedes it
    whole_lines: bool


@dataclass(frozen=True)
class _Block:
    """A non-blank line, or a fenced code block, of a section: lines
    ``first:last``, characters ``begin:stop`` of the note."""

    first: int
    last: int
    begin: int
    stop: int
    paragraph_start: bool


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


def _normalise(line: str) -> str:
    """The form in which MarkdownHeaderTextSplitter reports a line."""
    return "".join(filter(str.isprintable, line.strip()))


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer("\n", text)]


def _heading_view(lines: list[str]) -> list[str]:
    """The lines as the heading splitter should see them.

    A bare ``#`` used as a spacer is not a heading (it would reset the
    heading path); bold title lines, and title lines of a note with no
    Markdown headings at all, become headings one level below the deepest
    real one. Only section boundaries and paths come from this view: chunk
    text is always the note's own.
    """
    view = ["" if _is_spacer(line) else line for line in lines]
    plain = not any(markup.heading_level(line) for line in view)
    for i, line in enumerate(view):
        bold = _BOLD_TITLE.match(line)
        if bold:
            view[i] = f"{_PSEUDO} {bold.group(1).strip()}"
        elif (
            plain
            and _PLAIN_TITLE.match(line)
            and len(line.split()) <= markup.TITLE_WORDS
            and (i == 0 or not view[i - 1].strip())
            and (i + 1 == len(view) or not view[i + 1].strip())
        ):
            view[i] = f"{_PSEUDO} {line.strip()}"
    return view


def _is_spacer(line: str) -> bool:
    """A heading mark without text (``#`` alone), at any indent: the heading
    splitter strips lines, so it would take it for an empty heading."""
    h = markup.heading(line)
    return h is not None and h.level <= markup.MAX_LEVEL and not h.text


def _is_view_heading(line: str) -> bool:
    """A heading of the heading view, a pseudo-heading included."""
    h = markup.heading(line)
    return h is not None and h.level <= _PSEUDO_LEVEL and bool(h.rest)


def _cut(heading: str) -> str:
    return heading if len(heading) <= MAX_HEADING_CHARS else heading[: MAX_HEADING_CHARS - 1] + "…"


def split_sections(text: str) -> list[tuple[int, int, str]]:
    """Sections as (first line index, end line index exclusive, heading path).

    The splitter returns normalised line text without positions; each
    section's first line is found again by walking the note in order.
    """
    # Imported here, not at the top: langchain-core is slow to import and only
    # reindex needs it, never ``ask``.
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    lines = _heading_view(text.split("\n"))
    docs = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=False).split_text("\n".join(lines))
    norm = [_normalise(line) for line in lines]
    starts: list[tuple[int, str]] = []
    pos = 0
    for doc in docs:
        pieces = [p.rstrip(" ") for p in doc.page_content.split("\n")]
        first = next((p for p in pieces if p), None)
        if first is None:
            continue
        at = pos
        while at < len(lines) and norm[at] != first:
            at += 1
        if at == len(lines):  # should not happen; never lose text over it
            return [(0, len(lines), "")]
        heading = HEADING_SEPARATOR.join(_cut(doc.metadata[name]) for _, name in _HEADERS if name in doc.metadata)
        starts.append((at, heading))
        pos = at + 1
    if not starts:
        return [(0, len(lines), "")]
    starts[0] = (0, starts[0][1])  # leading blank lines belong to the first section
    sections: list[tuple[int, int, str]] = []
    carry: int | None = None  # start of a heading-only section waiting for a body
    for i, (at, heading) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(lines)
        begin = at if carry is None else carry
        if i + 1 < len(starts) and all(_is_view_heading(line) for line in lines[at:end] if line.strip()):
            # A title with nothing under it says what follows: keep it with that.
            carry = begin
            continue
        carry = None
        sections.append((begin, end, heading))
    return sections


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
        # Each step counts all it needs in one batch: headings, then every
        # line or block of every section, then every chunk's embedded text.
        layout = note.layout
        # A reader may fix the sections itself: a PDF's never cross a page.
        sections = list(layout.sections) if layout is not None and layout.sections is not None else split_sections(text)
        count.prime([heading for _, _, heading in sections])
        prefixes = [self._embed_prefix(heading) for _, _, heading in sections]
        count.prime(prefixes)
        blocks = [self._blocks(lines, starts, first, end) for first, end, _ in sections]
        count.prime([text[b.begin : b.stop] for section in blocks for b in section if b.stop - b.begin <= self.max_chars])
        packed = []
        for (_, _, heading), prefix, section in zip(sections, prefixes, blocks, strict=True):
            budget = min(self.chunk_tokens, self.window - count(prefix))
            groups = self._pack(self._units(text, lines, starts, section, budget), budget)
            packed.append((heading, prefix, budget, groups))
        count.prime([prefix + text[g[0].start : g[-1].end] for _, prefix, _, groups in packed for g in groups if len(g) > 1])
        chunks: list[Chunk] = []
        for heading, prefix, budget, groups in packed:
            for group in groups:
                chunks.extend(self._make_chunks(note, starts, heading, prefix, group, budget))
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

    @staticmethod
    def _blocks(lines: list[str], starts: list[int], first: int, end: int) -> list[_Block]:
        """The lines ``first:end`` as blocks: one per non-blank line, one per
        fenced code block."""
        blocks: list[_Block] = []
        i = first
        paragraph = True
        while i < end:
            stripped = lines[i].strip()
            if not stripped:
                paragraph = True
                i += 1
                continue
            j = i + 1
            marker = markup.fence(stripped)
            if marker and stripped.count(marker) == 1:
                while j < end and markup.fence(lines[j]) != marker:
                    j += 1
                j = min(j + 1, end)
            blocks.append(_Block(i, j, starts[i], starts[j - 1] + len(lines[j - 1]), paragraph))
            paragraph = False
            i = j
        return blocks

    def _units(self, text: str, lines: list[str], starts: list[int], blocks: list[_Block], budget: int) -> list[_Unit]:
        units: list[_Unit] = []
        for b in blocks:
            too_wide = b.stop - b.begin > self.max_chars  # not counted: it may be megabytes
            tokens = 0 if too_wide else self.count(text[b.begin : b.stop])
            if not too_wide and tokens <= budget:
                units.append(_Unit(b.begin, b.stop, tokens, b.paragraph_start, True))
            elif b.last - b.first > 1:  # a code block too long for one chunk: fall back to its lines
                for k in range(b.first, b.last):
                    first_line = b.paragraph_start and k == b.first
                    units.extend(self._line_units(text, starts[k], starts[k] + len(lines[k]), budget, first_line))
            else:
                units.extend(self._line_units(text, b.begin, b.stop, budget, b.paragraph_start))
        return units

    def _line_units(self, text: str, begin: int, stop: int, budget: int, paragraph: bool) -> list[_Unit]:
        if stop - begin > self.max_chars:
            units: list[_Unit] = []
            for at, end in self._char_pieces(text, begin, stop):
                pieces = self._line_units(text, at, end, budget, paragraph)
                units.extend(_Unit(u.start, u.end, u.tokens, u.paragraph_start, False) for u in pieces)
                paragraph = paragraph and not pieces
            return units
        piece = text[begin:stop]
        if not piece.strip():
            return []
        tokens = self.count(piece)
        if tokens <= budget:
            return [_Unit(begin, stop, tokens, paragraph, True)]
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
            units.append(_Unit(at, at + len(doc.page_content), self.count(doc.page_content), paragraph, False))
            paragraph = False
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

    def _pack(self, units: list[_Unit], budget: int) -> list[list[_Unit]]:
        """Greedy packing that prefers paragraph breaks and repeats a few
        trailing lines of a chunk at the start of the next."""
        groups: list[list[_Unit]] = []
        i = 0
        while i < len(units):
            total, j = 0, i
            while j < len(units) and (
                j == i or (total + units[j].tokens <= budget and units[j].end - units[i].start <= self.max_chars)
            ):
                total += units[j].tokens
                j += 1
            if j < len(units) and not units[j].paragraph_start:
                j = self._paragraph_cut(units, i, j, budget)
            group = units[i:j]
            if j >= len(units) and groups and self._fits_with_previous(groups[-1], group):
                groups[-1] = groups[-1] + [u for u in group if u.start >= groups[-1][-1].end]
                break
            groups.append(group)
            if j >= len(units):
                break
            nxt = j
            if not units[j].paragraph_start:
                overlap = 0
                while nxt - 1 > i and units[nxt - 1].whole_lines and overlap + units[nxt - 1].tokens <= self.overlap_tokens:
                    nxt -= 1
                    overlap += units[nxt].tokens
            i = nxt
        return groups

    def _fits_with_previous(self, previous: list[_Unit], tail: list[_Unit]) -> bool:
        """A section's last chunk that is only a scrap is folded into the one
        before, as long as that stays within the target size plus a quarter."""
        new = sum(u.tokens for u in tail if u.start >= previous[-1].end)
        return (
            new < self.chunk_tokens // 4
            and sum(u.tokens for u in previous) + new <= self.chunk_tokens * 5 // 4
            and tail[-1].end - previous[0].start <= self.max_chars
        )

    @staticmethod
    def _paragraph_cut(units: list[_Unit], i: int, j: int, budget: int) -> int:
        """The last paragraph start in units[i:j] that leaves the chunk at
        least half full, or ``j`` when there is none."""
        cut, running = j, 0
        for k in range(i, j):
            if k > i and units[k].paragraph_start and running >= budget // 2:
                cut = k
            running += units[k].tokens
        return cut

    def _make_chunks(self, note: Note, starts: list[int], heading: str, prefix: str, group: list[_Unit], budget: int) -> list[Chunk]:
        begin, stop = group[0].start, group[-1].end
        text = note.text[begin:stop]
        embed_text = prefix + text
        if len(group) > 1 and self.count(embed_text) > self.window:
            # Token counts of lines do not always add up exactly; halve and retry.
            half = len(group) // 2
            return self._make_chunks(note, starts, heading, prefix, group[:half], budget) + self._make_chunks(
                note, starts, heading, prefix, group[half:], budget
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
                **where,
            )
        ]


def _line_of(starts: list[int], offset: int) -> int:
    """1-based line number of a character offset."""
    return bisect.bisect_right(starts, offset)
