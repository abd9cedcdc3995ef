"""Second stages tried on top of dsqa's hybrid ranking (issue 14): experiments.

    python -m experiments.second_stage ce-pairs        # training pairs -> $XDG_CACHE_HOME/dsqa/second-stage/pairs.jsonl
    python -m experiments.second_stage ce-train        # a cross-encoder from MiniLM's weights
    python -m experiments.second_stage ce-eval         # rerank the top 10 with it, on every dev set
    python -m experiments.second_stage linear          # a logistic regression over the stored vectors
    python -m experiments.second_stage long-questions  # BM25's weight falling off with the question's length
    python -m experiments.second_stage doc2query       # the generated questions as extra vectors of their passage
    python -m experiments.second_stage refusal         # one refusal threshold swept over the four dev sets
    python -m experiments.second_stage section-coverage  # a concept counts as covered when the chunk's section names it

Every probe re-scores the hybrid ranking's candidates, so the first line of
each table (weight 0) is dsqa as shipped. The dev sets: the notes' and the
KEPs' (``dsqa eval --kep`` must have built the KEP index in the cache), the
Black docs and the fresh notes (indexed into ``--work`` on first use; nobody
tunes on those two).

Training data comes from the notes only: the questions a local LLM wrote
for the notes' passages (``experiments/data/qgen/notes.jsonl``), each with the
passage it was written for and, as negatives, the passages the hybrid
ranking puts above or near it (not the passage's section, not a copy of its
text: the notes copy one another). No dev-set question is trained on.

* **cross-encoder:** MiniLM's weights with a new one-logit head, reading
  (question, heading + best sentence window), trained with binary
  cross-entropy (positives weighted by the negatives per question).
* **linear:** per candidate, the hybrid score's parts and the element-wise
  products of the query vector with the best window's and the chunk's
  stored vectors; a logistic regression says whether the candidate is the
  passage the question was written for. It costs nothing at query time.
* **long questions:** BM25 and concept coverage keep the share
  ``min(1, (terms0 / terms) ** power)`` of their weight, ``terms`` the
  question's BM25 terms; short questions are untouched.

Results and their reading: ``experiments/adaptation.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT
from dsqa import DSQA, Settings, paths
from dsqa.evaluation import (
    DEFAULT_DEVSET,
    KEP_DEVSET,
    Question,
    answers_question,
    load_questions,
)
from dsqa.query.retrieval import Retriever, concept_coverage
from dsqa.results import Passage
from dsqa.storage.lexical import concepts, tokenize
from experiments.adapt import log, stands_for

QGEN = ROOT / "experiments" / "data" / "qgen" / "notes.jsonl"
WORK = paths.cache_dir() / "second-stage"
SEED = 0
#: Candidates a probe re-scores, and negatives kept per training question.
CANDIDATES = 20
NEGATIVES = 4


@dataclass
class DevSet:
    name: str
    corpus: Path
    index: Path
    questions: Path


def dev_sets(work: Path) -> list[DevSet]:
    cache = paths.cache_dir()
    return [
        DevSet("notes", ROOT / "corpus", ROOT / "index", DEFAULT_DEVSET),
        DevSet("kep", cache / "kep-corpus", cache / "kep-index", KEP_DEVSET),
        DevSet("black", ROOT / "bench" / "data" / "third" / "black", work / "black-index", ROOT / "bench" / "data" / "third" / "questions.jsonl"),
        DevSet("fresh", ROOT / "tests" / "data" / "fresh_notes", work / "fresh-index", ROOT / "tests" / "data" / "fresh_questions.jsonl"),
    ]


def open_set(dev: DevSet, **settings: Any) -> DSQA:
    """An engine over the dev set's index; the small ones are built on first use."""
    if dev.name == "kep" and not (dev.index / "CURRENT").exists():
        raise SystemExit("no KEP index: run `dsqa eval --kep` first (it builds one in the cache)")
    engine = DSQA(Settings(corpus_dir=dev.corpus, index_dir=dev.index, **settings))
    engine.retriever()  # builds the index when missing
    return engine


