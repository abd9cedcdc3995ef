"""From ranked passages to an answer: whether the notes cover the question,
and the one to three sentences that answer it, each cited.

No language model is involved: the answer quotes the notes. Each quoted
sentence is the centre of a sentence window whose vector matched the
question, re-scored with how much of the question it contains (rare terms
count more) and, for a question that asks how to do something, whether it
holds a command, so the quote is the sentence that carries the answer rather
than its neighbour. Lines that say nothing by themselves (titles, lead-ins
to a list, the question's own words) are never quoted.

Refusal uses a confidence that combines the best window's cosine similarity
with how much of the question the top passages cover, minus a penalty for
question terms that occur nowhere in the notes (the "ZooKeeper" in "how does
ZooKeeper elect a leader"). The penalty scales with the share of ordinary
words the corpus knows: in a few short notes most words of any question are
missing, and a reworded question must not be refused for it. The confidence
is then put on the corpus's own scale, measured when the index was built
(``dsqa.query.calibration``; the formula is :mod:`dsqa.query.confidence`), so one threshold serves every corpus. Just below it
lies a band of weak evidence where the best passage is shown as the closest
match, not as the answer (:func:`coverage`).

The weights and limits of both steps are ``Settings`` fields (see
``dsqa.settings``); the confidence's are measured into each index's
calibration, so an index is calibrated with the settings it answers with.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..results import ANSWERED, NOT_COVERED, WEAK
from ..settings import Settings
from ..sources.markup import HEADING_SEPARATOR, TITLE_WORDS
from ..sources.sentences import MIN_WORDS
from ..storage import StoredIndex
from ..storage.lexical import tokenize
from ..storage.records import ChunkRecord
from .retrieval import Hit, concept_coverage
from .topics import TopicVerdict, says_not_covered

_COMMAND_QUESTION = re.compile(
    r"\bhow\s+(?:(?:do|can|could|should|would|shall)\s+(?:i|you|we|one)|to)\b|\b(?:commands?|flags?|options?)\b",
    re.IGNORECASE,
)
#: A question that asks for an amount ("how many shards", "how much does it
#: cost", "how long does it bake"): its answer is most likely a sentence
#: holding a number.
_QUANTITY_QUESTION = re.compile(r"\bhow\s+(?:many|much|long|often|big|large|old)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d")
_META_TERMS = frozenset(tokenize("command flag option"))
_HAS_CODE = re.compile(r"`|(?<![\w-])--?[a-z]")
#: Labels and glued dashes that open a line of notes without being part of
#: what it says: "Bullet point: ...", "-create a swarm".
_LIST_NOISE = re.compile(r"(?:bullet\s+points?\s*:\s*|-(?=[^\W\d_]{3}))+", re.IGNORECASE)
#: What may precede a sentence on its line without being text: indent, list,
#: quote and heading markers, a list item's number.
_LINE_MARKUP = " \t*-+•>#0123456789.)"
_BACKTICKS = re.compile(r"`+")
_CODE_SPAN = re.compile(r"`+([^`]+)`+")
#: A bold line alone, perhaps with an aside in parentheses ("**Producer acks**
#: (asked in the lab)"): a title, not a sentence.
_BOLD_LINE = re.compile(r"^\s*(?:>\s*)?(\*\*|__)[^*_]+\1(?:\s*\([^()]*\))?\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[*\-+•]|\d+[.)])\s+")
_CLOSING = (".", "!", "?", ";", ":", ")", "`", '"', "'")


@dataclass
class Quote:
    passage: int  # 0-based position in the answer's passages
    start: int  # span in the passage text
    end: int
    score: float


def coverage(confidence: float, threshold: float, weak_margin: float) -> str:
    """Which of the three outcomes a confidence means: ``"answered"`` at or
    above the refusal threshold; ``"weak"`` (the closest match, shown as
    such) less than ``weak_margin`` below it; ``"not_covered"`` under that."""
    if confidence >= threshold:
        return ANSWERED
    return WEAK if confidence >= threshold - weak_margin else NOT_COVERED


def pick_quotes(
    question: str,
    hits: list[Hit],
    index: StoredIndex,
    query_vector: np.ndarray,
    settings: Settings,
    max_sentences: int | None = None,
    mention: tuple[int, Sequence[str]] | None = None,
) -> list[Quote]:
    """The sentences of the top ``settings.quote_passages`` passages that best
    answer the question (at most ``max_sentences``, by default
    ``settings.answer_sentences``), in the order of the passages (so ``[1]``
    comes before ``[2]``) and, within a passage, in reading order; without
    near-duplicates (notes copy each other) and without lines that say
    nothing (see :func:`quotable`). When some of those passages cover every
    concept of the question and others do not, only the former are quoted
    (:func:`_covering_passages`).

    ``mention`` (a passage's position and a term's search terms) asks for
    the sentences of that passage that mention the term, when it has any:
    a question whose term the notes mention only in passing is shown that
    mention, which its reason points at, rather than a sentence on
    something else."""
    scored = _scored_sentences(question, hits, index, query_vector, settings)
    held = _mentions(scored, hits, index, mention) if mention is not None else []
    covering = _covering_passages(question, hits[: settings.quote_passages], index)
    if held:
        scored = held
    else:
        # A line where the notes say they do not cover something answers
        # nothing; it is quoted only as the mention a reason points at (or
        # when the passages hold nothing else).
        scored = [s for s in scored if not says_not_covered(index.chunks[hits[s[1]].row].text[s[2] : s[3]])] or scored
        if covering:
            scored = [s for s in scored if s[1] in covering]
    limit = settings.answer_sentences if max_sentences is None else max_sentences
    scored = _with_its_list(scored, hits, index, limit)
    quotes = _best_quotes(scored, hits, index, settings, limit)
    # Citations read [1] before [2]: [n] is the n-th passage listed under the
    # answer, so the quotes follow the passages rather than renumbering them.
    return sorted(quotes, key=lambda q: (q.passage, q.start))


def _mentions(
    scored: list[tuple[float, int, int, int]], hits: list[Hit], index: StoredIndex, mention: tuple[int, Sequence[str]]
) -> list[tuple[float, int, int, int]]:
    """The ``scored`` sentences of passage ``mention[0]`` that hold one of
    the search terms ``mention[1]``, best first."""
    pos, terms = mention
    wanted = set(terms)
    return [s for s in scored if s[1] == pos and wanted & set(tokenize(index.chunks[hits[pos].row].text[s[2] : s[3]]))]


def _with_its_list(
    scored: list[tuple[float, int, int, int]], hits: list[Hit], index: StoredIndex, limit: int
) -> list[tuple[float, int, int, int]]:
    """``scored`` with the rest of the best sentence's list moved up to
    follow it, when the best sentence is in an item of a list that a lead-in
    introduces ("The producer picks the partition:") and the whole list fits
    in the answer: at most ``limit`` sentences, each quotable.

    The items of such a list answer the lead-in together, one case each
    ("records with a key go to …", "records without a key are spread …"):
    quoting one of them alone gives half the answer, however close the
    others' scores are to a sentence of another passage. A longer list is
    left to the scores: part of it is no more whole than any other choice."""
    if limit < 2 or not scored:
        return scored
    best = scored[0]
    row = hits[best[1]].row
    text = index.chunks[row].text
    lines = text.split("\n")
    extent = _list_lines(lines, text.count("\n", 0, best[2]))
    if extent is None:
        return scored
    inside = [(s, e) for s, e in index.sentence_spans(row) if extent[0] <= text.count("\n", 0, s) < extent[1]]
    rest = {(s[2], s[3]): s for s in scored[1:] if s[1] == best[1]}
    if len(inside) > limit or not all(span == best[2:] or span in rest for span in inside):
        return scored  # the list would not be whole
    moved = [rest[span] for span in inside if span != best[2:]]
    return [best, *moved, *(s for s in scored[1:] if s not in moved)]


def _list_lines(lines: list[str], i: int) -> tuple[int, int] | None:
    """The lines ``(first, end)`` of the list whose item holds line ``i``
    (its first line or a wrapped one), when a lead-in introduces that list:
    the line just above the list, less indented than its items (or a
    paragraph line at their indent), ends with a colon. ``None`` otherwise."""
    wrapped = i
    while i > 0 and lines[i].strip() and not _LIST_ITEM.match(lines[i]):
        i -= 1  # up the wrapped lines, indented under the item, to its first line
    if not _LIST_ITEM.match(lines[i]) or any(_indent(lines[j]) <= _indent(lines[i]) for j in range(i + 1, wrapped + 1)):
        return None
    indent = _indent(lines[i])
    parent = next(
        (j for j in range(i - 1, -1, -1)
         if lines[j].strip() and _indent(lines[j]) <= indent and not (_indent(lines[j]) == indent and _LIST_ITEM.match(lines[j]))),
        None,
    )
    if parent is None or not lines[parent].rstrip().endswith(":"):
        return None
    end = parent + 1
    for j in range(parent + 1, len(lines)):
        line = lines[j]
        if line.strip() and (_indent(line) < indent or (_indent(line) == indent and not _LIST_ITEM.match(line))):
            break
        if line.strip():
            end = j + 1
    return parent + 1, end


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _covering_passages(question: str, hits: list[Hit], index: StoredIndex) -> set[int]:
    """The positions of the passages among ``hits`` that cover every concept
    of the question (its runs of words between stop words, heading path
    included: :func:`dsqa.query.retrieval.concept_coverage`), when some do
    and some do not; else the empty set (quote from all of them).

    A passage that never names one of the things asked about does not answer
    the question beside one that names them all: for "how do overlay networks
    do service discovery", the passage "… › Test the service discovery." does,
    the one on creating an overlay network does not, however well its
    sentences match "overlay networks"."""
    if len(hits) < 2:
        return set()
    coverage = concept_coverage(index.lexical, question, np.array([h.row for h in hits], dtype=np.int64))
    full = {pos for pos, c in enumerate(coverage) if c >= 1.0}
    return full if len(full) < len(hits) else set()


def _scored_sentences(
    question: str, hits: list[Hit], index: StoredIndex, query_vector: np.ndarray, settings: Settings
) -> list[tuple[float, int, int, int]]:
    """(score, passage, start, end) of every quotable sentence of the top
    passages, best first: its window's cosine, plus ``term_weight`` times the
    IDF-weighted share of the question's terms it holds, read under its
    passage's heading path, plus ``command_weight`` when the question asks
    for a command and it holds code, or asks for an amount and it holds a
    number.

    A sentence means what it says under its headings, its labels and the
    list item it is nested in (the heading path holds all three): "Autoscaling
    based on factors such as CPU utilization." under "Kubernetes" answers "can
    kubernetes autoscale", and the sub-items of "Test the service discovery."
    are about service discovery though they never say so."""
    weights = _term_weights(question, index)
    terms = set(tokenize(question))
    total = sum(weights.values())
    wants_command = asks_for_command(question)
    wants_amount = bool(_QUANTITY_QUESTION.search(question))
    scored: list[tuple[float, int, int, int]] = []
    for pos, hit in enumerate(hits[: settings.quote_passages]):
        text = index.chunks[hit.row].text
        path = index.chunks[hit.row].heading.split(HEADING_SEPARATOR)
        titles = {_plain(h) for h in path}
        under = set(tokenize(" ".join(path)))
        for w in index.window_rows(hit.row):
            start, end = int(index.windows[w, 1]), int(index.windows[w, 2])
            if start < 0 or _plain(text[start:end]) in titles:
                # A section's title repeated as a line of text names the
                # topic; it never answers a question about it.
                continue
            span = quotable(text, start, end)
            if span is None:
                continue
            start, end = span
            words = set(tokenize(text[start:end]))
            if words <= terms:
                # Says nothing the question did not ("Create a ECS cluster"
                # for "how do I create an ECS cluster"): a step's name, not how.
                continue
            cos = float(index.vectors[w] @ query_vector)
            overlap = sum(weights[t] for t in (words | under) & weights.keys()) / total if total else 0.0
            sentence = text[start:end]
            code = settings.command_weight if (wants_command and _HAS_CODE.search(sentence)) or (wants_amount and _NUMBER.search(sentence)) else 0.0
            scored.append((cos + settings.term_weight * overlap + code, pos, start, end))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    return scored


def _best_quotes(
    scored: list[tuple[float, int, int, int]], hits: list[Hit], index: StoredIndex, settings: Settings, max_sentences: int
) -> list[Quote]:
    """The best of the ``scored`` sentences, best first: at most
    ``max_sentences``, none more than ``quote_margin`` below the best, none
    overlapping a better one by more than ``quote_overlap`` (Jaccard of
    their terms), and together at most ``max_answer_chars`` long."""
    quotes: list[Quote] = []
    seen: list[set[str]] = []
    length = 0
    for score, pos, start, end in scored:
        if len(quotes) >= max_sentences or (quotes and score < quotes[0].score - settings.quote_margin):
            break
        text = index.chunks[hits[pos].row].text[start:end]
        words = set(tokenize(text))
        if any(_jaccard(words, other) > settings.quote_overlap for other in seen):
            continue
        if quotes and length + len(text) > settings.max_answer_chars:
            continue
        quotes.append(Quote(pos, start, end, score))
        seen.append(words)
        length += len(text)
    return quotes


def asks_for_command(question: str) -> bool:
    """Whether ``question`` asks how to do something or names a command or
    flag: its answer is then most likely a line holding one."""
    return bool(_COMMAND_QUESTION.search(question))


def quotable(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of the sentence ``text[start:end]`` worth quoting, without
    list noise ("Bullet point:", a dash glued to the first word), or
    ``None`` when the sentence says nothing by itself: a title line, a
    lead-in that ends in a colon, a piece of code that runs over lines, or
    what is left too short to be a sentence."""
    lead = _LIST_NOISE.match(text, start, end)
    if lead:
        start = lead.end()
    sentence = text[start:end]
    if len(sentence.split()) < MIN_WORDS or len(_BACKTICKS.findall(sentence)) % 2 or sentence.endswith("\\"):
        return None  # too short, or the first line of code that runs over lines
    if sentence.rstrip().endswith(":") and "`" not in sentence:
        return None
    lines = text.split("\n")
    i = text.count("\n", 0, start)
    line_start = text.rfind("\n", 0, start) + 1
    whole_line = not text[line_start:start].strip(_LINE_MARKUP) and not text[end:].split("\n", 1)[0].strip()
    if whole_line and _is_title(lines, i):
        return None
    return start, end


