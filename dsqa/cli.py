"""The ``dsqa`` command: a thin layer over :class:`dsqa.DSQA`.

Each command opens the engine with the settings its flags give and calls one
method. Errors the user can fix (``DsqaError``, ``InvalidInputError`` among
them) become one line on stderr and exit code 1; anything else, a bare
``ValueError`` included, is a bug and shows its traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from ._version import __version__
from .errors import DsqaError

if TYPE_CHECKING:
    from .build.report import ReindexReport


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("dsqa: %(levelname)s: %(message)s"))
    log = logging.getLogger("dsqa")
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _log_reindex(report: ReindexReport) -> None:
    """What ``serve --watch`` logs after each reindex that wrote."""
    if report.wrote:
        logging.getLogger("dsqa").info("reindexed: %s", report)


def _console_progress():
    """A console bar when stderr is a terminal, else ``None``: a reindex then
    says only its one summary line."""
    if not sys.stderr.isatty():
        return None
    from .build.progress import ConsoleProgress

    return ConsoleProgress()


def _index_without_corpus(corpus: Path | None, index: Path | None) -> None:
    """Refuse an index folder that holds no index, given (``--index`` or
    ``$DSQA_INDEX``) without a notes folder: dsqa would build the demo notes
    into it, which is almost never what was meant."""

    from . import environment, paths, storage
    from .errors import IndexMissingError

    if corpus is not None or environment.CORPUS.get():
        return
    given = index if index is not None else environment.INDEX.get()
    if not given:
        return
    folder = Path(given).expanduser()
    try:
        storage.current_generation(folder)
        return
    except IndexMissingError:
        pass
    demo = paths.bundled_corpus()
    raise DsqaError(
        f"no index in {folder}, and no notes folder given: dsqa would index the demo notes ({demo}) into it; "
        f"name your notes with --corpus DIR (or $DSQA_CORPUS), or pass --corpus {demo} if the demo is what you want"
    )


def _engine(opts: dict[str, Any]):
    from . import get_engine

    _index_without_corpus(opts.get("corpus"), opts.get("index"))
    eng = get_engine(
        corpus_dir=opts.pop("corpus", None),
        index_dir=opts.pop("index", None),
        model=opts.pop("model", None),
        auto_reindex=False if opts.pop("no_auto_reindex", False) else None,
        cross_mounts=True if opts.pop("cross_mounts", False) else None,
        allow_large_corpus=True if opts.pop("yes", False) else None,
        refusal_threshold=_threshold(opts.pop("refusal_threshold", None)),
        ray_address=opts.pop("ray_address", None),
        allow_origins=tuple(opts.pop("allow_origins", ())) or None,
    )
    eng.progress = _console_progress()
    return eng


def _threshold(value: str | None) -> float | None:
    from .settings import parse_threshold

    return None if value is None else parse_threshold(value, "--refusal-threshold")


#: For the commands that answer. Taken as text and checked by
#: ``parse_threshold`` inside the command, so a bad value is one line on
#: stderr, as from ``$DSQA_REFUSAL_THRESHOLD``.
threshold_option = click.option(
    "--refusal-threshold",
    metavar="NUMBER",
    help="Answers with a lower confidence are refused, or shown as a weak closest match "
    "[$DSQA_REFUSAL_THRESHOLD; default: calibrated with `dsqa eval`].",
)


def common_options(func: Callable) -> Callable:
    """Flags every command shares; they override ``Settings`` defaults and
    the ``DSQA_CORPUS`` / ``DSQA_INDEX`` environment variables."""

    @click.option("--corpus", type=click.Path(path_type=Path, file_okay=False), help="Notes folder [$DSQA_CORPUS].")
    @click.option("--index", type=click.Path(path_type=Path, file_okay=False), help="Index folder [$DSQA_INDEX].")
    @click.option("--model", help="Embedding model name.")
    @click.option("--cross-mounts", is_flag=True, help="Also walk folders of the corpus on other filesystems.")
    @click.option("-v", "--verbose", is_flag=True, help="Log more.")
    @functools.wraps(func)
    def wrapper(**opts: Any) -> None:
        _setup_logging(opts.pop("verbose"))
        try:
            func(**opts)
        except DsqaError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.Abort() from None

    return wrapper


def _echo(text: str = "") -> None:
    """Print ``text`` on stdout. A stdout that cannot be written (a full
    disk, ``> /dev/full``, a closed pipe) is a one-line ``DsqaError``, not a
    traceback; stdout is then pointed at the null device, so the text still
    buffered does not fail a second time when Python exits."""
    try:
        click.echo(text)
    except OSError as exc:
        import os

        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
        except (OSError, ValueError):  # no file descriptor (a test's captured stdout)
            pass
        raise DsqaError(f"cannot write the output to stdout: {exc.strerror or exc}") from None


def _emit(obj: Any, as_json: bool) -> None:
    if as_json:
        data = obj.to_dict() if hasattr(obj, "to_dict") else obj
        _echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _echo(str(obj).rstrip("\n"))


@click.group()
@click.version_option(__version__, prog_name="dsqa")
def cli() -> None:
    """Semantic search and question answering over a folder of notes."""


query_options = [
    click.option("-k", "--top", "-n", "k", type=int, default=None, help="Number of passages (default 5)."),
    click.option(
        "--note", "notes", multiple=True, help="Only search this note (path, file name, stem, or a prefix of one); repeatable."
    ),
    click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    click.option("--no-auto-reindex", is_flag=True, help="Fail on a stale index instead of updating it."),
]


def _with(options: list[Callable]) -> Callable:
    def apply(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


@cli.command()
@click.argument("question", nargs=-1, required=True)
@_with(query_options)
@threshold_option
@common_options
def ask(question: tuple[str, ...], k: int | None, notes: tuple[str, ...], as_json: bool, **opts: Any) -> None:
    """Answer QUESTION from the notes, citing the passages (quotes are
    optional: the words are joined with spaces)."""
    _emit(_engine(opts).ask(" ".join(question), k=k, notes=notes or None), as_json)


@cli.command()
@click.argument("query", nargs=-1, required=True)
@_with(query_options)
@common_options
def search(query: tuple[str, ...], k: int | None, notes: tuple[str, ...], as_json: bool, **opts: Any) -> None:
    """List the passages that best match QUERY (words joined with spaces)."""
    passages = _engine(opts).search(" ".join(query), k=k, notes=notes or None)
    if as_json:
        _emit([p.to_dict() for p in passages], True)
        return
    from .results import passage_lines

    for line in passage_lines(passages):
        _echo(line)


@cli.command()
@click.option("--full", is_flag=True, help="Rebuild everything instead of only what changed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--yes", is_flag=True, help="Index the corpus even if it is over the size limits, or is / or your home folder.")
@click.option(
    "--ray", "ray_address", metavar="ADDRESS",
    help="Embed on a Ray cluster: auto ($RAY_ADDRESS or the one on this machine), ray://HEAD:10001, HOST:PORT, or local.",
)
@common_options
def reindex(full: bool, as_json: bool, **opts: Any) -> None:
    """Build or update the index from the notes folder."""
    report = _engine(opts).reindex(full=full, progress=None if as_json else _console_progress())
    _emit(report, as_json)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def status(as_json: bool, **opts: Any) -> None:
    """Show the index's model, settings, size and whether it is up to date."""
    from .errors import IndexMissingError

    engine = _engine(opts)
    try:
        report = engine.status()
    except IndexMissingError:
        # Not an error: the first question builds it.
        st = engine.settings
        how = f"the first ask (or `{engine.reindex_command()}`) builds it"
        if as_json:
            _emit({"index_dir": str(st.index_dir), "corpus_dir": str(st.corpus_dir), "built": False,
                   "up_to_date": False, "fix": engine.reindex_command()}, True)
        else:
            _echo(f"index:    {st.index_dir}\ncorpus:   {st.corpus_dir}\nstate:    not built yet; {how}")
        return
    _emit(report, as_json)


