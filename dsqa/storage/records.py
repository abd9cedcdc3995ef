"""The chunk record: one passage of a note as the index stores it, from the
reindex that assembles it to the answer that cites it. ``chunks.jsonl``
holds one :meth:`ChunkRecord.to_json` per line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Fields every record has, in the order they are written.
CHUNK_FIELDS = ("source", "heading", "start_line", "end_line", "start_char", "end_char", "text", "key")
#: Where a chunk of a PDF (its page) or a notebook (its first and last cell)
#: is; written only where they apply, so a Markdown note's records are as
#: they were before PDFs and notebooks were read.
OPTIONAL_CHUNK_FIELDS = ("page", "cell", "end_cell")


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk: the note it is from (path relative to the corpus), its
    heading path, the 1-based lines and the character span it covers in the
    note's text, its text, and its key (a hash of what was embedded, so a
    reindex can reuse its vectors)."""

    source: str
    heading: str
    start_line: int
    end_line: int
    start_char: int
    end_char: int
    text: str
    key: str
    page: int | None = None
    cell: int | None = None
    end_cell: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as ``chunks.jsonl`` holds it: the optional fields only
        when set."""
        data: dict[str, Any] = {name: getattr(self, name) for name in CHUNK_FIELDS}
        for name in OPTIONAL_CHUNK_FIELDS:
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkRecord:
        """The record a ``chunks.jsonl`` line holds (checked by the loader
        first); fields it does not know are left out."""
        return cls(
            **{name: data[name] for name in CHUNK_FIELDS},
            **{name: data[name] for name in OPTIONAL_CHUNK_FIELDS if name in data},
        )
