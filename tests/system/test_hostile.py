"""Hostile notes and requests (issue 30): a note built to break a reader,
a request far over any limit, a Ray address that is no Ray, a corpus that is
a whole machine, a stdout that cannot be written. Each must cost one
warning or one line of error, within a bound, and never take the rest down."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import CORPUS, INDEX, ROOT

from dsqa import InvalidInputError
from dsqa import engine as engine_module


# -- 4. oversized questions ---------------------------------------------------
def test_an_oversized_question_is_refused_before_any_per_character_pass(monkeypatch):
    """A 20 MB question blocked every other question for minutes: the length
    was checked after a character-by-character pass over it."""
    looked_at = []
    real = engine_module.unicodedata.category

    class Counting:
        @staticmethod
        def category(ch):
            looked_at.append(ch)
            return real(ch)

    monkeypatch.setattr(engine_module, "unicodedata", Counting)
    with pytest.raises(InvalidInputError, match="the limit is 2,000"):
        engine_module.clean_question("overlay " * 25_000, 2000)
    assert looked_at == []
    # Blanks collapse: a question a little over the limit before cleaning is fine.
    assert engine_module.clean_question("overlay   networks " * 150, 3000).startswith("overlay networks")
    assert looked_at


# -- 8. a stdout that cannot be written ----------------------------------------
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_failed_write_to_stdout_is_one_line():
    """``dsqa ask … > /dev/full`` printed a 27-line traceback. ``status`` on
    the bundled notes prints without loading a model; every command prints
    through the same function."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "dsqa.cli", "status", "--corpus", str(CORPUS), "--index", str(INDEX)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
            timeout=120,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["Error: cannot write the output to stdout: No space left on device"]


# -- 5. a Ray address where something else listens ------------------------------
def test_reindex_on_a_port_that_is_not_ray_fails_in_time_and_frees_the_lock(settings):
    """``reindex --ray 127.0.0.1:PORT`` on an open port of another server
    hung until killed, holding the index lock: ``ray.init`` retries there
    for ever. Here the server accepts and never says a word (the worst case:
    an HTTP server at least answers)."""
    from dsqa import DSQA, ClusterError

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def accept_and_say_nothing():
        with contextlib.suppress(OSError):  # the server closed at the end
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    engine = DSQA(settings.with_(ray_address=address, ray_connect_timeout=1.0))
    box: dict = {}

    def run():
        try:
            engine.reindex()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    try:
        assert not thread.is_alive(), "reindex --ray still waiting on a port that is not Ray"
        assert isinstance(box.get("error"), ClusterError), box
        assert str(box["error"]).startswith(f"cannot reach the Ray cluster at {address}: ")
        assert "ray_connect_timeout" in str(box["error"])
        # the lock is free: the same index builds at once without Ray
        assert DSQA(settings).reindex().added
    finally:
        server.close()