@cli.command(name="eval")
@click.argument("questions", required=False, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--kep", is_flag=True, help="Also run the Kubernetes design-document dev set (builds its index once; the documents from $DSQA_KEP_SOURCE).")
@click.option(
    "--study", is_flag=True, help="Also run the study-notes dev set (a folder of personal notes that ships with dsqa; builds its index once)."
)
@click.option(
    "--compare", is_flag=True, help="Also rank without concept coverage, with dense or BM25 alone, and with RRF fusion, side by side."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--misses", is_flag=True, help="List the ids of questions whose answer was not ranked first.")
@threshold_option
@common_options
def eval_(questions: Path | None, kep: bool, study: bool, compare: bool, as_json: bool, misses: bool, **opts: Any) -> None:
    """Measure ranking, refusal, the short answers and latency on a labelled
    question set (default: the bundled notes' dev set)."""
    from . import evaluation

    results = evaluation.evaluate_all(
        _engine(dict(opts)),
        questions,
        kep=kep,
        study=study,
        compare=compare,
        progress=_console_progress(),
        on_reindex=lambda name, report: click.echo(f"{name} index: {report}", err=True),
    )
    if as_json:
        _echo(json.dumps([r.to_dict() for _, reports in results for r in reports], indent=2))
        return
    for path, reports in results:
        _echo(f"{path}:")
        _echo(evaluation.format_reports(reports))
        if misses:
            _echo("not first: " + " ".join(reports[0].misses))
            _echo("cut-off quotes: " + " ".join(reports[0].cut))
        _echo()
    _echo("* threshold that refuses the most unanswerable questions with at most 5% of answerable ones refused")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; another host only when asked for.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on (0: any free port).")
@click.option(
    "--allow-origin",
    "allow_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Let pages from ORIGIN (e.g. http://localhost:3000) call the page's API from the browser; repeatable. "
    "Other cross-origin requests are refused [$DSQA_ALLOW_ORIGINS].",
)
@click.option("--watch", "follow", is_flag=True, help="Also reindex whenever notes change (as `dsqa watch`).")
@threshold_option
@common_options
def serve(host: str, port: int, follow: bool, **opts: Any) -> None:
    """Start the web page (Gradio) for asking the notes in a browser."""
    from .web.server import serve as serve_page

    engine = _engine(opts)
    engine.check_corpus_folder()
    watcher = None
    if follow:
        from .build.watch import Watcher

        watcher = Watcher(engine.settings, _log_reindex).start()
    try:
        serve_page(engine, host=host, port=port)
    finally:
        if watcher is not None:
            watcher.stop()


@cli.command(name="mcp")
@click.option("--http", is_flag=True, help="Serve over streamable HTTP (at http://HOST:PORT/mcp) instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --http: the address to listen on; another host only when asked for.")
@click.option("--port", default=7861, show_default=True, type=click.IntRange(0, 65535), help="With --http: the port (0: any free port).")
@click.option(
    "--allow-origin", "allow_origins", multiple=True, metavar="ORIGIN",
    help="With --http: let pages from ORIGIN call the server from a browser; repeatable [$DSQA_ALLOW_ORIGINS].",
)
@click.option("--no-auto-reindex", is_flag=True, help="Fail on a stale index instead of updating it.")
@threshold_option
@common_options
def mcp_(http: bool, host: str, port: int, **opts: Any) -> None:
    """Serve the notes to an AI assistant over MCP (stdio, or --http): the
    tools ask, search, read_note and status (needs `pip install 'dsqa[mcp]'`)."""
    if not http:
        ctx = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in ("host", "port") if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]
        if given or opts.get("allow_origins"):
            raise click.UsageError(f"{', '.join(given or ['--allow-origin'])}: only with --http (over stdio there is no address)")
    from .mcp import serve as serve_mcp

    engine = _engine(opts)
    engine.check_corpus_folder()
    engine.progress = None  # no console bar: stderr is the client's log
    if http:
        from .mcp.http import serve_http

        serve_http(engine, host=host, port=port)
    else:
        serve_mcp(engine)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print each reindex report as one line of JSON.")
@common_options
def watch(as_json: bool, **opts: Any) -> None:
    """Follow the notes folder: reindex whenever notes change, until Ctrl-C."""
    import threading

    from .build.watch import watch as follow

    engine = _engine(opts)
    engine.check_corpus_folder()
    first = True

    def show(report: Any) -> None:
        nonlocal first
        if report.wrote or first:  # a save that changed nothing says nothing
            _echo(json.dumps(report.to_dict(), ensure_ascii=False) if as_json else str(report))
        first = False

    click.echo(f"watching {engine.settings.corpus_dir} (Ctrl-C to stop)", err=True)
    follow(engine.settings, threading.Event(), show)


def main() -> None:
    cli(prog_name="dsqa")


if __name__ == "__main__":
    main()
