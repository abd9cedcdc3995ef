"""The page in headless Chromium driven by Playwright (/usr/bin/chromium).

Set DSQA_SCREENSHOT=docs/screenshot.png to also write the browser test's
screenshot there (that is how the README's screenshot is made).
"""

# ruff: noqa: F811 (the fixtures imported from web_shared are test parameters here)
from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import re
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import GATED
from web_shared import (  # noqa: F401 (fixtures are test parameters)
    CHROMIUM,
    CHROMIUM_ARGS,
    CITATION,
    GRADIO_WARNINGS,
    HOSTILE,
    QUESTION,
    _start,
    fake_engine,
    fake_server,
    gradio_client,
    needs_chromium,
    real_engine,
    server,
)

from dsqa import DSQA
from dsqa.web.page import build_page

pytestmark = GRADIO_WARNINGS


# -- the page in a real browser ------------------------------------------------
def _save_screenshot(shot: Path, suffix: str = "") -> None:
    """Copy ``shot`` to $DSQA_SCREENSHOT (the desktop one; the phone one
    beside it as ``<name>-phone.png``)."""
    target = os.environ.get("DSQA_SCREENSHOT")
    if target:
        path = Path(target)
        shutil.copyfile(shot, path.with_name(f"{path.stem}{suffix}{path.suffix}"))


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for this module's browser tests, each in its
    own browser context (cookies, storage and permissions apart). It
    resolves evil.test to 127.0.0.1, as a rebound name would (see
    test_other_sites_cannot_read_the_page_in_chromium)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser(chromium):
    """A fresh context of the shared Chromium, closed after the test."""
    context = chromium.new_context()
    yield context
    context.close()


@pytest.mark.browser
@pytest.mark.real_model
@needs_chromium
def test_page_in_headless_chromium(server, real_engine, chromium, tmp_path):
    expected = real_engine.ask(QUESTION)
    outside: list[str] = []

    started = time.perf_counter()
    desktop = chromium.new_context(viewport={"width": 1280, "height": 1000})
    phone_context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = desktop.new_page()
        page.route("**/*", _local_only(outside))
        page.goto(server)
        box = _question_box(page)
        box.wait_for(timeout=20_000)
        box.fill(QUESTION)
        box.press("Enter")
        first = page.locator("#dsqa-passages .dsqa-citation").first
        first.wait_for(timeout=30_000)

        assert CITATION.search(first.inner_text())
        assert first.get_attribute("title") == expected.passages[0].citation  # the whole path on hover
        assert page.locator("#dsqa-passages .dsqa-passage").count() == len(expected.passages)
        assert page.locator("#dsqa-answer .dsqa-answer").is_visible()
        if expected.text:
            assert page.locator("#dsqa-answer .dsqa-answer").inner_text().strip()
        if any(p.highlights for p in expected.passages):
            assert page.locator("#dsqa-passages .dsqa-text mark").count() >= 1
        # Markdown, not raw text: code spans and lists; images are links.
        assert page.locator("#dsqa-passages .dsqa-text code").count() >= 1
        assert page.locator("#dsqa-passages .dsqa-text li").count() >= 1
        assert page.locator("#dsqa-passages img").count() == 0
        assert "![" not in page.locator("#dsqa-passages").inner_text()
        labels = page.locator("#dsqa-passages .dsqa-score").all_inner_texts()
        assert labels and all(label in ("strong match", "good match", "weak match") for label in labels)
        assert "up to date" in page.locator("#dsqa-status").inner_text()
        assert not page.locator("#dsqa-k").is_visible()  # the filters start collapsed (tests the layout below)

        # The note section opens around the passage.
        page.locator("#dsqa-passages details summary").first.click()
        assert page.locator("#dsqa-passages details .dsqa-here").first.is_visible()
        page.locator("#dsqa-passages details summary").first.click()

        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        _save_screenshot(shot)

        # On a phone: the answer right after the question, the examples in
        # one scrolling row, the filters collapsed above the passages.
        phone = phone_context.new_page()
        phone.route("**/*", _local_only(outside))
        phone.goto(server + "?q=" + QUESTION.replace(" ", "+"))
        phone.locator("#dsqa-passages .dsqa-passage").first.wait_for(timeout=30_000)

        def box_of(selector: str) -> dict:
            return phone.locator(selector).first.bounding_box()

        question, answer = box_of("#dsqa-question"), box_of("#dsqa-answer .dsqa-answer")
        filters, passages = box_of("#dsqa-filters"), box_of("#dsqa-passages .dsqa-passage")
        assert question["y"] < answer["y"] < filters["y"] < passages["y"]
        assert answer["y"] - (question["y"] + question["height"]) < 60  # nothing in between
        assert answer["y"] < 844  # in the first screen
        tops = {round(b["y"]) for b in phone.locator("#dsqa-examples button").evaluate_all(
            "buttons => buttons.map(b => b.getBoundingClientRect().toJSON())")}
        assert len(tops) == 1
        assert phone.evaluate("(() => { const r = document.querySelector('#dsqa-examples'); return r.scrollWidth > r.clientWidth; })()")
        assert not phone.locator("#dsqa-k").is_visible()  # collapsed
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        phone_shot = tmp_path / "phone.png"
        phone.screenshot(path=str(phone_shot), full_page=False)
        _save_screenshot(phone_shot, "-phone")
    finally:
        desktop.close()
        phone_context.close()
    assert not outside, f"the page asked for something off this machine: {outside}"
    assert time.perf_counter() - started < 90


