"""Measuring retrieval and answer quality on a labelled question set.

A question set is JSON Lines, one question per line::

    {"id": "n001", "question": "...", "kind": "paraphrase",
     "answers": [{"note": "notes/x.md", "phrase": "words that answer it"}]}

A passage answers a question when it comes from one of the listed notes and
contains that note's phrase (case and spacing ignored). ``answers: []`` marks
a question the notes do not cover: the right outcome is a refusal, or the
low-confidence "closest match".

Besides the ranking (hit@c, MRR@10, nDCG@10) a report says what a reader of
the short answers meets: whether an answer states the fact (the labelled
phrase is in it), whether every sentence it quotes is whole (starts and ends
where a sentence of the note does, as the product's own
:func:`dsqa.sources.sentences.sentence_spans` cuts the note read from its file), how
many uncovered questions are refused or shown as low-confidence, and how
many answerable ones are refused.
"""

from __future__ import annotations

import functools
import json
import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import environment, paths
from .build.progress import Reporter
from .build.report import ReindexReport
from .engine import DSQA
from .errors import InvalidInputError
from .query.scorers import SCORERS
from .results import WEAK, Answer, Passage
from .sources.sentences import sentence_spans

DEVSETS = Path(__file__).resolve().parent / "devsets"
DEFAULT_DEVSET = DEVSETS / "notes.jsonl"
KEP_DEVSET = DEVSETS / "kep.jsonl"
#: The two folders of Kubernetes design documents the KEP dev set covers.
KEP_FOLDERS = ("sig-storage", "sig-apps")
#: A folder of personal study notes written for the answer figures (hard-wrapped
#: Markdown, plain text, a PDF, a saved web page, an unrelated recipe), and its
#: questions in a user's own words: ``dsqa eval --study``.
STUDY_CORPUS = DEVSETS / "study"
STUDY_DEVSET = DEVSETS / "study.jsonl"


#: hit@c is reported for each of these cutoffs c.
HIT_CUTOFFS = (1, 3, 5, 10)
#: The median passage length is taken over each answer's first this many
#: passages: the ones a reader sees.
READ_PASSAGES = 5

@dataclass(frozen=True)
class Question:
    id: str
    question: str
    kind: str
    answers: tuple[tuple[str, str], ...]

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def load_questions(path: Path) -> list[Question]:
    """The questions of a JSON Lines file, or an ``InvalidInputError`` that
    says which line is not a question record."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInputError(f"cannot read the questions in {path}: {why}") from None
    questions = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers = tuple((a["note"], a["phrase"]) for a in row["answers"])
            questions.append(Question(str(row["id"]), row["question"], row.get("kind", ""), answers))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"{path}:{n}: not a question record ({exc})") from None
    if not questions:
        raise InvalidInputError(f"{path} holds no questions")
    return questions


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def answer_quotes_it(answer: Answer, question: Question) -> bool:
    """The short answer quotes the labelled words: an answer phrase is in
    it, or a quoted sentence lies inside an answer phrase."""
    if not answer.text:
        return False
    said = _shown(answer.text)
    quotes = [_shown(p.text[a:b]) for p in answer.passages for a, b in p.highlights]
    return any(_shown(phrase) in said or any(q and q in _shown(phrase) for q in quotes) for _, phrase in question.answers)


def _shown(text: str) -> str:
    """``text`` compared as the answer shows it: case and spacing ignored, and
    a code span's run of backticks as one (the answer writes ```x``` as `x`)."""
    return _norm(_BACKTICK_RUN.sub("`", text))


_BACKTICK_RUN = re.compile(r"`+")


#: Markup that may stand between where a sentence of the note starts or ends and
#: where a quote of it does (emphasis, a list or quote marker, a code tick).
_MARKUP = " \t*_`>#-+•"
#: Labels a quote leaves out at the start of a line (``dsqa.query.answering.quotable``).
_QUOTE_LEAD = re.compile(r"(?:bullet\s+points?\s*:\s*)+", re.IGNORECASE)


