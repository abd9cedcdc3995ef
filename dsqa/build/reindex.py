"""Building the index from the corpus (whether it is up to date is
:mod:`dsqa.build.freshness`; what a reindex did, :mod:`dsqa.build.report`).

Reindexing is incremental by default: notes whose bytes did not change keep
their chunks, and any chunk whose embedded text is unchanged keeps its vector
(looked up by the chunk's key), so editing one paragraph re-embeds one or two
chunks. The write costs what changed too: the new vectors are added to the
previous generation's vector index (``ann.update``: the ones no chunk uses
any more are masked, and the index is compacted when they pass a share of
it), BM25 tokenizes only the new chunks (``LexicalIndex.updated``), and the
refusal calibration is redone on the schedule of :func:`_calibration`.
``full=True`` rebuilds everything. Vectors of two models are never
mixed: old vectors are reused only when the model identity matches.

A reindex that reuses nothing (``full=True``, the first one, another model)
streams (:func:`_stream_generation`): notes are read, chunked, embedded and
written in bounded batches, so its memory does not grow with the folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from .. import paths, storage
from .._version import __version__
from ..encoders import Embedder, get_embedder
from ..errors import (
    IndexCorruptError,
    IndexMissingError,
    IndexNotAFolderError,
    IndexWriteError,
    LockedError,
)
from ..query.calibration import calibrate
from ..query.retrieval import Retriever
from ..settings import Settings
from ..sources.formats import reader_version
from ..sources.formats.limits import ReaderLimits
from ..sources.loading import CorpusStream, Note, content_hash, open_corpus
from ..sources.reading import MAX_NOTE_BYTES, OUTSIDE, read_corpus_file
from ..sources.sentences import sentence_windows
from ..storage import ChunkRecord, ann
from ..storage.lexical import CountsBuilder, LexicalIndex, document_tokens, lexical_text
from .chunking import Chunk, Chunker
from .freshness import ReindexPlan, plan, reindex_command
from .progress import Reporter, Step, reporter
from .report import ReindexReport, counted

log = logging.getLogger("dsqa")


def _lock(index_dir: Path) -> FileLock:
    return FileLock(str(Path(index_dir) / ".lock"), timeout=0)


def _missing_folders(index_dir: Path) -> list[Path]:
    """``index_dir`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for folder in [index_dir, *index_dir.parents]:
        if folder.exists() or folder.is_symlink():
            break
        missing.append(folder)
    return missing


def _remove_if_empty(created: list[Path], index_dir: Path) -> None:
    """Remove the folders this reindex made (``created``, deepest first) when
    it failed before writing anything in them: the index folder holding
    nothing but its lock file, then each parent left empty."""
    if not created:
        return
    try:
        if created[0] == index_dir and {p.name for p in index_dir.iterdir()} <= {".lock"}:
            (index_dir / ".lock").unlink(missing_ok=True)
        for folder in created:
            folder.rmdir()  # fails, and stops, at the first folder that is not empty
    except OSError:
        pass


def _chunk_record(chunk: Chunk) -> ChunkRecord:
    """What the index keeps of a chunk: every field of the record, which a
    :class:`Chunk` has by the same name."""
    return ChunkRecord(**{f.name: getattr(chunk, f.name) for f in dataclasses.fields(ChunkRecord)})


def _live_generation(index_dir: Path) -> Path | None:
    try:
        return storage.current_generation(index_dir)
    except (IndexMissingError, IndexCorruptError):
        return None


def _load_previous(settings: Settings, plan: ReindexPlan) -> tuple[storage.StoredIndex | None, ReindexPlan]:
    """The generation whose chunks and vectors ``plan`` reuses, loaded, or
    ``None`` and the plan of a reindex from scratch when it cannot be read."""
    if plan.manifest is not None and plan.generation is not None:
        try:
            old = storage.load(settings.index_dir, plan.generation, plan.manifest)
            old.chunks = list(old.chunks)  # every record is read to be kept or replaced: parse each once
            return old, plan
        except IndexCorruptError as exc:
            plan = plan.from_scratch(str(exc))
    if plan.problem:
        log.warning("rebuilding the index from scratch: %s", plan.problem)
    return None, plan


def _write_error(index_dir: Path, exc: OSError) -> IndexWriteError:
    return IndexWriteError(
        f"cannot write the index folder {index_dir}: {exc.strerror or exc}; the index there (if any) is unchanged"
    )


def chunker_for(settings: Settings, embedder: Embedder) -> Chunker:
    """The chunker a reindex with these settings uses, counting tokens with
    the model's own tokenizer."""
    return Chunker(
        embedder.count_tokens,
        embedder.max_tokens,
        settings.chunk_tokens,
        settings.chunk_overlap_tokens,
        settings.embed_headings,
        embedder.count_tokens_batch,
    )


def reindex(settings: Settings, *, full: bool = False, progress: bool | Reporter | None = False) -> ReindexReport:
    """Bring the index in ``settings.index_dir`` up to date with the corpus.

    ``progress`` is a reporter called with each :class:`dsqa.build.progress.Step`
    ("loading model…", "reading 5 notes…", chunks embedded so far), or
    ``True`` for a console bar. Fails at once with ``LockedError`` while
    another process writes the same index folder, and with
    ``CorpusMismatchError``, writing nothing, when the index was built from
    another notes folder (``full`` included: another folder's index is never
    rebuilt either).
    """
    started = time.perf_counter()
    report_step = reporter(progress)
    index_dir = settings.index_dir
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexNotAFolderError(index_dir)
    paths.require_corpus_dir(settings.corpus_dir)
    report_step(Step("model", "loading model…"))
    embedder = get_embedder(settings.model, bf16=settings.bf16_encoder)
    planned = plan(settings, embedder, full=full)
    if paths.is_package_data(index_dir):
        mine = settings.with_(index_dir=paths.data_dir() / "indexes" / "demo")
        raise IndexWriteError(
            f"the demo index in {index_dir} belongs to the installed dsqa package and is never rewritten; "
            f"build a copy of your own with `{reindex_command(mine)}` (and ask with the same flags)"
        )
    created = _missing_folders(index_dir)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock(index_dir)
        lock.acquire()
    except Timeout:
        raise LockedError(
            f"another dsqa reindex is writing {index_dir}; try again when it has finished "
            "(questions are answered from the current index meanwhile)"
        ) from None
    except OSError as exc:
        _remove_if_empty(created, index_dir)
        raise _write_error(index_dir, exc) from None
    try:
        if _live_generation(index_dir) != planned.generation:  # another writer switched it meanwhile
            planned = plan(settings, embedder, full=full)
        report = _reindex_locked(settings, embedder, planned, report_step=report_step)
    except BaseException:
        lock.release()
        _remove_if_empty(created, index_dir)  # a failed first build leaves no folder behind
        raise
    lock.release()
    report.seconds = time.perf_counter() - started
    report_step(Step("done", str(report)))
    return report


def _reindex_locked(settings: Settings, embedder: Embedder, plan: ReindexPlan, *, report_step: Reporter) -> ReindexReport:
    storage.collect_garbage(settings.index_dir)  # what a killed writer left behind
    old, plan = _load_previous(settings, plan)
    corpus = _open_corpus(settings, old, plan)
    report_step(Step("read", f"reading {counted(len(corpus), 'note')}…"))
    report = ReindexReport(full=old is None, reason=plan.reason, skipped=corpus.skipped, warnings=corpus.warnings)
    if old is None:
        _stream_generation(settings, embedder, plan, corpus, report, report_step)
        return report
    build, notes_manifest = _assemble(settings, embedder, old, plan, list(corpus), report)
    skipped_manifest = _skipped_entries(settings.corpus_dir, corpus.skipped)
    if old is not None:
        report.reason = plan.rewrite
        unchanged = not (report.added or report.changed or report.removed)
        if not report.reason and unchanged and _same_skipped(old.manifest.get("skipped", {}), skipped_manifest):
            # Content is the same; differing mtimes (a fresh clone) are not worth a write.
            return report
    _write_generation(settings, embedder, old, plan, build, report, report_step, notes=notes_manifest, skipped=skipped_manifest)
    return report


def _open_corpus(settings: Settings, old: storage.StoredIndex | None, plan: ReindexPlan) -> CorpusStream:
    limits = {} if settings.allow_large_corpus else {
        "max_files": settings.max_corpus_files, "max_total_bytes": settings.max_corpus_bytes
    }
    # Notes whose chunks can be reused need no text: a PDF is not re-read.
    known = dict(plan.reusable)
    # Nor is a note that took the whole time or memory bound last time, unchanged.
    skipped = {src: (e.get("sha256"), e.get("reason", "")) for src, e in (old.manifest.get("skipped", {}) if old else {}).items()}
    return open_corpus(
        settings.corpus_dir, cross_mounts=settings.cross_mounts, known=known, limits=ReaderLimits.of(settings),
        known_skipped=skipped, allow_whole=settings.allow_large_corpus, **limits
    )


def _assemble(
    settings: Settings,
    embedder: Embedder,
    old: storage.StoredIndex | None,
    plan: ReindexPlan,
    notes: list[Note],
    report: ReindexReport,
) -> tuple[_Build, dict[str, Any]]:
    """The new generation's chunks and vectors, and its manifest's notes
    entry: an unchanged note's chunks are taken whole from ``old``, a new or
    changed note is chunked anew, its chunks keeping their old vectors where
    their keys are known. ``report`` counts what was done."""
    old_notes: dict[str, Any] = old.manifest["notes"] if old else {}
    old_rows: dict[str, list[int]] = {}
    key_to_row: dict[str, int] = {}
    if old is not None:
        for row, c in enumerate(old.chunks):
            old_rows.setdefault(c.source, []).append(row)
            key_to_row.setdefault(c.key, row)

    chunker = chunker_for(settings, embedder)
    build = _Build()
    notes_manifest: dict[str, Any] = {}
    for note in notes:
        previous = old_notes.get(note.source)
        if old is not None and previous and plan.reusable.get(note.source) == note.sha256:
            rows = old_rows.get(note.source, [])
            for r in rows:
                build.reuse(old, r)
            report.unchanged.append(note.source)
            n_chunks = len(rows)
        else:
            chunks = chunker.chunk(note)
            reused_here = build.add_chunks(chunks, old, key_to_row, settings.window_sentences)
            n_chunks = len(chunks)
            if previous is None:
                report.added[note.source] = n_chunks
            else:
                report.changed[note.source] = n_chunks
                report.reused += reused_here
        notes_manifest[note.source] = _note_entry(note, n_chunks)
    report.removed = {s: len(old_rows.get(s, [])) for s in old_notes if s not in notes_manifest}
    report.total_chunks = len(build.records)
    return build, notes_manifest


def _write_generation(
    settings: Settings,
    embedder: Embedder,
    old: storage.StoredIndex | None,
    plan: ReindexPlan,
    build: _Build,
    report: ReindexReport,
    report_step: Reporter,
    *,
    notes: dict[str, Any],
    skipped: dict[str, Any],
) -> None:
    """Embed what ``build`` still lacks, then write it as the new live
    generation, with its manifest (``notes`` and ``skipped`` entries
    included) and refusal calibration; ``old`` is the generation it updates,
    if any, as ``plan`` says."""
    try:
        storage.check_writable(settings.index_dir)  # fail before the embedding, not after
    except OSError as exc:
        raise _write_error(settings.index_dir, exc) from None
    encoder, spill = embedder, None
    if settings.ray_address:  # the only place Ray is imported
        from ..encoders.ray import RayEmbedder

        # Vectors from the cluster go to memory-mapped files in the locked
        # index folder as they arrive, not into this process's memory;
        # collect_garbage removes them after the write (or, after a crash,
        # at the next reindex).
        encoder = RayEmbedder.from_settings(settings, embedder)
        spill = settings.index_dir / f".tmp-{uuid.uuid4().hex[:8]}"
    build.embed(encoder, report_step, spill=spill and spill.with_name(spill.name + "-embedded.npy"))
    report_step(Step("write", "writing the index…"))
    report.embedded = build.new_chunks
    if build.new_chunks:
        report.encoder = encoder.last_encoder
    faiss_index, rows = _vector_index(old, build, embedder.dimension, spill and spill.with_name(spill.name + "-vectors.npy"))
    lexical = _lexical_index(old, build)
    manifest = _manifest(settings, plan, faiss_index, rows, len(build.records), notes=notes, skipped=skipped)
    windows = build.window_table()
    # The refusal scale of this corpus, measured on the new index in memory
    # before it is written (see dsqa.query.calibration), or kept (_calibration).
    built = storage.StoredIndex(
        settings.index_dir, manifest, build.records, ann.StoredVectors(faiss_index, rows), windows, faiss_index, lexical, rows
    )
    manifest["calibration"] = _calibration(settings, embedder, old, plan, built, report)
    try:
        storage.write(settings.index_dir, manifest, build.records, windows, faiss_index, lexical, rows)
    except OSError as exc:
        raise _write_error(settings.index_dir, exc) from None
    report.wrote = True
    storage.collect_garbage(settings.index_dir)


def _manifest(
    settings: Settings, plan: ReindexPlan, faiss_index: Any, rows: ann.Distinct, chunks: int, *,
    notes: dict[str, Any], skipped: dict[str, Any]
) -> dict[str, Any]:
    """The new generation's manifest (its calibration is added after)."""
    return {
        "format": storage.FORMAT_VERSION,
        "dsqa_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": plan.model,
        "chunking": plan.chunking,
        "corpus": paths.corpus_record(settings.corpus_dir, settings.index_dir),
        "index_type": ann.describe(faiss_index),
        "chunk_count": chunks,
        "vector_count": len(rows.entry_of_row),
        "ann_entries": int(faiss_index.ntotal),
        "ann_masked": rows.dead,
        "notes": notes,
        "skipped": skipped,
    }


#: A full reindex embeds at most about this many distinct texts at a time
#: (one batch of chunks: their texts and sentences), and holds no more than
#: one batch's texts and vectors (see :func:`_stream_generation`).
STREAM_TEXTS = 4096


def _stream_generation(
    settings: Settings, embedder: Embedder, plan: ReindexPlan, corpus: CorpusStream, report: ReindexReport, report_step: Reporter
) -> None:
    """A full reindex in bounded memory: the notes are read and chunked one
    at a time, each chunk's record written to the new generation as it is
    made and its texts to embed to a file beside it; then those texts are
    embedded a batch at a time, each batch's vectors going into the vector
    index's builder, which keeps them on disk (``ann.StreamBuilder``). What
    stays in memory grows only by a few numbers per chunk (its windows,
    term counts and vector entries), never by its text or vectors. The
    generation is written whole in a temporary folder and made live at the
    end, as every write is (``storage.GenerationWriter``)."""
    index_dir = settings.index_dir
    try:
        writer = storage.GenerationWriter(index_dir)
    except OSError as exc:
        raise _write_error(index_dir, exc) from None
    spill = index_dir / f".tmp-{uuid.uuid4().hex[:8]}"
    pending = spill.with_name(spill.name + "-texts.jsonl")
    vectors = ann.StreamBuilder(embedder.dimension, spill.with_name(spill.name + "-vectors.f32"))
    try:
        windows, counts, notes = _chunk_notes(settings, embedder, corpus, writer, pending, report)
        _embed_pending(settings, embedder, pending, report, report_step, spill, vectors)
        report_step(Step("write", "writing the index…"))
        faiss_index, rows = vectors.finish()
        lexical = LexicalIndex.of_counts(counts.counts())
        skipped = _skipped_entries(settings.corpus_dir, corpus.skipped)
        manifest = _manifest(settings, plan, faiss_index, rows, writer.chunk_count, notes=notes, skipped=skipped)
        built = storage.StoredIndex(
            writer.tmp, manifest, writer.chunks(), ann.StoredVectors(faiss_index, rows), windows, faiss_index, lexical, rows
        )
        manifest["calibration"] = _calibration(settings, embedder, None, plan, built, report)
    except BaseException:
        writer.abort()
        raise
    finally:
        pending.unlink(missing_ok=True)
        vectors.close()
    try:
        writer.finish(manifest, windows, faiss_index, lexical, rows)
    except OSError as exc:
        raise _write_error(index_dir, exc) from None
    report.wrote = True
    storage.collect_garbage(index_dir)


def _chunk_notes(
    settings: Settings, embedder: Embedder, corpus: CorpusStream, writer: storage.GenerationWriter, pending: Path,
    report: ReindexReport,
) -> tuple[np.ndarray, CountsBuilder, dict[str, Any]]:
    """Read and chunk every note: the records go to ``writer``, each chunk's
    texts to embed (its own, then each window's sentences) as a line of
    ``pending``; returns the window table, the BM25 term counts and the
    manifest's notes entry."""
    chunker = chunker_for(settings, embedder)
    windows = array("i")
    counts = CountsBuilder()
    notes: dict[str, Any] = {}
    with open(pending, "w", encoding="utf-8") as out:
        for note in corpus:
            chunks = chunker.chunk(note)
            row = writer.chunk_count
            for chunk in chunks:
                groups = []
                windows.extend((row, -1, -1))
                for start, end, group in sentence_windows(
                    chunk.text, settings.window_sentences, chunk.sentences, chunk.contexts, chunk.titles
                ):
                    windows.extend((row, start, end))
                    groups.append(group)
                out.write(json.dumps([chunk.embed_text, groups]) + "\n")
                row += 1
            try:
                writer.add_chunks(_chunk_record(c) for c in chunks)
            except OSError as exc:
                raise _write_error(settings.index_dir, exc) from None
            counts.add([document_tokens(lexical_text(c.heading, c.text)) for c in chunks])
            report.added[note.source] = len(chunks)
            notes[note.source] = _note_entry(note, len(chunks))
    report.total_chunks = report.embedded = writer.chunk_count
    return np.frombuffer(windows, dtype=np.int32).reshape(-1, 3).copy(), counts, notes


def _embed_pending(
    settings: Settings, embedder: Embedder, pending: Path, report: ReindexReport, report_step: Reporter, spill: Path,
    vectors: ann.StreamBuilder,
) -> None:
    """Embed the chunks listed in ``pending`` a batch of about
    :data:`STREAM_TEXTS` distinct texts at a time; each batch's vectors (one
    per window) go to ``vectors``."""
    encoder: Embedder = embedder
    if settings.ray_address:  # the only place Ray is imported
        from ..encoders.ray import RayEmbedder

        encoder = RayEmbedder.from_settings(settings, embedder)
    total, done = report.total_chunks, 0

    def flush(batch: _Build) -> None:
        nonlocal done
        # Ray's vectors go to a memory map as they arrive (see _write_generation).
        embedded = spill.with_name(f"{spill.name}-{done}-embedded.npy") if settings.ray_address else None
        batch.embed(encoder, report_step, spill=embedded, before=done, total=total)
        vectors.add(batch.new_vectors(embedder.dimension))
        done += batch.new_chunks
        batch.embedded = np.zeros((0, 0), dtype=np.float32)  # lets go of the memory map
        if embedded is not None:
            embedded.unlink(missing_ok=True)

    batch = _Build()
    with open(pending, encoding="utf-8") as lines:
        for line in lines:
            text, groups = json.loads(line)
            batch.add_texts(text, groups)
            if batch.distinct_texts >= STREAM_TEXTS:
                flush(batch)
                batch = _Build()
    if batch.new_chunks:
        flush(batch)
    if total:
        report.encoder = encoder.last_encoder


def _updatable(old: storage.StoredIndex | None) -> bool:
    """Whether ``old`` is a generation of the current format, whose vector
    index and BM25 counts a write can update instead of rebuilding."""
    return old is not None and old.manifest["format"] == storage.FORMAT_VERSION and old.distinct is not None


def _vector_index(old: storage.StoredIndex | None, build: _Build, dimension: int, spill: Path | None) -> tuple[Any, ann.Distinct]:
    """The new generation's vector index: ``old``'s with the new vectors
    added (``ann.update``), or one built from all of them."""
    if old is not None and old.distinct is not None and _updatable(old):
        old_windows = np.asarray(build.old_windows, dtype=np.int64)
        reused = np.full(len(old_windows), -1, dtype=np.int64)
        keep = old_windows >= 0
        reused[keep] = old.distinct.entry_of_row[old_windows[keep]]
        # A copy in memory: the loaded one is mapped from its file, and FAISS
        # cannot add to a mapped index.
        writable = ann.read(old.path / storage.FAISS, writable=True)
        index, rows, _ = ann.update(writable, reused, build.new_vectors(dimension))
        return index, rows
    return ann.build(build.matrix(old, dimension, spill=spill))


def _lexical_index(old: storage.StoredIndex | None, build: _Build) -> LexicalIndex:
    """BM25 over the new chunks: ``old``'s term counts with only the new
    chunks tokenized, or built from every chunk's text."""
    texts = [lexical_text(c.heading, c.text) for c in build.records]
    if old is not None and _updatable(old) and old.lexical.counts is not None:
        old_chunks = np.asarray(build.old_chunks, dtype=np.int64)
        return old.lexical.updated(old_chunks, [texts[r] for r in np.flatnonzero(old_chunks < 0)])
    return LexicalIndex.build(texts)


#: The refusal scale describes the corpus as a whole, which a few notes do
#: not move: a write keeps the previous calibration until the chunks embedded
#: anew or removed since it was made pass this share of the index, and
#: always recalibrates an index of fewer than :data:`RECALIBRATE_ALWAYS`
#: chunks, where calibrating costs little.
RECALIBRATE_SHARE = 0.02
RECALIBRATE_ALWAYS = 5_000


def _calibration(
    settings: Settings,
    embedder: Embedder,
    old: storage.StoredIndex | None,
    plan: ReindexPlan,
    built: storage.StoredIndex,
    report: ReindexReport,
) -> dict[str, Any]:
    """The refusal scale of the new generation (see :data:`RECALIBRATE_SHARE`),
    with ``drift``: the chunks changed since it was measured (``plan`` says
    whether ``old``'s may be kept)."""
    if not built.chunks:
        return {}
    drift = report.embedded + sum(report.removed.values())
    previous = old.manifest.get("calibration") if old is not None else None
    if previous and plan.keep_calibration and len(built.chunks) >= RECALIBRATE_ALWAYS:
        drift += int(previous.get("drift", 0))
        if drift <= RECALIBRATE_SHARE * len(built.chunks):
            return {**previous, "drift": drift}
    return {**calibrate(Retriever(built, embedder, settings)), "drift": 0}


class _Build:
    """The new generation as it is assembled: chunk records, and per chunk its
    vectors (the whole chunk, then one per sentence window), either reused
    from the old index or still to embed.

    A window's vector is the normalised mean of its sentences' vectors, not an
    embedding of the window's text: each sentence is then embedded once
    instead of once per window it sits in (three times with 3-sentence
    windows), which cuts the text the encoder reads substantially, at the
    same dev-set quality within a question or two (see
    :data:`dsqa.build.freshness.WINDOW_VECTORS`).
    """

    def __init__(self) -> None:
        self.records: list[ChunkRecord] = []
        self.windows: list[tuple[int, int, int]] = []
        #: Per window, the old generation's window whose vector it keeps, or
        #: -1: to embed.
        self.old_windows: list[int] = []
        #: Per chunk, the old generation's chunk with the same BM25 terms, or -1.
        self.old_chunks: list[int] = []
        #: Vector slots still to fill: the whole chunk's text, or the
        #: sentences whose vectors are averaged.
        self.pending_chunks: list[tuple[int, str]] = []
        self.pending_windows: list[tuple[int, list[str]]] = []
        self.new_chunks = 0
        #: The new texts' vectors, one row per distinct text (``row_of``).
        self.embedded: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self.row_of: dict[str, int] = {}
        self._distinct: set[str] = set()

    def reuse(self, old: storage.StoredIndex, old_row: int, record: ChunkRecord | None = None) -> None:
        row = len(self.records)
        was = old.chunks[old_row]
        self.records.append(record if record is not None else was)
        same_terms = record is None or lexical_text(record.heading, record.text) == lexical_text(was.heading, was.text)
        self.old_chunks.append(old_row if same_terms else -1)
        for w in old.window_rows(old_row):
            self.windows.append((row, int(old.windows[w, 1]), int(old.windows[w, 2])))
            self.old_windows.append(w)

    def add_chunks(
        self, chunks: list[Chunk], old: storage.StoredIndex | None, key_to_row: dict[str, int], window_sentences: int
    ) -> int:
        """Add a new or changed note's chunks: each one whose key ``old``
        has keeps its vectors, the others are to embed. Returns how many
        kept theirs."""
        reused = 0
        for chunk in chunks:
            row = key_to_row.get(chunk.key)
            if row is not None and old is not None:
                self.reuse(old, row, _chunk_record(chunk))
                reused += 1
            else:
                self.add(chunk, window_sentences)
        return reused

    def add(self, chunk: Chunk, window_sentences: int) -> None:
        row = len(self.records)
        self.records.append(_chunk_record(chunk))
        self.old_chunks.append(-1)
        # The whole chunk (heading included) first, then one window per
        # quotable sentence: retrieval scores a chunk by both.
        self.windows.append((row, -1, -1))
        groups = []
        for start, end, group in sentence_windows(chunk.text, window_sentences, chunk.sentences, chunk.contexts, chunk.titles):
            self.windows.append((row, start, end))
            groups.append(group)
        self.add_texts(chunk.embed_text, groups)

    def add_texts(self, text: str, groups: list[list[str]]) -> None:
        """A new chunk's vectors to embed: its whole ``text``, then one per
        window, the mean of its sentences' (``groups``)."""
        self.new_chunks += 1
        self.pending_chunks.append((len(self.old_windows), text))
        self.old_windows.append(-1)
        self._distinct.add(text)
        for group in groups:
            self.pending_windows.append((len(self.old_windows), group))
            self.old_windows.append(-1)
            self._distinct.update(group)

    @property
    def distinct_texts(self) -> int:
        """How many distinct texts the new chunks have to embed."""
        return len(self._distinct)

    def texts_to_embed(self) -> list[str]:
        """Each distinct text once: the new chunks, then their sentences (a
        sentence in the overlap of two chunks, or repeated in a note, is
        embedded once)."""
        texts = dict.fromkeys(text for _, text in self.pending_chunks)
        for _, group in self.pending_windows:
            texts.update(dict.fromkeys(group))
        return list(texts)

    def embed(
        self, embedder: Embedder, report_step: Reporter, spill: Path | None = None, *, before: int = 0, total: int | None = None
    ) -> None:
        """Embed the texts still to embed, reporting progress in chunks: the
        texts embedded so far, as a share of all the texts to embed (after
        ``before`` chunks of ``total``, when this is one batch of a larger
        run). With ``spill`` (a file name), the vectors
        are written to a memory map there as they arrive, so they need not
        fit in memory."""
        texts = self.texts_to_embed()
        if not texts:
            return
        mine, done = self.new_chunks, 0
        total = mine if total is None else total

        def texts_done(n: int) -> None:
            nonlocal done
            done += n
            report_step(Step("embed", "embedding", before + min(mine, mine * done // len(texts)), total))

        if not before:
            report_step(Step("embed", "embedding", 0, total))
        self.row_of = {text: row for row, text in enumerate(texts)}
        if spill is None:
            self.embedded = embedder.embed(texts, progress=texts_done)
        else:
            shape = (len(texts), embedder.dimension)
            self.embedded = np.lib.format.open_memmap(spill, mode="w+", dtype=np.float32, shape=shape)
            embedder.embed_into(texts, self.embedded, progress=texts_done)
        report_step(Step("embed", "embedding", before + mine, total))

    def new_vectors(self, dimension: int) -> np.ndarray:
        """The vectors of the windows to embed, in window order: new chunks'
        as embedded, new windows' the normalised mean of their sentences'."""
        slots = {slot: i for i, slot in enumerate(w for w, old in enumerate(self.old_windows) if old < 0)}
        out = np.empty((len(slots), dimension), dtype=np.float32)
        for slot, text in self.pending_chunks:
            out[slots[slot]] = self.embedded[self.row_of[text]]
        for slot, group in self.pending_windows:
            mean = np.mean(self.embedded[[self.row_of[s] for s in group]], axis=0)
            out[slots[slot]] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return out

    def matrix(self, old: storage.StoredIndex | None, dimension: int, spill: Path | None = None) -> np.ndarray:
        """All vectors, one row per window (in a memory map at ``spill`` when
        given): kept ones as ``old`` has them, the others new."""
        shape = (len(self.old_windows), dimension)
        if spill is None or not self.old_windows:
            out = np.empty(shape, dtype=np.float32)
        else:
            out = np.lib.format.open_memmap(spill, mode="w+", dtype=np.float32, shape=shape)
        old_windows = np.asarray(self.old_windows, dtype=np.int64)
        kept = np.flatnonzero(old_windows >= 0)
        if len(kept) and old is not None:
            for at in range(0, len(kept), 65_536):
                part = kept[at : at + 65_536]
                out[part] = old.vectors[old_windows[part]]
        out[old_windows < 0] = self.new_vectors(dimension)
        return out

    def window_table(self) -> np.ndarray:
        return np.asarray(self.windows, dtype=np.int32).reshape(-1, 3)


def _note_entry(note: Note, n_chunks: int) -> dict[str, Any]:
    entry = {"sha256": note.sha256, "size": note.size, "mtime_ns": note.mtime_ns, "chunks": n_chunks}
    reader = reader_version(note.source)
    if reader:  # Markdown entries stay as they were, so existing indexes stay valid
        entry["reader"] = reader
    return entry


def _skipped_entries(corpus_dir: Path, skipped: list[tuple[str, str]]) -> dict[str, Any]:
    """Files reindex passed over, remembered so that status does not report
    them as new notes forever. Files behind a symlink out of the corpus are
    neither read nor hashed; a name that is not UTF-8 is remembered by its
    printable form (it is never listed as a candidate again anyway)."""
    entries = {}
    for rel, reason in skipped:
        path = Path(corpus_dir) / rel
        digest = None
        try:
            if reason == OUTSIDE:
                stat = path.lstat()
            else:
                try:
                    data, stat = read_corpus_file(corpus_dir, rel, MAX_NOTE_BYTES)
                    digest = content_hash(data)
                except (OSError, ValueError):
                    try:
                        stat = path.stat()
                    except OSError:
                        stat = path.lstat()  # a symlink loop
        except OSError:  # gone, or named by its printable form (not UTF-8)
            entries[rel] = {"size": -1, "mtime_ns": -1, "sha256": None, "reason": reason}
            continue
        entries[rel] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest, "reason": reason}
    return entries


def _same_skipped(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether the skipped files are the same ones, unchanged (else the
    manifest is rewritten, so that status does not see them as changed)."""
    if old.keys() != new.keys():
        return False
    for rel, entry in new.items():
        was = old[rel]
        if was.get("sha256") is not None and was.get("sha256") == entry["sha256"]:
            continue
        if (was.get("size"), was.get("mtime_ns")) != (entry["size"], entry["mtime_ns"]):
            return False
    return True
