"""``dsqa reindex --ray``: embedding on a real (local) Ray cluster gives the
very same index as a local build. No mocks: one Ray instance for the whole
module (``ray.init(num_cpus=2)``), started once because it takes seconds.

The fake models defined here reach the Ray actors the way any registered
model does: Ray pickles the registered factory; this module and conftest are
pickled by value because the workers cannot import them by name.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import conftest
import numpy as np
import pytest
from _helpers import assert_consistent, edit_once
from conftest import CORPUS, FakeEmbedder

from dsqa import DSQA, Settings, storage
from dsqa.build.reindex import reindex
from dsqa.cli import cli
from dsqa.storage.manifest import STAT

ray = pytest.importorskip("ray")
# Ray Data warns about its own deprecated settings when it copies its context.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

ROOT = Path(__file__).resolve().parent.parent.parent
QUESTIONS = ("how do overlay networks do service discovery", "what is a docker image", "how does a swarm service scale")


@pytest.fixture(scope="module")
def local_ray():
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(conftest)
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


class ActorLoggedFake(FakeEmbedder):
    """The fake model, writing each batch it embeds to a file of its own
    in ``log_dir``: what the Ray actors really embedded."""

    def __init__(self, log_dir: str) -> None:
        super().__init__()
        self.log_dir = log_dir

    def embed(self, texts, *, progress=False):
        Path(self.log_dir, f"{os.getpid()}-{uuid.uuid4().hex}.json").write_text(json.dumps(list(texts)))
        return super().embed(texts, progress=progress)


class KillOnThirdBatch(FakeEmbedder):
    """The fake model, whose process kills itself (SIGKILL, mid-run: on its
    third batch) the first time any actor gets there; the marker file
    records that it happened, and only once. Before dying it waits for the
    first batch's vectors to show up in the driver's memory-mapped file in
    ``index_dir`` (Ray hands a batch's output on about one batch later) and
    writes how many rows it saw there to the marker."""

    def __init__(self, marker: str, index_dir: str) -> None:
        super().__init__()
        self.marker = marker
        self.index_dir = index_dir

    def embed(self, texts, *, progress=False):
        if self.calls == 2:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(self.rows_on_disk()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().embed(texts, progress=progress)

    def rows_on_disk(self) -> int:
        for _ in range(300):
            for path in Path(self.index_dir).glob(".tmp-*-embedded.npy"):
                done = int(np.any(np.load(path, mmap_mode="r") != 0, axis=1).sum())
                if done:
                    return done
            time.sleep(0.1)
        return 0


def small_corpus(tmp_path: Path, names: tuple[str, ...]) -> Path:
    dst = tmp_path / "corpus" / "notes"
    dst.mkdir(parents=True)
    for name in names:
        shutil.copy2(CORPUS / "notes" / name, dst / name)
    return dst.parent


def _content(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != STAT}


def assert_same_index(a_dir: Path, b_dir: Path, *, atol: float = 0.0) -> None:
    """Two indexes hold the same thing: manifest (but its creation time and
    checksums), chunks and windows byte for byte, BM25, vectors within
    ``atol``."""
    a, b = storage.load(a_dir), storage.load(b_dir)
    assert_consistent(a)
    assert_consistent(b)

    def strip(m):
        return {k: v for k, v in m.items() if k not in ("created", "files")}

    assert strip(a.manifest) == strip(b.manifest)
    assert a.chunks == b.chunks
    np.testing.assert_array_equal(a.windows, b.windows)
    assert a.vectors.shape == b.vectors.shape
    np.testing.assert_allclose(a.vectors, b.vectors, rtol=0, atol=atol)
    for f in ("chunks.jsonl", "windows.npy"):  # size and checksum; "stat" names each copy's own inode and times
        assert _content(a.manifest["files"][f]) == _content(b.manifest["files"][f])
    # BM25: the same terms with the same scores. (Its files are equal byte
    # for byte only within one process: bm25s numbers the terms in the
    # order of a Python set, which differs with the hash seed.)
    assert a.lexical.vocabulary.keys() == b.lexical.vocabulary.keys()
    for term in a.lexical.vocabulary:
        np.testing.assert_array_equal(a.lexical.scores(term), b.lexical.scores(term))
    if atol == 0:  # built in this process: every file the same
        assert {f: _content(e) for f, e in a.manifest["files"].items()} == {f: _content(e) for f, e in b.manifest["files"].items()}


def assert_same_answers(a: Settings, b: Settings) -> None:
    for q in QUESTIONS:
        x, y = DSQA(a).ask(q), DSQA(b).ask(q)
        assert x.text == y.text
        assert [(p.citation, p.text) for p in x.passages] == [(p.citation, p.text) for p in y.passages]
        np.testing.assert_allclose([p.score for p in x.passages], [p.score for p in y.passages], atol=1e-4)


@pytest.mark.real_model
@pytest.mark.slow
def test_cli_ray_build_equals_local_build(local_ray, tmp_path):
    """`dsqa reindex --ray auto`, run as its own process that connects to
    the cluster through $RAY_ADDRESS, writes the index a local build
    writes: the real model's vectors within float tolerance (batches differ),
    everything else identical, and the same answers."""
    corpus = small_corpus(tmp_path, ("anonymous-short-notes.md",))  # the whole corpus runs in the tests below
    local = Settings(corpus_dir=corpus, index_dir=tmp_path / "local")
    on_ray = Settings(corpus_dir=corpus, index_dir=tmp_path / "ray")
    assert reindex(local).wrote

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "RAY_ADDRESS": local_ray.get_runtime_context().gcs_address}
    run = subprocess.run(
        [sys.executable, "-m", "dsqa.cli", "reindex", "--corpus", str(corpus), "--index", str(on_ray.index_dir),
         "--ray", "auto", "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["wrote"] and report["full"] and report["encoder"].startswith("ray:")

    assert_same_index(local.index_dir, on_ray.index_dir, atol=1e-5)
    assert_same_answers(local, on_ray)



@pytest.mark.slow
def test_incremental_ray_reindex_embeds_only_the_changed_texts(local_ray, settings, fake_model, tmp_path, register):
    """After one note changes, the Ray actors embed exactly the texts a
    local incremental reindex embeds, and the two indexes are equal."""
    assert reindex(settings).wrote
    twin = settings.with_(index_dir=tmp_path / "twin")
    shutil.copytree(settings.index_dir, twin.index_dir)
    edit_once(settings.corpus_dir / "notes" / "anonymous-short-notes.md", "hosted in Docker containers", "hosted in Docker images")

    local = reindex(settings)
    wanted = set(fake_model.batches[-2])  # the notes' new texts (the last call embeds the refusal calibration's questions)
    assert local.changed and 0 < len(wanted)

    log_dir = tmp_path / "actor-log"
    log_dir.mkdir()
    register("fake-hash", functools.partial(ActorLoggedFake, str(log_dir)))
    on_ray = reindex(twin.with_(ray_address="auto", ray_actors=1))
    # What the actors embedded: the driver embeds the calibration's questions itself.
    driver = f"{os.getpid()}-"
    embedded = [t for f in log_dir.iterdir() if not f.name.startswith(driver) for t in json.loads(f.read_text())]

    assert on_ray.encoder == "ray" and on_ray.embedded == local.embedded and on_ray.changed == local.changed
    assert sorted(embedded) == sorted(wanted)  # each new text once, nothing else
    assert len(embedded) < 0.1 * storage.load(twin.index_dir).manifest["vector_count"]
    assert not list(twin.index_dir.glob(".tmp-*"))  # the memory-mapped vectors went with the write
    assert_same_index(settings.index_dir, twin.index_dir)


@pytest.mark.slow
def test_vectors_stream_to_disk_and_a_worker_killed_mid_run_still_yields_an_equal_index(local_ray, settings, tmp_path, register):
    """The vectors of finished batches are in the driver's memory-mapped
    file while the run goes on; an actor SIGKILLed on its third batch is
    restarted by Ray and its batch retried: the index is complete and equal
    to a local build."""
    assert reindex(settings).wrote
    marker = tmp_path / "killed"
    on_ray = settings.with_(index_dir=tmp_path / "ray", ray_address="auto", ray_actors=1, ray_batch_size=64)
    register("fake-hash", functools.partial(KillOnThirdBatch, str(marker), str(on_ray.index_dir)))

    report = reindex(on_ray)

    on_disk = int(marker.read_text())  # an actor did die, after seeing this many rows on disk
    assert 64 <= on_disk < storage.load(on_ray.index_dir).manifest["vector_count"]
    assert report.wrote and report.total_chunks == storage.load(settings.index_dir).manifest["chunk_count"]
    assert_same_index(settings.index_dir, on_ray.index_dir)


@pytest.mark.slow
def test_an_unreachable_cluster_is_one_line_naming_the_address(local_ray, settings):
    from click.testing import CliRunner

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        result = CliRunner().invoke(
            cli,
            ["reindex", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-hash",
             "--ray", address],
        )
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: cannot reach the Ray cluster at {address}: ")
        assert not (settings.index_dir / storage.POINTER).exists()


def test_without_ray_flag_ray_is_never_imported(tmp_path):
    code = f"""
import sys
sys.path.insert(0, {str(ROOT / 'tests')!r})
from conftest import FakeEmbedder
from dsqa import register_model
from dsqa.cli import cli
from dsqa.storage.manifest import STAT
register_model("fake-hash", FakeEmbedder)
try:
    cli(["reindex", "--corpus", {str(small_corpus(tmp_path, ('anonymous-short-notes.md',)))!r},
         "--index", {str(tmp_path / 'index')!r}, "--model", "fake-hash"])
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
assert "ray" not in sys.modules, "ray was imported"
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr
