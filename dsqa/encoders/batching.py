"""Turning many texts into padded model inputs, shared by the encoders.

Both document encoders (onnxruntime in fp32, torch in bfloat16) read word
pieces from ``tokenizers`` and feed the model rectangles of token ids. How
the rectangles are cut decides much of the speed: texts are sorted by
length so a batch holds texts of about one length (little padding), and a
batch is bounded by a number of texts, by a number of word pieces, or both.
A word-piece budget lets hundreds of short sentences share one call where
a few dozen long chunks fill another.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .. import environment

#: Texts tokenised per call to tokenizers (see :func:`padded_batches`).
TOKENIZE_BLOCK = 4096


def cpu_count() -> int:
    """Cores the encoders use: ``$DSQA_THREADS`` when set (a Ray actor sets
    it to the CPUs reserved for it), else every core this process may run on."""
    threads = environment.THREADS.get()
    if threads.isdigit() and int(threads) > 0:
        return int(threads)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def progress_bar(total: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="embedding", unit="text")


def window_tokenizer(tokenizer_file: Path, max_tokens: int) -> tuple[Any, int]:
    """The model's tokenizer cutting every text at the model's window
    (``max_tokens`` word pieces, special tokens included) and padding
    nothing, with its padding id."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.enable_truncation(max_length=max_tokens)
    tok.no_padding()
    return tok, tok.token_to_id("[PAD]") or 0


def padded_batches(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_texts: int,
    max_tokens: int | None = None,
    pad_id: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(rows, input_ids, attention_mask, token_type_ids)`` for every text,
    longest first, at most ``max_texts`` texts and (when given) about
    ``max_tokens`` padded word pieces per batch; ``rows`` are the texts'
    positions in ``texts``. ``tokenizer`` must truncate to the model's window
    and not pad.

    All texts are sorted together, not block by block, so a batch of many
    short sentences holds sentences of one length (little padding). Texts
    are tokenised a block at a time and only their ids kept, as int32
    arrays: tokenizers' Encoding objects are heavy (gigabytes for a large
    corpus, where the ids alone take megabytes).
    """
    ids_list: list[np.ndarray] = []
    # Without character offsets, which no encoder needs (faster).
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    for lo in range(0, len(texts), TOKENIZE_BLOCK):
        encodings = encode(list(texts[lo : lo + TOKENIZE_BLOCK]))
        ids_list += [np.asarray(e.ids, dtype=np.int32) for e in encodings]
        del encodings
    lengths = np.fromiter((len(i) for i in ids_list), dtype=np.int64, count=len(ids_list))
    # Longest first: the progress bar's estimate errs on the safe side.
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        width = int(lengths[order[start]])  # the longest of the batch
        n = max_texts if max_tokens is None else max(1, min(max_texts, max_tokens // max(width, 1)))
        rows = order[start : start + n]
        start += len(rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            n_ids = len(ids_list[r])
            ids[i, :n_ids] = ids_list[r]
            mask[i, :n_ids] = 1
        # One text per input, so every token is of segment 0.
        yield rows, ids, mask, np.zeros_like(ids)


def embed_in_batches(
    run: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    tokenizer: Any,
    texts: Sequence[str],
    dimension: int,
    *,
    max_texts: int,
    max_tokens: int | None = None,
    pad_id: int = 0,
    progress: bool | Callable[[int], None] = False,
    workers: int = 1,
    init_worker: Callable[[], None] | None = None,
) -> np.ndarray:
    """One vector per text, in input order: ``run(ids, mask, types)`` on each
    of :func:`padded_batches`, with a progress bar when ``progress`` is
    true, or calling ``progress(n)`` as each batch of ``n`` texts is done.

    With ``workers`` > 1, or an ``init_worker``, that many threads call
    ``run`` on different batches at once (each first calls ``init_worker``,
    so the caller's thread is left as it was), at most two batches
    per thread made ahead, so the padded batches are never all in memory.
    ``run`` must release the GIL while it computes, as torch does.
    """
    out = np.zeros((len(texts), dimension), dtype=np.float32)
    bar = progress_bar(len(texts)) if progress is True and texts else None
    report = progress if callable(progress) else None

    def fill(rows: np.ndarray, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> int:
        out[rows] = run(ids, mask, types)
        return len(rows)

    def done(n: int) -> None:
        if bar is not None:
            bar.update(n)
        if report is not None:
            report(n)

    batches = padded_batches(tokenizer, texts, max_texts=max_texts, max_tokens=max_tokens, pad_id=pad_id)
    try:
        if workers <= 1 and init_worker is None:
            for batch in batches:
                done(fill(*batch))
        else:
            _fill_in_threads(batches, fill, done, workers, init_worker)
    finally:
        if bar is not None:
            bar.close()
    return out


def _fill_in_threads(
    batches: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    fill: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], int],
    done: Callable[[int], None],
    workers: int,
    init_worker: Callable[[], None] | None,
) -> None:
    """``fill`` on every batch in ``workers`` threads (each first calls
    ``init_worker``), ``done`` called in order as each batch finishes; at
    most two batches per thread are made ahead."""
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="dsqa-embed", initializer=init_worker) as pool:
        pending: deque[Future[int]] = deque()
        for batch in batches:
            pending.append(pool.submit(fill, *batch))
            if len(pending) >= 2 * workers:
                done(pending.popleft().result())
        while pending:
            done(pending.popleft().result())
