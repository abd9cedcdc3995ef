"""Passages as HTML for the web page: their Markdown rendered (code spans and
blocks, lists, links, tables), the answering sentences marked, and nothing in
a note able to run in the page or make it fetch anything.

Markdown is rendered by markdown-it-py with raw HTML off, so ``<script>``,
``<img onerror=…>`` and the like come out as visible, escaped text. Links are
kept only for ``http``, ``https``, ``mailto`` and relative addresses
(``javascript:``, ``data:``, ``file:`` and other schemes stay plain text), and
open in a new tab without a referrer. Images become a small link to the image
(the page never loads one: it may be off the machine). ``<a name=…>`` anchors,
noise in notes copied from web pages, are dropped.

Highlights are character spans in the passage's text. They survive rendering
as two private-use sentinel characters inserted into the Markdown source
(moved off list markers, fences and other block syntax so the Markdown parses
as before), which come out of the renderer as ordinary text and are then
turned into ``<mark>`` elements, one per run of text, so the marks never
straddle an element boundary.
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import Any

from markdown_it import MarkdownIt

from ..sources.markup import HEADING_SEPARATOR

#: Where a highlight starts and ends in the Markdown source; text that holds
#: these characters itself has them replaced first.
START, END = "\ue000", "\ue001"
_SENTINELS = {START: True, END: False}
#: The sentinels as normalizeLink percent-encodes them inside an address.
_ENCODED = {"%EE%80%80": START, "%EE%80%81": END}

SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# Browsers ignore ASCII whitespace and control characters inside a scheme
# ("java\tscript:"), so the check does too.
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f]")


def safe_url(url: str) -> bool:
    """Whether a note's link may be a link in the page: ``http``, ``https``,
    ``mailto``, or relative (no scheme)."""
    cleaned = _IGNORED_IN_URL.sub("", url).replace(START, "").replace(END, "")
    for code in _ENCODED:
        cleaned = re.sub(re.escape(code), "", cleaned, flags=re.IGNORECASE)
    m = _SCHEME.match(cleaned)
    return m is None or m.group(1).lower() in SAFE_SCHEMES


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _image_as_link(self: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    """An image as a small link to it: the page loads no image."""
    token = tokens[idx]
    src = token.attrGet("src") or ""
    alt = self.renderInlineAsText(token.children or [], options, env).strip()
    if alt.replace(START, "").replace(END, "").strip():
        name = alt
    else:  # no alt text: the file's name (after any highlight sentinels the alt held)
        marks = "".join(ch for ch in alt if ch in _SENTINELS)
        name = marks + (_IN_TAG.sub("", src).rstrip("/").rsplit("/", 1)[-1] or "image")
    return f'<a class="dsqa-img" href="{_esc(src)}" target="_blank" rel="noopener noreferrer nofollow">image: {_esc(name)}</a>'


def _link_open(self: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    token.attrSet("target", "_blank")
    token.attrSet("rel", "noopener noreferrer nofollow")
    return self.renderToken(tokens, idx, options, env)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = safe_url  # type: ignore[method-assign]
    md.add_render_rule("image", _image_as_link)
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _markdown()


# -- placing the highlight sentinels ------------------------------------------
#: What may open a line before its text: indentation, quote markers, a list
#: marker, a heading's hashes. A sentinel goes after it.
_BLOCK_PREFIX = re.compile(r"[ \t]*(?:>[ \t]?)*[ \t]*(?:(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)+|#{1,6}(?:[ \t]+|$))?(?:[*_~]+(?=\S))?")
#: Lines that are nothing but syntax (fences, rules, setext underlines, table
#: delimiter rows): a sentinel there would change what they are.
_SYNTAX_LINE = re.compile(
    r"^[ \t]*(?:`{3,}.*|~{3,}.*|(?:[-*_][ \t]*){3,}|=+[ \t]*|-+[ \t]*|\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*|#{1,6}[ \t]*)$"
)


def _line_at(text: str, pos: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def _prefix_length(line: str) -> int:
    """How many characters of ``line`` are block syntax (indent, quote and
    list markers); ``_BLOCK_PREFIX`` matches every line, if only emptily."""
    m = _BLOCK_PREFIX.match(line)
    return m.end() if m else 0


def _start_at(text: str, a: int) -> int:
    """Where a highlight starting at ``a`` can open without changing how its
    line parses: after the line's block syntax, on a line with text."""
    while a < len(text):
        ls, le = _line_at(text, a)
        line = text[ls:le]
        if not line.strip() or _SYNTAX_LINE.match(line):
            a = le + 1
            continue
        a = max(a, ls + _prefix_length(line))
        while a < le and text[a] in " \t|":  # spaces and cell borders stay outside (cells are trimmed)
            a += 1
        if a >= le:  # nothing left on the line but syntax
            a = le + 1
            continue
        return a
    return len(text)


