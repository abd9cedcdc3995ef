"""One measurement in a fresh interpreter: ``python -m bench.worker TASK JSON``.

Each task prints one JSON line (the last line of stdout). Running each in
its own process keeps imports, thread settings, the encoder choice and the
peak memory (read by the parent with wait4) to that measurement alone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import DEVSET, KEP_DEVSET, peak_rss_mb, percentile, timed_ms

TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def recall_at_10(found: np.ndarray, query: np.ndarray, vectors: np.ndarray, tenth: float) -> float:
    """Share of the 10 returned ids whose exact score reaches the exact 10th
    best score: ties count (the KEP corpus repeats its template text, so
    several windows have the same vector and any of them is right)."""
    if len(found) == 0:
        return 0.0
    scores = vectors[np.asarray(found, dtype=np.int64)] @ query
    return float(np.sum(scores >= tenth - 1e-5)) / 10


def task(func: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    TASKS[func.__name__] = func
    return func


def _questions(path: Path) -> list[Any]:
    from dsqa.evaluation import load_questions

    return load_questions(path)


def _cycle(items: list[str], n: int) -> list[str]:
    return [items[i % len(items)] for i in range(max(n, len(items)))]


def _quality(report: Any) -> dict[str, Any]:
    return {
        "hit@1": round(report.hit_at[1], 4),
        "hit@5": round(report.hit_at[5], 4),
        "mrr10": round(report.mrr10, 4),
        "ndcg10": round(report.ndcg10, 4),
        "answer_quotes": round(report.answer_quotes, 4),
        "refusal": report.refusal,
        "median_passage_chars": report.median_passage_chars,
    }


def _set_torch_threads(args: dict[str, Any]) -> None:
    if args.get("torch_threads"):
        import torch

        torch.set_num_threads(int(args["torch_threads"]))


# -- the query path ----------------------------------------------------------


@task
def query_warm(args: dict[str, Any]) -> dict[str, Any]:
    """Warm ``ask`` and ``search`` latency on an index, and the dev-set
    figures (which must not depend on the encoder)."""
    from dsqa import DSQA, Settings
    from dsqa.evaluation import evaluate

    _set_torch_threads(args)
    settings = Settings(auto_reindex=False, **{k: args[k] for k in ("corpus_dir", "index_dir", "model") if args.get(k)})
    engine = DSQA(settings)
    devset = Path(args.get("devset") or DEVSET)
    questions = _questions(devset)
    started = time.perf_counter()
    engine.ask(questions[0].question)
    first = time.perf_counter() - started
    report = evaluate("dsqa", questions, lambda q: engine.ask(q, k=10))
    texts = _cycle([q.question for q in questions], int(args.get("n", 200)))
    extra = [q.question for q in _questions(Path(args["more_questions"]))] if args.get("more_questions") else []
    texts = _cycle(texts + extra, int(args.get("n", 200)))
    ask_ms = [timed_ms(lambda t=t: engine.ask(t), 1)[0] for t in texts]
    search_ms = [timed_ms(lambda t=t: engine.search(t, k=5), 1)[0] for t in texts]
    embedder = engine.embedder
    index = engine.index()
    embed_ms = [timed_ms(lambda t=t: embedder.embed([t]), 1)[0] for t in texts]
    vectors = index.vectors
    return {
        "backend": getattr(embedder, "backend", "?"),
        "first_ask_s": round(first, 3),
        "queries": len(texts),
        "ask_p50": percentile(ask_ms, 50),
        "ask_p95": percentile(ask_ms, 95),
        "search_p50": percentile(search_ms, 50),
        "search_p95": percentile(search_ms, 95),
        "embed_p50": percentile(embed_ms, 50),
        "chunks": len(index.chunks),
        "vectors": int(len(vectors)),
        "index_type": index.manifest.get("index_type", "?"),
        "quality": _quality(report),
        "rss_mb": peak_rss_mb(),
    }


@task
def encoder_latency(args: dict[str, Any]) -> dict[str, Any]:
    """One query at a time through one encoder at one thread count."""
    from dsqa.encoders import SentenceTransformerEmbedder, get_embedder

    threads = int(args["threads"])
    model = get_embedder("all-MiniLM-L6-v2")
    assert isinstance(model, SentenceTransformerEmbedder)
    questions = [q.question for q in _questions(DEVSET)]
    started = time.perf_counter()
    if args["backend"] == "onnx":
        encoder = model.onnx_encoder()
        assert encoder is not None, "no ONNX export"
        run = lambda t: encoder.embed([t], threads=threads)  # noqa: E731
    else:
        import torch

        torch.set_num_threads(threads)
        run = lambda t: model.embed_torch([t])  # noqa: E731
    run("warm up")
    load = time.perf_counter() - started
    ms = [timed_ms(lambda t=t: run(t), 1)[0] for t in _cycle(questions, 200)]
    return {"load_s": round(load, 3), "p50": percentile(ms, 50), "p95": percentile(ms, 95)}


@task
def doc_throughput(args: dict[str, Any]) -> dict[str, Any]:
    """Document-side throughput of one encoder on a sample of window texts."""
    from dsqa.encoders import SentenceTransformerEmbedder, get_embedder

    texts = json.loads(Path(args["texts"]).read_text())
    model = get_embedder(args.get("model", "all-MiniLM-L6-v2"))
    assert isinstance(model, SentenceTransformerEmbedder)
    tokens = sum(min(model.max_tokens, model.count_tokens(t) + 2) for t in texts)
    threads = int(args["threads"])
    if args["backend"] == "torch":
        import torch

        torch.set_num_threads(threads)
        model.embed_torch(["warm up"])
        run = lambda: model.embed_torch(texts)  # noqa: E731
    elif args["backend"] == "bf16":
        import torch

        bf16 = model.bf16_encoder(required=True)
        bf16.embed(["warm up"], workers=threads)
        run = lambda: bf16.embed(texts, workers=threads)  # noqa: E731
    else:
        encoder = model.onnx_encoder()
        encoder.embed(["warm up"], threads=threads)
        run = lambda: encoder.embed(texts, threads=threads, batch_size=int(args.get("batch", 16)))  # noqa: E731
    seconds = timed_ms(run, 1)[0] / 1000
    return {"texts": len(texts), "tokens": tokens, "seconds": seconds, "texts_per_s": len(texts) / seconds, "tokens_per_s": tokens / seconds}


@task
def devset_answers(args: dict[str, Any]) -> dict[str, Any]:
    """A dev set's ranking, refusal and answer figures (``dsqa eval``'s),
    on an index brought up to date first when ``reindex`` is set."""
    from dsqa import DSQA, Settings
    from dsqa.evaluation import evaluate, note_reader

    settings = Settings(auto_reindex=False, corpus_dir=Path(args["corpus_dir"]), index_dir=Path(args["index_dir"]))
    engine = DSQA(settings)
    if args.get("reindex"):
        engine.reindex()
    questions = _questions(Path(args["devset"]))
    engine.ask(questions[0].question)
    report = evaluate(args["name"], questions, lambda q: engine.ask(q, k=10), note_text=note_reader(settings.corpus_dir))
    return {
        **_quality(report),
        "questions": report.questions,
        "answerable": report.answerable,
        "uncovered": report.uncovered,
        "quotes": report.quotes,
        "cut_quotes": report.cut_quotes,
        "cut": report.cut,
        "misses": report.misses,
        "ask_p50": report.latency_ms["p50"],
    }


# -- indexing ----------------------------------------------------------------------


class _Phases:
    """Wall time spent in the parts of a reindex, by wrapping them. Only the
    outermost wrapped call is timed, so a part that runs another (the
    refusal calibration embeds its questions; a BM25 update builds its
    matrix) is counted once, under its own label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._depth = 0

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*a: Any, **k: Any) -> Any:
            if self._depth:
                return original(*a, **k)
            self._depth += 1
            started = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                self._depth -= 1
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, name, timed)


