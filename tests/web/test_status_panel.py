"""Reindex and status through the page, on a copy with the fake model: the
index panel, the reindex button, answering while a reindex runs."""

# ruff: noqa: F811 (the fixtures imported from web_shared are test parameters here)
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from conftest import GATED
from web_shared import (  # noqa: F401 (fixtures are test parameters)
    GRADIO_WARNINGS,
    _start,
    fake_engine,
    gradio_client,
)

from dsqa import DSQA
from dsqa.web import (
    describe_reindex,
    render_status,
)
from dsqa.web.page import build_page

pytestmark = GRADIO_WARNINGS


# -- reindex and status through the page, on a copy with the fake model -------
def test_index_panel_speaks_plainly(fake_engine, settings):
    panel = render_status(fake_engine.status())
    assert "up to date" in panel and "passages" in panel
    report = fake_engine.reindex(full=True)
    note = settings.corpus_dir / "notes" / "anonymous-short-notes.md"
    note.write_text(note.read_text(encoding="utf-8") + "\n## Added\nGossip.\n", encoding="utf-8")
    stale = render_status(fake_engine.status())
    assert "out of date" in stale and "anonymous-short-notes" in stale
    report = fake_engine.reindex()
    said = describe_reindex(report)
    assert "changed: notes/anonymous-short-notes.md" in said
    for internal in (panel, stale, said):
        for word in ("encoder", "onnx", "text/s", "chunks", "model"):
            assert word not in internal.lower(), (word, internal)


def test_reindex_button_updates_the_index_and_status(settings):
    engine = DSQA(settings, auto_reindex=False)  # no index yet (nor built on first use): the page still comes up
    running = _start(build_page(engine))
    try:
        client = gradio_client.Client(running.url, verbose=False)
        assert "dsqa-error" in client.predict(api_name="/status")
        report, status, notes = client.predict(api_name="/reindex")
        assert "Reindexed" in report and "up to date" in status
        assert "notes/anonymous-short-notes.md" in str(notes) or client.predict(api_name="/status_json")["notes"] == 5

        note = settings.corpus_dir / "notes" / "anonymous-short-notes.md"
        note.write_text(note.read_text(encoding="utf-8") + "\n## Added\nA new fact about gossip protocols.\n", encoding="utf-8")
        assert "out of date" in client.predict(api_name="/status")
        report, status, _ = client.predict(api_name="/reindex")
        assert "changed" in report and "anonymous-short-notes" in report and "up to date" in status
    finally:
        running.close()


# -- one-line errors and answering while a reindex runs ------------------------
def test_page_answers_during_a_reindex_and_refuses_a_second(fake_engine, gated_model):
    started, release = gated_model
    running = _start(build_page(fake_engine))
    note = fake_engine.settings.corpus_dir / "notes" / "new.md"
    note.write_text(f"# Gossip\nZookeeper gossip protocols elect a leader. {GATED}\n", encoding="utf-8")
    pool = ThreadPoolExecutor(4)
    try:
        client = gradio_client.Client(running.url, verbose=False)
        first = pool.submit(client.predict, api_name="/reindex")
        assert started.wait(30), "the reindex did not start"

        asked = time.monotonic()
        answer = pool.submit(client.predict, "zookeeper gossip leader", 3, None, api_name="/ask_json").result(timeout=15)
        assert time.monotonic() - asked < 10
        assert "notes/new.md" not in {p["source"] for p in answer["passages"]}  # the generation before the reindex

        report, _, _ = pool.submit(client.predict, api_name="/reindex").result(timeout=15)
        assert "a reindex is already running" in report and "dsqa-error" in report
        release.set()
        report, status, _ = first.result(timeout=60)
        assert "Reindexed" in report and "new.md" in report and "up to date" in status
        answer = client.predict("zookeeper gossip leader", 1, None, api_name="/ask_json")
        assert answer["passages"][0]["source"] == "notes/new.md"
    finally:
        release.set()
        pool.shutdown(wait=False, cancel_futures=True)
        running.close()
