"""Whether an index is up to date, and what to do when it is not.

An index is stale when its format is older than this dsqa's, when it was
built with another model or other chunking settings, or calibrated with other
confidence settings (all recorded in its manifest, see :func:`model_identity`
and :func:`chunking_identity`), or when
notes were added, changed or removed since (:func:`corpus_diff`). An index
built from another notes folder is never stale: it is not this folder's at
all (:func:`check_corpus`).

Here too the decisions that follow. A reindex makes them once, in its
:func:`plan` (a :class:`ReindexPlan`: which generation's chunks and vectors
it reuses, or why none, why it writes even if no note changed, whether the
refusal calibration may be kept); an engine asks whether to reindex before
answering (:func:`reindex_first`), and whether it may answer from a stale
index it could not update (:func:`answerable_as_is`). Building the index is
:mod:`dsqa.build.reindex`; the reports' wording is :mod:`dsqa.build.report`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import paths, storage
from ..encoders import Embedder
from ..errors import (
    CorpusMismatchError,
    IndexCorruptError,
    IndexMissingError,
    StaleIndexError,
)
from ..query.calibration import CALIBRATION_VERSION
from ..settings import CONFIDENCE_FIELDS, Settings, default_index
from ..sources.formats import reader_version
from ..sources.loading import content_hash
from ..sources.reading import MAX_NOTE_BYTES, read_corpus_file
from ..sources.walk import iter_note_paths
from .chunking import CHUNKER_VERSION


def model_identity(embedder: Embedder) -> dict[str, Any]:
    """The model an index is built with, as its manifest records it: an
    index of another model is stale, and its vectors are never reused."""
    return {"name": embedder.name, "dimension": embedder.dimension, "max_tokens": embedder.max_tokens}


#: How a sentence window's vector is made (see
#: :class:`dsqa.build.reindex._Build`); recorded with the chunking settings, so an
#: index whose window vectors were made another way is stale. The lines of a
#: code block or a table share one window, the block's text
#: (:func:`dsqa.sources.sentences.sentence_windows`).
WINDOW_VECTORS = "sentence-mean+block"


def chunking_identity(settings: Settings) -> dict[str, Any]:
    """How the index is built, recorded in the manifest: an index built
    another way is stale. Only a changed refusal calibration (its version,
    or the confidence settings it is measured with: ``Settings.confidence``)
    leaves the vectors reusable (see :func:`reuse_problem`)."""
    return {
        **settings.chunking(),
        "chunker_version": CHUNKER_VERSION,
        "window_vectors": WINDOW_VECTORS,
        "refusal_calibration": CALIBRATION_VERSION,
        **settings.confidence(),
    }


#: The entries of :func:`chunking_identity` that only the refusal
#: calibration depends on: a change to one recalibrates the index and reuses
#: its vectors.
CALIBRATION_ENTRIES = ("refusal_calibration", *CONFIDENCE_FIELDS)


def _vector_entries(identity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in identity.items() if k not in CALIBRATION_ENTRIES}


def _calibration_entries(identity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in identity.items() if k in CALIBRATION_ENTRIES}


def model_change(built: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """How the model an index was built with differs from the wanted one,
    or ``None`` when they are the same."""
    if built == wanted:
        return None

    def show(m: dict[str, Any]) -> str:
        return f"{m.get('name')} ({m.get('dimension')}-d, {m.get('max_tokens')} tokens)"

    if built.get("name") == wanted.get("name"):
        return f"built with model {show(built)}, settings use {show(wanted)}"
    return f"built with model {built.get('name')}, settings use {wanted.get('name')}"


def chunking_change(built: dict[str, Any], wanted: dict[str, Any], what: str = "chunking settings") -> str | None:
    """Which chunking settings differ (``chunk_tokens 200 -> 80``), or ``None``."""
    if built == wanted:
        return None
    keys = list(wanted) + [k for k in built if k not in wanted]
    diffs = [f"{k} {built.get(k, 'unset')} -> {wanted.get(k, 'unset')}" for k in keys if built.get(k) != wanted.get(k)]
    return f"{what} differ (" + ", ".join(diffs) + ")"


def calibration_change(built: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """Which of the settings the refusal calibration depends on differ
    between two :func:`chunking_identity` records
    (``unknown_term_penalty 0.9 -> 0.5``), or ``None``."""
    return chunking_change(_calibration_entries(built), _calibration_entries(wanted), "refusal calibration settings")


def same_folder(a: Path, b: Path) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def reindex_command(settings: Settings) -> str:
    """The ``dsqa reindex`` command that builds or updates the index of these
    settings, with every flag that differs from the defaults (``--corpus``,
    then ``--index`` when it is not that corpus's default index, ``--model``),
    so that following it touches the same folders."""
    flags = []
    if not same_folder(settings.corpus_dir, Settings().corpus_dir):
        flags.append(f"--corpus {shlex.quote(str(settings.corpus_dir))}")
    if not same_folder(settings.index_dir, default_index(settings.corpus_dir)):
        flags.append(f"--index {shlex.quote(str(settings.index_dir))}")
    if settings.model != Settings.__dataclass_fields__["model"].default:
        flags.append(f"--model {shlex.quote(settings.model)}")
    return " ".join(["dsqa reindex", *flags])


def check_corpus(settings: Settings, manifest: dict[str, Any]) -> None:
    """Raise ``CorpusMismatchError`` when the index was built from another
    notes folder than ``settings.corpus_dir``: such an index is never
    updated, rebuilt or read for this folder. An index from before dsqa
    recorded its folder is taken as this folder's."""
    record = manifest.get("corpus")
    if record is None:
        return
    if not isinstance(record, str) or not record:
        raise IndexCorruptError(Path(settings.index_dir) / storage.MANIFEST, "the corpus entry is not a folder")
    if paths.same_corpus(record, settings.index_dir, settings.corpus_dir):
        return
    built_from = paths.recorded_corpus(record, settings.index_dir)
    named = f"the demo notes ({built_from})" if built_from == paths.bundled_corpus().resolve() else str(built_from)
    own = settings.with_(index_dir=paths.index_dir_for(settings.corpus_dir))
    if same_folder(own.index_dir, settings.index_dir):
        fix = f"move it away, then run `{reindex_command(own)}`"
    else:
        fix = f"build this folder's own with `{reindex_command(own)}` (and ask with the same flags)"
    raise CorpusMismatchError(
        f"the index in {settings.index_dir} belongs to {named}, not to {Path(settings.corpus_dir).resolve()}, "
        f"and is never rewritten with other notes: {fix}"
    )


def reusable_entry(source: str, entry: dict[str, Any]) -> bool:
    """Whether a manifest entry's chunks came from the reader this dsqa has
    for the note (a new PDF extractor re-chunks the PDFs, and only them)."""
    try:
        return entry.get("reader", "") == reader_version(source)
    except ValueError:  # a note of a format this dsqa no longer reads
        return False


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


def _same_file(corpus_dir: Path, rel: str, stat: os.stat_result, entry: dict[str, Any] | None) -> bool:
    if entry is None:
        return False
    if entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return True
    if entry.get("sha256") is None or entry.get("size") != stat.st_size:
        return False
    try:
        return content_hash(read_corpus_file(corpus_dir, rel, MAX_NOTE_BYTES)[0]) == entry["sha256"]
    except (OSError, ValueError):
        return False


def corpus_diff(corpus_dir: Path, manifest: dict[str, Any], *, cross_mounts: bool = False) -> CorpusDiff:
    """Compare the corpus with the manifest, cheaply: a note whose size and
    mtime are as recorded is taken as unchanged; otherwise its bytes are
    hashed (a fresh clone changes every mtime but no content)."""
    known: dict[str, Any] = manifest["notes"]
    skipped: dict[str, Any] = manifest.get("skipped", {})
    seen: set[str] = set()
    added, changed = [], []
    if not Path(corpus_dir).is_dir():
        return CorpusDiff([], [], sorted(known))
    for path, rel in iter_note_paths(Path(corpus_dir), cross_mounts=cross_mounts):
        try:
            stat = path.stat()
        except OSError:
            continue
        entry = known.get(rel)
        if entry is None:
            if not _same_file(corpus_dir, rel, stat, skipped.get(rel)):
                added.append(rel)
            continue
        seen.add(rel)
        if not _same_file(corpus_dir, rel, stat, entry) or not reusable_entry(rel, entry):
            changed.append(rel)
    removed = sorted(s for s in known if s not in seen)
    return CorpusDiff(added, changed, removed)


def stale_reasons(
    settings: Settings, manifest: dict[str, Any], embedder: Embedder, diff: CorpusDiff | None = None
) -> list[str]:
    """Why the index of ``manifest`` is stale for these settings, one
    reason each (an older format, another model, other chunking, the notes
    changed); empty when it is up to date. ``diff`` is the corpus diff when
    the caller has it already."""
    reasons = []
    if manifest["format"] != storage.FORMAT_VERSION:
        reasons.append(f"index format {manifest['format']}, this dsqa uses {storage.FORMAT_VERSION}")
    wanted = chunking_identity(settings)
    for why in (
        model_change(manifest["model"], model_identity(embedder)),
        chunking_change(_vector_entries(manifest["chunking"]), _vector_entries(wanted)),
        calibration_change(manifest["chunking"], wanted),
    ):
        if why:
            reasons.append(why)
    diff = diff or corpus_diff(settings.corpus_dir, manifest, cross_mounts=settings.cross_mounts)
    if not diff.clean:
        reasons.append(str(diff))
    return reasons


def unreadable_format(manifest: dict[str, Any]) -> str | None:
    """Why this dsqa cannot read an index of this format (one older than it
    still reads), or ``None``."""
    if manifest["format"] in storage.READABLE_FORMATS:
        return None
    return f"the index has format {manifest['format']}, this dsqa writes {storage.FORMAT_VERSION}"


def reuse_problem(manifest: dict[str, Any], settings: Settings, embedder: Embedder) -> str | None:
    """Why a reindex cannot reuse the vectors of the index of ``manifest``,
    or ``None`` when it can. Vectors of two models are never mixed, and
    other chunking makes other chunks; a changed calibration (its version,
    or the confidence settings) alone needs no new vectors (the calibration
    is redone at every write)."""
    why = model_change(manifest["model"], model_identity(embedder))
    if why is not None:
        return why
    return chunking_change(_vector_entries(manifest["chunking"]), _vector_entries(chunking_identity(settings)))


def rewrite_reason(manifest: dict[str, Any], settings: Settings) -> str:
    """Why a reindex writes the index of ``manifest`` anew although no note
    changed: an older format, no record of its notes folder, or an outdated
    refusal calibration; ``""`` when nothing asks for a write."""
    if manifest["format"] != storage.FORMAT_VERSION:
        return f"the index had format {manifest['format']}, this dsqa writes {storage.FORMAT_VERSION}"
    if "corpus" not in manifest:
        return "the index did not record its notes folder"
    if manifest["chunking"] != chunking_identity(settings) or "calibration" not in manifest:
        return "the refusal calibration was outdated"
    return ""


def reindex_first(settings: Settings, problems: list[str], unfixable: list[str] | None) -> bool:
    """Whether an engine about to answer reindexes first: when the index is
    stale (``problems``, from :func:`stale_reasons`), unless a reindex
    already failed to fix these very problems (``unfixable``: not retried,
    nor warned about again, until something else changes). With
    ``auto_reindex`` off, a stale index raises ``StaleIndexError`` naming
    the command that updates it."""
    if not problems or problems == unfixable:
        return False
    if not settings.auto_reindex:
        raise StaleIndexError(
            f"index in {settings.index_dir} is stale: {'; '.join(problems)}; "
            f"run `{reindex_command(settings)}` to update it"
        )
    return True


def answerable_as_is(manifest: dict[str, Any], embedder: Embedder) -> bool:
    """Whether a stale index that could not be updated (locked, unwritable,
    its notes folder gone) may still answer: it is there and consistent,
    and answering from it beats failing, unless its vectors are another
    model's or its format is one this dsqa does not read."""
    return model_change(manifest["model"], model_identity(embedder)) is None and unreadable_format(manifest) is None


#: Why a reindex reuses nothing of an index it could not read.
UNUSABLE = "the old index was unusable"


@dataclass(frozen=True)
class ReindexPlan:
    """What a reindex does with the index it finds, decided once from the
    live generation's manifest (:func:`plan`) before a note is read, then
    carried out by :func:`dsqa.build.reindex.reindex`."""

    #: The live generation when the reindex planned (``None``: no index, or
    #: its ``CURRENT`` unreadable); a writer that switched it since makes the
    #: plan out of date.
    generation: Path | None
    #: Its manifest, when its chunks and vectors are reused; ``None``: every
    #: chunk is made and embedded anew.
    manifest: dict[str, Any] | None
    #: Why nothing is reused (``""``: a first build, ``full``, or reusing).
    reason: str = ""
    #: Why the index is written even if no note changed (``""``: nothing
    #: asks for a write): see :func:`rewrite_reason`.
    rewrite: str = ""
    #: The notes whose chunks are taken whole when their bytes are unchanged:
    #: note -> the SHA-256 it had, for the notes read by the reader this dsqa
    #: has for them (:func:`reusable_entry`).
    reusable: Mapping[str, str] = field(default_factory=dict)
    #: Whether the reused generation's refusal calibration may be kept (it is
    #: of this dsqa's calibration version, measured with these confidence
    #: settings), if few enough chunks changed.
    keep_calibration: bool = False
    #: The model and the chunking the new generation records.
    model: dict[str, Any] = field(default_factory=dict)
    chunking: dict[str, Any] = field(default_factory=dict)
    #: What made the old index unusable (reason :data:`UNUSABLE`), which the
    #: reindex warns about when it carries the plan out.
    problem: str = ""

    def from_scratch(self, problem: str) -> ReindexPlan:
        """This plan reusing nothing, because the old index turned out
        unusable (``problem``)."""
        return ReindexPlan(self.generation, None, UNUSABLE, model=self.model, chunking=self.chunking, problem=problem)


def plan(settings: Settings, embedder: Embedder, *, full: bool = False) -> ReindexPlan:
    """The :class:`ReindexPlan` of a reindex of these settings with this
    model: reads ``CURRENT`` and the live manifest once. Raises
    ``CorpusMismatchError`` when the index belongs to another notes folder
    (``full`` included: another folder's index is never rebuilt either).
    An index of a format this dsqa cannot read, or of another model or
    chunking, is rebuilt; one whose manifest cannot be read is rebuilt too,
    (:data:`UNUSABLE`) unless ``full`` asked for a rebuild anyway."""
    model, chunking = model_identity(embedder), chunking_identity(settings)
    generation = None
    try:
        generation = storage.current_generation(settings.index_dir)
        manifest = storage.read_manifest(settings.index_dir, generation)
    except IndexMissingError:  # nothing to protect: a new index
        return ReindexPlan(None, None, model=model, chunking=chunking)
    except IndexCorruptError as exc:  # nothing to protect: an index rebuilt from scratch
        scratch = ReindexPlan(generation, None, model=model, chunking=chunking)
        return scratch if full else scratch.from_scratch(str(exc))
    check_corpus(settings, manifest)
    # Never mix vectors of two models: another model means re-embedding all.
    why = "" if full else unreadable_format(manifest) or reuse_problem(manifest, settings, embedder) or ""
    if full or why:
        return ReindexPlan(generation, None, why, model=model, chunking=chunking)
    calibration = manifest.get("calibration") or {}
    return ReindexPlan(
        generation,
        manifest,
        rewrite=rewrite_reason(manifest, settings),
        reusable={src: e["sha256"] for src, e in manifest["notes"].items() if reusable_entry(src, e)},
        keep_calibration=bool(calibration)
        and calibration.get("version") == CALIBRATION_VERSION
        and calibration_change(manifest["chunking"], chunking) is None,
        model=model,
        chunking=chunking,
    )