def _reindex_phases(model: Any) -> _Phases:
    """The parts of a reindex wrapped for timing (``model``: the embedder
    it uses). The notes are read as they are chunked (a streaming reindex),
    so "read notes" is the time spent reading and extracting each one."""
    from dsqa import storage
    from dsqa.build import reindex as reindex_module
    from dsqa.build.chunking import Chunker
    from dsqa.sources import loading
    from dsqa.storage import ann
    from dsqa.storage.lexical import CountsBuilder, LexicalIndex

    phases = _Phases()
    phases.wrap(loading, "_load_note", "read notes")
    phases.wrap(Chunker, "chunk", "chunk + windows")
    phases.wrap(model, "embed", "embed")
    for owner, name in ((CountsBuilder, "add"), (LexicalIndex, "of_counts"), (LexicalIndex, "updated")):
        phases.wrap(owner, name, "BM25")
    for owner, name in ((ann.StreamBuilder, "finish"), (ann, "build"), (ann, "update")):
        phases.wrap(owner, name, "FAISS build")
    phases.wrap(reindex_module, "calibrate", "calibration")
    phases.wrap(storage.GenerationWriter, "finish", "write")
    return phases


@task
def reindex(args: dict[str, Any]) -> dict[str, Any]:
    """A reindex of ``corpus_dir`` into ``index_dir`` with the time of each
    phase: reading notes, chunking (incl. sentence windows), embedding, BM25,
    the FAISS build, the refusal calibration, writing."""
    from dsqa import storage
    from dsqa.build import reindex as reindex_module
    from dsqa.encoders import get_embedder
    from dsqa.settings import Settings

    # The bf16 encoder is opt-in (Settings.bf16_encoder); the benchmark
    # measures large reindexes with it, as before it was.
    settings = Settings(
        corpus_dir=Path(args["corpus_dir"]), index_dir=Path(args["index_dir"]),
        model=args.get("model") or "all-MiniLM-L6-v2", bf16_encoder=bool(args.get("bf16_encoder", True)),
    )
    model = get_embedder(settings.model, bf16=settings.bf16_encoder)
    if args.get("warm", True):
        model.embed(["load the model before timing"])  # model load / export is not indexing
    phases = _reindex_phases(model)
    embedded_texts = [0]
    inner_embed = model.embed

    def counting(texts: Any, **k: Any) -> Any:
        embedded_texts[0] += len(texts)
        return inner_embed(texts, **k)

    model.embed = counting
    started = time.perf_counter()
    report = reindex_module.reindex(settings, full=bool(args.get("full")))
    seconds = time.perf_counter() - started
    manifest = storage.read_manifest(settings.index_dir)
    gen = storage.current_generation(settings.index_dir)
    size = sum(f.stat().st_size for f in gen.rglob("*") if f.is_file()) / 1e6
    return {
        "seconds": seconds,
        "report": report.to_dict(),
        "embedded_texts": embedded_texts[0],
        "vectors": manifest.get("vector_count"),
        "index_type": manifest.get("index_type"),
        "index_mb": size,
        "phases": {k: round(v, 3) for k, v in phases.seconds.items()},
        "backend": getattr(model, "backend", "?"),
    }


