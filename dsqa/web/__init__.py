"""The web page: ask the notes in a browser (Gradio).

``build_page(engine)`` returns the ``gr.Blocks``; ``serve(engine)`` (what
``dsqa serve`` runs) and ``app.py`` launch it, mounted on an app whose
:class:`~dsqa.web.request_guard.RequestGuard` refuses foreign ``Host`` names on a
loopback bind, cross-origin requests from origins not listed, and uploads. The
page is a thin layer over the library's public API (:meth:`DSQA.ask`,
:meth:`DSQA.status`, :meth:`DSQA.reindex`, :meth:`DSQA.note_names`): every
check of user input happens in the engine, and the page only renders what it
returns.

Note text is shown escaped, or rendered from Markdown with raw HTML off and
only safe links (:mod:`~dsqa.web.passage_html`); the only file it reads itself is
the note section around a passage (:func:`note_section`), and only for notes
that are in the index and resolve inside the corpus folder.

It works with no network: system fonts, no analytics, no server-side
rendering, localhost unless another host is asked for.

Its modules: :mod:`~dsqa.web.page` (the layout and which control runs
what), :mod:`~dsqa.web.handlers` (what each control and endpoint does),
:mod:`~dsqa.web.render` (the HTML), :mod:`~dsqa.web.sections` (reading a
note section), :mod:`~dsqa.web.assets` (theme, stylesheet, scripts),
:mod:`~dsqa.web.server` (serving it), :mod:`~dsqa.web.passage_html` (a
passage as safe HTML) and :mod:`~dsqa.web.request_guard` (which requests are
served at all).

Importing this package does not import Gradio: only the modules that build
and serve the page do (through :mod:`~dsqa.web.gradio_import`), so the pure
helpers exported here work without it. Build and serve the page with
:func:`dsqa.web.page.build_page` and :func:`dsqa.web.server.serve`.
"""

from __future__ import annotations

from .render import (
    NOT_COVERED,
    WEAK_MATCH,
    describe_reindex,
    error_html,
    highlight_html,
    note_links,
    render_answer,
    render_passage,
    render_passages,
    render_status,
)
from .sections import NoteSection, note_section

__all__ = [
    "NOT_COVERED",
    "NoteSection",
    "WEAK_MATCH",
    "describe_reindex",
    "error_html",
    "highlight_html",
    "note_links",
    "note_section",
    "render_answer",
    "render_passage",
    "render_passages",
    "render_status",
]
