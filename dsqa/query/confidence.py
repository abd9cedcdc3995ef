"""How sure dsqa is that the top passages answer a question.

The raw confidence combines the best window's cosine similarity with how much
of the question the top passages cover, minus a penalty for question terms the
notes lack; :func:`confidence` puts it on the index's own scale, which
:mod:`dsqa.query.calibration` measures when the index is built (with
:func:`raw_confidence`, so both sides use one formula).
"""

from __future__ import annotations

from ..settings import Settings
from ..storage import StoredIndex
from ..storage.lexical import tokenize
from .retrieval import Hit

#: The scale of an index that has none (built by an older dsqa).
UNCALIBRATED = {"low": 0.0, "high": 1.0, "known_share": 0.34}


def confidence(question: str, hits: list[Hit], index: StoredIndex, settings: Settings) -> float:
    """How sure we are that the top passages answer ``question``, on the
    index's calibrated scale: 0 is where off-topic questions sit, 1 where
    questions the corpus nearly covers do."""
    scale = index.manifest.get("calibration") or UNCALIBRATED
    raw = raw_confidence(question, hits, index, scale["known_share"], settings)
    return (raw - scale["low"]) / (scale["high"] - scale["low"])


def raw_confidence(question: str, hits: list[Hit], index: StoredIndex, known_share: float, settings: Settings) -> float:
    """The uncalibrated confidence: the best window's cosine, plus
    ``coverage_weight`` times the share of the question's terms that the top
    ``confidence_passages`` hold, minus ``unknown_term_penalty`` times
    ``known_share`` for each question term the notes lack (counting at most
    ``max_unknown_terms``)."""
    if not hits:
        return 0.0
    terms = list(dict.fromkeys(tokenize(question)))
    if not terms:
        return hits[0].dense
    vocab = index.lexical.vocabulary
    top_terms: set[str] = set()
    for hit in hits[: settings.confidence_passages]:
        c = index.chunks[hit.row]
        top_terms.update(tokenize(f"{c.heading}\n{c.text}"))
    coverage = sum(t in top_terms for t in terms) / len(terms)
    unknown = min(sum(t not in vocab for t in terms), settings.max_unknown_terms)
    return hits[0].dense + settings.coverage_weight * coverage - settings.unknown_term_penalty * known_share * unknown
