"""A cold question reads little of a big index (issue 27): chunk records are
parsed when a question reads them, and a file that is the very one its
writer checksummed (same size, inode, modification and change times) is not
read again for its CRC; a file changed in any way, or a copied index, is
checked by its CRC as before, so damage is still caught by name."""

from __future__ import annotations

import os
import shutil

import pytest

from dsqa import DSQA, IndexCorruptError, storage
from dsqa.storage import files as files_module
from dsqa.storage.records import ChunkRecord


@pytest.fixture
def counted(monkeypatch):
    """Bytes read for a checksum, per file name; records parsed."""
    from dsqa.storage import generations

    seen = {"bytes": {}, "records": 0}
    reading = [""]
    verify, update, from_json = generations.verify, files_module._Checksums.update, ChunkRecord.from_json

    def counting_verify(gen, rel, *args, **kwargs):
        reading[0] = rel
        return verify(gen, rel, *args, **kwargs)

    def counting_update(self, block):
        seen["bytes"][reading[0]] = seen["bytes"].get(reading[0], 0) + len(block)
        update(self, block)

    def counting_from_json(data):
        seen["records"] += 1
        return from_json(data)

    monkeypatch.setattr(generations, "verify", counting_verify)
    monkeypatch.setattr(files_module._Checksums, "update", counting_update)
    monkeypatch.setattr(ChunkRecord, "from_json", staticmethod(counting_from_json))
    return seen


def test_a_cold_question_parses_only_the_chunks_it_reads(built, counted):
    index_dir = built.settings.index_dir
    gen = storage.current_generation(index_dir)
    # The fixture's index is a copy: its first load checks every file by its CRC.
    storage.load(index_dir)
    assert counted["bytes"][storage.FAISS] == (gen / storage.FAISS).stat().st_size
    built.reindex(full=True)  # written here: the files are the ones checksummed
    gen = storage.current_generation(index_dir)
    counted["bytes"].clear()
    counted["records"] = 0
    engine = DSQA(built.settings)
    answer = engine.ask("how do overlay networks do service discovery")
    assert answer.passages
    index = engine.index()
    # Only chunks.jsonl is read (for where its records start, and its CRC on the way).
    assert set(counted["bytes"]) == {storage.CHUNKS}
    assert 0 < counted["records"] < len(index.chunks) / 2


@pytest.mark.parametrize("name", [storage.FAISS, storage.WINDOWS, "bm25/data.csc.index.npy"])
def test_a_file_changed_in_place_is_caught_though_its_times_are_set_back(built, name):
    built.reindex(full=True)
    path = storage.current_generation(built.settings.index_dir) / name
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the change time cannot be set back
    with pytest.raises(IndexCorruptError, match=rf"{os.path.basename(name)} is unusable \(contents do not match the checksum"):
        storage.load(built.settings.index_dir)


def test_a_copied_index_is_checked_by_its_checksums(built, tmp_path, counted):
    built.reindex(full=True)
    copy = tmp_path / "copy"
    shutil.copytree(built.settings.index_dir, copy)
    gen = storage.current_generation(copy)
    storage.load(copy)
    for rel, entry in storage.read_manifest(copy)["files"].items():
        assert counted["bytes"].get(rel, 0) == entry["size"] == (gen / rel).stat().st_size, rel


def test_chunk_keys_and_copies_come_from_the_files_bytes(tmp_path):
    """A reindex finds old chunks by key, and copies unchanged ones, from
    the chunk file's bytes without parsing its records: a key field is
    found only where a record's own key is (text quoting one is escaped),
    and a copied record reads back as the one written."""
    from dsqa.storage.chunk_file import ChunkWriter

    def record(i: int, text: str) -> ChunkRecord:
        return ChunkRecord(f"n{i}.md", "H", 1, 2, 0, len(text), text, f"k{i}")

    records = [record(0, 'a text quoting {"key": "k9"} and a \\ backslash'), record(1, "plain"), record(2, "ünïcode \u2028 line")]
    writer = ChunkWriter(tmp_path / "a.jsonl")
    writer.add(records)
    source = writer.reader()
    writer.close()
    assert source.key_rows() == {"k0": 0, "k1": 1, "k2": 2}
    copy = ChunkWriter(tmp_path / "b.jsonl")
    copy.add([records[1]])
    copy.copy(source, 0, 1)
    copy.copy(source, 2, 3)
    copy.copy(list(records), 1, 2)  # records of a generation without a chunk file: written anew
    assert list(copy.reader()) == [records[1], records[0], records[2], records[1]]
    copy.close()


def test_the_rows_of_a_note_are_read_from_each_records_source(tmp_path):
    """``ChunkFile.rows_of`` reads each line's leading source field (quotes
    and non-ASCII names included); a line written with another key order is
    parsed whole; the answer equals a scan of the parsed records."""
    import json

    from dsqa.storage.chunk_file import ChunkWriter

    def record(source: str, i: int) -> ChunkRecord:
        return ChunkRecord(source, "H", 1, 1, 0, 4, f"text {i}", f"k{i}")

    names = ['a.md', 'b "quoted".md', "c/é.md", "a.md.txt"]
    writer = ChunkWriter(tmp_path / "chunks.jsonl")
    writer.add(record(names[i % 4], i) for i in range(10))
    writer.close()
    reordered = dict(reversed(list(record("b \"quoted\".md", 10).to_json().items())))
    with open(tmp_path / "chunks.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(reordered, ensure_ascii=False) + "\n")
    data = (tmp_path / "chunks.jsonl").read_bytes()
    offsets = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A]
    chunks = storage.ChunkFile(tmp_path / "chunks.jsonl", offsets)
    for wanted in ({"a.md"}, {'b "quoted".md'}, {"c/é.md", "a.md.txt"}, {"nope.md"}):
        assert chunks.rows_of(wanted) == [r for r, c in enumerate(chunks) if c.source in wanted]
    assert chunks.rows_of({'b "quoted".md'})[-1] == 10
