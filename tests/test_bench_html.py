"""The counts the ``html`` bench part reports (bench/html_quality.py): chrome
chunks and wrapped-line fragments, on texts whose answer is known."""

from __future__ import annotations

from bench import html_quality
from dsqa.sources.sentences import sentence_spans


def corpus(*chunks: tuple[str, str, str]) -> html_quality.Corpus:
    return html_quality.Corpus(list(chunks))


def test_navigation_rows_tables_of_contents_and_boilerplate_are_chrome():
    pages = [(f"p{i}.html", f"Guide › Part {i}", f"## Part {i}\n\nPart {i} explains how the cache evicts entries.\n\n© Copyright 2001-2023, the authors.")
             for i in range(5)]
    c = corpus(
        *pages,
        ("nav.html", "Guide", "| Prev | Up | Next |\n| --- | --- | --- |\n| Part 1 | Home | Part 2 |"),
        ("toc.html", "Guide", "Table of Contents\n\n- Part 1\n- Part 2\n- Part 3"),
    )
    assert c.chrome_chunk("| Prev | Up | Next |\n| --- | --- | --- |\n| Part 1 | Home | Part 2 |")
    assert c.chrome_chunk("Table of Contents\n\n- Part 1\n- Part 2\n- Part 3")
    assert c.navigation_line("© Copyright 2001-2023, the authors.")  # on every page
    assert not c.chrome_chunk(pages[0][2])
    assert c.chrome_share() == 2 / 7


def test_wrapped_line_fragments():
    wrapped = "Data types are a way to limit the kind of data that can be\nstored in a table. Constraints give more control.\n"
    joined = "Data types are a way to limit the kind of data that can be stored in a table. Constraints give more control.\n"
    # spans cut at the line break, as line-based sentences were: both halves count
    assert html_quality.fragments(wrapped, [(0, 58), (59, 77), (78, 108)]) == 2
    # dsqa's own sentences join a hard-wrapped paragraph's lines (issue 26)
    assert html_quality.fragments(wrapped, sentence_spans(wrapped)) == 0
    assert html_quality.fragments(joined, sentence_spans(joined)) == 0
    listed = "- the first item of a list is one line\n- the second item is another line\n"
    assert html_quality.fragments(listed, sentence_spans(listed)) == 0
    fenced = "```\nfor key in cache the loop runs\nover every entry it holds\n```\n"
    assert html_quality.fragments(fenced, sentence_spans(fenced)) == 0
    started_inside = "for key in cache the loop runs\nover every entry it holds\n```\n\nThe loop above visits every entry.\n"
    assert html_quality.fragments(started_inside, sentence_spans(started_inside)) == 0
    quoted = "> ```\n> for key in cache the loop runs\n> over every entry it holds\n> ```\n"
    assert html_quality.fragments(quoted, sentence_spans(quoted)) == 0


def test_a_fence_that_opens_a_list_item_is_code():
    """Sphinx's field lists in the kernel's pages put a code block first in a
    list item of a block quote: its lines are code, not wrapped prose."""
    listed = (
        "The members are as follows:\n\n> - ```\n>   const struct cred *cred\n>   ```\n>\n"
        ">   The mounter credentials are kept with a reference.\n> 1. ```\n>    struct fs_parameter_spec {\n"
        ">            const char *name;\n>    };\n>    ```\n"
    )
    assert html_quality.fragments(listed, sentence_spans(listed)) == 0


def test_today_s_fragments_are_counted_among_prose_sentences(tmp_path, fake_model):
    """Read alone, a chunk that starts inside a code block pairs its fences
    the wrong way round (its prose looks like code, its code like prose):
    the chunker knows which sentences are lines of code, and counts
    fragments among the others, such as a sentence cut by a hard break."""
    from dsqa import Settings
    from dsqa.build.reindex import chunker_for
    from dsqa.sources.loading import load_corpus

    folder = tmp_path / "pages"
    folder.mkdir()
    code = "\n".join(f"value_{i} = compute_the_value(argument_{i}, other_{i})" for i in range(40))
    (folder / "page.md").write_text(
        f"# Relay\n\nThe callbacks are set up as below.\n\n```\n{code}\n```\n\n"
        "A sentence that a hard break cuts in  \nthe middle goes on here.\n"
    )
    settings = Settings(corpus_dir=folder, index_dir=tmp_path / "index", model="fake-hash", chunk_tokens=60, chunk_overlap_tokens=8)
    chunks = [c for note in load_corpus(folder).notes for c in chunker_for(settings, fake_model).chunk(note)]
    assert sum(not c.text.startswith(("#", "```")) and "```" in c.text for c in chunks) >= 1  # starts inside the code
    spans, fragments = html_quality.chunker_fragments(settings, fake_model)
    assert spans >= 40 + 2 and fragments == 2  # both halves of the cut sentence


def test_the_before_rows_really_read_with_the_version_1_reader(monkeypatch):
    """The bench's "before" reindex reads every page with bench/html_v1.py in
    its own process (dsqa's reader worker process would import today's)."""
    from bench import html_v1
    from dsqa.sources import formats
    from dsqa.sources.formats import worker
    from tests.sources.test_html_reader import DOCBOOK

    monkeypatch.setattr(worker, "_ISOLATE", worker._ISOLATE)
    monkeypatch.setattr(formats, "_BY_SUFFIX", dict(formats._BY_SUFFIX))
    html_v1.read_in_process(True)
    assert "| Prev |" in worker.extract("ddl.html", DOCBOOK.encode()).text
    html_v1.read_in_process(False)
    assert "Prev" not in worker.extract("ddl.html", DOCBOOK.encode()).text


def test_the_as_filed_row_is_scored_by_today_s_rules(tmp_path):
    """The as-filed code's index and answers (what bench/filed_html.py
    writes) are scored here: ranks by dsqa.evaluation.answers_question over
    its top passages, fragments over its own sentence spans."""
    from bench.__main__ import score_filed

    devset = tmp_path / "dev.jsonl"
    devset.write_text(
        '{"id": "a", "question": "q1", "answers": [{"note": "p.html", "phrase": "the leader is elected"}]}\n'
        '{"id": "b", "question": "q2", "answers": [{"note": "p.html", "phrase": "logs are replicated"}]}\n'
        '{"id": "c", "question": "off topic", "answers": []}\n',
        encoding="utf-8",
    )
    wrapped = "The leader is elected by a\nmajority of the nodes.\n"
    result = {
        "notes": 1, "skipped": 0, "seconds": 1.0, "cpu_s": 1.0, "index_mb": 0.5, "vectors": 6,
        "chunks": [["p.html", "Raft", wrapped, [[0, 26], [27, 49]]], ["p.html", "Raft", "| Prev | Up | Next |", []]],
        "answers": [
            {"found": True, "passages": [["q.html", "The leader is elected."], ["p.html", "The leader is\nelected."]]},
            {"found": True, "passages": [["p.html", "nothing here"]]},
            {"found": False, "passages": []},
        ],
    }
    scored = score_filed(result, devset)
    assert scored["quality"] == {"hit@1": 0.0, "hit@5": 0.5, "mrr10": 0.25}
    assert scored["chunks"] == 2 and scored["vectors_per_chunk"] == 3.0
    assert scored["fragment_share"] == 1.0  # both lines of the wrapped sentence are fragments
    assert scored["chrome_share"] == 0.5 and scored["cpu_s"] == 1.0
