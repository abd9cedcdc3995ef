"""The encoders: the ONNX export against the torch reference, the cache
folder, the fallback, and a query path that imports nothing heavy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import CORPUS, ROOT

from dsqa import Settings
from dsqa.encoders import (
    SentenceTransformerEmbedder,
    chooser,
    get_embedder,
    onnx,
    registry,
    sentence_transformer,
)
from dsqa.encoders import check as encoder_check
from dsqa.encoders import minilm_path as _minilm_path
from dsqa.errors import ModelError
from dsqa.evaluation import DEFAULT_DEVSET, load_questions
from dsqa.sources.sentences import sentence_windows

HEAVY = ("torch", "sentence_transformers", "transformers", "onnxruntime", "faiss")


def test_importing_the_cli_imports_nothing_heavy():
    code = f"import sys, dsqa.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DSQA_CACHE", str(tmp_path / "c"))
    assert sentence_transformer.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("DSQA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert sentence_transformer.cache_dir() == tmp_path / "x" / "dsqa"


def test_encoder_mode(monkeypatch):
    monkeypatch.delenv("DSQA_ENCODER", raising=False)
    assert chooser.encoder_mode() == "auto"
    monkeypatch.setenv("DSQA_ENCODER", "Torch")
    assert chooser.encoder_mode() == "torch"
    monkeypatch.setenv("DSQA_ENCODER", "tensorflow")
    with pytest.raises(ModelError, match="DSQA_ENCODER"):
        chooser.encoder_mode()


def test_fingerprint_follows_the_model_files(tmp_path):
    model = tmp_path / "m"
    (model / "1_Pooling").mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json"):
        (model / name).write_text("{}")
    (model / "model.safetensors").write_bytes(b"w" * 5000)
    first = sentence_transformer.model_fingerprint(model)
    assert first == sentence_transformer.model_fingerprint(model) and len(first) == 16
    (model / "model.safetensors").write_bytes(b"w" * 4999 + b"x")
    second = sentence_transformer.model_fingerprint(model)
    (model / "config.json").write_text('{"hidden_size": 1}')
    assert len({first, second, sentence_transformer.model_fingerprint(model)}) == 3


def test_check_texts_cover_questions_and_truncation():
    texts = encoder_check.check_texts()
    assert len(texts) >= len(load_questions(DEFAULT_DEVSET))
    assert max(len(t.split()) for t in texts) > 256  # past the model's window


def test_check_texts_ship_with_the_package(tmp_path):
    """An installed dsqa, with no tests/ folder beside it, checks a fast
    encoder on the same texts as a checkout."""
    shutil.copytree(ROOT / "dsqa", tmp_path / "dsqa", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from dsqa.encoders.check import check_texts; print(len(check_texts()))"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, env=env)
    assert int(out.stdout) == len(encoder_check.check_texts())


def test_mean_pooling_configs():
    assert encoder_check.is_mean_pooling({"pooling_mode": "mean"})
    assert encoder_check.is_mean_pooling({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False})
    assert not encoder_check.is_mean_pooling({"pooling_mode": "cls"})
    assert not encoder_check.is_mean_pooling({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True})


def _st_folder(folder, st_config, pooling, tokenizer_config):
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "sentence_bert_config.json").write_text(json.dumps(st_config))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


def test_model_size_is_read_from_either_sentence_transformers_layout(tmp_path):
    before_6 = _st_folder(tmp_path / "a", {"max_seq_length": 256}, {"word_embedding_dimension": 384}, {"model_max_length": 512})
    from_6 = _st_folder(
        tmp_path / "b", {"transformer_task": "feature-extraction"}, {"embedding_dimension": 768, "pooling_mode": "mean"}, {"model_max_length": 128}
    )
    assert sentence_transformer.model_shape("a", before_6) == (256, 384)
    assert sentence_transformer.model_shape("b", from_6) == (128, 768)
    broken = _st_folder(tmp_path / "c", {}, {"embedding_dimension": 384}, {})
    with pytest.raises(ModelError, match="cannot read its size"):
        sentence_transformer.model_shape("c", broken)


# -- with the real model ---------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache folder, so the test makes its own export."""
    folder = tmp_path_factory.mktemp("dsqa-cache")
    old = os.environ.get("DSQA_CACHE")
    os.environ["DSQA_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("DSQA_CACHE", None)
    else:
        os.environ["DSQA_CACHE"] = old


@pytest.fixture(scope="module")
def minilm(cache):
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path)
    model.embed(["warm up"])  # exports (and checks) the ONNX model into the cache
    return model


