"""The two reports a user reads about the index: what a reindex did
(:class:`ReindexReport`) and what ``status`` finds (:class:`IndexStatus`),
with their wording, one line or a few, as the CLI prints them and the page
shows them. Building the index is :mod:`dsqa.build.reindex`; deciding whether it
is up to date is :mod:`dsqa.build.freshness`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def counted(n: int, what: str) -> str:
    """``n`` and ``what``, plural unless ``n`` is one: "1 note", "3 chunks"."""
    return f"{n} {what}" + ("" if n == 1 else "s")


@dataclass
class ReindexReport:
    """What a reindex did, per note; ``str()`` is the one-line summary the
    CLI prints."""

    unchanged: list[str] = field(default_factory=list)
    added: dict[str, int] = field(default_factory=dict)  # note -> chunks
    changed: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: (note, what was left out of it) for notes read this time, e.g. PDF
    #: pages without a text layer.
    warnings: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0  # chunks embedded
    reused: int = 0  # chunks of changed notes that kept their vectors
    total_chunks: int = 0
    full: bool = False
    #: Why everything was re-embedded when it was not asked for, or why an
    #: unchanged corpus was written anew (an older index format).
    reason: str = ""
    wrote: bool = False
    seconds: float = 0.0
    #: The encoder that embedded the new texts ("onnx", "bf16", "torch"; "" if none).
    encoder: str = ""

    def __str__(self) -> str:
        if self.full:
            head = f"full rebuild: {counted(len(self.added), 'note')}, {self.total_chunks} chunks embedded"
        elif not self.wrote:
            head = f"index up to date: {counted(len(self.unchanged), 'note')} unchanged, {self.total_chunks} chunks"
        else:
            changed_chunks = sum(self.changed.values())
            parts = [f"{counted(len(self.unchanged), 'note')} unchanged"]
            if self.added:
                parts.append(f"{len(self.added)} added ({counted(sum(self.added.values()), 'chunk')})")
            if self.changed:
                parts.append(
                    f"{len(self.changed)} changed ({counted(changed_chunks - self.reused, 'chunk')} re-embedded, "
                    f"{self.reused} reused)"
                )
            if self.removed:
                parts.append(f"{len(self.removed)} removed ({counted(sum(self.removed.values()), 'chunk')})")
            head = ", ".join(parts)
        tail = f" in {self.seconds:.1f} s" if self.wrote else ""
        if self.wrote and self.encoder:
            tail += f" ({self.encoder} encoder)"
        if self.wrote and self.reason:
            tail += f", because {self.reason}"
        skipped = f"; {counted(len(self.skipped), 'file')} skipped" if self.skipped else ""
        return head + tail + skipped

    def to_dict(self) -> dict[str, Any]:
        return {
            "unchanged": self.unchanged,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "skipped": [{"note": n, "reason": r} for n, r in self.skipped],
            "warnings": [{"note": n, "warning": w} for n, w in self.warnings],
            "embedded": self.embedded,
            "reused": self.reused,
            "total_chunks": self.total_chunks,
            "full": self.full,
            "reason": self.reason,
            "wrote": self.wrote,
            "seconds": round(self.seconds, 3),
            "encoder": self.encoder,
        }


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
    #: Notes in the corpus that the index lacks, has in an older version, or
    #: still has although they are gone.
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: Vectors the index stores: one per distinct window, masked ones not
    #: counted (a window's repeat shares its vector).
    vectors: int = 0
    #: Sentence windows, each with its row of the window table.
    windows: int = 0
    generation: str = ""
    format: int = 0
    #: The command that brings the index up to date.
    fix: str = "dsqa reindex"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        lines = [
            f"index:    {self.index_dir} (built {self.created}, {self.generation})",
            f"corpus:   {self.corpus_dir}",
            f"model:    {self.model['name']} ({self.model['dimension']}-d)",
            "chunking: " + ", ".join(f"{k}={v}" for k, v in self.chunking.items()),
            f"size:     {self.notes} notes, {self.chunks} chunks, {self.windows} windows, {self.vectors} vectors",
            "state:    " + ("up to date" if self.up_to_date else "stale: " + "; ".join(self.problems)),
        ]
        for kind in ("added", "changed", "removed"):
            names = getattr(self, kind)
            if names:
                lines.append(f"{kind + ':':<9} " + ", ".join(names))
        if not self.up_to_date:
            lines.append(f"fix:      {self.fix}")
        return "\n".join(lines)
