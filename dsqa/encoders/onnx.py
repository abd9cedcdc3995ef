"""The model as an ONNX graph run by onnxruntime: the light, fast path.

Importing onnxruntime and opening the model is far quicker than importing
sentence-transformers and torch, and a short query encodes faster, so every
question goes through here. The export (transformer, mean pooling and
normalisation in one graph) is made from the torch model once per model and
checked against it (:mod:`dsqa.encoders.check`) before use;
:mod:`dsqa.encoders.sentence_transformer` decides where it is kept and when
it is made.

``model-int8.onnx`` is the same graph with int8 weights: a different model
(its vectors are never mixed with fp32 ones), faster to index with on CPUs
without AMX.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
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

log = logging.getLogger("dsqa")

#: The int8 model is a different model (vectors are never mixed with the
#: fp32 ones): it is accepted when its vectors keep this mean cosine to the
#: fp32 ones on the check texts.
INT8_MIN_MEAN_COSINE = 0.98
#: Bumped when the export changes (graph, inputs, check texts), so old exports
#: are not reused.
EXPORT_VERSION = 1
#: Texts per batch on the document side. Batches are formed after sorting by
#: length, so padding is small; larger batches of long texts no longer fit
#: the CPU caches.
ONNX_BATCH = 16
#: A call with at most this many texts is a query: it runs on a one-thread
#: session (on 2 cores, one thread encodes a short query faster than two).
QUERY_TEXTS = 4


class OnnxEncoder:
    """An exported model run with onnxruntime, tokenised with ``tokenizers``."""

    MODEL = "model.onnx"
    CHECK = "check.json"

    def __init__(self, folder: Path, tokenizer_file: Path, max_tokens: int, dimension: int, model_file: str = MODEL):
        import onnxruntime  # noqa: F401  (fail here, not at the first query)

        self.folder = folder
        self.model_file = folder / model_file
        self.dimension = dimension
        self._tokenizer, self._pad_id = window_tokenizer(tokenizer_file, max_tokens)
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, folder: Path, tokenizer_file: Path, max_tokens: int, dimension: int, variant: str = ""
    ) -> OnnxEncoder | None:
        """The export in ``folder`` (``variant`` ``""`` or ``"int8"``) if it
        exists and passed its check."""
        model_file, check_file = _variant_files(variant)
        try:
            check = json.loads((folder / check_file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not check.get("ok") or not (folder / model_file).is_file():
            return None
        return cls(folder, tokenizer_file, max_tokens, dimension, model_file)

    def session(self, threads: int) -> Any:
        with self._lock:
            if threads not in self._sessions:
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                so.log_severity_level = 3
                # Idle pool threads sleep instead of spinning: on 2 cores shared
                # with other processes a spinning thread steals the core the
                # other one needs.
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._sessions[threads] = ort.InferenceSession(
                    str(self.model_file), so, providers=["CPUExecutionProvider"]
                )
            return self._sessions[threads]

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = ONNX_BATCH,
        threads: int | None = None,
        progress: bool | Callable[[int], None] = False,
    ) -> np.ndarray:
        if threads is None:
            threads = 1 if len(texts) <= QUERY_TEXTS else cpu_count()
        sess: Any = self.session(threads) if texts else None

        def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
            return sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]

        return embed_in_batches(
            run, self._tokenizer, texts, self.dimension, max_texts=batch_size, pad_id=self._pad_id, progress=progress
        )


def _variant_files(variant: str) -> tuple[str, str]:
    if variant == "":
        return OnnxEncoder.MODEL, OnnxEncoder.CHECK
    return f"model-{variant}.onnx", f"check-{variant}.json"


def quantize_onnx(folder: Path, tokenizer_file: Path, max_tokens: int, dimension: int) -> dict[str, Any]:
    """Make ``model-int8.onnx`` beside a checked fp32 export: dynamic int8
    quantisation of the weights, per output channel (per tensor loses too
    much). Checked against the fp32 export's
    vectors, which equal torch's (no torch needed); ``check-int8.json``
    records the cosines, and ``ok`` needs a mean of at least
    :data:`INT8_MIN_MEAN_COSINE`. Its retrieval quality is measured with
    ``dsqa eval --model all-MiniLM-L6-v2-int8``."""
    import logging as _logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    model_file, check_file = _variant_files("int8")
    tmp = folder / f".tmp-{uuid.uuid4().hex[:8]}-{model_file}"
    started = time.perf_counter()
    quiet = _logging.getLogger().level
    _logging.getLogger().setLevel(_logging.ERROR)  # the quantizer warns through the root logger
    try:
        quantize_dynamic(str(folder / OnnxEncoder.MODEL), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        _logging.getLogger().setLevel(quiet)
    try:
        seconds = time.perf_counter() - started
        texts = check_texts()
        reference = OnnxEncoder(folder, tokenizer_file, max_tokens, dimension).embed(texts, threads=1)
        vectors = OnnxEncoder(folder, tokenizer_file, max_tokens, dimension, tmp.name).embed(texts, threads=1)
        check = compare(vectors, reference, threshold=-1.0)  # judged on the mean, below
        check = {
            **check,
            "ok": check["mean_cosine"] >= INT8_MIN_MEAN_COSINE,
            "threshold_mean": INT8_MIN_MEAN_COSINE,
            "quantize_seconds": round(seconds, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.replace(tmp, folder / model_file)
        check_tmp = folder / f".tmp-{uuid.uuid4().hex[:8]}-{check_file}"
        check_tmp.write_text(json.dumps(check, indent=2) + "\n", encoding="utf-8")
        os.replace(check_tmp, folder / check_file)
        return check
    finally:
        tmp.unlink(missing_ok=True)


def export_onnx(st_model: Any, folder: Path, tokenizer_file: Path, max_tokens: int, dimension: int) -> dict[str, Any]:
    """Export a loaded sentence-transformers model (transformer + mean
    pooling + normalisation) to ``folder/model.onnx``, check it against the
    torch vectors and write ``check.json``; return the check.

    The folder is assembled under a temporary name and renamed into place,
    so a reader never sees a half-written export; a concurrent export of the
    same model simply loses the race.
    """
    import warnings

    import torch

    pooling = pooling_config(st_model)
    if not is_mean_pooling(pooling):
        raise ModelError(f"only mean-pooling models are exported to ONNX (pooling: {pooling})")
    transformer = list(st_model)[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return sentence_vectors(self.model, input_ids, attention_mask, token_type_ids)

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        started = time.perf_counter()
        dummy = torch.ones((2, 8), dtype=torch.long)
        axes = {0: "batch", 1: "tokens"}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(transformer),
                (dummy, dummy, torch.zeros_like(dummy)),
                str(tmp / OnnxEncoder.MODEL),
                dynamo=False,
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["embedding"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "embedding": {0: "batch"}},
                opset_version=17,
                do_constant_folding=True,
            )
        export_seconds = time.perf_counter() - started
        texts = check_texts()
        reference = st_model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        encoder = OnnxEncoder(tmp, tokenizer_file, max_tokens, dimension)
        onnx_vectors = encoder.embed(texts, threads=1)
        import onnxruntime

        check = {
            **compare(onnx_vectors, reference),
            "export_seconds": round(export_seconds, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "export_version": EXPORT_VERSION,
        }
        (tmp / OnnxEncoder.CHECK).write_text(json.dumps(check, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / OnnxEncoder.CHECK).is_file():
                raise
        return check
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


