"""The page itself: its layout (:func:`_layout`) and which handler each
control runs (:func:`_wire`); the handlers are in :mod:`dsqa.web.handlers`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from ..engine import DSQA
from .assets import REMEMBER_QUESTION
from .gradio_import import gr
from .handlers import PageHandlers, filters_label

#: Example questions, each with the note that answers it: the page shows those
#: whose note is in the engine's index, so another corpus gets none.
EXAMPLES: list[tuple[str, str]] = [
    ("how do overlay networks do service discovery", "notes/unlimitediw-dist-sys-notes.md"),
    ("what is the difference between a container and a virtual machine", "notes/unlimitediw-dist-sys-notes.md"),
    ("what is a Kubernetes pod", "notes/unlimitediw-dist-sys-notes.md"),
    ("how is data loaded into Redshift", "notes/unlimitediw-dist-sys-notes.md"),
    ("how does Kinesis split a stream into shards", "notes/anonymous-short-notes.md"),
]

#: The engine each page was built for (what :func:`engine_of` answers).
_ENGINES: weakref.WeakKeyDictionary[gr.Blocks, DSQA] = weakref.WeakKeyDictionary()


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
        from .. import get_engine

        engine = get_engine()
    handlers = PageHandlers(engine)
    notes_in_index = handlers.notes_in_index()
    examples = [q for q, note in EXAMPLES if note in notes_in_index]
    with gr.Blocks(title="dsqa — ask your notes", analytics_enabled=False) as page:
        parts = _layout(handlers, notes_in_index, examples)
        _wire(page, parts, handlers)
    _ENGINES[page] = engine
    return page


def engine_of(page: gr.Blocks) -> DSQA | None:
    """The engine ``page`` was built for by :func:`build_page`, if it was."""
    return _ENGINES.get(page)


@dataclass
class _Parts:
    """The page's components that events read or write."""

    question: gr.Textbox
    submit: gr.Button
    examples: list[tuple[gr.Button, str]]
    answer_box: gr.HTML
    filters: gr.Accordion
    k: gr.Slider
    notes: gr.Dropdown
    passages_box: gr.HTML
    status_box: gr.HTML
    reindex_button: gr.Button
    refresh_button: gr.Button
    reindex_box: gr.HTML
    shown_generation: gr.State
    asked_on_load: gr.State  # the question in the address (?q=)


def _layout(handlers: PageHandlers, notes_in_index: list[str], examples: list[str]) -> _Parts:
    """The components, inside the page's ``gr.Blocks``: the question, the
    answer, the filters and the passages on the left; the index panel on
    the right."""
    settings = handlers.engine.settings
    gr.Markdown(
        "# dsqa — ask your notes\nAsk a question; get the passages of your notes that answer it, "
        "each cited to its note, heading and lines. Press <kbd>/</kbd> to type a question.",
        elem_id="dsqa-intro",
    )
    shown_generation = gr.State("")
    asked_on_load = gr.State("")
    with gr.Row(equal_height=False, elem_id="dsqa-layout"):
        with gr.Column(scale=3, elem_id="dsqa-main"):
            with gr.Row(equal_height=True, elem_id="dsqa-ask-row"):
                question = gr.Textbox(
                    label="Question",
                    # The demo's notes get a demo question; one's own notes a plain prompt.
                    placeholder=f"e.g. {examples[0]}" if examples else "Ask a question about your notes",
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
            with gr.Accordion(filters_label(settings.k, None), open=False, elem_id="dsqa-filters") as filters:
                with gr.Row():
                    k = gr.Slider(
                        1, settings.max_k, value=settings.k, step=1, label="Passages to show (k)", elem_id="dsqa-k"
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
            status_box = gr.HTML(handlers.status(), label="status", show_label=False, elem_id="dsqa-status")
            with gr.Row():
                reindex_button = gr.Button("Reindex", size="sm", elem_id="dsqa-reindex")
                refresh_button = gr.Button("Refresh", size="sm", elem_id="dsqa-refresh")
            reindex_box = gr.HTML(label="reindex report", show_label=False, elem_id="dsqa-reindex-report")
    return _Parts(
        question, submit, example_buttons, answer_box, filters, k, notes, passages_box,
        status_box, reindex_button, refresh_button, reindex_box, shown_generation, asked_on_load,
    )


def _wire(page: gr.Blocks, parts: _Parts, handlers: PageHandlers) -> None:
    """Which handler each control runs, and the API endpoints."""
    p, h = parts, handlers
    inputs = [p.question, p.k, p.notes]
    outputs = [p.answer_box, p.passages_box]
    panel = [p.status_box, p.reindex_box, p.notes, p.shown_generation]

    def asked(event: Any) -> None:
        event.then(h.after_ask, p.shown_generation, panel, api_visibility="private", queue=False)

    asked(p.submit.click(h.ask, inputs, outputs, api_name="ask", js=REMEMBER_QUESTION,
                         api_description="Answer a question: (answer HTML, passages HTML)."))
    asked(p.question.submit(h.ask, inputs, outputs, api_visibility="private", js=REMEMBER_QUESTION))
    for button, text in p.examples:
        asked(
            button.click(lambda t=text: t, None, p.question, api_visibility="private", queue=False).then(
                h.ask, inputs, outputs, api_visibility="private", js=REMEMBER_QUESTION
            )
        )
    for control in (p.k, p.notes):
        asked(control.change(h.ask_again, inputs, outputs, api_visibility="private", trigger_mode="always_last"))
        control.change(
            lambda kv, nv: gr.update(label=filters_label(kv, nv)), [p.k, p.notes], p.filters, api_visibility="private", queue=False
        )
    gr.api(h.ask_json_endpoint(), api_name="ask_json")
    p.refresh_button.click(h.status, None, p.status_box, api_name="status")
    gr.api(h.status_json, api_name="status_json")
    # Not queued one after another: a Reindex pressed while one runs is told
    # so at once by the engine (and questions are answered meanwhile).
    # One progress bar, on the report (not one per output).
    p.reindex_button.click(
        h.reindex, None, [p.reindex_box, p.status_box, p.notes], api_name="reindex", concurrency_limit=None, show_progress_on=p.reindex_box
    ).then(
        h.generation, None, p.shown_generation, api_visibility="private", queue=False
    )
    page.load(h.on_load, None, [p.status_box, p.notes, p.question, p.asked_on_load, p.shown_generation], api_visibility="private").then(
        h.ask_again, [p.asked_on_load, p.k, p.notes], outputs, api_visibility="private"
    )
