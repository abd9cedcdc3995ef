"""Torch in bfloat16 for large document batches, on CPUs with AMX.

Why it exists: indexing a large corpus is almost all encoder time (the
Kubernetes design documents: 95% of a 27-minute index build with
onnxruntime in fp32). Intel Xeons with AMX have matrix tiles that multiply
bfloat16 natively, and torch uses them under ``torch.autocast``. Measured on
KEP chunk texts and sentences on the 2-core Xeon, encoders taking turns
(``python bench/bf16_encoder.py``): the first version ran at 15,200 word
pieces/s, against 5,500 for onnxruntime fp32 (the query path) and 4,600 for
sentence-transformers fp32, and the one below (a worker thread per core)
at 1.43x that first version. The full KEP index went from 27.2 minutes to
11.1, then to 9.9-13.3 (four runs over two hours; the shared machine's
speed drifts).

It is the same model: the vectors are within cosine 0.99994 of the fp32
reference, and the encoder is checked like the ONNX export
(:mod:`dsqa.encoder_check`) before a single document is embedded with it,
so an index may mix its vectors with onnxruntime's (an incremental reindex
of one note) and questions embedded by onnxruntime match them.

Batches are cut by word pieces, not by texts: the tiles want large matrix
products, and 16 short sentences are too small a product to feed them
(sentences through sentence-transformers' batches of 16 under the same
autocast: 7,900 word pieces/s; in batches of a few thousand word pieces:
2-3x that).

Where it is chosen (:mod:`dsqa.embedding`): only on CPUs that report
``amx_bf16``, where it was measured; elsewhere bfloat16 runs through
slower paths and onnxruntime stays the document encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .batching import cpu_count, embed_in_batches, window_tokenizer
from .encoder_check import check_texts, compare, is_mean_pooling, pooling_config, sentence_vectors
from .errors import ModelError

#: Padded word pieces per forward call. With one thread per core, each on
#: its own batch, measured on KEP texts (encoders taking turns, medians):
#: 2,048 20.7k, 4,096 21.4k, 8,192 19.1k word pieces/s.
TOKEN_BUDGET = 4096
#: And at most this many texts per call (very short texts).
MAX_TEXTS = 512


def cpu_has_amx_bf16() -> bool:
    """Whether the CPU reports AMX bfloat16 tiles (Linux; ``False`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


class Bf16Encoder:
    """A loaded sentence-transformers model's transformer run in bfloat16,
    with the mean pooling and normalisation of the original done in fp32.

    Eager, not ``torch.compile``d: compiling (inductor, frozen weights,
    dynamic shapes) took 30 s and a C compiler, and gained 6% in an
    interleaved comparison on KEP texts (14.4k against 13.6k word pieces/s).

    One thread per core, each running its own batch with one torch thread,
    rather than every batch split over all cores: splitting each operation
    makes the cores wait for each other between the model's hundreds of
    small operations. Measured on KEP texts, taking turns: 21.4k against
    16.7k word pieces/s (1.28x); with the bf16 linear weights below, 1.43x
    the previous encoder (median of six rounds' ratios, vectors within cosine
    0.99998 of its).
    """

    def __init__(self, st_model: Any, tokenizer_file: Path, max_tokens: int, dimension: int):
        pooling = pooling_config(st_model)
        if not is_mean_pooling(pooling):
            raise ModelError(f"only mean-pooling models run in bfloat16 (pooling: {pooling})")
        self._model = _with_bf16_linears(list(st_model)[0].auto_model)
        self._tokenizer, self._pad_id = window_tokenizer(tokenizer_file, max_tokens)
        self.dimension = dimension

    def embed(
        self, texts: Sequence[str], *, progress: bool | Callable[[int], None] = False, workers: int | None = None
    ) -> np.ndarray:
        """``workers`` threads (one per core by default), each running its
        batches on one torch thread."""
        import torch

        def one_thread() -> None:
            torch.set_num_threads(1)

        def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
            # Both modes are per thread, so each worker enters them itself.
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                tensors = (torch.from_numpy(a) for a in (ids, mask, types))
                return sentence_vectors(self._model, *tensors).numpy()

        threads = torch.get_num_threads()
        try:
            return embed_in_batches(
                run, self._tokenizer, texts, self.dimension,
                max_texts=MAX_TEXTS, max_tokens=TOKEN_BUDGET, pad_id=self._pad_id, progress=progress,
                workers=workers or cpu_count(), init_worker=one_thread,
            )
        finally:
            # torch keeps the last thread count set anywhere as the default
            # of new threads: give the caller back its own.
            torch.set_num_threads(threads)


def _with_bf16_linears(model: Any) -> Any:
    """A copy of ``model`` whose linear layers hold bfloat16 weights.

    Autocast casts every linear layer's fp32 weights to bfloat16 on each
    call, and forgets the copies when its context closes (here, after every
    batch); weights already in bfloat16 give the very same products (the
    vectors are bit-identical) without the copies: 3-6% faster on one
    thread. A copy, because the fp32 original is the reference the encoder
    is checked against.
    """
    import copy

    import torch

    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)
    return model


def checked_encoder(
    st_model: Any, tokenizer_file: Path, max_tokens: int, dimension: int
) -> tuple[Bf16Encoder | None, dict[str, Any]]:
    """A bf16 encoder of ``st_model`` and its check against the model's fp32
    vectors on the check texts; the encoder is ``None`` when the check fails.
    Takes about two seconds, so it runs once per process, not once per machine: a cached verdict could
    outlive a torch upgrade."""
    encoder = Bf16Encoder(st_model, tokenizer_file, max_tokens, dimension)
    texts = check_texts()
    reference = st_model.encode(
        texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    check = compare(encoder.embed(texts), reference)
    return (encoder if check["ok"] else None), check
