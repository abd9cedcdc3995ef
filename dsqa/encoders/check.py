"""How a faster encoder earns its place: its vectors against the reference.

dsqa runs the same model three ways (sentence-transformers in fp32, the
reference; an ONNX export in onnxruntime; torch in bfloat16). A fast path is
used only after it has embedded the check texts and every vector is within
:data:`MIN_COSINE` of the reference's, so an index never holds vectors that
a question's vector would not match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: The least cosine between a fast encoder's vector and the reference vector
#: of the same text, over the check texts, for the fast encoder to be used.
MIN_COSINE = 0.9999
#: The questions, shipped inside the package (see the file's header).
CHECK_TEXTS_FILE = Path(__file__).with_name("check_texts.txt")


def check_texts() -> list[str]:
    """What an encoder is checked on: the shipped questions, then short and
    long fixed texts (the long ones run past the model's 256-token window,
    so truncation is checked too)."""
    lines = CHECK_TEXTS_FILE.read_text(encoding="utf-8").splitlines()
    texts = [line for line in lines if line.strip() and not line.startswith("#")]
    base = [
        "how do overlay networks do service discovery",
        "What is the difference between a Docker image and a container?",
        "docker run --rm -p 8080:80 nginx",
        "Kubernetes pods are scheduled onto nodes by the kube-scheduler.",
        "S3 buckets store objects; EMRFS lets EMR read them as a file system.",
    ]
    long_text = " ".join(base * 12)  # about 300 word pieces: truncated at 256
    return texts + base + [long_text, " ".join(base * 3), "a"]


def compare(vectors: np.ndarray, reference: np.ndarray, threshold: float = MIN_COSINE) -> dict[str, Any]:
    """The check's record: ``ok`` when every row's cosine to its reference
    row reaches ``threshold``."""
    cosines = np.sum(vectors * reference, axis=1)
    return {
        "ok": bool(cosines.min() >= threshold),
        "min_cosine": float(cosines.min()),
        "mean_cosine": float(cosines.mean()),
        "texts": len(cosines),
        "threshold": threshold,
    }


def is_mean_pooling(config: dict[str, Any]) -> bool:
    """Mean pooling, in the old (``pooling_mode_mean_tokens``) or the new
    (``pooling_mode: "mean"``) sentence-transformers configuration: the only
    pooling the fast encoders compute."""
    if "pooling_mode" in config:
        return config["pooling_mode"] in ("mean", ["mean"])
    others = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    return bool(config.get("pooling_mode_mean_tokens")) and not any(config.get(k) for k in others)


def pooling_config(st_model: Any) -> dict[str, Any]:
    modules = list(st_model)
    return modules[1].get_config_dict() if len(modules) > 1 and hasattr(modules[1], "get_config_dict") else {}


def sentence_vectors(transformer: Any, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
    """What sentence-transformers' mean-pooling models output, in torch:
    the transformer's last hidden states averaged over the real tokens (in
    fp32, whatever precision the transformer ran in), then unit length. The
    ONNX export traces this and the bf16 encoder calls it, so both compute
    the reference's vector by the same formula."""
    import torch

    hidden = transformer(
        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
    ).last_hidden_state.float()
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2.0, dim=1)
