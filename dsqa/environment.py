"""Every ``DSQA_*`` environment variable dsqa reads, defined once.

Each variable has its name, what it means, and the :class:`dsqa.settings.Settings`
field it gives the default of (if any). The modules that honour one read it
through :meth:`Variable.get`, so this is the one list of them; the README's
configuration table is generated from it (``python -m dsqa.configuration``).

A leaf module: it imports nothing of dsqa.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, its meaning, and the Settings
    field it is the default of ("" for none)."""

    name: str
    meaning: str
    field: str = ""

    def get(self) -> str:
        """The variable's value as set, or "" when it is not set."""
        return os.environ.get(self.name, "")

    def set(self, value: str) -> None:
        """Set it for this process and the processes it starts (a Ray actor
        takes the driver's choice this way)."""
        os.environ[self.name] = value


CORPUS = Variable("DSQA_CORPUS", "The notes folder, unless `--corpus` names one; else the bundled demo notes.", "corpus_dir")
INDEX = Variable(
    "DSQA_INDEX",
    "The index folder, unless `--index` names one; else the demo's committed index for the demo notes, "
    "the per-user data directory for any other folder.",
    "index_dir",
)
REFUSAL_THRESHOLD = Variable(
    "DSQA_REFUSAL_THRESHOLD",
    "The confidence below which the notes are taken not to cover a question (a number).",
    "refusal_threshold",
)
ALLOW_ORIGINS = Variable(
    "DSQA_ALLOW_ORIGINS",
    "Origins (`scheme://host[:port]`, separated by spaces or commas) whose pages may call the web API from a browser.",
    "allow_origins",
)
CACHE = Variable(
    "DSQA_CACHE",
    "Where files that can be made again are kept (the model's ONNX export, the KEP dev set's index); "
    "else the per-user cache directory.",
)
ENCODER = Variable(
    "DSQA_ENCODER",
    "How the model runs: `auto` (default), `onnx`, `torch` or `bf16`; a Ray driver passes its choice to its actors.",
)
THREADS = Variable("DSQA_THREADS", "Cores the encoders use (a whole number above 0); else all of this machine's. A Ray actor sets it.")
KEP_SOURCE = Variable(
    "DSQA_KEP_SOURCE",
    "The `keps/` folder of the Kubernetes enhancements repository, for `dsqa eval --kep` (dsqa does not ship it).",
)
STRICT_READERS = Variable(
    "DSQA_STRICT_READERS",
    "`1`: a note reader's bug raises instead of skipping the note with a warning (the test suite sets it).",
)

#: Every variable, in the order the README's table lists them.
VARIABLES: tuple[Variable, ...] = (
    CORPUS,
    INDEX,
    REFUSAL_THRESHOLD,
    ALLOW_ORIGINS,
    CACHE,
    ENCODER,
    THREADS,
    KEP_SOURCE,
    STRICT_READERS,
)
