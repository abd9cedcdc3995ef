"""Ranking weights and the refusal penalty on both dev sets:
``python -m experiments.weight_grid``.

Every ranking choice must help, or at least not hurt, both dev sets (the
course notes and the Kubernetes design documents of sig-storage and
sig-apps), so each setting is scored on both in one run: hit@1 / hit@5 /
MRR@10 for window_weight x bm25_weight and for concept_weight x bm25_weight
(down to 0: what each part of the fusion adds on each set), then, for unknown_term_penalty (each
index recalibrated with it), how many uncovered questions a threshold calibrated on the notes refuses on
each set (at most 5% of the notes' answerable ones refused). Needs the KEP
index that ``dsqa eval --kep`` builds under ``~/.cache/dsqa``.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

from dsqa import DSQA, Settings, paths
from dsqa.evaluation import (
    DEFAULT_DEVSET,
    KEP_DEVSET,
    Question,
    calibrate,
    evaluate,
    load_questions,
)


def grid(sets: dict[str, tuple[DSQA, list[Question]]], other: str, others: list[float], bm25: list[float]) -> None:
    """Rank every answerable question with each pair of ``other`` (a weight
    in Settings) and bm25_weight; one line per pair."""
    for value, bw in itertools.product(others, bm25):
        cells = []
        for name, (engine, questions) in sets.items():
            # An engine with these weights; it loads the same index.
            weighted = DSQA(engine.settings.with_(**{other: value, "bm25_weight": bw}))
            r = evaluate(name, [q for q in questions if q.answerable], lambda q, e=weighted: e.ask(q, k=10))
            cells.append(f"{name} {r.hit_at[1]:.3f} / {r.hit_at[5]:.3f} / {r.mrr10:.3f}")
        print(f"  {value:.2f} x {bw:.2f}:  " + "   ".join(cells), flush=True)


def main() -> int:
    cache = paths.cache_dir()
    sets = {
        "notes": (DSQA(Settings(auto_reindex=False)), load_questions(DEFAULT_DEVSET)),
        "KEPs": (
            DSQA(Settings(auto_reindex=False, corpus_dir=cache / "kep-corpus", index_dir=cache / "kep-index")),
            load_questions(KEP_DEVSET),
        ),
    }
    default = Settings()
    print(f"window_weight x bm25_weight (default {default.window_weight} x {default.bm25_weight}): hit@1 / hit@5 / MRR@10")
    grid(sets, "window_weight", [0.2, 0.3, 0.4, 0.5], [0.1, 0.15, 0.2, 0.25, 0.3])
    print(f"concept_weight x bm25_weight (default {default.concept_weight} x {default.bm25_weight}): hit@1 / hit@5 / MRR@10")
    grid(sets, "concept_weight", [0.0, 0.2], [0.0, 0.1, 0.2])

    print(f"unknown_term_penalty (default {default.unknown_term_penalty}): threshold calibrated on the notes, refused")
    with tempfile.TemporaryDirectory() as tmp:
        penalties(sets, {name: copy(engine.settings, Path(tmp) / name) for name, (engine, _) in sets.items()})
    return 0


def copy(settings: Settings, folder: Path) -> Settings:
    """``settings`` over a copy of its notes and index (side by side, as the
    index records its notes), which a reindex may rewrite."""
    corpus, index = folder / settings.corpus_dir.name, folder / settings.index_dir.name
    shutil.copytree(settings.corpus_dir, corpus)
    shutil.copytree(settings.index_dir, index)
    return settings.with_(corpus_dir=corpus, index_dir=index)


def penalties(sets: dict[str, tuple[DSQA, list[Question]]], copies: dict[str, Settings]) -> None:
    """The refusal of each set with each unknown_term_penalty, every index
    recalibrated with it (the calibration records the penalty: a reindex of
    the copy recalibrates it and reuses every vector)."""
    for penalty in (0.0, 0.45, 0.9, 1.35):
        engines = {name: DSQA(s.with_(unknown_term_penalty=penalty, auto_reindex=True)) for name, s in copies.items()}
        for engine in engines.values():
            engine.reindex()
        reports = {name: evaluate(name, qs, lambda q, e=engines[name]: e.ask(q, k=10)) for name, (_, qs) in sets.items()}
        sweep = calibrate(reports["notes"].confidences)
        threshold = sweep["threshold"]  # rounded: the notes' own counts come from the sweep
        cells = [f"notes: uncovered {sweep['unanswerable_refused']}/{sweep['unanswerable']}, "
                 f"answerable {sweep['answerable_refused']}/{reports['notes'].answerable}"]
        for name, r in reports.items():
            if name == "notes":
                continue
            answerable = sum(c < threshold for c, a in r.confidences if a)
            uncovered = [c < threshold for c, a in r.confidences if not a]
            cells.append(f"{name}: uncovered {sum(uncovered)}/{len(uncovered)}, answerable {answerable}/{r.answerable}")
        print(f"  {penalty:.2f} (threshold {threshold:.3f}):  " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
