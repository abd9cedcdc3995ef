"""Building the index from the corpus, and telling whether it is up to date.

Reindexing is incremental by default: notes whose bytes did not change keep
their chunks, and any chunk whose embedded text is unchanged keeps its vector
(looked up by the chunk's key), so editing one paragraph re-embeds one or two
chunks. ``full=True`` rebuilds everything. Vectors of two models are never
mixed: old vectors are reused only when the model identity matches.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from . import ann, store
from ._version import __version__
from .chunking import CHUNKER_VERSION, Chunk, Chunker
from .embedding import Embedder, get_embedder
from .errors import DsqaError, IndexCorruptError, IndexMissingError, LockedError
from .lexical import LexicalIndex, lexical_text
from .sentences import windows
from .notes import MAX_NOTE_BYTES, Note, content_hash, iter_note_paths, load_corpus
from .settings import Settings

log = logging.getLogger("dsqa")


def model_identity(embedder: Embedder) -> dict[str, Any]:
    return {"name": embedder.name, "dimension": embedder.dimension, "max_tokens": embedder.max_tokens}


def chunking_identity(settings: Settings) -> dict[str, Any]:
    return {**settings.chunking(), "chunker_version": CHUNKER_VERSION}


@dataclass
class ReindexReport:
    unchanged: list[str] = field(default_factory=list)
    added: dict[str, int] = field(default_factory=dict)  # note -> chunks
    changed: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0
    reused: int = 0
    total_chunks: int = 0
    full: bool = False
    wrote: bool = False
    seconds: float = 0.0

    def __str__(self) -> str:
        if self.full:
            head = f"full rebuild: {len(self.added)} notes, {self.total_chunks} chunks embedded"
        elif not self.wrote:
            head = f"index up to date: {len(self.unchanged)} notes unchanged, {self.total_chunks} chunks"
        else:
            changed_chunks = sum(self.changed.values())
            parts = [f"{len(self.unchanged)} notes unchanged"]
            if self.added:
                parts.append(f"{len(self.added)} added ({sum(self.added.values())} chunks)")
            if self.changed:
                parts.append(
                    f"{len(self.changed)} changed ({changed_chunks - self.reused} chunks re-embedded, "
                    f"{self.reused} reused)"
                )
            if self.removed:
                parts.append(f"{len(self.removed)} removed ({sum(self.removed.values())} chunks)")
            if not (self.added or self.changed or self.removed):
                parts.append(f"{self.embedded} chunks re-embedded")
            head = ", ".join(parts)
        tail = f" in {self.seconds:.1f} s" if self.wrote else ""
        skipped = f"; {len(self.skipped)} files skipped" if self.skipped else ""
        return head + tail + skipped

    def to_dict(self) -> dict[str, Any]:
        return {
            "unchanged": self.unchanged,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "skipped": [{"note": n, "reason": r} for n, r in self.skipped],
            "embedded": self.embedded,
            "reused": self.reused,
            "total_chunks": self.total_chunks,
            "full": self.full,
            "wrote": self.wrote,
            "seconds": round(self.seconds, 3),
        }


def _lock(index_dir: Path) -> FileLock:
    return FileLock(str(Path(index_dir) / ".lock"), timeout=0)


def _chunk_record(chunk: Chunk) -> dict[str, Any]:
    return {
        "source": chunk.source,
        "heading": chunk.heading,
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "start_char": chunk.start_char,
        "end_char": chunk.end_char,
        "text": chunk.text,
        "key": chunk.key,
    }


def _load_previous(settings: Settings, embedder: Embedder) -> store.StoredIndex | None:
    """The current index if its vectors can be reused, else ``None``."""
    try:
        if store.read_manifest(settings.index_dir)["format"] != store.FORMAT_VERSION:
            log.info("index written by another dsqa version: rebuilding it")
            return None
        old = store.load(settings.index_dir)
    except IndexMissingError:
        return None
    except IndexCorruptError as exc:
        log.warning("rebuilding from scratch: %s", exc)
        return None
    if old.manifest["model"] != model_identity(embedder):
        log.info("model changed (%s -> %s): re-embedding everything", old.manifest["model"]["name"], embedder.name)
        return None
    return old


def reindex(settings: Settings, *, full: bool = False, progress: bool = False) -> ReindexReport:
    """Bring the index in ``settings.index_dir`` up to date with the corpus."""
    started = time.perf_counter()
    embedder = get_embedder(settings.model)
    index_dir = settings.index_dir
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock(index_dir)
        lock.acquire()
    except Timeout:
        raise LockedError(f"another dsqa reindex is writing {index_dir}; try again when it has finished") from None
    except OSError as exc:
        raise DsqaError(f"cannot write the index folder {index_dir}: {exc.strerror or exc}") from None
    try:
        report = _reindex_locked(settings, embedder, full=full, progress=progress)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    return report


def _reindex_locked(settings: Settings, embedder: Embedder, *, full: bool, progress: bool) -> ReindexReport:
    corpus = load_corpus(settings.corpus_dir)
    old = None if full else _load_previous(settings, embedder)
    chunking = chunking_identity(settings)
    report = ReindexReport(full=old is None, skipped=corpus.skipped)

    old_notes: dict[str, Any] = old.manifest["notes"] if old else {}
    same_chunking = old is not None and old.manifest["chunking"] == chunking
    old_rows: dict[str, list[int]] = {}
    key_to_row: dict[str, int] = {}
    if old is not None:
        for row, c in enumerate(old.chunks):
            old_rows.setdefault(c["source"], []).append(row)
            if same_chunking:  # vectors depend on the window settings too
                key_to_row.setdefault(c["key"], row)

    chunker = Chunker(
        embedder.count_tokens,
        embedder.max_tokens,
        settings.chunk_tokens,
        settings.chunk_overlap_tokens,
        settings.embed_headings,
    )
    build = _Build()
    notes_manifest: dict[str, Any] = {}
    for note in corpus.notes:
        previous = old_notes.get(note.source)
        if previous and same_chunking and previous["sha256"] == note.sha256:
            rows = old_rows.get(note.source, [])
            for r in rows:
                build.reuse(old, r)
            report.unchanged.append(note.source)
            n_chunks = len(rows)
        else:
            chunks = chunker.chunk(note)
            reused_here = 0
            for chunk in chunks:
                row = key_to_row.get(chunk.key)
                if row is not None:
                    build.reuse(old, row, _chunk_record(chunk))
                    reused_here += 1
                else:
                    build.add(chunk, settings.window_sentences)
            n_chunks = len(chunks)
            if previous is None:
                report.added[note.source] = n_chunks
            else:
                report.changed[note.source] = n_chunks
                report.reused += reused_here
        notes_manifest[note.source] = _note_entry(settings.corpus_dir, note, n_chunks)
    report.removed = {s: len(old_rows.get(s, [])) for s in old_notes if s not in notes_manifest}
    report.total_chunks = len(build.records)

    skipped_manifest = _skipped_entries(settings.corpus_dir, corpus.skipped)
    if old is not None and same_chunking and not (report.added or report.changed or report.removed):
        if old.manifest.get("skipped", {}).keys() == skipped_manifest.keys():
            # Content is the same; differing mtimes (a fresh clone) are not worth a write.
            return report
    build.embed(embedder, progress)
    report.embedded = build.new_chunks
    matrix = build.matrix(embedder.dimension)
    manifest = {
        "format": store.FORMAT_VERSION,
        "dsqa_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model_identity(embedder),
        "chunking": chunking,
        "index_type": "flat-ip",
        "chunk_count": len(build.records),
        "vector_count": len(matrix),
        "notes": notes_manifest,
        "skipped": skipped_manifest,
    }
    lexical = LexicalIndex.build([lexical_text(c["heading"], c["text"]) for c in build.records])
    try:
        store.write(
            settings.index_dir, manifest, build.records, matrix, build.window_table(), ann.build_index(matrix), lexical
        )
        store.collect_garbage(settings.index_dir)
    except OSError as exc:
        raise DsqaError(f"cannot write the index folder {settings.index_dir}: {exc.strerror or exc}") from None
    report.wrote = True
    return report


class _Build:
    """The new generation as it is assembled: chunk records, and per chunk its
    window vectors, either reused from the old index or still to embed."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.windows: list[tuple[int, int, int]] = []
        self.vectors: list[np.ndarray | None] = []
        self.to_embed: list[tuple[int, str]] = []
        self.new_chunks = 0

    def reuse(self, old: store.StoredIndex, old_row: int, record: dict[str, Any] | None = None) -> None:
        row = len(self.records)
        self.records.append(record if record is not None else old.chunks[old_row])
        for w in old.window_rows(old_row):
            self.windows.append((row, int(old.windows[w, 1]), int(old.windows[w, 2])))
            self.vectors.append(old.vectors[w])

    def add(self, chunk: Chunk, window_sentences: int) -> None:
        row = len(self.records)
        self.records.append(_chunk_record(chunk))
        self.new_chunks += 1
        # The whole chunk (heading included) first, then one window per
        # quotable sentence: retrieval scores a chunk by both.
        specs = [(-1, -1, chunk.embed_text), *windows(chunk.text, window_sentences)]
        for start, end, text in specs:
            self.windows.append((row, start, end))
            self.to_embed.append((len(self.vectors), text))
            self.vectors.append(None)

    def embed(self, embedder: Embedder, progress: bool) -> None:
        if self.to_embed:
            fresh = embedder.embed([t for _, t in self.to_embed], progress=progress)
            for (slot, _), vec in zip(self.to_embed, fresh):
                self.vectors[slot] = vec

    def matrix(self, dimension: int) -> np.ndarray:
        if not self.vectors:
            return np.zeros((0, dimension), np.float32)
        return np.vstack(self.vectors).astype(np.float32)

    def window_table(self) -> np.ndarray:
        return np.asarray(self.windows, dtype=np.int32).reshape(-1, 3)


