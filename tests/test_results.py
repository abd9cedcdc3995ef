"""The result objects as a Python user meets them: short reprs, readable
strings, and notebook HTML that never lets note text become markup."""

from __future__ import annotations

import pytest

from dsqa import Answer, Passage


def _passage(text: str = "Pods are the smallest deployable units. " * 20) -> Passage:
    return Passage(text=text, source="notes/k8s.md", heading="Kubernetes › Pods", start_line=3, end_line=9, score=0.8123)


def test_passage_str_is_citation_then_text():
    p = _passage("A pod holds one or more containers.\n")
    assert str(p) == "notes/k8s.md:3-9 · Kubernetes › Pods\nA pod holds one or more containers."


def test_reprs_are_short_and_name_what_matters():
    p = _passage()
    r = repr(p)
    assert len(r) < 160 and "notes/k8s.md:3-9" in r and "0.812" in r and r.endswith("…')")
    a = Answer("what is a pod", [p] * 10, True, "Pods are the smallest deployable units. [1]", 0.71)
    ra = repr(a)
    assert len(ra) < 220 and "found=True" in ra and "passages=10" in ra and "0.710" in ra
    assert p.text not in ra


def test_notebook_html_escapes_note_text():
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    a = Answer("q <b>", [_passage(evil)], False, "", 0.2)
    out = a._repr_html_()
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;" in out and "do not seem to cover" in out
    assert out.count("<li>") == 1


def test_coverage_follows_found_and_rejects_contradictions():
    import pytest

    assert Answer("q", [], True, "x").coverage == "answered"
    assert Answer("q", [], False).coverage == "not_covered"
    weak = Answer("q", [_passage()], False, "", 0.4, coverage="weak")
    assert weak.to_dict()["coverage"] == "weak"
    with pytest.raises(ValueError):
        Answer("q", [], True, coverage="weak")
    with pytest.raises(ValueError):
        Answer("q", [], False, coverage="maybe")


def test_the_page_and_the_cli_word_a_refusal_with_the_same_sentence():
    pytest.importorskip("markdown_it")  # the web extra renders Markdown
    from dsqa.results import NOT_COVERED_LABEL, WEAK_LABEL
    from dsqa.web import render_answer

    refused, weak = Answer("q", [], False), Answer("q", [], False, "closest", coverage="weak")
    assert str(refused).startswith(NOT_COVERED_LABEL) and NOT_COVERED_LABEL in render_answer(refused)
    assert str(weak).startswith(WEAK_LABEL) and WEAK_LABEL in render_answer(weak)