def _end_at(text: str, b: int) -> int:
    """Where a highlight ending at ``b`` can close: after the last text
    before it, never on a syntax line or in a line's opening syntax."""
    while b > 0:
        while b > 0 and text[b - 1] in " \t\r\n":
            b -= 1
        if b == 0:
            break
        ls, le = _line_at(text, b - 1)
        line = text[ls:le]
        if _SYNTAX_LINE.match(line) or b <= ls + _prefix_length(line):
            b = ls  # then back over the newline to the line before
            continue
        m = re.search(r"[*_~]+$", text[ls:b])  # a closing emphasis run stays outside
        if m and b - len(m.group(0)) > ls and not text[b - len(m.group(0)) - 1].isspace():
            b -= len(m.group(0))
        return b
    return 0


#: Places a sentinel must not split: an HTML anchor, a backtick run, a
#: link's address, an autolink, an entity, a backslash escape.
_ATOMIC = re.compile(r"<a\s[^<>]*>(?:\s*</a>)?|</a>|!\[|`+|\]\([^)\n]*\)|<[a-zA-Z][a-zA-Z0-9+.-]*:[^<>\s]*>|<[^<>@\s]+@[^<>\s]+>|&#?\w+;|\\.")


def _outside_atoms(text: str, pos: int, forward: bool) -> int:
    """``pos``, moved past (or before) any atom it would split."""
    for m in _ATOMIC.finditer(text, max(0, pos - 2048), min(len(text), pos + 2048)):
        if m.start() < pos < m.end():
            return m.end() if forward else m.start()
        if m.start() >= pos:
            break
    return pos


def _with_sentinels(text: str, spans: Any) -> str:
    text = text.replace(START, "\ufffd").replace(END, "\ufffd")
    inserts: list[tuple[int, str]] = []
    for a, b in merged_spans(spans, len(text)):
        a2 = _start_at(text, _outside_atoms(text, a, True))
        b2 = _end_at(text, _outside_atoms(text, b, False))
        if a2 < b2:
            inserts += [(a2, START), (b2, END)]
    out, pos = [], 0
    for at, mark in sorted(inserts, key=lambda i: (i[0], i[1] == START)):
        out += [text[pos:at], mark]
        pos = at
    out.append(text[pos:])
    return "".join(out)


def merged_spans(spans: Any, length: int) -> list[tuple[int, int]]:
    """``spans`` clipped to ``[0, length)``, sorted and merged; malformed
    entries are dropped."""
    clean: list[tuple[int, int]] = []
    for span in spans or []:
        try:
            a, b = (int(x) for x in span)
        except (TypeError, ValueError):
            continue
        a, b = max(0, a), min(length, b)
        if a < b:
            clean.append((a, b))
    clean.sort()
    merged: list[tuple[int, int]] = []
    for a, b in clean:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


# -- from sentinels to <mark> ---------------------------------------------------
_TAG = re.compile(r"<[^>]*>")
_IN_TAG = re.compile("|".join([START, END, *(re.escape(c) for c in _ENCODED)]), re.IGNORECASE)


