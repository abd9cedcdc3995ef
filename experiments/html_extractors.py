"""Which main-content extractor for saved pages (issue 29): dsqa's HTML reader
against trafilatura, readability-lxml and jusText on real pages.

    pip install -r experiments/requirements.txt   # trafilatura, readability-lxml, justext
    python -m experiments.html_extractors

The pages are the gold pages of the HTML dev sets (bench/data/html: the
Python and Linux documentation from the Debian packages, saved blog, wiki,
DocBook and MkDocs pages) and the generator-style pages of
tests/sources/test_html_reader.py. For each extractor:

* content kept: the dev sets' gold phrases found in the page's text; the
  lines of the pages' ``<pre>`` blocks and their headings found in it;
* chrome kept: the share of the text's words on navigation lines, as
  bench/html_quality.py counts them over all pages' texts; and which of a
  list of chrome phrases (Prev, Next, Table of Contents, Copyright, ...)
  survive;
* wrapped-line fragments among the quotable sentences (bench/html_quality.py).

Prints one table; docs/ or the closing note keep the figures.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import html_quality  # noqa: E402
from dsqa.sources import formats  # noqa: E402
from dsqa.sources.sentences import sentence_spans  # noqa: E402

DATA = ROOT / "bench" / "data" / "html"
SOURCES = {
    "python": Path("/usr/share/doc/python3.11/html"),
    "linux": Path("/usr/share/doc/linux-doc-6.1/html"),
    "pages": DATA,
}
#: Text that is chrome on every page where it appears in these pages.
CHROME_PHRASES = ("Prev", "Previous", "Next", "Up", "Home", "Table of Contents", "Navigation", "Quick search", "Show Source",
                  "Report a Bug", "Copyright", "©", "Skip to content", "Share this", "Leave a Reply", "Recent Posts",
                  "Jump to navigation", "Retrieved from", "Categories", "Edit this page", "Made with", "View page source",
                  "Powered by", "¶")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def dsqa_reader(html: bytes) -> str:
    return formats.html.READER.read(html).text


def trafilatura_markdown(html: bytes) -> str:
    import trafilatura

    return trafilatura.extract(html.decode("utf-8", "replace"), output_format="markdown", include_tables=True,
                               include_comments=False, include_formatting=True, favor_recall=True) or ""


def readability_markdown(html: bytes) -> str:
    from markdownify import markdownify
    from readability import Document

    summary = Document(html.decode("utf-8", "replace")).summary(html_partial=True)
    return markdownify(summary, heading_style="ATX", bullets="-", strip=["a", "img"], wrap=True, wrap_width=None)


def justext_text(html: bytes) -> str:
    import justext

    paragraphs = justext.justext(html, justext.get_stoplist("English"))
    return "\n\n".join(("# " if p.is_heading else "") + p.text for p in paragraphs if not p.is_boilerplate)


EXTRACTORS: dict[str, Callable[[bytes], str]] = {
    "dsqa reader (BeautifulSoup + rules)": dsqa_reader,
    "trafilatura (markdown, favor_recall)": trafilatura_markdown,
    "readability-lxml + markdownify": readability_markdown,
    "jusText (English stoplist)": justext_text,
}


def pages() -> dict[str, tuple[bytes, list[str]]]:
    """Page name -> (bytes, gold phrases)."""
    out: dict[str, tuple[bytes, list[str]]] = {}
    for corpus, source in SOURCES.items():
        devset = DATA / f"{corpus}.jsonl"
        if not source.is_dir():
            print(f"skipping {corpus}: no pages at {source}", file=sys.stderr)
            continue
        for line in devset.read_text(encoding="utf-8").splitlines():
            for answer in json.loads(line)["answers"]:
                path = source / answer["note"]
                data, gold = out.setdefault(f"{corpus}/{answer['note']}", (path.read_bytes(), []))
                gold.append(answer["phrase"])
    from tests.sources import test_html_reader as styled

    for name in ("DOCBOOK", "DOCBOOK_APPENDIX", "SPHINX", "SPHINX_RTD", "MKDOCS", "JAVADOC_CLASS", "BLOG", "WIKI"):
        out[f"styled/{name.lower()}"] = (getattr(styled, name).encode(), [])
    return out


def _pre_lines_and_headings(html: bytes) -> tuple[list[str], list[str]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(class_=re.compile("editsection|headerlink")):
        tag.decompose()
    for tag in soup(["nav", "aside", "header", "footer"]):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": ["navigation", "search", "contentinfo", "banner"]}):
        tag.decompose()
    main = soup.find(attrs={"role": "main"}) or soup.find("main") or soup.find("article") or soup.body or soup
    pre = [line.strip() for p in main.find_all("pre") for line in p.get_text().split("\n") if len(line.strip()) > 8]
    heads = [" ".join(h.get_text(" ", strip=True).replace("¶", "").replace("#", "").split()) for h in main.find_all(["h1", "h2", "h3", "h4"])]
    chrome = ("note", "warning", "tip", "navigation", "contents", "table of contents", "share this:", "leave a reply", "recent posts", "categories")
    return pre, [h for h in heads if len(h) > 3 and h.lower() not in chrome and not h.endswith("thoughts on this post") and "thoughts on “" not in h]


def main() -> None:
    sample = pages()
    rows = []
    for name, extract in EXTRACTORS.items():
        gold = gold_found = pre = pre_found = heads = heads_found = spans = fragments = 0
        chrome_hits: dict[str, int] = {}
        texts = []
        for page, (html, phrases) in sample.items():
            try:
                text = extract(html)
            except Exception as exc:  # noqa: BLE001 - an extractor's failure is a result
                text = ""
                print(f"{name} failed on {page}: {exc}", file=sys.stderr)
            texts.append((page, "", text))
            flat = _norm(text)
            flat_letters = re.sub(r"[\W_]+", "", text.lower())
            gold += len(phrases)
            gold_found += sum(_norm(p) in flat for p in phrases)
            pre_lines, headings = _pre_lines_and_headings(html)
            pre += len(pre_lines)
            pre_found += sum(_norm(line) in flat for line in pre_lines)
            heads += len(headings)
            heads_found += sum(re.sub(r"[\W_]+", "", h.lower()) in flat_letters for h in headings)
            for phrase in CHROME_PHRASES:
                if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text):
                    chrome_hits[phrase] = chrome_hits.get(phrase, 0) + 1
            found = sentence_spans(text)
            spans += len(found)
            fragments += html_quality.fragments(text, found)
        corpus = html_quality.Corpus(texts)
        words = nav = 0
        for _, _, text in texts:
            for line in text.split("\n"):
                n = len(line.split())
                words += n
                nav += n if n and corpus.navigation_line(line) else 0
        rows.append((name, f"{gold_found}/{gold}", f"{pre_found}/{pre}", f"{heads_found}/{heads}", f"{nav / max(1, words):.1%}",
                     sum(chrome_hits.values()), f"{fragments / max(1, spans):.1%}",
                     ", ".join(f"{k} ×{v}" for k, v in sorted(chrome_hits.items(), key=lambda kv: -kv[1])[:6])))
    print(f"{len(sample)} pages")
    print("| extractor | gold phrases kept | code lines kept | headings kept | words on navigation lines | chrome phrases kept (page × phrase) | fragment spans | most kept chrome |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


if __name__ == "__main__":
    main()