#: A note's text and the (start, end) of each of its sentences.
NoteSentences = tuple[str, list[tuple[int, int]]]


def note_reader(corpus_dir: Path) -> Callable[[str], NoteSentences | None]:
    """A note of ``corpus_dir`` as dsqa reads it from its file (the text a
    passage's lines and characters refer to) with its sentences
    (:func:`note_sentences`), by its source path; ``None`` for a note that
    cannot be read. Each note is read once."""
    from .sources import formats
    from .sources.reading import read_corpus_file

    cache: dict[str, NoteSentences | None] = {}

    def read(source: str) -> NoteSentences | None:
        if source not in cache:
            try:
                data, _ = read_corpus_file(Path(corpus_dir), source)
                extracted = formats.read(source, data)
                text = extracted.text.replace("\r\n", "\n")
                cache[source] = (text, note_sentences(text, extracted.layout))
            except (OSError, ValueError):
                cache[source] = None
        return cache[source]

    return read


def note_sentences(text: str, layout: Any = None) -> list[tuple[int, int]]:
    """The sentences of a note's whole text, exactly as the chunker finds
    them for the chunks' quotes (:func:`dsqa.build.chunking.note_sentences`:
    a note whose reader gives its sections, a PDF's, read section by
    section, its title lines left out)."""
    from .build.chunking import note_sentences as chunker_sentences

    return chunker_sentences(text, layout)


def _place(passage: Passage, note: str) -> int | None:
    """Where ``passage.text`` starts in its note's text: of its occurrences,
    the one nearest its first cited line (PDF lines count within a page, so
    for those the first occurrence)."""
    found = [m.start() for m in re.finditer(re.escape(passage.text), note)] if passage.text else []
    if not found:
        return None
    if passage.page is not None:
        return found[0]
    return min(found, key=lambda at: abs(note.count("\n", 0, at) + 1 - passage.start_line))


def cut_quotes(answer: Answer, note_text: Callable[[str], NoteSentences | str | None]) -> tuple[int, int]:
    """(quoted sentences that are cut off, quoted sentences) of ``answer``. A
    quote is whole when it starts where a sentence of the note starts and ends
    where one ends (the same or a later one), with only markup between. The
    note comes from ``note_text``: a :func:`note_reader` (the file read as dsqa
    reads it, with its sentences), or plain text, cut by
    :func:`dsqa.sources.sentences.sentence_spans`."""
    cut = total = 0
    for p in answer.passages:
        if not p.highlights:
            continue
        found = note_text(p.source)
        note, sentences = (found, sentence_spans(found)) if isinstance(found, str) else found or ("", [])
        at = _place(p, note) if found is not None else None
        starts, ends = {s for s, _ in sentences}, {e for _, e in sentences}
        for a, b in p.highlights:
            total += 1
            cut += at is None or not (_starts_sentence(note, at + a, starts) and _ends_sentence(note, at + b, ends))
    return cut, total


def _starts_sentence(note: str, at: int, starts: set[int]) -> bool:
    back = at
    while back > 0 and back not in starts and note[back - 1] in _MARKUP:
        back -= 1
    if back in starts:
        return True
    # A list label the quote left out ("Bullet point: ..."), after a sentence
    # start on the same line.
    line = note.rfind("\n", 0, at) + 1
    label = _QUOTE_LEAD.fullmatch(note[line:at].lstrip(_MARKUP)) is not None
    return label and any(s in starts for s in range(line, at))


def _ends_sentence(note: str, at: int, ends: set[int]) -> bool:
    ahead = at
    while ahead < len(note) and ahead not in ends and note[ahead] in _MARKUP:
        ahead += 1
    return ahead in ends


def answers_question(passage: Passage, question: Question) -> bool:
    body = _norm(passage.text)
    return any(passage.source == note and _norm(phrase) in body for note, phrase in question.answers)


