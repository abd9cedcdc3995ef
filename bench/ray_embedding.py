"""Embedding on Ray against embedding in this process: ``python -m bench.ray_embedding``

Embeds one sample of KEP texts (chunk texts and their sentences, in the
proportion a full index embeds them, as dsqa's chunker makes them) three
ways, taking turns, three rounds: dsqa's local path (the embedder's own
``embed``, as a reindex calls it), and :class:`dsqa.ray_embedding.RayEmbedder`
on a local Ray instance with one actor of 2 CPUs and with two actors of 1 CPU
each (so every way uses the same cores). Each Ray run is what a reindex
pays: a new actor pool, the model loaded in each actor, the texts sent and
the vectors streamed back. Prints the median word pieces per second of
each way, its ratio to the local path, and Ray's overheads measured apart:
starting Ray (``ray.init``) and a run of one short text (actor start, model
load, scheduling). Ends with a Markdown section for bench/RESULTS.md.

    python -m bench.ray_embedding [--chunks 500] [--corpus DIR]

One machine measures Ray's overhead, not a cluster's speed-up: on N machines
the embedding part divides by about N (the texts are independent), the
overheads do not.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from pathlib import Path

from bench.common import KEP_SOURCE, Table, machine

#: Sentences per chunk text in the sample: a full KEP index embeds about 3.4.
SENTENCES_PER_CHUNK = 3.4
ROUNDS = 3


def sample(corpus: Path, n_chunks: int) -> list[str]:
    """Distinct chunk texts and sentences of ``corpus`` as a reindex embeds them."""
    import random

    from dsqa.encoders import get_embedder
    from dsqa.indexing import chunker_for
    from dsqa.notes import load_corpus
    from dsqa.sentences import sentence_windows
    from dsqa.settings import Settings

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
    return list(dict.fromkeys(chunks + sentences))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500, help="chunk texts in the sample (plus 3.4x as many sentences)")
    parser.add_argument("--corpus", type=Path, default=KEP_SOURCE)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    import ray

    from dsqa.encoders import MODELS, get_embedder
    from dsqa.ray_embedding import RayEmbedder

    info = machine()
    name = "all-MiniLM-L6-v2"
    model = get_embedder(name)
    texts = sample(args.corpus, args.chunks)
    pieces = sum(model.count_tokens_batch(texts)) + 2 * len(texts)
    model.embed(texts[:20])  # open the encoder before timing
    print(f"{len(texts)} texts, {pieces:,} word pieces, from {args.corpus}", flush=True)

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    ray_init = time.perf_counter() - started
    ways = {
        "local (this process)": model.embed,
        "Ray, 1 actor x 2 CPUs": RayEmbedder(model, MODELS[name], "auto", actors=1, cpus_per_actor=2).embed,
        "Ray, 2 actors x 1 CPU": RayEmbedder(model, MODELS[name], "auto", actors=2, cpus_per_actor=1).embed,
    }
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    one_text: dict[str, list[float]] = {w: [] for w in ways}
    reference = None
    cosine: dict[str, float] = {}
    try:
        for _ in range(ROUNDS):
            for way, embed in ways.items():
                t = time.perf_counter()
                embed(texts[:1])
                one_text[way].append(time.perf_counter() - t)
                t = time.perf_counter()
                vectors = embed(texts)
                seconds[way].append(time.perf_counter() - t)
                if reference is None:
                    reference = vectors
                cosine[way] = float(np.sum(vectors * reference, axis=1).min())
                print(f"  {way}: {seconds[way][-1]:.1f} s", flush=True)
    finally:
        ray.shutdown()

    local = statistics.median(seconds["local (this process)"])
    table = Table(
        "Embedding on Ray (local instance) against this process",
        ["way", "median s", "word pieces/s", "vs local", "rounds (s)", "one-text run, median s", "least cosine to local"],
    )
    for way in ways:
        med = statistics.median(seconds[way])
        table.add(
            way, med, pieces / med, f"{local / med:.2f}x", " ".join(f"{s:.1f}" for s in seconds[way]),
            statistics.median(one_text[way]), f"{cosine[way]:.6f}",
        )
    encoder = ways["Ray, 2 actors x 1 CPU"].__self__.last_encoder
    table.notes += [
        f"{len(texts):,} distinct KEP texts ({args.chunks} chunk texts and their sentences), {pieces:,} word pieces; "
        f"medians of {ROUNDS} interleaved rounds; local encoder {model.last_encoder}, Ray actors {encoder}.",
        f"Ray's start-up, apart: `ray.init(num_cpus=2)` {ray_init:.1f} s, once per process (a real cluster is already up); "
        "the one-text run is each reindex's fixed cost on Ray (a new actor pool, the model loaded in each actor).",
        f"`python -m bench.ray_embedding --chunks {args.chunks}`; {info['cpu']}; load average at start "
        f"{info['load average at start']}; commit {info['commit']}.",
    ]
    print()
    print(table.text())
    print(table.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
