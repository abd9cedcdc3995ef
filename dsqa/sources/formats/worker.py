"""The reader boundary: a note's bytes in, its text or one reason to skip it
out, within the bounds of :mod:`dsqa.sources.formats.limits`.

:func:`extract` is how dsqa reads every note (a reindex, the page's note
section). Markdown and text notes are read in this process: their text is
the file. PDFs, web pages and notebooks are read in a worker process,
started with ``python -m`` on this module and kept for the next note:

* it is stopped when a note takes longer than ``limits.seconds`` (the
  libraries they go through cannot be interrupted from inside; a PDF whose
  stream inflates to megabytes of text spends minutes in one call);
* it is stopped when its resident memory grows ``limits.memory_mb`` past
  what it held when idle (looked at every :data:`POLL_SECONDS`; its address
  space is also capped at twice that, for memory taken faster), so a page
  that would need gigabytes costs no more than the bound;
* it may recurse as deep as ``limits.max_depth`` asks (the conversion of a
  page to Markdown recurses once per element).

Whatever goes wrong inside a reader becomes one ``ValueError`` naming the
reason (a :class:`~dsqa.sources.formats.limits.LimitExceeded` naming the bound),
which the caller turns into a warning naming the file; the reader's
traceback is logged at debug level (``-v``). A failure that is no fault of
the file but of a reader (an exception no reader raises on purpose) is still
skipped in use, but raised as :class:`ReaderError` when
``$DSQA_STRICT_READERS`` is ``1``, as the test suite sets it, so that a bug
in dsqa's own code is not taken for a bad file.

Where pipes cannot be waited on with ``select`` (Windows), every reader
runs in this process, bounded in characters and depth only; the memory
bound is watched through ``/proc`` (Linux), elsewhere only the address-space
cap holds.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ... import environment
from . import Extracted, reader_for
from .limits import (
    DEFAULT_LIMITS,
    LimitExceeded,
    ReaderLimits,
    over_chars,
    over_memory,
    over_time,
)

log = logging.getLogger("dsqa")

#: Set to ``1`` (the test suite does) to raise a reader's own failures.
STRICT_ENV = environment.STRICT_READERS.name
#: Idle workers kept for the next notes (a reindex and the page may read at once).
MAX_IDLE = 2
#: Seconds a new worker has to import the readers and say it is ready.
STARTUP_SECONDS = 120.0
#: How often the worker's memory is looked at while it reads.
POLL_SECONDS = 0.05
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_HEADER = struct.Struct("!Q")
_ISOLATE = os.name == "posix"


class ReaderError(RuntimeError):
    """A reader failed in a way no file should make it (raised only when
    ``$DSQA_STRICT_READERS`` is ``1``); the message holds its traceback."""


def extract(name: str, data: bytes, limits: ReaderLimits = DEFAULT_LIMITS) -> Extracted:
    """The text of the note ``name`` (its suffix picks the reader) from its
    bytes, or a ``ValueError`` saying why it cannot be used: damaged, not of
    its format, or over one of ``limits``."""
    reader = reader_for(name)
    if reader.kind == "markdown" or not _ISOLATE:
        kind, *rest = _read_here(name, data, limits)
    else:
        kind, *rest = _POOL.read(name, data, limits)
    if kind == "ok":
        return rest[0]
    if kind in ("refused", "memory"):
        raise (LimitExceeded if rest[1] else ValueError)(rest[0])
    summary, details = rest
    if environment.STRICT_READERS.get() == "1":
        raise ReaderError(f"the {reader.kind} reader failed on {name}: {summary}\n{details}")
    log.debug("the %s reader failed on %s:\n%s", reader.kind, name, details)
    raise ValueError(f"the {reader.kind} reader failed ({summary}); dsqa -v shows where")


def _read_here(name: str, data: bytes, limits: ReaderLimits) -> tuple[Any, ...]:
    """Run the reader in this process: ``("ok", extracted)``,
    ``("refused", why, is_bound)``, ``("memory", why, True)`` or
    ``("failed", summary, traceback)``."""
    out_of_memory = ("memory", str(over_memory(limits)), True)  # made while there is memory to make it
    try:
        reader = reader_for(name)
        extracted = reader.read(data, limits)
        if reader.kind != "markdown" and len(extracted.text) > limits.max_chars:
            raise over_chars(limits)
        return ("ok", extracted)
    except ValueError as exc:
        return ("refused", str(exc), isinstance(exc, LimitExceeded))
    except MemoryError:
        pass  # answered below, once the handler has let go of the reader's frames and all they hold
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return ("failed", f"{type(exc).__name__}: {first}" if first else type(exc).__name__, traceback.format_exc())
    return out_of_memory


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        root = str(Path(sys.modules[__name__.split(".")[0]].__file__ or ".").resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # what the libraries print about a damaged file, shown under -v only
            stderr=None if log.isEnabledFor(logging.DEBUG) else subprocess.DEVNULL,
            env=env,
            bufsize=0,
            close_fds=True,
        )
        # The worker says it is ready once it has imported the readers, so
        # that time is not counted against the first note.
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout.fileno()], [], [], STARTUP_SECONDS)
        try:
            if not ready or _read_exactly(self.proc.stdout.fileno(), _HEADER.size) != _HEADER.pack(0):
                raise EOFError
        except EOFError:
            self.kill()
            raise ReaderError(f"the reader process ({sys.executable} -m {__name__}) did not start") from None
        #: Resident memory when idle, which the bound is counted from.
        self.idle_bytes = self.resident()

    def ask(self, request: tuple[Any, ...], limits: ReaderLimits) -> tuple[Any, ...]:
        """Send ``request`` and wait for the reply, at most ``limits.seconds``
        (counted from the start of the send) and while the worker's resident
        memory stays within ``limits.memory_mb`` of what it was when idle
        (checked every :data:`POLL_SECONDS`); past either the worker is
        stopped and the reply says which bound. Raises ``OSError`` or
        ``EOFError`` when the worker died."""
        deadline = time.monotonic() + limits.seconds
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(_HEADER.pack(len(payload)) + payload)
        fd = self.proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return ("refused", str(over_time(limits)), True)
            ready, _, _ = select.select([fd], [], [], min(left, POLL_SECONDS))
            if ready:
                break
            if self.resident() - self.idle_bytes > limits.memory_mb * 1024 * 1024:
                self.kill()
                return ("refused", str(over_memory(limits)), True)
        (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
        return pickle.loads(_read_exactly(fd, size))

    def resident(self) -> int:
        """The worker's resident memory in bytes (0 where /proc does not say)."""
        try:
            with open(f"/proc/{self.proc.pid}/statm") as fh:
                return int(fh.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return 0

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def close(self) -> None:
        """Let the worker end by itself (it stops at the end of its input)."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the reader process ended")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class _Pool:
    """Worker processes for this process's readers: one per note being read
    at a time, kept idle for the next (up to :data:`MAX_IDLE`); a worker
    that took too long, ran out of memory or died is not reused."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def read(self, name: str, data: bytes, limits: ReaderLimits) -> tuple[Any, ...]:
        try:
            worker = self._take(limits.memory_mb)
        except (ReaderError, OSError) as exc:  # no worker at all: each note says so, the rest still loads
            return ("failed", str(exc), traceback.format_exc())
        try:
            reply = worker.ask((name, data, limits), limits)
        except (OSError, EOFError, pickle.UnpicklingError):
            worker.kill()
            return ("refused", _died(worker.proc.returncode, limits), True)
        if worker.proc.returncode is not None:
            return reply  # stopped at a bound
        if reply[0] == "memory" or worker.resident() - worker.idle_bytes > limits.memory_mb * 1024 * 1024:
            worker.kill()  # its heap may be left in pieces, or hold on to what the note took
        else:
            self._give_back(worker)
        return reply

    def _take(self, memory_mb: int) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.memory_mb == memory_mb and worker.proc.poll() is None:
                    return worker
                worker.close()
        return _Worker(memory_mb)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(worker)
                return
        worker.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


def _died(code: int | None, limits: ReaderLimits) -> str:
    if code is not None and code < 0:
        import signal

        try:
            what = signal.Signals(-code).name
        except ValueError:
            what = f"signal {-code}"
        if what == "SIGKILL":
            return f"{over_memory(limits)} (the reader process was killed)"
        return f"the reader process crashed ({what})"
    return f"the reader process ended unexpectedly (exit code {code})"


_POOL = _Pool()
# Idle workers end with their input; closing it at exit lets them end before this process does.
atexit.register(_POOL.close)


# -- the worker process ---------------------------------------------------------
def _limit_memory(memory_mb: int) -> None:
    """Cap this process's address space at what it uses now plus twice
    ``memory_mb`` MiB (where the system lets a process do so): a backstop
    for memory taken faster than the parent looks (it stops the worker at
    ``memory_mb`` of resident memory); a process that runs out of address
    space can spend minutes failing before it stops."""
    try:
        import resource
    except ImportError:
        return
    try:
        with open("/proc/self/statm") as fh:
            now = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        now = 0
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = now + 2 * memory_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


def _serve(memory_mb: int) -> None:
    """Read notes sent on stdin until it closes, replying on stdout."""
    inp = sys.stdin.fileno()  # the same descriptor as the raw binary stream
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the replies
    for module in ("html", "notebook", "pdf"):  # imported before the cap, as the parent's are
        __import__(f"{__package__}.{module}")
    _limit_memory(memory_mb)
    out.write(_HEADER.pack(0))  # ready
    out.flush()
    while True:
        try:
            head = _read_exactly(inp, _HEADER.size)
        except EOFError:
            return
        try:
            name, data, limits = pickle.loads(_read_exactly(inp, _HEADER.unpack(head)[0]))
            sys.setrecursionlimit(max(1000, 10 * limits.max_depth + 1000))
            payload = pickle.dumps(_read_here(name, data, limits), protocol=pickle.HIGHEST_PROTOCOL)
            out.write(_HEADER.pack(len(payload)) + payload)
            out.flush()
        except BaseException:  # out of memory even for the reply: the parent sees the end of the output
            os._exit(70)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
