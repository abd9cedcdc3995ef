"""Helpers shared by the benchmark parts: timing, percentiles, child
processes with their peak memory, the machine description, tables."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The dev sets ship with dsqa; the bench re-exports them under its names.
from dsqa.evaluation import DEFAULT_DEVSET as DEVSET  # noqa: F401
from dsqa.evaluation import KEP_DEVSET as KEP_DEVSET
from dsqa.evaluation import percentile  # the rule dsqa eval reports latencies with

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DSQA = str(Path(sys.executable).parent / "dsqa")
#: The Kubernetes design documents: beside the checkout, or ``$DSQA_KEP_SOURCE``
#: (as for ``dsqa.evaluation``; a worktree's parent is not the checkout's).
KEP_SOURCE = Path(os.environ.get("DSQA_KEP_SOURCE") or ROOT.parent / "shared" / "corpora" / "kubernetes-enhancements" / "keps")


def timed_ms(func: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p50_p95(ms: Sequence[float]) -> str:
    return f"{percentile(ms, 50):.1f} / {percentile(ms, 95):.1f}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Runs ``argv[2:]`` as its child and writes the child's wall seconds and
#: peak RSS in KB (wait4) to the file ``argv[1]``. Why a launcher: on Linux a
#: child's ``ru_maxrss`` starts from the RSS of the process it was forked
#: from (the mm it had before exec counts), so every command started straight
#: from the bench process would look at least as large as the bench process;
#: started from this small one, it is its own.
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        print(f"cannot run {sys.argv[2]}: {exc}", file=sys.stderr)
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{time.perf_counter() - started} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
if code < 0:
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> tuple[float, float, str]:
    """Run a command; (wall seconds, this command's own peak RSS in MB, stdout).
    The command is started by a small launcher process (:data:`_LAUNCHER`),
    which times it and reads its peak RSS from wait4."""
    import tempfile

    # The children import dsqa from this checkout (ROOT), even where the
    # virtualenv's editable install points at another one.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="dsqa-bench-rusage-") as tmp:
        report = Path(tmp) / "rusage"
        proc = subprocess.Popen(
            [PYTHON, "-I", "-S", "-c", _LAUNCHER, str(report), *cmd],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path, **(env or {})}, cwd=cwd,
        )
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
        seconds, kb = report.read_text().split()
    return float(seconds), int(kb) / 1024, out.decode(errors="replace")


def worker(task: str, args: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``bench.worker`` TASK in a fresh interpreter (so imports, threads,
    encoder choice and memory are its own); its JSON result plus
    ``peak_rss_mb`` and ``wall_s``."""
    seconds, rss, out = run_measured([PYTHON, "-m", "bench.worker", task, json.dumps(args)], env=env)
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(rss, 1)
    result["wall_s"] = round(seconds, 2)
    return result


def uncommitted(root: Path) -> bool:
    """Whether the code measured differs from its commit: a change under
    ``dsqa/`` or ``bench/``, not counting the figures file the bench itself
    writes (a run that follows another part's ``--update`` measures the
    committed code)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "dsqa", "bench", ":(exclude)bench/RESULTS.md"],
        capture_output=True, text=True, cwd=root,
    )
    return bool(status.stdout.strip())


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "faiss", "onnxruntime", "torch", "sentence_transformers", "tokenizers"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - not installed, or no version
            versions[mod] = "-"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        dirty = uncommitted(ROOT)
    except OSError:
        commit, dirty = "?", False
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "commit": commit + (" (with uncommitted changes in dsqa/ or bench/)" if dirty else ""),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append([_fmt(c) for c in cells])

    def markdown(self) -> str:
        out = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        out += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.rows]
        if self.notes:
            out += [""] + [f"{n}" for n in self.notes]
        return "\n".join(out) + "\n"

    def text(self) -> str:
        widths = [max(len(str(x)) for x in [c] + [r[i] for r in self.rows]) for i, c in enumerate(self.columns)]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False))  # noqa: E731
        out = [self.title, line(self.columns), line(["-" * w for w in widths])] + [line(r) for r in self.rows]
        out += [f"  {n}" for n in self.notes]
        return "\n".join(out) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6
