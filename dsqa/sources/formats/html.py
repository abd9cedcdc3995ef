"""Saved web pages: the main content as Markdown, with BeautifulSoup and
markdownify.

The page's main content is its only ``<article>``, else its ``<main>`` (or
``role="main"``), else its ``<body>``. Page chrome inside it is dropped by
what it is, not by one site's class names:

* semantic elements and roles: ``<nav>``, ``<aside>``, ``<header>`` and
  ``<footer>`` outside an article, ``role="navigation"``, ``"search"``,
  ``"banner"``, ...; search forms;
* class names that say chrome in the words every generator uses (``nav``,
  ``sidebar``, ``breadcrumb``, ``toc``, ``footer``, ``related``, ...): DocBook's
  ``navheader``/``navfooter``, Sphinx's ``sphinxsidebar``/``related``, MkDocs'
  ``md-nav``, Javadoc's ``topNav`` all say so; ids only when every word of the
  id says so (section ids are made from titles, so ``search-path`` stays);
* link density: a list, table or block that is mostly link text (a table of
  contents, a tag cloud, a category bar), or a row of Prev / Up / Home / Next
  links with little else (DocBook's navigation tables, blog pagers);
* permalinks (a ``¶`` or ``#`` link to an anchor), skip and edit links.

No rule removes the page's title or a block holding most of its text.

The rest becomes Markdown that reads as the page does: each paragraph, list
item and table cell one line (a generator's wrapped source lines are joined,
so a sentence is never cut at a line break); headings keep their spaces
(no-break spaces become spaces, "5.4.Constraints" reads "5.4. Constraints");
an admonition (Note, Tip, Warning, Important, Caution, ...) stays in its
section as a quoted box whose title is the label of its first line
(``> **Note:** ...``), never a heading. Scripts, styles, templates, embedded
objects and anything hidden are removed before conversion, and markdownify
writes text only (no tag, no attribute), so no script or event handler can
reach an index or the page. ``<pre>`` becomes a fenced code block. Citations
are line ranges of this extracted text.

Chosen over trafilatura, readability-lxml and jusText by measuring them on
the gold pages of the HTML dev sets and on generator-style pages
(experiments/html_extractors.py): this reader kept every gold phrase, every
code line and every heading; trafilatura kept permalink marks and cut
paragraphs at the generators' line breaks, readability lost headings and
some gold phrases, jusText lost most code and headings.
"""

from __future__ import annotations

import functools
import re
import warnings
from typing import Any

from ..markup import fence
from .extracted import Extracted
from .limits import DEFAULT_LIMITS, CharBudget, ReaderLimits, over_depth

#: Never content: removed with everything inside.
#: (Not ``<form>``: some sites wrap the whole page in one. Frames: a frameset
#: page has no text of its own, and ``<noframes>`` only says to use frames.)
_DROP_TAGS = ["script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object", "embed",
              "button", "select", "textarea", "dialog", "link", "meta", "title", "frameset", "frame", "noframes"]
#: Page chrome around the content.
_CHROME_TAGS = {"nav", "aside"}
_CHROME_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar", "toolbar",
                 "doc-toc", "directory"}
#: Words in class names that mark chrome, as documentation generators, blog
#: engines and wikis name it (matched inside class names: ``navheader``,
#: ``sphinxsidebar``, ``md-footer``, ``wy-breadcrumbs``, ``topNav``).
_CHROME_CLASS = re.compile(
    r"(?<!u)nav|sidebar|breadcrumb|menu(?!selection)|\btoc|toc\b|table-?of-?contents|contents-?list|pagination|pager|related"
    r"|footer|header(?!link)|masthead|banner|cookie|share|social|comment|\bsearch|sponsor|advert|newsletter|subscribe|catlinks"
    r"|widget|skip|copyright",
    re.IGNORECASE,
)
#: Class words of small inline chrome: permalinks, edit links, skip links,
#: text for screen readers only, what a page leaves out when printed.
_INLINE_CHROME_CLASS = re.compile(
    r"headerlink|permalink|anchor-?link|editsection|edit-?link|jump-?link|skip-?link|sr-only|screen-reader|visually-?hidden"
    r"|noprint|no-print|print-none|hidden-print",
    re.IGNORECASE,
)
#: Words an id is made of when the whole id names chrome ("mw-navigation",
#: "site-footer", "toc"); any other word keeps the element.
_CHROME_ID_WORDS = {"nav", "navigation", "navbar", "sidebar", "breadcrumbs", "breadcrumb", "toc", "menu", "header",
                    "footer", "search", "banner", "masthead", "related", "comments", "head", "panel", "mw", "site",
                    "page", "top", "bottom", "left", "right", "global", "primary", "secondary", "main", "catlinks",
                    "notice"}