def _note_entry(corpus_dir: Path, note: Note, n_chunks: int) -> dict[str, Any]:
    stat = (Path(corpus_dir) / note.source).stat()
    return {"sha256": note.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "chunks": n_chunks}


def _skipped_entries(corpus_dir: Path, skipped: list[tuple[str, str]]) -> dict[str, Any]:
    """Files reindex passed over, remembered so that status does not report
    them as new notes forever."""
    entries = {}
    for rel, reason in skipped:
        path = Path(corpus_dir) / rel
        try:
            stat = path.stat()
            digest = content_hash(path.read_bytes()) if stat.st_size <= MAX_NOTE_BYTES else None
        except OSError:
            continue
        entries[rel] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest, "reason": reason}
    return entries


@dataclass
class CorpusDiff:
    """How the corpus differs from what the index was built from."""

    added: list[str]
    changed: list[str]
    removed: list[str]

    @property
    def clean(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def __str__(self) -> str:
        parts = [f"{len(v)} {k} ({', '.join(v[:3])}{', …' if len(v) > 3 else ''})" for k, v in
                 (("added", self.added), ("changed", self.changed), ("removed", self.removed)) if v]
        return "notes " + "; ".join(parts) if parts else "corpus unchanged"


def _same_file(path: Path, stat: os.stat_result, entry: dict[str, Any] | None) -> bool:
    if entry is None:
        return False
    if entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return True
    if entry.get("sha256") is None or entry.get("size") != stat.st_size:
        return False
    try:
        return content_hash(path.read_bytes()) == entry["sha256"]
    except OSError:
        return False


def corpus_diff(corpus_dir: Path, manifest: dict[str, Any]) -> CorpusDiff:
    """Compare the corpus with the manifest, cheaply: a note whose size and
    mtime are as recorded is taken as unchanged; otherwise its bytes are
    hashed (a fresh clone changes every mtime but no content)."""
    known: dict[str, Any] = manifest["notes"]
    skipped: dict[str, Any] = manifest.get("skipped", {})
    seen: set[str] = set()
    added, changed = [], []
    if not Path(corpus_dir).is_dir():
        return CorpusDiff([], [], sorted(known))
    for path, rel in iter_note_paths(Path(corpus_dir)):
        try:
            stat = path.stat()
        except OSError:
            continue
        entry = known.get(rel)
        if entry is None:
            if not _same_file(path, stat, skipped.get(rel)):
                added.append(rel)
            continue
        seen.add(rel)
        if not _same_file(path, stat, entry):
            changed.append(rel)
    removed = sorted(s for s in known if s not in seen)
    return CorpusDiff(added, changed, removed)
