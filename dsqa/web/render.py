"""The page's HTML, made from what the library returns: the answer box, the
passages (citation, relevance, actions, text, note section), the index panel
and a reindex's report. Note text is escaped, or rendered from Markdown with
raw HTML off and only safe links (:mod:`dsqa.web.passage_html`).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..engine import DSQA, IndexStatus
from ..errors import DsqaError
from ..results import NOT_COVERED_LABEL as NOT_COVERED
from ..results import WEAK, Answer, Passage
from ..results import WEAK_LABEL as WEAK_MATCH
from ..sources import formats
from .passage_html import (
    inline_markdown_html,
    markdown_html,
    merged_spans,
    relevance,
    shorten_heading,
)
from .sections import note_section


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
        body = f"<strong>{WEAK_MATCH}</strong>: {_esc(answer.gap) if answer.gap else 'the notes may not answer this.'}"
        if answer.text.strip():
            body += f'<div class="dsqa-answer-text">{_answer_text_html(answer.text.strip(), n)}</div>'
        if answer.passages:
            top = answer.passages[0]
            body += (
                f' <span class="dsqa-closest">The closest passage is <a class="dsqa-cite" href="#dsqa-p1">[1]</a> '
                f"{_esc(top.source)}:{top.start_line}-{top.end_line}"
                f"{' · ' + _esc(shorten_heading(top.heading)) if top.heading else ''}, below.</span>"
            )
        return f'<div class="dsqa-answer dsqa-weak">{body}{_scale_html(answer)}</div>'
    if not answer.found:
        body = f"<strong>{_esc(answer.gap or NOT_COVERED)}</strong>"
        if answer.passages:
            body += " The nearest passages are below."
        return f'<div class="dsqa-answer dsqa-not-found">{body}{_scale_html(answer)}</div>'
    if answer.text.strip():
        return f'<div class="dsqa-answer dsqa-found">{_answer_text_html(answer.text.strip(), n)}{_scale_html(answer)}</div>'
    return f'<div class="dsqa-answer dsqa-found">{n} passage{"s" if n != 1 else ""} from the notes answer this:{_scale_html(answer)}</div>'


def _scale_html(answer: Answer) -> str:
    """The one line that says what the confidence means and where the
    threshold is (``Answer.scale_line``)."""
    line = answer.scale_line()
    return f'<div class="dsqa-scale">{_esc(line)}</div>' if line else ""


def _context_html(engine: DSQA, p: Passage) -> str:
    try:
        section = note_section(engine, p.source, p.start_line, p.end_line, page=p.page)
    except (OSError, ValueError, DsqaError) as exc:
        return f'<p class="dsqa-context-missing">(note section unavailable: {_esc(str(exc))})</p>'
    outside = (line for n, line in enumerate(section.lines, section.first) if not p.start_line <= n <= p.end_line)
    if not any(line.strip() for line in outside):
        return ""  # the section is the passage: showing it again adds nothing
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
        render_passage(engine, n, p, relevance(p.score, top, answer.confidence, threshold, p.covers_topic))
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
