"""Notes read as Markdown blocks (markdown-it-py), the sentences quoted from
them, and the chunks cut along their structure (issue 26): every chunk and
every sentence checked against the note's own text, on the bundled notes and
on generated hard-wrapped notes."""

from __future__ import annotations

import re
import textwrap

import pytest
from conftest import CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsqa.build.chunking import Chunker, split_sections
from dsqa.sources import markup
from dsqa.sources.loading import Note, load_corpus
from dsqa.sources.markup import HEADING_SEPARATOR
from dsqa.sources.sentences import (
    markdown_sentences,
    sentence_spans,
    sentence_text,
    sentence_windows,
)


def _chunker(chunk_tokens: int = 40, overlap: int = 0) -> Chunker:
    return Chunker(lambda t: len(t.split()), max_tokens=80, chunk_tokens=chunk_tokens, overlap_tokens=overlap, embed_headings=True)


def _note(text: str) -> Note:
    return Note(source="n.md", text=text, sha256="x")


# -- blocks ---------------------------------------------------------------


def test_blocks_carry_their_lines_and_list_nesting():
    text = "# Title\n\nintro line one\nline two\n\n* item a\n  * child a1\n  * child a2\n* item b\n\n```\ncode\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    s = markup.parse(text)
    kinds = [(b.kind, b.first, b.end) for b in s.blocks]
    assert kinds == [
        ("heading", 0, 1), ("paragraph", 2, 4), ("paragraph", 5, 6), ("paragraph", 6, 7), ("paragraph", 7, 8),
        ("paragraph", 8, 9), ("code", 10, 13), ("table", 14, 17),
    ]
    a, a1, a2, b = s.blocks[2:6]
    assert a.lead and s.items[a.item].depth == 1
    assert s.items[a1.item].depth == 2 and s.items[a1.item].parent == a.item
    assert s.items[a2.item].parent == a.item and s.items[b.item].depth == 1


def test_every_non_blank_line_is_in_a_block():
    text = "[ref]: https://example.com\n\n*\n\nword\n<a name=\"x\"></a>\n"
    covered = {k for b in markup.parse(text).blocks for k in range(b.first, b.end)}
    assert covered >= {k for k, line in enumerate(text.split("\n")) if line.strip()}


@pytest.mark.parametrize(
    "text, title",
    [
        ("> Overlay Networking\n* item one here\n", "Overlay Networking"),
        ("**Swarm**\nmanagers and workers\n", "Swarm"),
        ("> **Docker Networking**\nbridge and overlay\n", "Docker Networking"),
        ("Section #3 - Overlay Networking\n\nbody text here.\n", "Section #3 - Overlay Networking"),
        ("> Summary:\n* the gist\n", "Summary"),
    ],
)
def test_one_line_labels(text, title):
    labels = [b for b in markup.parse(text).blocks if b.kind == markup.LABEL]
    assert [b.content for b in labels] == [title]


@pytest.mark.parametrize(
    "text",
    [
        "> This blockquote says a whole sentence.\n",  # closing punctuation: a quote, not a label
        "> a quote\n> of two lines\n",
        "* **bold item**\n",  # a list item's text, never a label
        "# H\n\nA short line\n\nbody\n",  # a short line is a label only in a note without headings
    ],
)
def test_not_labels(text):
    assert not [b for b in markup.parse(text).blocks if b.kind == markup.LABEL]


# -- sentences ------------------------------------------------------------


def test_sentences_join_hard_wrapped_lines_and_map_back_exactly():
    text = "Raft elects a leader, e.g. after a timeout, and the\nleader applies entries (see the log).\nVersion 1.2.3 of etcd\nuses it too.\n"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Raft elects a leader, e.g. after a timeout, and the\nleader applies entries (see the log).",
        "Version 1.2.3 of etcd\nuses it too.",
    ]
    assert sentence_text(text, *spans[0]) == "Raft elects a leader, e.g. after a timeout, and the leader applies entries (see the log)."


def test_sentences_stay_in_their_block_and_skip_markers():
    text = "> Quoted part one is here\n> and continues here.\n\n* A list item that wraps\n  onto a second line.\n  * A nested item says this.\n"
    got = [sentence_text(text, a, b) for a, b in sentence_spans(text)]
    assert got == ["Quoted part one is here and continues here.", "A list item that wraps onto a second line.", "A nested item says this."]


