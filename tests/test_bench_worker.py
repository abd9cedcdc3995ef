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
