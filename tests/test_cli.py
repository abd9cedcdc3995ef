"""The CLI in-process through click's runner (fake model), and as the
installed ``dsqa`` command in a subprocess (real model)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import invoke
from click.testing import CliRunner

from dsqa import Settings
from dsqa.cli import cli


def test_reindex_ask_search_json(cli_settings):
    r = invoke(cli_settings, "reindex")
    assert r.exit_code == 0, r.output
    assert "full rebuild: 5 notes" in r.output
    r = invoke(cli_settings, "ask", "docker swarm", "-k", "2")
    assert r.exit_code == 0, r.output
    assert "\n[1] notes/" in r.output and "\n[2] notes/" in r.output
    r = invoke(cli_settings, "ask", "docker swarm", "--json")
    data = json.loads(r.output)
    assert data["question"] == "docker swarm" and data["found"] is True and len(data["passages"]) == 5
    assert {"text", "source", "heading", "start_line", "end_line", "score", "citation"} <= set(data["passages"][0])
    r = invoke(cli_settings, "search", "hadoop", "-k", "3", "--json")
    assert len(json.loads(r.output)) == 3
    r = invoke(cli_settings, "status", "--json")
    assert json.loads(r.output)["up_to_date"] is True
    r = invoke(cli_settings, "reindex")
    assert "index up to date" in r.output


def test_search_prints_passages_as_ask_does(cli_built):
    """One printer for both: the passages ``search`` lists are the tail of
    what ``ask`` prints for the same query and k."""
    searched = invoke(cli_built, "search", "docker", "swarm", "-k", "3")
    asked = invoke(cli_built, "ask", "docker swarm", "-k", "3")
    assert searched.exit_code == 0 and asked.exit_code == 0, searched.output + asked.output
    assert searched.output.startswith("[1] notes/") and "\n[3] notes/" in searched.output
    assert asked.output.endswith(searched.output.rstrip("\n") + "\n")


def test_errors_are_one_line_and_nonzero(cli_built, tmp_path):
    r = invoke(cli_built.with_(index_dir=tmp_path / "none"), "ask", "docker", "--no-auto-reindex")
    assert r.exit_code == 1
    assert "no index in" in r.output and "dsqa reindex --corpus" in r.output and "Traceback" not in r.output
    for args in (["ask", "   "], ["ask", "docker", "-k", "0"], ["search", "x", "--note", "nope"]):
        r = invoke(cli_built, *args)
        assert r.exit_code == 1, args
        assert len(r.output.strip().splitlines()) == 1, r.output
    r = CliRunner().invoke(cli, ["reindex", "--corpus", str(tmp_path / "missing"), "--index", str(tmp_path / "i"), "--model", "fake-hash"])
    assert r.exit_code == 1 and "does not exist" in r.output


def test_refusal_threshold_from_the_flag_and_the_environment(cli_built, monkeypatch):
    confidence = json.loads(invoke(cli_built, "ask", "docker swarm", "--json").output)["confidence"]
    r = invoke(cli_built, "ask", "docker swarm", "--refusal-threshold", "5")
    assert r.exit_code == 0 and r.output.startswith("The notes do not seem to cover this. The nearest passages")
    # Just below the threshold: the closest match, said to be one.
    r = invoke(cli_built, "ask", "docker swarm", "--refusal-threshold", str(confidence + 0.01))
    assert r.output.startswith("Closest match, low confidence:\n") and "\n[1] notes/" in r.output
    monkeypatch.setenv("DSQA_REFUSAL_THRESHOLD", "5")
    assert json.loads(invoke(cli_built, "ask", "docker swarm", "--json").output)["coverage"] == "not_covered"
    r = invoke(cli_built, "ask", "docker swarm", "--json", "--refusal-threshold", "-5")  # the flag wins
    assert json.loads(r.output)["coverage"] == "answered"
    for bad in ("abc", "nan", "inf", ""):
        r = invoke(cli_built, "ask", "docker swarm", "--refusal-threshold", bad)
        assert r.exit_code == 1 and "--refusal-threshold must be a number" in r.output, bad
        assert len(r.output.strip().splitlines()) == 1, r.output
    monkeypatch.setenv("DSQA_REFUSAL_THRESHOLD", "high")
    r = invoke(cli_built, "ask", "docker swarm")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert "DSQA_REFUSAL_THRESHOLD must be a number" in r.output and "'high'" in r.output


def test_serve_port_errors_are_one_line(cli_built):
    pytest.importorskip("gradio")
    for port in ("99999", "-1", "http"):
        r = invoke(cli_built, "serve", "--port", port)
        assert r.exit_code == 2 and "Invalid value for '--port'" in r.output and r.exception.__class__ is SystemExit, port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = invoke(cli_built, "serve", "--port", str(busy.getsockname()[1]))
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.exception
    assert len(r.output.strip().splitlines()) == 1 and "in use" in r.output and "--port" in r.output
    r = invoke(cli_built, "serve", "--port", "0", "--allow-origin", "localhost:3000")
    assert r.exit_code == 1 and "scheme://host" in r.output and len(r.output.strip().splitlines()) == 1


def test_allowed_origins_from_the_flag_or_the_environment_reach_the_settings(cli_settings, monkeypatch):
    pytest.importorskip("gradio")
    import dsqa.web.server

    served = []
    monkeypatch.setattr(dsqa.web.server, "serve", lambda engine, **where: served.append((engine.settings.allow_origins, where)))
    r = invoke(cli_settings, "serve", "--port", "0", "--allow-origin", "http://localhost:3000/", "--allow-origin", "https://Notes.Example")
    assert r.exit_code == 0, r.output
    assert served[-1] == (("http://localhost:3000", "https://notes.example"), {"host": "127.0.0.1", "port": 0})
    monkeypatch.setenv("DSQA_ALLOW_ORIGINS", "http://a.example, http://b.example:8080")
    assert Settings().allow_origins == ("http://a.example", "http://b.example:8080")
    invoke(cli_settings, "serve", "--port", "0")
    assert served[-1][0] == ("http://a.example", "http://b.example:8080")
    invoke(cli_settings, "serve", "--port", "0", "--allow-origin", "http://c.example")  # the flag wins
    assert served[-1][0] == ("http://c.example",)
    monkeypatch.setenv("DSQA_ALLOW_ORIGINS", "localhost:3000")
    r = invoke(cli_settings, "serve", "--port", "0")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert "DSQA_ALLOW_ORIGINS" in r.output and "scheme://host" in r.output


def test_environment_variables_choose_folders(cli_settings, monkeypatch):
    monkeypatch.setenv("DSQA_CORPUS", str(cli_settings.corpus_dir))
    monkeypatch.setenv("DSQA_INDEX", str(cli_settings.index_dir))
    r = CliRunner().invoke(cli, ["reindex", "--model", "fake-hash"])
    assert r.exit_code == 0, r.output
    assert (cli_settings.index_dir / "CURRENT").exists()


# -- the real command, real model ---------------------------------------------------

DSQA_BIN = shutil.which("dsqa", path=str(Path(sys.executable).parent)) or "dsqa"


def dsqa_cmd(*args, env=None):
    return subprocess.run([DSQA_BIN, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.real_model
def test_installed_command_on_bundled_index():
    r = dsqa_cmd("ask", "how do overlay networks do service discovery", "--json", "--no-auto-reindex")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["found"] and len(data["passages"]) == 5
    assert any("overlay" in p["text"].lower() for p in data["passages"])
    r = dsqa_cmd("search", "")
    assert r.returncode == 1 and "empty" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.real_model
def test_installed_command_on_a_folder_of_ones_own(tmp_path):
    """The first question on a new folder builds its index (in the per-user
    data directory, never the demo's) and answers; unquoted words make the
    question; off a terminal the build says one line."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "raft.md").write_text("# Raft\nRaft elects a leader with randomized election timeouts.\n")
    (corpus / "s3.md").write_text("# S3\nS3 stores objects in buckets.\n")
    env = {**os.environ, "DSQA_CORPUS": str(corpus)}
    env.pop("DSQA_INDEX", None)
    r = dsqa_cmd("search", "how", "is", "a", "leader", "chosen", "-k", "1", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("[1] raft.md:1-2 · Raft")
    assert len(r.stderr.strip().splitlines()) == 1 and "building it in" in r.stderr, r.stderr
    (own,) = (Path(os.environ["XDG_DATA_HOME"]) / "dsqa" / "indexes").iterdir()
    assert own.name.startswith("c-") and (own / "CURRENT").exists()


@pytest.mark.real_model
def test_import_in_a_fresh_interpreter_uses_bundled_index():
    # auto_reindex=False: this test must read the committed index, never rewrite it
    # and answering imports nothing only reindex needs (torch, the splitters,
    # bm25s, which writes the keyword index, and the scipy and tqdm it brings)
    heavy = ("torch", "sentence_transformers", "langchain_text_splitters", "bm25s", "scipy", "tqdm")
    code = (
        "import sys; from dsqa import ask; a = ask('what is docker swarm', k=2, auto_reindex=False); "
        "print(len(a.passages), a.passages[0].citation); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=300)
    assert r.returncode == 0, r.stderr
    first, heavy = r.stdout.splitlines()
    assert first.startswith("2 notes/")
    assert heavy == "[]"


def test_eval_kep_names_the_missing_documents_in_one_line(cli_settings, monkeypatch, tmp_path):
    """The KEP dev set's documents are not shipped: without $DSQA_KEP_SOURCE,
    or with it pointing at the wrong folder, one line says what to set."""
    monkeypatch.delenv("DSQA_KEP_SOURCE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    r = invoke(cli_settings, "eval", "--kep")
    assert r.exit_code == 1 and "set DSQA_KEP_SOURCE" in r.output and len(r.output.strip().splitlines()) == 1
    monkeypatch.setenv("DSQA_KEP_SOURCE", str(tmp_path))
    r = invoke(cli_settings, "eval", "--kep")
    assert r.exit_code == 1 and f"are not in {tmp_path}" in r.output and len(r.output.strip().splitlines()) == 1
