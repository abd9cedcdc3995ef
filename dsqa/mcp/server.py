"""The MCP server: four tools over one engine, each a call of the library's
public API and its JSON view (``Answer.to_dict()`` and the like, the same
JSON that ``dsqa ask --json`` prints and the page's ``/api`` returns).

The tools run in the SDK's worker threads (they are plain functions); the
engine is safe to share between them, as the page shares it between
requests. Whatever a tool needs beyond calling the engine belongs in the
library, not here.
"""

# No ``from __future__ import annotations``: the SDK reads the tools'
# annotations (their parameter descriptions) at run time.

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from .._version import __version__
from ..engine import DSQA
from ..errors import DsqaError
from ..results import AnswerJSON, NoteTextJSON, SearchJSON, search_json

log = logging.getLogger("dsqa")

INSTRUCTIONS = """\
dsqa searches the user's own notes: one folder of Markdown, text, PDF, saved web pages and \
notebooks ({corpus}), indexed on this machine. Call `ask` for any question about what the notes \
say, and cite its passages (note, heading, lines) when you use them; `search` for passages only; \
`read_note` for more lines around a citation; `status` for what is indexed. A verdict of \
"not covered" means the notes do not seem to say: do not present other knowledge as theirs. \
The tools read only the notes in this folder's index."""

ASK = """\
Answer a question from the user's notes, with the passages it comes from.

Returns JSON with:
- `text`: a short answer quoted from the notes, with [n] markers; [n] is `passages[n-1]`. Empty \
when the notes do not cover the question.
- `verdict`: "answered"; "low confidence" (`text` is only the closest match: check it against \
its passage before relying on it); or "not covered" (the notes do not seem to say: tell the user \
so rather than answering from them). `reason` says why, in one sentence.
- `confidence`: the score the verdict was decided on, on this folder's calibrated scale (not a \
probability; `reason` gives the threshold).
- `passages`: the best matching passages, best first, each with `citation` (note path, lines, \
heading path; a PDF's page, a notebook's cells), `source`, `heading`, `start_line`, `end_line`, \
`page`, `cell`, `score`, `text`, and `highlights` (character spans of the quoted sentences).

Call it first for any question about the user's own notes, courses, projects or documents. \
Quote and cite the passages; call `read_note` for more context around one."""

SEARCH = """\
Find the passages of the user's notes that best match a query, best first, without composing an \
answer or judging whether the notes cover it.

Returns JSON `{"query", "passages": [...]}`; each passage has `citation`, `source`, `heading`, \
`start_line`, `end_line`, `page`, `cell`, `score` and `text`, as in `ask`.

Use it to gather material on a topic, to find where a term or command is mentioned (exact words \
match well), or to look within some notes (`notes`). For a question, prefer `ask`."""

READ_NOTE = """\
Read lines of one note of the user's notes, for more context around a passage that `ask` or \
`search` cited.

`note` is the note's path as citations give it (e.g. `notes/docker.md`; a file name or stem \
works too). Lines are numbered from 1, as in citations; without `start_line`/`end_line` the note \
is read from its start. At most 400 lines come back at a time: `total_lines` says how long the \
note is, so read on from `end_line + 1`. For a PDF give `page` (citations say "p. 12"): its lines \
are that page's. Notebooks and web pages are read as dsqa extracted them (their citations' lines).

Returns JSON `{source, kind, start_line, end_line, lines, total_lines, page, pages, cell, \
end_cell, citation}`. Only notes in the index can be read: no other file, no path outside the \
notes folder (absolute paths and `..` are refused)."""

STATUS = """\
What the notes index holds and whether it is up to date.

Returns JSON with the notes folder (`corpus_dir`), the number of `notes` and passages (`chunks`), \
the embedding `model`, when it was built (`created`), `up_to_date`, and when it is not, the \
`problems` and the notes `added`, `changed` and `removed` since. Stale indexes are updated \
automatically before `ask`, `search` and `read_note` answer, so this is for telling the user \
which folder is searched, or why a recently saved note is or is not found."""