def _marks(rendered: str) -> str:
    """The rendered HTML with its sentinels turned into ``<mark>`` around
    each run of highlighted text (sentinels that ended up inside a tag, in an
    address or a code block's language, only switch the state)."""
    out: list[str] = []
    on = False

    def text_run(segment: str) -> None:
        nonlocal on
        for piece in re.split(f"([{START}{END}])", segment):
            if piece in _SENTINELS:
                on = _SENTINELS[piece]
            elif piece:
                # Whitespace between blocks ("\n" between </li> and <li>) is
                # left bare: a <mark> there would sit where only blocks may.
                out.append(f"<mark>{piece}</mark>" if on and (piece.strip() or "\n" not in piece) else piece)

    pos = 0
    for m in _TAG.finditer(rendered):
        text_run(rendered[pos : m.start()])
        tag = m.group(0)
        for found in _IN_TAG.findall(tag):
            on = _SENTINELS[_ENCODED.get(found.upper(), found)]
        out.append(_IN_TAG.sub("", tag))
        pos = m.end()
    text_run(rendered[pos:])
    return "".join(out)


# -- the public functions --------------------------------------------------------
#: What a dropped anchor or an empty heading line leaves behind.
_EMPTY_BLOCK = re.compile(r"<(h[1-6]|p)>\s*</\1>\n?")
_ANCHOR = re.compile(r"<a\s+(?:name|id)\s*=[^>]*>(?:\s*</a>)?", re.IGNORECASE)


def _drop_anchors(text: str) -> str:
    """``<a name=…>`` / ``<a id=…>`` anchors removed (their sentinels kept)."""
    return _ANCHOR.sub(lambda m: "".join(ch for ch in m.group(0) if ch in _SENTINELS), text)


def markdown_html(text: str, spans: Any = ()) -> str:
    """A passage's Markdown ``text`` as safe HTML, with the character
    ``spans`` (its answering sentences) in ``<mark>``.

    The passage is dedented first: a passage cut from inside a list would
    otherwise render as an indented code block."""
    source = textwrap.dedent(_drop_anchors(_with_sentinels(text, spans)))
    return _EMPTY_BLOCK.sub("", _marks(_MD.render(source))).strip()


def inline_markdown_html(text: str) -> str:
    """One line of Markdown (the short answer) as safe inline HTML."""
    clean = text.replace(START, "\ufffd").replace(END, "\ufffd")
    return _MD.renderInline(_drop_anchors(clean)).strip()


def shorten_heading(heading: str, separator: str = HEADING_SEPARATOR, keep: int = 2) -> str:
    """A heading path cut to its last ``keep`` parts, with an ellipsis in
    front when parts were dropped: the nearest headings say most."""
    parts = [p for p in heading.split(separator) if p.strip()]
    if len(parts) <= keep:
        return separator.join(parts)
    return separator.join(["…", *parts[-keep:]])


#: How far above the refusal threshold a passage's estimated confidence must
#: be to be called a strong match: about where a typical answerable dev-set
#: question's confidence lies, so "strong" means clearly answered, not just
#: over the line.
STRONG_MARGIN = 0.2


def relevance(score: float, top_score: float, confidence: float, threshold: float, covers_topic: bool = True) -> str:
    """A plain label for how well a passage matches: ``"strong match"``,
    ``"good match"`` or ``"weak match"``.

    A passage's score (the ranking score, which runs above 1) says nothing on
    its own. The answer's ``confidence`` does: it is measured on the best
    passage and compared with the refusal ``threshold``. Each passage gets
    that confidence scaled by its score relative to the best one (the best
    passage gets the confidence itself): at or above the threshold it is a
    good match, ``STRONG_MARGIN`` above it a strong one, below it a weak one.
    So when the notes don't cover a question, every passage is a weak match.
    Only a passage that holds every topic term of the question
    (``covers_topic``, see ``dsqa.query.topics``) can be a strong one.
    """
    estimate = confidence * (score / top_score) if top_score > 0 else confidence
    if estimate >= threshold + STRONG_MARGIN and covers_topic:
        return "strong match"
    if estimate >= threshold:
        return "good match"
    return "weak match"
