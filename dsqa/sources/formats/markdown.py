"""Markdown and plain-text notes: the text is the file itself, decoded as
UTF-8 by :func:`decode_note`, so line numbers are the file's."""

from __future__ import annotations

from .extracted import Extracted
from .limits import DEFAULT_LIMITS, ReaderLimits


class MarkdownReader:
    kind = "markdown"
    suffixes: tuple[str, ...] = (".md", ".markdown", ".txt")
    version = 1

    def read(self, data: bytes, limits: ReaderLimits = DEFAULT_LIMITS) -> Extracted:
        """The file's text: bounded by the file size alone (``limits`` are
        for the formats whose text is extracted)."""
        return Extracted(decode_note(data))


READER = MarkdownReader()


def decode_note(data: bytes) -> str:
    """Decode a note's bytes or raise ``ValueError`` saying why it is not text."""
    if b"\x00" in data:
        raise ValueError("binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
