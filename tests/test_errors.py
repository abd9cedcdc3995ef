"""A user's mistake against a bug: every mistake raises
``InvalidInputError`` (a ``DsqaError`` and a ``ValueError``) and the CLI says
it in one line; a bare ``ValueError`` from inside dsqa is a bug, so the CLI
lets its traceback through and the page logs it and says something went
wrong, instead of passing it off as the user's fault."""

from __future__ import annotations

import logging
import shutil

import pytest
from _helpers import invoke
from conftest import CORPUS, FakeEmbedder, registered

from dsqa import DSQA, DsqaError, InvalidInputError, Settings
from dsqa.evaluation import load_questions
from dsqa.settings import normalise_origin, parse_threshold


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, built_cli_index) -> Settings:
    """The bundled notes indexed with the CLI's chunking and the fake model
    (a copy of the session's index); the mistakes below never change it."""
    root = tmp_path_factory.mktemp("mistakes")
    shutil.copytree(CORPUS, root / "corpus")
    shutil.copytree(built_cli_index, root / "index")
    with registered("fake-hash", FakeEmbedder):
        yield Settings(corpus_dir=root / "corpus", index_dir=root / "index", model="fake-hash")


QUESTION_FILES = {
    "not-json": (b'{"id": "q1", "question": "what is a pod"\n', "questions.jsonl:1: not a question record"),
    "no-answers": (b'{"id": "q1", "question": "what is a pod"}\n', "questions.jsonl:1: not a question record"),
    "empty": (b"\n\n", "holds no questions"),
    "not-utf8": ('{"id": "q1", "question": "caf\u00e9", "answers": []}\n'.encode("latin-1"), "cannot read the questions"),
}

CLI_MISTAKES = {
    "empty question": (["ask", "   "], "the question is empty"),
    "long question": (["ask", "docker " * 400], "the limit is 2,000"),
    "k of 0": (["ask", "docker", "-k", "0"], "k must be between 1 and 100"),
    "k of 101": (["search", "docker", "-k", "101"], "k must be between 1 and 100"),
    "unknown note": (["search", "docker", "--note", "nope"], "no note 'nope' in the index"),
    "ambiguous note": (["search", "docker", "--note", "notes/"], "is ambiguous"),
    "blank note": (["search", "docker", "--note", " "], "non-empty note name"),
    "threshold": (["ask", "docker", "--refusal-threshold", "abc"], "--refusal-threshold must be a number"),
    "ray address": (["reindex", "--ray", " "], "the Ray address is empty"),
    "origin": (["serve", "--port", "0", "--allow-origin", "localhost:3000"], "scheme://host"),
    **{f"questions {name}": (["eval", name], message) for name, (_, message) in QUESTION_FILES.items()},
}


@pytest.mark.parametrize("args, message", CLI_MISTAKES.values(), ids=CLI_MISTAKES.keys())
def test_each_mistake_is_one_line_from_the_cli(indexed, tmp_path, args, message):
    if args[0] == "eval":
        path = tmp_path / "questions.jsonl"
        path.write_bytes(QUESTION_FILES[args[1]][0])
        args = ["eval", str(path)]
    r = invoke(indexed, *args)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.exception, r.output)
    assert message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output


def test_each_mistake_raises_invalid_input_from_the_library(indexed, tmp_path):
    engine = DSQA(indexed)
    mistakes = [
        lambda: engine.ask("   "),
        lambda: engine.ask(b"docker"),
        lambda: engine.ask("docker " * 400),
        lambda: engine.ask("docker", k=0),
        lambda: engine.search("docker", k=101),
        lambda: engine.search("docker", k=2.5),
        lambda: engine.search("docker", notes=["nope"]),
        lambda: engine.search("docker", notes=["notes/"]),
        lambda: engine.search("docker", notes=[""]),
        lambda: engine.search("docker", notes=123),
        lambda: Settings(k=0),
        lambda: Settings(k=101),
        lambda: Settings(k=8, max_k=5),
        lambda: Settings(max_k=0),
        lambda: Settings(chunk_tokens=3),
        lambda: Settings(chunk_overlap_tokens=500),
        lambda: Settings(weak_margin=-1),
        lambda: Settings(refusal_threshold=float("nan")),
        lambda: Settings(ray_address=" "),
        lambda: parse_threshold("abc", "--refusal-threshold"),
        lambda: normalise_origin("localhost:3000"),
    ]
    for content, _ in QUESTION_FILES.values():
        path = tmp_path / f"q{len(mistakes)}.jsonl"
        path.write_bytes(content)
        mistakes.append(lambda path=path: load_questions(path))
    for n, mistake in enumerate(mistakes):
        with pytest.raises(InvalidInputError) as caught:
            mistake()
        assert isinstance(caught.value, DsqaError) and isinstance(caught.value, ValueError), n
        assert "\n" not in str(caught.value), n


def _a_bug(*args, **kwargs):
    raise ValueError("a bug deep inside the engine")


def test_a_bugs_value_error_in_the_cli_is_a_traceback(indexed, monkeypatch):
    monkeypatch.setattr(DSQA, "search", _a_bug)
    r = invoke(indexed, "search", "docker")
    # Not turned into a one-line "Error: ..." and exit 1 (SystemExit): the
    # exception leaves the command, and Python prints its traceback.
    assert type(r.exception) is ValueError and r.exc_info is not None, r.output
    assert "Error: a bug" not in r.output
    with pytest.raises(ValueError, match="a bug deep inside"):
        invoke(indexed, "search", "docker", catch_exceptions=False)


def test_a_bugs_value_error_in_the_page_is_logged_not_blamed_on_the_user(indexed, monkeypatch, caplog):
    gr = pytest.importorskip("gradio")
    from dsqa.web.handlers import PageHandlers

    engine = DSQA(indexed)
    page = PageHandlers(engine)
    with caplog.at_level(logging.ERROR, logger="dsqa"):
        answer_html, _ = page.ask("", 5, None)  # the user's mistake: said as it is, nothing logged
    assert "the question is empty" in answer_html and not caplog.records

    monkeypatch.setattr(engine, "ask", _a_bug)
    with caplog.at_level(logging.ERROR, logger="dsqa"):
        answer_html, passages_html = page.ask("docker", 5, None)
    assert "something went wrong" in answer_html and "server log" in answer_html and passages_html == ""
    assert caplog.records and caplog.records[-1].exc_info is not None, "no traceback in the server log"
    with pytest.raises(gr.Error, match="something went wrong"):
        page.ask_json_endpoint()("docker")


def test_every_error_dsqa_raises_is_exported():
    """A caller catches dsqa's errors by name from ``dsqa`` itself: each
    ``DsqaError`` of dsqa.errors is in ``dsqa.__all__``."""
    import inspect

    import dsqa
    from dsqa import errors

    defined = {name for name, obj in inspect.getmembers(errors, inspect.isclass) if issubclass(obj, DsqaError)}
    assert {"IndexNotAFolderError", "ClusterError"} <= defined
    assert defined <= set(dsqa.__all__)
    assert all(getattr(dsqa, name) is getattr(errors, name) for name in defined)