@contextlib.contextmanager
def _other_local_site():
    """A one-page site on another localhost port; yields its URL."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's API
            body = b"<!doctype html><p>another site</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{site.server_address[1]}/"
    finally:
        site.shutdown()
        site.server_close()


@pytest.mark.browser
@needs_chromium
def test_other_sites_cannot_read_the_page_in_chromium(fake_server, browser):
    """DNS rebinding for real: Chromium resolves evil.test to 127.0.0.1, as a
    rebound name would, and loads the page under that name; and a page on
    another local origin tries to read the API with fetch."""
    port = fake_server.port
    read_api = f"fetch('http://127.0.0.1:{port}/gradio_api/info').then(r => r.text()).catch(e => 'blocked: ' + e)"
    page = browser.new_page()
    response = page.goto(f"http://evil.test:{port}/")
    assert response.status == 400 and "ask_json" not in page.content()
    got = page.evaluate("fetch('/gradio_api/info').then(r => r.status + ' ' + r.headers.get('content-type'))")
    assert got.startswith("400 ")

    with _other_local_site() as other:  # another app on this machine: another origin
        page.goto(other)
        assert page.evaluate(read_api).startswith("blocked:")

    page.goto(f"http://localhost:{port}/")  # the page itself still reads it
    assert "ask_json" in page.evaluate(read_api.replace("127.0.0.1", "localhost"))


# -- the page's behaviour in Chromium, on the fake model ------------------------
def _local_only(outside: list[str]):
    def route(r):
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    return route


def _question_box(page):
    return page.locator("#dsqa-question textarea, #dsqa-question input").first


@pytest.mark.browser
@needs_chromium
def test_page_behaviour_in_chromium(fake_engine, chromium, monkeypatch):
    """A hostile note is shown inert; copy citation, `/`, `?q=`, changing k
    and an error shown once; after the notes change, a question updates the
    index and the index panel says what changed."""
    import dsqa.engine

    # The engine looks at the notes again this long after its last look.
    monkeypatch.setattr(dsqa.engine, "STALE_CHECK_SECONDS", 0.3)
    corpus = fake_engine.settings.corpus_dir
    tagged = "".join(line + " xyzzyhostile\n" for line in HOSTILE.splitlines())
    (corpus / "notes" / "hostile.md").write_text(tagged, encoding="utf-8")
    fake_engine.reindex()
    running = _start(build_page(fake_engine))
    outside: list[str] = []
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=running.url.rstrip("/"))
        page = context.new_page()
        page.route("**/*", _local_only(outside))
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        # ?q= asks on load; the hostile note's markup is text, its links inert.
        page.goto(running.url + "?q=xyzzyhostile+onerror+pwned+javascript+run+evil")
        first = page.locator("#dsqa-passages .dsqa-passage").first
        first.wait_for(timeout=30_000)
        assert _question_box(page).input_value() == "xyzzyhostile onerror pwned javascript run evil"
        hostile = page.locator("#dsqa-passages .dsqa-text")
        shown = page.locator("#dsqa-passages").inner_text()
        assert "onerror=" in shown and "[run](javascript:" in shown, shown
        for selector in ("script", "img", "iframe", "svg", "[onerror]", "[onload]", "[onmouseover]", "[style]"):
            assert hostile.locator(selector).count() == 0, selector
        hrefs = hostile.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert hrefs and all(re.match(r"(https?://|mailto:|[\w.-]+(#|$))", h) for h in hrefs), hrefs
        for n in range(hostile.count()):
            hostile.nth(n).hover()
        assert page.evaluate("window.__pwned") is None and not dialogs

        # Copy citation puts the citation on the clipboard.
        citation = first.locator(".dsqa-copy").get_attribute("data-citation")
        first.locator(".dsqa-copy").click()
        page.wait_for_function("document.querySelector('.dsqa-copy').textContent === 'Copied'", timeout=5_000)
        assert page.evaluate("navigator.clipboard.readText()") == citation
        assert first.locator(".dsqa-open").get_attribute("href").startswith("vscode://file/")

        # `/` focuses the question box (not while typing in it).
        page.locator("#dsqa-status").click()
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.closest('#dsqa-question') !== null")
        page.keyboard.type("overlay network service discovery")
        assert _question_box(page).input_value() == "overlay network service discovery"  # no stray "/"
        page.keyboard.press("Enter")
        page.wait_for_function("location.search.includes('overlay')", timeout=10_000)
        page.wait_for_function(
            "!document.querySelector('#dsqa-passages').innerText.includes('xyzzyhostile')", timeout=30_000
        )

        # Changing k asks again (the filters start collapsed: open them).
        page.locator("#dsqa-filters .label-wrap").click()
        k_box = page.locator("#dsqa-k input[type=number]")
        k_box.fill("2")
        k_box.press("Enter")
        page.wait_for_function("document.querySelectorAll('#dsqa-passages .dsqa-passage').length === 2", timeout=30_000)
        page.wait_for_function("document.querySelector('#dsqa-filters').innerText.includes('Filters: 2 passages')", timeout=10_000)

        # The notes change: the next question updates the index first, and
        # the index panel says so, with what changed.
        note = corpus / "notes" / "anonymous-short-notes.md"
        note.write_text(note.read_text(encoding="utf-8") + "\n## Gossip\nGossip protocols spread news.\n", encoding="utf-8")
        time.sleep(0.4)  # past the engine's stale-check interval
        box = _question_box(page)
        box.fill("gossip protocols spread news")
        box.press("Enter")
        report = page.locator("#dsqa-reindex-report")
        page.wait_for_function(
            "document.querySelector('#dsqa-reindex-report').innerText.includes('changed')", timeout=30_000
        )
        assert "anonymous-short-notes.md" in report.inner_text() and "The notes changed" in report.inner_text()
        status = page.locator("#dsqa-status").inner_text()
        assert "up to date" in status
        for internal in ("onnx", "encoder", "text/s", "chunks"):
            assert internal not in (status + report.inner_text()).lower()

        # An empty question: the message once, in the answer box, no toast.
        box.fill("")
        box.press("Enter")
        page.locator("#dsqa-answer .dsqa-error").wait_for(timeout=10_000)
        page.wait_for_timeout(500)
        assert page.get_by_text("the question is empty").count() == 1
        assert page.locator(".toast-body").count() == 0
    finally:
        context.close()
        running.close()
    assert not outside, f"the page asked for something off this machine: {outside}"


@pytest.mark.browser
@needs_chromium
def test_reindex_shows_one_plain_progress_bar(built, settings, gated_model, chromium):
    started, release = gated_model
    engine = DSQA(settings, auto_reindex=False)  # over the built index; only the button reindexes
    note = settings.corpus_dir / "notes" / "new.md"
    note.write_text("".join(f"# Part {n}\nGossip protocols spread news {n}. {GATED}\n" for n in range(40)), encoding="utf-8")
    running = _start(build_page(engine))
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(running.url)
        page.locator("#dsqa-reindex").click()
        assert started.wait(30), "the reindex did not start"
        page.wait_for_timeout(1_000)
        bars = page.locator(".progress-bar-wrap:visible, .progress-level:visible")
        shown = " ".join(bars.all_inner_texts()) + page.locator("#dsqa-reindex-report").inner_text()
        assert page.locator(".progress-bar-wrap:visible").count() <= 1
        for internal in ("onnx", "encoder", "text/s", "it/s"):
            assert internal not in shown.lower(), shown
        release.set()
        page.wait_for_function("document.querySelector('#dsqa-reindex-report').innerText.includes('added')", timeout=60_000)
        report = page.locator("#dsqa-reindex-report").inner_text()
        assert "notes/new.md" in report and "encoder" not in report and " s" not in report.replace("notes", "")
    finally:
        release.set()
        context.close()
        running.close()


# -- issue 24: citation markers, answers right after a save ---------------------
def _in_view(page, selector: str) -> bool:
    return page.evaluate(
        "(sel) => { const r = document.querySelector(sel).getBoundingClientRect();"
        " return r.top >= -1 && r.top < window.innerHeight; }",
        selector,
    )


def _click_markers(page) -> None:
    """Click each [n] marker of the answer: the page stays (same document,
    same address, the answer still there) and passage n comes into view."""
    page.evaluate("window.__samePage = true")
    address = page.url
    markers = page.locator("#dsqa-answer a.dsqa-cite")
    assert markers.count() >= 1
    for i in reversed(range(markers.count())):
        n = int(markers.nth(i).inner_text().strip("[]"))
        page.evaluate("window.scrollTo(0, 0)")
        markers.nth(i).click()
        page.wait_for_timeout(300)
        assert page.evaluate("window.__samePage") is True, "the marker loaded a new page"
        assert page.url == address
        assert page.locator("#dsqa-answer .dsqa-answer").is_visible()
        assert _in_view(page, f"#dsqa-p{n}"), f"passage {n} is not in view"


@pytest.mark.browser
@pytest.mark.real_model
@needs_chromium
def test_citation_markers_jump_to_their_passage(server, chromium):
    """After a ?q= load and after a typed question, clicking a [n] marker
    scrolls to passage n; it never reloads the page (the page's <base
    href="./"> made "#dsqa-p2" a new document without the question)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 700})
    try:
        page = context.new_page()
        page.goto(server + "?q=" + QUESTION.replace(" ", "+"))
        page.locator("#dsqa-answer a.dsqa-cite").first.wait_for(timeout=30_000)
        _click_markers(page)
        box = _question_box(page)
        box.fill("what is the difference between a container and a virtual machine")
        box.press("Enter")
        page.wait_for_function("location.search.includes('virtual')", timeout=10_000)
        page.wait_for_function(
            "(() => { const a = document.querySelector('#dsqa-answer a.dsqa-cite'); return a !== null &&"
            " !document.querySelector('#dsqa-passages').innerText.includes('overnet'); })()",
            timeout=30_000,
        )
        _click_markers(page)
    finally:
        context.close()


