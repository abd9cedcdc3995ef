"""The chunk record (``dsqa.storage.ChunkRecord``): what a reindex writes is
what a load gives back, and its JSON is the format ``chunks.jsonl`` has always
held, so existing indexes (the committed one among them) read and re-write
byte for byte."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import INDEX

from dsqa import storage
from dsqa.storage import ChunkRecord


def test_a_markdown_record_has_no_page_or_cell_fields():
    record = ChunkRecord("a.md", "A › B", 3, 5, 10, 40, "text", "k1")
    assert list(record.to_json()) == list(storage.CHUNK_FIELDS)
    assert ChunkRecord.from_json(record.to_json()) == record


def test_page_and_cells_round_trip_only_when_set():
    pdf = ChunkRecord("s.pdf", "Raft", 1, 2, 0, 9, "text", "k2", page=4)
    notebook = ChunkRecord("n.ipynb", "", 1, 9, 0, 90, "text", "k3", cell=2, end_cell=3)
    assert pdf.to_json()["page"] == 4 and "cell" not in pdf.to_json()
    assert notebook.to_json()["end_cell"] == 3 and "page" not in notebook.to_json()
    assert ChunkRecord.from_json(pdf.to_json()) == pdf
    assert ChunkRecord.from_json(notebook.to_json()) == notebook


def test_records_are_frozen():
    record = ChunkRecord("a.md", "", 1, 1, 0, 1, "x", "k")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.text = "y"  # type: ignore[misc]


def test_the_committed_index_reads_and_writes_back_byte_for_byte():
    gen = storage.current_generation(INDEX)
    lines = (gen / storage.CHUNKS).read_text(encoding="utf-8").split("\n")
    lines = [line for line in lines if line.strip()]
    loaded = storage.load(INDEX).chunks
    assert len(loaded) == len(lines) and all(isinstance(c, ChunkRecord) for c in loaded)
    assert [json.dumps(c.to_json(), ensure_ascii=False) for c in loaded] == lines


def test_a_reindex_gives_back_the_records_it_wrote(built):
    index = built.retriever().index
    again = storage.load(built.settings.index_dir)
    assert again.chunks == index.chunks and all(isinstance(c, ChunkRecord) for c in again.chunks)
