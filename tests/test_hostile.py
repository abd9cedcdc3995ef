"""Hostile notes and requests (issue 30): a note built to break a reader,
a request far over any limit, a Ray address that is no Ray, a corpus that is
a whole machine, a stdout that cannot be written. Each must cost one
warning or one line of error, within a bound, and never take the rest down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, INDEX, ROOT

from dsqa import InvalidInputError
from dsqa import engine as engine_module


# -- 4. oversized questions ---------------------------------------------------
def test_an_oversized_question_is_refused_before_any_per_character_pass(monkeypatch):
    """A 20 MB question blocked every other question for minutes: the length
    was checked after a character-by-character pass over it."""
    looked_at = []
    real = engine_module.unicodedata.category

    class Counting:
        @staticmethod
        def category(ch):
            looked_at.append(ch)
            return real(ch)

    monkeypatch.setattr(engine_module, "unicodedata", Counting)
    with pytest.raises(InvalidInputError, match="the limit is 2,000"):
        engine_module.clean_question("overlay " * 25_000, 2000)
    assert looked_at == []
    # Blanks collapse: a question a little over the limit before cleaning is fine.
    assert engine_module.clean_question("overlay   networks " * 150, 3000).startswith("overlay networks")
    assert looked_at


# -- 8. a stdout that cannot be written ----------------------------------------
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_failed_write_to_stdout_is_one_line():
    """``dsqa ask … > /dev/full`` printed a 27-line traceback. ``status`` on
    the bundled notes prints without loading a model; every command prints
    through the same function."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "dsqa.cli", "status", "--corpus", str(CORPUS), "--index", str(INDEX)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
            timeout=120,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["Error: cannot write the output to stdout: No space left on device"]
