"""Torch in bfloat16 for large document batches, on CPUs with AMX.

Why it exists: indexing a large corpus is almost all encoder time. Intel
Xeons with AMX have matrix tiles that multiply bfloat16 natively, and torch
uses them under ``torch.autocast``; there this encoder is several times
faster than onnxruntime in fp32 (``python -m bench.bf16_speed`` measures
it; figures in ``bench/RESULTS.md`` and ``docs/scaling.md``).

It is the same model: the encoder is checked like the ONNX export
(:mod:`dsqa.encoders.check`) before a single document is embedded with it,
so an index may mix its vectors with onnxruntime's (an incremental reindex
of one note) and questions embedded by onnxruntime match them.

Batches are cut by word pieces, not by texts: the tiles want large matrix
products, and a few short sentences are too small a product to feed them.

Where it is chosen (:mod:`dsqa.encoders.chooser`): only when the
``bf16_encoder`` setting allows it, and only on CPUs that report
``amx_bf16``; elsewhere bfloat16 runs through slower paths and onnxruntime
stays the document encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .batching import cpu_count, embed_in_batches, window_tokenizer
from .check import (
    check_texts,
    compare,
    is_mean_pooling,
    pooling_config,
    sentence_vectors,
)

#: Padded word pieces per forward call, with one thread per core, each on
#: its own batch (chosen by ``python -m bench.bf16_speed``).
TOKEN_BUDGET = 4096
#: And at most this many texts per call (very short texts).
MAX_TEXTS = 512


class Bf16Encoder:
    """A loaded sentence-transformers model's transformer run in bfloat16,
    with the mean pooling and normalisation of the original done in fp32.

    Eager, not ``torch.compile``d: compiling needs a C compiler and long
    seconds, for little gain.

    One thread per core, each running its own batch with one torch thread,
    rather than every batch split over all cores: splitting each operation
    makes the cores wait for each other between the model's hundreds of
    small operations.
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
    vectors are bit-identical) without the copies. A copy, because the fp32 original is the reference the encoder
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
    It runs once per process, not once per machine: a cached verdict could
    outlive a torch upgrade."""
    encoder = Bf16Encoder(st_model, tokenizer_file, max_tokens, dimension)
    texts = check_texts()
    reference = st_model.encode(
        texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    check = compare(encoder.embed(texts), reference)
    return (encoder if check["ok"] else None), check
