"""Adapting MiniLM to the corpora dsqa serves (issue 14, means 2): an experiment.

    python -m experiments.adapt pairs            # training examples -> bench/data/adapt/train.jsonl
    python -m experiments.adapt train            # fine-tune -> $XDG_CACHE_HOME/dsqa/adapted/<name>
    python -m experiments.adapt eval [--kep]     # dev-set figures, base model vs adapted

Training examples are (query, positive passage, hard negative passage)
triples, from the bundled notes and the KEPs of sig-storage, sig-apps and
sig-node only (no other SIG is read):

* ``question``: questions a local LLM wrote for a passage
  (``experiments/data/qgen``, written by :mod:`experiments.qgen`);
* ``heading``: a section's heading path -> its text (free);
* ``cloze``: one sentence of a passage -> the rest of the passage (the
  inverse cloze task; free).

Hard negatives are mined by dsqa itself: for the notes, the committed
index's hybrid ranking (what dsqa ranks above or near the right passage);
for the KEPs, BM25 over their chunks. A candidate that shares most of its
words with the positive is skipped, since many notes copy the same lines
and such a "negative" would teach the model to push the answer away.

The model is trained with sentence-transformers' trainer and
``MultipleNegativesRankingLoss`` (in-batch negatives plus the mined one).
The adapted model is registered under its own name, so its vectors never mix
with the shipped model's in an index.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT
from dsqa.query.scorers import SCORERS
from experiments.qgen import kep_source

OUT = ROOT / "bench" / "data" / "adapt"
QGEN = ROOT / "experiments" / "data" / "qgen"
SEED = 0
#: A candidate negative sharing this fraction of the positive's words is
#: treated as a copy of it, not a negative.
COPY_OVERLAP = 0.5
#: Free examples taken per corpus (the KEPs have about 10,000 chunks).
HEADINGS_PER_CORPUS = {"notes": 400, "keps": 1500}
CLOZE_PER_CORPUS = {"notes": 400, "keps": 1500}
ADAPTED_NAME = "all-MiniLM-L6-v2-dsqa"


def log(message: str) -> None:
    print(f"[adapt {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dsqa" / "adapted"


_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def copies(a: str, b: str) -> bool:
    wa, wb = words(a), words(b)
    return bool(wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= COPY_OVERLAP


def heading_query(heading: str, corpus: str) -> str:
    """A query made of a heading path: for the notes the section and its
    parent; for a KEP its title and the section (a KEP's sections repeat a
    template, "Test Plan › Unit tests", that only the title tells apart)."""
    parts = [p.strip() for p in heading.split("›") if p.strip()]
    if corpus == "keps" and len(parts) > 1:
        parts = [parts[0], parts[-1]]
    return " › ".join(parts[-2:])


def embedded(chunk: dict[str, Any]) -> str:
    """The passage as the index embeds it: heading path, then text."""
    return f"{chunk['heading']}\n{chunk['text']}" if chunk["heading"] else chunk["text"]


def cloze(text: str, rng: random.Random) -> tuple[str, str] | None:
    """One sentence of ``text`` (8 to 40 words) and the text without it."""
    from dsqa.sources.sentences import sentence_spans

    spans = [(s, e) for s, e in sentence_spans(text) if 8 <= len(text[s:e].split()) <= 40]
    if len(spans) < 1 or len(sentence_spans(text)) < 3:
        return None
    s, e = rng.choice(spans)
    return text[s:e].strip(), (text[:s] + text[e:]).strip()


def qgen_records(name: str) -> list[dict[str, Any]]:
    path = QGEN / f"{name}.jsonl"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


#: Candidates a miner looks at for a query's hard negatives.
MINED = 12


def stands_for(chunk: dict[str, Any], positive: dict[str, Any]) -> bool:
    """Whether ``chunk`` cannot serve as a negative for ``positive``: it is
    the positive, in its section, or a copy of its text."""
    same_section = chunk["source"] == positive["source"] and chunk["heading"] == positive["heading"]
    return chunk["key"] == positive["key"] or same_section or copies(chunk["text"], positive["text"])


def pick_negatives(candidates: list[dict[str, Any]], positive: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The first ``n`` candidates that are not the positive, not its section,
    and not a copy of its text."""
    out = []
    for c in candidates:
        if stands_for(c, positive):
            continue
        out.append(c)
        if len(out) == n:
            break
    return out


