"""The web page: ask the notes in a browser (Gradio).

``build_page(engine)`` returns the ``gr.Blocks``; ``serve(engine)`` (what
``dsqa serve`` runs) and ``app.py`` launch it, mounted on an app whose
:class:`~dsqa.request_guard.RequestGuard` refuses foreign ``Host`` names on a
loopback bind, cross-origin requests from origins not listed, and uploads. The page is a thin layer over
the library's public API (:meth:`DSQA.ask`, :meth:`DSQA.status`,
:meth:`DSQA.reindex`, :meth:`DSQA.note_names`): every check of user input
happens in the engine, and the page only renders what it returns.

Everything the page shows is HTML-escaped note text; the only file it reads
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

# Before Gradio is imported: it reads these at import time.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from . import formats  # noqa: E402
from .engine import DSQA, IndexStatus  # noqa: E402
from .errors import DsqaError  # noqa: E402
from .notes import read_corpus_file  # noqa: E402
from .request_guard import RequestGuard, is_loopback, loopback_hosts, normalise_origins  # noqa: E402
from .results import Answer, Passage  # noqa: E402

try:
    import gradio as gr  # noqa: E402
except ImportError as exc:  # pragma: no cover - depends on the install
    raise DsqaError("the web page needs Gradio: pip install 'dsqa[web]'") from exc

log = logging.getLogger("dsqa")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_K = 20
NOT_COVERED = "The notes don't cover this."

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
.dsqa-answer.dsqa-found { border-left: 4px solid #2563eb; }
.dsqa-answer .dsqa-cite { font-weight: 600; text-decoration: none; }
.dsqa-error { padding: 0.75rem 1rem; border-radius: 8px; border: 1px solid #dc2626;
  border-left: 4px solid #dc2626; background: rgba(220, 38, 38, 0.08); }
.dsqa-passage { margin: 0.75rem 0; padding: 0.75rem 1rem; border-radius: 8px;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary); }
.dsqa-passage-head { display: flex; gap: 0.75rem; align-items: baseline; justify-content: space-between; }
.dsqa-citation { font-weight: 600; margin: 0; font-size: 0.95rem; word-break: break-word; }
.dsqa-n { color: var(--body-text-color-subdued); margin-right: 0.35rem; }
.dsqa-score { white-space: nowrap; font-size: 0.85rem; color: var(--body-text-color-subdued); }
.dsqa-text { white-space: pre-wrap; font-family: var(--font-mono); font-size: 0.85rem; margin: 0.5rem 0; }
.dsqa-text mark, .dsqa-line.dsqa-here mark { background: #fde047; color: #111; padding: 0 1px; border-radius: 2px; }
.dsqa-context summary { cursor: pointer; font-size: 0.85rem; color: var(--link-text-color); }
.dsqa-context-body { max-height: 28rem; overflow: auto; font-family: var(--font-mono); font-size: 0.8rem;
  border-top: 1px solid var(--border-color-primary); margin-top: 0.4rem; padding-top: 0.4rem; }
.dsqa-line { white-space: pre-wrap; }
.dsqa-line.dsqa-here { background: rgba(37, 99, 235, 0.10); }
.dsqa-ln { display: inline-block; min-width: 3.5em; color: var(--body-text-color-subdued); user-select: none; }
.dsqa-status { font-size: 0.9rem; }
.dsqa-status .dsqa-ok { color: #15803d; font-weight: 600; }
.dsqa-status .dsqa-stale { color: #b45309; font-weight: 600; }
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


def _merged_spans(spans: Any, length: int) -> list[tuple[int, int]]:
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


def highlight_html(text: str, spans: Any) -> str:
    """``text`` HTML-escaped, with the character ``spans`` wrapped in ``<mark>``."""
    out, pos = [], 0
    for a, b in _merged_spans(spans, len(text)):
        out += [_esc(text[pos:a]), "<mark>", _esc(text[a:b]), "</mark>"]
        pos = b
    out.append(_esc(text[pos:]))
    return "".join(out)


def _answer_text_html(text: str, n_passages: int) -> str:
    """The short answer, escaped, with its ``[n]`` markers linked to the passages."""

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if 1 <= n <= n_passages:
            return f'<a class="dsqa-cite" href="#dsqa-p{n}">[{n}]</a>'
        return m.group(0)

    return re.sub(r"\[(\d{1,3})\]", link, _esc(text))


def render_answer(answer: Answer) -> str:
    """The answer box: the short answer, or a plain statement that the notes
    don't cover the question."""
    if not answer.found:
        body = f"<strong>{NOT_COVERED}</strong>"
        if answer.passages:
            body += " The nearest passages are below."
        return f'<div class="dsqa-answer dsqa-not-found">{body}</div>'
    if answer.text.strip():
        return f'<div class="dsqa-answer dsqa-found">{_answer_text_html(answer.text.strip(), len(answer.passages))}</div>'
    n = len(answer.passages)
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
        f'<div class="dsqa-context-body">{"".join(rows)}</div>{_file_link(engine, p)}</details>'
    )


