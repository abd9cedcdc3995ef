"""Following the notes folder: reindex after notes change (``dsqa watch``,
``dsqa serve --watch``).

The folder is watched with watchfiles (inotify and its kin, polling where
there are none). Changes are collected until the folder has been quiet for
``settle_ms`` (an editor's save is several events: a temporary file, a
rename, a backup), at most ``max_wait_ms``, then one incremental reindex
runs. Reindexes never overlap: this loop runs one at a time, and each takes
the index's own lock, so a reindex started elsewhere (``dsqa reindex``, the
page's button) makes this one fail with ``LockedError``, which is retried
``retry_seconds`` later rather than reported. Editors' temporary, swap and
backup files, and hidden files, are ignored: they are never notes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CorpusError, DsqaError, LockedError
from ..settings import Settings
from ..sources.walk import NOTE_SUFFIXES
from .reindex import reindex
from .report import ReindexReport

log = logging.getLogger("dsqa")

#: Names editors give their temporary, swap, lock and backup files: vim's
#: ``.x.md.swp`` (hidden anyway), ``x.md~`` and its ``4913`` write probe,
#: Emacs's ``#x.md#`` and ``.#x.md``, JetBrains' ``x.md___jb_tmp___``,
#: Kate's ``x.md.kate-swp``, browsers' partial downloads, ``*.tmp``.
_TEMPORARY = re.compile(
    r"(?:\.sw[a-p]|\.swx|~|\.te?mp|\.bak|\.part|\.crdownload|\.kate-swp|___jb_(?:tmp|old|bak)___)$"
    r"|^#.*#$|^\.#|^4913$",
    re.IGNORECASE,
)

Report = Callable[[ReindexReport], None]


@dataclass(frozen=True)
class WatchTiming:
    """How long :func:`watch` waits: for the folder to be quiet after a
    change (``settle_ms``), at most after the first change of a batch
    (``max_wait_ms``), and before retrying a reindex that found the index
    locked (``retry_seconds``)."""

    settle_ms: int = 400
    max_wait_ms: int = 5000
    retry_seconds: float = 1.0


DEFAULT_TIMING = WatchTiming()


def is_ignored(path: str | Path, root: str | Path | None = None) -> bool:
    """Whether a change to ``path`` can be ignored: an editor's temporary
    file, or anything hidden (a dot-file, or inside a dot-folder, below
    ``root``), which the corpus never reads either."""
    path = Path(path)
    parts = path.parts
    if root is not None:
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            parts = (path.name,)
    if any(part.startswith(".") for part in parts):
        return True
    return bool(_TEMPORARY.search(path.name))


def _note_change(root: Path) -> Callable[[Any, str], bool]:
    def wanted(change: Any, path: str) -> bool:
        if is_ignored(path, root):
            return False
        if path.lower().endswith(NOTE_SUFFIXES):
            return True
        p = Path(path)
        # A folder (created, moved, deleted) may hold notes; a removed path
        # may have been one.
        return p.is_dir() or not p.exists()

    return wanted


def watch(
    settings: Settings,
    stop: threading.Event,
    on_report: Report | None = None,
    *,
    timing: WatchTiming = DEFAULT_TIMING,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Keep the index of ``settings`` up to date with its corpus until
    ``stop`` is set (or Ctrl-C).

    Reindexes once at the start (notes may have changed while nobody
    watched), then after each settled batch of changes; ``on_report`` gets
    every reindex's report, ``on_ready`` is called once the folder is being
    watched and that first reindex has run. A reindex that cannot run
    (``LockedError``: another writer) is retried; one that fails for a
    reason a later change may fix (an empty corpus, a read-only index
    folder) is logged and waits for that change.
    """
    import watchfiles

    root = Path(settings.corpus_dir).absolute()
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist (set --corpus or DSQA_CORPUS)")
    pending = True  # the first yield (a timeout) runs the initial reindex
    ready = False
    try:
        for changes in watchfiles.watch(
            root,
            watch_filter=_note_change(root),
            stop_event=stop,
            debounce=timing.max_wait_ms,
            step=timing.settle_ms,
            rust_timeout=max(1, int(timing.retry_seconds * 1000)),
            yield_on_timeout=True,
            raise_interrupt=True,
        ):
            if stop.is_set():
                break
            if changes:
                log.debug("notes changed: %s", ", ".join(sorted({Path(p).name for _, p in changes})[:10]))
                pending = True
            if pending:
                pending = not _reindex_once(settings, on_report)
            if not ready:
                ready = True
                if on_ready is not None:
                    on_ready()
    except KeyboardInterrupt:
        return


def _reindex_once(settings: Settings, on_report: Report | None) -> bool:
    """One reindex; False when it should be tried again (the index is locked)."""
    try:
        report = reindex(settings)
    except LockedError:
        log.info("another reindex is writing %s; trying again shortly", settings.index_dir)
        return False
    except DsqaError as exc:
        log.warning("could not reindex: %s", exc)
        return True
    if on_report is not None:
        on_report(report)
    return True


class Watcher:
    """:func:`watch` in a background thread: ``Watcher(settings, on_report)
    .start()``, then ``.stop()`` (or use it as a context manager)."""

    def __init__(self, settings: Settings, on_report: Report | None = None, timing: WatchTiming = DEFAULT_TIMING):
        self.settings = settings
        self.on_report = on_report
        self.timing = timing
        self.stop_event = threading.Event()
        #: Set once the folder is watched and the first reindex has run.
        self.ready = threading.Event()
        #: The exception that ended the watch early, if any.
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dsqa-watch", daemon=True)

    def _run(self) -> None:
        try:
            watch(self.settings, self.stop_event, self.on_report, timing=self.timing, on_ready=self.ready.set)
        except BaseException as exc:  # reported by the owner; a thread has nowhere to raise to
            log.error("watching %s stopped: %s", self.settings.corpus_dir, exc)
            self.error = exc
            self.ready.set()

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
