"""The configuration table: every :class:`~dsqa.settings.Settings` field (by
section, with its default, its environment variable and what it means) and
every ``DSQA_*`` variable (:mod:`dsqa.environment`).

The README holds it between ``<!-- configuration:start -->`` and
``<!-- configuration:end -->``; ``python -m dsqa.configuration --update`` writes
it there, and a test fails when the README's table differs from this one.
Meanings are each field's ``#:`` comment in
``dsqa/settings.py``, so the table cannot drift from the code.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from . import environment, settings

START, END = "<!-- configuration:start -->", "<!-- configuration:end -->"

#: The defaults computed when Settings is made, in words.
COMPUTED_DEFAULTS = {
    "corpus_dir": "the bundled demo notes",
    "index_dir": "the corpus's own (see `dsqa status`)",
    "refusal_threshold": f"`{settings.REFUSAL_THRESHOLD}`",
    "allow_origins": "none",
}


def _plain(text: str) -> str:
    """Sphinx roles and double backquotes as Markdown code, pipes escaped for a table cell."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`").replace("|", "\\|")


def sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """(section title, [(field, meaning)]) in the order of settings.py; a
    field without a comment of its own shares the one above it ("as above")."""
    source = inspect.getsource(settings.Settings).splitlines()
    out: list[tuple[str, list[tuple[str, str]]]] = []
    comment: list[str] = []
    for line in source:
        text = line.strip()
        if text.startswith("# -- "):
            out.append((text[5:], []))
        elif text.startswith("# ") and out and not comment and not out[-1][1]:
            out[-1] = (f"{out[-1][0]} {text[2:]}", [])
        elif text.startswith("#:"):
            comment.append(text[2:].strip())
        elif (match := re.match(r"(\w+): [^=]+=", text)) and out and line.startswith("    ") and not line.startswith("     "):
            meaning = _plain(" ".join(comment)) if comment else "as above"
            out[-1][1].append((match.group(1), meaning))
            comment = []
        elif text.startswith("def "):
            break
    return out


def _default(name: str) -> str:
    if name in COMPUTED_DEFAULTS:
        return COMPUTED_DEFAULTS[name]
    (spec,) = (f for f in fields(settings.Settings) if f.name == name)
    value = spec.default
    if value is MISSING:  # pragma: no cover - every other field has a plain default
        raise ValueError(f"Settings.{name} has a computed default: describe it in COMPUTED_DEFAULTS")
    return f"`{value!r}`" if not isinstance(value, str) else f'`"{value}"`'


def table() -> str:
    """The README's configuration block, Markdown."""
    by_field = {v.field: v.name for v in environment.VARIABLES if v.field}
    rows = [
        "Every field of `dsqa.Settings` (the library's `DSQA(...)` takes them by name; the CLI's flags set some),",
        "generated from `dsqa/settings.py` by `python -m dsqa.configuration --update`:",
        "",
        "| Setting | Default | Variable | What it is |",
        "|---|---|---|---|",
    ]
    for title, members in sections():
        rows.append(f"| **{_plain(title)}** | | | |")
        for name, meaning in members:
            env = f"`{by_field[name]}`" if name in by_field else ""
            rows.append(f"| `{name}` | {_default(name)} | {env} | {meaning} |")
    rows += ["", "Every environment variable dsqa reads (`dsqa/environment.py`):", "", "| Variable | Setting | What it is |", "|---|---|---|"]
    for variable in environment.VARIABLES:
        rows.append(f"| `{variable.name}` | {f'`{variable.field}`' if variable.field else ''} | {variable.meaning} |")
    return "\n".join(rows)


def rewrite(readme: str, block: str, start_marker: str = START, end_marker: str = END) -> str:
    """``readme`` with the text between the two markers replaced by ``block``
    (also used by ``bench.readme_table`` for the figure table)."""
    start, end = readme.find(start_marker), readme.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {start_marker} ... {end_marker} block")
    return readme[: start + len(start_marker)] + "\n" + block + "\n" + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dsqa.configuration", description=__doc__.splitlines()[0])
    parser.add_argument("--update", metavar="README", nargs="?", const="README.md", help="rewrite the table in this README")
    args = parser.parse_args(argv)
    if args.update is None:
        print(table())
        return 0
    path = Path(args.update)
    path.write_text(rewrite(path.read_text(encoding="utf-8"), table()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
