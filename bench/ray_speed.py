"""Embedding on Ray against the local path: the measurements of the ``ray``
part of ``python -m bench`` (``python -m bench --only ray``).

The part embeds one sample of KEP texts (chunk texts and their sentences, in
the proportion a full index embeds them, as dsqa's chunker makes them;
:func:`sample`) three ways, taking turns for several rounds, each way and
round in a fresh interpreter (:func:`measure`, run by ``bench.worker``):
dsqa's local path (the embedder's own ``embed``, as a reindex calls it), and
:class:`dsqa.ray_embedding.RayEmbedder` on a local Ray instance with one
actor of 2 CPUs and with two actors of 1 CPU each (so every way uses the
same cores). Each Ray run is what a reindex pays: a new actor pool, the model
loaded in each actor, the texts sent and the vectors streamed back. Ray's
start-up is measured apart: starting Ray (``ray.init``) and a run of one
short text (actor start, model load, scheduling).

One machine measures Ray's overhead, not a cluster's speed-up: on N machines
the embedding part divides by about N (the texts are independent), the
overheads do not.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

#: Sentences per chunk text in the sample: a full KEP index embeds about 3.4.
SENTENCES_PER_CHUNK = 3.4
MODEL = "all-MiniLM-L6-v2"


def sample(corpus: Path, n_chunks: int) -> tuple[list[str], list[str]]:
    """Chunk texts and sentences of ``corpus`` as a reindex embeds them:
    ``n_chunks`` chunk texts and 3.4 times as many sentences, at random."""
    from dsqa.build.reindex import chunker_for
    from dsqa.encoders import get_embedder
    from dsqa.settings import Settings
    from dsqa.sources.loading import load_corpus
    from dsqa.sources.sentences import sentence_windows

    settings = Settings(corpus_dir=corpus)
    model = get_embedder(settings.model)
    chunker = chunker_for(settings, model)
    rng = random.Random(17)
    notes = load_corpus(corpus).notes
    chunks, sentences = [], []
    for note in rng.sample(notes, min(len(notes), 80)):
        for chunk in chunker.chunk(note):
            chunks.append(chunk.embed_text)
            sentences += [s for _, _, group in sentence_windows(chunk.text, 1) for s in group]
    chunks = rng.sample(chunks, min(n_chunks, len(chunks)))
    sentences = rng.sample(sentences, min(int(n_chunks * SENTENCES_PER_CHUNK), len(sentences)))
    return chunks, sentences


def write_sample(args: dict[str, Any]) -> dict[str, Any]:
    """The distinct texts of :func:`sample` as a JSON list in ``out``, and
    their count in word pieces (special tokens included)."""
    from dsqa.encoders import get_embedder

    chunks, sentences = sample(Path(args["corpus_dir"]), int(args["chunks"]))
    texts = list(dict.fromkeys(chunks + sentences))
    Path(args["out"]).write_text(json.dumps(texts), encoding="utf-8")
    pieces = sum(get_embedder(MODEL).count_tokens_batch(texts)) + 2 * len(texts)
    return {"texts": len(texts), "chunks": len(chunks), "sentences": len(sentences), "word_pieces": pieces}


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """One way (``local``, or ``ray`` with ``actors`` x ``cpus_per_actor``)
    embedding the texts in ``texts``: seconds for all of them, for one text,
    to load the model (local) or to start Ray (``ray.init``), and the least
    cosine to the vectors saved at ``reference`` (saved there by the first
    measurement)."""
    import numpy as np

    from dsqa.encoders import MODELS, get_embedder

    texts = json.loads(Path(args["texts"]).read_text(encoding="utf-8"))
    result: dict[str, Any] = {"model_load_s": None, "ray_init_s": None}
    started = time.perf_counter()
    model = get_embedder(MODEL)
    if args["way"] == "local":
        model.embed(["load the model"])  # as a reindex has, before it embeds
        result["model_load_s"] = time.perf_counter() - started
        vectors, result = _timed(model, texts, result)
    else:
        import ray

        from dsqa.encoders.ray import RayEmbedder, RayOptions

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        result["ray_init_s"] = time.perf_counter() - started
        try:
            embedder = RayEmbedder(model, MODELS[MODEL], RayOptions("auto", actors=int(args["actors"]), cpus_per_actor=float(args["cpus_per_actor"])))
            vectors, result = _timed(embedder, texts, result)
        finally:
            ray.shutdown()
    reference = Path(args["reference"])
    if not reference.exists():
        np.save(reference, vectors)
    result["least_cosine"] = float(np.sum(vectors * np.load(reference), axis=1).min())
    return result


def _timed(embedder: Any, texts: list[str], result: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    started = time.perf_counter()
    embedder.embed(texts[:1])
    result["one_text_s"] = time.perf_counter() - started
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    result["seconds"] = time.perf_counter() - started
    result["encoder"] = embedder.last_encoder
    return vectors, result