@task
def kep_query(args: dict[str, Any]) -> dict[str, Any]:
    """Warm query latency and dev-set figures on the KEP index, and the
    recall@10 of its ANN index against exact search on its real vectors."""
    from dsqa.storage import ann

    out = query_warm({**args, "devset": str(KEP_DEVSET), "more_questions": str(DEVSET)})
    from dsqa import DSQA, Settings

    engine = DSQA(Settings(auto_reindex=False, corpus_dir=Path(args["corpus_dir"]), index_dir=Path(args["index_dir"]), model=args.get("model") or "all-MiniLM-L6-v2"))
    stored = engine.index()
    questions = [q.question for q in _questions(KEP_DEVSET)] + [q.question for q in _questions(DEVSET)]
    qv = engine.embedder.embed(questions)
    vectors = stored.vectors
    exact = -np.sort(-(qv @ vectors.T), axis=1)[:, 9]  # the exact 10th best score per query
    index, rows = stored.faiss_index, stored.distinct
    recall = []
    ann_ms = []
    for i, q in enumerate(qv):
        started = time.perf_counter()
        _, ids = ann.search(index, q, 10, rows=rows)
        ann_ms.append((time.perf_counter() - started) * 1000)
        recall.append(recall_at_10(ids, q, vectors, exact[i]))
    out["ann"] = {
        "type": ann.describe(index),
        "entries": int(index.ntotal),
        "recall@10": float(np.mean(recall)),
        "p50_ms": percentile(ann_ms, 50),
        "queries": len(qv),
    }
    if args.get("compare_ann"):
        out["ann_variants"] = _ann_variants(vectors, qv, exact)
    return out


