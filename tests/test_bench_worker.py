"""The bench worker's reindex task times the parts of a reindex by wrapping
them: each wrapped name must still exist in dsqa (a renamed function once
broke the task with an AttributeError that no test saw)."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

WRAP = """
import types
from bench.worker import _reindex_phases
model = types.SimpleNamespace(embed=lambda texts, **k: texts)
phases = _reindex_phases(model)
model.embed(["x"])
from dsqa.build.chunking import Chunker
assert Chunker.chunk.__qualname__.endswith("timed"), Chunker.chunk
print(sorted(phases.seconds))
"""


def test_every_part_the_reindex_task_times_exists():
    done = subprocess.run([sys.executable, "-c", WRAP], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['embed']"


def test_the_answers_part_keeps_one_index_per_corpus_folder(tmp_path):
    """Another checkout's copy of a dev set's notes is another folder, whose
    index dsqa refuses to rewrite: the part must not share one between them."""
    from bench.__main__ import _kept_index

    a, b = tmp_path / "one" / "black", tmp_path / "two" / "black"
    assert _kept_index("Black docs", a) != _kept_index("Black docs", b)
    assert _kept_index("Black docs", a) == _kept_index("Black docs", a)
