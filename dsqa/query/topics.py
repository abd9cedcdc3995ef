"""What a question is about, and whether the folder covers it.

A question's *topic terms* are its words that are rare in everyday English
(``wordfreq``: less often than :data:`RARE_ZIPF` on its Zipf scale, about once
per million words of ordinary text; a hyphenated compound such as "on-demand"
counts as rare, since wordfreq rates only its parts) or rare in the folder (in at most
:data:`RARE_PASSAGES` of its passages). "Paxos", "sourdough", "k8s" and
"docker-compose.yml" are topic terms; "dies", "forever" and "hyped" are the
user's wording, and a number ("port 8080") is an instance of what notes
describe in general. Each is checked against the whole folder and against the top
passages, a fixed number of them (``Settings.confidence_passages``) whatever
``k`` shows:

* a word rare in English that the folder never contains, nor a word of the
  same root ("customised" for "customize"), means the folder does not cover
  the question: "Your notes don't mention paxos.";
* one the folder holds rarely and not in the top passages (their headings
  included) is mentioned only in passing: the evidence is weak, and the
  answer says where it is mentioned;
* so is one whose every sentence in the folder says that the notes do not
  cover it ("ZooKeeper uses its own protocol (ZAB), but we did not go into
  it", "CDN: mentioned in the lecture but not covered"): the notes name the
  thing and say themselves that they do not explain it, so quoting that
  sentence as the answer would contradict them (:func:`said_not_covered`);
* otherwise the verdict is left to the calibrated confidence
  (``dsqa.answering.confidence``).

Everyday words are left out of both checks: a folder cannot be expected to
hold a user's ordinary words, and one that does not is no sign that it lacks
the subject. They still count as topic terms when the folder holds them
rarely: a passage is a strong match only when it holds every topic term.

Which English words are common is read from wordfreq once and kept in the
cache folder as a plain word list (:func:`common_words`), so a question does
not load wordfreq's whole table.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from weakref import WeakKeyDictionary

from ..results import NOT_COVERED, WEAK
from ..storage.lexical import LexicalIndex, concept_words, tokenize
from ..storage.records import ChunkRecord

log = logging.getLogger("dsqa")

#: A word is rare in everyday English below this Zipf frequency (wordfreq's
#: log10 of occurrences per billion words): under about once per million.
RARE_ZIPF = 3.0
#: A word is rare in a folder when at most this many of its passages hold it.
RARE_PASSAGES = 2
#: An absent word has a word of the same root in the folder when a folder term
#: shares its first letters: all but its last :data:`ROOT_SLACK`, at least
#: :data:`MIN_ROOT` ("customis" and "custom", "initialis" and "initi").
ROOT_SLACK = 2
MIN_ROOT = 5
_PARTS = re.compile(r"[a-z]+")
#: How notes say that they do not cover something: "not covered", "we did not
#: go into it", "mentioned only in passing", "we skipped that part", "out of
#: scope".
_NOT_COVERED_SAYING = re.compile(
    r"\bnot\s+(?:covered|discussed|explained)\b"
    r"|\b(?:did\s+not|didn't|never)\s+(?:go\s+into|cover|discuss|get\s+to)\b"
    r"|\bin\s+passing\b"
    r"|\b(?:we|they|i)\s+skipped\b"
    r"|\b(?:out\s+of|beyond\s+the)\s+scope\b",
    re.IGNORECASE,
)
_LETTER = re.compile(r"[a-z]")


@dataclass(frozen=True)
class TopicTerm:
    """One topic term of a question: the word as asked, its search terms,
    whether it is rare in everyday English, and the folder passages (chunk
    rows) that hold it."""

    word: str
    terms: tuple[str, ...]
    rare_in_english: bool
    rows: tuple[int, ...]

    @property
    def absent(self) -> bool:
        return not self.rows


@dataclass(frozen=True)
class TopicVerdict:
    """What the topic terms say about a question: ``coverage`` is
    ``"not_covered"``, ``"weak"`` or ``None`` (left to the calibrated
    confidence); ``terms`` the question's topic terms; ``missing`` the rare
    words the folder never contains; ``passing`` one it mentions only in
    passing, and ``passing_row`` a passage that mentions it."""

    coverage: str | None
    terms: tuple[TopicTerm, ...]
    missing: tuple[str, ...] = ()
    passing: str = ""
    passing_row: int | None = None


def assess(
    question: str,
    top_rows: Sequence[int],
    chunks: Sequence[ChunkRecord],
    lexical: LexicalIndex,
    sentences: Callable[[int], Iterable[tuple[int, int]]] | None = None,
) -> TopicVerdict:
    """The topic terms of ``question`` and the verdict they give, from the
    folder's keyword index and the chunks of the top passages (``top_rows``,
    best first; the caller fixes how many, so the verdict does not depend on
    how many passages are shown). ``sentences`` gives the sentence spans of a
    chunk row (those the index stores); without it a mention is not read
    for what it says."""
    terms = topic_terms(question, lexical)
    missing = tuple(t.word for t in terms if t.rare_in_english and t.absent and not _same_root(t, lexical))
    if missing:
        return TopicVerdict(NOT_COVERED, terms, missing=missing)
    top = set().union(*(passage_terms(chunks[r]) for r in top_rows)) if top_rows else set()
    for t in terms:
        if t.rare_in_english and 0 < len(t.rows) <= RARE_PASSAGES and not (set(t.terms) & top):
            return TopicVerdict(WEAK, terms, passing=t.word, passing_row=t.rows[0])
    if sentences is not None:
        for t in terms:
            if 0 < len(t.rows) <= RARE_PASSAGES and said_not_covered(t, chunks, sentences):
                # Point at the mention among the top passages when there is one.
                row = next((r for r in top_rows if r in t.rows), t.rows[0])
                return TopicVerdict(WEAK, terms, passing=t.word, passing_row=row)
    return TopicVerdict(None, terms)


def says_not_covered(sentence: str) -> bool:
    """Whether ``sentence`` says that the notes do not cover something ("we
    did not go into it", "mentioned only in passing", "out of scope")."""
    return bool(_NOT_COVERED_SAYING.search(" ".join(sentence.split())))


def said_not_covered(term: TopicTerm, chunks: Sequence[ChunkRecord], sentences: Callable[[int], Iterable[tuple[int, int]]]) -> bool:
    """Whether every mention of ``term`` in the folder is in a sentence that
    says the notes do not cover it (:data:`_NOT_COVERED_SAYING`): none in a
    heading path, none outside the sentences, at least one."""
    key = term.terms[0]
    found = False
    for row in term.rows:
        chunk = chunks[row]
        if key in tokenize(chunk.heading):
            return False
        mentions = tokenize(chunk.text).count(key)
        for start, end in sentences(row):
            sentence = chunk.text[start:end]
            held = tokenize(sentence).count(key)
            if not held:
                continue
            if not says_not_covered(sentence):
                return False
            mentions -= held
            found = True
        if mentions > 0:
            return False
    return found


def topic_terms(question: str, lexical: LexicalIndex) -> tuple[TopicTerm, ...]:
    """The words of ``question`` that are rare in everyday English or rare in
    the folder, in the question's order, each once."""
    common = common_words()
    out: list[TopicTerm] = []
    seen: set[str] = set()
    for word in concept_words(question):
        word = re.sub(r"'s$", "", word)
        if "'" in word or word in seen or not _LETTER.search(word):
            # A number ("port 8080", "3.6") is an instance of what notes
            # describe in general, not what the question is about.
            continue
        seen.add(word)
        terms = tuple(dict.fromkeys(tokenize(word)))
        if not terms:
            continue
        rows = lexical.rows_with(terms[0])
        parts = [p for p in _PARTS.findall(word) if len(p) > 1]
        # A compound of everyday words ("on-demand", "multi-stage") names one
        # thing: wordfreq rates its parts, not it, so it counts as rare. Absent
        # from the folder, it is still taken as present when the folder holds
        # its parts (:func:`_same_root` tries each search term), as the
        # keyword index finds "docker-stack.yml" by "docker stack".
        compound = "-" in word and len(parts) > 1
        rare = compound or any(p not in common for p in parts) or (not parts and word not in common)
        if rare or 0 < len(rows) <= RARE_PASSAGES:
            out.append(TopicTerm(word, terms, rare, tuple(int(r) for r in rows)))
    return tuple(out)


def passage_terms(chunk: ChunkRecord) -> frozenset[str]:
    """The search terms of a passage, its heading path included."""
    return frozenset(tokenize(f"{chunk.heading}\n{chunk.text}"))


def covers(chunk: ChunkRecord, terms: Sequence[TopicTerm]) -> bool:
    """Whether the passage holds every topic term (in its text or its
    heading path): only then is it a strong match."""
    held = passage_terms(chunk)
    return all(set(t.terms) & held for t in terms)


_SORTED_VOCABULARY: WeakKeyDictionary[LexicalIndex, list[str]] = WeakKeyDictionary()


def _same_root(term: TopicTerm, lexical: LexicalIndex) -> bool:
    """Whether the folder has a word of the same root as the absent ``term``
    (another spelling or form of it)."""
    vocabulary = _SORTED_VOCABULARY.get(lexical)
    if vocabulary is None:
        vocabulary = _SORTED_VOCABULARY[lexical] = sorted(lexical.vocabulary)
    for t in term.terms:
        root = t[: max(MIN_ROOT, len(t) - ROOT_SLACK)]
        i = bisect.bisect_left(vocabulary, root)
        if i < len(vocabulary) and vocabulary[i].startswith(root):
            return True
    return False


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """The English words wordfreq puts at or above :data:`RARE_ZIPF`, from a
    word list kept in the cache folder (made from wordfreq the first time;
    wordfreq's own table is large to load for every question)."""
    from importlib.metadata import version

    from ..paths import cache_dir

    path = cache_dir() / f"common-words-en-{version('wordfreq')}-{RARE_ZIPF}.txt"
    try:
        return frozenset(path.read_text(encoding="utf-8").split("\n"))
    except OSError:
        pass
    words = _wordfreq_common()
    _write_list(path, words)
    return words


def _wordfreq_common() -> frozenset[str]:
    import wordfreq

    freqs = wordfreq.get_frequency_dict("en", wordlist="best")
    floor = 10 ** (RARE_ZIPF - 9)  # Zipf = log10(frequency per word) + 9
    return frozenset(w for w, f in freqs.items() if f >= floor and not math.isnan(f))


def _write_list(path: Path, words: frozenset[str]) -> None:
    """Keep the list for the next process, written whole or not at all; a
    cache folder that cannot be written only costs the next one the time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("\n".join(sorted(words)), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("could not keep the common-word list in %s: %s", path, exc)
        tmp.unlink(missing_ok=True)
