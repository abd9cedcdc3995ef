"""The library object: one per settings, holding the model and the loaded
index so that a second question reuses both.

The CLI and the web page are thin layers over this class; every check of user
input happens here, once.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from . import paths, storage
from .build import freshness
from .build.progress import Reporter
from .build.reindex import reindex
from .build.report import IndexStatus, ReindexReport
from .encoders import Embedder, get_embedder
from .errors import (
    CorpusError,
    IndexMissingError,
    IndexWriteError,
    InvalidInputError,
    LockedError,
)
from .query import answering, topics
from .query.confidence import confidence as calibrated_confidence
from .query.retrieval import Hit, Retriever
from .query.scorers import HYBRID, Scorer
from .results import (
    ANSWERED,
    NOT_COVERED,
    WEAK,
    Answer,
    NoteText,
    Passage,
    verdict_reason,
)
from .settings import Settings
from .sources import note_text
from .sources.formats.limits import ReaderLimits

log = logging.getLogger("dsqa")

#: How often a long-lived engine compares the corpus with the index, at most.
STALE_CHECK_SECONDS = 2.0

#: How many loaded generations' note lists an engine keeps for
#: :meth:`DSQA.changes_since`.
NOTES_SEEN = 8

#: What a reindex started while another runs in the same engine raises.
REINDEX_RUNNING = (
    "a reindex is already running; questions are answered from the current index "
    "until it finishes (try again then if the notes changed since it started)"
)


#: A question is refused before it is cleaned when it is longer than this
#: many times the limit: cleaning collapses runs of blanks, so a question
#: may be a little longer than the limit before cleaning.
RAW_QUESTION_FACTOR = 4


def clean_question(question: object, max_chars: int) -> str:
    """The question with control characters turned into spaces, or a
    ``ValueError`` that says what is wrong with it."""
    if not isinstance(question, str):
        raise InvalidInputError(f"the question must be text, not {type(question).__name__}")
    # Before the character-by-character pass, which a megabyte question would
    # make everyone wait for: room for the blanks and controls it collapses.
    if len(question) > RAW_QUESTION_FACTOR * max_chars:
        raise InvalidInputError(f"the question is {len(question):,} characters long; the limit is {max_chars:,}")
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in question)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise InvalidInputError("the question is empty: type a question about your notes")
    if len(cleaned) > max_chars:
        raise InvalidInputError(f"the question is {len(cleaned):,} characters long; the limit is {max_chars:,}")
    return cleaned


def check_k(k: object, max_k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidInputError(f"k must be a whole number, not {k!r}")
    if not 1 <= k <= max_k:
        raise InvalidInputError(f"k must be between 1 and {max_k}, got {k}")
    return k


def check_notes(notes: object) -> list[object] | None:
    """``notes`` as a list (``None``: all notes), or a ``ValueError`` when it
    is neither a note name nor a list of them; each name is checked against
    the index by :func:`resolve_note`."""
    if notes is None:
        return None
    if isinstance(notes, str):
        return [notes]
    if isinstance(notes, (bytes, bytearray, dict)) or not isinstance(notes, Iterable):
        raise InvalidInputError(f"notes must be a note name or a list of note names, not {type(notes).__name__}")
    return list(notes)


class DSQA:
    """Question answering over one corpus and index."""

    def __init__(self, settings: Settings | None = None, **overrides: Any):
        self.settings = (settings or Settings()).with_(**overrides)
        #: Told what an automatic reindex (a first question on a new folder,
        #: or one after the notes changed) is doing; the CLI sets a console
        #: bar here on a terminal.
        self.progress: Reporter | None = None
        #: (generation name, retriever) that questions are answered from;
        #: replaced whole, so a reader never sees half of a swap.
        self._current: tuple[str, Retriever] | None = None
        #: One thread at a time compares the index with the corpus and loads a
        #: new generation; readers that find it taken answer from ``_current``.
        self._refresh_lock = threading.Lock()
        #: One reindex at a time in this engine (``indexing``'s file lock
        #: covers other processes); a second one is refused, not queued.
        self._build_lock = threading.Lock()
        self._checked = float("-inf")  # when the corpus was last compared with the index
        self._unfixable: list[str] | None = None  # stale reasons a reindex failed to fix
        #: What the last reindex in this engine did, whether asked for or run
        #: before a question because the notes changed (the page says so).
        self.last_reindex: ReindexReport | None = None
        #: The notes (path -> content hash) of the generations this engine
        #: loaded, the latest few: what :meth:`changes_since` compares.
        self._notes_seen: dict[str, dict[str, Any]] = {}
        #: What ranks the passages of ``ask`` and ``search``: the product's
        #: hybrid score; ``dsqa.evaluation.evaluate_all`` swaps in the other
        #: named scorers (:mod:`dsqa.query.scorers`) to compare them.
        self.scorer: Scorer = HYBRID

    # -- public API --------------------------------------------------------
    def search(self, query: str, k: int | None = None, notes: Iterable[str] | None = None) -> list[Passage]:
        """The ``k`` passages that best match ``query``, best first."""
        query, k, retriever, allowed = self._prepare(query, k, notes)
        hits = retriever.rank(query, k, allowed, scorer=self.scorer)
        return [self._passage(retriever.index, hit) for hit in hits]

    def ask(self, question: str, k: int | None = None, notes: Iterable[str] | None = None) -> Answer:
        """Passages that answer ``question`` and, where the notes cover it, a
        short answer quoted from them with ``[n]`` citation markers (``[n]``
        is ``passages[n - 1]``). Where the evidence is weak (``coverage ==
        "weak"``) the text is the one best sentence of the top passages, the closest
        match; where the notes do not cover the question it is empty."""
        question, k, retriever, allowed = self._prepare(question, k, notes)
        index = retriever.index
        st = self.settings
        qv = retriever.embed_query(question)
        # The verdict and the confidence are taken from a fixed number of top
        # passages, however many are shown.
        judged = max(st.confidence_passages, st.quote_passages)
        hits = retriever.rank(question, max(k, judged), allowed, scorer=self.scorer, query_vector=qv)
        verdict = topics.assess(
            question, [h.row for h in hits[: st.confidence_passages]], index.chunks, index.lexical, index.sentence_spans
        )
        shown = hits[:k]
        passages = [self._passage(index, hit, verdict.terms) for hit in shown]
        confidence = calibrated_confidence(question, hits, index, st)
        coverage = answering.coverage(confidence, st.refusal_threshold, st.weak_margin) if hits else NOT_COVERED
        coverage, confidence = answering.with_topics(coverage, confidence, verdict, st.refusal_threshold, st.weak_margin)
        subject = answering.folder_words(st.corpus_dir, index.sources)
        gap = answering.topic_reason(verdict, subject, [h.row for h in shown], index.chunks)
        if not gap and coverage == NOT_COVERED and not subject[1]:
            gap = f"{subject[0]} does not seem to cover this."
        said = functools.partial(
            Answer,
            reason=gap or verdict_reason(coverage, confidence, st.refusal_threshold, len(hits)),
            gap=gap,
            threshold=st.refusal_threshold,
            weak_from=st.refusal_threshold - st.weak_margin,
        )
        if coverage == NOT_COVERED:
            return said(question, passages, False, "", confidence, coverage)
        # A weak answer quotes only its best sentence: the closest match, to
        # be checked against its passage, not an answer put together. Quotes
        # come from the passages shown.
        # A term mentioned only in passing: the closest match shown is that
        # mention, where the reason points.
        rows = [h.row for h in shown]
        mention = None
        if coverage == WEAK and verdict.passing and verdict.passing_row in rows:
            term = next(t for t in verdict.terms if t.word == verdict.passing)
            mention = (rows.index(verdict.passing_row), term.terms)
        quotes = answering.pick_quotes(question, shown, index, qv, st, st.answer_sentences if coverage == ANSWERED else 1, mention)
        for q in quotes:
            passages[q.passage].highlights.append((q.start, q.end))
        text = answering.answer_text(quotes, [p.text for p in passages])
        return said(question, passages, coverage == ANSWERED, text, confidence, coverage)

    def _prepare(self, query: str, k: int | None, notes: Iterable[str] | None):
        query = clean_question(query, self.settings.max_question_chars)
        k = check_k(self.settings.k if k is None else k, self.settings.max_k)
        names = cast("list[str] | None", check_notes(notes))  # each name is checked by resolve_note
        retriever = self.retriever()
        return query, k, retriever, self._allowed_rows(retriever.index, names)

    def reindex(self, *, full: bool = False, progress: bool | Reporter | None = False) -> ReindexReport:
        """Bring the index up to date with the corpus (see
        :func:`dsqa.build.reindex.reindex`); ``progress`` is a reporter of
        :class:`dsqa.build.progress.Step` events, or ``True`` for a console bar.

        Questions asked meanwhile are answered from the current generation;
        the new one is swapped in when it is complete. A second reindex while
        one runs raises ``LockedError`` instead of waiting for it.
        """
        if not self._build_lock.acquire(blocking=False):
            raise LockedError(REINDEX_RUNNING)
        try:
            report = reindex(self.settings, full=full, progress=progress)
            self.last_reindex = report
        finally:
            self._build_lock.release()
        # An engine that answers swaps the new generation in now (not nested
        # in _build_lock: _refresh takes the two locks the other way round).
        if self._current is not None:
            with self._refresh_lock:
                self._load()
        return report

    def status(self) -> IndexStatus:
        """What the live index holds and whether it matches the corpus, the
        model and the chunking settings; reads only the manifest. With no
        index yet, ``IndexMissingError`` naming the command that builds it
        (``CorpusError`` when the notes folder does not exist either)."""
        try:
            gen = self._generation_or_missing()
        except IndexMissingError:
            paths.require_corpus_dir(self.settings.corpus_dir)
            raise
        manifest = storage.read_manifest(self.settings.index_dir, gen)
        freshness.check_corpus(self.settings, manifest)
        diff = freshness.corpus_diff(self.settings.corpus_dir, manifest, cross_mounts=self.settings.cross_mounts)
        problems = freshness.stale_reasons(self.settings, manifest, self.embedder, diff)
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
            added=diff.added,
            changed=diff.changed,
            removed=diff.removed,
            vectors=stored_vectors(manifest),
            windows=int(manifest.get("vector_count", 0)),
            generation=gen.name,
            format=manifest["format"],
            fix=self.reindex_command(),
        )

    def check_corpus_folder(self) -> None:
        """``CorpusError`` when the notes folder does not exist: what a
        long-running command (``serve``, ``watch``) checks before it starts."""
        paths.require_corpus_dir(self.settings.corpus_dir)

    def refresh(self) -> Retriever:
        """Compare the notes with the index now, whenever it was last done,
        and bring the index up to date first when they changed, as a
        question does (:meth:`retriever`); for a long-lived caller (the web
        page) about to answer a question, so that a note saved a moment ago
        is in the answer. Waits for a check another thread is making."""
        with self._refresh_lock:
            self._checked = float("-inf")
            return self._refresh()

    def changes_since(self, generation: str) -> freshness.CorpusDiff | None:
        """The notes added, changed and removed from ``generation`` (an
        earlier index this engine loaded) to the live one, whichever process
        wrote it; ``None`` when this engine never loaded ``generation``."""
        before = self._notes_seen.get(generation)
        if before is None:
            return None
        now = {name: entry.get("sha256") for name, entry in storage.read_manifest(self.settings.index_dir)["notes"].items()}
        return freshness.CorpusDiff(
            added=sorted(set(now) - set(before)),
            changed=sorted(n for n in set(now) & set(before) if now[n] != before[n]),
            removed=sorted(set(before) - set(now)),
        )

    def reindex_command(self) -> str:
        """The command that brings this engine's index up to date, with the
        flags that differ from the defaults."""
        return freshness.reindex_command(self.settings)

    def retriever(self) -> Retriever:
        """The retriever over the live index, the one questions are answered
        from (for ranking without answering, and for measuring it). Loaded on
        first use and reloaded when the index changed on disk (another
        process reindexed); the index is brought up to date first, as for a
        question, when the corpus, model or settings no longer match it
        (``StaleIndexError`` instead when ``auto_reindex`` is off). A
        long-lived engine (the web page) re-checks the corpus at most every
        ``STALE_CHECK_SECONDS``.

        Readers never wait for one another: while one thread checks, loads or
        rebuilds, the others answer from the generation already loaded. Only
        an engine with nothing loaded yet waits."""
        current = self._current
        if current is not None and time.monotonic() - self._checked < STALE_CHECK_SECONDS:
            if storage.current_generation(self.settings.index_dir).name == current[0]:
                return current[1]
        if not self._refresh_lock.acquire(blocking=current is None):
            return current[1]  # type: ignore[index]  # another thread is refreshing
        try:
            return self._refresh()
        finally:
            self._refresh_lock.release()

    def index(self) -> storage.StoredIndex:
        """The loaded index this engine answers from, brought up to date
        first as for a question (for measuring and inspecting it; see
        :meth:`retriever`)."""
        return self.retriever().index

    def read_note(
        self, note: str, start_line: int | None = None, end_line: int | None = None, page: int | None = None
    ) -> NoteText:
        """Lines ``start_line``..``end_line`` of an indexed note, as its
        citations count them (of page ``page`` for a PDF), for more context
        around a passage; at most ``note_text.MAX_READ_LINES`` at a time.

        ``note`` is named as for a filter (its path relative to the corpus,
        as citations give it, or its file name or stem). Only notes in the
        index are read, and only through the checked read that indexing uses
        (:func:`dsqa.sources.reading.read_corpus_file`): an absolute path, ``..``, or a
        note that now leads out of the folder through a symlink is refused.
        The index is brought up to date first, as for a question."""
        source = resolve_note(note_text.check_note_path(note), self.note_names())
        lines = note_text.read_lines(self.settings.corpus_dir, source, page, ReaderLimits.of(self.settings))
        return note_text.excerpt(lines, start_line, end_line)

    def note_names(self) -> list[str]:
        """The notes in the index, as their paths relative to the corpus."""
        return self.retriever().index.sources

    @property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings.model)

    # -- internals ---------------------------------------------------------
    def _generation_or_missing(self) -> Path:
        """The live generation, or ``IndexMissingError`` naming the whole
        command that builds this engine's index."""
        try:
            return storage.current_generation(self.settings.index_dir)
        except IndexMissingError:
            raise IndexMissingError(self.settings.index_dir, self.reindex_command()) from None

    def _build(self) -> None:
        """The first index of a folder, built on the first question (or
        waited for, when a reindex of this engine is building it); the caller
        holds ``_refresh_lock``."""
        if not self._build_lock.acquire(blocking=False):
            with self._build_lock:
                return
        try:
            log.info("no index of %s yet: building it in %s", self.settings.corpus_dir, self.settings.index_dir)
            self.last_reindex = reindex(self.settings, progress=self.progress)
        finally:
            self._build_lock.release()

    def _refresh(self) -> Retriever:
        """``retriever``'s slow path; the caller holds ``_refresh_lock``."""
        live = self._live_generation()
        current = self._current
        now = time.monotonic()
        if current is not None and live.name == current[0] and now - self._checked < STALE_CHECK_SECONDS:
            return current[1]  # refreshed by another thread meanwhile
        # The generation is resolved once: the manifest checked here is the
        # one loaded below, unless a reindex wrote a new generation.
        manifest = storage.read_manifest(self.settings.index_dir, live)
        freshness.check_corpus(self.settings, manifest)  # another folder's index: never rewritten, nor read
        problems = freshness.stale_reasons(self.settings, manifest, self.embedder)
        self._checked = now
        if not problems:
            self._unfixable = None
        if freshness.reindex_first(self.settings, problems, self._unfixable):
            answering_meanwhile = self._reindex_stale(manifest, problems, current)
            if answering_meanwhile is not None:
                return answering_meanwhile
            return self._load()
        return self._load(live, manifest)

    def _live_generation(self) -> Path:
        """The live generation, building the folder's first index when
        there is none and ``auto_reindex`` is on."""
        try:
            return self._generation_or_missing()
        except IndexMissingError:
            if not self.settings.auto_reindex:
                raise
            paths.require_corpus_dir(self.settings.corpus_dir)  # before saying it builds anything
            self._build()
            return self._generation_or_missing()

    def _reindex_stale(
        self, manifest: dict[str, Any], problems: list[str], current: tuple[str, Retriever] | None
    ) -> Retriever | None:
        """Bring the stale index of ``manifest`` up to date before a
        question; the caller holds ``_refresh_lock``. Returns the loaded
        retriever to answer from meanwhile when a reindex of this engine is
        already running, else ``None``: the caller loads the live generation,
        the new one, or the old one if it could not be updated but may still
        answer (see :func:`dsqa.build.freshness.answerable_as_is`)."""
        if not self._build_lock.acquire(blocking=False):
            # A reindex is running in this engine: it brings the index up
            # to date and swaps it in. Until then, the loaded generation
            # answers; with none loaded, wait for the new one.
            if current is not None:
                return current[1]
            with self._build_lock:
                pass
            return None
        log.info("index is stale (%s): reindexing", "; ".join(problems))
        try:
            self.last_reindex = reindex(self.settings, progress=self.progress)
        except (LockedError, IndexWriteError, CorpusError) as exc:
            # The index is still there and consistent; answering from it
            # beats failing, unless its vectors are another model's.
            if not freshness.answerable_as_is(manifest, self.embedder):
                raise
            log.warning("could not update the index (%s); answering from it as it is", exc)
            self._unfixable = problems  # not retried (nor warned about) until something else changes
        finally:
            self._build_lock.release()
        return None

    def _load(self, live: Path | None = None, manifest: dict[str, Any] | None = None) -> Retriever:
        """The retriever over the live generation, loading it unless it is
        the one already loaded; the caller holds ``_refresh_lock``. ``live``
        and its ``manifest`` are the generation the caller has just read,
        so that they are not read again."""
        if live is None:
            live = storage.current_generation(self.settings.index_dir)
        current = self._current
        if current is not None and current[0] == live.name:
            return current[1]
        index = storage.load(self.settings.index_dir, live, manifest)
        retriever = Retriever(index, self.embedder, self.settings)
        self._current = (index.path.name, retriever)
        self._notes_seen[index.path.name] = {name: entry.get("sha256") for name, entry in index.manifest["notes"].items()}
        for old_name in list(self._notes_seen)[:-NOTES_SEEN]:
            del self._notes_seen[old_name]
        return retriever

    def _allowed_rows(self, index: storage.StoredIndex, notes: Iterable[str] | None) -> list[int] | None:
        if notes is None:
            return None
        wanted = {resolve_note(n, index.sources) for n in notes}  # a list: _prepare checked it
        if not wanted:
            return None
        if isinstance(index.chunks, storage.ChunkFile):
            return index.chunks.rows_of(wanted)  # not every record parsed
        return [row for row, c in enumerate(index.chunks) if c.source in wanted]

    @staticmethod
    def _passage(index: storage.StoredIndex, hit: Hit, terms: Sequence[topics.TopicTerm] = ()) -> Passage:
        c = index.chunks[hit.row]
        return Passage(
            covers_topic=topics.covers(c, terms),
            text=c.text,
            source=c.source,
            heading=c.heading,
            start_line=c.start_line,
            end_line=c.end_line,
            score=round(hit.score, 4),
            page=c.page,
            cell=c.cell,
            end_cell=c.end_cell,
        )