def test_no_sentence_from_headings_images_or_labels():
    text = "# A heading of several words\n\n> Overlay Networking Lab Notes\n\n![an image with words](https://x/y.png)\n\nReal text with four words.\n"
    assert [text[a:b] for a, b in sentence_spans(text)] == ["Real text with four words."]


def test_hard_breaks_and_images_end_sentences():
    text = "Format of the file here  \nService name and its image\nLast line of the paragraph ![](x.png) after the image comes text.\n"
    got = [text[a:b] for a, b in sentence_spans(text)]
    assert got == ["Format of the file here", "Service name and its image\nLast line of the paragraph", "after the image comes text."]


@pytest.mark.parametrize(
    "run, expected",
    [
        ("Build it with ```docker build -t api .```. Then push it.", ["Build it with ```docker build -t api .```.", "Then push it."]),
        ("Four modules. 1. Build a stream. 2. Aggregate data.", ["Four modules.", "1. Build a stream.", "2. Aggregate data."]),
        ("Ranges like (0 .. 5) count. So do i.e. asides.", ["Ranges like (0 .. 5) count.", "So do i.e. asides."]),
        ("Run ./producer first. Then run ./consumer.", ["Run ./producer first.", "Then run ./consumer."]),
    ],
)
def test_markdown_sentences(run, expected):
    assert [run[a:b].strip() for a, b in markdown_sentences(run)] == expected


def test_a_passage_cut_from_a_nested_list_is_read_as_a_list():
    text = "    * A deeply nested item says this.\n  * Its parent's sibling says that.\n"
    got = [sentence_text(text, a, b) for a, b in sentence_spans(text)]
    assert got == ["A deeply nested item says this.", "Its parent's sibling says that."]


def test_windows_are_whole_sentences():
    text = "First sentence of the note.\nSecond one is\nwrapped here. Third sentence ends it.\n"
    windows = sentence_windows(text, 3)
    assert [w[2] for w in windows][1] == ["First sentence of the note.", "Second one is wrapped here.", "Third sentence ends it."]


def test_the_lines_of_a_code_block_or_a_table_share_one_window():
    """A window per line made a vector per line of every command and table
    (a third of the windows of Python's documentation): the lines of one
    block are one window, the mean of all its lines, while each line stays
    a sentence an answer can quote and prose keeps its windows."""
    text = textwrap.dedent(
        """\
        # Run it

        Start the service with these commands. Then check that it answers.

        ```
        docker network create -d overlay overnet
        docker service create --name web --network overnet nginx
        docker service ps web
        ```

        | Flag | What it does here |
        |---|---|
        | --detach | runs the task in the background |
        | --publish | maps a port of the host to the task |

        The service answers on every node of the swarm.
        """
    )
    (chunk,) = Chunker(lambda t: len(t.split()), max_tokens=200, chunk_tokens=150).chunk(_note(text))
    windows = sentence_windows(chunk.text, 3, chunk.sentences, chunk.contexts, chunk.titles, chunk.units)
    by_sentence = {sentence_text(chunk.text, a, b): group for a, b, group in windows}
    commands = ["docker network create -d overlay overnet", "docker service create --name web --network overnet nginx", "docker service ps web"]
    for line in commands:
        assert by_sentence[line] == commands
    rows = ["| Flag | What it does here |", "| --detach | runs the task in the background |", "| --publish | maps a port of the host to the task |"]
    for row in rows:
        assert by_sentence[row] == rows
    assert by_sentence["Then check that it answers."] == ["Start the service with these commands.", "Then check that it answers.", commands[0]]
    assert by_sentence["The service answers on every node of the swarm."] == [rows[-1], "The service answers on every node of the swarm."]


# -- chunks ---------------------------------------------------------------

OVERLAY = textwrap.dedent(
    """\
    ### Networking Lab
    > Bridge Networking
    * Connect a container
      * The bridge network is the default network for new containers here.
      * Create two containers and list them with docker ps to verify.
    > Overlay Networking
    * Initialize a new swarm and join a worker node to it now.
    * Create an overlay network
      * Create the overlay network by docker network create -d overlay overnet.
      * The overnet network appears on a host only when it runs a task of a service.
    * Test the network
      * Log on to the service task and ping the other task over the overlay.
    * Test the service discovery.
      * Run cat /etc/resolv.conf to get the nameserver 127.0.0.11 of the embedded DNS resolver.
      * The container can ping the service by name and gets the service's virtual ip.
    * finally clean up all.
    """
)


