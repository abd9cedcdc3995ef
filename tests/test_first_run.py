"""A new user's first commands (issue 24): an index folder given without
its notes, a notes folder that does not exist, ``status`` before the first
build, and ``--top``/``-n`` for ``-k``. The CLI runs in-process on the fake
model, with the per-user data directory in a temporary folder (conftest)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _helpers import invoke
from click.testing import CliRunner

from dsqa import paths
from dsqa.cli import cli

FAKE = ("--model", "fake-hash")


def _run(*args: str):
    import logging

    logger = logging.getLogger("dsqa")
    saved = logger.propagate, logger.handlers[:], logger.level
    try:
        return CliRunner().invoke(cli, [*args, *FAKE])
    finally:
        logger.propagate, logger.handlers[:], logger.level = saved


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("command", [["ask", "what is a pod"], ["search", "pod"], ["status"], ["reindex"], ["eval"]])
def test_an_index_folder_without_its_notes_is_refused(command, tmp_path, monkeypatch, fake_model):
    """``--index X`` (or $DSQA_INDEX) on a folder that holds no index, with
    no notes folder given, would index the demo notes into X: refused,
    naming both folders, and X is not made."""
    monkeypatch.delenv("DSQA_CORPUS", raising=False)
    monkeypatch.delenv("DSQA_INDEX", raising=False)
    target = tmp_path / "my-index"
    r = _run(*command, "--index", str(target))
    assert r.exit_code == 1, r.output
    (line,) = r.output.strip().splitlines()
    assert str(target) in line and str(paths.bundled_corpus()) in line and "--corpus" in line
    assert not target.exists()
    monkeypatch.setenv("DSQA_INDEX", str(target))
    r = _run(*command)
    assert r.exit_code == 1 and str(target) in r.output and not target.exists()


def test_an_index_folder_with_an_index_or_with_notes_given_is_used(cli_built, monkeypatch):
    monkeypatch.delenv("DSQA_CORPUS", raising=False)
    r = invoke(cli_built, "search", "docker swarm", "-k", "1")  # --corpus and --index
    assert r.exit_code == 0, r.output
    monkeypatch.setenv("DSQA_CORPUS", str(cli_built.corpus_dir))
    r = _run("search", "docker swarm", "-k", "1", "--index", str(cli_built.index_dir))
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("command", [["ask", "what is a pod"], ["search", "pod"], ["status"], ["reindex"], ["watch"], ["serve", "--port", "0"], ["mcp"]])
def test_a_missing_notes_folder_is_one_line_and_leaves_nothing(command, tmp_path, monkeypatch, fake_model):
    """No "building it in …" before the error, no empty index folder or lock
    left in the per-user data directory, and neither ``serve`` nor ``mcp``
    starts a server."""
    pytest.importorskip("gradio")  # serve imports the page
    pytest.importorskip("mcp")
    import dsqa.mcp
    import dsqa.web.server

    served: list[object] = []
    monkeypatch.setattr(dsqa.web.server, "serve", lambda *a, **k: served.append(a))
    monkeypatch.setattr(dsqa.mcp, "serve", lambda *a, **k: served.append(a))
    data = Path(os.environ["XDG_DATA_HOME"])
    before = _files_under(data)
    missing = tmp_path / "no-such-notes"
    r = _run(*command, "--corpus", str(missing))
    assert r.exit_code == 1, r.output
    (line,) = r.output.strip().splitlines()
    assert "does not exist" in line and str(missing) in line and "building" not in line
    assert not served
    assert _files_under(data) == before
    assert not missing.exists()


def test_status_before_the_first_build_says_how_it_gets_built(settings):
    r = invoke(settings, "status")
    assert r.exit_code == 0, r.output
    assert "not built yet; the first ask (or `dsqa reindex --corpus" in r.output and "builds it" in r.output
    data = json.loads(invoke(settings, "status", "--json").output)
    assert data["built"] is False and data["up_to_date"] is False and data["fix"].startswith("dsqa reindex --corpus")
    assert not settings.index_dir.exists()


@pytest.mark.parametrize("flag", ["-k", "--top", "-n"])
def test_top_and_n_are_k(flag, cli_built):
    r = invoke(cli_built, "search", "docker swarm", flag, "2", "--json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)) == 2
    r = invoke(cli_built, "ask", "docker swarm", flag, "3", "--json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["passages"]) == 3


@pytest.mark.parametrize("command", [["ask", "what is a pod"], ["reindex"]])
def test_a_notes_folder_with_nothing_to_index_leaves_nothing(command, tmp_path, fake_model):
    """A first build that fails (no note dsqa can read) removes the index
    folder it made, lock file and all, and the data folders made for it."""
    data = Path(os.environ["XDG_DATA_HOME"])
    before = _files_under(data)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "data.bin").write_bytes(b"\x00\x01")
    r = _run(*command, "--corpus", str(notes))
    assert r.exit_code == 1 and "no notes to index" in r.output, r.output
    assert _files_under(data) == before
    given = tmp_path / "deep" / "index"  # an --index folder it had to make, with its parent
    r = _run(*command, "--corpus", str(notes), "--index", str(given))
    assert r.exit_code == 1 and not (tmp_path / "deep").exists()
