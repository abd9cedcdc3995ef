"""The Markdown conventions shared by the chunker, the answer and the page."""

import pytest

from dsqa.sources.markup import fence, heading, heading_level


@pytest.mark.parametrize(
    "line, level",
    [("# Title", 1), ("###### Six", 6), ("   ## Indented", 2), ("##", 2), ("#\tTab", 1),
     ("####### Seven", 0), ("    # code", 0), ("#hashtag", 0), ("text # not", 0), ("", 0)],
)
def test_heading_level_is_commonmarks(line, level):
    assert heading_level(line) == level


def test_heading_keeps_indent_level_and_text_for_callers_to_bound():
    h = heading("        ####### Deep  ")
    assert (h.indent, h.level, h.text) == (8, 7, "Deep")
    assert heading("#") is not None and heading("#").rest == ""
    assert heading("#!/bin/sh") is None


@pytest.mark.parametrize(
    "line, marker",
    [("```", "```"), ("```python", "```"), ("  ~~~", "~~~"), ("```x```", "```"), ("``", None), ("text ```", None)],
)
def test_fence(line, marker):
    assert fence(line) == marker
