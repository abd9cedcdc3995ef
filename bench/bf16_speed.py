"""dsqa's document encoders side by side: ``python -m bench.bf16_speed``

Encodes one sample of KEP chunk texts and sentences (as dsqa's chunker makes
them) with sentence-transformers in fp32 (the reference), onnxruntime in
fp32 (the query path, and the document path on CPUs without AMX) and torch
in bfloat16 (:mod:`dsqa.encoders.bf16_encoder`, the opt-in document path
for large batches on CPUs with AMX). The encoders take turns, four rounds,
and the median word pieces per second of each is printed with its least
cosine to the reference (which must stay at or above 0.9999): on a shared
machine whose speed drifts within minutes, only interleaved runs compare.
Figures from past runs are in docs/scaling.md.
"""

from __future__ import annotations

import random
import time

from bench.common import KEP_SOURCE


def sample(n_chunks: int = 600, n_sentences: int = 2000) -> list[str]:
    """Chunk texts and sentences of the KEP corpus in the proportion a full
    index embeds them (about 1 : 3.4)."""
    from dsqa.build.chunking import Chunker
    from dsqa.encoders import get_embedder
    from dsqa.settings import Settings
    from dsqa.sources.loading import load_corpus
    from dsqa.sources.sentences import sentence_windows

    settings = Settings(corpus_dir=KEP_SOURCE)
    model = get_embedder(settings.model)
    chunker = Chunker(
        model.count_tokens, model.max_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens,
        settings.embed_headings, model.count_tokens_batch,
    )
    notes = load_corpus(KEP_SOURCE).notes
    rng = random.Random(5)
    chunks, sentences = [], []
    for note in rng.sample(notes, 60):
        for chunk in chunker.chunk(note):
            chunks.append(chunk.embed_text)
            sentences += [s for _, _, group in sentence_windows(chunk.text, 1) for s in group]
    return rng.sample(chunks, min(n_chunks, len(chunks))) + rng.sample(sentences, min(n_sentences, len(sentences)))


def main() -> int:
    import numpy as np
    import torch

    from dsqa.encoders import SentenceTransformerEmbedder, get_embedder

    model = get_embedder("all-MiniLM-L6-v2")
    assert isinstance(model, SentenceTransformerEmbedder)
    texts = list(dict.fromkeys(sample()))
    pieces = sum(model.count_tokens_batch(texts)) + 2 * len(texts)
    encoders = {
        "torch fp32 (sentence-transformers)": model.embed_torch,
        "onnxruntime fp32": model.onnx_encoder().embed,
        "torch bf16 (dsqa.encoders.bf16_encoder)": model.bf16_encoder(required=True).embed,
    }
    reference = model.embed_torch(texts)
    rates: dict[str, list[float]] = {name: [] for name in encoders}
    cosine: dict[str, float] = {}
    for embed in encoders.values():
        embed(texts[:50])
    for _ in range(4):
        for name, embed in encoders.items():
            started = time.perf_counter()
            vectors = embed(texts)
            rates[name].append(pieces / (time.perf_counter() - started))
            cosine[name] = float(np.sum(vectors * reference, axis=1).min())
    print(f"{len(texts)} KEP texts, {pieces:,} word pieces; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'encoder':36s} {'median wp/s':>12s} {'rounds':>28s}  least cosine")
    for name, r in rates.items():
        print(f"{name:36s} {np.median(r):12,.0f} {' '.join(f'{x:,.0f}' for x in r):>28s}  {cosine[name]:.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
