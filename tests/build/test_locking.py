"""One writer at a time: while a process writes an index folder, a second
reindex of it fails at once with ``LockedError``, and questions are answered
from the live index meanwhile."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import NOTES, assert_consistent, dsqa_logs, invoke

from dsqa import DSQA, LockedError, storage

#: dsqa's logger as caplog needs it (see conftest.dsqa_logs_propagate).
pytestmark = pytest.mark.usefixtures("dsqa_logs_propagate")


HOLD_LOCK = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1], timeout=0)
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_second_writer_fails_at_once_and_readers_read(built, caplog):
    settings = built.settings
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(settings.index_dir / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        (settings.corpus_dir / NOTES / "new.md").write_text("# New\nzookeeper leader election\n")
        started = time.perf_counter()
        with pytest.raises(LockedError, match=r"another dsqa reindex is writing .*try again when it has finished"):
            DSQA(settings).reindex()
        assert time.perf_counter() - started < 10, "fails at once, does not wait for the lock"
        r = invoke(settings.with_(chunk_tokens=200), "reindex")
        assert r.exit_code == 1 and "another dsqa reindex is writing" in r.output
        # Readers load the live index meanwhile; a stale one is answered from as it is.
        assert_consistent(storage.load(settings.index_dir))
        with caplog.at_level(logging.INFO, logger="dsqa"):
            answer = DSQA(settings).ask("docker swarm")
        assert answer.found and answer.passages
        warnings = dsqa_logs(caplog, logging.WARNING)
        assert len(warnings) == 1 and "another dsqa reindex is writing" in warnings[0].getMessage()
    finally:
        holder.kill()
        holder.wait()
    assert "notes/new.md" in DSQA(settings).reindex().added


def test_a_real_reindex_holds_the_lock(built):
    """The same, against a reindex in progress (the crash driver, slowed)."""
    settings = built.settings
    (settings.corpus_dir / NOTES / "new.md").write_text("# New\n" + "\n\n".join(f"Para {i} on gossip." for i in range(40)))
    env = {**os.environ, "DSQA_CRASH_PAUSE": "0.3", "DSQA_CRASH_BATCH": "4"}
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parent.parent / "_crash_driver.py"), str(settings.corpus_dir), str(settings.index_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for line in child.stdout:
            if line.startswith("embed"):
                break
        with pytest.raises(LockedError):
            DSQA(settings).reindex()
        assert_consistent(storage.load(settings.index_dir))
    finally:
        child.kill()
        child.wait()
