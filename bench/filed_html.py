"""The html part's "as filed" row: one folder of saved pages indexed and
asked by the code issue 29 was filed against (``DSQA_BENCH_BASE``, b8f666b),
run as its own process with that checkout first on ``PYTHONPATH``.

It uses only what that code has (``DSQA``, ``Settings``, ``dsqa.store``,
``dsqa.sentences``) and scores nothing itself: it writes the reindex's
times, the index's size and vector count, every chunk with its quotable
spans (by that code's own sentence splitter), and the top passages of each
dev question to ``out`` as JSON; the bench process scores them with today's
rules (bench/html_quality.py, ``dsqa.evaluation.answers_question``), as it
scores its other rows.

    PYTHONPATH=OLD_CHECKOUT python bench/filed_html.py '{"corpus_dir": ..., "index_dir": ..., "devset": ..., "out": ...}'
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> None:
    args = json.loads(argv[1])
    from dsqa.sentences import sentence_spans

    from dsqa import DSQA, Settings, store

    engine = DSQA(Settings(corpus_dir=Path(args["corpus_dir"]), index_dir=Path(args["index_dir"]), auto_reindex=False))
    engine.embedder.embed(["load the model before timing"])
    cpu_started, started = _cpu(), time.perf_counter()
    report = engine.reindex(full=True)
    seconds, cpu_s = time.perf_counter() - started, _cpu() - cpu_started
    index_dir = Path(args["index_dir"])
    manifest = store.read_manifest(index_dir)
    generation = store.current_generation(index_dir)
    size = sum(f.stat().st_size for f in generation.rglob("*") if f.is_file()) / 1e6
    chunks = store.load(index_dir).chunks
    answers = []
    for line in Path(args["devset"]).read_text(encoding="utf-8").splitlines():
        if line.strip():
            answer = engine.ask(json.loads(line)["question"], k=10)
            answers.append({"found": bool(answer.found), "passages": [[p.source, p.text] for p in answer.passages[:10]]})
    result = {
        "notes": len(report.added),
        "skipped": len(report.skipped),
        "seconds": seconds,
        "cpu_s": cpu_s,
        "index_mb": size,
        "vectors": int(manifest.get("vector_count") or 0),
        "chunks": [[c["source"], c["heading"], c["text"], sentence_spans(c["text"])] for c in chunks],
        "answers": answers,
    }
    Path(args["out"]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
