"""The bench's measurement of one command (``bench.common.run_measured``):
its wall time, and its own peak RSS, not the bench process's."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT))
from bench.common import run_measured  # noqa: E402


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