def test_an_item_stays_with_its_nested_items_and_titles_them():
    chunks = _chunker(chunk_tokens=60).chunk(_note(OVERLAY))
    holding = [c for c in chunks if "Test the service discovery." in c.text]
    assert len(holding) == 1
    c = holding[0]
    assert "nameserver 127.0.0.11" in c.text and "virtual ip" in c.text
    assert c.heading.split(HEADING_SEPARATOR)[:2] == ["Networking Lab", "Overlay Networking"]
    # chunks of the overlay part never start inside an item's nested items
    lines = OVERLAY.split("\n")
    for c in chunks:
        if c.start_line > 6:
            assert not lines[c.start_line - 1].startswith("  "), (c.start_line, c.text)


def test_a_chunk_that_starts_inside_an_item_carries_it_in_its_path():
    children = "\n".join(f"  * child number {i} says something about the parent item here." for i in range(12))
    text = f"# Top\n\n* Parent item title\n{children}\n"
    chunks = _chunker(chunk_tokens=40).chunk(_note(text))
    assert len(chunks) > 1
    for c in chunks[1:]:
        assert c.heading == f"Top{HEADING_SEPARATOR}Parent item title"


def test_labels_title_sections():
    text = "# Notes\n\n> Overlay Networking\n* overlay stuff is here\n\nSection 3 - Storage\n\nvolumes are here\n"
    assert [h for _, _, h in split_sections(text)] == [
        f"Notes{HEADING_SEPARATOR}Overlay Networking",
        f"Notes{HEADING_SEPARATOR}Section 3 - Storage",
    ]


def test_a_small_section_shares_a_chunk_with_the_subsections_it_introduces():
    body = " ".join(f"word{i}" for i in range(12))
    text = (
        "# Lab\n\nA short intro.\n\n## Task 1\n\n" + body + ".\n\n## Task 2\n\n" + body + ".\n\n"
        "# FAQ\n\n## Can it run on PyPy?\n\nYes, it can.\n\n## Why is it slow?\n\n" + body + ".\n"
    )
    chunks = _chunker(chunk_tokens=40).chunk(_note(text))
    # the intro is too small to stand alone: it goes with the start of the
    # subsections under it, under its own heading path
    (first,) = [c for c in chunks if "A short intro." in c.text]
    assert first.heading == "Lab" and "## Task 1" in first.text
    # a small section with no subsections of its own stays alone: never
    # packed with a sibling, nor with the section before it
    (answer,) = [c for c in chunks if "Yes, it can." in c.text]
    assert answer.heading == f"FAQ{HEADING_SEPARATOR}Can it run on PyPy?"
    assert "Why is it slow" not in answer.text
    assert not any("Task 2" in c.text and "FAQ" in c.text for c in chunks)


def test_a_long_paragraph_is_cut_between_sentences():
    sentence = "Every replica applies the committed entries of the log in order"
    text = "\n".join(textwrap.wrap(". ".join(f"{sentence} {i}" for i in range(20)) + ".", 80))
    chunks = _chunker(chunk_tokens=40).chunk(_note(text))
    assert len(chunks) > 2
    for c in chunks:
        assert re.match(r"Every\s+replica", c.text), c.text[:40]
        assert c.text.rstrip().endswith("."), c.text[-40:]


def test_image_links_are_not_embedded():
    text = "# H\n\n* item with words\n  ![](https://example.com/some/long/path/image.png)\n"
    (c,) = _chunker().chunk(_note(text))
    assert "example.com" in c.text and "example.com" not in c.embed_text


def _check_chunks(n: Note, chunks) -> None:
    text = n.text
    lines = text.split("\n")
    covered: set[int] = set()
    for c in chunks:
        assert text[c.start_char : c.end_char] == c.text
        assert text.count("\n", 0, c.start_char) + 1 == c.start_line
        assert text.count("\n", 0, max(c.end_char - 1, c.start_char)) + 1 == c.end_line
        covered.update(range(c.start_line, c.end_line + 1))
        for a, b in c.sentences:
            assert 0 <= a < b <= len(c.text)
            s = c.text[a:b]
            assert s == s.strip() and s
            # never in the middle of a word
            assert a == 0 or not (c.text[a - 1].isalnum() and s[0].isalnum()), s
            assert b == len(c.text) or not (c.text[b].isalnum() and s[-1].isalnum()), s
    for no, line in enumerate(lines, 1):
        if line.strip():
            assert no in covered, (n.source, no, line)


