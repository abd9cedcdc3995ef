"""Refusal that calibrates itself to each corpus.

A confidence threshold tuned on one folder of notes does not transfer: on a
small folder every answer scores lower (fewer notes say the same thing twice,
and ordinary words of a question are missing from its short vocabulary), on a
big one an uncovered question still finds passages near it. So each index
measures its own scale when it is built, from two sets of questions run
through the same ranking and confidence as a user's:

* questions it certainly does not cover: :data:`OFF_TOPIC`, everyday
  questions on unrelated subjects, shipped with dsqa; their median confidence
  is the corpus's ``low``;
* questions it nearly covers: pseudo-questions made of the key words of its
  own sentences, answered with the sentence's own passage left out, so only
  the *rest* of the corpus answers them. How well it does says how close a
  related but not identical passage comes in this corpus (close in notes that
  repeat each other, far in a handful of unrelated notes); a low percentile of
  their confidences is the corpus's ``high``.

A question's calibrated confidence is ``(raw - low) / (high - low)`` and one
threshold (``Settings.refusal_threshold``) serves every corpus. The scale is
stored in the index manifest, recomputed at every reindex that writes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..sources.sentences import sentence_spans
from ..storage import ChunkRecord
from ..storage.lexical import tokenize
from .confidence import raw_confidence

if TYPE_CHECKING:
    from .retrieval import Retriever

#: Bump when the calibration changes, so indexes are recalibrated (without
#: re-embedding) on their next reindex.
CALIBRATION_VERSION = 1
#: Pseudo-questions per corpus, taken from sentences spread evenly over it.
PSEUDO_QUESTIONS = 100
#: A pseudo-question is the first this many key words of its sentence.
PSEUDO_WORDS = 8
#: ``low`` is this percentile of the off-topic confidences, ``high`` this
#: percentile of the pseudo-questions'.
LOW_PERCENTILE = 50
HIGH_PERCENTILE = 10
#: Passages ranked per calibration question, as ``dsqa eval`` ranks them.
CALIBRATION_HITS = 10
#: ``high`` is at least this far above ``low``: a corpus too small to say
#: gets a scale that still separates its confidences.
MIN_SPAN = 0.05
#: ``high - low`` of a corpus without a sentence to make pseudo-questions of.
DEFAULT_SPAN = 1.0

_WORD = re.compile(r"[A-Za-z][\w'-]*")

#: Everyday questions no notes folder about one subject covers; together they
#: also sample ordinary English words (see :func:`known_share`).
OFF_TOPIC = (
    "how long should I boil an egg for a runny yolk",
    "what is a good substitute for buttermilk in pancakes",
    "how do I keep basil alive on a windowsill",
    "when is the best time to prune apple trees",
    "how often should I water a cactus",
    "how do I get red wine out of a carpet",
    "what temperature should a fridge be set to",
    "how do I fix a dripping tap",
    "what size nails do I need to hang a heavy mirror",
    "how do I bleed a radiator",
    "who won the football world cup in 1998",
    "how many players are on a rugby union team",
    "what are the rules of the offside trap in football",
    "how do I improve my 5k running time",
    "how should I warm up before lifting weights",
    "who painted the ceiling of the sistine chapel",
    "when did the roman empire fall",
    "what caused the first world war",
    "who was the first woman to win a nobel prize",
    "what is the capital of australia",
    "how long is the great wall of china",
    "which is the longest river in africa",
    "what is the population of brazil",
    "how do volcanoes form",
    "why is the sky blue",
    "how far away is the moon",
    "what is the boiling point of water at high altitude",
    "how does photosynthesis work",
    "what is the difference between a virus and a bacterium",
    "how many bones are in the human body",
    "what are the symptoms of iron deficiency",
    "how much sleep does a teenager need",
    "is it safe to take ibuprofen with coffee",
    "how do I treat a bee sting",
    "how do I file my tax return as a freelancer",
    "what is the difference between a roth ira and a traditional ira",
    "how is compound interest calculated on a mortgage",
    "what should I check before signing a rental lease",
    "how do I write a cover letter for a teaching job",
    "how do I ask my manager for a raise",
    "what is the plot of pride and prejudice",
    "who wrote one hundred years of solitude",
    "how do I tune a guitar to drop d",
    "what is the difference between a sonnet and a haiku",
    "how do I say thank you in japanese",
    "what are the past tense forms of irregular french verbs",
    "how do I train my puppy to stop biting",
    "how often should a cat be vaccinated",
    "what do goldfish eat",
    "how do I change a flat tyre on a bicycle",
    "why is my car battery draining overnight",
    "how do I renew my passport",
    "what documents do I need to rent a car abroad",
    "how do I plan a trip to see the northern lights",
    "what is the cheapest time of year to fly to hawaii",
    "how do I knit a scarf for beginners",
    "how do I remove rust from cast iron pans",
    "how many calories are in an avocado",
    "what is the difference between baking soda and baking powder",
    "how do I stop my glasses from fogging up with a mask",
    "how do I center a div with css flexbox",
    "how do I reverse a linked list in java",
    "what does the borrow checker do in rust",
    "how do I set up two factor authentication on my phone",
)


def pseudo_questions(chunks: Sequence[ChunkRecord], n: int = PSEUDO_QUESTIONS) -> list[tuple[str, int]]:
    """Up to ``n`` (question, chunk row) pairs: the first key words of
    sentences spread evenly over the corpus, one question per sentence."""
    from bm25s.stopwords import STOPWORDS_EN

    stop = frozenset(STOPWORDS_EN)
    spans = [(row, a, b) for row, c in enumerate(chunks) for a, b in sentence_spans(c.text)]
    if len(spans) > n:
        spans = [spans[i * len(spans) // n] for i in range(n)]
    out: dict[str, int] = {}
    for row, a, b in spans:
        words = [w for w in _WORD.findall(chunks[row].text[a:b]) if len(w) > 1 and w.lower() not in stop]
        if len(words) >= 2:
            out.setdefault(" ".join(words[:PSEUDO_WORDS]), row)
    return list(out.items())


def known_share(vocabulary: dict[str, int]) -> float:
    """The share of the ordinary words in :data:`OFF_TOPIC` that the corpus
    has: how telling it is that a question word is missing from it (telling
    for a big vocabulary, expected for a few short notes)."""
    words = {t for q in OFF_TOPIC for t in tokenize(q)}
    return sum(t in vocabulary for t in words) / len(words)


def calibrate(retriever: Retriever) -> dict[str, Any]:
    """The confidence scale of the retriever's index (see the module doc)."""
    index = retriever.index
    share = known_share(index.lexical.vocabulary)
    pseudo = pseudo_questions(index.chunks)
    questions = list(OFF_TOPIC) + [q for q, _ in pseudo]
    vectors = retriever.embedder.embed(questions)
    skip = [-1] * len(OFF_TOPIC) + [row for _, row in pseudo]
    scores = []
    for question, qv, row in zip(questions, vectors, skip, strict=True):
        # One more than needed: a pseudo-question's own passage is left out.
        ranked = retriever.rank(question, CALIBRATION_HITS + 1, query_vector=qv)
        hits = [h for h in ranked if h.row != row][:CALIBRATION_HITS]
        scores.append(raw_confidence(question, hits, index, share, retriever.settings))
    off, near = np.array(scores[: len(OFF_TOPIC)]), np.array(scores[len(OFF_TOPIC) :])
    low = float(np.percentile(off, LOW_PERCENTILE))
    high = float(np.percentile(near, HIGH_PERCENTILE)) if len(near) else low + DEFAULT_SPAN
    if high - low < MIN_SPAN:
        high = low + MIN_SPAN
    return {
        "version": CALIBRATION_VERSION,
        "low": round(low, 6),
        "high": round(high, 6),
        "known_share": round(share, 6),
        "pseudo_questions": len(pseudo),
    }