def _ann_variants(vectors: np.ndarray, qv: np.ndarray, exact: np.ndarray) -> list[dict[str, Any]]:
    """HNSW and IVF at several search breadths on the same real vectors,
    over the distinct vectors (what dsqa builds) and, for HNSW, over every
    row with its copies."""
    from bench import ivf
    from dsqa.storage import ann

    unique, distinct = ann.distinct(vectors)
    out = []
    variants = (
        ("hnsw", "distinct", (128, 256, 384, 512, 768)),
        ("hnsw", "every row", (256, 512, 768)),
        ("ivf", "distinct", (32, 64, 128)),
    )
    for kind, over, values in variants:
        rows = distinct if over == "distinct" else None
        started = time.perf_counter()
        over_vectors = unique if rows is not None else vectors
        index = ivf.build(over_vectors) if kind == "ivf" else ann.build_index(over_vectors, kind=kind)
        build_s = time.perf_counter() - started
        for value in values:
            if kind == "hnsw":
                index.hnsw.efSearch = value
            else:
                index.nprobe = value
            ms, recall = [], []
            for i, q in enumerate(qv):
                started = time.perf_counter()
                _, ids = ann.search(index, q, 10, rows=rows)
                ms.append((time.perf_counter() - started) * 1000)
                recall.append(recall_at_10(ids, q, vectors, exact[i]))
            described = ivf.describe(index) if kind == "ivf" else ann.describe(index)
            out.append({
                "index": f"{described}, {over} ({index.ntotal:,})",
                "build_s": build_s,
                "recall@10": float(np.mean(recall)),
                "p50_ms": percentile(ms, 50),
            })
    return out


# -- saved documentation (HTML) ------------------------------------------------------


@task
def html_corpus(args: dict[str, Any]) -> dict[str, Any]:
    """A full reindex of a folder of saved pages with one HTML reader
    (``reader``: ``"v1"``, the reader before issue 29, or ``"current"``),
    its wall and CPU time, and what the index holds: chunks, vectors, size,
    chrome chunks and wrapped-line fragments (bench/html_quality.py), and
    the dev-set figures of ``devset``."""
    import resource

    from bench import html_quality, html_v1
    from dsqa import DSQA, Settings, storage
    from dsqa.build import reindex as reindex_module
    from dsqa.evaluation import evaluate

    html_v1.read_in_process(args["reader"] == "v1")
    settings = Settings(corpus_dir=Path(args["corpus_dir"]), index_dir=Path(args["index_dir"]))
    engine = DSQA(Settings(corpus_dir=settings.corpus_dir, index_dir=settings.index_dir, auto_reindex=False))
    engine.embedder.embed(["load the model before timing"])

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    cpu_started, started = cpu(), time.perf_counter()
    report = reindex_module.reindex(settings, full=True)
    seconds, cpu_s = time.perf_counter() - started, cpu() - cpu_started
    manifest = storage.read_manifest(settings.index_dir)
    generation = storage.current_generation(settings.index_dir)
    size = sum(f.stat().st_size for f in generation.rglob("*") if f.is_file()) / 1e6
    chunks = storage.load(settings.index_dir).chunks
    corpus = html_quality.Corpus([(c.source, c.heading, c.text) for c in chunks])
    spans, fragments = html_quality.chunker_fragments(settings, engine.embedder)
    questions = _questions(Path(args["devset"]))
    quality = _quality(evaluate("dsqa", questions, lambda q: engine.ask(q, k=10)))
    vectors = int(manifest.get("vector_count") or 0)
    entries = int(manifest.get("ann_entries") or vectors)
    return {
        "reader": args["reader"],
        "notes": len(report.added),
        "skipped": len(report.skipped),
        "chunks": len(chunks),
        "vectors": vectors,
        "vectors_per_chunk": vectors / max(1, len(chunks)),
        "entries": entries,
        "entries_per_chunk": entries / max(1, len(chunks)),
        "index_mb": size,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "chrome_share": corpus.chrome_share(),
        "spans": spans,
        "fragment_share": fragments / max(1, spans),
        "questions": len(questions),
        "quality": quality,
    }