@pytest.fixture(scope="module")
def bundled():
    return load_corpus(CORPUS).notes


@pytest.mark.parametrize("tokens", [40, 200])
def test_bundled_chunks_and_sentences_match_the_notes(bundled, tokens):
    chunker = _chunker(chunk_tokens=tokens) if tokens == 40 else Chunker(lambda t: len(t.split()) * 4 // 3, 256, 200, 24)
    for n in bundled:
        chunks = chunker.chunk(n)
        _check_chunks(n, chunks)
        # the chunk's sentences are the note's: the same spans as reading the whole note
        whole = set(sentence_spans(n.text))
        for c in chunks:
            assert {(a + c.start_char, b + c.start_char) for a, b in c.sentences} <= whole


# -- generated notes --------------------------------------------------------

_WORD = st.sampled_from("raft leader log entry node quorum etcd replica term vote commit shard key value cluster".split())
_ABBREV = st.sampled_from(["e.g.", "i.e.", "v1.2.3", "3.14", "(see above)", "etc.,", "0 .. 5"])


@st.composite
def _sentence(draw) -> str:
    words = draw(st.lists(st.one_of(_WORD, _WORD, _WORD, _ABBREV), min_size=4, max_size=16))
    words[0] = words[0].capitalize() if words[0][0].isalpha() else "Then"
    return " ".join(words) + draw(st.sampled_from([".", ".", "?", "!"]))


@st.composite
def _paragraph(draw) -> tuple[list[str], list[str]]:
    """Lines of a hard-wrapped paragraph, and its sentences."""
    sentences = draw(st.lists(_sentence(), min_size=1, max_size=5))
    width = draw(st.integers(30, 90))
    return textwrap.wrap(" ".join(sentences), width, break_on_hyphens=False), sentences


@st.composite
def _note_text(draw) -> tuple[str, list[str]]:
    parts: list[str] = []
    said: list[str] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["heading", "label", "para", "list", "code"]))
        if kind == "heading":
            parts.append("#" * draw(st.integers(1, 3)) + " " + " ".join(draw(st.lists(_WORD, min_size=1, max_size=4))))
        elif kind == "label":
            parts.append("> " + " ".join(draw(st.lists(_WORD, min_size=1, max_size=3))).title())
        elif kind == "para":
            lines, sentences = draw(_paragraph())
            parts.append("\n".join(lines))
            said += sentences
        elif kind == "list":
            items = []
            for depth in draw(st.lists(st.integers(0, 2), min_size=1, max_size=6)):
                depth = min(depth, len(items) and 2)
                lines, sentences = draw(_paragraph())
                pad = "  " * depth
                items.append(pad + "* " + ("\n" + pad + "  ").join(lines))
                said += sentences
            parts.append("\n".join(items))
        else:
            parts.append("```\n$ " + " ".join(draw(st.lists(_WORD, min_size=1, max_size=6))) + "\n```")
    return "\n\n".join(parts) + "\n", said


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_note_text(), st.integers(20, 80))
def test_generated_notes(note_and_sentences, tokens):
    text, said = note_and_sentences
    n = _note(text)
    chunks = _chunker(chunk_tokens=tokens).chunk(n)
    _check_chunks(n, chunks)
    got = [sentence_text(text, a, b) for a, b in sentence_spans(text)]
    # a line of code is quoted as a whole; prose as its whole sentences
    assert [s for s in got if not s.startswith("$ ")] == [s for s in said if len(s.split()) >= 4]


def test_chunk_sentences_are_the_notes_sentences(bundled):
    from dsqa.build.chunking import note_sentences

    chunker = _chunker(chunk_tokens=60)
    for n in bundled:
        whole = set(note_sentences(n.text, n.layout))
        for c in chunker.chunk(n):
            assert {(a + c.start_char, b + c.start_char) for a, b in c.sentences} <= whole