def _note_windows(limit: int) -> list[str]:
    text = (CORPUS / "notes" / "unlimitediw-dist-sys-notes.md").read_text(encoding="utf-8")
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    long = [p for p in paragraphs if len(p) > 600][:10]  # whole chunks, some past 256 tokens
    windows = [" ".join(group) for p in paragraphs for _, _, group in sentence_windows(p)]
    return long + windows[: limit - len(long)]


@pytest.mark.real_model
@pytest.mark.slow
def test_export_is_made_once_and_checked(minilm, cache):
    assert minilm.backend == "onnx"
    assert minilm.onnx_dir.parent == cache / "onnx"
    check = json.loads((minilm.onnx_dir / "check.json").read_text())
    assert check["ok"] and check["min_cosine"] >= encoder_check.MIN_COSINE
    assert check["texts"] >= len(load_questions(DEFAULT_DEVSET))
    assert not list((cache / "onnx").glob(".tmp-*"))


@pytest.mark.real_model
@pytest.mark.slow
def test_onnx_matches_torch_on_the_dev_questions(minilm):
    questions = [q.question for q in load_questions(DEFAULT_DEVSET)][:120]
    fast = np.vstack([minilm.embed([q]) for q in questions])  # one at a time, as queries are
    reference = minilm.embed_torch(questions)
    cosines = np.sum(fast * reference, axis=1)
    assert cosines.min() >= 0.9999
    assert fast.dtype == np.float32 and np.allclose(np.linalg.norm(fast, axis=1), 1, atol=1e-5)


@pytest.mark.real_model
@pytest.mark.slow
def test_onnx_matches_torch_on_documents_in_any_order(minilm):
    texts = _note_windows(80)
    fast = minilm.embed(texts)  # length-sorted batches, put back in input order
    reference = minilm.embed_torch(texts)
    assert np.sum(fast * reference, axis=1).min() >= 0.9999


@pytest.mark.real_model
@pytest.mark.slow
def test_a_new_process_uses_the_export_without_torch(minilm, cache):
    code = (
        "import sys, json\n"
        "from dsqa.encoders import get_embedder\n"
        "m = get_embedder('all-MiniLM-L6-v2')\n"
        "v = m.embed(['how do overlay networks do service discovery'])[0]\n"
        "print(json.dumps({'backend': m.backend, 'heavy': [x for x in ('torch', 'sentence_transformers') if x in sys.modules], 'v': v.tolist()}))\n"
    )
    env = {**os.environ, "DSQA_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    result = json.loads(out.stdout)
    assert result["backend"] == "onnx" and result["heavy"] == []
    reference = minilm.embed_torch(["how do overlay networks do service discovery"])[0]
    assert float(np.dot(result["v"], reference)) >= 0.9999


@pytest.mark.real_model
@pytest.mark.slow
def test_falls_back_to_torch_without_onnxruntime(monkeypatch, cache):
    monkeypatch.setattr(chooser, "onnxruntime_available", lambda: False)
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path)
    assert model.backend == "torch"
    v = model.embed(["what is a docker volume"])
    assert v.shape == (1, 384)
    monkeypatch.setenv("DSQA_ENCODER", "onnx")
    with pytest.raises(ModelError, match="onnxruntime"):
        SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path).embed(["x"])


