"""What the page does when it is used: each handler calls one method of the
engine and renders what it returns. A user's mistake (a :class:`DsqaError`)
is shown as its one-line message; anything else, a bare ``ValueError``
included, is a bug: logged with its traceback and shown as "something went
wrong".
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

from ..build.progress import Step
from ..engine import DSQA, clean_question
from ..errors import DsqaError
from .gradio_import import gr
from .render import (
    describe_reindex,
    error_html,
    render_answer,
    render_passages,
    render_status,
)

log = logging.getLogger("dsqa")


def _message(exc: BaseException) -> str:
    if isinstance(exc, DsqaError):
        return str(exc)
    log.exception("web page: unexpected error")
    return f"something went wrong ({type(exc).__name__}: {exc}); the server log has the details"


def _api_error(exc: BaseException) -> gr.Error:
    """``exc`` as the error an API caller gets: its message, no traceback."""
    return gr.Error(html.escape(_message(exc), quote=False), print_exception=False)


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


class PageHandlers:
    """The page's event handlers and API endpoints, over one engine."""

    def __init__(self, engine: DSQA) -> None:
        self.engine = engine

    def notes_in_index(self) -> list[str]:
        """The indexed notes' names; none when there is no index yet (the
        status panel says so, and Reindex builds it)."""
        try:
            return self.engine.note_names()
        except DsqaError as exc:
            log.warning("web page: %s", exc)
            return []

    def _answer(self, question: Any, k: Any, notes: Any) -> Any:
        """The engine's answer, after it has looked at the notes: a note
        saved a moment ago is in it (the engine alone looks at most every
        ``STALE_CHECK_SECONDS``). A bad question is refused before that."""
        clean_question(question, self.engine.settings.max_question_chars)
        self.engine.refresh()
        return self.engine.ask(question, k=_as_k(k), notes=_as_notes(notes))

    def ask(self, question: str, k: float, notes: list[str] | None) -> tuple[str, str]:
        try:
            answer = self._answer(question, k, notes)
        except Exception as exc:  # shown once, in the answer box; never as a traceback
            return error_html(_message(exc)), ""
        return render_answer(answer), render_passages(self.engine, answer)

    def ask_again(self, question: str, k: float, notes: list[str] | None) -> tuple[Any, Any]:
        """A filter changed: the question asked again, if there is one."""
        if not isinstance(question, str) or not question.strip():
            return gr.skip(), gr.skip()
        return self.ask(question, k, notes)

    def ask_json_endpoint(self) -> Callable[..., dict]:
        """The ``/ask_json`` endpoint: a function whose signature (k defaults
        to the engine's) and docstring are what Gradio's API page shows."""
        engine = self.engine

        def ask_json(question: str, k: int = engine.settings.k, notes: list[str] | None = None) -> dict:
            """The answer as JSON: {question, found, coverage, confidence, text,
            passages: [{text, source, heading, start_line, end_line, score,
            highlights, citation}]}."""
            try:
                return dict(self._answer(question, k, notes).to_dict())
            except Exception as exc:
                raise _api_error(exc) from None

        return ask_json

    def status(self) -> str:
        try:
            return render_status(self.engine.status())
        except Exception as exc:
            return error_html(_message(exc))

    def status_json(self) -> dict:
        """The index status: notes, chunks, model, up_to_date, problems, …"""
        try:
            return self.engine.status().to_dict()
        except Exception as exc:
            raise _api_error(exc) from None

    def generation(self) -> str:
        try:
            return self.engine.status().generation
        except Exception:
            return ""

    def reindex(self, progress: gr.Progress = gr.Progress()) -> tuple[str, str, Any]:  # noqa: B008 (Gradio finds the bar by this default)
        def show(step: Step) -> None:
            """One bar, counted in passages while they are embedded; the
            other stages are a line of text ("reading 5 notes…")."""
            if step.stage == "embed" and step.total:
                progress((step.done, step.total), desc="Indexing passages", unit="passages")
            elif step.stage != "done":
                progress(None, desc=step.message)

        try:
            report = self.engine.reindex(progress=show)
        except Exception as exc:
            return error_html(_message(exc)), self.status(), gr.update()
        summary = f'<div class="dsqa-report">Reindexed: {describe_reindex(report)}</div>'
        try:
            choices = self.engine.note_names()
        except Exception:  # the status panel says what is wrong
            return summary, self.status(), gr.update()
        return summary, self.status(), gr.update(choices=choices)

    def after_ask(self, shown: str) -> tuple[Any, Any, Any, str]:
        """The index panel brought up to date when the index changed since
        the page last showed it (a question found the notes changed and the
        index was updated first, or another process reindexed)."""
        try:
            current = self.engine.status()
        except Exception:
            return gr.skip(), gr.skip(), gr.skip(), shown
        if not shown or current.generation == shown:
            return gr.skip(), gr.skip(), gr.skip(), current.generation
        # What changed between the index the page showed and this one,
        # whoever rebuilt it (a question, `dsqa watch`, another process).
        try:
            changes: Any = self.engine.changes_since(shown)
        except Exception:
            changes = None
        what = describe_reindex(changes) if changes is not None else "it was rebuilt by another dsqa process."
        summary = f'<div class="dsqa-report">The notes changed, so the index was updated: {what}</div>'
        try:
            choices: Any = gr.update(choices=self.engine.note_names())
        except Exception:
            choices = gr.skip()
        return render_status(current), summary, choices, current.generation

    def on_load(self, request: gr.Request) -> tuple[str, Any, Any, str, str]:
        """The index panel and notes; the question from ``?q=``, if any (the
        box is left alone otherwise: the user may be typing already)."""
        question = ""
        if request is not None:
            question = str(request.query_params.get("q", "")).strip()[: self.engine.settings.max_question_chars]
        try:
            choices: Any = gr.update(choices=self.engine.note_names())
        except Exception:
            choices = gr.update()
        return self.status(), choices, question if question else gr.skip(), question, self.generation()