Question = Annotated[str, Field(description="The question, in the user's words or yours (at most 2,000 characters).")]
Query = Annotated[str, Field(description="Words to look for: a question, a phrase, a term or a command.")]
K = Annotated[int | None, Field(description="How many passages to return, 1 to 100 (default 5).")]
Notes = Annotated[
    list[str] | None,
    Field(description="Only these notes: paths as citations give them (e.g. notes/docker.md), file names or stems. Default: all."),
]
Note = Annotated[str, Field(description="The note's path relative to the notes folder, as citations give it (e.g. notes/docker.md).")]
Line = Annotated[int | None, Field(description="A line number, from 1, as citations count lines.")]
Page = Annotated[int | None, Field(description="PDFs only: the page to read (citations say p. N). Default: the first page.")]

#: The tools' names, in the order ``tools/list`` gives them.
TOOLS = ("ask", "search", "read_note", "status")


def _run(call: Callable[[], Any]) -> Any:
    """``call()``; a :class:`DsqaError` becomes a tool error carrying its
    one-line message, anything else (a bug) is logged with its traceback on
    stderr and reported in one line, never as a traceback."""
    try:
        return call()
    except DsqaError as exc:
        raise ToolError(" ".join(str(exc).split())) from None
    except Exception as exc:
        log.exception("mcp: unexpected error")
        raise ToolError(f"something went wrong ({type(exc).__name__}); the server's log has the details") from None


def _fresh(engine: DSQA) -> DSQA:
    """``engine``, its index compared with the notes just now and brought
    up to date if they changed (as before any question)."""
    engine.refresh()
    return engine


def build_server(engine: DSQA) -> MCPServer:
    """The MCP server whose tools answer from ``engine``."""
    server: MCPServer = MCPServer(
        "dsqa",
        title="dsqa: the user's notes",
        version=__version__,
        instructions=INSTRUCTIONS.format(corpus=Path(engine.settings.corpus_dir).absolute()),
        log_level="WARNING",
    )
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    # Each call looks at the notes first (DSQA.refresh), not at most every
    # few seconds as a library engine does: an assistant is often asked
    # about a note the user saved a moment ago.
    def ask(question: Question, k: K = None, notes: Notes = None) -> AnswerJSON:
        return _run(lambda: _fresh(engine).ask(question, k=k, notes=notes).to_dict())

    def search(query: Query, k: K = None, notes: Notes = None) -> SearchJSON:
        return _run(lambda: search_json(query, _fresh(engine).search(query, k=k, notes=notes)))

    def read_note(note: Note, start_line: Line = None, end_line: Line = None, page: Page = None) -> NoteTextJSON:
        return _run(lambda: _fresh(engine).read_note(note, start_line, end_line, page).to_dict())

    def status() -> dict[str, Any]:
        return _run(lambda: engine.status().to_dict())

    titles = {"ask": "Ask the notes", "search": "Search the notes", "read_note": "Read a note", "status": "Index status"}
    for fn, description in ((ask, ASK), (search, SEARCH), (read_note, READ_NOTE), (status, STATUS)):
        server.add_tool(fn, name=fn.__name__, title=titles[fn.__name__], description=description, annotations=reads)
    return server


def warm_up(engine: DSQA) -> threading.Thread:
    """Load the index and the model in the background, so that the first
    question does not wait for them (an index that is stale or missing is
    brought up to date here, as the first question would). A failure is
    left for that question to report."""

    def run() -> None:
        try:
            engine.search("warm up", k=1)
        except Exception as exc:  # the first tool call says it, as a tool error
            log.debug("mcp: warm-up: %s", exc)

    thread = threading.Thread(target=run, name="dsqa-mcp-warm-up")
    thread.start()
    return thread


def serve(engine: DSQA) -> None:
    """Serve ``engine``'s notes over stdio until the client closes it (what
    ``dsqa mcp`` runs)."""
    server = build_server(engine)
    loading = warm_up(engine)
    try:
        server.run("stdio")
    finally:
        # Not left to die with the interpreter: a model still loading in a
        # daemon thread at exit aborts the process.
        loading.join()
