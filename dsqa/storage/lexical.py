"""Keyword retrieval: BM25 (bm25s) with a tokenizer that keeps technical terms.

Notes on infrastructure are full of terms that a plain word tokenizer destroys:
``--rm``, ``-p``, ``8080:80``, ``docker-stack.yml``, ``S3``, ``EMRFS``. Each
such compound is kept whole (unstemmed) *and* split into its stemmed parts, so
``docker-stack.yml`` is found by that exact name and by "docker stack".

The index keeps each chunk's term counts (:class:`TermCounts`) beside
bm25s's score matrix, so that a reindex which changes a few chunks tokenizes
only those and recomputes the scores of all from the counts
(:meth:`LexicalIndex.updated`): the same numbers as bm25s's own build of
the whole corpus, in a fraction of its time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

#: A command-line flag, a compound like ``8080:80`` or ``docker-stack.yml``,
#: or a plain word.
_TOKEN = re.compile(r"(?<![\w-])--?[a-z0-9][\w-]*|\w[\w.:/+#-]*[\w+#]|\w")
_PARTS = re.compile(r"[a-z0-9]+")
_EDGE = ".:/-"
_QUESTION_WORDS = frozenset(
    "what whats how why when where which who whom whose do does did doing done can could should would may "
    "might must i me my we our you your he she his her its them what's there's between about".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


#: Lucene's English stop words, the list bm25s ships as ``STOPWORDS_EN``
#: (a test holds them equal). Written out here: importing bm25s brings in
#: scipy.sparse and tqdm, which a question never needs.
STOPWORDS_EN = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with".split()
)


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    # Lucene's short list, plus the words every question is made of.
    return STOPWORDS_EN | _QUESTION_WORDS


def tokenize(text: str) -> list[str]:
    """The BM25 terms of ``text``, in order."""
    return list(_tokens(text))


#: Texts whose terms are remembered: the refusal calibration reads the same
#: top passages for question after question (``dsqa.query.calibration``).
_REMEMBERED_TEXTS = 4096


def _scan(text: str) -> tuple[str, ...]:
    stem = _stemmer().stemWord
    stop = _stopwords()
    out: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group()
        if not token.startswith("-"):
            token = token.strip(_EDGE)
        if not token:
            continue
        if token.startswith("-") or any(ch in token for ch in _EDGE + "+#"):
            out.append(token)
            out.extend(stem(p) for p in _PARTS.findall(token) if p not in stop and len(p) > 1)
        elif token not in stop:
            out.append(stem(token))
    return tuple(out)


_tokens = lru_cache(maxsize=_REMEMBERED_TEXTS)(_scan)


#: Words that join the parts of a question without naming anything asked
#: about; they split a question into its concepts (see :func:`concepts`).
_FILLER_WORDS = frozenset(
    "use using used get getting make making work works working happen happens mean means need needs way ways "
    "thing things difference diff vs versus".split()
)
_CONCEPT_WORD = re.compile(r"(?<![\w-])--?[a-z0-9][\w-]*|\w[\w.:/+#'-]*[\w+#]|\w")


def concepts(question: str) -> list[list[str]]:
    """The question's key concepts, each as its search terms: the runs of
    words between stop words ("how do overlay networks do service
    discovery" -> overlay networks, service discovery). A passage that
    answers must cover each of them, not only the louder one."""
    found: list[list[str]] = []
    run: list[str] = []
    for word in _question_words(question):
        if word is None:
            if run:
                found.append(run)
            run = []
        else:
            run.append(word)
    if run:
        found.append(run)
    out: list[list[str]] = []
    for words in found:
        terms = list(dict.fromkeys(tokenize(" ".join(words))))
        if terms and terms not in out:
            out.append(terms)
    return out


def concept_words(question: str) -> list[str]:
    """The words of ``question`` that name something (lower case), in order:
    those :func:`concepts` is made of."""
    return [w for w in _question_words(question) if w is not None]


def _question_words(question: str) -> Iterator[str | None]:
    """Each word of ``question`` that names something, and ``None`` for
    each stop or filler word between them."""
    stop = _stopwords() | _FILLER_WORDS
    for match in _CONCEPT_WORD.finditer(question.lower()):
        word = match.group()
        if not word.startswith("-"):
            word = word.strip(_EDGE + "'")
        yield None if not word or word in stop or word.replace("'", "") in stop else word


def document_tokens(text: str) -> list[str]:
    """A chunk's BM25 tokens; bm25s needs at least one per document. Not
    remembered: an index's every chunk would only push out the passages a
    calibration re-reads."""
    return list(_scan(text)) or ["\u2205"]


#: The bm25s release whose folder format :meth:`LexicalIndex.save` writes,
#: recorded in the folder as bm25s records its own (bm25s keeps it as
#: information only). A constant: looking up the installed release through
#: package metadata scans every installed distribution, a noticeable part
#: of a small reindex.
BM25S_FORMAT = "0.3.16"


#: bm25s's defaults, which dsqa scores with: Lucene's BM25.
K1, B = 1.5, 0.75
#: Files beside bm25s's own in the index's ``bm25/`` folder: per stored
#: score its term count, per chunk its number of terms.
COUNTS_FILE = "dsqa.tf.npy"
LENGTHS_FILE = "dsqa.lengths.npy"


def _term_ids(vocab: dict[str, int], docs: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """The terms of ``docs``, one doc after another, as their ids in
    ``vocab`` (a new term is added to it with the next id), and each doc's
    number of terms."""
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for doc in docs for t in doc), dtype=np.int64)
    sizes = np.fromiter((len(doc) for doc in docs), dtype=np.int64, count=len(docs))
    return ids, sizes


@dataclass
class TermCounts:
    """How often each term occurs in each chunk, term-major like bm25s's
    score matrix: the chunks holding term ``terms[j]`` are
    ``rows[ptr[j]:ptr[j + 1]]`` (ascending), ``tf`` how often;
    ``lengths[r]`` is chunk ``r``'s number of terms."""

    terms: list[str]
    ptr: np.ndarray  # int64, one more than terms
    rows: np.ndarray  # int32
    tf: np.ndarray  # int32
    lengths: np.ndarray  # int32, one per chunk

    @classmethod
    def of(cls, docs: Sequence[Sequence[str]]) -> TermCounts:
        """The counts of chunks given as their terms."""
        none = np.zeros(0, dtype=np.int32)
        empty = cls([], np.zeros(1, dtype=np.int64), none, none, none)
        return empty.rebuilt(np.full(len(docs), -1, dtype=np.int64), docs)

    def rebuilt(self, old_row: np.ndarray, docs: Sequence[Sequence[str]]) -> TermCounts:
        """The counts of a new list of chunks: chunk ``r`` is this one's chunk
        ``old_row[r]``, or, where that is -1, the next of ``docs`` (its
        terms). Terms no chunk holds any more leave the vocabulary."""
        old_row = np.asarray(old_row, dtype=np.int64)
        kept, fresh = np.flatnonzero(old_row >= 0), np.flatnonzero(old_row < 0)
        if len(fresh) != len(docs):
            raise ValueError(f"{len(docs)} new chunks given, {len(fresh)} expected")
        if np.all(np.diff(old_row[kept]) > 0):
            return self._renumbered(old_row, kept, fresh, docs)
        # The kept chunks' counts, gathered chunk by chunk from a chunk-major view.
        by_row = np.argsort(self.rows, kind="stable")
        term_of = np.repeat(np.arange(len(self.terms), dtype=np.int64), np.diff(self.ptr))[by_row]
        row_ptr = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.rows, minlength=len(self.lengths)), out=row_ptr[1:])
        src = old_row[kept]
        counts = row_ptr[src + 1] - row_ptr[src]
        at = np.repeat(row_ptr[src] - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        # The new chunks' terms, new words appended to the vocabulary.
        vocab = {t: i for i, t in enumerate(self.terms)}
        ids, sizes = _term_ids(vocab, docs)
        terms = list(vocab)
        width = max(len(terms), 1)
        keys, tf_new = np.unique(np.repeat(fresh, sizes) * width + ids, return_counts=True)
        row_all = np.concatenate([np.repeat(kept, counts), keys // width])
        term_all = np.concatenate([term_of[at], keys % width])
        tf_all = np.concatenate([self.tf[by_row][at], tf_new])
        lengths = np.zeros(len(old_row), dtype=np.int32)
        lengths[kept], lengths[fresh] = self.lengths[src], sizes
        df = np.bincount(term_all, minlength=len(terms))
        used = df > 0
        order = np.lexsort((row_all, term_all))
        ptr = np.zeros(int(used.sum()) + 1, dtype=np.int64)
        np.cumsum(df[used], out=ptr[1:])
        return TermCounts(
            [t for t, u in zip(terms, used, strict=True) if u],
            ptr,
            row_all[order].astype(np.int32),
            tf_all[order].astype(np.int32),
            lengths,
        )

    def _renumbered(self, old_row: np.ndarray, kept: np.ndarray, fresh: np.ndarray, docs: Sequence[Sequence[str]]) -> TermCounts:
        """:meth:`rebuilt` when the kept chunks keep their order (each old
        chunk kept at most once, as a write that changes a few notes keeps
        them): the old counts stay term-major with ascending rows once each
        row is renumbered, so only the new chunks' counts are sorted and
        merged in, instead of every count being sorted again."""
        new_of_old = np.full(len(self.lengths), -1, dtype=np.int64)
        new_of_old[old_row[kept]] = kept
        row_old = new_of_old[self.rows]
        keep = row_old >= 0
        vocab = {t: i for i, t in enumerate(self.terms)}
        ids, sizes = _term_ids(vocab, docs)
        terms = list(vocab)
        n = max(len(old_row), 1)
        old_key = np.repeat(np.arange(len(self.terms), dtype=np.int64), np.diff(self.ptr))[keep] * n + row_old[keep]
        new_key, tf_new = np.unique(ids * n + np.repeat(fresh, sizes), return_counts=True)
        at = np.searchsorted(old_key, new_key)
        key = np.insert(old_key, at, new_key)
        tf = np.insert(self.tf[keep], at, tf_new.astype(np.int32))
        lengths = np.zeros(len(old_row), dtype=np.int32)
        lengths[kept], lengths[fresh] = self.lengths[old_row[kept]], sizes
        df = np.bincount(key // n, minlength=len(terms))
        used = df > 0
        ptr = np.zeros(int(used.sum()) + 1, dtype=np.int64)
        np.cumsum(df[used], out=ptr[1:])
        return TermCounts(
            [t for t, u in zip(terms, used, strict=True) if u],
            ptr,
            (key % n).astype(np.int32),
            tf.astype(np.int32),
            lengths,
        )

    def scores(self) -> np.ndarray:
        """Lucene's BM25 of each count, as bm25s computes it:
        ``idf * tf / (k1 * (1 - b + b * length / mean length) + tf)``."""
        n = len(self.lengths)
        if not n:
            return np.zeros(0, dtype=np.float32)
        df = np.diff(self.ptr).astype(np.float64)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf = self.tf.astype(np.float32)
        tfc = tf / (K1 * ((1 - B) + B * self.lengths[self.rows] / self.lengths.mean()) + tf)
        return (np.repeat(idf, np.diff(self.ptr)) * tfc).astype(np.float32)


class CountsBuilder:
    """The :class:`TermCounts` of chunks given a batch at a time, as a full
    reindex streams them: equal to ``TermCounts.of`` of all of them, without
    holding their terms, only each batch's counts."""

    def __init__(self) -> None:
        self._vocab: dict[str, int] = {}
        self._rows: list[np.ndarray] = []
        self._terms: list[np.ndarray] = []
        self._tf: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self._n = 0

    def add(self, docs: Sequence[Sequence[str]]) -> None:
        """Count the next chunks, given as their terms."""
        ids, sizes = _term_ids(self._vocab, docs)
        width = max(len(self._vocab), 1)
        keys, tf = np.unique(np.repeat(np.arange(len(docs), dtype=np.int64), sizes) * width + ids, return_counts=True)
        self._rows.append((keys // width + self._n).astype(np.int32))
        self._terms.append((keys % width).astype(np.int32))
        self._tf.append(tf.astype(np.int32))
        self._lengths.append(sizes.astype(np.int32))
        self._n += len(docs)

    def counts(self) -> TermCounts:
        def joined(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)

        rows, terms, tf = joined(self._rows), joined(self._terms), joined(self._tf)
        order = np.lexsort((rows, terms))
        ptr = np.zeros(len(self._vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=len(self._vocab)), out=ptr[1:])
        return TermCounts(list(self._vocab), ptr, rows[order], tf[order], joined(self._lengths))


def _kinds_problem(data: Any, indices: Any, indptr: Any) -> str | None:
    """What is wrong with the shapes and types of bm25s's score arrays."""
    if not all(isinstance(a, np.ndarray) and a.ndim == 1 for a in (data, indices, indptr)):
        return "its score arrays are missing or not flat"
    if data.dtype != np.float32 or indices.dtype.kind != "i" or indptr.dtype.kind != "i":
        return "its score arrays are not of bm25s's types"
    return None


#: bm25s's files in the index's ``bm25/`` folder (as its ``save`` writes them).
MATRIX_FILES = {"data": "data.csc.index.npy", "indices": "indices.csc.index.npy", "indptr": "indptr.csc.index.npy"}
VOCAB_FILE = "vocab.index.json"
PARAMS_FILE = "params.index.json"


@dataclass(frozen=True)
class ScoreMatrix:
    """bm25s's precomputed scores, term-major: the chunks holding term ``j``
    are ``indices[indptr[j]:indptr[j + 1]]`` with BM25 scores ``data[...]``."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    num_docs: Any  # an int when the folder is sound (``problem`` checks)


class LexicalIndex:
    """BM25 over the chunks, saved beside the vectors as ``.npy`` and JSON
    (bm25s's own format, loaded with ``allow_pickle=False``), with the term
    counts it was computed from (``None`` for an index read from a folder
    without them: it cannot be updated, only rebuilt).

    Writing the folder, reading it and scoring a query are done here, on
    memory-mapped arrays when reading, so that neither a question nor a
    reindex imports bm25s (and scipy with it), and a question reads only the
    columns of the terms it asks about."""

    def __init__(
        self,
        matrix: ScoreMatrix,
        vocab: dict[str, int],
        counts: TermCounts | None = None,
        saved_counts: tuple[Any, Any] | None = None,
        method: Any = "lucene",
    ) -> None:
        self._matrix = matrix
        self._vocab = vocab
        self._counts = counts
        #: (tf, lengths) as read from disk, made into counts when needed.
        self._saved_counts = saved_counts
        #: The BM25 variant the folder says its scores are (``problem``
        #: refuses any but Lucene's, which has no score for absent terms).
        self._method = method

    @property
    def counts(self) -> TermCounts | None:
        """The term counts the scores were computed from, ``None`` if unknown."""
        if self._counts is None and self._saved_counts is not None:
            tf, lengths = self._saved_counts
            terms = [""] * (len(self._matrix.indptr) - 1)
            for term, j in self._vocab.items():
                if term:
                    terms[j] = term
            m = self._matrix
            self._counts = TermCounts(terms, np.asarray(m.indptr, dtype=np.int64), np.asarray(m.indices), np.asarray(tf), np.asarray(lengths))
        return self._counts

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        return cls.of_counts(TermCounts.of([document_tokens(t) for t in texts]))

    @classmethod
    def of_counts(cls, counts: TermCounts) -> LexicalIndex:
        """The BM25 index of ``counts``: bm25s's score matrix and vocabulary
        (its empty word last, as bm25s adds it), computed here from the
        counts."""
        matrix = ScoreMatrix(counts.scores(), counts.rows, counts.ptr, len(counts.lengths))
        vocab = {t: i for i, t in enumerate(counts.terms)}
        if vocab:
            vocab[""] = len(vocab)
        return cls(matrix, vocab, counts)

    def updated(self, old_row: np.ndarray, texts: Sequence[str]) -> LexicalIndex:
        """The index of a new list of chunks: chunk ``r`` is this index's
        chunk ``old_row[r]`` or, where that is -1, the next of ``texts``;
        only ``texts`` are tokenized."""
        if self.counts is None:
            raise ValueError("this BM25 index has no term counts to update")
        return self.of_counts(self.counts.rebuilt(old_row, [document_tokens(t) for t in texts]))

    def save(self, folder: Path) -> None:
        """Write the folder in bm25s's format, as its ``BM25.save`` writes it
        for Lucene's BM25 (the same arrays and parameters; its ``BM25.load``
        reads it: parity test), and the term counts beside it. Written here,
        not by bm25s: importing it (and scipy with it) would be a good part of
        what a one-note reindex costs."""
        import json

        m = self._matrix
        for key, name in MATRIX_FILES.items():
            np.save(folder / name, getattr(m, key), allow_pickle=False)
        with open(folder / VOCAB_FILE, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(self._vocab, ensure_ascii=False, separators=(",", ":")))
        params = {
            "k1": K1, "b": B, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
            "int_dtype": "int32", "num_docs": m.num_docs, "version": BM25S_FORMAT, "backend": "numpy",
        }
        with open(folder / PARAMS_FILE, "w") as fh:
            json.dump(params, fh, indent=4)
        if self.counts is not None:
            np.save(folder / COUNTS_FILE, self.counts.tf, allow_pickle=False)
            np.save(folder / LENGTHS_FILE, self.counts.lengths, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """The index bm25s saved in ``folder``, its arrays memory-mapped
        (read as queries touch them); raises on files that are not JSON or
        ``.npy`` (``problem`` checks that what was read fits together)."""
        import json

        params = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
        vocab = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
        if not isinstance(params, dict) or not isinstance(vocab, dict):
            raise ValueError("its parameters or vocabulary are not JSON objects")
        arrays = {key: np.load(folder / name, allow_pickle=False, mmap_mode="r") for key, name in MATRIX_FILES.items()}
        matrix = ScoreMatrix(arrays["data"], arrays["indices"], arrays["indptr"], params.get("num_docs"))
        saved = None
        if (folder / COUNTS_FILE).is_file():
            saved = (
                np.load(folder / COUNTS_FILE, allow_pickle=False, mmap_mode="r"),
                np.load(folder / LENGTHS_FILE, allow_pickle=False, mmap_mode="r"),
            )
        return cls(matrix, vocab, saved_counts=saved, method=params.get("method"))

    @property
    def vocabulary(self) -> dict[str, int]:
        return self._vocab

    @property
    def size(self) -> int:
        return int(self._matrix.num_docs or 0) if self._vocab else 0

    def problem(self, documents: int, *, words: bool = True) -> str | None:
        """What makes this index, as loaded from files that may be damaged,
        unfit to score ``documents`` chunks: a document count, vocabulary or
        score arrays that do not fit together (a query would read past
        them). ``None`` when they fit. ``words=False`` leaves out the checks
        word by word of the vocabulary (its files' checksums vouch for it)."""
        m = self._matrix
        if isinstance(m.num_docs, bool) or not isinstance(m.num_docs, int):
            return f"its document count is {m.num_docs!r}"
        if self.size != documents:
            return f"{self.size} documents, expected {documents}"
        if not self._vocab:
            return None
        if self._method != "lucene":
            return f"its scores are BM25 {self._method!r}, not Lucene's"
        data, indices, indptr = m.data, m.indices, m.indptr
        kinds = _kinds_problem(data, indices, indptr)
        if kinds:
            return kinds
        if words and not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in self._vocab.values()):
            return "its vocabulary maps words to something other than ids"
        if len(indptr) < 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != len(data):
            return "its column pointers do not match its scores"
        if len(indices) != len(data) or (len(indices) and (indices.min() < 0 or indices.max() >= documents)):
            return "its document ids do not match the chunk records"
        if words and max(v for t, v in self._vocab.items() if t) >= len(indptr) - 1:
            return "its vocabulary does not match its score arrays"
        return self._counts_problem(documents)

    def _counts_problem(self, documents: int) -> str | None:
        if self._saved_counts is None:
            return None
        tf, lengths = self._saved_counts
        if not (isinstance(tf, np.ndarray) and tf.ndim == 1 and tf.dtype.kind == "i" and len(tf) == len(self._matrix.data)):
            return "its term counts do not match its scores"
        if not (isinstance(lengths, np.ndarray) and lengths.dtype.kind == "i" and lengths.shape == (documents,)):
            return "its chunk lengths do not match the chunk records"
        return None

    def idf(self, terms: Sequence[str]) -> np.ndarray:
        """BM25's (Lucene) inverse document frequency of each term; a term
        no chunk has gets the highest."""
        n = self.size
        df = np.array([self._df(t) for t in terms], dtype=np.float64)
        return np.log(1 + (n - df + 0.5) / (df + 0.5))

    def presence(self, terms: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """(terms, rows) booleans: which of the chunks in ``rows`` contain
        each term (read from the BM25 matrix, no tokenizing)."""
        out = np.zeros((len(terms), len(rows)), dtype=bool)
        if not self._vocab:
            return out
        m = self._matrix
        for i, term in enumerate(terms):
            j = self._vocab.get(term)
            if j is not None:
                docs = m.indices[m.indptr[j] : m.indptr[j + 1]]
                out[i] = np.isin(rows, docs)
        return out

    def rows_with(self, term: str) -> np.ndarray:
        """The chunk rows that hold ``term`` (read from the BM25 matrix)."""
        j = self._vocab.get(term)
        if j is None or not self._vocab:
            return np.zeros(0, dtype=np.int64)
        m = self._matrix
        return np.asarray(m.indices[m.indptr[j] : m.indptr[j + 1]], dtype=np.int64)

    def _df(self, term: str) -> int:
        j = self._vocab.get(term)
        if j is None:
            return 0
        indptr = self._matrix.indptr
        return int(indptr[j + 1] - indptr[j])

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (zeros if no term is known)."""
        ids = [self._vocab[t] for t in tokenize(query) if t in self._vocab]
        scores = np.zeros(self.size, dtype=np.float32)
        m = self._matrix
        # bm25s's get_scores_from_ids: each of the query's terms (a repeated
        # one as often as it is repeated) adds its column's scores.
        for j in ids:
            start, end = int(m.indptr[j]), int(m.indptr[j + 1])
            np.add.at(scores, m.indices[start:end], m.data[start:end])
        return scores


def lexical_text(heading: str, text: str) -> str:
    return f"{heading}\n{text}" if heading else text
