"""The answer figures of ``dsqa eval`` (issue 26): whether an answer's quoted
sentences are whole, read against the note's own text, and the study-notes
dev set that measures them on a user's kind of folder."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dsqa.cli import cli
from dsqa.evaluation import (
    STUDY_CORPUS,
    STUDY_DEVSET,
    cut_quotes,
    evaluate,
    load_questions,
    note_reader,
)
from dsqa.results import Answer, Passage
from dsqa.sources import formats

NOTE = "# Title\n\nRaft has one leader per term. It replicates the log.\n\n- Followers are passive here.\n- Votes go to one candidate.\n"


def _answer(text: str, spans: list[tuple[int, int]], source: str = "n.md", start_line: int = 3) -> Answer:
    passage = Passage(text=text, source=source, heading="Title", start_line=start_line, end_line=6, score=1.0, highlights=spans)
    return Answer("q", [passage], True, "quoted", 1.0)


def _span(text: str, quote: str) -> tuple[int, int]:
    at = text.index(quote)
    return at, at + len(quote)


def test_whole_sentences_are_not_cut_off():
    body = NOTE[NOTE.index("Raft") :]
    spans = [_span(body, "Raft has one leader per term."), _span(body, "It replicates the log."), _span(body, "Followers are passive here.")]
    assert cut_quotes(_answer(body, spans), {"n.md": NOTE}.get) == (0, 3)


def test_a_quote_that_starts_or_ends_inside_a_sentence_is_cut_off():
    body = NOTE[NOTE.index("Raft") :]
    spans = [_span(body, "has one leader per term."), _span(body, "Votes go to one")]
    assert cut_quotes(_answer(body, spans), {"n.md": NOTE}.get) == (2, 2)


def test_a_quote_from_a_note_that_cannot_be_read_counts_as_cut_off():
    body = NOTE[NOTE.index("Raft") :]
    assert cut_quotes(_answer(body, [_span(body, "It replicates the log.")]), {}.get) == (1, 1)


def test_the_passage_is_placed_at_its_cited_line_when_its_text_repeats():
    note = "Same line of text here.\n\nSame line of text here. And more words follow it.\n"
    body = "Same line of text here. And more words follow it."
    # At line 3 the quote's start is a sentence start; at line 1 the
    # passage's text would not even match, so placing it matters.
    assert cut_quotes(_answer(body, [_span(body, "And more words follow it.")], start_line=3), {"n.md": note}.get) == (0, 1)


def test_evaluate_reports_cut_off_quotes_and_the_questions_they_answer(tmp_path):
    (tmp_path / "n.md").write_text(NOTE, encoding="utf-8")
    body = NOTE[NOTE.index("Raft") :]
    questions = load_questions(_questions(tmp_path))
    answers = {"whole": _answer(body, [_span(body, "It replicates the log.")]), "cut": _answer(body, [_span(body, "replicates the log.")])}
    report = evaluate("t", questions, lambda q: answers[q], note_text=note_reader(tmp_path))
    assert (report.cut_quotes, report.quotes, report.cut) == (1, 2, ["q2"])
    assert report.to_dict()["cut_off_sentences"] == 1


def _questions(folder: Path) -> Path:
    path = folder / "q.jsonl"
    path.write_text(
        '{"id": "q1", "question": "whole", "answers": [{"note": "n.md", "phrase": "replicates the log"}]}\n'
        '{"id": "q2", "question": "cut", "answers": [{"note": "n.md", "phrase": "replicates the log"}]}\n',
        encoding="utf-8",
    )
    return path


def test_study_devset_is_well_formed():
    questions = load_questions(STUDY_DEVSET)
    assert sum(q.answerable for q in questions) >= 20
    assert sum(not q.answerable for q in questions) >= 10
    assert sum(q.kind == "passing" for q in questions) >= 5  # named in the notes only in passing
    texts = {p.name: formats.read(p.name, p.read_bytes()).text for p in STUDY_CORPUS.iterdir()}
    assert {Path(n).suffix for n in texts} >= {".md", ".txt", ".pdf", ".html"}
    norm = lambda s: " ".join(s.lower().split())  # noqa: E731
    for q in questions:
        for note, phrase in q.answers:
            assert norm(texts[note]).count(norm(phrase)) == 1, (q.id, note, phrase)


def test_study_notes_are_hard_wrapped():
    for path in STUDY_CORPUS.glob("*.md"):
        lines = path.read_text(encoding="utf-8").split("\n")
        assert max(map(len, lines)) <= 90, path.name
        assert sum(len(line) >= 78 for line in lines) >= 5, path.name  # wrapped, not one line per paragraph


def test_study_pdf_is_what_its_script_writes(tmp_path):
    from bench.study_pdf import build

    made = build(tmp_path / "made.pdf")
    assert formats.read("x.pdf", made.read_bytes()).text == formats.read("x.pdf", (STUDY_CORPUS / "cap-consistency.pdf").read_bytes()).text


def test_eval_study_runs_the_study_devset(fake_model, monkeypatch, tmp_path):
    monkeypatch.setenv("DSQA_CACHE", str(tmp_path / "cache"))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# A\n\nDocker runs containers from images.\n", encoding="utf-8")
    args = ["eval", str(STUDY_DEVSET), "--study", "--model", "fake-hash", "--index", str(tmp_path / "index"), "--corpus", str(tmp_path / "notes")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    # The given questions on the given folder, then the study set on its own folder's index.
    assert result.output.count("study:hybrid") == 2 and "cut-off quotes" in result.output
    assert (tmp_path / "cache" / "study-index").is_dir()


def test_a_pdf_is_cut_into_sentences_section_by_section_without_its_titles():
    from dsqa.evaluation import note_sentences
    from dsqa.sources.formats import Layout

    text = "PACELC\nAbadi's extension of CAP says more than CAP. It explains the latency.\n"
    layout = Layout(sections=((0, 2, "PACELC"),), unit="page", unit_starts=(0,), unit_numbers=(1,))
    sentences = [text[a:b] for a, b in note_sentences(text, layout)]
    assert sentences[0] == "Abadi's extension of CAP says more than CAP."


def test_an_answer_states_a_fact_whose_code_span_the_note_writes_with_three_backticks():
    from dsqa.evaluation import Question, answer_quotes_it

    body = "SageMaker trains TensorFlow with the ```sagemaker.tensorflow.TensorFlow``` estimator class."
    question = Question("q1", "which estimator class", "fact", (("n.md", "```sagemaker.tensorflow.TensorFlow``` estimator class"),))
    # The answer shows code spans with one backtick (dsqa.query.answering.answer_text).
    shown = Answer("q", [Passage(text=body, source="n.md", heading="T", start_line=1, end_line=1, score=1.0)], True,
                   "SageMaker trains TensorFlow with the `sagemaker.tensorflow.TensorFlow` estimator class. [1]", 1.0)
    assert answer_quotes_it(shown, question)