@pytest.mark.browser
@needs_chromium
def test_a_note_saved_a_moment_ago_is_in_the_next_answer(fake_engine, chromium):
    """A question asked right after a note is saved (well within the
    engine's stale-check interval) is answered from it, on the page and over
    /ask_json; the index panel names the note. A reindex another process ran
    is named too."""
    corpus = fake_engine.settings.corpus_dir
    fake_engine.ask("docker swarm")  # loaded and checked just now
    running = _start(build_page(fake_engine))
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(running.url)
        box = _question_box(page)
        box.wait_for(timeout=20_000)
        box.fill("docker swarm")
        box.press("Enter")
        page.locator("#dsqa-passages .dsqa-passage").first.wait_for(timeout=30_000)

        (corpus / "notes" / "gossip.md").write_text("# Gossip\nZebragossip protocols spread news epidemically.\n", encoding="utf-8")
        box.fill("zebragossip protocols spread news")
        box.press("Enter")
        page.wait_for_function(
            "document.querySelector('#dsqa-passages .dsqa-citation').innerText.includes('notes/gossip.md')", timeout=90_000
        )
        page.wait_for_function("document.querySelector('#dsqa-reindex-report').innerText.includes('gossip.md')", timeout=10_000)
        assert "added" in page.locator("#dsqa-reindex-report").inner_text()
        status = page.locator("#dsqa-status").inner_text()
        assert "up to date" in status and "6 notes" in status.replace("\n", " ")

        # Another process reindexes (as `dsqa watch` does): the panel names what it changed.
        (corpus / "notes" / "raft.md").write_text("# Raft\nQuokkaraft elects a leader.\n", encoding="utf-8")
        DSQA(fake_engine.settings).reindex()
        box.fill("quokkaraft elects a leader")
        box.press("Enter")
        page.wait_for_function("document.querySelector('#dsqa-reindex-report').innerText.includes('raft.md')", timeout=30_000)
        assert "added" in page.locator("#dsqa-reindex-report").inner_text()

        # Over /ask_json too.
        client = gradio_client.Client(running.url, verbose=False)
        (corpus / "notes" / "paxos.md").write_text("# Paxos\nWombatpaxos needs a majority quorum.\n", encoding="utf-8")
        answer = client.predict("wombatpaxos majority quorum", 1, None, api_name="/ask_json")
        assert answer["passages"][0]["source"] == "notes/paxos.md"
    finally:
        context.close()
        running.close()


