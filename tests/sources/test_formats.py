"""Notes as PDF, saved web pages and Jupyter notebooks: every test corpus is
made here (PDFs with fpdf2, a dev dependency; HTML and notebook JSON by
hand), indexed with the fake model, and every chunk's citation is checked
against the file by reading it again with the same reader."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from dsqa import DSQA, Settings, storage
from dsqa.build.reindex import reindex
from dsqa.errors import CorpusError
from dsqa.results import Passage
from dsqa.sources import formats
from dsqa.sources.formats import worker
from dsqa.sources.loading import CorpusReading, load_corpus

fpdf = pytest.importorskip("fpdf", reason="fpdf2 (the dev extra) writes the test PDFs")


# -- making the files ----------------------------------------------------------
def make_pdf(pages: list[list[tuple[str, str]]], outline: list[tuple[int, int, str]] | None = None) -> bytes:
    """A PDF whose page i holds ``pages[i]``: (style, text) lines, style
    ``"title"`` (large bold), ``"bold"`` or ``""``. ``outline`` entries are
    (page index, level, title), added where that page begins."""
    pdf = fpdf.FPDF()
    pdf.set_auto_page_break(False)
    marks: dict[int, list[tuple[int, str]]] = {}
    for page, level, title in outline or []:
        marks.setdefault(page, []).append((level, title))
    for i, lines in enumerate(pages):
        pdf.add_page()
        for level, title in marks.get(i, []):
            pdf.start_section(title, level=level)
        for style, text in lines:
            size = 22 if style == "title" else 11
            pdf.set_font("Helvetica", "B" if style else "", size)
            pdf.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


SLIDES = [
    [("title", "Consensus"), ("", "Raft elects a leader with randomized election timeouts."),
     ("", "A candidate that wins a majority of votes becomes leader for its term.")],
    [("title", "Log replication"), ("", "The leader appends client commands to its log."),
     ("", "Followers replicate entries in the order the leader sends them."),
     ("", "An entry is committed once a majority of servers store it.")],
    [],  # a scanned page: no text layer
    [("", "Snapshots compact the log so that it does not grow without bound."),
     ("", "A follower far behind receives the leader's snapshot instead of old entries.")],
]

PAGE_HTML = """<!DOCTYPE html>
<html><head><title>Gossip protocols</title>
<style>body { color: hotpink; } .secret-style-rule { display: none }</style>
<script>window.stealCookies = function () { alert("xss-in-script") };</script>
</head>
<body>
<header class="site-header"><a href="/">MySite</a> Sign in</header>
<nav><ul><li>Home</li><li>Pricing nav link</li></ul></nav>
<main>
<h1>Gossip protocols</h1>
<p>Each node periodically picks a random peer and exchanges state with it.</p>
<img src="x.png" onerror="alert('xss-in-onerror')" alt="">
<h2>Failure detection</h2>
<p>A node suspected by several peers is declared dead after a timeout.</p>
<pre><code>gossip --interval 1s --fanout 3</code></pre>
<script>document.write("xss-inline-script")</script>
<h3>SWIM</h3>
<p>SWIM separates failure detection from membership dissemination.</p>
<div hidden>hidden-text-never-indexed</div>
</main>
<aside>Related posts sidebar</aside>
<footer>Copyright footer text</footer>
</body></html>
"""


def make_notebook(outputs: bool = True) -> bytes:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Spark lab\n", "\n", "We load the logs into a DataFrame."]},
        {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "df = spark.read.json('logs.json')\ndf.count()",
         "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                      "data": {"text/plain": ["4242424242 output-never-indexed"]}}] if outputs else []},
        {"cell_type": "markdown", "metadata": {}, "source": ""},  # empty: skipped, but still counted
        {"cell_type": "markdown", "metadata": {}, "source": "## Partitions\n\nrepartition spreads rows over executors."},
        {"cell_type": "code", "execution_count": 2, "metadata": {}, "source": ["# not a heading: a comment\n", "df = df.repartition(8)"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["stream-output-never-indexed\n"]}] if outputs else []},
    ]
    nb = {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
          "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}}
    return json.dumps(nb, indent=1).encode()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def mixed(tmp_path, fake_model):
    corpus = tmp_path / "corpus"
    write(corpus / "notes.md", b"# Paxos\n\nPaxos reaches consensus with proposers and acceptors.\n")
    write(corpus / "slides" / "raft.pdf", make_pdf(SLIDES))
    write(corpus / "saved" / "gossip.html", PAGE_HTML.encode())
    write(corpus / "labs" / "spark.ipynb", make_notebook())
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash", chunk_tokens=40, chunk_overlap_tokens=4)


def chunks_of(settings: Settings, source: str) -> list[dict]:
    return [c for c in storage.load(settings.index_dir).chunks if c.source == source]


def check_citation(settings: Settings, c: dict) -> None:
    """The chunk's text is where its citation says, in the file read again."""
    extracted = formats.read(c.source, (settings.corpus_dir / c.source).read_bytes())
    if c.page is not None:
        lines = extracted.layout.unit_text(extracted.text, c.page).split("\n")
    else:
        lines = extracted.text.split("\n")
    region = "\n".join(lines[c.start_line - 1 : c.end_line])
    assert region.startswith(c.text.split("\n")[0]) and c.text in region, c
    if c.cell is not None:
        cells = "\n\n".join(extracted.layout.unit_text(extracted.text, n) for n in extracted.layout.unit_numbers
                          if c.cell <= n <= c.end_cell)
        assert c.text in cells, c


