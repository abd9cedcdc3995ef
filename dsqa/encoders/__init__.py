"""The encoders wing: embedding models, which encoder runs them, and how a
fast encoder is checked.

* :mod:`~dsqa.encoders.interface`: :class:`Embedder`, what the rest of dsqa
  needs from a model.
* :mod:`~dsqa.encoders.registry`: models by name (:func:`register_model`,
  :func:`get_embedder`).
* :mod:`~dsqa.encoders.sentence_transformer`: a sentence-transformers model
  in a local folder and its ONNX export's cache.
* :mod:`~dsqa.encoders.chooser`: which encoder (onnxruntime, torch fp32,
  torch bf16) embeds a batch.
* :mod:`~dsqa.encoders.onnx`, :mod:`~dsqa.encoders.bf16`:
  the fast encoders; :mod:`~dsqa.encoders.batching`: their padded batches;
  :mod:`~dsqa.encoders.check`: their check against the reference.

Importing this package imports neither torch nor onnxruntime.
"""

from .interface import Embedder
from .registry import (
    MODELS,
    get_embedder,
    minilm_path,
    register_model,
    unregister_model,
)
from .sentence_transformer import SentenceTransformerEmbedder

__all__ = [
    "Embedder",
    "MODELS",
    "SentenceTransformerEmbedder",
    "get_embedder",
    "minilm_path",
    "register_model",
    "unregister_model",
]
