"""Which encoder embeds a batch of texts.

One model, three encoders computing the same vectors (each fast one is
checked against the reference before use, :mod:`dsqa.encoders.check`):

* **sentence-transformers** (torch, fp32): the reference and the fallback.
* **onnxruntime + tokenizers** (:mod:`dsqa.encoders.onnx`), used
  whenever ``onnxruntime`` is installed: questions and reindexes. Nothing
  torch-related is imported on this path, which keeps a cold ``dsqa ask``
  fast.
* **torch in bfloat16** (:mod:`dsqa.encoders.bf16`), opt-in
  (``Settings.bf16_encoder``): large document batches on CPUs that report
  AMX bfloat16 tiles in ``/proc/cpuinfo``. Loading torch and checking the
  encoder costs seconds, so only batches of at least :data:`BF16_MIN_CHARS`
  characters go there.

``$DSQA_ENCODER`` overrides the choice: ``auto`` (default: as above),
``onnx`` (always ONNX; fail if unavailable), ``torch`` (always
sentence-transformers fp32), ``bf16`` (always torch bfloat16, whatever the
setting; fail if it does not pass its check).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from .. import environment
from ..errors import ModelError
from .onnx import QUERY_TEXTS

ENCODERS = ("auto", "onnx", "torch", "bf16")
#: A document batch of at least this many characters goes to the bf16
#: encoder where it is allowed; below, loading torch and checking the encoder
#: cost more than they save.
BF16_MIN_CHARS = 1_000_000


def encoder_mode() -> str:
    mode = environment.ENCODER.get().strip().lower() or "auto"
    if mode not in ENCODERS:
        raise ModelError(f"DSQA_ENCODER must be one of {', '.join(ENCODERS)}, not {mode!r}")
    return mode


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def torch_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "sentence_transformers"))


def cpu_has_amx_bf16() -> bool:
    """Whether the CPU reports AMX bfloat16 tiles (Linux; ``False`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def bf16_preferred(texts: Sequence[str]) -> bool:
    """Whether ``auto`` embeds these documents in bfloat16 when allowed: a
    large batch, on a CPU with AMX (the only kind it was measured on), with
    torch installed."""
    return (
        len(texts) > QUERY_TEXTS
        and sum(map(len, texts)) >= BF16_MIN_CHARS
        and cpu_has_amx_bf16()
        and torch_available()
    )


def first_choice(texts: Sequence[str], *, mode: str, allow_bf16: bool) -> str:
    """The encoder to try first for ``texts``: ``"bf16"``, ``"onnx"`` or
    ``"torch"``. The embedder falls back from bf16 to ONNX to torch when one
    is unusable (missing, or failing its check)."""
    if mode == "bf16" or (mode == "auto" and allow_bf16 and bf16_preferred(texts)):
        return "bf16"
    return "torch" if mode == "torch" else "onnx"