#: Elements the class and link-density rules may remove: blocks, never a
#: section, a table cell or an inline element (``<td class="header">`` and
#: ``<span class="menuselection">`` are text).
_BLOCKS = {"div", "ul", "ol", "dl", "table", "p", "header", "footer", "form", "menu", "center"}
_LIST_BLOCKS = {"div", "ul", "ol", "dl", "table", "p", "menu", "center"}
#: A block of at least this many links, whose link text is at least this
#: share of its text, is a list of links: a table of contents, a tag cloud.
_LINK_LIST_MIN_LINKS = 3
_LINK_LIST_SHARE = 0.7
#: The text of a link that moves through the pages.
_NAV_LINK = re.compile(
    r"^(?:prev|previous|next|up|home|top|back to top|(?:table of )?contents|index|older|newer|first|last)(?:\W.*)?$",
    re.IGNORECASE,
)
#: A block with at least this many such links and at most this many words
#: outside links is a navigation row (DocBook's Prev / Up / Home / Next).
_NAV_ROW_LINKS = 2
_NAV_ROW_WORDS = 30
#: Text of a link to the page's source or its editor.
_EDIT_LINK = re.compile(
    r"^(?:edit|edit (?:this|the) page|edit on \w+|(?:view|show) (?:page )?source|improve this page|suggest an edit|report a bug)$",
    re.IGNORECASE,
)
#: Link text of a permalink: a symbol on its own.
_PERMALINK_TEXT = re.compile(r"^[\W_]?$")
#: Titles that make a heading an admonition's label, not a heading.
_ADMONITION_TITLES = {"note", "tip", "hint", "warning", "caution", "important", "attention", "danger", "see also"}
#: Admonition kinds, as box classes and titles name them.
_ADMONITIONS = ("note", "notes", "tip", "tips", "hint", "warning", "caution", "important", "attention", "danger",
                "error", "see also", "seealso", "remark", "info")
_ADMONITION_CLASS = re.compile(r"^(?:admonition|callout|alert|markdown-alert|" + "|".join(_ADMONITIONS) + r")(?:$|[-_])",
                               re.IGNORECASE)
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
#: No-break and other fixed-width spaces, and zero-width characters.
_ODD_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff]")
#: A section number glued to its title: "5.4.Constraints", "AppendixL.Acronyms".
_GLUED_NUMBER = re.compile(r"^((?:(?:Appendix|Chapter|Part|Section)\s*[A-Z0-9]+|\d+)(?:\.[0-9A-Z]+)*\.)(?=[^\s\d.])")
_GLUED_WORD = re.compile(r"^(Appendix|Chapter|Part|Section)(?=[A-Z0-9]+\.)")
_BLANKS = re.compile(r"\n{3,}")
#: A tag (or what looks like one) opening a line, after any indent, block
#: quote or list marker: what CommonMark would start an HTML block with.
_LINE_TAG = re.compile(r"^([ \t]*(?:>[ \t]?)*[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?)(</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>`\n]*)?/?>)")
_NOT_LETTERS = re.compile(r"[\W_]+")


