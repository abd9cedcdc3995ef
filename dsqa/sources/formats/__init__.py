"""Readers that turn a note file's bytes into the text dsqa chunks and cites.

One module per format, each with a ``READER``: Markdown and plain text
(``markdown``), PDF (``pdf``), saved web pages (``html``) and Jupyter
notebooks (``notebook``). :func:`reader_for` picks one by the file's suffix.

A reader gets the bytes :mod:`dsqa.sources.loading` already read (so the size limit and
the way files are opened stay in one place) and returns an :class:`Extracted`:
the text, and a :class:`Layout` saying how positions in that text are cited
when line numbers of the whole text would not do (the page of a PDF, the cell
of a notebook). A file a reader cannot use (damaged, encrypted, not that
format at all) raises ``ValueError`` saying why, in words fit for a warning
that names the file.

Every reader is deterministic: reading the same bytes again gives the same
text, so a citation can always be checked against the file. Each has a
``version``; an index records it per note, and a note read by another version
of its reader is re-chunked at the next reindex.
"""

from __future__ import annotations

from .extracted import Extracted, Layout, Reader
from .limits import DEFAULT_LIMITS, ReaderLimits

__all__ = ["READERS", "SUFFIXES", "Extracted", "Layout", "Reader", "read", "reader_for", "reader_version"]


def _readers() -> list[Reader]:
    from . import html, markdown, notebook, pdf

    return [markdown.READER, pdf.READER, html.READER, notebook.READER]


READERS: tuple[Reader, ...] = tuple(_readers())
_BY_SUFFIX: dict[str, Reader] = {s: r for r in READERS for s in r.suffixes}
#: Every suffix (lower case, with the dot) that is read as a note.
SUFFIXES: tuple[str, ...] = tuple(_BY_SUFFIX)


def reader_for(name: str) -> Reader:
    """The reader for a file name (by its suffix, case-insensitively);
    ``ValueError`` for a suffix no reader handles."""
    lower = name.lower()
    for suffix, reader in _BY_SUFFIX.items():
        if lower.endswith(suffix):
            return reader
    raise ValueError(f"no reader for {name!r}: dsqa reads {', '.join(SUFFIXES)}")


def reader_version(name: str) -> str:
    """What an index records about the reader of a note: ``"pdf/1"``; ``""``
    for Markdown and text notes, whose text is the file itself (indexes made
    before other formats existed record nothing for them either)."""
    reader = reader_for(name)
    return "" if reader.kind == "markdown" else f"{reader.kind}/{reader.version}"


def read(name: str, data: bytes, limits: ReaderLimits = DEFAULT_LIMITS) -> Extracted:
    """Extract the note ``name`` (used for its suffix) from its bytes, in
    this process (:func:`dsqa.sources.formats.worker.extract` is the bounded way)."""
    return reader_for(name).read(data, limits)
