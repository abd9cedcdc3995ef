"""The errors a user can cause or fix.

Every one of them carries a message that says what is wrong and, where there
is one, the command that fixes it; the CLI prints that message as one line and
exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class DsqaError(Exception):
    """Base class: an error that is the user's to fix, not a bug."""


class InvalidInputError(DsqaError, ValueError):
    """A value given to dsqa is not one it takes: an empty or overlong
    question, k out of range, a note filter that names no indexed note, a
    setting, flag, environment variable or question file that is malformed.
    Also a ``ValueError``, as these were before it existed; a bare
    ``ValueError`` from inside dsqa is a bug, never the user's mistake."""


class CorpusError(DsqaError):
    """The corpus folder is missing, empty, or holds no readable note."""


class IndexMissingError(DsqaError):
    """No index has been built in the index folder yet."""

    def __init__(self, index_dir: object, command: str | None = None):
        if command is None:
            import shlex

            command = f"dsqa reindex --index {shlex.quote(str(index_dir))} --corpus NOTES_FOLDER"
        super().__init__(f"no index in {index_dir}: build it with `{command}`")


class IndexCorruptError(DsqaError):
    """An index file cannot be read or does not match the others."""

    def __init__(self, path: object, problem: str):
        super().__init__(f"index file {path} is unusable ({problem}); repair it with `dsqa reindex --full`")


class CorpusMismatchError(DsqaError):
    """The index was built from another notes folder; it is never rewritten
    with this one."""


class StaleIndexError(DsqaError):
    """The index was built with other settings, another model, or an older corpus."""


class ModelError(DsqaError):
    """The embedding model is unknown or its files cannot be found."""


class LockedError(DsqaError):
    """Another process is writing the index, or another reindex is running
    in this engine."""


class IndexWriteError(DsqaError):
    """The index folder cannot be written (read-only, full, not a folder);
    the index already there is left as it was."""


class IndexNotAFolderError(IndexWriteError):
    """The index folder is a file: no index can be read from it or written
    to it."""

    def __init__(self, index_dir: object):
        super().__init__(
            f"the index folder {index_dir} is a file, not a folder: point --index (or DSQA_INDEX) at a folder"
        )


class CorpusTooLargeError(CorpusError):
    """The corpus holds more notes than the settings allow indexing without
    being asked (``Settings.max_corpus_files`` / ``max_corpus_bytes``): most
    likely ``--corpus`` points at a home folder or ``/`` by mistake. Raised
    before anything is read whole or embedded."""


class ClusterError(DsqaError):
    """The Ray cluster a reindex was pointed at cannot be reached or failed
    (``dsqa reindex --ray``); the index is unchanged."""