class NotesMiner:
    """Hard negatives for the notes: the committed index's hybrid ranking."""

    def __init__(self) -> None:
        import dsqa

        self.retriever = dsqa.DSQA(corpus_dir=ROOT / "corpus", index_dir=ROOT / "index").retriever()
        self.chunks: list[dict[str, Any]] = [c.to_json() for c in self.retriever.index.chunks]
        self.by_key = {c["key"]: i for i, c in enumerate(self.chunks)}

    def negatives(self, query: str, positive_key: str, n: int) -> list[dict[str, Any]]:
        ranked = [self.chunks[hit.row] for hit in self.retriever.rank(query, MINED)]
        return pick_negatives(ranked, self.chunks[self.by_key[positive_key]], n)


class KepMiner:
    """Hard negatives for the KEPs: BM25 over their chunks."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        from dsqa.storage.lexical import LexicalIndex, lexical_text

        self.chunks = chunks
        self.by_key = {c["key"]: i for i, c in enumerate(chunks)}
        self.lexical = LexicalIndex.build([lexical_text(c["heading"], c["text"]) for c in chunks])

    def negatives(self, query: str, positive_key: str, n: int) -> list[dict[str, Any]]:
        import numpy as np

        ranked = [self.chunks[int(row)] for row in np.argsort(-self.lexical.scores(query))[:MINED]]
        return pick_negatives(ranked, self.chunks[self.by_key[positive_key]], n)


def examples(corpus: str, chunks: list[dict[str, Any]], miner: Any, rng: random.Random) -> Iterator[dict[str, Any]]:
    by_key = {c["key"]: c for c in chunks}
    for rec in qgen_records(corpus):
        c = by_key.get(rec["key"])
        if c is None:
            continue
        for q in rec["questions"]:
            yield {"corpus": corpus, "kind": "question", "key": c["key"], "query": q, "positive": embedded(c)}
    sample = rng.sample(chunks, min(len(chunks), HEADINGS_PER_CORPUS[corpus]))
    for c in sample:
        q = heading_query(c["heading"], corpus)
        if len(q.split()) >= 2:
            yield {"corpus": corpus, "kind": "heading", "key": c["key"], "query": q, "positive": c["text"]}
    sample = rng.sample(chunks, min(len(chunks), CLOZE_PER_CORPUS[corpus]))
    for c in sample:
        pair = cloze(c["text"], rng)
        if pair:
            yield {"corpus": corpus, "kind": "cloze", "key": c["key"], "query": pair[0], "positive": embedded({**c, "text": pair[1]})}


def make_pairs(out: Path) -> None:
    from experiments.qgen import kep_chunks, notes_chunks

    rng = random.Random(SEED)
    out.mkdir(parents=True, exist_ok=True)
    notes = notes_chunks()
    log(f"notes: {len(notes)} chunks; loading the committed index for mining")
    sigs, _ = kep_chunks(kep_source())
    keps = [c for sig in sorted(sigs) for c in sigs[sig]]
    log(f"KEPs of {', '.join(sorted(sigs))}: {len(keps)} chunks")
    n = 0
    with open(out / "train.jsonl.tmp", "w", encoding="utf-8") as fh:
        for corpus, chunks, miner in (("notes", notes, NotesMiner()), ("keps", keps, KepMiner(keps))):
            for ex in examples(corpus, chunks, miner, rng):
                negs = miner.negatives(ex["query"], ex["key"], 1)
                if not negs:
                    continue
                ex["negative"] = negs[0]["text"] if ex["kind"] == "heading" else embedded(negs[0])
                fh.write(json.dumps(ex, ensure_ascii=False) + "\n")
                n += 1
    os.replace(out / "train.jsonl.tmp", out / "train.jsonl")
    log(f"{n} examples in {out / 'train.jsonl'}")


def train(data: Path, dest: Path, epochs: float, batch: int, kinds: set[str], max_tokens: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers

    from dsqa.encoders.registry import minilm_path

    with open(data, encoding="utf-8") as fh:
        rows = [r for r in map(json.loads, fh) if r["kind"] in kinds]
    random.Random(SEED).shuffle(rows)
    log(f"{len(rows)} examples ({', '.join(sorted(kinds))}), {epochs} epochs, batch {batch}")
    ds = Dataset.from_dict(
        {"anchor": [r["query"] for r in rows], "positive": [r["positive"] for r in rows], "negative": [r["negative"] for r in rows]}
    )
    model = SentenceTransformer(str(minilm_path()), device="cpu")
    model.max_seq_length = max_tokens
    args = SentenceTransformerTrainingArguments(
        output_dir=str(dest.parent / (dest.name + ".work")),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        logging_steps=10,
        seed=SEED,
        report_to=[],
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=MultipleNegativesRankingLoss(model))
    t0 = time.perf_counter()
    trainer.train()
    log(f"trained in {time.perf_counter() - t0:.0f} s")
    model.max_seq_length = 256
    model.save(str(dest))
    log(f"saved to {dest}")


def register(name: str, path: Path) -> None:
    import dsqa
    from dsqa.encoders import SentenceTransformerEmbedder

    dsqa.register_model(name, lambda: SentenceTransformerEmbedder(name, lambda: path))


def evaluate(model: str, kep: bool, work: Path, only: set[str] | None = None) -> list[dict[str, Any]]:
    """The dev-set reports for ``model`` (notes, Black docs, fresh notes,
    and the KEP dev set when asked), each index built afresh in ``work``."""
    import functools

    import dsqa
    from dsqa import evaluation

    sets = [
        ("notes", ROOT / "corpus", evaluation.DEFAULT_DEVSET),
        ("black", ROOT / "bench" / "data" / "third" / "black", ROOT / "bench" / "data" / "third" / "questions.jsonl"),
        ("fresh", ROOT / "tests" / "data" / "fresh_notes", ROOT / "tests" / "data" / "fresh_questions.jsonl"),
    ]
    if kep:
        sets.append(("kep", evaluation.prepare_kep_corpus(work / "kep-corpus", kep_source()), evaluation.KEP_DEVSET))
    out = []
    for name, corpus, questions in sets:
        if only and name not in only:
            continue
        eng = dsqa.DSQA(corpus_dir=corpus, index_dir=work / f"{name}-{model}", model=model)
        log(f"{model} {name}: {eng.reindex()}")
        qs = evaluation.load_questions(questions)
        eng.ask(qs[0].question)
        for method in ("hybrid", "dense"):
            eng.scorer = SCORERS[method]
            rep = evaluation.evaluate(f"{name}:{method}", qs, functools.partial(eng.ask, k=10))
            d = rep.to_dict()
            d["model"] = model
            out.append(d)
            log(json.dumps(d))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.adapt", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pairs")
    p.add_argument("--out", type=Path, default=OUT)
    t = sub.add_parser("train")
    t.add_argument("--data", type=Path, default=OUT / "train.jsonl")
    t.add_argument("--name", default=ADAPTED_NAME)
    t.add_argument("--epochs", type=float, default=1.0)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--max-tokens", type=int, default=256)
    t.add_argument("--kinds", default="question,heading,cloze")
    e = sub.add_parser("eval")
    e.add_argument("--name", action="append", default=[], help="adapted model names to compare with the base model")
    e.add_argument("--no-base", action="store_true")
    e.add_argument("--kep", action="store_true")
    e.add_argument("--work", type=Path, default=Path("/tmp/dsqa-adapt"))
    e.add_argument("--out", type=Path)
    e.add_argument("--sets", help="comma-separated dev sets to run (notes, black, fresh, kep); default all")
    args = parser.parse_args(argv)
    if args.cmd == "pairs":
        make_pairs(args.out)
    elif args.cmd == "train":
        train(args.data, cache_dir() / args.name, args.epochs, args.batch, set(args.kinds.split(",")), args.max_tokens)
    else:
        models = [] if args.no_base else ["all-MiniLM-L6-v2"]
        for name in args.name:
            if name not in models:
                register(name, cache_dir() / name)
                models.append(name)
        results = [r for m in models for r in evaluate(m, args.kep, args.work, set(args.sets.split(",")) if args.sets else None)]
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
        for r in results:
            kinds = " ".join(f"{k} {v:.3f}" for k, v in r["hit@1_by_kind"].items())
            print(f"{r['model']:24} {r['name']:13} hit@1 {r['hit@1']:.3f} hit@5 {r['hit@5']:.3f} mrr {r['mrr@10']:.3f} {kinds} refusal {r['refusal']}")


if __name__ == "__main__":
    main()
