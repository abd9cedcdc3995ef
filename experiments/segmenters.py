"""Which sentence segmenter cuts notes where a person would: sentencex, pysbd,
syntok or blingfire (issue 26).

Each is given what :mod:`dsqa.sentences` gives the one it uses: the prose
runs of the notes' paragraphs as ``dsqa.sentences.paragraph_pieces`` makes
them (a paragraph's hard-wrapped lines joined, markers left out, hard breaks,
images and bullet glyphs ending a run).

Quality is measured on ``segmenters_gold.json``: every run of the bundled
notes on which the four disagree, with the sentence starts a person marked
(where all four agree on a boundary it was taken, except where marked
wrong). A segmenter's *wrong cuts* are starts it puts where there is none
(each leaves two fragments: "docker push [account-id].", "(1."), its
*missed* the starts it does not find (a run of two sentences quoted as one).
Speed is the time to segment every run of the notes' paragraphs (and of
``--folder``'s, when given), best of three.

    pip install -r experiments/requirements.txt
    python experiments/segmenters.py [--folder DIR]...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dsqa import markup, sentences  # noqa: E402

Spans = list[tuple[int, int]]


def _sentencex(text: str) -> Spans:
    return sentences._sentencex(text)


def _pysbd():  # type: ignore[no-untyped-def]
    import pysbd

    seg = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return lambda text: [(s.start, s.end) for s in seg.segment(text)]


def _blingfire(text: str) -> Spans:
    import blingfire

    return [tuple(o) for o in blingfire.text_to_sentences_and_offsets(text)[1]] if text.strip() else []  # type: ignore[misc]


def _syntok(text: str) -> Spans:
    from syntok import segmenter

    out = []
    for paragraph in segmenter.analyze(text):
        for sentence in paragraph:
            last = sentence[-1]
            out.append((sentence[0].offset, last.offset + len(last.value)))
    return out


def segmenters() -> dict[str, sentences.Segmenter]:
    return {"sentencex": _sentencex, "pysbd": _pysbd(), "syntok": _syntok, "blingfire": _blingfire}


def _with_rules(segment: sentences.Segmenter) -> sentences.Segmenter:
    """``segment`` with dsqa's Markdown rules on top (never inside a code
    span, never after an enumeration number...: ``markdown_sentences``)."""
    return lambda text: sentences.markdown_sentences(text, segment)


def starts(text: str, spans: Spans) -> set[int]:
    """Where the second and later sentences start (leading spaces skipped)."""
    out = set()
    for a, _ in spans[1:]:
        while a < len(text) and text[a].isspace():
            a += 1
        if a < len(text):
            out.add(a)
    return out


def runs(folder: Path) -> list[str]:
    """Every prose run of the paragraphs of the Markdown and text notes in ``folder``."""
    out = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in (".md", ".markdown", ".txt"):
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        line_starts = sentences._line_starts(lines)
        for block in markup.parse(text).blocks:
            if block.kind == markup.PARAGRAPH:
                out.extend(joined for joined, _ in sentences.paragraph_pieces(text, lines, line_starts, block))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, action="append", default=[], help="another notes folder to time (and to count cuts on)")
    parser.add_argument("--show", help="print the wrong cuts and misses of this segmenter")
    args = parser.parse_args()
    gold = json.loads((Path(__file__).with_name("segmenters_gold.json")).read_text(encoding="utf-8"))
    texts = runs(ROOT / "corpus" / "notes")
    for folder in args.folder:
        texts += runs(folder)
    print(f"{len(gold)} marked runs ({sum(len(g['boundaries']) for g in gold)} sentence starts inside them); "
          f"{len(texts)} runs timed ({sum(len(t) for t in texts):,} characters)")
    print(f"{'segmenter':<16} {'wrong cuts':>10} {'missed':>7} {'runs exact':>11} {'ms (all runs)':>14}")
    rows = [(name, segment) for name, segment in segmenters().items()]
    rows += [(f"{name}+rules", _with_rules(segment)) for name, segment in segmenters().items()]
    for name, segment in rows:
        wrong = missed = exact = 0
        for g in gold:
            found, want = starts(g["text"], segment(g["text"])), set(g["boundaries"])
            wrong += len(found - want)
            missed += len(want - found)
            exact += found == want
            if args.show == name and found != want:
                for at in sorted(found ^ want):
                    kind = "WRONG " if at in found else "MISSED"
                    print(f"  {kind} {g['note']}:{g['line']} …{g['text'][max(0, at - 40):at]}‖{g['text'][at:at + 25]}…")
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for text in texts:
                segment(text)
            best = min(best, time.perf_counter() - t0)
        print(f"{name:<16} {wrong:>10} {missed:>7} {exact:>7}/{len(gold):<3} {best * 1000:>14.0f}")


if __name__ == "__main__":
    main()