def _file_link(engine: DSQA, p: Passage) -> str:
    """A ``file://`` link to the note itself (at its page for a PDF), for a
    browser or viewer on the machine that holds the notes. Nothing is served:
    a saved page opened from this page's origin could run its scripts here."""
    try:
        _check_indexed(engine, p.source)
    except ValueError:
        return ""
    uri = (Path(engine.settings.corpus_dir).resolve() / p.source).as_uri()
    if p.page is not None:
        uri += f"#page={int(p.page)}"
    return (
        f'<p class="dsqa-file"><a href="{_esc(uri)}" target="_blank" rel="noopener noreferrer" '
        'title="If your browser blocks links to local files, copy this link into its address bar">'
        f"Open the file{_esc(f' at page {p.page}') if p.page is not None else ''}</a></p>"
    )


def render_passage(engine: DSQA, n: int, p: Passage) -> str:
    return (
        f'<section class="dsqa-passage" id="dsqa-p{n}">'
        '<div class="dsqa-passage-head">'
        f'<h4 class="dsqa-citation"><span class="dsqa-n">[{n}]</span>{_esc(p.citation)}</h4>'
        f'<span class="dsqa-score">score {p.score:.3f}</span></div>'
        f'<div class="dsqa-text">{highlight_html(p.text, p.highlights)}</div>'
        f"{_context_html(engine, p)}</section>"
    )


def render_passages(engine: DSQA, answer: Answer) -> str:
    if not answer.passages:
        return '<p class="dsqa-empty">No passages.</p>'
    return "".join(render_passage(engine, n, p) for n, p in enumerate(answer.passages, 1))


def render_status(status: IndexStatus) -> str:
    s = status.to_dict()
    model = s.get("model") or {}
    if s.get("up_to_date"):
        state = '<span class="dsqa-ok">up to date</span>'
    else:
        problems = "; ".join(s.get("problems") or []) or "the corpus changed"
        state = f'<span class="dsqa-stale">out of date</span>: {_esc(problems)}. Press Reindex.'
    return (
        '<div class="dsqa-status">'
        f"<b>{int(s.get('notes', 0))}</b> notes · <b>{int(s.get('chunks', 0))}</b> chunks · "
        f"model <code>{_esc(str(model.get('name', '?')))}</code><br>"
        f"index {state}<br>"
        f"<small>built {_esc(str(s.get('created', '?')))} · corpus <code>{_esc(str(s.get('corpus_dir', '')))}</code></small>"
        "</div>"
    )