@dataclass
class Report:
    name: str
    questions: int
    answerable: int
    hit_at: dict[int, float]
    answer_quotes: float
    mrr10: float
    ndcg10: float
    median_passage_chars: float
    refusal: dict[str, int]
    latency_ms: dict[str, float]
    misses: list[str] = field(default_factory=list)
    #: (confidence, answerable) per question, for calibrating refusal
    confidences: list[tuple[float, bool]] = field(default_factory=list)
    #: hit@1 per question kind ("paraphrase", "fact", ...)
    hit1_by_kind: dict[str, float] = field(default_factory=dict)
    #: Sentences the answers quote, and how many of them are cut off (see
    #: :func:`cut_quotes`); ``None`` when the notes' text was not at hand.
    quotes: int = 0
    cut_quotes: int | None = None
    #: Ids of the questions whose answer quotes a cut-off sentence.
    cut: list[str] = field(default_factory=list)

    @property
    def uncovered(self) -> int:
        return self.refusal["unanswerable_refused"] + self.refusal["unanswerable_answered"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "questions": self.questions,
            "answerable": self.answerable,
            "hit@1": round(self.hit_at[1], 4),
            "hit@3": round(self.hit_at[3], 4),
            "hit@5": round(self.hit_at[5], 4),
            "answer_quotes_answer": round(self.answer_quotes, 4),
            "quoted_sentences": self.quotes,
            "cut_off_sentences": self.cut_quotes,
            "cut_off_answers": self.cut,
            "mrr@10": round(self.mrr10, 4),
            "ndcg@10": round(self.ndcg10, 4),
            "median_passage_chars": self.median_passage_chars,
            "refusal": self.refusal,
            "latency_ms": self.latency_ms,
            "misses": self.misses,
            "refusal_sweep": calibrate(self.confidences),
            "hit@1_by_kind": {k: round(v, 4) for k, v in self.hit1_by_kind.items()},
        }


def evaluate(
    name: str,
    questions: Sequence[Question],
    answer: Callable[[str], Answer],
    k: int = 10,
    note_text: Callable[[str], NoteSentences | str | None] | None = None,
) -> Report:
    """Run every question through ``answer`` (which must return at least
    ``k`` passages when it can) and score the ranking, the refusals and the
    short answers; with ``note_text`` (a :func:`note_reader`), also whether
    the sentences the answers quote are whole."""
    ranks: list[int | None] = []
    ndcgs: list[float] = []
    lengths: list[int] = []
    latencies: list[float] = []
    refusal = {"answerable_answered": 0, "answerable_refused": 0, "unanswerable_refused": 0, "unanswerable_answered": 0}
    #: Refused questions shown as a weak closest match (``coverage == "weak"``).
    weak = {"answerable_weak": 0, "unanswerable_weak": 0}
    misses: list[str] = []
    confidences: list[tuple[float, bool]] = []
    quoted = 0
    sentences = cut = 0
    cut_ids: list[str] = []
    by_kind: dict[str, list[bool]] = {}
    for q in questions:
        started = time.perf_counter()
        result = answer(q.question)
        latencies.append((time.perf_counter() - started) * 1000)
        if note_text is not None:
            cut_here, quoted_here = cut_quotes(result, note_text)
            sentences, cut = sentences + quoted_here, cut + cut_here
            if cut_here:
                cut_ids.append(q.id)
        else:
            sentences += sum(len(p.highlights) for p in result.passages)
        confidences.append((result.confidence, q.answerable))
        passages = result.passages[:k]
        lengths.extend(len(p.text) for p in passages[:READ_PASSAGES])
        weak["answerable_weak" if q.answerable else "unanswerable_weak"] += result.coverage == WEAK
        if not q.answerable:
            refusal["unanswerable_refused" if not result.found else "unanswerable_answered"] += 1
            continue
        refusal["answerable_answered" if result.found else "answerable_refused"] += 1
        quoted += result.found and answer_quotes_it(result, q)
        relevant = [answers_question(p, q) for p in passages]
        rank = relevant.index(True) + 1 if any(relevant) else None
        ranks.append(rank)
        by_kind.setdefault(q.kind, []).append(rank == 1)
        if rank != 1:
            misses.append(q.id)
        dcg = sum(1 / math.log2(i + 2) for i, rel in enumerate(relevant) if rel)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(q.answers), k)))
        ndcgs.append(dcg / ideal if ideal else 0.0)
    n = len(ranks) or 1
    return Report(
        name=name,
        questions=len(questions),
        answerable=len(ranks),
        hit_at={c: sum(1 for r in ranks if r is not None and r <= c) / n for c in HIT_CUTOFFS},
        answer_quotes=quoted / n,
        mrr10=sum(1 / r for r in ranks if r is not None) / n,
        ndcg10=sum(ndcgs) / n,
        median_passage_chars=statistics.median(lengths) if lengths else 0,
        refusal={**refusal, **weak},
        latency_ms={
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
        },
        misses=misses,
        confidences=confidences,
        hit1_by_kind={kind: sum(hits) / len(hits) for kind, hits in sorted(by_kind.items())},
        quotes=sentences,
        cut_quotes=cut if note_text is not None else None,
        cut=cut_ids,
    )


