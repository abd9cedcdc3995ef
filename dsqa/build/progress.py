"""What a reindex says while it works, and one way to show it.

The library reports :class:`Step` events to a callback (a *reporter*); it
prints nothing itself. :class:`ConsoleProgress` is the reporter the CLI uses
on a terminal: a line per stage ("loading model…", "reading 5 notes…"), then
a tqdm bar counted in chunks while they are embedded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TextIO

Stage = Literal["model", "read", "embed", "write", "done"]


@dataclass(frozen=True)
class Step:
    """One progress event. ``done`` / ``total`` count chunks during
    ``"embed"``; the other stages carry only a message."""

    stage: Stage
    message: str
    done: int = 0
    total: int = 0


Reporter = Callable[[Step], None]


def ignore(step: Step) -> None:
    """The reporter that shows nothing."""


class ConsoleProgress:
    """Stage lines and an embedding bar on ``stream`` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._bar: Any = None

    def __call__(self, step: Step) -> None:
        if step.stage == "embed":
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=step.total, desc="embedding", unit="chunk", file=self.stream, leave=False, **self._size()
                )
            self._bar.update(step.done - self._bar.n)
            return
        self._close()
        if step.stage != "done":
            print(step.message, file=self.stream, flush=True)

    def _size(self) -> dict[str, int]:
        """Nothing (tqdm follows the terminal) unless the terminal reports no
        size, as a fresh pseudo-terminal does: tqdm would then draw nothing."""
        try:
            size = os.get_terminal_size(self.stream.fileno())
        except (AttributeError, OSError, ValueError):
            return {}
        return {} if size.columns > 0 and size.lines > 0 else {"ncols": 80, "nrows": 24}

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def reporter(progress: bool | Reporter | None) -> Reporter:
    """A reporter from what callers pass as ``progress``: ``True`` for the
    console (tqdm, which the web page's progress bar follows), a callable as
    it is, anything else for none."""
    if progress is True:
        return ConsoleProgress()
    if callable(progress):
        return progress
    return ignore
