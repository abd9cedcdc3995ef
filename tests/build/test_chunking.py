from __future__ import annotations

import pytest
from conftest import CORPUS

from dsqa.build.chunking import Chunker, split_sections
from dsqa.encoders import get_embedder
from dsqa.settings import Settings
from dsqa.sources.loading import Note, load_corpus
from dsqa.sources.markup import HEADING_SEPARATOR


@pytest.fixture(scope="module")
def real_tokens():
    """The real model's tokenizer (no torch needed to count tokens)."""
    return get_embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def bundled_chunks(real_tokens):
    s = Settings()
    chunker = Chunker(real_tokens.count_tokens, real_tokens.max_tokens, s.chunk_tokens, s.chunk_overlap_tokens, s.embed_headings)
    notes = load_corpus(CORPUS).notes
    return {n.source: (n, chunker.chunk(n)) for n in notes}


def test_batch_counting_gives_the_same_chunks_with_few_single_calls(real_tokens, bundled_chunks):
    s = Settings()
    singles: list[str] = []
    batches: list[int] = []

    def one(text: str) -> int:
        singles.append(text)
        return real_tokens.count_tokens(text)

    def many(texts: list[str]) -> list[int]:
        batches.append(len(texts))
        return real_tokens.count_tokens_batch(texts)

    chunker = Chunker(one, real_tokens.max_tokens, s.chunk_tokens, s.chunk_overlap_tokens, s.embed_headings, many)
    for source, (n, expected) in bundled_chunks.items():
        assert chunker.chunk(n) == expected, source
    # Batches carry the counting; single calls are left for cutting over-long lines.
    assert sum(batches) > 10 * len(singles)


def note(text: str, source: str = "n.md") -> Note:
    return Note(source=source, text=text, sha256="x")


def test_every_bundled_note_is_chunked(bundled_chunks):
    assert len(bundled_chunks) == 5
    for source, (_n, chunks) in bundled_chunks.items():
        assert chunks, source


def test_line_numbers_are_exact_for_every_chunk(bundled_chunks):
    for source, (n, chunks) in bundled_chunks.items():
        lines = n.text.split("\n")
        for c in chunks:
            assert n.text[c.start_char : c.end_char] == c.text
            region = "\n".join(lines[c.start_line - 1 : c.end_line])
            assert c.text in region, (source, c.start_line, c.end_line)
            first, last = c.text.split("\n")[0], c.text.split("\n")[-1]
            assert first in lines[c.start_line - 1]
            assert last in lines[c.end_line - 1]


def test_no_chunk_exceeds_the_model_window(bundled_chunks, real_tokens):
    for source, (_n, chunks) in bundled_chunks.items():
        for c in chunks:
            assert real_tokens.count_tokens(c.embed_text) <= real_tokens.max_tokens - 2, (source, c.start_line)


def test_chunks_cover_every_non_blank_line(bundled_chunks):
    for source, (n, chunks) in bundled_chunks.items():
        covered = set()
        for c in chunks:
            covered.update(range(c.start_line, c.end_line + 1))
        for no, line in enumerate(n.text.split("\n"), 1):
            if line.strip() and line.strip() != "#":
                assert no in covered, (source, no, line)


def test_heading_paths(bundled_chunks):
    n, chunks = bundled_chunks["notes/bbowman410-dist-sys-practice.md"]
    hit = [c for c in chunks if "docker network create" in c.text.lower() or "Lab: Docker Networking" in c.text]
    assert hit
    assert hit[0].heading == HEADING_SEPARATOR.join(
        ["Distributed Systems Practice", "Area 1 - Docker & Containers", "Intermediate Courses:", "Lab: Docker Networking (1 hour)"]
    )


def test_bare_hash_spacer_does_not_reset_heading(bundled_chunks):
    n, chunks = bundled_chunks["notes/unlimitediw-dist-sys-notes.md"]
    figlet = [c for c in chunks if "figlet" in c.text]
    assert figlet and all("Docker images" in c.heading.split(HEADING_SEPARATOR) for c in figlet)
    assert all(part for c in chunks for part in c.heading.split(HEADING_SEPARATOR) if c.heading)


