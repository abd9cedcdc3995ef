"""The web page: ask the notes in a browser (Gradio).

``build_page(engine)`` returns the ``gr.Blocks``; ``serve(engine)`` (what
``dsqa serve`` runs) and ``app.py`` launch it, mounted on an app whose
:class:`~dsqa.request_guard.RequestGuard` refuses foreign ``Host`` names on a
loopback bind, cross-origin requests from origins not listed, and uploads. The page is a thin layer over
the library's public API (:meth:`DSQA.ask`, :meth:`DSQA.status`,
:meth:`DSQA.reindex`, :meth:`DSQA.note_names`): every check of user input
happens in the engine, and the page only renders what it returns.

Note text is shown escaped, or rendered from Markdown with raw HTML off and
only safe links (:mod:`dsqa.passage_html`); the only file it reads
itself is the note section around a passage (:func:`note_section`), and only
for notes that are in the index and resolve inside the corpus folder.

It works with no network: system fonts, no analytics, no server-side
rendering, localhost unless another host is asked for.
"""

from __future__ import annotations

import errno
import html
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Before Gradio is imported: it reads these at import time.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from . import formats  # noqa: E402
from .engine import DSQA, IndexStatus  # noqa: E402
from .errors import DsqaError  # noqa: E402
from .notes import read_corpus_file  # noqa: E402
from .request_guard import RequestGuard, is_loopback, loopback_hosts, normalise_origins  # noqa: E402
from .progress import Step  # noqa: E402
from .passage_html import inline_markdown_html, markdown_html, merged_spans, relevance, shorten_heading  # noqa: E402
from .results import WEAK, Answer, Passage  # noqa: E402

try:
    import gradio as gr  # noqa: E402
except ImportError as exc:  # pragma: no cover - depends on the install
    raise DsqaError("the web page needs Gradio: pip install 'dsqa[web]'") from exc

log = logging.getLogger("dsqa")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_K = 20
NOT_COVERED = "The notes don't cover this."
WEAK_MATCH = "Closest match, low confidence"

#: Example questions, each with the note that answers it: the page shows those
#: whose note is in the engine's index, so another corpus gets none.
EXAMPLES: list[tuple[str, str]] = [
    ("how do overlay networks do service discovery", "notes/unlimitediw-dist-sys-notes.md"),
    ("what is the difference between a container and a virtual machine", "notes/unlimitediw-dist-sys-notes.md"),
    ("what is a Kubernetes pod", "notes/unlimitediw-dist-sys-notes.md"),
    ("how is data loaded into Redshift", "notes/unlimitediw-dist-sys-notes.md"),
    ("how does Kinesis split a stream into shards", "notes/anonymous-short-notes.md"),
]

#: System fonts only: nothing is fetched from a font CDN.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "DejaVu Sans Mono", "monospace"],
)