class HtmlReader:
    kind = "html"
    suffixes: tuple[str, ...] = (".html", ".htm")
    #: 2: page chrome by role, class words and link density; one line per
    #: paragraph; headings keep their spaces; admonitions are labelled boxes.
    #: 3: a tag-like word opening a line is code, not an HTML block.
    #: 4: a definition's paragraphs, lists and code are not indented code.
    version = 4

    def read(self, data: bytes, limits: ReaderLimits = DEFAULT_LIMITS) -> Extracted:
        if b"\x00" in data[:1024]:
            raise ValueError("binary file (contains NUL bytes)")
        # UTF-8 first: a page that decodes as UTF-8 is UTF-8 (Latin-1 text
        # almost never does), and a saved page often declares no charset,
        # where BeautifulSoup's guess depends on which detector is installed.
        markup: str | bytes
        try:
            markup = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            markup = data
        soup = _parse(markup, limits)
        text = markdown_of(soup)
        if not any(line.strip() and not line.startswith("#") for line in text.split("\n")):
            raise ValueError("no text in the page's main content")
        CharBudget(limits).take(len(text))
        return Extracted(text + "\n")


def _parse(markup: str | bytes, limits: ReaderLimits) -> Any:
    """The page's tree, with html.parser. A page whose elements nest deeper
    than ``limits.max_depth`` (tags that never close nest each one inside the
    last) is refused as the parser opens the element that crosses it: a tree
    that deep takes minutes to build, and the conversion recurses into it."""
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

    class Bounded(BeautifulSoup):
        def pushTag(self, tag: Any) -> None:  # noqa: N802 - BeautifulSoup's name
            super().pushTag(tag)
            if len(self.tagStack) > limits.max_depth + 1:  # the stack starts with the document itself
                raise over_depth(limits, "the page's elements")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        return Bounded(markup, "html.parser")


def markdown_of(soup: Any) -> str:
    """The main content of a parsed page as Markdown (see the module's
    docstring); empty when it has none."""
    for tag in soup.find_all(_is_search_form):
        tag.decompose()
    for tag in soup(_DROP_TAGS + ["input"]):
        tag.decompose()
    for tag in soup.find_all(_hidden):
        tag.decompose()
    main = _main(soup)
    drop_chrome(main)
    _spaces(main)
    _label_admonitions(soup, main)
    markdown = _converter()(
        heading_style="ATX",
        bullets="-",
        strip=["a", "img"],
        escape_asterisks=False,
        escape_underscores=False,
        escape_misc=False,
        # One line per paragraph, list item and cell: whitespace (the
        # generator's line breaks) becomes one space; <br> stays a break.
        wrap=True,
        wrap_width=None,
    ).convert(str(main))
    lines = [_heading_spacing(line.rstrip()) for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(_tags_as_code(lines))).strip("\n")


#: A definition's first line that is a list, a quote, code or a table (the
#: blocks markdownify writes for them); any other is written after a ``:``
#: marker, which keeps a paragraph such as "# sudo ksmbd.control -s" text
#: (bare, it would be a heading).
_OPENS_BLOCK = re.compile(r"[ \t]*(?:[-*+]\s|\d{1,9}[.)]\s|>|```|~~~|\|)")


_ATX_START = re.compile(r"^(\s*)(#{1,6}(?:[ \t]|$))")


@functools.cache
def _converter() -> type:
    """markdownify's converter, with definition lists (``<dl>``: Sphinx's
    options, functions and glossaries, DocBook's variable lists) written so
    that CommonMark reads a definition as the blocks it holds. markdownify
    indents every line of a definition (``<dd>``) by four spaces under a
    ``:`` marker (a Markdown extension CommonMark lacks): after the first
    paragraph, CommonMark then reads the definition's paragraphs, lists and
    code as one indented code block, whose every line is taken for a line
    of code, never cut into sentences. Here the term stays a line of its
    own, the definition's first paragraph follows it after the marker (one
    paragraph: "term : definition"), and its other blocks are not indented."""
    from markdownify import MarkdownConverter

    class Converter(MarkdownConverter):  # type: ignore[misc]
        def convert_dd(self, el: Any, text: str, parent_tags: set[str]) -> str:
            text = (text or "").strip()
            if "_inline" in parent_tags:
                return f" {text} "
            if not text:
                return "\n"
            return f"{text}\n\n" if _OPENS_BLOCK.match(text) else f":   {text}\n\n"

        def convert_p(self, el: Any, text: str, parent_tags: set[str]) -> str:
            # A paragraph that starts "# " (a shell prompt, a comment) is
            # text: bare, CommonMark reads it as a heading.
            parent: Any = super()  # markdownify declares its convert_* methods dynamically
            return _ATX_START.sub(r"\1\\\2", parent.convert_p(el, text, parent_tags), count=1)

    return Converter


