"""The web page (dsqa/web/): its endpoints through gradio_client against a
server on a free localhost port, the rendering and the note-section reader
directly, and the page itself in headless Chromium driven by Playwright.

Set DSQA_SCREENSHOT=docs/screenshot.png to also write the browser test's
screenshot there (that is how the README's screenshot is made).
"""

from __future__ import annotations

import contextlib
import html.parser
import http.client
import http.server
import json
import logging
import os
import random
import re
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import GATED

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from dsqa import DSQA, Answer, InvalidInputError, Passage, Settings  # noqa: E402
from dsqa.web import (  # noqa: E402
    NOT_COVERED,
    WEAK_MATCH,
    describe_reindex,
    highlight_html,
    note_section,
    render_answer,
    render_passage,
    render_passages,
    render_status,
)
from dsqa.web.page import build_page  # noqa: E402
from dsqa.web.passage_html import markdown_html, relevance, safe_url, shorten_heading  # noqa: E402
from dsqa.web.request_guard import (  # noqa: E402
    MAX_BODY_BYTES,
    RequestGuard,
    is_loopback,
    loopback_hosts,
)
from dsqa.web.server import PageServer, launch  # noqa: E402

# Gradio's queue trips pandas deprecation warnings of its own.
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting'"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Skipped only on a developer machine without Chromium: CI (CI=true) installs
# it in .ci/run, so there a missing browser fails the test instead.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="no Chromium at /usr/bin/chromium (apt-get install chromium)",
)
QUESTION = "how do overlay networks do service discovery"
CITATION = re.compile(r"notes/[\w.-]+\.md:\d+-\d+")


def _start(page: gr.Blocks, **kwargs) -> PageServer:
    """``page`` served from a thread on a free localhost port."""
    return launch(page, port=0, block=False, **kwargs)


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
    running = _start(build_page(real_engine))
    yield running.url
    running.close()


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
def fake_engine(built):
    return built


def test_note_section_reads_headings_and_fences_as_the_chunker_does(fake_engine, settings):
    """The section runs from the passage's heading to the next heading of the
    same or a higher level; "#" lines inside fenced code (``` or ~~~, closed
    only by the same marker) are not headings."""
    note = "notes/unlimitediw-dist-sys-notes.md"
    text = [
        "# Top",  # 1
        "## Overlay",  # 2
        "```",  # 3
        "# a shell comment, not a heading",  # 4
        "~~~",  # 5: inside the ``` block, not a fence of its own
        "## still code",  # 6
        "```",  # 7
        "The passage.",  # 8
        "### Detail",  # 9
        "More.",  # 10
        "## Next",  # 11
        "Elsewhere.",  # 12
    ]
    (settings.corpus_dir / note).write_text("\n".join(text) + "\n", encoding="utf-8")
    section = note_section(fake_engine, note, 8, 8)
    assert (section.first, section.last) == (2, 10)


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
    with pytest.raises(ValueError, match="outside the corpus"):
        note_section(fake_engine, note, 1, 2)

    # ... or for a symlink loop: a one-line ValueError, not a RuntimeError.
    victim.unlink()
    victim.symlink_to(victim.name)
    with pytest.raises(ValueError, match="symlink loop"):
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


def test_passages_render_with_citation_label_and_section(fake_engine):
    answer = fake_engine.ask("overlay network service discovery", k=2)
    out = render_passages(fake_engine, answer)
    assert out.count('class="dsqa-passage"') == 2
    for p in answer.passages:
        assert p.source in out and f"{p.start_line}-{p.end_line}" in out
        assert f"score {p.score:.3f}" not in out.replace(f'title="score {p.score:.3f}"', "")  # a label, not a raw score
    assert re.findall(r"(strong|good|weak) match</span>", out) and out.count("<details") == 2


