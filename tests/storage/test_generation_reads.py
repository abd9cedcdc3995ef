"""A cold question (engine created, first answer) resolves the live
generation once: ``CURRENT`` and the manifest are each read one time, and the
generation it checked for freshness is the one it loads (issue 25)."""

from __future__ import annotations

from _helpers import count_index_reads

from dsqa import DSQA
from dsqa.storage import manifest as manifest_module


def test_cold_question_reads_current_and_manifest_once(built, monkeypatch):
    engine = DSQA(built.settings)
    reads = count_index_reads(monkeypatch)
    answer = engine.ask("how do overlay networks do service discovery")
    assert answer.passages
    assert reads[manifest_module.POINTER] == 1
    assert reads[manifest_module.MANIFEST] == 1


def test_question_after_a_reindex_loads_the_new_generation(built, monkeypatch):
    engine = DSQA(built.settings)
    engine.ask("what is a swarm service")
    note = next(built.settings.corpus_dir.rglob("*.md"))
    note.write_text(note.read_text(encoding="utf-8") + "\n\nZebrafinch overlay appendix.\n", encoding="utf-8")
    engine.refresh()
    assert any("Zebrafinch" in c.text for c in engine.index().chunks)