def _main(soup: Any) -> Any:
    articles = soup.find_all("article")
    if len(articles) == 1:
        return articles[0]
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    return main or soup.body or soup


def _hidden(tag: Any) -> bool:
    if tag.attrs is None:
        return False
    if tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
        return True
    style = tag.get("style")
    return isinstance(style, str) and re.search(r"display\s*:\s*none|visibility\s*:\s*hidden", style) is not None


def _is_search_form(tag: Any) -> bool:
    """A search box: a form (or role="search") with a search field."""
    if tag.name != "form" and tag.get("role") != "search":
        return False
    if tag.get("role") == "search" or _CHROME_CLASS.search(_classes(tag) + " " + str(tag.get("action") or "")):
        return True
    return any(
        i.get("type") == "search" or str(i.get("name") or "").lower() in {"q", "query", "search", "s"}
        for i in tag.find_all("input")
    )


def _classes(tag: Any) -> str:
    value = tag.get("class") or []
    return " ".join(value) if isinstance(value, list) else str(value)


def _words(text: str) -> int:
    return len(text.split())


def drop_chrome(main: Any) -> None:
    """Remove page chrome from ``main`` in place (see the module's docstring).
    The page's title (its ``<h1>``, else its first heading outside chrome)
    and the blocks around it stay."""
    title = main.find("h1") or next((h for h in main.find_all(_HEADINGS) if not _in_semantic_chrome(h, main)), None)
    keep = {id(title)} | {id(p) for p in title.parents} if title is not None else set()
    total = len(main.get_text(" ", strip=True))
    # In document order, so an outer block goes before its inner ones are
    # looked at; a removed block's descendants are skipped, and so is code
    # (a highlighter's <span class="hljs-comment"> is code).
    for tag in list(main.find_all(True)):
        if tag.decomposed or id(tag) in keep or tag.find_parent(("pre", "code")) is not None:
            continue
        if _is_chrome(tag, main, total):
            tag.decompose()


def _in_semantic_chrome(tag: Any, main: Any) -> bool:
    for parent in tag.parents:
        if parent is main:
            return False
        if parent.name in _CHROME_TAGS or parent.name in ("header", "footer") or parent.get("role") in _CHROME_ROLES:
            return True
    return False


def _is_chrome(tag: Any, main: Any, total: int) -> bool:
    """Whether ``tag`` (neither the page's title nor one of its ancestors)
    is page chrome."""
    if tag.attrs is None or tag.name in ("article", "main", "section", "body", "html", "pre", "code"):
        return False
    if _small_chrome(tag):
        return True
    if tag.name not in _BLOCKS and tag.name not in _CHROME_TAGS:
        return False
    if tag.name in _CHROME_TAGS or tag.get("role") in _CHROME_ROLES:
        return True
    if tag.name in ("header", "footer") and tag.find_parent("article") is None and main.name != "article":
        return True
    return _chrome_block(tag, total)


def _small_chrome(tag: Any) -> bool:
    """A permalink, a skip or edit link, text for screen readers."""
    if _INLINE_CHROME_CLASS.search(_classes(tag)):
        return True
    if _edit_link(tag):
        return True
    if tag.name != "a" or not str(tag.get("href") or "").startswith("#"):
        return False
    text = tag.get_text(" ", strip=True)
    return _PERMALINK_TEXT.match(text) is not None or text.lower().startswith("skip to")


def _edit_link(tag: Any) -> bool:
    return tag.name == "a" and _EDIT_LINK.match(tag.get_text(" ", strip=True)) is not None