@pytest.mark.real_model
def test_the_token_counter_is_loaded_when_first_used():
    """A question never counts tokens (the ONNX encoder has its own
    tokenizer): the model's counting tokenizer is not read when the model
    is opened, only by the first count, once."""
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path)
    assert model._counter is None
    assert model.count_tokens("docker swarm overlay networks") == model.count_tokens_batch(["docker swarm overlay networks"])[0] > 0
    counter = model._counter
    assert counter is not None and model.count_tokens("kafka") > 0 and model._counter is counter


@pytest.mark.real_model
@pytest.mark.slow
def test_torch_can_be_forced(monkeypatch, minilm):
    monkeypatch.setenv("DSQA_ENCODER", "torch")
    assert minilm.backend == "torch"
    monkeypatch.delenv("DSQA_ENCODER")
    assert minilm.backend == "onnx"


@pytest.mark.real_model
@pytest.mark.slow
def test_a_broken_export_is_not_used(minilm, cache, tmp_path, monkeypatch):
    good = minilm.onnx_dir
    monkeypatch.setenv("DSQA_CACHE", str(tmp_path))
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path)
    assert model.onnx_dir.parent == tmp_path / "onnx"
    shutil.copytree(good, model.onnx_dir)
    check = json.loads((model.onnx_dir / "check.json").read_text())
    (model.onnx_dir / "check.json").write_text(json.dumps({**check, "ok": False}))
    assert model.onnx_encoder(export=False) is None


@pytest.mark.real_model
@pytest.mark.slow
def test_int8_variant_is_a_separate_close_model(minilm, cache):
    int8 = SentenceTransformerEmbedder("all-MiniLM-L6-v2-int8", _minilm_path, quantized=True, base_name="all-MiniLM-L6-v2")
    texts = _note_windows(40)
    q = int8.embed(texts)
    assert int8.backend == "onnx" and int8.onnx_dir == minilm.onnx_dir
    check = json.loads((minilm.onnx_dir / "check-int8.json").read_text())
    assert check["ok"] and check["mean_cosine"] >= onnx.INT8_MIN_MEAN_COSINE
    assert np.sum(q * minilm.embed(texts), axis=1).mean() >= 0.98
    assert "all-MiniLM-L6-v2-int8" in registry.MODELS


# -- torch in bfloat16 -----------------------------------------------------------
def test_amx_detection_is_a_bool():
    assert isinstance(chooser.cpu_has_amx_bf16(), bool)


def test_bf16_is_preferred_only_for_large_batches_on_amx(monkeypatch):
    big = ["x" * 1000] * (chooser.BF16_MIN_CHARS // 1000)
    monkeypatch.setattr(chooser, "cpu_has_amx_bf16", lambda: True)
    monkeypatch.setattr(chooser, "torch_available", lambda: True)
    assert chooser.bf16_preferred(big)
    assert not chooser.bf16_preferred(big[:-1])  # one text short of the threshold
    assert not chooser.bf16_preferred(["x" * chooser.BF16_MIN_CHARS])  # a query, however long
    monkeypatch.setattr(chooser, "torch_available", lambda: False)
    assert not chooser.bf16_preferred(big)
    monkeypatch.setattr(chooser, "torch_available", lambda: True)
    monkeypatch.setattr(chooser, "cpu_has_amx_bf16", lambda: False)
    assert not chooser.bf16_preferred(big)


def test_bf16_is_opt_in(monkeypatch):
    """On an AMX CPU, ``auto`` takes bf16 for a large batch only when the
    setting allows it; ``DSQA_ENCODER=bf16`` forces it either way."""
    monkeypatch.setattr(chooser, "bf16_preferred", lambda texts: True)
    assert Settings().bf16_encoder is False
    assert chooser.first_choice(["doc"] * 10, mode="auto", allow_bf16=False) == "onnx"
    assert chooser.first_choice(["doc"] * 10, mode="auto", allow_bf16=True) == "bf16"
    assert chooser.first_choice(["doc"], mode="bf16", allow_bf16=False) == "bf16"
    assert chooser.first_choice(["doc"] * 10, mode="torch", allow_bf16=True) == "torch"


def test_a_registered_model_is_found_by_name(fake_model, register):
    """``dsqa.register_model`` is how another model joins; one without a
    bf16 encoder ignores the setting."""
    assert get_embedder("fake-hash") is fake_model
    assert get_embedder("fake-hash", bf16=True) is fake_model
    register("fake-hash-2", lambda: fake_model)
    assert get_embedder("fake-hash-2") is fake_model
    with pytest.raises(ModelError, match="unknown embedding model 'nope'"):
        get_embedder("nope")


@pytest.mark.real_model
@pytest.mark.slow
def test_bf16_matches_torch_on_documents(minilm, monkeypatch):
    texts = _note_windows(60)
    monkeypatch.setenv("DSQA_ENCODER", "bf16")
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path)
    vectors = model.embed(texts)
    assert model.last_encoder == "bf16" and model.backend == "bf16"
    assert model.bf16_check["ok"] and model.bf16_check["min_cosine"] >= encoder_check.MIN_COSINE
    reference = minilm.embed_torch(texts)
    assert np.sum(vectors * reference, axis=1).min() >= 0.9999
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


