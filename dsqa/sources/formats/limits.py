"""The bounds every reader works within, and the checks the readers make as
they go.

A note file is at most 20 MB, but a small file can still ask for far more
work than its size says: a PDF stream that inflates to many megabytes of
text, or one stream shared by hundreds of pages; an HTML page of tags that
never close, nested a hundred thousand deep; a notebook whose JSON nests a
thousand deep, or whose heading level is a billion. So each note is read
within four bounds (:class:`ReaderLimits`):

* **characters**: the text extracted from a PDF, a web page or a notebook;
  checked page by page and cell by cell, so a PDF stops at the page that
  crosses it;
* **nesting depth**: of a page's elements (checked as the parser opens
  them) and of a notebook's JSON (measured before it is parsed);
* **time** and **memory**: the readers of PDFs, web pages and notebooks run
  in a worker process (:mod:`dsqa.sources.formats.worker`) that is stopped when a
  note takes longer, and whose address space is capped.

A note over a bound is skipped with a warning that names the bound
(:class:`LimitExceeded`); the rest of the folder is read as usual. Markdown
and text notes are their own text, bounded by the file size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...settings import Settings


@dataclass(frozen=True)
class ReaderLimits:
    """How much one note may cost to read: the ``reader_*`` fields of
    :class:`dsqa.Settings`, whose defaults these are."""

    #: Wall-clock seconds for one note.
    seconds: float = Settings.reader_timeout
    #: MiB the reader process may allocate beyond what it needed to start.
    memory_mb: int = Settings.reader_memory_mb
    #: Characters of text extracted from one note.
    max_chars: int = Settings.reader_max_chars
    #: Elements of a web page, or arrays and objects of a notebook, nested
    #: inside one another.
    max_depth: int = Settings.reader_max_depth

    @classmethod
    def of(cls, settings: Settings) -> ReaderLimits:
        return cls(settings.reader_timeout, settings.reader_memory_mb, settings.reader_max_chars, settings.reader_max_depth)


DEFAULT_LIMITS = ReaderLimits()


class LimitExceeded(ValueError):
    """A note over one of the bounds; its message names the bound, in words
    fit for a warning that names the file."""


def over_chars(limits: ReaderLimits) -> LimitExceeded:
    return LimitExceeded(
        f"over the text bound: more than {limits.max_chars:,} characters extracted (Settings.reader_max_chars)"
    )


def over_depth(limits: ReaderLimits, what: str) -> LimitExceeded:
    return LimitExceeded(
        f"over the nesting bound: {what} nested more than {limits.max_depth:,} deep (Settings.reader_max_depth)"
    )


def over_time(limits: ReaderLimits) -> LimitExceeded:
    return LimitExceeded(f"over the time bound: not read within {limits.seconds:g} s (Settings.reader_timeout)")


def over_memory(limits: ReaderLimits) -> LimitExceeded:
    return LimitExceeded(f"over the memory bound: reading it needs more than {limits.memory_mb:,} MiB (Settings.reader_memory_mb)")


class CharBudget:
    """Counts the characters a reader extracts, page by page or cell by
    cell, and raises :class:`LimitExceeded` as soon as they pass the bound."""

    def __init__(self, limits: ReaderLimits) -> None:
        self.limits = limits
        self.used = 0

    def take(self, chars: int) -> None:
        self.used += chars
        if self.used > self.limits.max_chars:
            raise over_chars(self.limits)


#: A JSON string (escapes included), or a bracket outside of one.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def check_json_depth(data: bytes, limits: ReaderLimits) -> None:
    """:class:`LimitExceeded` when the JSON text ``data`` nests arrays and
    objects deeper than the bound (before ``json.loads`` recurses into it)."""
    if data.count(b"[") + data.count(b"{") <= limits.max_depth:
        return
    depth = 0
    for match in _JSON_TOKEN.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limits.max_depth:
                raise over_depth(limits, "the notebook's JSON")
        elif token in (b"]", b"}"):
            depth -= 1
