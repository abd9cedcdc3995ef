"""Padded batches: every text once, longest first, within the budgets, and
the same word pieces as encoding the text alone."""

from __future__ import annotations

import numpy as np
import pytest

from dsqa.encoders import minilm_path
from dsqa.encoders.batching import padded_batches, window_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return window_tokenizer(minilm_path() / "tokenizer.json", 256)


TEXTS = ["a"] + [f"word {i} " * (i % 37) for i in range(300)] + ["long " * 400, ""]


@pytest.mark.parametrize("max_texts, max_tokens", [(16, None), (512, 1024), (512, 64), (3, 4096)])
def test_every_text_once_within_budgets(tokenizer, max_texts, max_tokens):
    tok, pad = tokenizer
    seen: list[int] = []
    widths = []
    for rows, ids, mask, types in padded_batches(tok, TEXTS, max_texts=max_texts, max_tokens=max_tokens, pad_id=pad):
        assert ids.shape == mask.shape == types.shape == (len(rows), ids.shape[1])
        assert 1 <= len(rows) <= max_texts
        if max_tokens is not None and len(rows) > 1:
            assert ids.size <= max_tokens
        assert mask.sum(axis=1).max() == ids.shape[1]  # as wide as its longest text, no wider
        for r, row_ids, row_mask in zip(rows, ids, mask, strict=True):
            alone = tok.encode(TEXTS[r]).ids
            assert list(row_ids[row_mask == 1]) == alone and np.all(row_ids[row_mask == 0] == pad)
        seen += [int(r) for r in rows]
        widths.append(ids.shape[1])
    assert sorted(seen) == list(range(len(TEXTS)))
    assert widths == sorted(widths, reverse=True) and widths[0] == 256  # truncated at the window


def test_blocks_keep_positions(tokenizer, monkeypatch):
    import dsqa.encoders.batching as batching

    monkeypatch.setattr(batching, "TOKENIZE_BLOCK", 7)
    tok, pad = tokenizer
    rows = np.concatenate([r for r, *_ in padded_batches(tok, TEXTS, max_texts=5, pad_id=pad)])
    assert sorted(rows.tolist()) == list(range(len(TEXTS)))
    assert widths_of(tok, pad, TEXTS) == sorted(widths_of(tok, pad, TEXTS), reverse=True)  # sorted across blocks


def widths_of(tok, pad, texts):
    return [ids.shape[1] for _, ids, _, _ in padded_batches(tok, texts, max_texts=5, pad_id=pad)]


def fake_run(ids, mask, types):
    """A vector that says which text it came from: its word pieces' sum and count."""
    out = np.zeros((len(ids), 4), dtype=np.float32)
    out[:, 0] = (ids * mask).sum(axis=1)
    out[:, 1] = mask.sum(axis=1)
    return out


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_workers_give_every_text_its_own_vector(tokenizer, workers):
    import threading

    from dsqa.encoders.batching import embed_in_batches

    tok, pad = tokenizer
    started: list[str] = []
    alone = embed_in_batches(fake_run, tok, TEXTS, 4, max_texts=4, pad_id=pad)
    together = embed_in_batches(
        fake_run, tok, TEXTS, 4, max_texts=4, pad_id=pad,
        workers=workers, init_worker=lambda: started.append(threading.current_thread().name),
    )
    assert np.array_equal(alone, together)
    assert alone[TEXTS.index("a"), 1] == len(tok.encode("a").ids)
    assert 1 <= len(started) <= workers and all(n.startswith("dsqa-embed") for n in started)


def test_a_failing_batch_fails_the_whole_call(tokenizer):
    from dsqa.encoders.batching import embed_in_batches

    tok, pad = tokenizer

    def run(ids, mask, types):
        if ids.shape[1] == 256:
            raise RuntimeError("out of memory")
        return fake_run(ids, mask, types)

    with pytest.raises(RuntimeError, match="out of memory"):
        embed_in_batches(run, tok, TEXTS, 4, max_texts=4, pad_id=pad, workers=2)