# -- the LangChain-tutorial baseline ----------------------------------------------------


@task
def baseline(args: dict[str, Any]) -> dict[str, Any]:
    """The LangChain tutorial's pipeline on the same notes: each note split
    by RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200),
    embedded with the same MiniLM model through sentence-transformers (what
    HuggingFaceEmbeddings does), a flat FAISS L2 index (what
    FAISS.from_documents builds), top k by similarity, no reranker, no
    keyword search, no refusal. Scored with dsqa's own dev-set helpers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import faiss
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    from dsqa.encoders import minilm_path
    from dsqa.evaluation import evaluate
    from dsqa.results import Answer, Passage
    from dsqa.sources.loading import load_corpus

    _set_torch_threads(args)
    started = time.perf_counter()
    model = SentenceTransformer(str(minilm_path()), device="cpu")
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    corpus = load_corpus(Path(args["corpus_dir"]))
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    docs: list[tuple[str, str]] = []
    for note in corpus.notes:
        docs.extend((note.source, piece) for piece in splitter.split_text(note.text))
    vectors = model.encode([t for _, t in docs], batch_size=32, convert_to_numpy=True).astype(np.float32)
    index = faiss.IndexFlatL2(vectors.shape[1])
    index.add(vectors)
    index_s = time.perf_counter() - started

    def search(question: str, k: int = 10) -> list[Passage]:
        q = model.encode([question], convert_to_numpy=True).astype(np.float32)
        dist, ids = index.search(q, k)
        return [Passage(docs[i][1], docs[i][0], "", 0, 0, float(-d)) for d, i in zip(dist[0], ids[0], strict=True) if i >= 0]

    questions = _questions(DEVSET)
    search(questions[0].question)
    report = evaluate("langchain", questions, lambda q: Answer(q, search(q), True, "", 1.0))
    texts = _cycle([q.question for q in questions], int(args.get("n", 200)))
    ms = [timed_ms(lambda t=t: search(t, 5), 1)[0] for t in texts]
    return {
        "chunks": len(docs),
        "model_load_s": load_s,
        "index_s": index_s,
        "search_p50": percentile(ms, 50),
        "search_p95": percentile(ms, 95),
        "quality": _quality(report),
        "rss_mb": peak_rss_mb(),
    }


# -- the scale curve ---------------------------------------------------------------


@task
def scale(args: dict[str, Any]) -> dict[str, Any]:
    """Build and query one index type over ``n`` synthetic vectors."""
    import faiss

    from bench import synthetic
    from dsqa.storage import ann

    n, kind = int(args["n"]), args["kind"]
    n_queries = int(args.get("queries", 200))
    x, queries = synthetic.vectors(n, n_queries=n_queries, seed=int(args.get("seed", 0)))
    base_rss = peak_rss_mb()
    started = time.perf_counter()
    index = ann.build_index(x, kind=kind)
    build_s = time.perf_counter() - started
    if kind == "hnsw":
        index_bytes = n * x.shape[1] * 4 + index.hnsw.neighbors.size() * 4 + index.hnsw.levels.size() * 4 + index.hnsw.offsets.size() * 8
    else:
        index_bytes = n * x.shape[1] * 4
    # Exact answers in one batched pass (BLAS), for recall.
    flat = faiss.IndexFlatIP(x.shape[1]) if kind != "flat-ip" else index
    if flat is not index:
        flat.add(x)
    exact, _ = flat.search(queries, 10)
    exact = exact[:, 9]
    del flat
    ms, recall = [], []
    ann.search(index, queries[0], 10)
    for i, q in enumerate(queries):
        started = time.perf_counter()
        _, ids = ann.search(index, q, 10)
        ms.append((time.perf_counter() - started) * 1000)
        recall.append(recall_at_10(ids, q, x, exact[i]))
    # dsqa asks the ANN index for 4x the candidates it keeps (k=200 windows).
    ms200 = [timed_ms(lambda q=q: ann.search(index, q, 200), 1)[0] for q in queries[:50]]
    return {
        "n": n,
        "kind": ann.describe(index),
        "build_s": build_s,
        "index_mb": index_bytes / 1e6,
        "vectors_rss_mb": base_rss,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p50_ms_k200": percentile(ms200, 50),
        "recall@10": float(np.mean(recall)),
        "rss_mb": peak_rss_mb(),
    }


# -- embedding on Ray -----------------------------------------------------------------


@task
def ray_sample(args: dict[str, Any]) -> dict[str, Any]:
    """The ray part's sample of KEP texts, written to ``out``."""
    from bench.ray_speed import write_sample

    return write_sample(args)


