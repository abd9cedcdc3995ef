"""Property-based tests (hypothesis): any string asked gets an Answer or a
ValueError, and any bytes saved as a note leave a consistent index."""

from __future__ import annotations

import shutil

import pytest
from _helpers import assert_consistent
from conftest import CORPUS, FakeEmbedder, registered
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dsqa import DSQA, Answer, Settings, storage
from dsqa.build.freshness import corpus_diff
from dsqa.build.reindex import reindex
from dsqa.sources.formats.markdown import decode_note

SETTINGS = dict(model="fake-hash", chunk_tokens=60, chunk_overlap_tokens=8)
FEW = hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model():
    m = FakeEmbedder()
    with registered("fake-hash", lambda: m):
        yield m


@pytest.fixture(scope="module")
def engine(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("props-ask")
    (root / "corpus").mkdir()
    shutil.copy(CORPUS / "notes" / "anonymous-short-notes.md", root / "corpus")
    s = Settings(corpus_dir=root / "corpus", index_dir=root / "index", auto_reindex=False, **SETTINGS)
    reindex(s)
    return DSQA(s)


questions = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec=None, categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Cs", "Co"]), max_size=50),
    st.text(min_size=1990, max_size=2100, alphabet="ab \x00\n"),
    st.sampled_from(["docker", "S3 bucket", "--rm -p 8080:80", "??", "#", "*" * 30]),
)
ks = st.one_of(st.none(), st.integers(min_value=-3, max_value=120))


@FEW
@given(question=questions, k=ks)
def test_any_question_gets_an_answer_or_a_value_error(engine, question, k):
    try:
        answer = engine.ask(question, k=k)
    except ValueError:
        return
    assert isinstance(answer, Answer)
    assert len(answer.passages) <= (k or 5)
    assert answer.to_dict()["question"]
    str(answer)


notes = st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=3000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(
        st.sampled_from(["# Title", "## Sub", "```", "* item", "", "plain text.", "\r", "\u2028", "\x0c", "é" * 40, "a" * 500]),
        max_size=60,
    ).map(lambda lines: "\n".join(lines).encode("utf-8")),
)


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("props-notes")
    (root / "corpus").mkdir()
    (root / "corpus" / "steady.md").write_text("# Steady\nDocker swarm uses overlay networks.\n")
    return root


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=notes)
def test_any_bytes_as_a_note_leave_a_consistent_index(fuzz_root, data):
    s = Settings(corpus_dir=fuzz_root / "corpus", index_dir=fuzz_root / "index", **SETTINGS)
    (fuzz_root / "corpus" / "fuzz.md").write_bytes(data)
    report = reindex(s)
    index = storage.load(s.index_dir)
    assert_consistent(index)
    assert corpus_diff(s.corpus_dir, index.manifest).clean
    try:
        text = decode_note(data)
    except ValueError:
        text = ""
    if text.strip():
        assert "fuzz.md" in index.manifest["notes"] and not report.skipped
        # Every chunk is an exact slice of the note, so its citation is right.
        for c in index.chunks:
            if c.source == "fuzz.md":
                assert text[c.start_char : c.end_char] == c.text
                assert text.count("\n", 0, c.start_char) + 1 == c.start_line
    else:
        assert "fuzz.md" not in index.manifest["notes"] and [n for n, _ in report.skipped] == ["fuzz.md"]
    assert DSQA(s, auto_reindex=False).search("docker swarm overlay", k=3)[0].source == "steady.md"