def calibrate(confidences: list[tuple[float, bool]], max_answerable_refused: float = 0.05) -> dict[str, Any]:
    """The refusal threshold that refuses the most unanswerable questions
    while refusing at most ``max_answerable_refused`` of the answerable ones."""
    answerable = sorted(c for c, a in confidences if a)
    unanswerable = [c for c, a in confidences if not a]
    if not answerable or not unanswerable:
        return {}
    allowed = int(max_answerable_refused * len(answerable))
    threshold = answerable[allowed]  # refusing below it refuses `allowed` answerable ones
    return {
        "threshold": round(threshold, 4),
        "answerable_refused": allowed,
        "unanswerable_refused": sum(c < threshold for c in unanswerable),
        "unanswerable": len(unanswerable),
    }


def evaluate_all(
    engine: DSQA,
    questions: Path | None = None,
    *,
    kep: bool = False,
    study: bool = False,
    compare: bool = False,
    progress: Reporter | None = None,
    on_reindex: Callable[[str, ReindexReport], None] | None = None,
) -> list[tuple[Path, list[Report]]]:
    """What ``dsqa eval`` reports: per question set (``questions``, default
    the bundled notes' dev set, on ``engine``; with ``kep``/``study`` also
    those dev sets, each on its own corpus and index, built first and told to
    ``on_reindex``) one report per named scorer (only ``hybrid`` unless
    ``compare``), ranked and answered through ``engine.ask`` with the engine's
    scorer swapped (:mod:`dsqa.query.scorers`)."""
    runs = [(questions or DEFAULT_DEVSET, engine)]
    extra = []
    if kep:
        extra.append(("KEP", KEP_DEVSET, prepare_kep_corpus(paths.cache_dir() / "kep-corpus"), "kep-index"))
    if study:
        extra.append(("study", STUDY_DEVSET, STUDY_CORPUS, "study-index"))
    for name, devset, corpus, index in extra:
        other = DSQA(engine.settings.with_(corpus_dir=corpus, index_dir=paths.cache_dir() / index))
        report = other.reindex(progress=progress)
        if on_reindex is not None:
            on_reindex(name, report)
        runs.append((devset, other))
    names = tuple(SCORERS) if compare else ("hybrid",)
    results = []
    for path, eng in runs:
        qs = load_questions(path)
        eng.ask(qs[0].question)  # load model and index before timing
        notes = note_reader(eng.settings.corpus_dir)
        reports = []
        try:
            for name in names:
                eng.scorer = SCORERS[name]
                reports.append(evaluate(f"{path.stem}:{name}", qs, functools.partial(eng.ask, k=10), note_text=notes))
        finally:
            eng.scorer = SCORERS["hybrid"]
        results.append((path, reports))
    return results