class _Elements(html.parser.HTMLParser):
    """Every start tag with its attributes, and whether tags nest properly."""

    VOID = {"br", "hr", "img", "input", "meta", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.balanced = True

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.balanced = False


def _elements(markup: str) -> _Elements:
    parser = _Elements()
    parser.feed(markup)
    parser.close()
    assert parser.balanced and not parser.stack, markup
    return parser


def test_passages_render_as_markdown_with_their_highlights():
    text = (
        "## Overlay networks\n"
        "* Create one with `docker network create -d overlay overnet`.\n"
        "* Then list them:\n\n"
        "```bash\ndocker network ls\n```\n"
        "See [the docs](https://docs.docker.com/network/) and <a name=\"lab\"></a>\n"
        "<a name=\"overlay\"></a>\n"
        "![](https://github.com/x/Image/1overlaynetwork.PNG)\n"
    )
    first = text.index("* Create")  # a highlight from the list marker on
    code = text.index("docker network ls")
    out = markdown_html(text, [(first, text.index("overnet`.") + 9), (code, code + len("docker network ls"))])
    page = _elements(out)
    names = [tag for tag, _ in page.tags]
    assert names.count("li") == 2 and "ul" in names and "pre" in names and "h2" in names
    assert "<code>docker network create -d overlay overnet</code>" in out.replace("<mark>", "").replace("</mark>", "")
    # The highlighted sentence and command, marked inside the list item and the code block.
    assert re.search(r"<li><mark>Create one with </mark><code><mark>docker network create", out)
    assert '<code class="language-bash"><mark>docker network ls</mark>' in out
    assert '<a href="https://docs.docker.com/network/" target="_blank" rel="noopener noreferrer nofollow">the docs</a>' in out
    # The image is a small link, never an <img>; the anchors are gone.
    assert "<img" not in out and 'class="dsqa-img" href="https://github.com/x/Image/1overlaynetwork.PNG"' in out
    assert "image: 1overlaynetwork.PNG" in out and "name=" not in out and "&lt;a" not in out


def test_highlights_never_change_how_a_passage_renders():
    """Marks are added, nothing else: for slices of every bundled note and
    random highlight spans, the HTML without its <mark>s is the HTML of the
    passage rendered without highlights."""
    rng = random.Random(15)
    checked = 0
    for note in sorted((Path(__file__).resolve().parent.parent.parent / "corpus").rglob("*.md")):
        lines = note.read_text(encoding="utf-8").splitlines(keepends=True)
        for start in range(0, len(lines), 6):
            text = "".join(lines[start : start + 12])
            if not text.strip():
                continue
            a = rng.randrange(len(text))
            spans = [(a, rng.randrange(a, len(text) + 1)), (rng.randrange(len(text)), len(text))]
            out = markdown_html(text, spans)
            assert re.sub(r"</?mark>", "", out) == markdown_html(text), (note.name, start, spans)
            _elements(out)
            checked += 1
    assert checked > 400


HOSTILE = (
    "# Notes <script>window.__pwned = 1; alert('script')</script>\n"
    "<img src=x onerror=\"window.__pwned = 2; alert('onerror')\"> [run](javascript:window.__pwned=3) ![i](https://evil.example/i.png)\n"
    "<svg onload=alert(3)></svg> <iframe src=\"javascript:alert(4)\"></iframe>\n"
    "* [click me](javascript:alert(5)) and [spaced](java\tscript:alert(6)) and [entity](javascript&#58;alert(7))\n"
    "* [data](data:text/html;base64,PHNjcmlwdD5hbGVydCg4KTwvc2NyaXB0Pg==) [vb](vbscript:msgbox(9)) <javascript:alert(10)>\n"
    "* ![x](javascript:alert(11)) ![y](https://evil.example/track.png) [f](file:///etc/passwd)\n"
    "* ${alert(12)} {{constructor.constructor('alert(13)')()}} \"><b onmouseover=alert(14)>hover</b>\n"
    "* [fine](https://example.org/a) [mail](mailto:a@example.org) [relative](other-note.md#part)\n"
)


def test_a_hostile_note_renders_inert():
    out = markdown_html(HOSTILE, [(0, len(HOSTILE))])
    page = _elements(out)
    for tag, attrs in page.tags:
        assert tag in {"h1", "p", "ul", "li", "a", "mark", "code", "pre", "strong", "em"}, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "src" not in attrs and "style" not in attrs
    hrefs = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    assert all(re.match(r"(https?://|mailto:|[\w.-]+(#|$))", h) for h in hrefs), hrefs
    assert all(safe_url(h) for h in hrefs)
    assert "https://example.org/a" in hrefs and "mailto:a@example.org" in hrefs and "other-note.md#part" in hrefs
    assert "https://evil.example/track.png" in hrefs  # an image is a link to it, never loaded
    assert "&lt;script&gt;" in out and "onerror=" in out  # shown as text
    for scheme in ("javascript:", "vbscript:", "data:", "file:"):
        assert not safe_url(scheme + "x") and not any(h.lower().startswith(scheme) for h in hrefs)
    assert not safe_url(" Java\nScript:alert(1)") and safe_url("notes/a.md") and safe_url("#top")


def test_citations_you_can_act_on(fake_engine):
    deep = "Docker and Containers › Networking and Orchestration › Docker Networking Hands-on Lab"
    assert shorten_heading(deep) == "… › Networking and Orchestration › Docker Networking Hands-on Lab"
    assert shorten_heading("A › B") == "A › B" and shorten_heading("") == ""
    source = "notes/unlimitediw-dist-sys-notes.md"
    p = Passage(text="Create an overlay network.", source=source, heading=deep, start_line=360, end_line=365, score=1.21)
    out = render_passage(fake_engine, 1, p, "strong match")
    page = _elements(out)
    attrs = {a.get("class"): a for _, a in page.tags}
    assert attrs["dsqa-copy"]["data-citation"] == p.citation
    path = fake_engine.settings.corpus_dir.resolve() / source
    assert attrs["dsqa-open"]["href"] == f"vscode://file{path.as_posix()}:360"
    assert attrs["dsqa-file"]["href"] == path.as_uri()
    assert attrs["dsqa-heading"]["title"] == deep and "… › Networking and Orchestration" in out
    assert ">strong match</span>" in out and "1.210" not in out.replace('title="score 1.210"', "")


def test_relevance_labels_follow_the_confidence():
    t = 0.523
    assert relevance(1.2, 1.2, t + 0.3, t) == "strong match"
    assert relevance(1.0, 1.2, t + 0.3, t) == "good match"  # 0.686: over the threshold, not by much
    assert relevance(0.6, 1.2, t + 0.3, t) == "weak match"
    assert relevance(1.2, 1.2, t - 0.01, t) == "weak match"  # not covered: even the best is weak
    assert relevance(0.9, 0.0, t + 0.1, t) == "good match"
    # A passage without every topic term of the question is never strong.
    assert relevance(1.2, 1.2, t + 0.3, t, covers_topic=False) == "good match"


def test_the_answer_box_says_why_and_how_to_read_the_confidence():
    from dsqa.results import Answer, Passage
    from dsqa.web.render import render_answer

    p = Passage("Raft was designed to be easier to understand than Paxos.", "raft.md", "", 3, 3, 1.0)
    refused = Answer("how does paxos work", [p], False, "", 0.4, "not_covered", gap="Your notes don't mention paxos.", threshold=0.72, weak_from=0.66)
    out = render_answer(refused)
    assert "Your notes don&#x27;t mention paxos." in out or "Your notes don't mention paxos." in out
    assert 'class="dsqa-scale"' in out and "answered from 0.72, closest match from 0.66" in out


def test_the_k_slider_ends_at_the_settings_limit(fake_engine):
    """One limit for k, Settings.max_k: the slider's end, and what the
    engine refuses beyond it."""
    from dsqa.web.handlers import PageHandlers

    engine = DSQA(fake_engine.settings.with_(max_k=30, k=7))
    (slider,) = [b for b in build_page(engine).blocks.values() if isinstance(b, gr.Slider) and b.elem_id == "dsqa-k"]
    assert (slider.minimum, slider.maximum, slider.value) == (1, 30, 7)
    answer_html, _ = PageHandlers(engine).ask("docker swarm", 31, None)
    assert "k must be between 1 and 30" in answer_html
    (slider,) = [b for b in build_page(fake_engine).blocks.values() if isinstance(b, gr.Slider)]
    assert slider.maximum == fake_engine.settings.max_k == 100


def test_answer_box_shows_three_states():
    p = Passage(text="Raft elects a leader.", source="notes/r.md", heading="A › B › C", start_line=3, end_line=4, score=0.6)
    weak = render_answer(Answer(question="q", passages=[p], found=False, confidence=0.45, coverage="weak"))
    assert WEAK_MATCH in weak and "dsqa-weak" in weak and "notes/r.md:3-4" in weak and 'href="#dsqa-p1"' in weak
    assert NOT_COVERED not in weak
    gone = render_answer(Answer(question="q", passages=[p], found=False, coverage="not_covered"))
    assert NOT_COVERED in gone and WEAK_MATCH not in gone
    found = render_answer(Answer(question="q", passages=[p], found=True, text="Use `docker run --rm` [1]."))
    assert "<code>docker run --rm</code>" in found and '<a class="dsqa-cite" href="#dsqa-p1">[1]</a>' in found


def test_index_panel_speaks_plainly(fake_engine, settings):
    panel = render_status(fake_engine.status())
    assert "up to date" in panel and "passages" in panel
    report = fake_engine.reindex(full=True)
    note = settings.corpus_dir / "notes" / "anonymous-short-notes.md"
    note.write_text(note.read_text(encoding="utf-8") + "\n## Added\nGossip.\n", encoding="utf-8")
    stale = render_status(fake_engine.status())
    assert "out of date" in stale and "anonymous-short-notes" in stale
    report = fake_engine.reindex()
    said = describe_reindex(report)
    assert "changed: notes/anonymous-short-notes.md" in said
    for internal in (panel, stale, said):
        for word in ("encoder", "onnx", "text/s", "chunks", "model"):
            assert word not in internal.lower(), (word, internal)


# -- reindex and status through the page, on a copy with the fake model -------
def test_reindex_button_updates_the_index_and_status(settings):
    engine = DSQA(settings, auto_reindex=False)  # no index yet (nor built on first use): the page still comes up
    running = _start(build_page(engine))
    try:
        client = gradio_client.Client(running.url, verbose=False)
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
        running.close()


# -- what the server answers at all: raw HTTP, as another site's page would send it
@pytest.fixture
def fake_server(fake_engine):
    running = _start(build_page(fake_engine))
    yield running
    running.close()


def _request(server: PageServer, method: str, path: str, headers: dict[str, str], body: bytes = b""):
    """One request with exactly these headers (Host included), over a raw
    connection to the server's port: (status, headers in lower case, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body or method == "POST":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


ASK_JSON = "/gradio_api/call/ask_json"
ASK_BODY = json.dumps({"data": ["docker swarm overlay network", 3, None]}).encode()


def test_foreign_host_and_origin_are_refused(fake_server):
    port = fake_server.port
    post = {"Content-Type": "application/json"}
    # DNS rebinding: another site's name now resolves to 127.0.0.1, so its
    # page's requests carry its own name as Host (and are same-origin to it).
    for host, origin in [
        (f"evil.example:{port}", f"http://evil.example:{port}"),
        (f"evil.example:{port}", None),
        (f"127.0.0.1.evil.example:{port}", f"http://127.0.0.1.evil.example:{port}"),
        ("localhost", None),  # the wrong port is another server's name
        (f"localhost:{port + 1}", None),
    ]:
        headers = {"Host": host, **post, **({"Origin": origin} if origin else {})}
        status, got, body = _request(fake_server, "POST", ASK_JSON, headers, ASK_BODY)
        assert status == 400, (host, status, body)
        assert "access-control-allow-origin" not in got and b"event_id" not in body
        status, got, body = _request(fake_server, "GET", "/gradio_api/info", {"Host": host})
        assert status == 400 and b"docker" not in body

    # Another site's page calling 127.0.0.1 directly: the right Host, its own Origin.
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"http://localhost:{port + 1}"):
        headers = {"Host": f"127.0.0.1:{port}", "Origin": origin}
        status, got, body = _request(fake_server, "POST", ASK_JSON, {**headers, **post}, ASK_BODY)
        assert status == 403 and "access-control-allow-origin" not in got and b"event_id" not in body, origin
        preflight = {**headers, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        status, got, _ = _request(fake_server, "OPTIONS", ASK_JSON, preflight)
        assert status == 403 and "access-control-allow-origin" not in got, origin

    # This machine's names for the server work, with their own origin or none.
    for name in ("localhost", "127.0.0.1", "[::1]", "LOCALHOST"):
        host = f"{name}:{port}"
        for headers in ({"Host": host}, {"Host": host, "Origin": f"http://{host}"}):
            status, got, body = _request(fake_server, "POST", ASK_JSON, {**headers, **post}, ASK_BODY)
            assert status == 200 and b"event_id" in body, (headers, status, body)
            assert "access-control-allow-origin" not in got
        status, _, body = _request(fake_server, "GET", "/", {"Host": host})
        assert status == 200 and b"<html" in body.lower()


def test_listed_origins_may_call_from_the_browser(fake_engine):
    """The origins are the engine's ``Settings.allow_origins`` (what ``dsqa
    serve --allow-origin`` and $DSQA_ALLOW_ORIGINS set)."""
    listed = DSQA(fake_engine.settings.with_(allow_origins=["http://localhost:3000/", "https://Notes.Example"]))
    running = _start(build_page(listed))
    try:
        host = {"Host": f"127.0.0.1:{running.port}"}
        post = {**host, "Content-Type": "application/json"}
        for origin in ("http://localhost:3000", "https://notes.example"):
            status, got, body = _request(running, "POST", ASK_JSON, {**post, "Origin": origin}, ASK_BODY)
            assert status == 200 and b"event_id" in body
            assert got["access-control-allow-origin"] == origin and "access-control-allow-credentials" not in got
            preflight = {**host, "Origin": origin, "Access-Control-Request-Method": "POST"}
            status, got, _ = _request(running, "OPTIONS", ASK_JSON, preflight)
            assert status == 200 and got["access-control-allow-origin"] == origin
        status, got, _ = _request(running, "POST", ASK_JSON, {**post, "Origin": "http://localhost:3001"}, ASK_BODY)
        assert status == 403 and "access-control-allow-origin" not in got
    finally:
        running.close()
    # Given to launch, they replace the settings' (here: allow none).
    running = _start(build_page(listed), allowed_origins=[])
    try:
        post = {"Host": f"127.0.0.1:{running.port}", "Content-Type": "application/json", "Origin": "http://localhost:3000"}
        assert _request(running, "POST", ASK_JSON, post, ASK_BODY)[0] == 403
    finally:
        running.close()
    page = build_page(fake_engine)  # never served: each launch below refuses its origin first
    for bad in ("localhost:3000", "http://localhost:3000/page", "*", "ftp://x"):
        with pytest.raises(InvalidInputError, match="scheme://host"):
            Settings(allow_origins=[bad])
        with pytest.raises(InvalidInputError, match="scheme://host"):
            launch(page, port=0, block=False, allowed_origins=[bad])


def test_uploads_are_refused_and_store_nothing(fake_server):
    upload_dir = Path(gr.utils.get_upload_folder())
    name = f"dsqa-upload-probe-{uuid.uuid4().hex}.txt"
    boundary = "dsqaboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode() + b"x" * 1_000_000 + f"\r\n--{boundary}--\r\n".encode()
    host = f"127.0.0.1:{fake_server.port}"
    for extra in ({}, {"Origin": f"http://{host}"}, {"Origin": "http://evil.example"}):
        headers = {"Host": host, "Content-Type": f"multipart/form-data; boundary={boundary}", **extra}
        for path in ("/gradio_api/upload", "/gradio_api/upload/", "/gradio_api/process_recording"):
            status, _, answer = _request(fake_server, "POST", path, headers, body)
            assert status == 403, (path, extra, status, answer)
    time.sleep(0.2)  # Gradio moves uploads into place in a background task
    assert not list(upload_dir.rglob(name)) if upload_dir.exists() else True



def test_request_bodies_over_the_limit_get_413(fake_server):
    """Issue 30: a 200 MB body used to be read into memory in full. Over the
    guard's limit it is refused, whether its Content-Length says so or it
    comes in chunks, and the server goes on answering."""
    host = f"127.0.0.1:{fake_server.port}"
    headers = {"Host": host, "Content-Type": "application/json"}
    big = json.dumps({"data": ["overlay " * 300_000, 3, None]}).encode()
    assert len(big) > MAX_BODY_BYTES
    status, _, body = _request(fake_server, "POST", ASK_JSON, headers, big)
    assert status == 413 and b"request body too large" in body, (status, body)

    conn = http.client.HTTPConnection("127.0.0.1", fake_server.port, timeout=20)
    try:
        pieces = (big[i : i + 65536] for i in range(0, len(big), 65536))
        with contextlib.suppress(ConnectionError):  # the server may stop reading once it has answered
            conn.request("POST", ASK_JSON, body=pieces, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413 and b"request body too large" in response.read()
    finally:
        conn.close()
    status, _, body = _request(fake_server, "POST", ASK_JSON, headers, ASK_BODY)
    assert status == 200 and b"event_id" in body


def test_the_body_limit_counts_what_arrives():
    """Without a Content-Length the guard counts the body as the app reads
    it: past the limit the app sees a disconnect and what it sends is
    dropped; under it, the app gets the whole body."""
    import asyncio

    seen: list[object] = []

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen.append("disconnect")
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                seen.append(len(body))
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def run(size: int, declared: bool) -> list[dict]:
        chunks = [{"type": "http.request", "body": b"x" * 1000, "more_body": True} for _ in range(size // 1000)]
        chunks.append({"type": "http.request", "body": b"", "more_body": False})
        headers = [(b"host", b"localhost:1")] + ([(b"content-length", str(size).encode())] if declared else [])
        sent: list[dict] = []

        async def receive():
            return chunks.pop(0)

        async def send(message):
            sent.append(message)

        guard = RequestGuard(app, allowed_hosts=None, max_body_bytes=10_000)
        asyncio.run(guard({"type": "http", "path": "/", "headers": headers}, receive, send))
        return sent

    assert run(5_000, declared=False)[0]["status"] == 200 and seen == [5_000]
    sent = run(50_000, declared=False)
    assert [m.get("status") for m in sent] == [413, None] and seen[-1] == "disconnect"
    assert b"too large" in sent[1]["body"]
    count = len(seen)
    assert run(50_000, declared=True)[0]["status"] == 413 and len(seen) == count  # refused before the app ran

def test_what_a_non_loopback_bind_checks():
    """Any Host is served there (documented in the README); the Origin check
    and the upload refusal still apply."""
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.org"))
    assert loopback_hosts("127.0.0.2", 80) >= {"localhost", "localhost:80", "127.0.0.2:80", "[::1]"}
    guard = RequestGuard(app=None, allowed_hosts=None, refused_paths=["/gradio_api/upload"])

    def scope(host, origin=None, path="/"):
        headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])
        return {"type": "http", "path": path, "headers": headers}

    assert guard.refusal(scope("192.168.1.5:7860")) is None
    assert guard.refusal(scope("notes.lan:7860", "http://notes.lan:7860")) is None
    assert guard.refusal(scope("notes.lan:7860", "http://evil.example"))[0] == 403
    assert guard.refusal(scope("notes.lan:7860", path="/gradio_api/upload/"))[0] == 403
    two_hosts = {"type": "http", "path": "/", "headers": [(b"host", b"a:1"), (b"host", b"b:1")]}
    assert guard.refusal(two_hosts)[0] == 400


# -- one-line errors and answering while a reindex runs ------------------------
def test_notes_that_are_not_names_are_a_clear_error(fake_server, caplog):
    client = gradio_client.Client(fake_server.url, verbose=False)
    message = "notes must be a note name or a list of note names"
    with pytest.raises(gradio_client.exceptions.AppError, match=message):
        client.predict("docker swarm", 3, 123, api_name="/ask_json")
    with caplog.at_level(logging.ERROR, logger="dsqa"):
        answer_html, passages_html = client.predict("docker swarm", 3, 123, api_name="/ask")
    assert message in answer_html and "something went wrong" not in answer_html and passages_html == ""
    assert not caplog.records, "a server traceback was logged"


def test_page_answers_during_a_reindex_and_refuses_a_second(fake_engine, gated_model):
    started, release = gated_model
    running = _start(build_page(fake_engine))
    note = fake_engine.settings.corpus_dir / "notes" / "new.md"
    note.write_text(f"# Gossip\nZookeeper gossip protocols elect a leader. {GATED}\n", encoding="utf-8")
    pool = ThreadPoolExecutor(4)
    try:
        client = gradio_client.Client(running.url, verbose=False)
        first = pool.submit(client.predict, api_name="/reindex")
        assert started.wait(30), "the reindex did not start"

        asked = time.monotonic()
        answer = pool.submit(client.predict, "zookeeper gossip leader", 3, None, api_name="/ask_json").result(timeout=15)
        assert time.monotonic() - asked < 10
        assert "notes/new.md" not in {p["source"] for p in answer["passages"]}  # the generation before the reindex

        report, _, _ = pool.submit(client.predict, api_name="/reindex").result(timeout=15)
        assert "a reindex is already running" in report and "dsqa-error" in report
        release.set()
        report, status, _ = first.result(timeout=60)
        assert "Reindexed" in report and "new.md" in report and "up to date" in status
        answer = client.predict("zookeeper gossip leader", 1, None, api_name="/ask_json")
        assert answer["passages"][0]["source"] == "notes/new.md"
    finally:
        release.set()
        pool.shutdown(wait=False, cancel_futures=True)
        running.close()


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
            "document.querySelector('#dsqa-passages .dsqa-citation').innerText.includes('notes/gossip.md')", timeout=30_000
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


def _placeholder(page: gr.Blocks) -> str:
    (box,) = [b for b in page.blocks.values() if getattr(b, "elem_id", None) == "dsqa-question"]
    return box.placeholder


def test_the_placeholder_is_a_demo_question_only_on_the_demo(fake_engine, fake_model, tmp_path):
    assert _placeholder(build_page(fake_engine)).startswith("e.g. how do overlay networks")
    own = tmp_path / "own"
    own.mkdir()
    (own / "raft.md").write_text("# Raft\nRaft elects a leader.\n", encoding="utf-8")
    engine = DSQA(corpus_dir=own, index_dir=tmp_path / "own-index", model="fake-hash")
    engine.reindex()
    shown = _placeholder(build_page(engine))
    assert "overlay" not in shown and "notes" in shown


def test_the_note_section_is_offered_only_when_it_shows_more(fake_engine, fake_model, tmp_path):
    """A short passage that is its whole section gets no "Open the note
    section" (it would repeat the passage word for word); a passage inside a
    longer section gets it."""
    own = tmp_path / "own"
    own.mkdir()
    (own / "short.md").write_text("# Raft\nRaft elects a leader.\n\n# Paxos\nPaxos needs a majority.\n", encoding="utf-8")
    engine = DSQA(corpus_dir=own, index_dir=tmp_path / "own-index", model="fake-hash")
    engine.reindex()
    (passage,) = engine.search("raft elects a leader", k=1)
    assert "Open the note section" not in render_passage(engine, 1, passage)
    long_one = next(p for p in fake_engine.search("docker swarm", k=5) if p.end_line - p.start_line < 40)
    assert "Open the note section" in render_passage(fake_engine, 1, long_one)
