"""The library object: one per settings, holding the model and the loaded
index so that a second question reuses both.

The CLI and the web page are thin layers over this class; every check of user
input happens here, once.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable

from . import answering, store
from .embedding import Embedder, get_embedder
from .errors import StaleIndexError
from .indexing import ReindexReport, chunking_identity, corpus_diff, model_identity, reindex
from .results import Answer, Passage
from .retrieval import METHODS, Hit, Method, Retriever
from .settings import Settings

log = logging.getLogger("dsqa")


def clean_question(question: object, max_chars: int) -> str:
    """The question with control characters turned into spaces, or a
    ``ValueError`` that says what is wrong with it."""
    if not isinstance(question, str):
        raise ValueError(f"the question must be text, not {type(question).__name__}")
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in question)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise ValueError("the question is empty: type a question about your notes")
    if len(cleaned) > max_chars:
        raise ValueError(f"the question is {len(cleaned):,} characters long; the limit is {max_chars:,}")
    return cleaned


def check_k(k: object, max_k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"k must be a whole number, not {k!r}")
    if not 1 <= k <= max_k:
        raise ValueError(f"k must be between 1 and {max_k}, got {k}")
    return k


@dataclass
class IndexStatus:
    index_dir: str
    corpus_dir: str
    model: dict[str, Any]
    chunking: dict[str, Any]
    notes: int
    chunks: int
    created: str
    up_to_date: bool
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        lines = [
            f"index:    {self.index_dir} (built {self.created})",
            f"corpus:   {self.corpus_dir}",
            f"model:    {self.model['name']} ({self.model['dimension']}-d)",
            f"chunking: " + ", ".join(f"{k}={v}" for k, v in self.chunking.items()),
            f"size:     {self.notes} notes, {self.chunks} chunks",
            "state:    " + ("up to date" if self.up_to_date else "stale: " + "; ".join(self.problems)),
        ]
        return "\n".join(lines)


class DSQA:
    """Question answering over one corpus and index."""

    def __init__(self, settings: Settings | None = None, **overrides: Any):
        self.settings = (settings or Settings()).with_(**overrides)
        self._lock = threading.RLock()
        self._retriever: Retriever | None = None
        self._generation: str | None = None

    # -- public API --------------------------------------------------------
    def search(
        self, query: str, k: int | None = None, notes: Iterable[str] | None = None, method: Method = "hybrid"
    ) -> list[Passage]:
        """The ``k`` passages that best match ``query``, best first.

        ``method`` is ``"hybrid"`` (the default ranking), or ``"dense"`` or
        ``"bm25"`` alone, for comparison.
        """
        query, k, retriever, allowed = self._prepare(query, k, notes, method)
        hits = retriever.rank(query, k, allowed, method=method)
        return [self._passage(retriever.index, hit) for hit in hits]

    def ask(
        self, question: str, k: int | None = None, notes: Iterable[str] | None = None, method: Method = "hybrid"
    ) -> Answer:
        """Passages that answer ``question`` and, where the notes cover it, a
        short answer quoted from them with ``[n]`` citation markers."""
        question, k, retriever, allowed = self._prepare(question, k, notes, method)
        index = retriever.index
        qv = retriever.embed_query(question)
        hits = retriever.rank(question, k, allowed, method=method, query_vector=qv)
        passages = [self._passage(index, hit) for hit in hits]
        confidence = answering.confidence(question, hits, index)
        if not hits or confidence < self.settings.refusal_threshold:
            return Answer(question, passages, False, answering.NOT_FOUND if hits else "", confidence)
        quotes = answering.pick_quotes(question, hits, index, qv, self.settings.answer_sentences)
        for q in quotes:
            passages[q.passage].highlights.append((q.start, q.end))
        text = answering.answer_text(quotes, [p.text for p in passages])
        return Answer(question, passages, True, text, confidence)

    def _prepare(self, query: str, k: int | None, notes: Iterable[str] | None, method: str):
        query = clean_question(query, self.settings.max_question_chars)
        k = check_k(self.settings.k if k is None else k, self.settings.max_k)
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        retriever = self._ready()
        return query, k, retriever, self._allowed_rows(retriever.index, notes)

    def reindex(self, *, full: bool = False, progress: bool = False) -> ReindexReport:
        with self._lock:
            report = reindex(self.settings, full=full, progress=progress)
            self._retriever = None
            return report

    def status(self) -> IndexStatus:
        manifest = store.read_manifest(self.settings.index_dir)
        problems = self._stale_reasons(manifest)
        return IndexStatus(
            index_dir=str(self.settings.index_dir),
            corpus_dir=str(self.settings.corpus_dir),
            model=manifest["model"],
            chunking=manifest["chunking"],
            notes=len(manifest["notes"]),
            chunks=manifest["chunk_count"],
            created=manifest.get("created", "?"),
            up_to_date=not problems,
            problems=problems,
        )

    def note_names(self) -> list[str]:
        """The notes in the index, as their paths relative to the corpus."""
        return self._ready().index.sources

    @property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings.model)

    # -- internals ---------------------------------------------------------
    def _stale_reasons(self, manifest: dict[str, Any]) -> list[str]:
        reasons = []
        if manifest["format"] != store.FORMAT_VERSION:
            reasons.append(f"index format {manifest['format']}, this dsqa uses {store.FORMAT_VERSION}")
        want_model = model_identity(self.embedder)
        if manifest["model"] != want_model:
            reasons.append(f"built with model {manifest['model'].get('name')}, settings use {want_model['name']}")
        want_chunking = chunking_identity(self.settings)
        if manifest["chunking"] != want_chunking:
            diff = [k for k in want_chunking if manifest["chunking"].get(k) != want_chunking[k]]
            reasons.append("chunking settings differ (" + ", ".join(diff) + ")")
        diff = corpus_diff(self.settings.corpus_dir, manifest)
        if not diff.clean:
            reasons.append(str(diff))
        return reasons

    def _ready(self) -> Retriever:
        """The retriever over the live index, loading or refreshing it when
        the index changed on disk (another process reindexed)."""
        with self._lock:
            live = store.current_generation(self.settings.index_dir).name
            if self._retriever is not None and live == self._generation:
                return self._retriever
            manifest = store.read_manifest(self.settings.index_dir)
            problems = self._stale_reasons(manifest)
            if problems:
                if not self.settings.auto_reindex:
                    raise StaleIndexError(
                        f"index in {self.settings.index_dir} is stale: {'; '.join(problems)}; "
                        "run `dsqa reindex` to update it"
                    )
                log.info("index is stale (%s): reindexing", "; ".join(problems))
                reindex(self.settings)
            index = store.load(self.settings.index_dir)
            self._retriever = Retriever(index, self.embedder, self.settings)
            self._generation = index.path.name
            return self._retriever

    def _allowed_rows(self, index: store.StoredIndex, notes: Iterable[str] | None) -> list[int] | None:
        if notes is None:
            return None
        if isinstance(notes, str):
            notes = [notes]
        wanted = {resolve_note(n, index.sources) for n in notes}
        if not wanted:
            return None
        return [row for row, c in enumerate(index.chunks) if c["source"] in wanted]

    @staticmethod
    def _passage(index: store.StoredIndex, hit: Hit) -> Passage:
        c = index.chunks[hit.row]
        return Passage(
            text=c["text"],
            source=c["source"],
            heading=c["heading"],
            start_line=c["start_line"],
            end_line=c["end_line"],
            score=round(hit.score, 4),
        )


def resolve_note(name: str, sources: list[str]) -> str:
    """Map a note given by its path, file name or stem to its path in the
    index. Only names of indexed notes are accepted, so a filter can never
    point at a file outside the corpus."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a note filter must be a non-empty note name")
    if name in sources:
        return name
    matches = [s for s in sources if s.rsplit("/", 1)[-1] in (name, name + ".md") or s.rsplit("/", 1)[-1].rsplit(".", 1)[0] == name]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(sources[:10]) + (", …" if len(sources) > 10 else "")
    if matches:
        raise ValueError(f"note {name!r} is ambiguous: it matches {', '.join(matches)}")
    raise ValueError(f"no note {name!r} in the index; notes are: {shown}")
