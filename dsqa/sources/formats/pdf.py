"""PDF notes (lecture slides, papers) with pypdf: text per page, cited by
page and by line within the page's text.

Each page's extracted text is one or more sections, so a chunk never spans
two pages. Headings come from the PDF's outline (bookmarks) when it has one;
otherwise from title lines, which pypdf's text visitor exposes at no extra
cost: lines set in a font clearly larger than the page's body text, or a
page's first line when it is set in bold. A page without a text layer (a
scanned image) is left out with a warning naming it: dsqa does no OCR.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from typing import Any

from ..markup import HEADING_SEPARATOR
from .extracted import Extracted, Layout
from .limits import DEFAULT_LIMITS, CharBudget, ReaderLimits

log = logging.getLogger("dsqa")

#: A line is a title when its font is at least this much larger than the
#: page's body text (the size most of its characters are set in).
TITLE_SIZE_RATIO = 1.2
#: Longer lines are body text even in a large font (a pull quote, a banner).
MAX_TITLE_CHARS = 120
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class PdfReader:
    kind = "pdf"
    suffixes: tuple[str, ...] = (".pdf",)
    version = 1

    def read(self, data: bytes, limits: ReaderLimits = DEFAULT_LIMITS) -> Extracted:
        reader, pages = _open(data)
        texts, warnings = _page_texts(pages, CharBudget(limits))
        return _join_pages(texts, _outline(reader), warnings)


#: A page as read: its number, its lines and its title lines.
_Page = tuple[int, list[str], set[str]]


def _open(data: bytes) -> tuple[Any, list[Any]]:
    """The pypdf reader of ``data`` and its pages; ``ValueError`` when it is
    encrypted, damaged or has no pages."""
    import pypdf
    from pypdf.errors import DependencyError, PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings are about the file, not for the user
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # permissions-only encryption opens with no password
            raise ValueError("encrypted PDF (it needs a password)")
        pages = list(reader.pages)
    except DependencyError as exc:
        raise ValueError(_needs_package(exc)) from None
    except NotImplementedError as exc:  # an encryption method pypdf does not implement
        raise ValueError(f"encrypted PDF that dsqa cannot open ({_why(exc)})") from None
    except ValueError as exc:
        if "encrypted" in str(exc):
            raise
        raise ValueError(f"damaged PDF ({_why(exc)})") from None
    except (PyPdfError, OSError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise ValueError(f"damaged PDF ({_why(exc)})") from None
    if not pages:
        raise ValueError("PDF has no pages")
    return reader, pages


def _page_texts(pages: list[Any], budget: CharBudget) -> tuple[list[_Page], list[str]]:
    """The pages that have text, and warnings naming those left out (no
    text layer, or damaged); ``ValueError`` when no page has text or a
    page's text would need a package that is missing, ``LimitExceeded`` at
    the page whose text crosses the character bound."""
    from pypdf.errors import DependencyError

    texts: list[_Page] = []
    blank: list[int] = []
    broken: list[int] = []
    for number, page in enumerate(pages, 1):
        try:
            lines, titles = _page_text(page)
        except DependencyError as exc:  # AES without the cryptography package: every page fails alike
            raise ValueError(_needs_package(exc)) from None
        except Exception as exc:  # a damaged page must not lose the others
            log.debug("pdf page %d: %s", number, exc)
            broken.append(number)
            continue
        budget.take(sum(len(line) + 1 for line in lines))
        if not any(line.strip() for line in lines):
            blank.append(number)
            continue
        texts.append((number, lines, titles))
    warnings = []
    if blank:
        warnings.append(f"{_pages(blank)} no text layer (scanned? dsqa does no OCR): left out")
    if broken:
        warnings.append(f"{_pages(broken)} could not be read (damaged): left out")
    if not texts:
        raise ValueError("no text in any page (a scanned PDF? dsqa does no OCR)")
    return texts, warnings


def _join_pages(texts: list[_Page], outline: dict[int, list[list[str]]], warnings: list[str]) -> Extracted:
    """The pages' text, a blank line between pages, with its sections and
    page starts."""
    all_lines: list[str] = []
    starts: list[int] = []
    numbers: list[int] = []
    sections: list[tuple[int, int, str]] = []
    heading = ""
    for number, lines, titles in texts:
        if all_lines:
            all_lines.append("")  # a blank line between pages: paragraphs never run across
        start = len(all_lines)
        starts.append(start)
        numbers.append(number)
        all_lines.extend(lines)
        cuts, heading = _page_sections(lines, outline.get(number, []), titles, heading, bool(outline))
        for i, (first, path) in enumerate(cuts):
            end = cuts[i + 1][0] if i + 1 < len(cuts) else len(lines)
            sections.append((start + first, start + end, path))
    layout = Layout(tuple(sections), "page", tuple(starts), tuple(numbers))
    return Extracted("\n".join(all_lines), layout, tuple(warnings))


def _needs_package(exc: BaseException) -> str:
    """Why an encrypted PDF cannot be read: pypdf needs the cryptography
    package for AES, which dsqa depends on, so this is a broken install."""
    return f"encrypted PDF that needs the cryptography package to decrypt ({_why(exc)}): pip install cryptography"


def _why(exc: BaseException) -> str:
    return str(exc).strip().split("\n")[0][:200] or type(exc).__name__


def _pages(numbers: list[int]) -> str:
    return ("page " if len(numbers) == 1 else "pages ") + ", ".join(map(str, numbers)) + (" has" if len(numbers) == 1 else " have")


def _clean(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _page_text(page: Any) -> tuple[list[str], set[str]]:
    """The page's lines, and the (stripped) lines that are titles."""
    runs: list[tuple[str, float, bool]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text:
            scale = abs(float(tm[3]) * float(cm[3])) or 1.0
            name = str((font or {}).get("/BaseFont", ""))
            bold = any(w in name for w in ("Bold", "Black", "Heavy", "Semibold"))
            runs.append((text, float(size or 0) * scale, bold))

    text = _clean(page.extract_text(visitor_text=visit) or "")
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines, _title_lines(runs, lines)


def _title_lines(runs: list[tuple[str, float, bool]], lines: list[str]) -> set[str]:
    """Lines set in a font clearly larger than the body's, and the first line
    when it is bold: the text of large runs, cut at line breaks, is matched
    against the page's lines (the visitor's runs carry no line numbers)."""
    sizes: Counter[float] = Counter()
    for text, size, _ in runs:
        sizes[round(size, 1)] += len(text.strip())
    if not sizes:
        return set()
    body = sizes.most_common(1)[0][0]
    large: list[str] = []
    bold: list[str] = []
    current_large, current_bold = "", ""
    for text, size, is_bold in runs:
        is_large = body > 0 and size >= body * TITLE_SIZE_RATIO
        for piece_i, piece in enumerate(text.split("\n")):
            if piece_i:
                large.append(current_large)
                bold.append(current_bold)
                current_large, current_bold = "", ""
            current_large += piece if is_large else ("\0" if piece.strip() else piece)
            current_bold += piece if is_bold else ("\0" if piece.strip() else piece)
    large.append(current_large)
    bold.append(current_bold)
    titles = {t.strip() for t in large if t.strip() and "\0" not in t and len(t.strip()) <= MAX_TITLE_CHARS}
    first = next((line.strip() for line in lines if line.strip()), "")
    if first and len(first) <= MAX_TITLE_CHARS and first in {b.strip() for b in bold if "\0" not in b}:
        titles.add(first)
    return titles


def _outline(reader: Any) -> dict[int, list[list[str]]]:
    """Outline entries by the 1-based page they point at, each as its path
    of titles, in document order; empty when the PDF has none (or a broken one)."""
    by_page: dict[int, list[list[str]]] = {}

    def walk(items: Any, path: list[str]) -> None:
        last: list[str] = path
        for item in items:
            if isinstance(item, list):
                walk(item, last)
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if not title:
                continue
            last = path + [title]
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            if page is not None and page >= 0:
                by_page.setdefault(page + 1, []).append(last)

    try:
        walk(reader.outline, [])
    except Exception as exc:  # a damaged outline costs the headings, not the text
        log.debug("pdf outline: %s", exc)
        return {}
    return by_page


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _page_sections(
    lines: list[str], entries: list[list[str]], titles: set[str], heading: str, has_outline: bool
) -> tuple[list[tuple[int, str]], str]:
    """Where the page's sections start (line index within the page) and their
    heading paths, and the heading that carries over to the next page.

    With an outline, the page opens under the path of its first entry (or the
    one carried over), and each later entry whose title is a line of the page
    starts a section there. Without one, each title line (consecutive title
    lines join) starts a section headed by it.
    """
    cuts: list[tuple[int, str]] = []
    if has_outline:
        if entries:
            heading = HEADING_SEPARATOR.join(entries[0])
        cuts.append((0, heading))
        at = 0
        for path in entries[1:]:
            wanted = _norm(path[-1])
            for i in range(at + 1, len(lines)):
                if _norm(lines[i]) == wanted:
                    cuts.append((i, HEADING_SEPARATOR.join(path)))
                    at = i
                    break
            heading = HEADING_SEPARATOR.join(path)  # found or not, it is open after this page
        return cuts, heading
    cuts.append((0, heading))
    i = 0
    while i < len(lines):
        if lines[i].strip() in titles:
            j = i
            while j + 1 < len(lines) and lines[j + 1].strip() in titles:
                j += 1
            heading = " ".join(line.strip() for line in lines[i : j + 1])
            if i == 0:
                cuts[0] = (0, heading)
            else:
                cuts.append((i, heading))
            i = j + 1
        else:
            i += 1
    return cuts, heading


READER = PdfReader()