def passage(engine: DSQA, row: int) -> Passage:
    c = engine.retriever().index.chunks[row]
    return Passage(c.text, c.source, c.heading, c.start_line, c.end_line, 0.0)


def window_text(retriever: Retriever, row: int, window: int) -> str:
    """The heading's last two levels and the sentence window: what the cross-encoder reads."""
    c = retriever.index.chunks[row]
    start, end = int(retriever.index.windows[window, 1]), int(retriever.index.windows[window, 2])
    body = c.text[start:end] if start >= 0 else c.text
    tail = " › ".join(c.heading.split(" › ")[-2:])
    return f"{tail}: {body}" if tail else body


def generated_questions(engine: DSQA) -> Iterator[tuple[str, int]]:
    """(question, row of the passage it was written for) from the notes' qgen run."""
    by_key = {c.key: i for i, c in enumerate(engine.retriever().index.chunks)}
    with open(QGEN, encoding="utf-8") as fh:
        for rec in map(json.loads, fh):
            if rec["key"] in by_key:
                for q in rec["questions"]:
                    yield q, by_key[rec["key"]]


def is_copy(retriever: Retriever, row: int, positive: int) -> bool:
    chunks = retriever.index.chunks
    return stands_for(chunks[row].to_json(), chunks[positive].to_json())


# -- scoring a re-ranking ----------------------------------------------------------------------

#: Per answerable question: its kind, the candidates' hybrid scores, the
#: probe's own input for them, and which candidates answer it.
Ranked = list[tuple[str, np.ndarray, Any, np.ndarray]]


def rank_dev(engine: DSQA, questions: list[Question], extra: Callable[[Retriever, str, np.ndarray, list], Any]) -> Ranked:
    retriever = engine.retriever()
    out = []
    for q in questions:
        if not q.answerable:
            continue
        qv = retriever.embed_query(q.question)
        hits = retriever.rank(q.question, CANDIDATES, query_vector=qv)
        ok = np.array([answers_question(passage(engine, h.row), q) for h in hits])
        out.append((q.kind, np.array([h.score for h in hits]), extra(retriever, q.question, qv, hits), ok))
    return out


def figures(ranked: Ranked, rescore: Callable[[np.ndarray, Any], np.ndarray]) -> str:
    """hit@1 / hit@5 / MRR@10 / paraphrase hit@1 of the candidates re-scored by ``rescore``."""
    h1 = h5 = mrr = 0.0
    para = [0, 0]
    for kind, base, extra, ok in ranked:
        order = ok[np.argsort(-rescore(base, extra), kind="stable")][:10]
        rank = int(np.argmax(order)) + 1 if order.any() else None
        h1 += rank == 1
        h5 += bool(rank and rank <= 5)
        mrr += 1 / rank if rank else 0.0
        if kind == "paraphrase":
            para[0] += rank == 1
            para[1] += 1
    n = len(ranked) or 1
    return f"{h1 / n:.3f}/{h5 / n:.3f}/{mrr / n:.3f}/{para[0] / max(para[1], 1):.3f}"


# -- cross-encoder -----------------------------------------------------------------------------


def ce_pairs(work: Path) -> None:
    engine = open_set(dev_sets(work)[0])
    retriever = engine.retriever()
    rows = []
    for q, pos in generated_questions(engine):
        qv = retriever.embed_query(q)
        hits = retriever.rank(q, CANDIDATES, query_vector=qv)
        _, _, best = retriever.window_scores(qv, np.array([pos]))
        rows.append({"query": q, "passage": window_text(retriever, pos, int(best[0])), "label": 1.0})
        negatives = [h for h in hits if not is_copy(retriever, h.row, pos)][:NEGATIVES]
        rows.extend({"query": q, "passage": window_text(retriever, h.row, h.window), "label": 0.0} for h in negatives)
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "pairs.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    log(f"{len(rows)} pairs in {work / 'pairs.jsonl'}")