@task
def ray_embed(args: dict[str, Any]) -> dict[str, Any]:
    """One way of the ray part embedding the sample (local, or on Ray)."""
    from bench.ray_speed import measure

    return measure(args)


@task
def codes(args: dict[str, Any]) -> dict[str, Any]:
    """The vector codes against float32 on an index's real vectors: for
    float32, float16 and 8-bit codes, an index of the type dsqa builds for
    their number, recall@10 of its search against exact float32 search, the
    largest cosine error, and the dev-set figures ranking with the decoded
    vectors (refusal recalibrated on each)."""
    import faiss

    from dsqa import DSQA, Settings, evaluation
    from dsqa.query.calibration import calibrate
    from dsqa.storage import ann

    engine = DSQA(Settings(auto_reindex=False, corpus_dir=Path(args["corpus_dir"]), index_dir=Path(args["index_dir"])))
    retriever = engine.retriever()
    index = retriever.index
    exact = np.ascontiguousarray(np.asarray(index.vectors), dtype=np.float32)
    devset = _questions(KEP_DEVSET)
    qv = engine.embedder.embed([q.question for q in devset] + [q.question for q in _questions(DEVSET)])
    scores = qv @ exact.T
    tenth = -np.sort(-scores, axis=1)[:, 9]
    unique, rows = ann.distinct(exact)
    rows = rows or ann.identity(len(exact))
    kind = ann.choose(len(unique))
    out = []
    for codes in ("float32", ann.FLAT_CODE, ann.HNSW_CODE):
        dim = exact.shape[1]
        if kind == ann.HNSW:
            built = faiss.IndexHNSWFlat(dim, ann.HNSW_M, faiss.METRIC_INNER_PRODUCT) if codes == "float32" else faiss.IndexHNSWSQ(dim, ann._qtype(codes), ann.HNSW_M, faiss.METRIC_INNER_PRODUCT)
            built.hnsw.efConstruction, built.hnsw.efSearch = ann.HNSW_EF_CONSTRUCTION, ann.HNSW_EF_SEARCH
        else:
            built = faiss.IndexFlatIP(dim) if codes == "float32" else faiss.IndexScalarQuantizer(dim, ann._qtype(codes), faiss.METRIC_INNER_PRODUCT)
        ann._add(built, unique)
        decoded = np.asarray(ann.StoredVectors(built, rows))
        recall = [float(np.mean(scores[i, ann.search(built, q, 10, rows=rows)[1][:10]] >= tenth[i] - 1e-6)) for i, q in enumerate(qv)]
        path = Path(args["index_dir"]).parent / f"codes-{codes}.faiss"
        faiss.write_index(built, str(path))
        mb = path.stat().st_size / 1e6
        path.unlink()
        index.faiss_index, index.vectors = built, ann.StoredVectors(built, rows)
        index.manifest["calibration"] = calibrate(retriever)
        report = evaluation.evaluate(codes, devset, lambda q: engine.ask(q, k=10)).to_dict()
        out.append({
            "codes": f"{ann.describe(built)}", "mb": mb, "recall@10": float(np.mean(recall)),
            "max_err": float(np.abs(qv @ decoded.T - scores).max()), "hit@1": report["hit@1"], "hit@5": report["hit@5"],
            "mrr@10": report["mrr@10"], "answerable_refused": report["refusal"]["answerable_refused"],
            "unanswerable_refused": report["refusal"]["unanswerable_refused"],
        })
    return {"vectors": len(exact), "queries": len(qv), "variants": out}