def _report_details(report: Any) -> str:
    """Which notes a reindex added, changed, removed or skipped."""
    rows = []
    if not getattr(report, "full", False):
        for kind in ("added", "changed", "removed"):
            names = list(getattr(report, kind, None) or [])
            if names:
                rows.append(f"<li>{kind}: {_esc(', '.join(names))}</li>")
    for name, why in getattr(report, "skipped", None) or []:
        rows.append(f"<li>skipped {_esc(str(name))}: {_esc(str(why))}</li>")
    return f"<ul>{''.join(rows)}</ul>" if rows else ""


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
def build_page(engine: DSQA | None = None) -> gr.Blocks:
    """The page for ``engine`` (the shared default engine when ``None``).

    Endpoints (for ``gradio_client``): ``/ask`` (question, k, notes) -> (answer
    HTML, passages HTML), as the page shows them; ``/ask_json`` (question, k,
    notes) -> ``Answer.to_dict()``, errors raised as the library's message;
    ``/status`` -> status HTML; ``/status_json`` -> ``IndexStatus.to_dict()``;
    ``/reindex`` -> (summary, status HTML, notes choices).
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
        except Exception as exc:  # shown in the page, never as a traceback
            message = _message(exc)
            gr.Warning(html.escape(message, quote=False))
            return error_html(message), ""
        return render_answer(answer), render_passages(engine, answer)

    def ask_json(question: str, k: int = engine.settings.k, notes: list[str] | None = None) -> dict:
        """The answer as JSON: {question, found, text, passages: [{text, source,
        heading, start_line, end_line, score, highlights, citation}]}."""
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

    def reindex(progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[str, str, Any]:
        progress(0, desc="Reading the notes…")
        try:
            report = engine.reindex(progress=True)
        except Exception as exc:
            message = _message(exc)
            gr.Warning(html.escape(message, quote=False))
            return error_html(message), status(), gr.update()
        progress(1, desc="Done")
        summary = f'<div class="dsqa-answer dsqa-found">Reindexed: {_esc(str(report))}{_report_details(report)}</div>'
        try:
            choices = engine.note_names()
        except Exception:  # the status panel says what is wrong
            return summary, status(), gr.update()
        return summary, status(), gr.update(choices=choices)

    def on_load() -> tuple[str, Any]:
        try:
            return status(), gr.update(choices=engine.note_names())
        except Exception:
            return status(), gr.update()

    with gr.Blocks(title="dsqa — ask your notes", analytics_enabled=False) as page:
        gr.Markdown("# dsqa — ask your notes\nAsk a question; get the passages of your notes that answer it, each cited to its note, heading and lines.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        label="Question",
                        placeholder="e.g. how do overlay networks do service discovery",
                        lines=1,
                        max_lines=3,
                        scale=5,
                        autofocus=True,
                        elem_id="dsqa-question",
                    )
                    submit = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="dsqa-ask")
                example_buttons = []
                if examples:
                    gr.Markdown("Try one of these:", elem_id="dsqa-examples-label")
                    with gr.Row(elem_id="dsqa-examples"):
                        for text in examples:
                            example_buttons.append((gr.Button(text, size="sm", variant="secondary"), text))
                answer_box = gr.HTML(label="answer", show_label=False, elem_id="dsqa-answer")
                passages_box = gr.HTML(label="passages", show_label=False, elem_id="dsqa-passages")
            with gr.Column(scale=1, min_width=260):
                k = gr.Slider(1, MAX_K, value=min(engine.settings.k, MAX_K), step=1, label="Passages to show (k)", elem_id="dsqa-k")
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
                gr.Markdown("### Index")
                status_box = gr.HTML(status(), label="status", show_label=False, elem_id="dsqa-status")
                with gr.Row():
                    reindex_button = gr.Button("Reindex", elem_id="dsqa-reindex")
                    refresh_button = gr.Button("Refresh status", size="sm")
                reindex_box = gr.HTML(label="reindex report", show_label=False, elem_id="dsqa-reindex-report")

        inputs = [question, k, notes]
        outputs = [answer_box, passages_box]
        submit.click(ask, inputs, outputs, api_name="ask", api_description="Answer a question: (answer HTML, passages HTML).")
        question.submit(ask, inputs, outputs, api_visibility="private")
        for button, text in example_buttons:
            button.click(lambda t=text: t, None, question, api_visibility="private", queue=False).then(
                ask, inputs, outputs, api_visibility="private"
            )
        gr.api(ask_json, api_name="ask_json")
        refresh_button.click(status, None, status_box, api_name="status")
        gr.api(status_json, api_name="status_json")
        # Not queued one after another: a Reindex pressed while one runs is told
        # so at once by the engine (and questions are answered meanwhile).
        reindex_button.click(reindex, None, [reindex_box, status_box, notes], api_name="reindex", concurrency_limit=None)
        page.load(on_load, None, [status_box, notes], api_visibility="private")
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