def ce_train(work: Path, epochs: float, max_tokens: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from dsqa.encoders.registry import minilm_path

    with open(work / "pairs.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    random.Random(SEED).shuffle(rows)
    data = Dataset.from_dict({k: [r[k] for r in rows] for k in ("query", "passage", "label")})
    model = CrossEncoder(str(minilm_path()), num_labels=1, max_length=max_tokens, device="cpu")
    args = CrossEncoderTrainingArguments(
        output_dir=str(work / "trainer"),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        learning_rate=5e-5,
        warmup_ratio=0.1,
        save_strategy="no",
        logging_steps=20,
        seed=SEED,
        report_to=[],
        use_cpu=True,
    )
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(NEGATIVES)))
    started = time.perf_counter()
    CrossEncoderTrainer(model=model, args=args, train_dataset=data, loss=loss).train()
    log(f"trained in {time.perf_counter() - started:.0f} s on {len(rows)} pairs")
    model.save(str(work / "cross-encoder"))


def ce_eval(work: Path) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(str(work / "cross-encoder"), device="cpu")
    seconds: list[float] = []

    def logits(retriever: Retriever, question: str, qv: np.ndarray, hits: list) -> np.ndarray:
        started = time.perf_counter()
        out = model.predict([(question, window_text(retriever, h.row, h.window)) for h in hits[:10]], batch_size=32)
        seconds.append(time.perf_counter() - started)
        return np.concatenate([np.asarray(out, dtype=float), np.full(len(hits) - min(len(hits), 10), -np.inf)])

    for dev in dev_sets(work):
        ranked = rank_dev(open_set(dev), load_questions(dev.questions), logits)
        print(f"{dev.name}: cross-encoder over the top 10, median {np.median(seconds) * 1000:.0f} ms a question")
        for w in (0.0, 0.1, 0.3, 1.0):
            print(f"  hybrid + {w} * p: {figures(ranked, lambda base, lg, w=w: base + w / (1 + np.exp(-lg)))}")
        print(f"  cross-encoder alone: {figures(ranked, lambda base, lg: lg)}", flush=True)


# -- linear model over the stored vectors ------------------------------------------------------


def features(retriever: Retriever, question: str, qv: np.ndarray, hits: list) -> np.ndarray:
    index = retriever.index
    rows = np.array([h.row for h in hits])
    chunk, window, best = retriever.window_scores(qv, rows)
    has_window = index.windows[best, 1] >= 0
    lexical = index.lexical.scores(question)
    norm = lexical[rows] / (float(lexical.max()) or 1.0)
    coverage = concept_coverage(index.lexical, question, rows)
    whole = [next((w for w in index.window_rows(int(r)) if index.windows[w, 1] < 0), int(b)) for r, b in zip(rows, best, strict=True)]
    scalars = np.stack([np.array([h.score for h in hits]), chunk, np.where(has_window, window, 0.0), norm, coverage], 1)
    return np.hstack([scalars, index.vectors[best] * qv, index.vectors[np.array(whole)] * qv])


