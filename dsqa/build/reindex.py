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
An unchanged note's chunk records are copied to the new generation as the
old file's bytes and its windows as arrays (:meth:`_Build.copy`), never
parsed one by one. ``full=True`` rebuilds everything. Vectors of two models are never
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
from ..sources.loading import (
    CorpusReading,
    CorpusStream,
    Note,
    content_hash,
    open_corpus,
)
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
            # Records stay in their file (read as asked for, see ChunkFile): an
            # unchanged note's are copied as bytes, never parsed.
            return storage.load(settings.index_dir, plan.generation, plan.manifest), plan
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
    # Notes whose chunks can be reused need no text: a PDF is not re-read.
    known = dict(plan.reusable)
    # Nor is a note that took the whole time or memory bound last time, unchanged.
    skipped = {src: (e.get("sha256"), e.get("reason", "")) for src, e in (old.manifest.get("skipped", {}) if old else {}).items()}
    return open_corpus(settings.corpus_dir, CorpusReading.of(settings), known=known, known_skipped=skipped)


def _assemble(
    settings: Settings,
    embedder: Embedder,
    old: storage.StoredIndex,
    plan: ReindexPlan,
    notes: list[Note],
    report: ReindexReport,
) -> tuple[_Build, dict[str, Any]]:
    """The new generation's chunks and vectors, and its manifest's notes
    entry: an unchanged note's chunks are taken whole from ``old`` (rows
    copied, records never parsed), a new or changed note is chunked anew,
    its chunks keeping their old vectors where their keys are known.
    ``report`` counts what was done."""
    old_notes: dict[str, Any] = old.manifest["notes"]
    old_rows = _note_rows(old)
    old_keys = _OldKeys(old)
    chunker = chunker_for(settings, embedder)
    build = _Build()
    notes_manifest: dict[str, Any] = {}
    for note in notes:
        previous = old_notes.get(note.source)
        if previous and plan.reusable.get(note.source) == note.sha256:
            runs = old_rows.get(note.source, [])
            for start, end in runs:
                build.copy(old, start, end)
            report.unchanged.append(note.source)
            n_chunks = sum(end - start for start, end in runs)
        else:
            chunks = chunker.chunk(note)
            reused_here = build.add_chunks(chunks, old, old_keys, settings.window_sentences)
            n_chunks = len(chunks)
            if previous is None:
                report.added[note.source] = n_chunks
            else:
                report.changed[note.source] = n_chunks
                report.reused += reused_here
        notes_manifest[note.source] = _note_entry(note, n_chunks)
    report.removed = {
        s: sum(end - start for start, end in old_rows.get(s, [])) for s in old_notes if s not in notes_manifest
    }
    report.total_chunks = build.chunk_count
    return build, notes_manifest


def _note_rows(old: storage.StoredIndex) -> dict[str, list[tuple[int, int]]]:
    """Each note's rows in ``old``, as runs ``(start, end)``. Every writer
    writes a note's records together, in the order of the manifest's notes,
    as many as it counts; that is checked at the first and last record of
    each note (a few records parsed, not all of them). An index that does
    not hold it is read record by record."""
    rows: dict[str, list[tuple[int, int]]] = {}
    at = 0
    for source, entry in old.manifest["notes"].items():
        n = int(entry.get("chunks", 0))
        if n:
            rows[source] = [(at, at + n)]
        at += n
    chunks = old.chunks
    if at == len(chunks) and all(chunks[a].source == s == chunks[b - 1].source for s, [(a, b)] in rows.items()):
        return rows
    rows = {}
    for row, c in enumerate(chunks):
        runs = rows.setdefault(c.source, [])
        if runs and runs[-1][1] == row:
            runs[-1] = (runs[-1][0], row + 1)
        else:
            runs.append((row, row + 1))
    return rows


