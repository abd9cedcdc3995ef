"""The bench's measurement of one command (``bench.common.run_measured``):
its wall time, and its own peak RSS, not the bench process's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT))
from bench.common import run_measured, uncommitted  # noqa: E402


def test_a_commands_peak_rss_is_its_own_not_the_bench_processs():
    """On Linux a child's ru_maxrss starts from the RSS of the process that
    forked it: a 1 MB command run from a 300 MB bench process measured
    300 MB. Now it measures what it used, and a command that allocates
    200 MB measures at least that."""
    held = np.ones(300 * 2**20 // 8)  # this process: 300 MB more, touched
    small = run_measured([sys.executable, "-c", "pass"])[1]
    big = run_measured([sys.executable, "-c", "import numpy as np; a = np.ones(200 * 2**20 // 8)"])[1]
    assert held.sum() > 0
    assert small < 100
    assert 200 <= big < 300 + 100


def test_a_failing_command_is_an_error_with_its_stderr():
    with pytest.raises(RuntimeError, match=r"failed \(3\).*went wrong"):
        run_measured([sys.executable, "-c", "import sys; print('went wrong', file=sys.stderr); sys.exit(3)"])


def test_wall_time_and_output_are_the_commands():
    seconds, _, out = run_measured([sys.executable, "-c", "import time; time.sleep(0.3); print('done')"])
    assert out.strip() == "done" and 0.3 <= seconds < 5


def test_only_a_change_to_code_marks_the_run_as_uncommitted(tmp_path):
    """The figures file a part rewrites is not a change to what is measured:
    a part run after another part's --update still measures its commit."""
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "bench").mkdir()
    (tmp_path / "dsqa").mkdir()
    (tmp_path / "bench" / "RESULTS.md").write_text("old figures\n")
    (tmp_path / "dsqa" / "engine.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    (tmp_path / "bench" / "RESULTS.md").write_text("new figures\n")
    assert not uncommitted(tmp_path)
    (tmp_path / "dsqa" / "engine.py").write_text("x = 2\n")
    assert uncommitted(tmp_path)