@task
def million_add(args: dict[str, Any]) -> dict[str, Any]:
    """What adding chunks to a big index costs: an index of ``n`` synthetic
    vectors of the type dsqa builds for that many (HNSW with 8-bit codes and
    dsqa's parameters), built once and kept at ``cache`` (built now if that
    file is missing), then ``rounds`` times what a reindex that adds
    ``chunks`` chunks (``per_chunk`` vectors each) does with it: read the file
    into memory (``ann.read(writable=True)``), ``ann.update`` with every old
    entry kept, write the new file and fsync it."""
    import faiss

    from bench import synthetic
    from dsqa.storage import ann

    n, cache = int(args["n"]), Path(args["cache"])
    build_s = None
    if not cache.is_file():
        x, _ = synthetic.vectors(n)
        started = time.perf_counter()
        index = ann.build_index(x, kind=ann.choose(n))
        build_s = time.perf_counter() - started
        del x
        faiss.write_index(index, str(cache) + ".tmp")
        os.replace(str(cache) + ".tmp", cache)
        del index
    # New chunks of the same corpus: vectors drawn as the index's were.
    new = synthetic.vectors(0, n_queries=int(args["chunks"]) * int(args["per_chunk"]))[1]
    rounds = []
    out = cache.with_name(cache.name + ".updated")
    for _ in range(int(args.get("rounds", 3))):
        started = time.perf_counter()
        index = ann.read(cache, writable=True)
        read_s = time.perf_counter() - started
        reused = np.concatenate([np.arange(index.ntotal, dtype=np.int64), np.full(len(new), -1, dtype=np.int64)])
        started = time.perf_counter()
        updated, rows, rebuilt = ann.update(index, reused, new)
        add_s = time.perf_counter() - started
        started = time.perf_counter()
        faiss.write_index(updated, str(out))
        fd = os.open(out, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        write_s = time.perf_counter() - started
        rounds.append({"read_s": read_s, "add_s": add_s, "write_s": write_s, "total_s": read_s + add_s + write_s, "rebuilt": rebuilt})
        del index, updated
    out.unlink(missing_ok=True)
    kept = ann.read(cache)
    return {
        "n": n, "kind": ann.describe(kept), "build_s": build_s, "file_mb": cache.stat().st_size / 1e6,
        "added_vectors": len(new), "rounds": rounds,
    }


@task
def linux_reindex(args: dict[str, Any]) -> dict[str, Any]:
    """A full reindex (default settings and encoder) of a folder of web
    pages: its report, the index's size and what the readers extracted."""
    import re

    from dsqa import Settings, storage
    from dsqa.build.reindex import reindex

    settings = Settings(corpus_dir=Path(args["corpus_dir"]), index_dir=Path(args["index_dir"]), allow_large_corpus=True)
    report = reindex(settings, full=True)
    index = storage.load(settings.index_dir)
    gen = storage.current_generation(settings.index_dir)
    text = sum(len(c.text.encode()) for c in index.chunks)  # chunk texts overlap a little: an upper bound
    digits = re.compile(r"\d+")
    return {
        "notes": len(index.manifest["notes"]),
        "chunks": len(index.chunks),
        "vectors": len(index.windows),
        "text_mb": text / 1e6,
        "index_mb": sum(p.stat().st_size for p in gen.rglob("*") if p.is_file()) / 1e6,
        "seconds": report.seconds,
        "skipped": [{"note": n, "why": digits.sub("N", why)} for n, why in report.skipped],
        "warned": [{"note": n, "why": digits.sub("N", w)} for n, w in report.warnings],
    }


def main() -> None:
    name, raw = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    if name not in TASKS:
        raise SystemExit(f"unknown task {name!r}: {', '.join(TASKS)}")
    result = TASKS[name](json.loads(raw))
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
