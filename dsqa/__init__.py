"""dsqa: semantic search and question answering over a folder of notes.

    from dsqa import ask
    answer = ask("how do overlay networks do service discovery")
    print(answer)

The module-level functions use one shared :class:`DSQA` per settings
(:func:`get_engine`), so the model and index load once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from ._version import __version__
from .build.progress import Reporter
from .build.report import IndexStatus, ReindexReport
from .encoders import register_model
from .engine import DSQA
from .errors import (
    ClusterError,
    CorpusError,
    CorpusMismatchError,
    CorpusTooLargeError,
    DsqaError,
    IndexCorruptError,
    IndexMissingError,
    IndexNotAFolderError,
    IndexWriteError,
    InvalidInputError,
    LockedError,
    ModelError,
    StaleIndexError,
)
from .results import Answer, Passage
from .settings import Settings

__all__ = [
    "Answer",
    "ClusterError",
    "CorpusError",
    "CorpusMismatchError",
    "CorpusTooLargeError",
    "DSQA",
    "DsqaError",
    "IndexCorruptError",
    "IndexMissingError",
    "IndexNotAFolderError",
    "IndexStatus",
    "IndexWriteError",
    "InvalidInputError",
    "LockedError",
    "ModelError",
    "Passage",
    "ReindexReport",
    "Settings",
    "StaleIndexError",
    "__version__",
    "ask",
    "get_engine",
    "register_model",
    "reindex",
    "search",
    "status",
]

_engines: dict[Settings, DSQA] = {}
_engines_lock = threading.Lock()


def get_engine(settings: Settings | None = None, **overrides: Any) -> DSQA:
    """The shared engine for these settings (defaults and environment when
    none are given)."""
    settings = (settings or Settings()).with_(**overrides)
    with _engines_lock:
        if settings not in _engines:
            _engines[settings] = DSQA(settings)
        return _engines[settings]


def ask(question: str, k: int | None = None, notes: Iterable[str] | None = None, **overrides: Any) -> Answer:
    """Answer ``question`` from the notes: see :meth:`DSQA.ask`."""
    return get_engine(**overrides).ask(question, k=k, notes=notes)


def search(query: str, k: int | None = None, notes: Iterable[str] | None = None, **overrides: Any) -> list[Passage]:
    """The passages that best match ``query``: see :meth:`DSQA.search`."""
    return get_engine(**overrides).search(query, k=k, notes=notes)


def reindex(full: bool = False, progress: bool | Reporter | None = False, **overrides: Any) -> ReindexReport:
    """Bring the index up to date with the corpus: see :meth:`DSQA.reindex`."""
    return get_engine(**overrides).reindex(full=full, progress=progress)


def status(**overrides: Any) -> IndexStatus:
    return get_engine(**overrides).status()
