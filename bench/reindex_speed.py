"""How long reindexing takes with the real model, on a copy of the bundled
notes and committed index (index/ itself is never touched).

    .venv/bin/python -m bench.reindex_speed [--runs 7] [--full-runs 3] [--no-cli]

Prints the median (and min-max) of:

* no-op reindex: nothing changed, in a process that has imported dsqa and
  run once (``dsqa.build.reindex.reindex``), and as the whole ``dsqa reindex``
  command (interpreter start and imports included);
* one-paragraph change: one line of a bullet edited in the largest note, so
  one or two chunks are re-embedded (model already loaded);
* full reindex of the bundled notes (``full=True``, model already loaded),
  and the one-off cost of loading the model, which the first run that embeds
  anything pays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTE = "notes/unlimitediw-dist-sys-notes.md"
LINE = "This could be a shell script or a custom app."
EDITS = ["This could be a fish script or a custom app.", "This could be a bash script or a custom app."]


def summary(times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"{statistics.median(ms):8.0f} ms  (min {min(ms):.0f}, max {max(ms):.0f}, n={len(ms)})"


def timed(func):
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of the no-op and one-paragraph cases")
    parser.add_argument("--full-runs", type=int, default=3, help="runs of the full reindex")
    parser.add_argument("--no-cli", action="store_true", help="skip timing the dsqa command in subprocesses")
    args = parser.parse_args()

    import_time, _ = timed(lambda: __import__("dsqa.build.reindex"))
    from dsqa import Settings
    from dsqa.build.reindex import reindex

    work = Path(tempfile.mkdtemp(prefix="dsqa-bench-"))
    try:
        shutil.copytree(ROOT / "corpus", work / "corpus")
        shutil.copytree(ROOT / "index", work / "index", ignore=shutil.ignore_patterns(".lock"))
        settings = Settings(corpus_dir=work / "corpus", index_dir=work / "index")
        rows: list[tuple[str, str]] = []

        # (a) nothing changed
        first, report = timed(lambda: reindex(settings))
        assert not report.wrote, f"the committed index is not up to date with corpus/: {report}"
        noop = [timed(lambda: reindex(settings))[0] for _ in range(args.runs)]
        rows.append(("import dsqa.build.reindex", f"{import_time * 1000:8.0f} ms"))
        rows.append(("no-op reindex, first call (loads faiss, bm25s, tokenizer)", f"{first * 1000:8.0f} ms"))
        rows.append(("no-op reindex, after imports", summary(noop)))
        if not args.no_cli:
            dsqa = str(Path(sys.executable).with_name("dsqa"))
            cmd = [dsqa, "reindex", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
            cli = []
            for _ in range(max(3, args.runs // 2)):
                t, r = timed(lambda: subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}))
                assert r.returncode == 0 and "index up to date" in r.stdout, r.stderr
                cli.append(t)
            rows.append(("no-op `dsqa reindex` command, whole process", summary(cli)))

        # (b) one paragraph changed
        note = settings.corpus_dir / NOTE
        original = note.read_text(encoding="utf-8")
        assert original.count(LINE) == 1

        def edit(n: int) -> None:
            note.write_text(original.replace(LINE, EDITS[n % 2]), encoding="utf-8")

        edit(0)
        load_and_edit, report = timed(lambda: reindex(settings))
        rows.append(("first embedding run (loads the model) + one-paragraph change", f"{load_and_edit * 1000:8.0f} ms"))
        para = []
        for n in range(1, args.runs + 1):
            edit(n)
            t, report = timed(lambda: reindex(settings))
            assert report.wrote and len(report.changed) == 1, report
            para.append(t)
        rows.append((f"one-paragraph change ({report.embedded} chunk(s) re-embedded, {report.reused} reused)", summary(para)))

        # (c) everything
        full = []
        for _ in range(args.full_runs):
            t, report = timed(lambda: reindex(settings, full=True))
            full.append(t)
        rows.append((f"full reindex ({len(report.added)} notes, {report.total_chunks} chunks)", summary(full)))

        width = max(len(name) for name, _ in rows)
        print(f"dsqa reindex timings, model {settings.model}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
        print(f"command: {Path(sys.executable).relative_to(ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable} "
              f"python -m bench.reindex_speed --runs {args.runs} --full-runs {args.full_runs}" + (" --no-cli" if args.no_cli else ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
