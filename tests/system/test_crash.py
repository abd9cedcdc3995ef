"""Crash safety: a reindex killed with SIGKILL at any moment leaves the old
index or the new one, loadable and consistent, and the next question is
answered (issue 4, item 3).

Each trial copies one built index and its corpus, changes the corpus (a note
added, one edited, one deleted), and runs tests/_crash_driver.py, a reindex
with the fake model that announces each step (an embedding batch, each file
written, the rename, the switch of CURRENT, the clean-up) and pauses briefly
before doing it. The test reads those announcements and kills the process at
a chosen one, after a chosen delay: the trials are spread over every step of
a full run, with delays from none to past the step. The trials run four at a
time; the checks run afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _helpers import assert_consistent, edit_once
from conftest import CORPUS, FakeEmbedder, registered

from dsqa import DSQA, Settings, storage
from dsqa.build.freshness import corpus_diff
from dsqa.build.reindex import reindex

DRIVER = Path(__file__).resolve().parent.parent / "_crash_driver.py"
PAUSE = 0.03
TRIALS = 28
ENV = {**os.environ, "DSQA_CRASH_PAUSE": str(PAUSE), "DSQA_CRASH_BATCH": "2", "PYTHONDONTWRITEBYTECODE": "1"}
KEPT = ("anonymous-short-notes.md", "jialiang-jiang-dist-sys-notes.md")


def _settings(root: Path) -> Settings:
    return Settings(
        corpus_dir=root / "corpus", index_dir=root / "index", model="fake-hash", chunk_tokens=60, chunk_overlap_tokens=8
    )


def _change_corpus(corpus: Path, trial: int) -> None:
    (corpus / f"trial-{trial}.md").write_text(
        f"# Trial {trial}\n\n"
        + "\n\n".join(f"Paragraph {p} of trial {trial}: gossip spreads membership news to node {p}." for p in range(12))
    )
    edit_once(corpus / "jialiang-jiang-dist-sys-notes.md", "* 1. Docker and Containers", f"* 1. Docker and Containers (trial {trial})")
    (corpus / "gone.md").unlink()


@dataclass
class Trial:
    number: int
    root: Path
    target: int  # index of the announced step at which to kill
    delay: float
    lines: list[str] = field(default_factory=list)
    killed: bool = False

    @property
    def last_step(self) -> str:
        return self.lines[-1] if self.lines else ""


def _run(trial: Trial) -> Trial:
    s = _settings(trial.root)
    child = subprocess.Popen(
        [sys.executable, str(DRIVER), str(s.corpus_dir), str(s.index_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    try:
        for line in child.stdout:
            trial.lines.append(line.strip())
            if len(trial.lines) - 1 == trial.target:
                time.sleep(trial.delay)
                if child.poll() is None:
                    child.send_signal(signal.SIGKILL)
                    trial.killed = True
                break
        rest, _ = child.communicate(timeout=30)
        trial.lines.extend(rest.split())  # steps it announced before the kill landed
        if trial.killed and child.returncode != -signal.SIGKILL:
            trial.killed = False  # finished before the signal arrived
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return trial


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    model = FakeEmbedder()
    root = tmp_path_factory.mktemp("crash-baseline")
    (root / "corpus").mkdir()
    for name in KEPT:
        shutil.copy2(CORPUS / "notes" / name, root / "corpus" / name)
    (root / "corpus" / "gone.md").write_text("# Gone\n\nA note each trial deletes.\n")
    with registered("fake-hash", lambda: model):
        reindex(_settings(root))
        yield root


def _copy(baseline: Path, root: Path, number: int) -> Path:
    shutil.copytree(baseline, root, symlinks=True)
    _change_corpus(root / "corpus", number)
    return root


@pytest.mark.slow
def test_killed_reindex_leaves_a_consistent_index(baseline, tmp_path):
    old_manifest = storage.read_manifest(baseline / "index")
    old_gen = storage.current_generation(baseline / "index").name

    # One uninterrupted run lists the steps of a reindex.
    calibration = _run(Trial(-1, _copy(baseline, tmp_path / "calibration", 0), target=10**6, delay=0))
    steps = [line for line in calibration.lines if not line.startswith("done")]
    assert calibration.lines[-1].startswith("done 1 note unchanged, 1 added"), calibration.lines
    assert sum(s.startswith("embed") for s in steps) >= 5
    assert {"fsync+checksum chunks.jsonl", "write ann_entries.npy", "write vectors.faiss", "write bm25", "write manifest.json"} <= set(steps)
    assert any(s.startswith("replace .tmp-CURRENT") for s in steps) and any(s.startswith("rmtree gen-") for s in steps)

    # A third of the trials over the embedding steps, the rest over the writing.
    embedding = [i for i, s in enumerate(steps) if s.startswith(("start", "embed"))]
    writing = [i for i in range(len(steps)) if i not in embedding]
    n_embed = TRIALS // 3
    targets = [embedding[n * len(embedding) // n_embed] for n in range(n_embed)] + [
        writing[n * len(writing) // (TRIALS - n_embed)] for n in range(TRIALS - n_embed)
    ]
    trials = [
        Trial(
            n,
            _copy(baseline, tmp_path / f"trial-{n}", n),
            target=target,
            delay=PAUSE * (n % 4) / 2,  # before the step, during it, just after it
        )
        for n, target in enumerate(targets)
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        trials = list(pool.map(_run, trials))
    elapsed = time.perf_counter() - started

    outcomes = {"old": 0, "new": 0}
    where = {"embedding": 0, "writing": 0}
    for trial in trials:
        s = _settings(trial.root)
        index = storage.load(s.index_dir)  # never raises: old or new, complete
        assert_consistent(index)
        if index.path.name == old_gen:
            assert index.manifest == old_manifest
            outcomes["old"] += 1
        else:
            assert corpus_diff(s.corpus_dir, index.manifest).clean, (trial.number, trial.last_step)
            assert f"trial-{trial.number}.md" in index.manifest["notes"]
            outcomes["new"] += 1
        if trial.killed:
            where["embedding" if trial.last_step.startswith(("embed", "start")) else "writing"] += 1
        # The next question brings the index up to date and is answered.
        answer = DSQA(s).ask(f"gossip membership news trial {trial.number}")
        assert answer.passages and answer.passages[0].source == f"trial-{trial.number}.md"
        assert DSQA(s).status().up_to_date
        # Whatever the killed writer left (a temporary folder, the previous
        # generation) goes at the next reindex, even one with nothing to do.
        reindex(s)
        leftovers = sorted(p.name for p in s.index_dir.iterdir() if p.name not in (".lock", storage.POINTER))
        assert len(leftovers) == 1 and leftovers[0].startswith("gen-"), leftovers

    killed = sum(t.killed for t in trials)
    assert killed >= 20, [(t.number, t.killed, t.last_step) for t in trials]
    assert where["embedding"] >= 5 and where["writing"] >= 12, where
    assert outcomes["old"] >= 5 and outcomes["new"] >= 1, outcomes
    print(f"\n{killed} kills ({where}), {outcomes}, trials took {elapsed:.1f} s, checks {time.perf_counter() - started - elapsed:.1f} s")
