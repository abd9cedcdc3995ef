"""What the rest of dsqa needs from an embedding model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """An embedding model: a name, the size of its vectors and of its
    window, a word-piece counter for chunking, and the vectors themselves.

    Any object with these members can be registered with
    :func:`dsqa.register_model` (the tests register a tiny fake one).
    """

    #: Recorded in the index manifest: vectors of two names are never mixed.
    name: str
    dimension: int
    #: The encoder's window in word pieces, special tokens included.
    max_tokens: int

    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` without special tokens."""
        ...

    def embed(self, texts: Sequence[str], *, progress: bool | Callable[[int], None] = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in input order;
        ``progress`` is a progress bar's switch, or a function called with
        the number of texts done as batches finish."""
        ...
