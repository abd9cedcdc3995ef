"""Markdown and plain-text notes: the text is the file itself, decoded as
UTF-8 by :func:`dsqa.notes.decode_note`, so line numbers are the file's."""

from __future__ import annotations

from . import Extracted


class MarkdownReader:
    kind = "markdown"
    suffixes = (".md", ".markdown", ".txt")
    version = 1

    def read(self, data: bytes) -> Extracted:
        from ..notes import decode_note  # notes imports this package

        return Extracted(decode_note(data))


READER = MarkdownReader()
