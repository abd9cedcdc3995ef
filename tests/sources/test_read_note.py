"""``DSQA.read_note``: lines of an indexed note as citations count them, read
only through the checked read of indexing (what the MCP tool ``read_note``
calls), and the JSON views of answers that the MCP server and the HTTP API
return."""

from __future__ import annotations

import os

import pytest

from dsqa import DSQA, InvalidInputError
from dsqa import engine as engine_module
from dsqa.build.reindex import reindex
from dsqa.sources.note_text import MAX_READ_LINES

BIG = "notes/unlimitediw-dist-sys-notes.md"


def file_lines(settings, source):
    return (settings.corpus_dir / source).read_text(encoding="utf-8").split("\n")


def test_read_note_gives_the_lines_a_citation_names(built):
    passage = built.search("how do overlay networks do service discovery", k=1)[0]
    read = built.read_note(passage.source, passage.start_line, passage.end_line)
    lines = file_lines(built.settings, passage.source)
    assert read.lines == lines[passage.start_line - 1 : passage.end_line]
    assert passage.text in read.text and read.citation == f"{passage.source}:{passage.start_line}-{passage.end_line}"
    assert read.total_lines == len(lines) - (lines[-1] == "") and read.kind == "markdown"
    numbered = str(read).splitlines()
    assert numbered[0] == read.citation and numbered[1].strip().startswith(str(passage.start_line))
    d = read.to_dict()
    assert d["lines"] == read.lines and d["citation"] == read.citation and d["page"] is None


def test_read_note_reads_a_capped_range_from_the_start_and_names_notes_loosely(built):
    read = built.read_note("unlimitediw-dist-sys-notes")  # a stem, as note filters take
    assert read.source == BIG and read.start_line == 1 and read.end_line == MAX_READ_LINES < read.total_lines
    tail = built.read_note(BIG, read.total_lines - 2, read.total_lines + 50)
    assert tail.end_line == read.total_lines and len(tail.lines) == 3
    assert "not shown" in str(read) and "not shown" not in str(tail)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("../secret.md",), "leads out of the notes folder"),
        (("notes/../../secret.md",), "leads out of the notes folder"),
        (("/etc/passwd",), "absolute path"),
        (("~/notes/x.md",), "absolute path"),
        (("C:\\notes\\x.md",), "absolute path"),
        (("",), "the note must be"),
        (("no-such-note",), "no note 'no-such-note' in the index"),
        ((BIG, 0), "start_line must be 1 or more"),
        ((BIG, 5, 4), "end_line 4 is before start_line 5"),
        ((BIG, 10**6), "start_line 1000000 is past its end"),
        ((BIG, 1, 2, 3), "is not a PDF"),
        ((BIG, "3"), "start_line must be a whole number"),
    ],
)
def test_read_note_refuses_with_one_line(built, args, message):
    with pytest.raises(InvalidInputError, match=message) as info:
        built.read_note(*args)
    assert "\n" not in str(info.value)


def test_a_symlink_out_of_the_folder_is_never_read(built, tmp_path, monkeypatch):
    """A link out of the folder that was there when indexing is not in the
    index; an indexed note swapped for one afterwards (before the engine
    looks at the folder again) is refused by the checked read."""
    secret = tmp_path / "outside" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("# Secret\nthe password is hunter2\n")
    corpus = built.settings.corpus_dir
    os.symlink(secret, corpus / "notes" / "leak.md")
    reindex(built.settings)
    with pytest.raises(InvalidInputError, match="no note 'notes/leak.md' in the index"):
        built.read_note("notes/leak.md")

    monkeypatch.setattr(engine_module, "STALE_CHECK_SECONDS", 3600.0)  # the index is not re-checked meanwhile
    assert BIG in built.note_names()
    (corpus / BIG).unlink()
    os.symlink(secret, corpus / BIG)
    with pytest.raises(InvalidInputError, match="symlink leads outside the corpus") as info:
        built.read_note(BIG, 1, 2)
    assert "hunter2" not in str(info.value)


def test_read_note_updates_a_stale_index_first(built):
    (built.settings.corpus_dir / "notes" / "new.md").write_text("# Fresh\nA note saved a moment ago.\n")
    read = built.read_note("notes/new.md")
    assert read.lines == ["# Fresh", "A note saved a moment ago."]


def test_pdf_pages_and_notebook_cells(tmp_path, fake_model):
    from test_formats import SLIDES, make_notebook, make_pdf, write

    from dsqa import Settings

    corpus = tmp_path / "corpus"
    write(corpus / "slides.pdf", make_pdf(SLIDES))
    write(corpus / "lab.ipynb", make_notebook())
    engine = DSQA(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash"))
    first = engine.read_note("slides.pdf")
    assert first.page == 1 and first.pages == [1, 2, 4] and first.lines[0] == "Consensus"
    hit = engine.search("snapshots compact the log", k=1, notes=["slides.pdf"])[0]
    read = engine.read_note("slides.pdf", hit.start_line, hit.end_line, page=hit.page)
    assert read.page == hit.page == 4 and hit.text.split("\n")[0] in read.lines[0]
    assert read.citation.startswith("slides.pdf p. 4, lines")
    with pytest.raises(InvalidInputError, match="has no page 3 with text; its pages with text: 1, 2, 4"):
        engine.read_note("slides.pdf", page=3)
    cells = engine.read_note("lab.ipynb")
    assert cells.kind == "notebook" and cells.cell == 1 and cells.end_cell == 5 and cells.lines[0] == "# Spark lab"


def test_the_answer_json_says_its_verdict_and_why(built):
    answer = built.ask("how do overlay networks do service discovery").to_dict()
    assert answer["verdict"] in ("answered", "low confidence", "not covered")
    assert f"{answer['confidence']:.2f}" in answer["reason"] and "refusal threshold" in answer["reason"]
    off = built.ask("zzzz qqqq xxxx").to_dict()
    assert off["verdict"] == "not covered" and off["text"] == "" and off["reason"]