def _chrome_block(tag: Any, total: int) -> bool:
    """A block whose class words say chrome, or that is a list of links or a
    row of navigation links. The class rule never takes a block holding most
    of the text (a theme's "wy-nav-content" wraps the whole page); the link
    rules may: a page that is a list of links has no text of its own. An
    admonition's links are the author's ("See also: ...")."""
    if _is_admonition(tag):
        return False
    text = tag.get_text(" ", strip=True)
    if not (total and len(text) > total / 2) and (_CHROME_CLASS.search(_classes(tag)) or _chrome_id(tag)):
        return True
    if tag.name in _LIST_BLOCKS and tag.find_parent(_is_admonition) is None:
        # A paragraph of links is a sentence ("See Section 5.4, Section 5.5
        # and Chapter 9."), not a list: only a navigation row is chrome.
        return (tag.name != "p" and _link_list(tag, text)) or _nav_row(tag, text)
    return False


def _chrome_id(tag: Any) -> bool:
    """Every word of the element's id names chrome ("mw-navigation",
    "siteNotice", "footer"), and not only words such as "site" or "main"."""
    words = [w.lower() for w in re.split(r"[-_\s]+|(?<=[a-z])(?=[A-Z])", str(tag.get("id") or "")) if w]
    return bool(words) and all(w in _CHROME_ID_WORDS for w in words) and any(w not in {"mw", "site", "page", "main", "top", "bottom", "left", "right", "global", "primary", "secondary"} for w in words)


def _links(tag: Any) -> list[str]:
    return [a.get_text(" ", strip=True) for a in tag.find_all("a") if a.get("href") is not None]


def _link_list(tag: Any, text: str) -> bool:
    links = _links(tag)
    if len(links) < _LINK_LIST_MIN_LINKS:
        return False
    # Shares of letters and digits: separators (" · ", ", ", " | ") are not text.
    return _letters(" ".join(links)) >= _LINK_LIST_SHARE * max(1, _letters(text))


def _letters(text: str) -> int:
    return len(_NOT_LETTERS.sub("", text))


def _nav_row(tag: Any, text: str) -> bool:
    links = _links(tag)
    nav = [t for t in links if _NAV_LINK.match(t.strip(" «»‹›<>←→|:·-"))]
    if not nav:
        return False
    outside = _words(text) - sum(_words(t) for t in links)
    if len(nav) == len(links) and outside <= 2:
        return True  # nothing but a "Next »" link
    return len(nav) >= _NAV_ROW_LINKS and outside <= _NAV_ROW_WORDS


def _spaces(main: Any) -> None:
    """No-break and other odd spaces become plain spaces outside code blocks;
    zero-width characters go."""
    from bs4 import NavigableString

    for string in list(main.find_all(string=True)):
        # Exactly NavigableString: not a comment, doctype or CDATA section.
        if type(string) is not NavigableString or string.find_parent("pre") is not None:
            continue
        fixed = _ZERO_WIDTH.sub("", _ODD_SPACES.sub(" ", str(string)))
        if fixed != str(string):
            string.replace_with(fixed)


def _tags_as_code(lines: list[str]) -> list[str]:
    """The Markdown lines with a tag-like word that opens a line outside code
    (an option's placeholder such as ``<script>`` or ``<command>``, a tag
    named in the text) set as a code span. Left bare, CommonMark reads it as
    raw HTML that opens an HTML block: ``<script>``, ``<pre>`` or ``<style>``
    run to their closing tag, so to the end of the page, taking every
    heading and sentence after them; any other tag alone on its line runs to
    the next blank line. The page said it as text; it stays text."""
    out = []
    open_fence: str | None = None
    for line in lines:
        marker = fence(line)
        if open_fence is not None:
            if marker == open_fence and not line.strip().strip(open_fence[0]):
                open_fence = None
        elif marker is not None:
            open_fence = marker
        else:
            m = _LINE_TAG.match(line)
            if m:
                line = f"{m.group(1)}`{m.group(2)}`{line[m.end():]}"
        out.append(line)
    return out