def stored_vectors(manifest: dict[str, Any]) -> int:
    """The vectors an index stores (its ANN entries less the masked ones);
    ``vector_count`` counts window rows, several of which may share one
    vector. An index written before ANN entries were recorded stores one
    per window."""
    windows = int(manifest.get("vector_count", 0))
    if "ann_entries" not in manifest:
        return windows
    return int(manifest["ann_entries"]) - int(manifest.get("ann_masked", 0))


def resolve_note(name: str, sources: list[str]) -> str:
    """Map a note given by its path, file name, stem, or an unambiguous
    prefix of its path or file name (``unlimitediw``), to its path in the
    index. Only names of indexed notes are accepted, so a filter can never
    point at a file outside the corpus."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("a note filter must be a non-empty note name")
    if name in sources:
        return name

    def base(s: str) -> str:
        return s.rsplit("/", 1)[-1]

    matches = [s for s in sources if base(s) in (name, name + ".md") or base(s).rsplit(".", 1)[0] == name]
    if not matches:
        prefix = name.casefold()
        matches = [s for s in sources if s.casefold().startswith(prefix) or base(s).casefold().startswith(prefix)]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(sources[:10]) + (", …" if len(sources) > 10 else "")
    if matches:
        raise InvalidInputError(f"note {name!r} is ambiguous: it matches {', '.join(matches)}")
    raise InvalidInputError(f"no note {name!r} in the index; notes are: {shown}")
