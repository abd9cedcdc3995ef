"""An index belongs to the notes folder it was built from: the demo notes
keep the committed index, a folder of one's own gets its own index in the
per-user data directory, and no command ever rewrites one folder's index with
another folder's notes. Fake model throughout (milliseconds)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPUS, INDEX, ROOT

import dsqa
from dsqa import DSQA, IndexMissingError, IndexWriteError, Settings, paths, storage
from dsqa.build.freshness import check_corpus
from dsqa.build.progress import ConsoleProgress, Step
from dsqa.build.reindex import reindex
from dsqa.cli import cli
from dsqa.engine import resolve_note
from dsqa.errors import CorpusMismatchError


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (dot files too) and a hash of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def my_notes(tmp_path):
    """A folder of one's own, unlike the demo notes."""
    folder = tmp_path / "my notes"
    folder.mkdir()
    (folder / "raft.md").write_text("# Raft\nRaft elects a leader with randomized election timeouts.\n")
    (folder / "pods.md").write_text("# Pods\nA pod is the smallest deployable unit in Kubernetes.\n")
    return folder


@pytest.fixture
def demo_copy(tmp_path):
    """A copy of the committed index, beside no corpus of its own."""
    dst = tmp_path / "copied-index"
    shutil.copytree(INDEX, dst, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
    return dst


# -- the rule: another folder's index is never rewritten ----------------------------


def test_another_folders_index_is_never_rewritten(my_notes, demo_copy, fake_model):
    before = snapshot(demo_copy)
    engine = DSQA(corpus_dir=my_notes, index_dir=demo_copy, model="fake-hash")
    attempts = {
        "ask": lambda: engine.ask("how is a leader elected"),
        "search": lambda: engine.search("pod"),
        "status": engine.status,
        "reindex": engine.reindex,
        "reindex --full": lambda: engine.reindex(full=True),
    }
    for what, attempt in attempts.items():
        with pytest.raises(CorpusMismatchError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message, what
        # the copy names its notes as its sibling ../corpus, not my_notes
        assert f"{demo_copy} belongs to {demo_copy.parent / 'corpus'}, not to {my_notes}" in message, what
        assert f"`dsqa reindex --corpus {shlex.quote(str(my_notes))} --model fake-hash`" in message, what
        assert snapshot(demo_copy) == before, f"{what} changed the index"
    assert fake_model.calls == 0


def test_the_cli_refuses_too_and_following_its_advice_works(my_notes, demo_copy, fake_model):
    before = snapshot(demo_copy)
    r = CliRunner().invoke(cli, ["ask", "what is a pod", "--corpus", str(my_notes), "--index", str(demo_copy), "--model", "fake-hash"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert snapshot(demo_copy) == before
    command = r.output.split("`")[1]
    r = CliRunner().invoke(cli, shlex.split(command)[1:])
    assert r.exit_code == 0, r.output
    assert "full rebuild: 2 notes" in r.output
    assert snapshot(demo_copy) == before
    own = paths.index_dir_for(my_notes)
    assert own.is_relative_to(Path(os.environ["XDG_DATA_HOME"]))
    answer = DSQA(corpus_dir=my_notes, model="fake-hash", auto_reindex=False).ask("what is a pod")
    assert answer.passages[0].source == "pods.md"


def test_a_clone_or_a_copy_of_corpus_and_index_together_still_match(tmp_path, fake_model):
    """The committed index names its notes as ``../corpus``, relative to the
    index: a clone elsewhere, an installed wheel and a copy of both folders
    side by side all match, so a copy can be updated in place."""
    manifest = storage.read_manifest(INDEX)
    assert manifest["corpus"] == "../corpus"
    check_corpus(Settings(), manifest)
    shutil.copytree(CORPUS, tmp_path / "corpus")
    shutil.copytree(INDEX, tmp_path / "index", ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
    check_corpus(Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index"), manifest)
    with pytest.raises(CorpusMismatchError):
        check_corpus(Settings(corpus_dir=tmp_path / "corpus", index_dir=INDEX), manifest)


def test_an_index_records_its_folder(settings, tmp_path, my_notes):
    reindex(settings)
    assert storage.read_manifest(settings.index_dir)["corpus"] == "../corpus"  # beside it
    elsewhere = Settings(corpus_dir=my_notes, index_dir=tmp_path / "a" / "b" / "idx", model="fake-hash")
    reindex(elsewhere)
    assert storage.read_manifest(elsewhere.index_dir)["corpus"] == str(my_notes.resolve())


def test_an_index_from_before_the_record_is_adopted_on_its_next_write(built):
    settings = built.settings
    gen = storage.current_generation(settings.index_dir)
    manifest = json.loads((gen / storage.MANIFEST).read_text())
    del manifest["corpus"]
    (gen / storage.MANIFEST).write_text(json.dumps(manifest))
    report = reindex(settings)
    assert report.wrote and report.embedded == 0 and "did not record its notes folder" in str(report)
    assert storage.read_manifest(settings.index_dir)["corpus"] == "../corpus"
    assert not reindex(settings).wrote


# -- defaults: the demo, and folders of one's own -----------------------------------


@pytest.fixture
def demo(tmp_path, monkeypatch):
    """The demo notes and their index, copied where a test may harm them, and
    made the bundled ones."""
    root = tmp_path / "bundled"
    shutil.copytree(CORPUS, root / "corpus")
    shutil.copytree(INDEX, root / "index", ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
    monkeypatch.setattr(paths, "bundled_corpus", lambda: root / "corpus")
    monkeypatch.setattr(paths, "bundled_index", lambda: root / "index")
    monkeypatch.delenv("DSQA_CORPUS", raising=False)
    monkeypatch.delenv("DSQA_INDEX", raising=False)
    return root


def test_defaults_are_the_demo_and_a_folder_gets_its_own_index(demo, my_notes, fake_model):
    assert Settings().corpus_dir == demo / "corpus" and Settings().index_dir == demo / "index"
    before = snapshot(demo / "index")
    answer = dsqa.ask("how is a leader elected", corpus_dir=my_notes, model="fake-hash")
    assert answer.passages[0].source == "raft.md"
    assert snapshot(demo / "index") == before
    own = Settings(corpus_dir=my_notes).index_dir
    assert own.parent == Path(os.environ["XDG_DATA_HOME"]) / "dsqa" / "indexes"
    assert own.name.startswith("my_notes-") and (own / "CURRENT").exists()
    assert Settings().with_(corpus_dir=my_notes).index_dir == own
    with pytest.raises(CorpusMismatchError, match=r"belongs to the demo notes \("):
        DSQA(corpus_dir=my_notes, index_dir=demo / "index", model="fake-hash").search("pod")
    # one index per folder, even of the same name
    twin = my_notes.parent / "elsewhere" / "my notes"
    shutil.copytree(my_notes, twin)
    assert Settings(corpus_dir=twin).index_dir != own


def test_environment_corpus_without_index_builds_its_own(demo, my_notes, fake_model, monkeypatch):
    monkeypatch.setenv("DSQA_CORPUS", str(my_notes))
    before = snapshot(demo / "index")
    r = CliRunner().invoke(cli, ["search", "smallest", "deployable", "unit", "-k", "1", "--model", "fake-hash"])
    assert r.exit_code == 0, r.output
    assert "[1] pods.md:1-2" in r.output
    assert "no index of" in r.output  # the one summary line on stderr (not a terminal)
    assert snapshot(demo / "index") == before


def test_missing_index_names_the_whole_command(demo, my_notes, fake_model):
    engine = DSQA(corpus_dir=my_notes, model="fake-hash", auto_reindex=False)
    with pytest.raises(IndexMissingError) as info:
        engine.ask("pod")
    assert f"`dsqa reindex --corpus {shlex.quote(str(my_notes))} --model fake-hash`" in str(info.value)
    r = CliRunner().invoke(cli, shlex.split(str(info.value).split("`")[1])[1:])
    assert r.exit_code == 0, r.output
    assert engine.ask("pod").passages[0].source == "pods.md"


def test_an_installed_demo_index_is_read_not_written(tmp_path, monkeypatch, fake_model, caplog):
    """In a wheel the demo index is package data: a stale one is answered
    from as it is, and a reindex names the command that builds a copy."""
    package = tmp_path / "site-packages" / "dsqa"
    shutil.copytree(CORPUS, package / "corpus")
    settings = Settings(corpus_dir=package / "corpus", index_dir=package / "index", model="fake-hash")
    reindex(settings)
    monkeypatch.setattr(paths, "PACKAGE_DIR", package)
    (package / "corpus" / "notes" / "new.md").write_text("# New\nzookeeper\n")
    before = snapshot(package / "index")
    assert DSQA(settings).ask("docker swarm").passages
    with pytest.raises(IndexWriteError, match=r"installed dsqa package.*`dsqa reindex --index \S+/dsqa/indexes/demo --model fake-hash`"):
        DSQA(settings).reindex()
    assert snapshot(package / "index") == before


# -- the command line: words without quotes, note prefixes, progress ----------------


def test_question_words_need_no_quotes(settings, fake_model):
    base = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-hash"]
    r = CliRunner().invoke(cli, ["ask", "what", "is", "docker", "swarm", "-k", "2", "--json", *base])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output[r.output.index("{"):])["question"] == "what is docker swarm"
    r = CliRunner().invoke(cli, ["search", "docker", "swarm", "--json", "--note", "unlimitediw", *base])
    assert r.exit_code == 0, r.output
    assert {p["source"] for p in json.loads(r.output)} == {"notes/unlimitediw-dist-sys-notes.md"}


def test_note_prefixes():
    sources = ["notes/docker-a.md", "notes/docker-b.md", "notes/k8s.md", "other/k8s.md"]
    assert resolve_note("docker-a", sources) == "notes/docker-a.md"
    assert resolve_note("other/k", sources) == "other/k8s.md"
    assert resolve_note("Docker-B", sources) == "notes/docker-b.md"
    with pytest.raises(ValueError, match="ambiguous: it matches notes/docker-a.md, notes/docker-b.md"):
        resolve_note("dock", sources)
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_note("k8s", sources)
    with pytest.raises(ValueError, match="no note 'zoo'"):
        resolve_note("zoo", sources)


def test_reindex_reports_stages_then_chunks(settings):
    steps: list[Step] = []
    report = reindex(settings, progress=steps.append)
    stages = [s.stage for s in steps]
    assert stages[:2] == ["model", "read"] and steps[1].message == "reading 5 notes…"
    assert stages[-2:] == ["write", "done"] and set(stages[2:-2]) == {"embed"}
    embed = [s for s in steps if s.stage == "embed"]
    assert all(s.total == report.embedded == report.total_chunks for s in embed)
    assert [s.done for s in embed] == sorted(s.done for s in embed) and embed[-1].done == report.total_chunks


def test_console_progress_counts_chunks():
    out = io.StringIO()
    show = ConsoleProgress(out)
    show(Step("model", "loading model…"))
    show(Step("read", "reading 5 notes…"))
    for done in (0, 100, 354):
        show(Step("embed", "embedding", done, 354))
    show(Step("done", "full rebuild"))
    text = out.getvalue()
    assert text.startswith("loading model…\nreading 5 notes…\n")
    assert "/354 [" in text and "chunk/s" in text and "text" not in text


def test_reindex_on_a_terminal_shows_progress_from_the_start(settings):
    """The real command under a pseudo-terminal (with the fake model,
    registered by a small launcher)."""
    import pty

    launcher = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); from conftest import FakeEmbedder; "
        "from dsqa import register_model; register_model('fake-hash', FakeEmbedder); "
        "from dsqa.cli import main; sys.argv = ['dsqa'] + sys.argv[1:]; main()"
    )
    args = ["reindex", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-hash"]
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", launcher, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=terminal, cwd=ROOT)
    os.close(terminal)
    stdout = proc.communicate(timeout=120)[0].decode()
    seen = b""
    while True:
        try:
            block = os.read(controller, 4096)
        except OSError:
            break
        if not block:
            break
        seen += block
    os.close(controller)
    assert proc.returncode == 0, seen
    shown = seen.decode()
    assert shown.index("loading model…") < shown.index("reading 5 notes…") < shown.index("chunk")
    assert stdout.startswith("full rebuild: 5 notes")
