"""Keyword retrieval: BM25 (bm25s) with a tokenizer that keeps technical terms.

Notes on infrastructure are full of terms that a plain word tokenizer destroys:
``--rm``, ``-p``, ``8080:80``, ``docker-stack.yml``, ``S3``, ``EMRFS``. Each
such compound is kept whole (unstemmed) *and* split into its stemmed parts, so
``docker-stack.yml`` is found by that exact name and by "docker stack".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
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


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    # Lucene's short list, plus the words every question is made of.
    return frozenset(STOPWORDS_EN) | _QUESTION_WORDS


def tokenize(text: str) -> list[str]:
    """The BM25 terms of ``text``, in order."""
    return list(_tokens(text))


#: Texts whose terms are remembered: the refusal calibration reads the same
#: top passages for question after question (``dsqa.query.calibration``).
_REMEMBERED_TEXTS = 4096


@lru_cache(maxsize=_REMEMBERED_TEXTS)
def _tokens(text: str) -> tuple[str, ...]:
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
    """A chunk's BM25 tokens; bm25s needs at least one per document."""
    return tokenize(text) or ["\u2205"]


def _import_bm25s():
    """bm25s sets its logger to DEBUG, so once anything configures root
    logging (onnxruntime's quantizer does) its "Building index from tokens"
    lines reach the user's terminal; keep only its warnings."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class LexicalIndex:
    """BM25 over the chunks, saved beside the vectors as ``.npy`` and JSON
    (bm25s's own format, loaded with ``allow_pickle=False``)."""

    def __init__(self, retriever) -> None:
        self._bm25 = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        bm25s = _import_bm25s()
        retriever = bm25s.BM25()
        corpus = [document_tokens(t) for t in texts]
        if corpus:
            retriever.index(corpus, show_progress=False)
        else:
            retriever.vocab_dict = {}
        return cls(retriever)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        bm25s = _import_bm25s()
        retriever = bm25s.BM25.load(str(folder), allow_pickle=False)
        return cls(retriever)

    @property
    def vocabulary(self) -> dict[str, int]:
        return self._vocab

    @property
    def size(self) -> int:
        return int(self._bm25.scores.get("num_docs", 0)) if self._vocab else 0

    def problem(self, documents: int) -> str | None:
        """What makes this index, as loaded from files that may be damaged,
        unfit to score ``documents`` chunks: a document count, vocabulary or
        score arrays that do not fit together (a query would read past
        them). ``None`` when they fit."""
        if self.size != documents:
            return f"{self.size} documents, expected {documents}"
        if not self._vocab:
            return None
        scores = getattr(self._bm25, "scores", None) or {}
        arrays: list[Any] = [scores.get(k) for k in ("data", "indices", "indptr")]
        data, indices, indptr = arrays
        if not all(isinstance(a, np.ndarray) and a.ndim == 1 for a in (data, indices, indptr)):
            return "its score arrays are missing or not flat"
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in self._vocab.values()):
            return "its vocabulary maps words to something other than ids"
        if len(indptr) < 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != len(data):
            return "its column pointers do not match its scores"
        if len(indices) != len(data) or (len(indices) and (indices.min() < 0 or indices.max() >= documents)):
            return "its document ids do not match the chunk records"
        if max(v for t, v in self._vocab.items() if t) >= len(indptr) - 1:
            return "its vocabulary does not match its score arrays"
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
        scores = self._bm25.scores
        for i, term in enumerate(terms):
            j = self._vocab.get(term)
            if j is not None:
                docs = scores["indices"][scores["indptr"][j] : scores["indptr"][j + 1]]
                out[i] = np.isin(rows, docs)
        return out

    def rows_with(self, term: str) -> np.ndarray:
        """The chunk rows that hold ``term`` (read from the BM25 matrix)."""
        j = self._vocab.get(term)
        if j is None or not self._vocab:
            return np.zeros(0, dtype=np.int64)
        scores = self._bm25.scores
        return np.asarray(scores["indices"][scores["indptr"][j] : scores["indptr"][j + 1]], dtype=np.int64)

    def _df(self, term: str) -> int:
        j = self._vocab.get(term)
        if j is None:
            return 0
        indptr = self._bm25.scores["indptr"]
        return int(indptr[j + 1] - indptr[j])

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (zeros if no term is known)."""
        ids = [self._vocab[t] for t in tokenize(query) if t in self._vocab]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)


def lexical_text(heading: str, text: str) -> str:
    return f"{heading}\n{text}" if heading else text