# -- PDF -----------------------------------------------------------------------
def test_pdf_chunks_cite_page_and_lines_within_it(mixed, caplog):
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        report = reindex(mixed)
    assert "slides/raft.pdf" in report.added
    assert report.warnings == [("slides/raft.pdf", "page 3 has no text layer (scanned? dsqa does no OCR): left out")]
    assert "slides/raft.pdf: page 3 has no text layer" in caplog.text
    chunks = chunks_of(mixed, "slides/raft.pdf")
    assert {c.page for c in chunks} == {1, 2, 4}
    for c in chunks:
        check_citation(mixed, c)  # also proves no chunk spans two pages
    # No outline: headings are the large title lines, carried over to a page without one.
    assert {c.page: c.heading for c in chunks} == {1: "Consensus", 2: "Log replication", 4: "Log replication"}

    hit = DSQA(mixed).search("snapshot compact the log", k=1, notes=["slides/raft.pdf"])[0]
    assert hit.page == 4 and hit.start_line == 1
    assert hit.citation == f"slides/raft.pdf p. 4, lines 1–{hit.end_line} · Log replication"
    d = hit.to_dict()
    assert d["page"] == 4 and d["cell"] is None and d["citation"] == hit.citation
    assert {"text", "source", "heading", "start_line", "end_line", "score", "highlights", "citation"} <= set(d)


def test_pdf_headings_come_from_the_outline(tmp_path, fake_model):
    pages = [
        [("", "Overview of the course and its labs.")],
        [("", "Intro to replication"), ("", "Primary-backup keeps one primary."),
         ("", "Chain replication"), ("", "Chain replication orders servers in a chain.")],
        [("", "Reads go to the tail of the chain.")],
    ]
    outline = [(0, 0, "Week 3"), (1, 1, "Intro to replication"), (1, 1, "Chain replication")]
    corpus = tmp_path / "c"
    write(corpus / "week3.pdf", make_pdf(pages, outline))
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "i", model="fake-hash", chunk_tokens=40, chunk_overlap_tokens=4)
    reindex(settings)
    chunks = chunks_of(settings, "week3.pdf")
    by_text = {c.text.split("\n")[0]: (c.page, c.heading) for c in chunks}
    assert by_text["Overview of the course and its labs."] == (1, "Week 3")
    assert by_text["Intro to replication"] == (2, "Week 3 › Intro to replication")
    assert by_text["Chain replication"] == (2, "Week 3 › Chain replication")  # a second entry on the page cuts it
    assert by_text["Reads go to the tail of the chain."] == (3, "Week 3 › Chain replication")
    for c in chunks:
        check_citation(settings, c)