def test_code_fences_stay_whole(bundled_chunks):
    for source, (_n, chunks) in bundled_chunks.items():
        for c in chunks:
            fence_lines = [line for line in c.text.split("\n") if line.strip().startswith("```") and line.strip().count("```") == 1]
            assert len(fence_lines) % 2 == 0, (source, c.start_line, c.text[:200])


def test_note_without_headings_breaks_at_paragraphs(bundled_chunks):
    n, chunks = bundled_chunks["notes/haoduoding-dist-sys-practice.md"]
    lines = n.text.split("\n")
    # a copied web page has no Markdown headings; its title lines stand in
    assert any(c.heading == "Lab: Docker Intro" for c in chunks)
    assert all(HEADING_SEPARATOR not in c.heading for c in chunks)
    assert len(chunks) > 10
    # most chunks start a paragraph: the line before is blank
    starts_paragraph = sum(1 for c in chunks if c.start_line == 1 or not lines[c.start_line - 2].strip())
    assert starts_paragraph >= 0.8 * len(chunks)


def test_passages_stay_citable(bundled_chunks):
    lengths = sorted(len(c.text) for _, chunks in bundled_chunks.values() for c in chunks)
    assert lengths[len(lengths) // 2] <= 1000
    assert lengths[-1] <= 1600


def test_bold_lines_title_sections():
    text = "# Notes\n\n> **Docker Networking**\nbridge and overlay\n\n**Swarm**\nmanagers and workers\n"
    assert [h for _, _, h in split_sections(text)] == [
        f"Notes{HEADING_SEPARATOR}Docker Networking",
        f"Notes{HEADING_SEPARATOR}Swarm",
    ]


def test_title_with_nothing_under_it_joins_the_next_section():
    text = "# A\n\n## Empty\n\n## Full\nbody line\n"
    sections = split_sections(text)
    assert sections == [(0, 7, f"A{HEADING_SEPARATOR}Full")]


def test_sections_split_on_headings_only_outside_code():
    text = "# A\nintro\n```\n# not a heading\n```\n## B\nbody\n"
    sections = split_sections(text)
    assert [(a, b, h) for a, b, h in sections] == [(0, 5, "A"), (5, 8, f"A{HEADING_SEPARATOR}B")]


def _word_chunker(chunk_tokens=20, overlap=0):
    return Chunker(lambda t: len(t.split()), max_tokens=40, chunk_tokens=chunk_tokens, overlap_tokens=overlap, embed_headings=True)


def test_long_line_is_split_inside_and_keeps_its_line_number():
    words = " ".join(f"w{i}." for i in range(100))
    text = f"# H\n\n{words}\n"
    chunks = _word_chunker().chunk(note(text))
    body = [c for c in chunks if "w50." in c.text]
    assert body and body[0].start_line == body[0].end_line == 3
    for c in chunks:
        assert len(c.embed_text.split()) <= 38
        assert text[c.start_char : c.end_char] == c.text


def test_code_block_that_fits_is_never_split():
    code = "```\n" + "\n".join(f"line {i}" for i in range(8)) + "\n```"
    text = "# H\n" + "\n".join(f"word{i} x" for i in range(12)) + "\n" + code + "\nafter\n"
    chunks = _word_chunker(chunk_tokens=20).chunk(note(text))
    holding = [c for c in chunks if "line 3" in c.text]
    assert len(holding) == 1 and "```" in holding[0].text and "line 0" in holding[0].text and "line 7" in holding[0].text


def test_oversized_code_block_is_split_by_lines():
    code = "```\n" + "\n".join(f"a b c {i}" for i in range(30)) + "\n```"
    chunks = _word_chunker().chunk(note(code))
    assert len(chunks) > 1
    assert all(len(c.embed_text.split()) <= 38 for c in chunks)


def test_overlap_repeats_trailing_lines():
    text = "\n".join(f"alpha beta gamma {i}" for i in range(20))
    chunks = _word_chunker(chunk_tokens=20, overlap=8).chunk(note(text))
    assert len(chunks) > 2
    assert chunks[1].start_line <= chunks[0].end_line


def test_empty_and_blank_notes_give_no_chunks():
    assert _word_chunker().chunk(note("\n\n  \n")) == []