CSS = """
.dsqa-answer { font-size: 1.05rem; line-height: 1.5; padding: 0.75rem 1rem; border-radius: 8px;
  background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); }
.dsqa-answer.dsqa-not-found { border-left: 4px solid #d97706; }
.dsqa-answer.dsqa-weak { border-left: 4px solid #ca8a04; }
.dsqa-answer.dsqa-found { border-left: 4px solid #2563eb; }
.dsqa-answer .dsqa-cite { font-weight: 600; text-decoration: none; }
.dsqa-answer code, .dsqa-text code { font-family: var(--font-mono); font-size: 0.88em; padding: 0 0.2em;
  border-radius: 4px; background: var(--background-fill-secondary); }
.dsqa-answer-text { margin-top: 0.35rem; }
.dsqa-error { padding: 0.75rem 1rem; border-radius: 8px; border: 1px solid #dc2626;
  border-left: 4px solid #dc2626; background: rgba(220, 38, 38, 0.08); }
.dsqa-passage { margin: 0.75rem 0; padding: 0.75rem 1rem; border-radius: 8px;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary); }
.dsqa-passage-head { display: flex; gap: 0.75rem; align-items: baseline; justify-content: space-between; }
.dsqa-citation { font-weight: 600; margin: 0; font-size: 0.95rem; word-break: break-word; }
.dsqa-heading { font-weight: 400; cursor: help; }
.dsqa-n { color: var(--body-text-color-subdued); margin-right: 0.35rem; }
.dsqa-score { white-space: nowrap; font-size: 0.8rem; padding: 0.05rem 0.5rem; border-radius: 999px;
  border: 1px solid var(--border-color-primary); color: var(--body-text-color-subdued); }
.dsqa-score.dsqa-strong { color: #15803d; border-color: #86efac; }
.dsqa-score.dsqa-good { color: #1d4ed8; border-color: #93c5fd; }
.dsqa-score.dsqa-weak { color: #b45309; border-color: #fcd34d; }
.dsqa-actions { display: flex; flex-wrap: wrap; gap: 0.25rem 0.9rem; align-items: center; margin-top: 0.3rem;
  font-size: 0.8rem; }
.dsqa-actions a { color: var(--link-text-color); text-decoration: none; }
.dsqa-actions a:hover { text-decoration: underline; }
.dsqa-copy { font-size: 0.8rem; padding: 0.05rem 0.5rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); color: inherit; }
.dsqa-text { font-size: 0.95rem; line-height: 1.5; margin: 0.4rem 0; overflow-wrap: anywhere; }
.dsqa-text p, .dsqa-text ul, .dsqa-text ol, .dsqa-text pre, .dsqa-text table, .dsqa-text blockquote { margin: 0.35rem 0; }
.dsqa-text ul, .dsqa-text ol { padding-left: 1.4rem; }
.dsqa-text ul { list-style: disc; }
.dsqa-text ol { list-style: decimal; }
.dsqa-text h1, .dsqa-text h2, .dsqa-text h3, .dsqa-text h4, .dsqa-text h5, .dsqa-text h6 {
  font-size: 1rem; font-weight: 600; margin: 0.5rem 0 0.25rem; }
.dsqa-text pre { overflow-x: auto; padding: 0.5rem 0.75rem; border-radius: 6px; font-size: 0.85rem;
  background: var(--background-fill-secondary); }
.dsqa-text pre code { background: none; padding: 0; white-space: pre; }
.dsqa-text a { color: var(--link-text-color); }
.dsqa-text .dsqa-img { font-size: 0.8rem; }
.dsqa-text table { border-collapse: collapse; font-size: 0.88rem; display: block; overflow-x: auto; }
.dsqa-text th, .dsqa-text td { border: 1px solid var(--border-color-primary); padding: 0.2rem 0.5rem; }
.dsqa-text blockquote { border-left: 3px solid var(--border-color-primary); padding-left: 0.75rem; }
.dsqa-text mark, .dsqa-answer mark, .dsqa-line.dsqa-here mark { background: #fde047; color: #111; padding: 0 1px; border-radius: 2px; }
.dsqa-context summary { cursor: pointer; font-size: 0.85rem; color: var(--link-text-color); }
.dsqa-context-body { max-height: 28rem; overflow: auto; font-family: var(--font-mono); font-size: 0.8rem;
  border-top: 1px solid var(--border-color-primary); margin-top: 0.4rem; padding-top: 0.4rem; }
.dsqa-line { white-space: pre-wrap; }
.dsqa-line.dsqa-here { background: rgba(37, 99, 235, 0.10); }
.dsqa-ln { display: inline-block; min-width: 3.5em; color: var(--body-text-color-subdued); user-select: none; }
.dsqa-status { font-size: 0.9rem; line-height: 1.5; }
.dsqa-status .dsqa-ok { color: #15803d; font-weight: 600; }
.dsqa-status .dsqa-stale { color: #b45309; font-weight: 600; }
.dsqa-report { font-size: 0.85rem; }
.dsqa-report ul { margin: 0.2rem 0 0 1.1rem; list-style: disc; }
#dsqa-examples { flex-wrap: nowrap !important; overflow-x: auto; gap: 0.4rem; padding-bottom: 2px;
  scrollbar-width: thin; }
#dsqa-examples > * { flex: 0 0 auto !important; min-width: 0 !important; width: auto !important; }
#dsqa-examples button { white-space: nowrap; }
@media (max-width: 640px) {
  #dsqa-main { gap: 0.5rem; }
  #dsqa-main > #dsqa-ask-row { order: 0; }
  #dsqa-main > #dsqa-answer { order: 1; }
  #dsqa-main > #dsqa-examples { order: 2; }
  #dsqa-main > #dsqa-filters { order: 3; }
  #dsqa-main > #dsqa-passages { order: 4; }
  .gradio-container { padding-left: 8px !important; padding-right: 8px !important; }
  #dsqa-answer, #dsqa-passages { padding: 0 !important; }
  .dsqa-actions { gap: 0.25rem 0.6rem; }
  #dsqa-ask-row { flex-wrap: nowrap !important; }
  #dsqa-ask-row > * { min-width: 0 !important; }
  #dsqa-intro p { display: none; }
  .dsqa-passage { padding: 0.6rem 0.7rem; }
  .dsqa-passage-head { flex-direction: column; gap: 0.2rem; }
}
"""


# -- reading a note section, safely -----------------------------------------
@dataclass
class NoteSection:
    """Lines ``first``..``first + len(lines) - 1`` of note ``source``."""

    source: str
    first: int
    lines: list[str]

    @property
    def last(self) -> int:
        return self.first + len(self.lines) - 1


