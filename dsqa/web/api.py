"""The page server's JSON API, for scripts and other programs: ``POST
/api/ask``, ``POST /api/search`` and ``GET /api/status``, with the same
fields as the MCP tools and the same JSON as ``dsqa ask --json``
(:mod:`dsqa.results`' views). FastAPI documents it: ``/openapi.json``, and
the ``/api/docs`` page.

It sits behind the page's :class:`~dsqa.web.request_guard.RequestGuard` (the
loopback Host check, the Origin check and the request body limit), and each
endpoint is one call of the engine. A user's mistake is a 400 whose
``detail`` is dsqa's one-line message; an index or notes folder that cannot
answer (none yet, another folder's, locked) is a 409 with its message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from ..engine import DSQA
from ..errors import DsqaError, InvalidInputError
from ..results import AnswerJSON, SearchJSON, search_json

log = logging.getLogger("dsqa")

T = TypeVar("T")

#: The API's paths (the tests and the README list them).
PATHS = ("/api/ask", "/api/search", "/api/status")


class AskRequest(BaseModel):
    """A question about the notes."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="The question (at most 2,000 characters).")
    k: int | None = Field(None, description="How many passages, 1 to 100 (default 5).")
    notes: list[str] | None = Field(
        None, description="Only these notes: paths as citations give them (e.g. notes/docker.md), file names or stems."
    )


class SearchRequest(BaseModel):
    """Words to find in the notes."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(description="A question, a phrase, a term or a command.")
    k: int | None = Field(None, description="How many passages, 1 to 100 (default 5).")
    notes: list[str] | None = Field(None, description="Only these notes (as for ask).")


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The request is not one dsqa takes (an empty or overlong question, k out of range, an unknown note); `detail` says why in one line."},
    409: {"description": "The notes cannot be searched now (no notes in the folder, another folder's index, a reindex holding the lock); `detail` says why and how to fix it."},
    413: {"description": "The request body is over the server's limit."},
}


def _call(call: Callable[[], T]) -> T:
    """``call()``, with dsqa's errors as HTTP errors carrying their message
    and anything else (a bug) logged with its traceback and reported in one
    line."""
    try:
        return call()
    except InvalidInputError as exc:
        raise HTTPException(400, str(exc)) from None
    except DsqaError as exc:
        raise HTTPException(409, str(exc)) from None
    except Exception as exc:
        log.exception("api: unexpected error")
        raise HTTPException(500, f"something went wrong ({type(exc).__name__}); the server log has the details") from None


def _fresh(engine: DSQA) -> DSQA:
    """``engine``, its index compared with the notes just now (as the page
    does before a question): a note saved a moment ago is in the answer."""
    engine.refresh()
    return engine


def api_router(engine: DSQA) -> APIRouter:
    """The ``/api`` routes over ``engine``."""
    router = APIRouter(prefix="/api", tags=["notes"], responses=ERRORS)

    @router.post("/ask", summary="Answer a question from the notes")
    def ask(request: AskRequest) -> AnswerJSON:
        """The short answer quoted from the notes with `[n]` markers (`[n]` is
        `passages[n-1]`; empty when the notes do not cover the question), its
        `verdict` (answered, low confidence, not covered) and `reason`, the
        `confidence`, and the passages with their citations. The same JSON as
        `dsqa ask --json` and the MCP tool `ask`. A stale index is updated
        first."""
        return _call(lambda: _fresh(engine).ask(request.question, k=request.k, notes=request.notes).to_dict())

    @router.post("/search", summary="Find the passages that match a query")
    def search(request: SearchRequest) -> SearchJSON:
        """The passages that best match `query`, best first, without an answer
        or a verdict (as `dsqa search --json` and the MCP tool `search`)."""
        return _call(lambda: search_json(request.query, _fresh(engine).search(request.query, k=request.k, notes=request.notes)))

    @router.get("/status", summary="What the index holds and whether it is up to date")
    def status() -> dict[str, Any]:
        """The index's folder, notes, chunks, model, settings, when it was
        built, `up_to_date`, and when it is not, the `problems` and the notes
        `added`, `changed` and `removed` (as `dsqa status --json`)."""
        return _call(lambda: engine.status().to_dict())

    return router
