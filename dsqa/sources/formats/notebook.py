"""Jupyter notebooks (nbformat 4, and 3): Markdown cells as text, code cells
as fenced code blocks in the notebook's language, cited to the cell.

Outputs are left out: they are what the code printed (tables, logs,
tracebacks, progress bars), not what the author wrote to explain it, and
they would crowd the index with chunks that carry no heading or question
words. Raw cells are kept as text. Cells are numbered from 1 in notebook
order, counting every cell (empty ones too), so ``cell 7`` is the seventh
cell a reader scrolls past. An nbformat 3 heading cell's level is a
Markdown heading level, 1 to 6 (version 2: larger levels were written out).
"""

from __future__ import annotations

import json
from typing import Any

from .. import markup
from .extracted import Extracted, Layout
from .limits import DEFAULT_LIMITS, CharBudget, ReaderLimits, check_json_depth


class NotebookReader:
    kind = "notebook"
    suffixes: tuple[str, ...] = (".ipynb",)
    version = 2

    def read(self, data: bytes, limits: ReaderLimits = DEFAULT_LIMITS) -> Extracted:
        check_json_depth(data, limits)
        try:
            nb = json.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"damaged notebook (not JSON: {exc.msg} at line {exc.lineno})") from None
        cells, language = _cells(nb)
        lines: list[str] = []
        starts: list[int] = []
        numbers: list[int] = []
        budget = CharBudget(limits)
        for number, cell in enumerate(cells, 1):
            body = _cell_lines(cell, number, language)
            if not body:
                continue
            budget.take(sum(len(line) + 1 for line in body))
            if lines:
                lines.append("")
            starts.append(len(lines))
            numbers.append(number)
            lines.extend(body)
        if not lines:
            raise ValueError("empty notebook (no cell has text)")
        return Extracted("\n".join(lines) + "\n", Layout(None, "cell", tuple(starts), tuple(numbers)))


def _cell_lines(cell: Any, number: int, language: str) -> list[str]:
    """Cell ``number``'s lines as Markdown (a code cell fenced in
    ``language``), or none for a cell without text or of another kind."""
    if not isinstance(cell, dict):
        raise ValueError(f"damaged notebook (cell {number} is not an object)")
    kind = cell.get("cell_type")
    source = _source(cell.get("source", cell.get("input", "")), number)
    body = [line.rstrip() for line in source.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    if not body or kind not in ("code", "markdown", "raw", "heading"):
        return []
    if kind == "code":
        fence = "~~~" if any(markup.fence(line) == "```" for line in body) else "```"
        return [fence + language, *body, fence]
    if kind == "heading":  # nbformat 3
        return ["#" * _heading_level(cell.get("level")) + " " + " ".join(body)]
    return body


def _heading_level(level: Any) -> int:
    """An nbformat 3 heading cell's level as a Markdown heading level, 1 to
    6: a larger number is 6, anything but a whole number 1 (a level of 10**9
    once made a gigabyte of ``#``)."""
    if isinstance(level, bool) or not isinstance(level, int):
        return 1
    return min(max(level, 1), 6)


def _cells(nb: Any) -> tuple[list[Any], str]:
    if not isinstance(nb, dict):
        raise ValueError("damaged notebook (not a JSON object)")
    major = nb.get("nbformat")
    meta: dict[str, Any] = nb["metadata"] if isinstance(nb.get("metadata"), dict) else {}
    language = ""
    for key in ("kernelspec", "language_info"):
        info = meta.get(key)
        name = (info.get("language") or info.get("name")) if isinstance(info, dict) else None
        if isinstance(name, str):
            language = name.strip()
            break
    language = "".join(ch for ch in language if ch.isalnum() or ch in "+-#_.") or "python"
    if major == 4 and isinstance(nb.get("cells"), list):
        return nb["cells"], language
    if major == 3 and isinstance(nb.get("worksheets"), list):
        cells: list[Any] = []
        for sheet in nb["worksheets"]:
            if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list):
                cells.extend(sheet["cells"])
        return cells, language
    raise ValueError(f"not a Jupyter notebook dsqa reads (nbformat {major!r}; it reads 3 and 4)")


def _source(source: Any, number: int) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    raise ValueError(f"damaged notebook (cell {number} has no text source)")


READER = NotebookReader()