def linear(work: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    engine = open_set(dev_sets(work)[0])
    retriever = engine.retriever()
    x, y = [], []
    for q, pos in generated_questions(engine):
        qv = retriever.embed_query(q)
        hits = retriever.rank(q, CANDIDATES, query_vector=qv)
        labels = [is_copy(retriever, h.row, pos) for h in hits]
        if any(labels):
            x.append(features(retriever, q, qv, hits))
            y.extend(labels)
    xs, ys = np.vstack(x), np.array(y)
    log(f"{len(x)} questions, {len(ys)} candidates, {ys.mean():.3f} positive")
    sets = {dev.name: rank_dev(open_set(dev), load_questions(dev.questions), features) for dev in dev_sets(work)}
    for c in (0.01, 0.1, 1.0):
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(xs, ys)
        for w in (0.0, 0.05, 0.1, 0.2, 1.0):
            cells = "  ".join(f"{n} {figures(r, lambda base, f, w=w, model=model: base + w * model.decision_function(f))}" for n, r in sets.items())
            print(f"C={c} hybrid + {w} * logit: {cells}", flush=True)


# -- long questions ----------------------------------------------------------------------------


def parts(retriever: Retriever, question: str, qv: np.ndarray, hits: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The semantic score, normalised BM25 and concept coverage of each candidate, and the question's terms."""
    index, st = retriever.index, retriever.settings
    rows = np.array([h.row for h in hits])
    chunk, window, best = retriever.window_scores(qv, rows)
    semantic = st.chunk_weight * chunk + st.window_weight * np.where(index.windows[best, 1] >= 0, window, 0.0)
    lexical = index.lexical.scores(question)
    norm = lexical[rows] / (float(lexical.max()) or 1.0)
    return semantic, norm, concept_coverage(index.lexical, question, rows), len(tokenize(question))


def long_questions(work: Path) -> None:
    st = Settings()
    sets = {dev.name: rank_dev(open_set(dev), load_questions(dev.questions), parts) for dev in dev_sets(work)}
    for name, ranked in sets.items():
        terms = sorted(p[3] for _, _, p, _ in ranked)
        print(f"{name}: BM25 terms per question: median {np.median(terms):.0f}, most {terms[-1]}")

    def share(terms0: int, power: float) -> Callable[[np.ndarray, Any], np.ndarray]:
        def rescore(base: np.ndarray, p: Any) -> np.ndarray:
            semantic, norm, coverage, terms = p
            k = 1.0 if terms <= terms0 else (terms0 / terms) ** power
            return semantic + k * (st.bm25_weight * norm + st.concept_weight * coverage)

        return rescore

    print("hit@1/hit@5/MRR@10/paraphrase hit@1")
    for terms0, power in [(1000, 1)] + [(t, p) for t in (8, 10, 12, 14) for p in (1, 2, 4)] + [(0, 1000)]:
        label = "shipped" if terms0 == 1000 else "no BM25, no coverage" if terms0 == 0 else f"min(1, ({terms0}/terms)^{power})"
        print(f"  {label:26} " + "  ".join(f"{n} {figures(r, share(terms0, power))}" for n, r in sets.items()), flush=True)


# -- section-level concept coverage ----------------------------------------------------------


def section_parts(retriever: Retriever, question: str, qv: np.ndarray, hits: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The semantic score and normalised BM25 of each candidate, and its
    coverage of each concept from its own text and from its whole section's
    (the chunks of its note under the same heading)."""
    semantic, norm, _, _ = parts(retriever, question, qv, hits)
    index = retriever.index
    section: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(index.chunks):
        section.setdefault((c.source, c.heading), []).append(i)
    rows = np.array([h.row for h in hits])
    own, whole = [], []
    for terms in concepts(question):
        idf = index.lexical.idf(terms)
        own.append(idf @ index.lexical.presence(terms, rows) / idf.sum())
        members = [section[(index.chunks[r].source, index.chunks[r].heading)] for r in rows]
        present = np.stack([index.lexical.presence(terms, np.array(m)).any(axis=1) for m in members], 1)
        whole.append(idf @ present / idf.sum())
    return semantic, norm, np.array(own).reshape(-1, len(rows)), np.array(whole).reshape(-1, len(rows))


def section_coverage(work: Path) -> None:
    """A chunk covers a concept as well as its own text does, or ``share``
    times as well as its section does (a lab's "overlay network" heading
    covers the lab's service-discovery lines)."""
    st = Settings()
    sets = {dev.name: rank_dev(open_set(dev), load_questions(dev.questions), section_parts) for dev in dev_sets(work)}

    def rescore(weight: float, share: float) -> Callable[[np.ndarray, Any], np.ndarray]:
        def f(base: np.ndarray, p: Any) -> np.ndarray:
            semantic, norm, own, whole = p
            coverage = np.maximum(own, share * whole).min(axis=0) if len(own) else np.zeros(len(semantic))
            return semantic + st.bm25_weight * norm + weight * coverage

        return f

    print("hit@1/hit@5/MRR@10/paraphrase hit@1; share 0 is the shipped coverage")
    for weight in (0.2, 0.3, 0.4):
        for share in (0.0, 0.5, 1.0):
            print(f"  concept_weight {weight}, section share {share}: " + "  ".join(f"{n} {figures(r, rescore(weight, share))}" for n, r in sets.items()), flush=True)


# -- doc2query ---------------------------------------------------------------------------------


def doc2query(work: Path) -> None:
    """The generated questions as extra vectors of their passage: ``w`` times the
    question's best cosine to them is added to the passage's score (notes only:
    no other dev set has generated questions)."""
    engine = open_set(dev_sets(work)[0])
    retriever = engine.retriever()
    pairs = list(generated_questions(engine))
    vectors = retriever.embedder.embed([q for q, _ in pairs])
    owners = np.array([row for _, row in pairs])

    def nearest(retriever: Retriever, question: str, qv: np.ndarray, hits: list) -> np.ndarray:
        best = np.zeros(len(retriever.index.chunks))
        np.maximum.at(best, owners, vectors @ qv)
        return best[[h.row for h in hits]]

    ranked = rank_dev(engine, load_questions(DEFAULT_DEVSET), nearest)
    for w in (0.0, 0.1, 0.2, 0.3, 0.5):
        print(f"notes, hybrid + {w} * best cosine to a generated question: {figures(ranked, lambda base, g, w=w: base + w * g)}")


# -- refusal -----------------------------------------------------------------------------------


def refusal(work: Path) -> None:
    """Uncovered questions refused and answerable ones refused on every dev set, per threshold."""
    confidences = {}
    for dev in dev_sets(work):
        engine = open_set(dev)
        confidences[dev.name] = [(engine.ask(q.question, k=10).confidence, q.answerable) for q in load_questions(dev.questions)]
    for threshold in np.arange(0.60, 1.005, 0.02):
        cells, refused, uncovered = [], 0, 0
        for name, pairs in confidences.items():
            answerable = [c for c, a in pairs if a]
            other = [c for c, a in pairs if not a]
            refused += sum(c < threshold for c in other)
            uncovered += len(other)
            cells.append(f"{name}: answerable {sum(c < threshold for c in answerable)}/{len(answerable)}, uncovered {sum(c < threshold for c in other)}/{len(other)}")
        print(f"{threshold:.2f}: uncovered refused {refused}/{uncovered}; " + "; ".join(cells))
    for name, pairs in confidences.items():
        print(f"{name}: uncovered questions' confidences {sorted(round(c, 2) for c, a in pairs if not a)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.second_stage", description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["ce-pairs", "ce-train", "ce-eval", "linear", "long-questions", "doc2query", "refusal", "section-coverage"])
    parser.add_argument("--work", type=Path, default=WORK, help="pairs, the trained model and the small dev indexes")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.step == "ce-pairs":
        ce_pairs(args.work)
    elif args.step == "ce-train":
        ce_train(args.work, args.epochs, args.max_tokens)
    elif args.step == "ce-eval":
        ce_eval(args.work)
    elif args.step == "linear":
        linear(args.work)
    elif args.step == "long-questions":
        long_questions(args.work)
    elif args.step == "doc2query":
        doc2query(args.work)
    elif args.step == "section-coverage":
        section_coverage(args.work)
    else:
        refusal(args.work)


if __name__ == "__main__":
    main()
