"""The web page: ask the notes in a browser (Gradio).

``build_page(engine)`` returns the ``gr.Blocks``; ``serve(engine)`` (what
``dsqa serve`` runs) and ``app.py`` launch it, mounted on an app whose
:class:`~dsqa.request_guard.RequestGuard` refuses foreign ``Host`` names on a
loopback bind, cross-origin requests from origins not listed, and uploads. The
page is a thin layer over the library's public API (:meth:`DSQA.ask`,
:meth:`DSQA.status`, :meth:`DSQA.reindex`, :meth:`DSQA.note_names`): every
check of user input happens in the engine, and the page only renders what it
returns.

Note text is shown escaped, or rendered from Markdown with raw HTML off and
only safe links (:mod:`dsqa.passage_html`); the only file it reads itself is
the note section around a passage (:func:`note_section`), and only for notes
that are in the index and resolve inside the corpus folder.

It works with no network: system fonts, no analytics, no server-side
rendering, localhost unless another host is asked for.

Its modules: :mod:`~dsqa.web.page` (the layout and which control runs
what), :mod:`~dsqa.web.handlers` (what each control and endpoint does),
:mod:`~dsqa.web.render` (the HTML), :mod:`~dsqa.web.sections` (reading a
note section), :mod:`~dsqa.web.assets` (theme, stylesheet, scripts) and
:mod:`~dsqa.web.server` (serving it).
"""

from __future__ import annotations

import os

from ..errors import DsqaError

# Before Gradio is imported: it reads these at import time.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

try:
    import gradio  # noqa: E402, F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise DsqaError("the web page needs Gradio: pip install 'dsqa[web]'") from exc

from .assets import CSS, HEAD, ON_LOAD, THEME  # noqa: E402
from .handlers import filters_label  # noqa: E402
from .page import EXAMPLES, build_page  # noqa: E402
from .render import (  # noqa: E402
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
from .sections import NoteSection, note_section  # noqa: E402
from .server import DEFAULT_HOST, DEFAULT_PORT, UPLOAD_PATHS, PageServer, build_app, launch, serve  # noqa: E402

__all__ = [
    "CSS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "EXAMPLES",
    "HEAD",
    "NOT_COVERED",
    "NoteSection",
    "ON_LOAD",
    "PageServer",
    "THEME",
    "UPLOAD_PATHS",
    "WEAK_MATCH",
    "build_app",
    "build_page",
    "describe_reindex",
    "error_html",
    "filters_label",
    "highlight_html",
    "launch",
    "note_links",
    "note_section",
    "render_answer",
    "render_passage",
    "render_passages",
    "render_status",
    "serve",
]
