"""Run one ``dsqa.reindex`` with the fake model, announcing every step on
stdout, so that tests/system/test_crash.py can SIGKILL it at a chosen moment.

    python tests/_crash_driver.py CORPUS INDEX

Each step prints one line (``embed 3``, ``write chunks.jsonl``,
``replace CURRENT``, …) and then sleeps ``$DSQA_CRASH_PAUSE`` seconds
before doing it, so a kill sent after reading the line lands before the step,
and one sent a little later lands during or after it. The embedding goes in
batches of ``$DSQA_CRASH_BATCH`` texts, one step each. The fake model is the
tests' own (conftest.FakeEmbedder): same name, same vectors.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import FakeEmbedder  # noqa: E402

from dsqa import (
    Settings,  # noqa: E402
    register_model,  # noqa: E402
)
from dsqa.build.reindex import reindex  # noqa: E402
from dsqa.storage import generations  # noqa: E402
from dsqa.storage.lexical import LexicalIndex  # noqa: E402

PAUSE = float(os.environ.get("DSQA_CRASH_PAUSE", "0.02"))
BATCH = int(os.environ.get("DSQA_CRASH_BATCH", "8"))


def step(label: str) -> None:
    sys.stdout.write(label + "\n")
    sys.stdout.flush()
    time.sleep(PAUSE)


class SlowFake(FakeEmbedder):
    def embed(self, texts, *, progress=False):
        parts = [np.zeros((0, self.dimension), np.float32)]
        for start in range(0, len(texts), BATCH):
            step(f"embed {start // BATCH}")
            parts.append(FakeEmbedder.embed(self, texts[start : start + BATCH]))
        return np.vstack(parts)


def announced(label: str, func, which: int = 0):
    """``func`` announcing itself as ``label`` and the name of the file in
    its argument number ``which`` (a path or an open file)."""

    def wrapper(*args, **kwargs):
        arg = args[which] if len(args) > which else None
        path = getattr(arg, "name", arg)
        name = Path(path).name if isinstance(path, (str, os.PathLike)) else ""
        step(f"{label} {name}".strip())
        return func(*args, **kwargs)

    return wrapper


def main() -> None:
    import faiss

    corpus, index = sys.argv[1:3]
    register_model("fake-hash", SlowFake)
    generations.write_file = announced("write", generations.write_file)
    generations.file_entry = announced("fsync+checksum", generations.file_entry)
    generations.fsync_dir = announced("fsync", generations.fsync_dir)
    np.save = announced("write", np.save)
    faiss.write_index = announced("write", faiss.write_index, which=1)
    LexicalIndex.save = announced("write bm25", LexicalIndex.save, which=9)
    os.rename = announced("rename", os.rename)
    os.replace = announced("replace", os.replace)
    shutil.rmtree = announced("rmtree", shutil.rmtree)
    settings = Settings(corpus_dir=corpus, index_dir=index, model="fake-hash", chunk_tokens=60, chunk_overlap_tokens=8)
    step("start")
    report = reindex(settings)
    print(f"done {report}", flush=True)


if __name__ == "__main__":
    main()