_LAYOUT = """() => {
  const box = (sel) => document.querySelector(sel).getBoundingClientRect();
  const row = document.querySelector('#dsqa-examples');
  const chips = [...row.querySelectorAll('button')].map(b => b.getBoundingClientRect());
  return {
    input: box('#dsqa-question textarea, #dsqa-question input').height, ask: box('#dsqa-ask').height,
    passage: box('#dsqa-passages .dsqa-passage').top, screen: innerHeight,
    rowRight: row.getBoundingClientRect().right, chipsRight: Math.max(...chips.map(c => c.right)),
    scrolls: row.scrollWidth > row.clientWidth + 1,
    cue: row.classList.contains('dsqa-more') && getComputedStyle(row).maskImage.includes('gradient'),
  };
}"""


@pytest.mark.browser
@pytest.mark.real_model
@needs_chromium
def test_layout_on_desktop_and_phone(server, chromium):
    """Desktop: the filters start collapsed and the first passage is in the
    first screen; no example chip is cut at the right edge. Phone: the Ask
    button is no taller than the input; the sideways-scrolling examples
    fade at the right edge while there is more, and not once scrolled to
    the end."""
    address = server + "?q=" + QUESTION.replace(" ", "+")
    desktop = chromium.new_context(viewport={"width": 1280, "height": 800})
    phone_context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = desktop.new_page()
        page.goto(address)
        page.locator("#dsqa-passages .dsqa-passage").first.wait_for(timeout=30_000)
        got = page.evaluate(_LAYOUT)
        assert not page.locator("#dsqa-k").is_visible()
        assert got["passage"] < got["screen"], got
        assert not got["scrolls"] and got["chipsRight"] <= got["rowRight"] + 1, got
        assert got["ask"] <= got["input"] * 1.25, got

        phone = phone_context.new_page()
        phone.goto(address)
        phone.locator("#dsqa-passages .dsqa-passage").first.wait_for(timeout=30_000)
        got = phone.evaluate(_LAYOUT)
        assert got["ask"] <= got["input"] * 1.25, got
        assert got["scrolls"] and got["cue"], got
        phone.evaluate("(() => { const r = document.querySelector('#dsqa-examples'); r.scrollLeft = r.scrollWidth; })()")
        phone.wait_for_timeout(200)
        assert not phone.evaluate(_LAYOUT)["cue"]
    finally:
        desktop.close()
        phone_context.close()
