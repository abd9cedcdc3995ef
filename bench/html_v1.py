"""The HTML reader as it was at version 1, kept for the ``html`` bench part's
"before" figures (issue 29): the bench indexes each HTML dev corpus with this
reader and with today's in the same run. Not used by dsqa.

Saved web pages: the main content as Markdown, with BeautifulSoup and
markdownify.

The page's main content is its only ``<article>``, else its ``<main>`` (or
``role="main"``), else its ``<body>``; navigation, headers and footers outside
an article, sidebars, form controls and the usual documentation-site chrome are
dropped. Scripts, styles, templates, embedded objects and anything hidden are
removed before conversion, and markdownify writes text only (no tag, no
attribute), so no script or event handler can reach an index or the page.
Headings ``<h1>``-``<h6>`` become Markdown headings, which give the chunker
its heading paths; ``<pre>`` becomes a fenced code block. Citations are line
ranges of this extracted text.

Chosen over trafilatura by measuring both on a saved GitHub repository page
and a saved Sphinx documentation page: trafilatura returned GitHub's
command-palette help text and lost the README's headings and its usage
section, where the ``<article>`` rule gets the README whole.
"""

from __future__ import annotations

import re
import warnings

from dsqa.sources.formats import Extracted

#: Never content: removed with everything inside.
#: (Not ``<form>``: some sites wrap the whole page in one.)
_DROP_TAGS = ["script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object", "embed",
              "button", "input", "select", "textarea", "dialog", "link", "meta"]
#: Page chrome around the content.
_CHROME_TAGS = ["nav", "aside"]
_CHROME_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar", "toolbar"}
#: Classes documentation generators give their chrome (Sphinx's header
#: links and relation bars, breadcrumbs, skip links, tables of contents).
_CHROME_CLASSES = {"headerlink", "sphinxsidebar", "related", "topnav", "bottomnav", "navbar", "breadcrumb",
                   "breadcrumbs", "skip-link", "sr-only", "visually-hidden", "toc"}
_BLANKS = re.compile(r"\n{3,}")


class HtmlReader:
    kind = "html"
    suffixes = (".html", ".htm")
    version = 1

    def read(self, data: bytes, limits: object = None) -> Extracted:
        from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning
        from markdownify import markdownify

        if b"\x00" in data[:1024]:
            raise ValueError("binary file (contains NUL bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            soup = BeautifulSoup(data, "html.parser")
        for tag in soup(_DROP_TAGS):
            tag.decompose()
        for tag in soup.find_all(_hidden):
            tag.decompose()
        main = _main(soup)
        for tag in main.find_all(_chrome):
            tag.decompose()
        if main.name != "article":
            for tag in main.find_all(["header", "footer"]):
                if tag.find_parent("article") is None:
                    tag.decompose()
        markdown = markdownify(
            str(main),
            heading_style="ATX",
            bullets="-",
            strip=["a", "img"],
            escape_asterisks=False,
            escape_underscores=False,
            escape_misc=False,
        )
        lines = [line.rstrip() for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        text = _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n")
        if not text.strip():
            raise ValueError("no text in the page's main content")
        return Extracted(text + "\n")


def _main(soup):
    articles = soup.find_all("article")
    if len(articles) == 1:
        return articles[0]
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    return main or soup.body or soup


def _hidden(tag) -> bool:
    if tag.attrs is None:
        return False
    if tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
        return True
    style = tag.get("style")
    return isinstance(style, str) and re.search(r"display\s*:\s*none|visibility\s*:\s*hidden", style) is not None


def _chrome(tag) -> bool:
    if tag.attrs is None:
        return False
    if tag.name in _CHROME_TAGS or tag.get("role") in _CHROME_ROLES:
        return True
    classes = tag.get("class") or []
    # docutils' local table of contents: a list of every heading, which would
    # match every question about the page.
    return any(c in _CHROME_CLASSES for c in classes) or {"contents", "topic"} <= set(classes)


READER = HtmlReader()


def read_in_process(version_1: bool) -> None:
    """Make this process read every note itself (not in dsqa's reader worker
    process), with the version-1 HTML reader when ``version_1``: the bench
    then measures the reader it means, and the parse's CPU is the reindex's."""
    from dsqa.sources import formats
    from dsqa.sources.formats import html, worker

    worker._ISOLATE = False
    for suffix in READER.suffixes:
        formats._BY_SUFFIX[suffix] = READER if version_1 else html.READER
