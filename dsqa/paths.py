"""Where dsqa keeps things: the bundled demo notes and their index, the
per-user index of each notes folder, and the cache of derived model files.

The demo corpus and its index ship inside the package (``dsqa/corpus``,
``dsqa/index`` in an installed wheel; ``corpus/`` and ``index/`` at the root
of a checkout). Indexes of the user's own folders live in the per-user data
directory, one per folder, so that asking another folder never touches the
demo index (see :func:`index_dir_for`).

An index records the folder it was built from (:func:`corpus_record`), so
that a command run with another folder can refuse to rewrite it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import platformdirs

from . import environment
from .errors import CorpusError

#: The package folder; the demo data sits in it when dsqa is installed.
PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository root when running from a checkout.
PROJECT_ROOT = PACKAGE_DIR.parent


def _bundled(name: str) -> Path:
    installed = PACKAGE_DIR / name
    return installed if installed.is_dir() else PROJECT_ROOT / name


def bundled_corpus() -> Path:
    """The demo notes (five students' distributed-systems notes)."""
    return _bundled("corpus")


def bundled_index() -> Path:
    """The index of the demo notes that ships with dsqa."""
    return _bundled("index")


def data_dir() -> Path:
    """The per-user data directory (``$XDG_DATA_HOME/dsqa`` on Linux,
    ``~/.local/share/dsqa`` by default)."""
    return platformdirs.user_data_path("dsqa")


def cache_dir() -> Path:
    """Where derived files that can be made again are kept (the ONNX export of
    the model, the KEP dev set's corpus and index): ``$DSQA_CACHE``, else the
    per-user cache directory (``$XDG_CACHE_HOME/dsqa``, ``~/.cache/dsqa``)."""
    env = environment.CACHE.get()
    if env:
        return Path(env).expanduser()
    return platformdirs.user_cache_path("dsqa")


def require_corpus_dir(corpus_dir: Path) -> Path:
    """``corpus_dir`` as a ``Path``, or ``CorpusError`` when it is not a
    folder: checked before anything is logged, locked or written, so a
    mistyped ``--corpus`` leaves nothing behind."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        what = "is not a folder" if corpus_dir.exists() else "does not exist"
        raise CorpusError(f"corpus folder {corpus_dir} {what} (set --corpus or DSQA_CORPUS)")
    return corpus_dir


def _resolved(path: Path) -> Path:
    return Path(path).expanduser().resolve()


def index_dir_for(corpus_dir: Path) -> Path:
    """The default index of a notes folder: in the per-user data directory,
    named for the folder plus a short hash of its resolved path, so two
    folders of one name get two indexes. The demo notes keep their bundled
    index."""
    corpus = _resolved(corpus_dir)
    if corpus == _resolved(bundled_corpus()):
        return bundled_index()
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", corpus.name).strip("._") or "notes"
    digest = hashlib.sha256(str(corpus).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return data_dir() / "indexes" / f"{name}-{digest}"


def is_package_data(path: Path) -> bool:
    """Whether ``path`` lies inside the installed dsqa package (the demo index
    of a wheel install), which dsqa never writes into."""
    return _resolved(path).is_relative_to(PACKAGE_DIR)


def corpus_record(corpus_dir: Path, index_dir: Path) -> str:
    """How an index's manifest names the folder it was built from: the
    resolved path relative to the index folder when the notes sit beside it
    (``../corpus`` for the demo's ``corpus/`` and ``index/``, so a clone, an
    installed wheel or a copy of both folders still matches), else the
    resolved absolute path."""
    corpus, index = _resolved(corpus_dir), _resolved(index_dir)
    if corpus.is_relative_to(index.parent):
        return os.path.relpath(corpus, index)
    return str(corpus)


def recorded_corpus(record: str, index_dir: Path) -> Path:
    """The folder a manifest's corpus record names, for an index in ``index_dir``."""
    return (_resolved(index_dir) / record).resolve()


def same_corpus(record: str, index_dir: Path, corpus_dir: Path) -> bool:
    return recorded_corpus(record, index_dir) == _resolved(corpus_dir)
