"""The page's rendering and the note-section reader, called directly: the
answer box, passages, highlights, hostile notes, citations, the placeholder."""

# ruff: noqa: F811 (the fixtures imported from web_shared are test parameters here)
from __future__ import annotations

import html.parser
import random
import re
from pathlib import Path

import pytest
from web_shared import (  # noqa: F401 (fixtures are test parameters)
    GRADIO_WARNINGS,
    HOSTILE,
    fake_engine,
    gr,
)

from dsqa import DSQA, Answer, Passage
from dsqa.web import (
    NOT_COVERED,
    WEAK_MATCH,
    highlight_html,
    note_section,
    render_answer,
    render_passage,
    render_passages,
)
from dsqa.web.page import build_page
from dsqa.web.passage_html import markdown_html, relevance, safe_url, shorten_heading

pytestmark = GRADIO_WARNINGS


# -- the note-section reader and the rendering --------------------------------

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