def _is_title(lines: list[str], i: int) -> bool:
    """Whether line ``i`` titles what follows rather than saying something:
    a bold line alone, a short line without closing punctuation between
    blank lines, or a list item without it that heads a deeper list."""
    line = lines[i]
    if _BOLD_LINE.match(line):
        return True
    body = line.strip()
    if body.endswith(_CLOSING) or len(body.split()) > TITLE_WORDS:
        return False
    before = lines[i - 1].strip() if i > 0 else ""
    after = next((n for n in lines[i + 1 :] if n.strip()), "")
    if not _LIST_ITEM.match(line):
        return not before and (i + 1 == len(lines) or not lines[i + 1].strip())
    indent = len(line) - len(line.lstrip())
    return bool(_LIST_ITEM.match(after)) and len(after) - len(after.lstrip()) > indent


def answer_text(quotes: list[Quote], passage_texts: list[str]) -> str:
    """The quoted sentences, each followed by its ``[n]`` citation marker,
    with code spans written as Markdown's single backticks (notes write them
    with one to three)."""
    parts = []
    for q in quotes:
        sentence = _code_spans(" ".join(passage_texts[q.passage][q.start : q.end].split()))
        parts.append(f"{sentence} [{q.passage + 1}]")
    return " ".join(parts)


def _code_spans(sentence: str) -> str:
    return _CODE_SPAN.sub(lambda m: f"`{m.group(1).strip()}`", sentence)