def kep_source() -> Path:
    """The ``keps/`` folder of a kubernetes/enhancements checkout, which the
    KEP dev set asks about: ``$DSQA_KEP_SOURCE`` (dsqa does not ship it)."""
    value = environment.KEP_SOURCE.get().strip()
    if not value:
        raise InvalidInputError(
            "the KEP dev set needs the Kubernetes design documents: set DSQA_KEP_SOURCE to the keps/ folder of a "
            "kubernetes/enhancements checkout"
        )
    return Path(value).expanduser()


def prepare_kep_corpus(dest: Path, source: Path | None = None) -> Path:
    """Copy the KEP folders the second dev set covers into ``dest`` (a
    corpus of its own, so note paths read ``sig-storage/…/README.md``), from
    ``source`` or :func:`kep_source`."""
    import shutil

    source = source or kep_source()
    if not all((source / folder).is_dir() for folder in KEP_FOLDERS):
        raise InvalidInputError(f"the Kubernetes design documents ({', '.join(KEP_FOLDERS)}) are not in {source}")
    for folder in KEP_FOLDERS:
        target = dest / folder
        if not target.is_dir():
            shutil.copytree(source / folder, target)
    return dest


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank ``pct`` percentile of ``values``: the smallest value
    with at least ``pct`` percent of them at or below it (``nan`` for none).
    ``dsqa eval`` and the benchmarks report latencies with it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    i = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[i]


def format_reports(reports: Sequence[Report]) -> str:
    """Reports side by side, one column each."""
    rows = [
        ("questions (answerable)", lambda r: f"{r.questions} ({r.answerable})"),
        ("hit@1", lambda r: f"{r.hit_at[1]:.3f}"),
        ("hit@1 paraphrases", lambda r: f"{r.hit1_by_kind.get('paraphrase', float('nan')):.3f}"),
        ("hit@3", lambda r: f"{r.hit_at[3]:.3f}"),
        ("hit@5", lambda r: f"{r.hit_at[5]:.3f}"),
        ("MRR@10", lambda r: f"{r.mrr10:.3f}"),
        ("answer states the fact", lambda r: f"{r.answer_quotes:.3f}"),
        ("cut-off quotes", lambda r: "n/a" if r.cut_quotes is None else f"{r.cut_quotes}/{r.quotes} ({len(r.cut)} ans.)"),
        ("nDCG@10", lambda r: f"{r.ndcg10:.3f}"),
        ("median passage chars", lambda r: f"{r.median_passage_chars:.0f}"),
        ("answerable refused", lambda r: f"{r.refusal['answerable_refused'] - r.refusal['answerable_weak']}/{r.answerable}"),
        ("answerable low-conf.", lambda r: f"{r.refusal['answerable_weak']}"),
        ("uncovered refused/low", lambda r: f"{r.refusal['unanswerable_refused']}/{r.uncovered}"),
        ("  of them low-conf.", lambda r: f"{r.refusal['unanswerable_weak']}"),
        ("refusal threshold*", lambda r: f"{calibrate(r.confidences).get('threshold', float('nan')):.3f}"),
        ("latency p50 ms", lambda r: f"{r.latency_ms['p50']:.1f}"),
        ("latency p95 ms", lambda r: f"{r.latency_ms['p95']:.1f}"),
    ]
    width = max(14, *(len(r.name) for r in reports))
    out = [f"{'':24}" + "".join(f"{r.name:>{width + 2}}" for r in reports)]
    for label, cell in rows:
        out.append(f"{label:24}" + "".join(f"{cell(r):>{width + 2}}" for r in reports))
    return "\n".join(out)
