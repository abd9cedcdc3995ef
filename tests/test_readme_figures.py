"""The README's figure table is generated from bench/RESULTS.md, the one
home of benchmark figures; this fails when the two disagree."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_readme_figures_match_bench_results():
    out = subprocess.run(
        [sys.executable, "-m", "bench.readme_table", "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr


def test_the_table_is_the_results_headlines():
    sys.path.insert(0, str(ROOT))
    try:
        from bench import readme_table
    finally:
        sys.path.remove(str(ROOT))
    results = (ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    rows = readme_table.headlines(results)
    assert rows and all(name and figure for name, figure in rows)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index(readme_table.START) : readme.index(readme_table.END)]
    assert all(f"| {name} | {figure} |" in block for name, figure in rows)
    # A changed figure in RESULTS.md makes the check fail.
    changed = results.replace(rows[0][1], rows[0][1] + " (changed)", 1)
    assert readme_table.rewrite(readme, readme_table.table(changed)) != readme