def test_damaged_and_encrypted_pdfs_are_skipped_with_the_reason(tmp_path, caplog):
    from pypdf import PdfReader, PdfWriter

    good = make_pdf(SLIDES[:1])
    locked = PdfWriter(clone_from=PdfReader(io.BytesIO(good)))
    locked.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    locked.write(out)
    opens = PdfWriter(clone_from=PdfReader(io.BytesIO(good)))
    opens.encrypt("", owner_password="owner", algorithm="RC4-128")  # no password needed to read
    out2 = io.BytesIO()
    opens.write(out2)
    write(tmp_path / "a.md", b"alpha")
    write(tmp_path / "locked.pdf", out.getvalue())
    write(tmp_path / "opens.pdf", out2.getvalue())
    write(tmp_path / "truncated.pdf", good[: len(good) // 2])
    write(tmp_path / "fake.pdf", b"this is not a PDF")
    write(tmp_path / "scanned.pdf", make_pdf([[], []]))
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        loaded = load_corpus(tmp_path)
    assert [n.source for n in loaded.notes] == ["a.md", "opens.pdf"]
    reasons = dict(loaded.skipped)
    assert reasons["locked.pdf"] == "encrypted PDF (it needs a password)"
    assert reasons["truncated.pdf"].startswith("damaged PDF (")
    assert reasons["fake.pdf"].startswith("damaged PDF (")
    assert reasons["scanned.pdf"] == "no text in any page (a scanned PDF? dsqa does no OCR)"
    for name in reasons:
        assert f"skipped {name}: " in caplog.text


def test_the_size_limit_holds_for_every_format(tmp_path):
    write(tmp_path / "a.md", b"alpha")
    write(tmp_path / "big.pdf", make_pdf(SLIDES))
    write(tmp_path / "big.html", PAGE_HTML.encode())
    write(tmp_path / "big.ipynb", make_notebook())
    loaded = load_corpus(tmp_path, CorpusReading(max_note_bytes=200))
    assert [n.source for n in loaded.notes] == ["a.md"]
    assert all(reason.startswith("too large") for _, reason in loaded.skipped) and len(loaded.skipped) == 3


# -- HTML ----------------------------------------------------------------------
def test_html_keeps_main_content_and_drops_scripts_styles_and_chrome(mixed):
    reindex(mixed)
    chunks = chunks_of(mixed, "saved/gossip.html")
    indexed = "\n".join(c.heading + "\n" + c.text for c in storage.load(mixed.index_dir).chunks)
    for never in ("xss", "alert", "onerror", "stealCookies", "hotpink", "secret-style-rule", "<script", "<img",
                  "Sign in", "Pricing nav link", "Related posts", "Copyright footer", "hidden-text-never-indexed"):
        assert never not in indexed, never
    assert "Each node periodically picks a random peer" in indexed
    assert "gossip --interval 1s --fanout 3" in indexed
    headings = {c.heading for c in chunks}
    assert "Gossip protocols › Failure detection › SWIM" in headings
    for c in chunks:
        assert c.page is None and c.cell is None
        check_citation(mixed, c)
    hit = DSQA(mixed).search("SWIM membership dissemination", k=1, notes=["saved/gossip.html"])[0]
    assert hit.citation == f"saved/gossip.html:{hit.start_line}-{hit.end_line} · Gossip protocols › Failure detection › SWIM"


def test_html_main_content_is_the_single_article():
    page = b"""<html><body><div class="Header">Global chrome Pull requests</div><main>
    <div class="file-navigation">main branch 3 commits</div>
    <article class="markdown-body"><h1>tool</h1><p>The tool converts bundles.</p><h2>Usage</h2><pre>tool App.app</pre></article>
    <div class="BorderGrid">About this repository sidebar</div></main></body></html>"""
    text = formats.read("repo.html", page).text
    assert text == "# tool\n\nThe tool converts bundles.\n\n## Usage\n\n```\ntool App.app\n```\n"


def test_html_wrapped_in_a_form_keeps_its_text_but_not_the_controls():
    page = b"""<html><body><form action="/postback"><h1>Lab 2</h1><p>Start the cluster first.</p>
    <input type="text" value="input-value-never-indexed"><button>Submit-button</button></form></body></html>"""
    assert formats.read("aspnet.html", page).text == "# Lab 2\n\nStart the cluster first.\n"


def test_html_without_text_is_skipped(tmp_path):
    write(tmp_path / "a.md", b"alpha")
    write(tmp_path / "empty.html", b"<html><head><script>var x = 1;</script></head><body><nav>Home</nav></body></html>")
    loaded = load_corpus(tmp_path)
    assert dict(loaded.skipped) == {"empty.html": "no text in the page's main content"}


# -- notebooks -----------------------------------------------------------------
def test_notebook_cells_become_text_and_fenced_code_cited_by_cell(mixed):
    extracted = formats.read("lab.ipynb", make_notebook())
    assert extracted.text == (
        "# Spark lab\n\nWe load the logs into a DataFrame.\n\n"
        "```python\ndf = spark.read.json('logs.json')\ndf.count()\n```\n\n"
        "## Partitions\n\nrepartition spreads rows over executors.\n\n"
        "```python\n# not a heading: a comment\ndf = df.repartition(8)\n```\n"
    )
    assert extracted.layout.unit_numbers == (1, 2, 4, 5)  # the empty cell 3 still counts
    reindex(mixed)
    chunks = chunks_of(mixed, "labs/spark.ipynb")
    for c in chunks:
        check_citation(mixed, c)
        assert "never-indexed" not in c.text and "4242424242" not in c.text
    assert {c.heading for c in chunks} == {"Spark lab", "Spark lab › Partitions"}
    hit = DSQA(mixed).search("repartition rows executors", k=1, notes=["labs/spark.ipynb"])[0]
    assert hit.cell == 4 and hit.page is None
    assert hit.citation in ("labs/spark.ipynb cell 4 · Spark lab › Partitions", "labs/spark.ipynb cells 4–5 · Spark lab › Partitions")


def test_damaged_notebooks_are_skipped_with_the_reason(tmp_path):
    write(tmp_path / "a.md", b"alpha")
    write(tmp_path / "broken.ipynb", make_notebook()[:-40])
    write(tmp_path / "old.ipynb", json.dumps({"nbformat": 2, "cells": []}).encode())
    write(tmp_path / "nocells.ipynb", json.dumps({"nbformat": 4, "cells": [{"cell_type": "code", "source": 7}]}).encode())
    reasons = dict(load_corpus(tmp_path).skipped)
    assert reasons["broken.ipynb"].startswith("damaged notebook (not JSON")
    assert reasons["old.ipynb"] == "not a Jupyter notebook dsqa reads (nbformat 2; it reads 3 and 4)"
    assert reasons["nocells.ipynb"] == "damaged notebook (cell 1 has no text source)"


# -- the index lifecycle -------------------------------------------------------
def test_unchanged_pdfs_are_not_read_again_and_edits_are_seen(mixed, monkeypatch):
    first = reindex(mixed)
    assert set(first.added) == {"notes.md", "slides/raft.pdf", "saved/gossip.html", "labs/spark.ipynb"}
    engine = DSQA(mixed, auto_reindex=False)
    assert engine.status().up_to_date

    reads: list[int] = []
    real = formats.pdf.READER.read
    monkeypatch.setattr(worker, "_ISOLATE", False)  # readers run in this process, where they can be counted
    monkeypatch.setattr(formats.pdf.READER, "read", lambda data, limits: reads.append(1) or real(data, limits))
    again = reindex(mixed)
    assert not again.wrote and reads == []  # a no-op reindex extracts no PDF

    write(mixed.corpus_dir / "slides" / "raft.pdf", make_pdf(SLIDES[:2]))
    status = engine.status()
    assert not status.up_to_date and status.changed == ["slides/raft.pdf"]
    report = reindex(mixed)
    assert list(report.changed) == ["slides/raft.pdf"] and reads == [1]
    assert {c.page for c in chunks_of(mixed, "slides/raft.pdf")} == {1, 2}
    assert engine.status().up_to_date


def test_a_new_reader_version_rechunks_its_notes_only(mixed, monkeypatch):
    reindex(mixed)
    monkeypatch.setattr(formats.notebook.READER, "version", formats.notebook.READER.version + 1)
    status = DSQA(mixed, auto_reindex=False).status()
    assert status.changed == ["labs/spark.ipynb"] and not status.up_to_date
    report = reindex(mixed)
    assert list(report.changed) == ["labs/spark.ipynb"]
    assert storage.read_manifest(mixed.index_dir)["notes"]["labs/spark.ipynb"]["reader"] == f"notebook/{formats.notebook.READER.version}"
    assert "reader" not in storage.read_manifest(mixed.index_dir)["notes"]["notes.md"]


def test_markdown_citations_and_records_are_unchanged():
    p = Passage(text="x", source="notes/a.md", heading="A › B", start_line=3, end_line=9, score=0.5)
    assert p.citation == "notes/a.md:3-9 · A › B"
    pdf = Passage(text="x", source="s.pdf", heading="", start_line=4, end_line=4, score=0.5, page=12)
    assert pdf.citation == "s.pdf p. 12, line 4"


def test_only_unreadable_files_is_still_a_clear_error(tmp_path):
    write(tmp_path / "bad.pdf", b"nope")
    with pytest.raises(CorpusError, match=r"no notes to index .*1 files skipped"):
        load_corpus(tmp_path)


# -- the page's "open the note section" ------------------------------------------
def test_note_section_shows_the_extracted_text_and_links_the_file(mixed):
    pytest.importorskip("markdown_it")  # the web extra renders Markdown
    from dsqa.web import note_section, render_passage
    from dsqa.web.render import _context_html

    reindex(mixed)
    engine = DSQA(mixed)
    hit = engine.search("snapshot compact the log", k=1, notes=["slides/raft.pdf"])[0]
    section = note_section(engine, hit.source, hit.start_line, hit.end_line, page=hit.page)
    assert section.lines[0].startswith("Snapshots compact the log") and section.first == 1
    assert all("Raft elects" not in line for line in section.lines)  # page 4's text only
    html = render_passage(engine, 1, hit)  # the file link sits with the passage's other actions
    uri = (mixed.corpus_dir / "slides" / "raft.pdf").resolve().as_uri()
    assert f'href="{uri}#page=4"' in html
    # The page's text is the passage: the section would repeat it (issue 24).
    assert "Open the note section" not in html
    hit.start_line = hit.end_line = section.last  # a passage of the page's last line: the section shows more
    assert "page 4, lines 1–" in render_passage(engine, 1, hit)

    page = engine.search("SWIM membership dissemination", k=1, notes=["saved/gossip.html"])[0]
    page.start_line = page.end_line = note_section(engine, page.source, page.start_line, page.end_line).last
    html = _context_html(engine, page)
    assert "SWIM separates failure detection" in html and "as extracted" in html
    for never in ("xss", "alert", "onerror", "<script", "hotpink"):
        assert never not in html.replace('class="dsqa', ""), never