_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _check_indexed(engine: DSQA, source: str) -> None:
    """A ``ValueError`` unless ``source`` is a note in the index: the page
    never reads a file the index does not name."""
    if not isinstance(source, str) or source not in engine.note_names():
        raise ValueError(f"no note {source!r} in the index")


def _note_lines(engine: DSQA, source: str, page: int | None) -> list[str]:
    """The note's text as dsqa indexed it: the file for Markdown and text,
    else what its reader extracts (for a PDF, page ``page``'s text)."""
    # The one checked way to read a corpus file: inside the corpus when opened,
    # never through a symlink or FIFO swapped in after indexing.
    data = read_corpus_file(engine.settings.corpus_dir, source)[0]
    reader = formats.reader_for(source)
    if reader.kind == "markdown":
        return data.decode("utf-8", errors="replace").splitlines()
    extracted = reader.read(data)
    if page is not None and extracted.layout is not None and extracted.layout.unit == "page":
        return extracted.layout.unit_text(extracted.text, int(page)).splitlines()
    return extracted.text.splitlines()


def note_section(
    engine: DSQA, source: str, start_line: int, end_line: int, *, page: int | None = None, max_lines: int = 120
) -> NoteSection:
    """The section of indexed note ``source`` around lines
    ``start_line``..``end_line``: from the nearest Markdown heading at or above
    the passage to just before the next heading of the same or a higher level
    (headings inside fenced code do not count), cut to ``max_lines`` around the
    passage. Notes without headings give the passage with some lines around it.
    A PDF, a web page or a notebook is read with its reader (dsqa.formats), so
    the lines are those of its extracted text (of page ``page`` for a PDF).
    """
    _check_indexed(engine, source)
    lines = _note_lines(engine, source, page)
    if not lines:
        return NoteSection(source, 1, [])
    start = min(max(1, int(start_line)), len(lines))
    end = min(max(start, int(end_line)), len(lines))

    headings: list[tuple[int, int]] = []  # (line number, level)
    fence: str | None = None
    for number, line in enumerate(lines, 1):
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker[0] * 3
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is None:
            h = _HEADING.match(line)
            if h:
                headings.append((number, len(h.group(1))))

    above = [(n, level) for n, level in headings if n <= start]
    if above:
        first, level = above[-1]
        after = [n for n, lv in headings if n > first and lv <= level]
        last = after[0] - 1 if after else len(lines)
    else:
        first, last = max(1, start - 10), min(len(lines), end + 10)
    last = max(last, end)
    if last - first + 1 > max_lines:
        spare = max(0, max_lines - (end - start + 1))
        first = max(first, start - spare // 2)
        last = min(last, max(end, first + max_lines - 1))
    return NoteSection(source, first, lines[first - 1 : last])


# -- rendering ---------------------------------------------------------------
def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def highlight_html(text: str, spans: Any) -> str:
    """``text`` HTML-escaped, with the character ``spans`` wrapped in ``<mark>``."""
    out, pos = [], 0
    for a, b in merged_spans(spans, len(text)):
        out += [_esc(text[pos:a]), "<mark>", _esc(text[a:b]), "</mark>"]
        pos = b
    out.append(_esc(text[pos:]))
    return "".join(out)


_CITE_MARKER = re.compile(r"\[(\d{1,3})\]")


def _answer_text_html(text: str, n_passages: int) -> str:
    """The short answer as inline Markdown (code spans stay code), with its
    ``[n]`` markers linked to the passages."""

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if 1 <= n <= n_passages:
            return f'<a class="dsqa-cite" href="#dsqa-p{n}">[{n}]</a>'
        return m.group(0)

    # Markers are linked in text only, never inside a tag or a code span.
    parts = re.split(r"(<code>.*?</code>|<[^>]*>)", inline_markdown_html(text))
    return "".join(p if p.startswith("<") else _CITE_MARKER.sub(link, p) for p in parts)


def render_answer(answer: Answer) -> str:
    """The answer box, in one of three states: the short answer; the closest
    match, flagged as weak evidence; or a plain statement that the notes
    don't cover the question."""
    n = len(answer.passages)
    if answer.coverage == WEAK:
        body = f"<strong>{WEAK_MATCH}</strong>: the notes may not answer this."
        if answer.text.strip():
            body += f'<div class="dsqa-answer-text">{_answer_text_html(answer.text.strip(), n)}</div>'
        if answer.passages:
            top = answer.passages[0]
            body += (
                f' <span class="dsqa-closest">The closest passage is <a class="dsqa-cite" href="#dsqa-p1">[1]</a> '
                f"{_esc(top.source)}:{top.start_line}-{top.end_line}"
                f"{' · ' + _esc(shorten_heading(top.heading)) if top.heading else ''}, below.</span>"
            )
        return f'<div class="dsqa-answer dsqa-weak">{body}</div>'
    if not answer.found:
        body = f"<strong>{NOT_COVERED}</strong>"
        if answer.passages:
            body += " The nearest passages are below."
        return f'<div class="dsqa-answer dsqa-not-found">{body}</div>'
    if answer.text.strip():
        return f'<div class="dsqa-answer dsqa-found">{_answer_text_html(answer.text.strip(), n)}</div>'
    return f'<div class="dsqa-answer dsqa-found">{n} passage{"s" if n != 1 else ""} from the notes answer this:</div>'


def _context_html(engine: DSQA, p: Passage) -> str:
    try:
        section = note_section(engine, p.source, p.start_line, p.end_line, page=p.page)
    except (OSError, ValueError) as exc:
        return f'<p class="dsqa-context-missing">(note section unavailable: {_esc(str(exc))})</p>'
    rows = []
    for number, line in enumerate(section.lines, section.first):
        here = p.start_line <= number <= p.end_line
        cls = "dsqa-line dsqa-here" if here else "dsqa-line"
        rows.append(f'<div class="{cls}"><span class="dsqa-ln">{number}</span>{_esc(line) or " "}</div>')
    where = f"lines {section.first}–{section.last} of {_esc(p.source)}"
    if p.page is not None:
        where = f"page {p.page}, " + where
    elif not p.source.lower().endswith(formats.markdown.READER.suffixes):
        where += " as extracted"
    return (
        '<details class="dsqa-context">'
        f"<summary>Open the note section ({where})</summary>"
        f'<div class="dsqa-context-body">{"".join(rows)}</div></details>'
    )


def note_links(engine: DSQA, p: Passage) -> dict[str, str]:
    """Where the passage's note is on disk, as links that open it: ``file``
    (the note; at its page for a PDF) and, for a text note, ``vscode`` (VS
    Code at the passage's first line). Nothing is served: a saved page opened
    from this page's origin could run its scripts here."""
    path = Path(engine.settings.corpus_dir).resolve() / p.source
    links = {"file": path.as_uri() + (f"#page={int(p.page)}" if p.page is not None else "")}
    if p.source.lower().endswith(formats.markdown.READER.suffixes):  # lines of the file itself
        links["vscode"] = f"vscode://file{quote(path.as_posix())}:{int(p.start_line)}"
    return links


def render_passage(engine: DSQA, n: int, p: Passage, label: str = "") -> str:
    """One passage: its citation (heading path shortened, the whole one on
    hover), how well it matches, what to do with it (copy the citation, open
    the note at its line), its text rendered from Markdown with the answering
    sentences marked, and the note section around it."""
    where = f"{p.source}:{p.start_line}-{p.end_line}"
    heading = shorten_heading(p.heading)
    head = f'<span class="dsqa-where">{_esc(where)}</span>'
    if heading:
        head += f' · <span class="dsqa-heading" title="{_esc(p.heading)}">{_esc(heading)}</span>'
    links = note_links(engine, p)
    open_at = ""
    if "vscode" in links:
        open_at = (
            f'<a class="dsqa-open" href="{_esc(links["vscode"])}" title="Open in VS Code at line {p.start_line}">'
            f"open at line {p.start_line}</a>"
        )
    badge = f'<span class="dsqa-score dsqa-{label.split()[0]}" title="score {p.score:.3f}">{_esc(label)}</span>' if label else ""
    return (
        f'<section class="dsqa-passage" id="dsqa-p{n}">'
        '<div class="dsqa-passage-head">'
        f'<h4 class="dsqa-citation" title="{_esc(p.citation)}"><span class="dsqa-n">[{n}]</span>{head}</h4>{badge}</div>'
        '<div class="dsqa-actions">'
        f'<button type="button" class="dsqa-copy" data-citation="{_esc(p.citation)}">Copy citation</button>'
        f"{open_at}"
        f'<a class="dsqa-file" href="{_esc(links["file"])}" target="_blank" rel="noopener noreferrer" '
        f'title="{_esc(links["file"])} (if your browser blocks links to local files, copy this one into its address bar)">'
        f"{'open page ' + str(p.page) if p.page is not None else 'file'}</a></div>"
        f'<div class="dsqa-text">{markdown_html(p.text, p.highlights)}</div>'
        f"{_context_html(engine, p)}</section>"
    )


def render_passages(engine: DSQA, answer: Answer) -> str:
    if not answer.passages:
        return '<p class="dsqa-empty">No passages.</p>'
    top = answer.passages[0].score
    threshold = engine.settings.refusal_threshold
    return "".join(
        render_passage(engine, n, p, relevance(p.score, top, answer.confidence, threshold))
        for n, p in enumerate(answer.passages, 1)
    )


def _when(created: str) -> str:
    """An ISO time stamp as ``2026-11-22 01:39 UTC``."""
    m = re.match(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)", created or "")
    return f"{m.group(1)} {m.group(2)} UTC" if m else str(created or "?")


def render_status(status: IndexStatus) -> str:
    """The index panel: how many notes, whether the index matches them, and
    when it was built; nothing about how it is built."""
    s = status.to_dict()
    notes = int(s.get("notes", 0))
    if s.get("up_to_date"):
        state = '<span class="dsqa-ok">up to date</span>'
    else:
        problems = "; ".join(s.get("problems") or []) or "the notes changed"
        state = (
            f'<span class="dsqa-stale">out of date</span>: {_esc(problems)}. '
            "It is updated before the next question, or press Reindex."
        )
    return (
        '<div class="dsqa-status">'
        f"<b>{notes}</b> note{'s' if notes != 1 else ''} · <b>{int(s.get('chunks', 0))}</b> passages · {state}<br>"
        f"<small>updated {_esc(_when(str(s.get('created', ''))))} · from <code>{_esc(str(s.get('corpus_dir', '')))}</code></small>"
        "</div>"
    )


def describe_reindex(report: Any) -> str:
    """What a reindex changed, for people: the notes added, changed, removed
    and skipped (not chunk counts, encoders or timings)."""
    rows = []
    if getattr(report, "full", False):
        rows.append(f"<li>rebuilt from all {len(getattr(report, 'added', None) or [])} notes</li>")
    else:
        for kind in ("added", "changed", "removed"):
            names = list(getattr(report, kind, None) or [])
            if names:
                rows.append(f"<li>{kind}: {_esc(', '.join(names))}</li>")
    for name, why in getattr(report, "skipped", None) or []:
        rows.append(f"<li>skipped {_esc(str(name))}: {_esc(str(why))}</li>")
    if not rows:
        return "nothing changed: the index was up to date."
    return f"<ul>{''.join(rows)}</ul>"


def error_html(message: str) -> str:
    return f'<div class="dsqa-error" role="alert"><strong>Error:</strong> {_esc(message)}</div>'


def _message(exc: BaseException) -> str:
    if isinstance(exc, (ValueError, DsqaError)):
        return str(exc)
    log.exception("web page: unexpected error")
    return f"something went wrong ({type(exc).__name__}: {exc}); the server log has the details"


def _as_k(k: Any) -> Any:
    """Sliders send floats; whole numbers become ints, anything else is left
    for the engine to refuse."""
    if isinstance(k, float) and k.is_integer():
        return int(k)
    return k


def _as_notes(notes: Any) -> Any:
    """The dropdown's value as the engine takes it: ``None`` for all notes, a
    list of names; anything else is left for the engine to refuse."""
    if notes is None or notes == "" or notes == []:
        return None
    if isinstance(notes, str):
        return [notes]
    if isinstance(notes, (list, tuple)):
        return list(notes)
    return notes


# -- the page ----------------------------------------------------------------
#: The page's own script (in ``<head>``; the notes' HTML never carries any):
#: the copy-citation buttons, and ``/`` to focus the question box.
HEAD = """<script>
(() => {
  async function copyText(text) {
    try { await navigator.clipboard.writeText(text); return true; } catch (err) {
      const area = document.createElement("textarea");
      area.value = text; area.setAttribute("readonly", ""); area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area); area.select();
      let ok = false; try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove(); return ok;
    }
  }
  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("button.dsqa-copy");
    if (!button) return;
    const ok = await copyText(button.dataset.citation || "");
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => { button.textContent = "Copy citation"; }, 1500);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    const box = document.querySelector("#dsqa-question textarea, #dsqa-question input");
    if (box) { event.preventDefault(); box.focus(); box.select(); }
  });
})();
</script>"""

#: On load, on a wide screen, the filter row starts open (on a phone it
#: starts collapsed, so the answer comes right after the question).
ON_LOAD = """() => {
  if (!window.matchMedia("(min-width: 900px)").matches) return;
  let tries = 0;
  const open = () => {
    const label = document.querySelector("#dsqa-filters .label-wrap");
    if (label) { if (!label.classList.contains("open")) label.click(); }
    else if (tries++ < 50) setTimeout(open, 100);
  };
  open();
}"""

#: Runs before each question is sent: the page's address becomes ``?q=…``,
#: so it can be bookmarked or shared (and asks again on load).
_REMEMBER_QUESTION = """(question, k, notes) => {
  try {
    const url = new URL(window.location.href);
    if ((question || "").trim()) { url.searchParams.set("q", question.trim()); } else { url.searchParams.delete("q"); }
    window.history.replaceState(null, "", url);
  } catch (err) {}
  return [question, k, notes];
}"""


def filters_label(k: Any, notes: Any) -> str:
    """The collapsed filter row's title: what the filters are set to."""
    chosen = _as_notes(notes)
    if not chosen:
        which = "all notes"
    elif isinstance(chosen, list) and len(chosen) == 1:
        which = str(chosen[0]).rsplit("/", 1)[-1]
    else:
        which = f"{len(chosen)} notes" if isinstance(chosen, list) else "some notes"
    try:
        shown = f"{int(k)} passages"
    except (TypeError, ValueError):
        shown = "passages"
    return f"Filters: {shown} · {which}"


def build_page(engine: DSQA | None = None) -> gr.Blocks:
    """The page for ``engine`` (the shared default engine when ``None``).

    Endpoints (for ``gradio_client``): ``/ask`` (question, k, notes) -> (answer
    HTML, passages HTML), as the page shows them; ``/ask_json`` (question, k,
    notes) -> ``Answer.to_dict()``, errors raised as the library's message;
    ``/status`` -> status HTML; ``/status_json`` -> ``IndexStatus.to_dict()``;
    ``/reindex`` -> (summary, status HTML, notes choices).

    In the page: changing k or the notes asks the question again; ``/``
    focuses the question box; ``?q=…`` in the address asks on load (and each
    question asked is put there); after a question that found the notes
    changed (and the index updated first), the index panel says what changed.
    """
    if engine is None:
        from . import engine as shared_engine

        engine = shared_engine()

    try:
        notes_in_index = engine.note_names()
    except DsqaError as exc:  # no index yet: the status panel says so, Reindex builds it
        log.warning("web page: %s", exc)
        notes_in_index = []
    examples = [q for q, note in EXAMPLES if note in notes_in_index]

    def ask(question: str, k: float, notes: list[str] | None) -> tuple[str, str]:
        try:
            answer = engine.ask(question, k=_as_k(k), notes=_as_notes(notes))
        except Exception as exc:  # shown once, in the answer box; never as a traceback
            return error_html(_message(exc)), ""
        return render_answer(answer), render_passages(engine, answer)

    def ask_again(question: str, k: float, notes: list[str] | None) -> tuple[Any, Any]:
        """A filter changed: the question asked again, if there is one."""
        if not isinstance(question, str) or not question.strip():
            return gr.skip(), gr.skip()
        return ask(question, k, notes)

    def ask_json(question: str, k: int = engine.settings.k, notes: list[str] | None = None) -> dict:
        """The answer as JSON: {question, found, coverage, confidence, text,
        passages: [{text, source, heading, start_line, end_line, score,
        highlights, citation}]}."""
        try:
            return engine.ask(question, k=_as_k(k), notes=_as_notes(notes)).to_dict()
        except Exception as exc:
            raise gr.Error(html.escape(_message(exc), quote=False), print_exception=False) from None

    def status() -> str:
        try:
            return render_status(engine.status())
        except Exception as exc:
            return error_html(_message(exc))

    def status_json() -> dict:
        """The index status: notes, chunks, model, up_to_date, problems, …"""
        try:
            return engine.status().to_dict()
        except Exception as exc:
            raise gr.Error(html.escape(_message(exc), quote=False), print_exception=False) from None

    def generation() -> str:
        try:
            return engine.status().generation
        except Exception:
            return ""

    def reindex(progress: gr.Progress = gr.Progress()) -> tuple[str, str, Any]:
        def show(step: Step) -> None:
            """One bar, counted in passages while they are embedded; the
            other stages are a line of text ("reading 5 notes…")."""
            if step.stage == "embed" and step.total:
                progress((step.done, step.total), desc="Indexing passages", unit="passages")
            elif step.stage != "done":
                progress(None, desc=step.message)

        try:
            report = engine.reindex(progress=show)
        except Exception as exc:
            return error_html(_message(exc)), status(), gr.update()
        summary = f'<div class="dsqa-report">Reindexed: {describe_reindex(report)}</div>'
        try:
            choices = engine.note_names()
        except Exception:  # the status panel says what is wrong
            return summary, status(), gr.update()
        return summary, status(), gr.update(choices=choices)

    def after_ask(shown: str) -> tuple[Any, Any, Any, str]:
        """The index panel brought up to date when the index changed since
        the page last showed it (a question found the notes changed and the
        index was updated first, or another process reindexed)."""
        try:
            current = engine.status()
        except Exception:
            return gr.skip(), gr.skip(), gr.skip(), shown
        if not shown or current.generation == shown:
            return gr.skip(), gr.skip(), gr.skip(), current.generation
        report = engine.last_reindex
        what = describe_reindex(report) if report is not None else "it was rebuilt by another dsqa process."
        summary = f'<div class="dsqa-report">The notes changed, so the index was updated: {what}</div>'
        try:
            choices: Any = gr.update(choices=engine.note_names())
        except Exception:
            choices = gr.skip()
        return render_status(current), summary, choices, current.generation

    def on_load(request: gr.Request) -> tuple[str, Any, Any, str, str]:
        """The index panel and notes; the question from ``?q=``, if any (the
        box is left alone otherwise: the user may be typing already)."""
        question = ""
        if request is not None:
            question = str(request.query_params.get("q", "")).strip()[: engine.settings.max_question_chars]
        try:
            choices: Any = gr.update(choices=engine.note_names())
        except Exception:
            choices = gr.update()
        return status(), choices, question if question else gr.skip(), question, generation()

    with gr.Blocks(title="dsqa — ask your notes", analytics_enabled=False) as page:
        gr.Markdown(
            "# dsqa — ask your notes\nAsk a question; get the passages of your notes that answer it, "
            "each cited to its note, heading and lines. Press <kbd>/</kbd> to type a question.",
            elem_id="dsqa-intro",
        )
        shown_generation = gr.State("")
        asked_on_load = gr.State("")  # the question in the address (?q=)
        with gr.Row(equal_height=False, elem_id="dsqa-layout"):
            with gr.Column(scale=3, elem_id="dsqa-main"):
                with gr.Row(equal_height=True, elem_id="dsqa-ask-row"):
                    question = gr.Textbox(
                        label="Question",
                        placeholder="e.g. how do overlay networks do service discovery",
                        lines=1,
                        max_lines=3,
                        scale=5,
                        autofocus=True,
                        elem_id="dsqa-question",
                    )
                    submit = gr.Button("Ask", variant="primary", scale=1, min_width=72, elem_id="dsqa-ask")
                example_buttons = []
                if examples:
                    with gr.Row(elem_id="dsqa-examples"):
                        for text in examples:
                            example_buttons.append((gr.Button(text, size="sm", variant="secondary", elem_classes="dsqa-example"), text))
                answer_box = gr.HTML(label="answer", show_label=False, elem_id="dsqa-answer")
                with gr.Accordion(filters_label(engine.settings.k, None), open=False, elem_id="dsqa-filters") as filters:
                    with gr.Row():
                        k = gr.Slider(
                            1, MAX_K, value=min(engine.settings.k, MAX_K), step=1, label="Passages to show (k)", elem_id="dsqa-k"
                        )
                        notes = gr.Dropdown(
                            choices=notes_in_index,
                            value=[],
                            multiselect=True,
                            label="Only these notes (none = all)",
                            # The engine checks note names (and refuses anything not
                            # in the index), so notes added by a reindex work too.
                            allow_custom_value=True,
                            elem_id="dsqa-notes",
                        )
                passages_box = gr.HTML(label="passages", show_label=False, elem_id="dsqa-passages")
            with gr.Column(scale=1, min_width=240, elem_id="dsqa-side"):
                gr.Markdown("### Index")
                status_box = gr.HTML(status(), label="status", show_label=False, elem_id="dsqa-status")
                with gr.Row():
                    reindex_button = gr.Button("Reindex", size="sm", elem_id="dsqa-reindex")
                    refresh_button = gr.Button("Refresh", size="sm", elem_id="dsqa-refresh")
                reindex_box = gr.HTML(label="reindex report", show_label=False, elem_id="dsqa-reindex-report")

        inputs = [question, k, notes]
        outputs = [answer_box, passages_box]
        panel = [status_box, reindex_box, notes, shown_generation]

        def asked(event: Any) -> None:
            event.then(after_ask, shown_generation, panel, api_visibility="private", queue=False)

        asked(submit.click(ask, inputs, outputs, api_name="ask", js=_REMEMBER_QUESTION,
                           api_description="Answer a question: (answer HTML, passages HTML)."))
        asked(question.submit(ask, inputs, outputs, api_visibility="private", js=_REMEMBER_QUESTION))
        for button, text in example_buttons:
            asked(
                button.click(lambda t=text: t, None, question, api_visibility="private", queue=False).then(
                    ask, inputs, outputs, api_visibility="private", js=_REMEMBER_QUESTION
                )
            )
        for control in (k, notes):
            asked(control.change(ask_again, inputs, outputs, api_visibility="private", trigger_mode="always_last"))
            control.change(
                lambda kv, nv: gr.update(label=filters_label(kv, nv)), [k, notes], filters, api_visibility="private", queue=False
            )
        gr.api(ask_json, api_name="ask_json")
        refresh_button.click(status, None, status_box, api_name="status")
        gr.api(status_json, api_name="status_json")
        # Not queued one after another: a Reindex pressed while one runs is told
        # so at once by the engine (and questions are answered meanwhile).
        # One progress bar, on the report (not one per output).
        reindex_button.click(
            reindex, None, [reindex_box, status_box, notes], api_name="reindex", concurrency_limit=None, show_progress_on=reindex_box
        ).then(
            generation, None, shown_generation, api_visibility="private", queue=False
        )
        page.load(on_load, None, [status_box, notes, question, asked_on_load, shown_generation], api_visibility="private").then(
            ask_again, [asked_on_load, k, notes], outputs, api_visibility="private"
        )
    return page


#: Gradio routes that take files: the page has no file input, so they are
#: refused outright (and ``max_file_size=0`` caps them should one slip by).
UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/process_recording")


@dataclass
class PageServer:
    """A running page server (what :func:`launch` returns)."""

    url: str
    host: str
    port: int
    page: gr.Blocks
    app: Any
    server: Any  # uvicorn.Server
    thread: threading.Thread | None = None

    def close(self) -> None:
        """Stop the server and Gradio's queue; returns when the port is free."""
        self.page._queue.close()
        for route in self.app.routes:  # Gradio's own app, mounted at "/": its heartbeats stop
            stop = getattr(getattr(route, "app", None), "stop_event", None)
            if stop is not None:
                stop.set()
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


def build_app(page: gr.Blocks, host: str, port: int, allowed_origins: Iterable[str] = ()) -> Any:
    """The ASGI app serving ``page`` on ``host``:``port``: Gradio's app
    mounted at ``/`` behind :class:`~dsqa.request_guard.RequestGuard`.

    On a loopback ``host`` only the Host names ``localhost``, ``127.0.0.1``
    and ``[::1]`` (with ``port``) are served; on any other host every Host is
    (whoever can reach the address can use the page). Cross-origin requests
    are refused unless their origin is in ``allowed_origins``; those get CORS
    headers (no credentials). Uploads are refused.
    """
    from fastapi import FastAPI
    from starlette.middleware.cors import CORSMiddleware

    origins = normalise_origins(allowed_origins)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # A parent app with its own CORSMiddleware turns Gradio's off (it echoes
    # any origin when the Host is not a localhost name).
    app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(
        RequestGuard,
        allowed_hosts=loopback_hosts(host, port) if is_loopback(host) else None,
        allowed_origins=origins,
        refused_paths=UPLOAD_PATHS,
    )  # added last, so it runs first
    return gr.mount_gradio_app(
        app,
        page,
        path="/",
        server_name=host,
        server_port=port,
        ssr_mode=False,
        theme=THEME,
        css=CSS,
        head=HEAD,
        js=ON_LOAD,
        footer_links=["api"],
        show_error=True,
        max_file_size=0,
    )


def launch(
    page: gr.Blocks,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    allowed_origins: Iterable[str] = (),
    block: bool = True,
) -> PageServer:
    """Serve ``page`` on ``host``:``port`` (0: a free port): system-font
    theme, no telemetry, no server-side rendering (it needs Node and the
    network), the checks of :func:`build_app`. With ``block`` it serves until
    interrupted; without, it serves from a thread and returns at once (call
    ``close()`` on the result). A port that is taken or out of range, or a bad
    origin, is a one-line ``DsqaError`` / ``ValueError``."""
    origins = normalise_origins(allowed_origins)
    return _run(page, _listen(host, port), host, origins, block=block)


def serve(engine: DSQA, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, allowed_origins: Iterable[str] = ()) -> None:
    """Build the page for ``engine`` and serve it until interrupted (what
    ``dsqa serve`` runs). The port is taken first, so a busy one fails before
    the model loads."""
    origins = normalise_origins(allowed_origins)
    sock = _listen(host, port)
    try:
        page = build_page(engine)
    except BaseException:
        sock.close()
        raise
    _run(page, sock, host, origins, block=True)


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``, or a one-line error."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be a whole number from 0 to 65535, not {port!r}")
    name = host.strip().strip("[]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise DsqaError(f"cannot listen on {host}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "; pick another with --port" if exc.errno == errno.EADDRINUSE else ""
        raise DsqaError(f"cannot listen on {host} port {port}: {exc.strerror or exc}{hint}") from None
    return sock


def _run(page: gr.Blocks, sock: socket.socket, host: str, origins: tuple[str, ...], *, block: bool) -> PageServer:
    import uvicorn

    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{'localhost' if shown in ('0.0.0.0', '[::]') else shown}:{port}/"
    if not is_loopback(host):
        log.warning(
            "listening on %s: anyone who can reach it can use the page, under any host name "
            "(the Host check guards loopback binds only)",
            host,
        )
    app = build_app(page, host, port, origins)
    # No WebSocket protocol: the page does not use one.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, ws="none"))
    running = PageServer(url=url, host=host, port=port, page=page, app=app, server=server)
    if block:
        print(f"dsqa: the page is at {url} (Ctrl-C to stop)", flush=True)
        try:
            server.run(sockets=[sock])
        finally:
            running.close()
            sock.close()
        return running
    running.thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dsqa-page", daemon=True)
    running.thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not running.thread.is_alive() or time.monotonic() > deadline:
            running.close()
            sock.close()
            raise DsqaError(f"the page's server on {host} port {port} did not start")
        time.sleep(0.01)
    return running
