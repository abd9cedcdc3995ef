"""Measuring retrieval and answer quality on a labelled question set.

A question set is JSON Lines, one question per line::

    {"id": "n001", "question": "...", "kind": "paraphrase",
     "answers": [{"note": "notes/x.md", "phrase": "words that answer it"}]}

A passage answers a question when it comes from one of the listed notes and
contains that note's phrase (case and spacing ignored). ``answers: []`` marks
a question the notes do not cover: the right outcome is a refusal.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import InvalidInputError
from .results import WEAK, Answer, Passage
from .retrieval import Fusion, Method

DEVSETS = Path(__file__).resolve().parent / "devsets"
DEFAULT_DEVSET = DEVSETS / "notes.jsonl"
KEP_DEVSET = DEVSETS / "kep.jsonl"
#: The two folders of Kubernetes design documents the KEP dev set covers.
KEP_FOLDERS = ("sig-storage", "sig-apps")


#: hit@c is reported for each of these cutoffs c.
HIT_CUTOFFS = (1, 3, 5, 10)
#: The median passage length is taken over each answer's first this many
#: passages: the ones a reader sees.
READ_PASSAGES = 5

#: Reciprocal rank fusion's constant: a rank r counts 1 / (RRF_K + r).
RRF_K = 60


def rrf(semantic: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    """Reciprocal rank fusion of the candidates' dense and BM25 rankings: the
    usual alternative to dsqa's score, which ``dsqa eval --compare`` shows
    beside it (a :data:`dsqa.retrieval.Fusion`)."""
    return 1 / (RRF_K + _ranks(semantic)) + 1 / (RRF_K + _ranks(lexical))


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, best first."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


#: The rankings ``dsqa eval --compare`` puts side by side, by column name.
COMPARED: dict[str, Method | Fusion] = {
    "hybrid": "hybrid", "no-concepts": "no-concepts", "dense": "dense", "bm25": "bm25", "rrf": rrf,
}


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
    said = _norm(answer.text)
    quotes = [_norm(p.text[a:b]) for p in answer.passages for a, b in p.highlights]
    return any(_norm(phrase) in said or any(q and q in _norm(phrase) for q in quotes) for _, phrase in question.answers)


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "questions": self.questions,
            "answerable": self.answerable,
            "hit@1": round(self.hit_at[1], 4),
            "hit@3": round(self.hit_at[3], 4),
            "hit@5": round(self.hit_at[5], 4),
            "answer_quotes_answer": round(self.answer_quotes, 4),
            "mrr@10": round(self.mrr10, 4),
            "ndcg@10": round(self.ndcg10, 4),
            "median_passage_chars": self.median_passage_chars,
            "refusal": self.refusal,
            "latency_ms": self.latency_ms,
            "misses": self.misses,
            "refusal_sweep": calibrate(self.confidences),
            "hit@1_by_kind": {k: round(v, 4) for k, v in self.hit1_by_kind.items()},
        }


def evaluate(name: str, questions: Sequence[Question], answer: Callable[[str], Answer], k: int = 10) -> Report:
    """Run every question through ``answer`` (which must return at least
    ``k`` passages when it can) and score the ranking and the refusals."""
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
    by_kind: dict[str, list[bool]] = {}
    for q in questions:
        started = time.perf_counter()
        result = answer(q.question)
        latencies.append((time.perf_counter() - started) * 1000)
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


def kep_source() -> Path:
    """The ``keps/`` folder of a kubernetes/enhancements checkout, which the
    KEP dev set asks about: ``$DSQA_KEP_SOURCE`` (dsqa does not ship it)."""
    value = os.environ.get("DSQA_KEP_SOURCE", "").strip()
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
        ("answer quotes answer", lambda r: f"{r.answer_quotes:.3f}"),
        ("nDCG@10", lambda r: f"{r.ndcg10:.3f}"),
        ("median passage chars", lambda r: f"{r.median_passage_chars:.0f}"),
        ("answerable refused", lambda r: f"{r.refusal['answerable_refused']}/{r.answerable}"),
        (
            "unanswerable refused",
            lambda r: f"{r.refusal['unanswerable_refused']}/{r.refusal['unanswerable_refused'] + r.refusal['unanswerable_answered']}",
        ),
        ("weak: answerable/not", lambda r: f"{r.refusal['answerable_weak']}/{r.refusal['unanswerable_weak']}"),
        ("refusal threshold*", lambda r: f"{calibrate(r.confidences).get('threshold', float('nan')):.3f}"),
        ("latency p50 ms", lambda r: f"{r.latency_ms['p50']:.1f}"),
        ("latency p95 ms", lambda r: f"{r.latency_ms['p95']:.1f}"),
    ]
    width = max(14, *(len(r.name) for r in reports))
    out = [f"{'':24}" + "".join(f"{r.name:>{width + 2}}" for r in reports)]
    for label, cell in rows:
        out.append(f"{label:24}" + "".join(f"{cell(r):>{width + 2}}" for r in reports))
    return "\n".join(out)