def _term_weights(question: str, index: StoredIndex) -> dict[str, float]:
    """The question's terms that occur in the notes, each weighted by its
    BM25 inverse document frequency: a sentence that shares "exit" with the
    question says more than one that shares "container" with it, in notes
    where nearly every passage mentions containers."""
    n = len(index.chunks)
    weights = {}
    asks = asks_for_command(question)
    for term in dict.fromkeys(tokenize(question)):
        if asks and term in _META_TERMS:
            continue  # "which flag ...": the answer holds a flag, not the word
        if term in index.lexical.vocabulary:
            df = int(np.count_nonzero(index.lexical.scores(term)))
            weights[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return weights


def _plain(text: str) -> str:
    return " ".join(text.lower().split()).strip(" :.")


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


#: How far below the line of the outcome the topic terms give a confidence is
#: held, so that reading it against the threshold gives the same outcome.
_BELOW = 0.01
_SEVERITY = {ANSWERED: 0, WEAK: 1, NOT_COVERED: 2}


def with_topics(coverage: str, confidence: float, verdict: TopicVerdict, threshold: float, weak_margin: float) -> tuple[str, float]:
    """The outcome and confidence once the topic terms are heard: the
    severer of the calibrated outcome and their verdict (``dsqa.query.topics``),
    the confidence held below the line of the outcome they give."""
    if verdict.coverage is None or _SEVERITY[verdict.coverage] <= _SEVERITY[coverage]:
        return coverage, confidence
    line = threshold if verdict.coverage == WEAK else threshold - weak_margin
    return verdict.coverage, min(confidence, line - _BELOW)


def folder_words(corpus_dir: Path, sources: Sequence[str]) -> tuple[str, bool]:
    """How answers name the folder: ``("Your notes", True)`` for notes (the
    folder's name or its first subfolders say so), else ``("Your folder
    NAME", False)``, e.g. for a manual; the flag says whether it is plural."""
    names = {Path(corpus_dir).name, *(s.split("/", 1)[0] for s in sources if "/" in s)}
    if any("note" in n.lower() for n in names):
        return "Your notes", True
    return f'Your folder "{Path(corpus_dir).name}"', False


def topic_reason(verdict: TopicVerdict, subject: tuple[str, bool], shown_rows: Sequence[int], chunks: Sequence[ChunkRecord]) -> str:
    """The sentence that says why the topic terms refused or weakened the
    answer: "Your notes don't mention paxos.", "Your notes mention bitcoin
    only in passing [2]." (or where, when that passage is not shown); ""
    when they did not."""
    who, plural = subject
    if verdict.missing:
        words = " or ".join(verdict.missing[:2]) if len(verdict.missing) <= 2 else ", ".join(verdict.missing[:2]) + " or others"
        return f"{who} {'don' if plural else 'doesn'}'t mention {words}."
    if verdict.passing and verdict.passing_row is not None:
        row = verdict.passing_row
        where = f"[{list(shown_rows).index(row) + 1}]" if row in shown_rows else f"({mention_place(chunks[row], verdict.passing)})"
        return f"{who} mention{'' if plural else 's'} {verdict.passing} only in passing {where}."
    return ""


def mention_place(chunk: ChunkRecord, word: str) -> str:
    """Where in its note a passage mentions ``word``: ``note.md:12`` (the
    line of the first mention), ``slides.pdf p. 3``."""
    if chunk.page is not None:
        return f"{chunk.source} p. {chunk.page}"
    match = re.search(re.escape(word), chunk.text, re.IGNORECASE)
    line = chunk.start_line + (chunk.text.count("\n", 0, match.start()) if match else 0)
    return f"{chunk.source}:{line}"
