"""``bench/RESULTS.md`` as one section per part, so that one part can be
re-measured alone: ``python -m bench --only ray --update`` replaces the
``ray`` part's headlines and tables and keeps every other byte of the file.

The layout a full run writes (:func:`render`)::

    # dsqa benchmark results
    Written by `python -m bench` on DATE (took N min). Every table below is from this one run.
    ## Machine
    - cpu: ...
    ## Headlines
    <!-- part query -->
    - name: figure
    <!-- part indexing -->
    ...
    ## Tables
    <!-- part query -->
    ### a table
    ...

A part's share of the Headlines and of the Tables starts at its marker
``<!-- part NAME -->`` and runs to the next marker or the end of the
section. :func:`update` splices new shares in their place (or appends a part
the file lacks). A re-measured part's tables start with a paragraph saying
which command measured them, when, on which commit and machine and under
what load, and the sentence after "Written by" names the re-measured parts,
so a file mixing runs says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.common import Table

TITLE = "# dsqa benchmark results"
HEADLINES, TABLES = "## Headlines", "## Tables"
#: How a re-measured part's tables begin (see :func:`remeasured_note`).
REMEASURED = "Re-measured apart by `"
ONE_RUN = "Every table below is from this one run."

_MARKER = re.compile(r"^<!-- part (\S+) -->$", re.M)
_WRITTEN = re.compile(r"^(Written by `[^`]+` on [^(\n]+? \(took [^)\n]*\)\.)(.*)$", re.M)


class ResultsError(ValueError):
    """A results file that cannot be updated part by part, or bad input."""


@dataclass
class PartResult:
    """What one part measured: its headlines and tables, and for a part
    re-measured apart, the paragraph saying when and where (``note``)."""

    part: str
    headlines: dict[str, str] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    note: str = ""

    def headline_block(self) -> str:
        lines = [marker(self.part)] + [f"- {k}: {v}" for k, v in self.headlines.items()]
        return "\n".join(lines) + "\n\n"

    def table_block(self) -> str:
        out = marker(self.part) + "\n\n"
        if self.note:
            out += self.note + "\n\n"
        return out + "".join(table.markdown() + "\n" for table in self.tables)


def marker(part: str) -> str:
    return f"<!-- part {part} -->"


def render(parts: Iterable[PartResult], info: dict[str, str], command: str, started: str, seconds: float) -> str:
    """The whole file, for a run that measured ``parts`` together."""
    parts = list(parts)
    lines = [
        TITLE,
        "",
        f"Written by `{command}` on {started} (took {seconds / 60:.1f} min). {ONE_RUN}",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [
        "",
        "The machine's 2 cores are shared with other work, so timings are noisy: read the medians and ratios, not single figures.",
        "",
        HEADLINES,
        "",
    ]
    return "\n".join(lines) + "\n" + "".join(p.headline_block() for p in parts) + TABLES + "\n\n" + "".join(p.table_block() for p in parts)


def remeasured_note(command: str, started: str, seconds: float, info: dict[str, str], load_start: str, load_end: str) -> str:
    """The paragraph heading a part re-measured apart from the full run."""
    skip = ("load average at start", "load average at end")
    machine = "; ".join(f"{k} {v}" for k, v in info.items() if k not in skip)
    return (
        f"{REMEASURED}{command}` on {started} (took {seconds / 60:.1f} min), not in the run the Machine section describes: "
        f"{machine}; load average at start {load_start}, at end {load_end}."
    )


def _region(text: str, start: str, end: str | None) -> tuple[int, int]:
    """Where the body of section ``start`` lies: after its heading line, up
    to the heading ``end`` (or the end of the text)."""
    found = re.search(rf"^{re.escape(start)}\n", text, re.M)
    if found is None:
        raise ResultsError(f"no '{start}' section")
    stop = len(text)
    if end is not None:
        after = re.search(rf"^{re.escape(end)}\n", text[found.end():], re.M)
        if after is None:
            raise ResultsError(f"no '{end}' section after '{start}'")
        stop = found.end() + after.start()
    return found.end(), stop


def blocks(text: str, section: str) -> dict[str, tuple[int, int]]:
    """Each part's share of ``section`` (Headlines or Tables) in ``text``:
    part name -> (start, end) offsets, from its marker to the next one."""
    lo, hi = _region(text, section, TABLES if section == HEADLINES else None)
    found = list(_MARKER.finditer(text, lo, hi))
    if text[lo: found[0].start() if found else hi].strip():
        raise ResultsError(f"its '{section}' section has lines outside any part marker ({marker('NAME')}); it predates part-by-part updates")
    out: dict[str, tuple[int, int]] = {}
    for i, m in enumerate(found):
        if m.group(1) in out:
            raise ResultsError(f"part {m.group(1)!r} appears twice in its '{section}' section")
        out[m.group(1)] = (m.start(), found[i + 1].start() if i + 1 < len(found) else hi)
    return out


def check(text: str) -> None:
    """Raise :class:`ResultsError` when ``text`` cannot be updated part by part."""
    if _WRITTEN.search(text) is None:
        raise ResultsError("no 'Written by `...` on ... (took ... min).' line")
    blocks(text, HEADLINES)
    blocks(text, TABLES)


def _splice(text: str, section: str, part: str, block: str) -> str:
    spans = blocks(text, section)
    if part in spans:
        start, end = spans[part]
        return text[:start] + block + text[end:]
    _, end = _region(text, section, TABLES if section == HEADLINES else None)
    head = text[:end]
    if head and not head.endswith("\n\n"):
        head = head.rstrip("\n") + "\n\n"
    return head + block + text[end:]


def remeasured(text: str) -> list[str]:
    """The parts whose tables were re-measured apart from the full run."""
    return [part for part, (start, end) in blocks(text, TABLES).items() if text[start:end].split("\n", 2)[-1].startswith(REMEASURED)]


def remeasured_runs(text: str) -> list[tuple[str, str, str]]:
    """(part, date, commit) of each part re-measured apart; none for a file
    that is not in parts."""
    try:
        spans = blocks(text, TABLES)
    except ResultsError:
        return []
    out = []
    for part, (start, end) in spans.items():
        note = text[start:end].split("\n", 2)[-1].split("\n", 1)[0]
        found = re.match(rf"{re.escape(REMEASURED)}[^`]+` on ([^(]+?) \(.*?; commit ([^;\s]+)", note)
        if found:
            out.append((part, found.group(1), found.group(2)))
    return out


def update(text: str, parts: Iterable[PartResult]) -> str:
    """``text`` with each of ``parts``' headlines and tables in place of
    that part's (appended when the text has none), and the sentence after
    "Written by" naming the parts re-measured apart. Everything else is kept
    byte for byte."""
    check(text)
    for p in parts:
        text = _splice(text, HEADLINES, p.part, p.headline_block())
        text = _splice(text, TABLES, p.part, p.table_block())
    again = remeasured(text)
    scope = f" {ONE_RUN}" if not again else (
        " Every table below is from this one run except those of "
        + ", ".join(f"`{p}`" for p in again)
        + ", re-measured apart later: each such part's tables start by saying when, on which commit and machine, and under what load."
    )
    written = _WRITTEN.search(text)
    assert written is not None  # check() found it
    return text[: written.end(1)] + scope + text[written.end():]