def _heading_spacing(line: str) -> str:
    """A Markdown heading line with its number set off by a space."""
    m = re.match(r"(#{1,6} )(.*)$", line)
    if m is None:
        return line
    text = " ".join(m.group(2).split())
    text = _GLUED_WORD.sub(r"\1 ", text)
    text = _GLUED_NUMBER.sub(r"\1 ", text)
    return m.group(1) + text


def _admonition_word(text: str) -> str | None:
    """``text`` as an admonition title ("Note", "Warning:"), or ``None``."""
    word = " ".join(text.strip().rstrip(":").split())
    return word if word.lower() in _ADMONITION_TITLES else None


def _is_admonition(tag: Any) -> bool:
    if tag.name not in ("div", "aside", "section", "blockquote", "table", "p"):
        return False
    classes = tag.get("class") or []
    if isinstance(classes, str):
        classes = classes.split()
    return any(_ADMONITION_CLASS.match(c) for c in classes) or tag.get("role") in ("note", "alert")


def _label_admonitions(soup: Any, main: Any) -> None:
    """Each admonition box becomes a block quote whose first line starts
    with its title as a label (``> **Note:** ...``); a heading that only says
    "Note" labels the paragraph after it. Neither leaves a heading."""
    for box in list(main.find_all(_is_admonition)):
        if box.decomposed or box.find_parent(_is_admonition) is not None:
            continue
        _box_to_quote(soup, box)
    for heading in list(main.find_all(_HEADINGS)):
        if heading.decomposed:
            continue
        word = _admonition_word(heading.get_text(" ", strip=True))
        if word is None:
            continue
        following = heading.find_next_sibling(True)
        if following is not None and following.name == "p":
            heading.decompose()
            _prepend_label(soup, following, word)
        else:  # a label of its own, not bold: a bold line alone reads as a title
            label = soup.new_tag("p")
            label.string = f"{word}:"
            heading.replace_with(label)


def _box_to_quote(soup: Any, box: Any) -> None:
    title = _title_of(box)
    word = None
    if title is not None:
        word = " ".join(title.get_text(" ", strip=True).rstrip(":").split()) or None
        title.decompose()
    if word is None:
        classes = [c.lower() for c in (box.get("class") or [])]
        word = next((c.capitalize() for c in classes if c in _ADMONITIONS), None)
    quote = soup.new_tag("blockquote")
    children = box.find_all(True, recursive=False)
    table = box if box.name == "table" else children[0] if len(children) == 1 and children[0].name == "table" else None
    if table is not None:  # DocBook with graphics: the text is in the cells
        for cell in table.find_all("td"):
            for child in list(cell.contents):
                quote.append(child.extract())
    else:
        for child in list(box.contents):
            quote.append(child.extract())
    box.replace_with(quote)
    if word:
        # The label goes before the box's first words when they open a
        # paragraph or an item; else on a line of its own, not bold (a bold
        # line alone reads as a title).
        first = next((p for p in quote.find_all(["p", "li", "dt", "dd"]) if p.get_text(strip=True)), None)
        if first is not None and quote.get_text(" ", strip=True).startswith(first.get_text(" ", strip=True)):
            _prepend_label(soup, first, word)
        else:
            label = soup.new_tag("p")
            label.string = f"{word}:"
            quote.insert(0, label)


def _title_of(box: Any) -> Any:
    """The element titling an admonition box: a heading, an element whose
    class says title, or a table's header cell, when it comes first."""
    for el in box.find_all(True):
        if el.name in _HEADINGS or el.name == "th" or "title" in _classes(el).lower():
            text = el.get_text(" ", strip=True)
            return el if _words(text) <= 8 else None
        if el.get_text(strip=True) and el.name in ("p", "li", "dd", "pre", "td"):
            if el.name == "p" and _admonition_word(el.get_text(" ", strip=True)):
                return el
            return None
    return None


def _prepend_label(soup: Any, paragraph: Any, word: str) -> None:
    strong = soup.new_tag("strong")
    strong.string = f"{word}:"
    paragraph.insert(0, " ")
    paragraph.insert(0, strong)


READER = HtmlReader()