@pytest.mark.real_model
@pytest.mark.slow
def test_auto_takes_bf16_for_a_large_batch_and_onnx_for_questions(minilm, monkeypatch):
    monkeypatch.setattr(chooser, "bf16_preferred", lambda texts: len(texts) > 4)
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path)
    allowed = model.with_bf16()
    allowed.embed(["what is a docker volume"])
    assert allowed.last_encoder == "onnx"
    model.embed(_note_windows(10))
    assert model.last_encoder == "onnx"  # not without the setting
    allowed.embed(_note_windows(10))
    assert allowed.last_encoder == "bf16"


@pytest.mark.real_model
@pytest.mark.slow
def test_a_bf16_encoder_failing_its_check_is_not_used(minilm, monkeypatch, caplog):
    import dsqa.encoders.bf16 as bf16

    bad = {"ok": False, "min_cosine": 0.5, "mean_cosine": 0.9, "texts": 3, "threshold": encoder_check.MIN_COSINE}
    monkeypatch.setattr(bf16, "checked_encoder", lambda *a, **k: (None, bad))
    monkeypatch.setattr(chooser, "bf16_preferred", lambda texts: True)
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", _minilm_path)
    texts = _note_windows(8)
    vectors = model.embed(texts, allow_bf16=True)
    assert model.last_encoder == "onnx" and "least cosine 0.500000" in caplog.text
    assert np.allclose(vectors, minilm.embed(texts), atol=1e-6)
    monkeypatch.setenv("DSQA_ENCODER", "bf16")
    with pytest.raises(ModelError, match="DSQA_ENCODER=bf16.*least cosine 0.5"):
        model.embed(texts)



def test_a_registered_model_must_subclass_the_embedder_base_class(register):
    """The optional capabilities come from the base class, so a model that
    is not an ``Embedder`` is refused by name, in one line."""
    class Loose:
        name, dimension, max_tokens = "loose", 4, 16

    register("loose-model", Loose)
    with pytest.raises(ModelError, match="not a dsqa.encoders.Embedder"):
        get_embedder("loose-model")


def test_the_base_class_defaults_count_one_by_one_and_embed_into_an_array(fake_model):
    texts = ["overlay networks", "service discovery in swarm mode"]
    assert fake_model.count_tokens_batch(texts) == [fake_model.count_tokens(t) for t in texts]
    out = np.zeros((2, fake_model.dimension), dtype=np.float32)
    assert fake_model.embed_into(texts, out) is out
    assert np.array_equal(out, fake_model.embed(texts)) and fake_model.last_encoder == ""