class _OldKeys:
    """The old generation's first row of each chunk key, found when first
    asked for (only a new or changed note asks), from the bytes of its
    chunk file when it has one."""

    def __init__(self, old: storage.StoredIndex):
        self.old = old
        self._rows: dict[str, int] | None = None

    def get(self, key: str) -> int | None:
        if self._rows is None:
            chunks = self.old.chunks
            if isinstance(chunks, storage.ChunkFile):
                self._rows = chunks.key_rows()
            else:
                self._rows = {}
                for row, c in enumerate(chunks):
                    self._rows.setdefault(c.key, row)
        found = self._rows.get(key)
        return found if found is not None and self.old.chunks[found].key == key else None


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
    manifest = _manifest(settings, plan, faiss_index, rows, build.chunk_count, notes=notes, skipped=skipped)
    windows = build.window_table()
    try:
        writer = storage.GenerationWriter(settings.index_dir)
    except OSError as exc:
        raise _write_error(settings.index_dir, exc) from None
    try:
        build.write_records(writer, old)
        # The refusal scale of this corpus, measured on the new index before
        # it is made live (see dsqa.query.calibration), or kept (_calibration).
        built = storage.StoredIndex(
            writer.tmp, manifest, writer.chunks(), ann.StoredVectors(faiss_index, rows), windows, faiss_index, lexical, rows
        )
        manifest["calibration"] = _calibration(settings, embedder, old, plan, built, report)
    except BaseException as exc:
        writer.abort()
        if isinstance(exc, OSError):
            raise _write_error(settings.index_dir, exc) from None
        raise
    try:
        writer.finish(manifest, windows, faiss_index, lexical, rows)
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
                    chunk.text, settings.window_sentences, chunk.sentences, chunk.contexts, chunk.titles, chunk.units
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
        old_windows = build.old_window_array()
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
    if old is not None and _updatable(old) and old.lexical.counts is not None:
        return old.lexical.updated(build.old_chunk_array(), [lexical_text(c.heading, c.text) for c in build.new_records()])
    return LexicalIndex.build([lexical_text(c.heading, c.text) for c in build.all_records(old)])


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

    An unchanged note's rows are kept as a run of the old generation's rows
    (:meth:`copy`): their records are copied as bytes when written and their
    windows as arrays, so what a write does for them does not depend on how
    many there are in Python steps.

    A window's vector is the normalised mean of its sentences' vectors, not an
    embedding of the window's text: each sentence is then embedded once
    instead of once per window it sits in (three times with 3-sentence
    windows), which cuts the text the encoder reads substantially, at the
    same dev-set quality within a question or two (see
    :data:`dsqa.build.freshness.WINDOW_VECTORS`).
    """

    def __init__(self) -> None:
        #: The records in row order: runs of the old generation's rows, or a
        #: record of its own with its row.
        self.parts: list[range | tuple[int, ChunkRecord]] = []
        self.chunk_count = 0
        #: Per window: chunk row, sentence start and end (flat, three per window).
        self.windows = array("i")
        #: Per window, the old generation's window whose vector it keeps, or
        #: -1: to embed.
        self.old_windows = array("q")
        #: Per chunk, the old generation's chunk with the same BM25 terms, or -1.
        self.old_chunks = array("q")
        #: Vector slots still to fill: the whole chunk's text, or the
        #: sentences whose vectors are averaged.
        self.pending_chunks: list[tuple[int, str]] = []
        self.pending_windows: list[tuple[int, list[str]]] = []
        self.new_chunks = 0
        #: The new texts' vectors, one row per distinct text (``row_of``).
        self.embedded: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self.row_of: dict[str, int] = {}
        self._distinct: set[str] = set()

    def _record(self, record: ChunkRecord) -> int:
        row = self.chunk_count
        self.parts.append((row, record))
        self.chunk_count += 1
        return row

    def copy(self, old: storage.StoredIndex, start: int, end: int) -> None:
        """Keep rows ``start:end`` of ``old`` as they are: records, windows,
        vectors and BM25 terms."""
        if start >= end:
            return
        row = self.chunk_count
        last_part = self.parts[-1] if self.parts else None
        if isinstance(last_part, range) and last_part.stop == start:
            self.parts[-1] = range(last_part.start, end)
        else:
            self.parts.append(range(start, end))
        first, last = int(old.offsets[start]), int(old.offsets[end])
        windows = np.array(old.windows[first:last], dtype=np.int32)
        windows[:, 0] += row - start
        self.windows.frombytes(windows.tobytes())
        self.old_windows.frombytes(np.arange(first, last, dtype=np.int64).tobytes())
        self.old_chunks.frombytes(np.arange(start, end, dtype=np.int64).tobytes())
        self.chunk_count += end - start

    def reuse(self, old: storage.StoredIndex, old_row: int, record: ChunkRecord) -> None:
        """A new chunk ``record`` that keeps the vectors of ``old``'s row
        ``old_row`` (the same key), and its BM25 terms when they are the same."""
        was = old.chunks[old_row]
        row = self._record(record)
        same_terms = lexical_text(record.heading, record.text) == lexical_text(was.heading, was.text)
        self.old_chunks.append(old_row if same_terms else -1)
        for w in old.window_rows(old_row):
            self.windows.extend((row, int(old.windows[w, 1]), int(old.windows[w, 2])))
            self.old_windows.append(w)

    def add_chunks(self, chunks: list[Chunk], old: storage.StoredIndex, old_keys: _OldKeys, window_sentences: int) -> int:
        """Add a new or changed note's chunks: each one whose key ``old``
        has keeps its vectors, the others are to embed. Returns how many
        kept theirs."""
        reused = 0
        for chunk in chunks:
            row = old_keys.get(chunk.key)
            if row is not None:
                self.reuse(old, row, _chunk_record(chunk))
                reused += 1
            else:
                self.add(chunk, window_sentences)
        return reused

    def add(self, chunk: Chunk, window_sentences: int) -> None:
        row = self._record(_chunk_record(chunk))
        self.old_chunks.append(-1)
        # The whole chunk (heading included) first, then one window per
        # quotable sentence: retrieval scores a chunk by both.
        self.windows.extend((row, -1, -1))
        groups = []
        for start, end, group in sentence_windows(
            chunk.text, window_sentences, chunk.sentences, chunk.contexts, chunk.titles, chunk.units
        ):
            self.windows.extend((row, start, end))
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

    def old_window_array(self) -> np.ndarray:
        return np.frombuffer(self.old_windows, dtype=np.int64).copy()

    def old_chunk_array(self) -> np.ndarray:
        return np.frombuffer(self.old_chunks, dtype=np.int64).copy()

    def new_records(self) -> list[ChunkRecord]:
        """The records whose BM25 terms are new (no old chunk has them), in
        row order: every one of them is a record of its own."""
        old_chunks = self.old_chunk_array()
        return [part[1] for part in self.parts if not isinstance(part, range) and old_chunks[part[0]] < 0]

    def all_records(self, old: storage.StoredIndex | None) -> list[ChunkRecord]:
        out: list[ChunkRecord] = []
        for part in self.parts:
            if isinstance(part, range):
                assert old is not None
                out.extend(old.chunks[r] for r in part)
            else:
                out.append(part[1])
        return out

    def write_records(self, writer: storage.GenerationWriter, old: storage.StoredIndex | None) -> None:
        """Write the records in row order to the new generation: copied runs
        as the old generation's file holds them (see ``ChunkWriter.copy``)."""
        for part in self.parts:
            if isinstance(part, range):
                assert old is not None
                writer.copy_chunks(old.chunks, part.start, part.stop)
            else:
                writer.add_chunks([part[1]])

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
        slots = np.flatnonzero(np.frombuffer(self.old_windows, dtype=np.int64) < 0)
        out = np.empty((len(slots), dimension), dtype=np.float32)
        at = np.searchsorted(slots, [slot for slot, _ in self.pending_chunks])
        for i, (_, text) in zip(at.tolist(), self.pending_chunks, strict=True):
            out[i] = self.embedded[self.row_of[text]]
        at = np.searchsorted(slots, [slot for slot, _ in self.pending_windows])
        for i, (_, group) in zip(at.tolist(), self.pending_windows, strict=True):
            mean = np.mean(self.embedded[[self.row_of[s] for s in group]], axis=0)
            out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return out

    def matrix(self, old: storage.StoredIndex | None, dimension: int, spill: Path | None = None) -> np.ndarray:
        """All vectors, one row per window (in a memory map at ``spill`` when
        given): kept ones as ``old`` has them, the others new."""
        shape = (len(self.old_windows), dimension)
        if spill is None or not self.old_windows:
            out = np.empty(shape, dtype=np.float32)
        else:
            out = np.lib.format.open_memmap(spill, mode="w+", dtype=np.float32, shape=shape)
        old_windows = self.old_window_array()
        kept = np.flatnonzero(old_windows >= 0)
        if len(kept) and old is not None:
            for at in range(0, len(kept), 65_536):
                part = kept[at : at + 65_536]
                out[part] = old.vectors[old_windows[part]]
        out[old_windows < 0] = self.new_vectors(dimension)
        return out

    def window_table(self) -> np.ndarray:
        return np.frombuffer(self.windows, dtype=np.int32).reshape(-1, 3).copy()


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
