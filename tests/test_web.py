"""The web page (dsqa/web.py): its endpoints through gradio_client against a
server on a free localhost port, the rendering and the note-section reader
directly, and the page itself in headless Chromium driven by Playwright.

Set DSQA_SCREENSHOT=docs/screenshot.png to also write the browser test's
screenshot there (that is how the README's screenshot is made).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from dsqa import DSQA, Answer, Passage  # noqa: E402
from dsqa.web import (  # noqa: E402
    NOT_COVERED,
    build_page,
    highlight_html,
    launch,
    note_section,
    render_answer,
    render_passages,
)

# Gradio's queue trips pandas deprecation warnings of its own.
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting'"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CHROMIUM = "/usr/bin/chromium"
QUESTION = "how do overlay networks do service discovery"
CITATION = re.compile(r"notes/[\w.-]+\.md:\d+-\d+")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(page: gr.Blocks) -> str:
    _, url, _ = launch(page, port=_free_port(), prevent_thread_lock=True, quiet=True)
    return url


# -- a server over the real bundled index ------------------------------------
@pytest.fixture(scope="module")
def real_engine(tmp_path_factory):
    """The bundled notes and committed index. Should the index be stale (a
    chunking change not yet reindexed; another test flags that), a copy of
    both is brought up to date instead: a test never rewrites index/."""
    engine = DSQA(auto_reindex=False)
    if engine.status().up_to_date:
        return engine
    copy = tmp_path_factory.mktemp("bundled")
    shutil.copytree(engine.settings.corpus_dir, copy / "corpus")
    shutil.copytree(engine.settings.index_dir, copy / "index")
    engine = DSQA(corpus_dir=copy / "corpus", index_dir=copy / "index", auto_reindex=False)
    engine.reindex()
    return engine


@pytest.fixture(scope="module")
def server(real_engine):
    page = build_page(real_engine)
    url = _start(page)
    yield url
    page.close()


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server, verbose=False)


@pytest.mark.real_model
def test_ask_gives_answer_and_cited_passages(client, real_engine):
    answer_html, passages_html = client.predict(QUESTION, 3, [], api_name="/ask")
    assert "dsqa-answer" in answer_html and "Error" not in answer_html
    expected = real_engine.ask(QUESTION, k=3)
    assert passages_html.count('class="dsqa-passage"') == 3
    for p in expected.passages:
        assert f"{p.source}:{p.start_line}-{p.end_line}" in passages_html
        assert "Open the note section" in passages_html
    if expected.text:
        assert "dsqa-cite" in answer_html or expected.text[:20] in answer_html

    data = client.predict(QUESTION, 3, None, api_name="/ask_json")
    assert data["question"] == QUESTION and data["found"] is True
    assert [p["citation"] for p in data["passages"]] == [p.citation for p in expected.passages]
    assert all(CITATION.match(p["citation"]) for p in data["passages"])


@pytest.mark.real_model
def test_note_filter_and_status(client):
    data = client.predict("what is S3", 2, ["notes/anonymous-short-notes.md"], api_name="/ask_json")
    assert {p["source"] for p in data["passages"]} == {"notes/anonymous-short-notes.md"}
    status = client.predict(api_name="/status_json")
    assert status["notes"] == 5 and status["chunks"] > 0 and status["model"]["name"] == "all-MiniLM-L6-v2"
    assert "notes" in client.predict(api_name="/status")


@pytest.mark.real_model
def test_bad_questions_show_the_library_message(client):
    answer_html, passages_html = client.predict("", 5, [], api_name="/ask")
    assert 'class="dsqa-error"' in answer_html and "the question is empty" in answer_html
    assert passages_html == "" and "Traceback" not in answer_html

    answer_html, _ = client.predict("x" * 2001, 5, [], api_name="/ask")
    assert "the limit is 2,000" in answer_html

    with pytest.raises(gradio_client.exceptions.AppError, match="the question is empty"):
        client.predict("   ", api_name="/ask_json")
    with pytest.raises(gradio_client.exceptions.AppError, match="k must be between 1 and 100"):
        client.predict(QUESTION, 0, api_name="/ask_json")


@pytest.mark.real_model
def test_etc_passwd_cannot_be_read(client):
    evil = "../../etc/passwd"
    answer_html, passages_html = client.predict("what is S3", 5, [evil], api_name="/ask")
    assert "dsqa-error" in answer_html and "no note" in answer_html and passages_html == ""
    for notes in ([evil], ["/etc/passwd"], ["notes/../../../etc/passwd"]):
        with pytest.raises(gradio_client.exceptions.AppError, match="no note"):
            client.predict("what is S3", 5, notes, api_name="/ask_json")
    # As a question it is just text: answered from the notes, never read.
    answer_html, passages_html = client.predict(evil, 5, [], api_name="/ask")
    assert "root:x:0:0" not in answer_html + passages_html
    assert passages_html.count('class="dsqa-passage"') == 5


# -- the note-section reader and the rendering --------------------------------
@pytest.fixture
def fake_engine(settings):
    engine = DSQA(settings)
    engine.reindex()
    return engine


def test_note_section_reads_only_indexed_notes_inside_the_corpus(fake_engine, settings, tmp_path):
    note = "notes/unlimitediw-dist-sys-notes.md"
    assert note in fake_engine.note_names()
    section = note_section(fake_engine, note, 360, 365)
    assert section.first <= 360 and section.last >= 365
    assert section.lines[0].lstrip().startswith("#")  # starts at the section's heading
    lines = (settings.corpus_dir / note).read_text(encoding="utf-8").splitlines()
    assert section.lines == lines[section.first - 1 : section.last]

    for bad in ("../../etc/passwd", "/etc/passwd", "notes/../../../../etc/passwd", "", None, "notes"):
        with pytest.raises(ValueError):
            note_section(fake_engine, bad, 1, 5)

    # An indexed note swapped for a symlink to a file outside the corpus.
    secret = tmp_path / "secret.md"
    secret.write_text("# secret\nroot:x:0:0\n", encoding="utf-8")
    victim = settings.corpus_dir / note
    victim.unlink()
    victim.symlink_to(secret)
    with pytest.raises(ValueError, match="inside the corpus"):
        note_section(fake_engine, note, 1, 2)


def test_rendering_escapes_note_text_and_marks_highlights():
    text = "Intro <script>alert(1)</script>. Overlay networks use DNS & a VIP."
    start = text.index("Overlay")
    assert highlight_html(text, [(start, len(text))]) == (
        "Intro &lt;script&gt;alert(1)&lt;/script&gt;. <mark>Overlay networks use DNS &amp; a VIP.</mark>"
    )
    # Overlapping, reversed and out-of-range spans are merged or dropped.
    assert highlight_html("abcdef", [(4, 99), (1, 3), (2, 4), (5, 2), ("x", 1)]) == "a<mark>bcdef</mark>"

    p = Passage(text=text, source="notes/a.md", heading="A › <b>", start_line=3, end_line=4, score=0.5, highlights=[(start, start + 7)])
    found = Answer(question="q", passages=[p], found=True, text="Use DNS [1] <img src=x> [7].")
    html_answer = render_answer(found)
    assert '<a class="dsqa-cite" href="#dsqa-p1">[1]</a>' in html_answer
    assert "&lt;img src=x&gt;" in html_answer and "[7]" in html_answer and "<img" not in html_answer
    assert NOT_COVERED in render_answer(Answer(question="q", passages=[p], found=False))


def test_passages_render_with_citation_score_and_section(fake_engine):
    answer = fake_engine.ask("overlay network service discovery", k=2)
    out = render_passages(fake_engine, answer)
    assert out.count('class="dsqa-passage"') == 2
    for p in answer.passages:
        assert p.source in out and f"{p.score:.3f}" in out
    assert out.count("<details") == 2


# -- reindex and status through the page, on a copy with the fake model -------
def test_reindex_button_updates_the_index_and_status(settings):
    engine = DSQA(settings)  # no index yet: the page still comes up
    page = build_page(engine)
    url = _start(page)
    try:
        client = gradio_client.Client(url, verbose=False)
        assert "dsqa-error" in client.predict(api_name="/status")
        report, status, notes = client.predict(api_name="/reindex")
        assert "Reindexed" in report and "up to date" in status
        assert "notes/anonymous-short-notes.md" in str(notes) or client.predict(api_name="/status_json")["notes"] == 5

        note = settings.corpus_dir / "notes" / "anonymous-short-notes.md"
        note.write_text(note.read_text(encoding="utf-8") + "\n## Added\nA new fact about gossip protocols.\n", encoding="utf-8")
        assert "out of date" in client.predict(api_name="/status")
        report, status, _ = client.predict(api_name="/reindex")
        assert "changed" in report and "anonymous-short-notes" in report and "up to date" in status
    finally:
        page.close()


# -- the page in a real browser ------------------------------------------------
@pytest.mark.browser
@pytest.mark.real_model
# Skipped only on a developer machine without Chromium: CI (CI=true) installs
# it in .ci/run, so there a missing browser fails the test instead.
@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="no Chromium at /usr/bin/chromium (apt-get install chromium)",
)
def test_page_in_headless_chromium(server, real_engine, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    expected = real_engine.ask(QUESTION)
    outside: list[str] = []

    def local_only(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    started = time.perf_counter()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.route("**/*", local_only)
            page.goto(server)
            box = page.locator("#dsqa-question textarea, #dsqa-question input").first
            box.wait_for(timeout=20_000)
            box.fill(QUESTION)
            box.press("Enter")
            first = page.locator("#dsqa-passages .dsqa-citation").first
            first.wait_for(timeout=30_000)

            assert CITATION.search(first.inner_text())
            assert expected.passages[0].citation in first.inner_text()
            assert page.locator("#dsqa-passages .dsqa-passage").count() == len(expected.passages)
            assert page.locator("#dsqa-answer .dsqa-answer").is_visible()
            if expected.text:
                assert page.locator("#dsqa-answer .dsqa-answer").inner_text().strip()
            if any(p.highlights for p in expected.passages):
                assert page.locator("#dsqa-passages .dsqa-text mark").count() >= 1
            assert "up to date" in page.locator("#dsqa-status").inner_text()

            # The note section opens around the passage.
            page.locator("#dsqa-passages details summary").first.click()
            assert page.locator("#dsqa-passages details .dsqa-here").first.is_visible()
            page.locator("#dsqa-passages details summary").first.click()

            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("DSQA_SCREENSHOT"):
                shutil.copyfile(shot, os.environ["DSQA_SCREENSHOT"])

            # An empty question: the library's message in the page, no traceback.
            box.fill("")
            box.press("Enter")
            error = page.locator("#dsqa-answer .dsqa-error")
            error.wait_for(timeout=10_000)
            assert "the question is empty" in error.inner_text()
            assert "Traceback" not in page.content()
        finally:
            browser.close()
    assert not outside, f"the page asked for something off this machine: {outside}"
    assert time.perf_counter() - started < 60
