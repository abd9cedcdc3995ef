"""What the rest of dsqa needs from an embedding model: the :class:`Embedder`
base class, with the optional capabilities declared and given defaults (as
simonw/llm's ``EmbeddingModel`` does), so callers never ask whether a model
has one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np


class Embedder(ABC):
    """An embedding model: a name, the size of its vectors and of its
    window, a word-piece counter for chunking, and the vectors themselves.

    Subclass it and register the class (or a factory) with
    :func:`dsqa.register_model` (the tests register a tiny fake one). A
    subclass sets ``name``, ``dimension`` and ``max_tokens`` and implements
    :meth:`count_tokens` and :meth:`embed`; the rest have defaults it may
    override: a batch token counter, the name of the encoder that ran, and
    embedding straight into a caller's array.
    """

    #: Recorded in the index manifest: vectors of two names are never mixed.
    name: str
    dimension: int
    #: The encoder's window in word pieces, special tokens included.
    max_tokens: int
    #: Which encoder embedded the last batch ("onnx", "bf16", "torch",
    #: "ray:onnx", ...), for reports; "" when the model does not say.
    last_encoder: str = ""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` without special tokens."""

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        """Word pieces of each text (a model with a batch tokenizer counts
        many at once faster); by default one :meth:`count_tokens` each."""
        return [self.count_tokens(text) for text in texts]

    @abstractmethod
    def embed(self, texts: Sequence[str], *, progress: bool | Callable[[int], None] = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in input order;
        ``progress`` is a progress bar's switch, or a function called with
        the number of texts done as batches finish."""

    def embed_into(
        self, texts: Sequence[str], out: np.ndarray, *, progress: bool | Callable[[int], None] = False
    ) -> np.ndarray:
        """The vectors of :meth:`embed`, written into ``out`` (``len(texts)``
        rows, e.g. a memory map, so they need not fit in memory); by default
        embedded whole, then copied. The Ray embedder writes each batch as
        it arrives."""
        out[...] = self.embed(texts, progress=progress)
        return out
