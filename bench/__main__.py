"""dsqa's benchmarks: ``python -m bench [--only PART,...] [--quick] [--out FILE] [--update]``.

Parts (all by default, in this order):

* ``query``    the query path on the bundled notes: warm ask/search p50/p95,
               the query encoder alone (onnxruntime vs torch, 1 vs 2 threads),
               cold ``dsqa ask`` as a whole process, peak memory;
* ``answers``  every dev set's ranking, refusal and short-answer figures
               (``dsqa eval``'s): the bundled notes (committed index), the
               KEP dev set, Black's docs, the fresh notes and the study notes,
               each but the first on an index kept in dsqa's cache folder and
               brought up to date by a reindex;
* ``indexing`` full reindex of the notes (ONNX fp32, torch, ONNX int8), no-op
               reindex, one-paragraph change; time per phase;
* ``kep``      the Kubernetes design documents (676 KEPs, 21 MB): full index
               time and phases, chunks/s, size on disk, RAM, warm query
               latency, dev-set figures, ANN recall on the real vectors;
               document-side encoder throughput;
* ``baseline`` the LangChain-tutorial pipeline on the same notes and dev
               questions, side by side, as ratios;
* ``scale``    synthetic vectors at 10k, 100k, 1M: build time, memory, query
               p50, recall@10 against exact, for flat and HNSW, and the flat
               threshold;
* ``ray``      embedding a sample of KEP texts on the local path against a
               local Ray instance with 1 and 2 actors (bench/ray_speed.py):
               medians, ratios to the local path, Ray's start-up apart;
* ``html``     each HTML dev corpus (bench/data/html/: two Debian-packaged
               Sphinx manuals and saved blog/wiki pages) indexed by the code
               issue 29 was filed against (b8f666b, its own checkout and
               process), by today's code with the HTML reader before issue
               29, and by today's: chunks, vectors, index size, reindex CPU,
               chrome chunks, wrapped-line fragments, hit@1/hit@5/MRR, side
               by side ($DSQA_BENCH_HTML: some corpora only).
* ``large``    big folders (bench/large.py): the KEPs indexed by the code
               before issue 27 and by this checkout in the same run (full
               reindex time and peak RSS, index on disk, cold ask, one note
               changed / added / removed), and the vector codes (float32,
               float16, 8-bit) against exact search on the real vectors;
* ``adds``     1,000 chunks added to a 1M-vector HNSW index as a reindex
               adds them (the index built once, kept in $DSQA_BENCH_CACHE);
* ``linux``    a full reindex of Debian's linux-doc-6.1 HTML pages (all, or
               $DSQA_BENCH_LINUX_FOLDERS): time, peak RSS, chunks, index
               size, what the HTML reader skipped or warned about.

Each measurement runs in a fresh interpreter (``bench.worker``). A full run
(no ``--only``, no ``--quick``) writes ``bench/RESULTS.md`` and the README's
figure table from it; other runs print only, unless ``--out`` says where to
write. ``--only PART,... --update`` re-measures those parts and replaces only
their sections of ``bench/RESULTS.md`` (or ``--out``), keeping every other
byte, and records the date, commit, machine and load of that measurement in
each replaced section (bench/results_file.py). ``--quick`` shrinks every part
(fewer queries and runs, one KEP folder, no 1M, a smaller Ray sample in fewer
rounds) to a few minutes. Timings on a shared 2-core machine are noisy:
medians and ratios are reported, and the load average is recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    DSQA,
    KEP_SOURCE,
    PYTHON,
    ROOT,
    Table,
    dir_size_mb,
    machine,
    median,
    run_measured,
    worker,
)
from bench.large import part_adds, part_large, part_linux
from bench.results_file import (
    PartResult,
    ResultsError,
    check,
    remeasured_note,
    render,
    update,
)

PARTS = ("query", "answers", "indexing", "kep", "baseline", "scale", "ray", "html", "large", "adds", "linux")
QUESTION = "how do overlay networks do service discovery"


class Run:
    def __init__(self, quick: bool, tmp: Path):
        self.quick = quick
        self.tmp = tmp
        self.parts: dict[str, PartResult] = {}
        self.current = ""
        self.cache: dict[str, Any] = {}

    def begin(self, part: str) -> PartResult:
        """Collect the tables and headlines that follow as ``part``'s."""
        self.parts[part] = PartResult(part)
        self.current = part
        return self.parts[part]

    @property
    def headlines(self) -> dict[str, str]:
        """The current part's headlines (``run.headlines[name] = figure``)."""
        return self.parts[self.current].headlines

    def table(self, table: Table) -> Table:
        self.parts[self.current].tables.append(table)
        print(table.text(), flush=True)
        return table

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # -- shared fixtures ------------------------------------------------------
    def notes_copy(self) -> tuple[Path, Path]:
        """A copy of the bundled notes and committed index, so nothing here
        can touch the repository's index/. Side by side as corpus/ and
        index/, as the index names its notes (``../corpus``)."""
        if "notes" not in self.cache:
            corpus, index = self.tmp / "notes" / "corpus", self.tmp / "notes" / "index"
            shutil.copytree(ROOT / "corpus", corpus)
            shutil.copytree(ROOT / "index", index, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
            self.cache["notes"] = (corpus, index)
        return self.cache["notes"]

    def warm_query(self) -> dict[str, Any]:
        if "warm" not in self.cache:
            corpus, index = self.notes_copy()
            self.log("warm ask/search on the bundled notes (onnx)")
            self.cache["warm"] = worker("query_warm", {"corpus_dir": str(corpus), "index_dir": str(index), "n": 60 if self.quick else 225})
        return self.cache["warm"]


# -- 1. query path --------------------------------------------------------------------


def part_query(run: Run) -> None:
    corpus, index = run.notes_copy()
    paths = {"corpus_dir": str(corpus), "index_dir": str(index), "n": 60 if run.quick else 225}
    cli = [DSQA, "ask", QUESTION, "--corpus", str(corpus), "--index", str(index)]
    run.log("cold dsqa ask: warm-up run (makes the ONNX export if missing, brings the copy up to date)")
    run_measured(cli)
    warm = run.warm_query()
    run.log("warm ask/search with the torch encoder")
    torch_warm = worker("query_warm", paths, env={"DSQA_ENCODER": "torch"})

    t = Table(
        f"Query path, bundled notes ({warm['chunks']} chunks, {warm['vectors']} window vectors, {warm['index_type']}): warm, in one process",
        ["encoder", "queries", "ask p50 ms", "ask p95 ms", "search p50 ms", "search p95 ms", "query embed p50 ms", "hit@1", "hit@5", "MRR@10", "refused (answerable / unanswerable)", "peak RSS MB"],
    )
    for name, r in (("onnxruntime (default)", warm), ("sentence-transformers (torch)", torch_warm)):
        q = r["quality"]
        t.add(name, r["queries"], r["ask_p50"], r["ask_p95"], r["search_p50"], r["search_p95"], r["embed_p50"], q["hit@1"], q["hit@5"], q["mrr10"],
              f"{q['refusal']['answerable_refused']} / {q['refusal']['unanswerable_refused']}", r["peak_rss_mb"])
    same = warm["quality"] == torch_warm["quality"]
    t.notes.append(f"Dev-set figures identical between the two encoders: {'yes' if same else 'NO'} ({json.dumps(warm['quality'])}).")
    t.notes.append("Latencies are per call over the dev questions (cycled to at least 200 calls); ask includes the short answer and refusal.")
    run.table(t)

    run.log("query encoder alone: onnx/torch x 1/2 threads")
    t = Table("Query encoder alone (one dev question at a time, 200 calls)", ["encoder", "threads", "load s", "p50 ms", "p95 ms"])
    for backend in ("onnx", "torch"):
        for threads in (1, 2):
            r = worker("encoder_latency", {"backend": backend, "threads": threads})
            t.add("onnxruntime" if backend == "onnx" else "torch", threads, r["load_s"], r["p50"], r["p95"])
    t.notes.append("dsqa runs single queries on a one-thread onnxruntime session, batches of documents on all cores.")
    run.table(t)

    runs = 3 if run.quick else 7
    run.log(f"cold dsqa ask x{runs} (onnx) and x{max(1, runs // 2)} (torch)")
    onnx_runs = [run_measured(cli) for _ in range(runs)]
    torch_runs = [run_measured(cli, env={"DSQA_ENCODER": "torch"}) for _ in range(max(1, runs // 2))]
    imp = [run_measured([PYTHON, "-c", "import dsqa.cli"])[0] for _ in range(runs)]
    t = Table("Cold `dsqa ask` as a whole process (bundled notes, committed index)", ["encoder", "runs", "median s", "min s", "max s", "peak RSS MB"])
    for name, rs in (("onnxruntime (default)", onnx_runs), ("sentence-transformers (torch)", torch_runs)):
        secs = [r[0] for r in rs]
        t.add(name, len(rs), median(secs), min(secs), max(secs), median([r[1] for r in rs]))
    t.add("`python -c 'import dsqa.cli'` only", len(imp), median(imp), min(imp), max(imp), "-")
    t.notes.append(f"Command: `dsqa ask \"{QUESTION}\" --corpus <copy> --index <copy>`; the first, untimed run made the ONNX export if it was missing.")
    run.table(t)
    cold = median([r[0] for r in onnx_runs])
    cold_torch = median([r[0] for r in torch_runs])
    run.headlines["cold dsqa ask (median)"] = f"{cold:.2f} s (torch encoder: {cold_torch:.2f} s, {cold_torch / cold:.1f}x slower)"
    run.headlines["warm ask / search p50 (notes)"] = f"{warm['ask_p50']:.1f} ms / {warm['search_p50']:.1f} ms (torch encoder: {torch_warm['ask_p50']:.1f} / {torch_warm['search_p50']:.1f} ms)"
    run.headlines["dev-set figures, onnx vs torch encoder"] = "identical" if same else "DIFFERENT"


# -- 1b. the dev sets' answers ------------------------------------------------------------


def devsets(run: Run) -> list[tuple[str, Path, Path, Path | None]]:
    """(name, questions, corpus, index or None to build one) of every dev set
    present on this machine: the KEP set needs the design documents."""
    from dsqa import evaluation

    notes_corpus, notes_index = run.notes_copy()
    sets: list[tuple[str, Path, Path, Path | None]] = [("notes", evaluation.DEFAULT_DEVSET, notes_corpus, notes_index)]
    if KEP_SOURCE.is_dir():
        sets.append(("KEP", evaluation.KEP_DEVSET, evaluation.prepare_kep_corpus(_kept("kep-corpus"), KEP_SOURCE), None))
    else:
        run.log(f"no KEP dev set: no corpus at {KEP_SOURCE}")
    sets += [
        ("Black docs", ROOT / "bench" / "data" / "third" / "questions.jsonl", ROOT / "bench" / "data" / "third" / "black", None),
        ("fresh notes", ROOT / "tests" / "data" / "fresh_questions.jsonl", ROOT / "tests" / "data" / "fresh_notes", None),
        ("study notes", evaluation.STUDY_DEVSET, evaluation.STUDY_CORPUS, None),
    ]
    return sets


def _kept(name: str) -> Path:
    """Where the answers part keeps a dev set's corpus copy or index between
    runs (dsqa's cache folder): each run brings it up to date with a reindex,
    which rebuilds whatever this checkout's chunking or calibration changed,
    so only a first run pays for the KEPs' full index."""
    from dsqa.paths import cache_dir

    return cache_dir() / "bench-answers" / name


def _kept_index(name: str, corpus: Path) -> Path:
    """The kept index of a dev set, one per corpus folder: dsqa never
    rewrites an index built from another folder (another checkout's copy
    of the same notes is another folder)."""
    tag = hashlib.sha1(str(Path(corpus).resolve()).encode()).hexdigest()[:8]
    return _kept(f"index-{name.replace(' ', '-')}-{tag}")


def part_answers(run: Run) -> None:
    t = Table(
        "Dev sets: ranking, refusal and the short answers (what `dsqa eval` reports)",
        ["dev set", "questions (answerable)", "hit@1", "hit@5", "MRR@10", "answer states the fact", "cut-off quoted sentences",
         "uncovered refused or low-confidence", "answerable refused", "answerable low-confidence", "ask p50 ms"],
    )
    figures = {}
    for name, devset, corpus, index in devsets(run):
        run.log(f"dev set {name}")
        built = index or _kept_index(name, corpus)
        r = worker("devset_answers", {"name": name, "devset": str(devset), "corpus_dir": str(corpus), "index_dir": str(built), "reindex": index is None})
        ref = r["refusal"]
        t.add(name, f"{r['questions']} ({r['answerable']})", r["hit@1"], r["hit@5"], r["mrr10"], r["answer_quotes"],
              f"{r['cut_quotes']} of {r['quotes']}", f"{ref['unanswerable_refused']}/{r['uncovered']} ({ref['unanswerable_weak']} low-confidence)",
              f"{ref['answerable_refused'] - ref['answerable_weak']}/{r['answerable']}", ref["answerable_weak"], r["ask_p50"])
        figures[name] = r
    t.notes.append(
        "The answer states the fact: a labelled phrase is in the short answer, or a sentence it quotes lies inside one (share of the "
        "answerable questions). A quoted sentence is cut off when it does not start or end where a sentence of the note does "
        "(the note read from its file and cut into sentences as the chunker cuts it: dsqa.evaluation.note_sentences). Reproduce one set with "
        "`dsqa eval QUESTIONS --corpus FOLDER --index INDEX` (the study notes: `dsqa eval --study`)."
    )
    run.table(t)
    for name, r in figures.items():
        ref = r["refusal"]
        run.headlines[f"dev set {name}"] = (
            f"hit@1 {r['hit@1']:.3f}, states the fact {r['answer_quotes']:.3f}, cut-off sentences {r['cut_quotes']}/{r['quotes']}, "
            f"uncovered refused or low-confidence {ref['unanswerable_refused']}/{r['uncovered']}, "
            f"answerable refused {ref['answerable_refused'] - ref['answerable_weak']}/{r['answerable']} (+{ref['answerable_weak']} low-confidence)"
        )


# -- 2. indexing (notes) ---------------------------------------------------------------


def _phases(r: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())


def part_indexing(run: Run) -> None:
    corpus = run.tmp / "idx-corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    t = Table("Indexing the bundled notes (library call, model already loaded)", ["run", "encoder", "seconds", "chunks embedded", "texts embedded", "index MB", "phases (s)", "peak RSS MB"])
    results = {}
    for label, model, env in (
        ("full", "all-MiniLM-L6-v2", {}),
        ("full", "all-MiniLM-L6-v2", {"DSQA_ENCODER": "torch"}),
        ("full", "all-MiniLM-L6-v2-int8", {}),
    ):
        name = f"{model}{' (torch)' if env else ''}"
        run.log(f"full reindex of the notes: {name}")
        r = worker("reindex", {"corpus_dir": str(corpus), "index_dir": str(run.tmp / f"idx-{len(results)}"), "model": model, "full": True}, env=env)
        results[name] = r
        t.add(label, name, r["seconds"], r["report"]["embedded"], r["embedded_texts"], r["index_mb"], _phases(r), r["peak_rss_mb"])
    index = run.tmp / "idx-0"
    run.log("no-op and one-paragraph reindex")
    noop = worker("reindex", {"corpus_dir": str(corpus), "index_dir": str(index)})
    t.add("no-op", "all-MiniLM-L6-v2", noop["seconds"], noop["report"]["embedded"], noop["embedded_texts"], noop["index_mb"], _phases(noop), noop["peak_rss_mb"])
    note = corpus / "notes" / "unlimitediw-dist-sys-notes.md"
    text = note.read_text(encoding="utf-8")
    paragraphs = text.split("\n\n")
    middle = len(paragraphs) // 2
    paragraphs[middle] += " Overlay networks also carry the swarm's encrypted control traffic between managers."
    note.write_text("\n\n".join(paragraphs), encoding="utf-8")
    one = worker("reindex", {"corpus_dir": str(corpus), "index_dir": str(index)})
    t.add("one paragraph changed", "all-MiniLM-L6-v2", one["seconds"], one["report"]["embedded"], one["embedded_texts"], one["index_mb"], _phases(one), one["peak_rss_mb"])
    seconds, rss, _ = run_measured([DSQA, "reindex", "--corpus", str(corpus), "--index", str(index)])
    t.add("no-op, `dsqa reindex` process", "all-MiniLM-L6-v2", seconds, 0, 0, dir_size_mb(index), "whole process", rss)
    t.notes.append("Phases: time inside each step; 'embed' includes tokenisation. int8 is a separate model name (all-MiniLM-L6-v2-int8), so its index never mixes vectors with fp32.")
    run.table(t)
    full, tor = results["all-MiniLM-L6-v2"], results["all-MiniLM-L6-v2 (torch)"]
    run.cache["notes_full_s"] = full["seconds"]
    run.headlines["full reindex of the notes"] = f"{full['seconds']:.1f} s (torch encoder {tor['seconds']:.1f} s); no-op {noop['seconds']:.2f} s; one paragraph {one['seconds']:.2f} s"


# -- 3. KEP corpus ---------------------------------------------------------------------


def part_kep(run: Run) -> None:
    if not KEP_SOURCE.is_dir():
        run.log(f"skipping kep: no corpus at {KEP_SOURCE}")
        return
    corpus = run.tmp / "kep-corpus"
    if run.quick:
        shutil.copytree(KEP_SOURCE / "sig-apps", corpus / "sig-apps")
    else:
        shutil.copytree(KEP_SOURCE, corpus)
    files = [p for p in corpus.rglob("*.md")]
    mb = sum(p.stat().st_size for p in files) / 1e6
    models = ["all-MiniLM-L6-v2"] + ([] if run.quick else ["all-MiniLM-L6-v2-int8"])
    t = Table(
        f"Kubernetes design documents ({len(files)} files, {mb:.1f} MB{', sig-apps only (--quick)' if run.quick else ''}): full index",
        ["model", "document encoder", "minutes", "chunks", "window vectors", "chunks/s", "texts/s", "index MB on disk", "index type", "peak RSS MB", "phases (s)"],
    )
    q = Table(
        "Kubernetes design documents: warm queries and dev set (the KEP dev set, dsqa/devsets/kep.jsonl; the full corpus adds 600+ distractor documents)",
        ["model", "queries", "ask p50 ms", "ask p95 ms", "search p50 ms", "search p95 ms", "hit@1", "hit@5", "MRR@10", "ANN recall@10 vs exact (real vectors)", "ANN p50 ms", "peak RSS MB"],
    )
    for model in models:
        index = run.tmp / f"kep-index-{model}"
        run.log(f"KEP full index with {model} ({mb:.1f} MB)")
        r = worker("reindex", {"corpus_dir": str(corpus), "index_dir": str(index), "model": model, "full": True})
        t.add(model, r["report"]["encoder"], r["seconds"] / 60, r["report"]["total_chunks"], r["vectors"], r["report"]["total_chunks"] / r["seconds"], r["embedded_texts"] / r["seconds"], r["index_mb"], r["index_type"], r["peak_rss_mb"], _phases(r))
        run.log(f"KEP queries with {model}")
        first = model == models[0]
        k = worker("kep_query", {"corpus_dir": str(corpus), "index_dir": str(index), "model": model, "n": 100 if run.quick else 250, "compare_ann": first})
        if first:
            a = Table(
                f"ANN on the real KEP window vectors ({r['vectors']:,} vectors, {k['ann']['queries']} real questions as queries): recall@10 against exact",
                ["index", "build s", "recall@10", "query p50 ms"],
            )
            for v in k["ann_variants"]:
                a.add(v["index"], v["build_s"], v["recall@10"], v["p50_ms"])
            a.notes.append(
                f"In use by dsqa: {k['ann']['type']} over the {k['ann']['entries']:,} distinct vectors "
                f"(recall@10 {k['ann']['recall@10']:.3f}). The KEP corpus repeats its template text: "
                "with every copy in the graph, HNSW recall drops (rows 'every row')."
            )
            ann_table = a
        qq = k["quality"]
        q.add(model, k["queries"], k["ask_p50"], k["ask_p95"], k["search_p50"], k["search_p95"], qq["hit@1"], qq["hit@5"], qq["mrr10"], k["ann"]["recall@10"], k["ann"]["p50_ms"], k["peak_rss_mb"])
        if model == models[0]:
            run.headlines["KEP full index"] = f"{r['seconds'] / 60:.1f} min ({r['encoder']} encoder), {r['chunks']:,} chunks ({r['chunks'] / r['seconds']:.0f} chunks/s), {r['vectors']:,} vectors, {r['index_mb']:.0f} MB on disk; warm ask p50 {k['ask_p50']:.0f} ms"
            embed_s = r["phases"].get("embed", 0)
            t.notes.append(f"{model} ({r['encoder']} encoder): embedding is {embed_s / r['seconds']:.0%} of the time ({embed_s:.0f} s of {r['seconds']:.0f} s).")
        else:
            run.headlines["KEP full index (int8)"] = f"{r['seconds'] / 60:.1f} min; hit@1 {qq['hit@1']:.3f} / MRR {qq['mrr10']:.3f}"
    run.table(t)
    q.notes.append("Queries: the KEP dev questions plus the notes' dev questions (off-topic here), cycled.")
    run.table(q)
    run.table(ann_table)

    # Document-side throughput of each encoder on a sample of window texts.
    sample = _window_sample(corpus, 300 if run.quick else 1000)
    path = run.tmp / "window-sample.json"
    path.write_text(json.dumps(sample))
    t = Table(f"Document-side encoder throughput ({len(sample)} KEP window texts, length-sorted batches)", ["encoder", "threads", "texts/s", "tokens/s"])
    t.notes.append("bf16: 'threads' is the number of worker threads, each running its own batches.")
    encoders = [("torch", "all-MiniLM-L6-v2"), ("onnx", "all-MiniLM-L6-v2"), ("onnx", "all-MiniLM-L6-v2-int8"), ("bf16", "all-MiniLM-L6-v2")]
    for backend, model in encoders:
        for threads in (1, 2):
            run.log(f"throughput {backend} {model} x{threads}")
            r = worker("doc_throughput", {"texts": str(path), "backend": backend, "model": model, "threads": threads})
            label = {"torch": " (sentence-transformers, batch 32)", "bf16": " (torch bfloat16, one torch thread per worker thread, batches of ~4,096 word pieces)"}.get(backend, "")
            t.add(f"{backend} {model}{label}", threads, r["texts_per_s"], r["tokens_per_s"])
    run.table(t)


def _window_sample(corpus: Path, n: int) -> list[str]:
    from dsqa.build.chunking import Chunker
    from dsqa.encoders import get_embedder
    from dsqa.sources.loading import load_corpus
    from dsqa.sources.sentences import sentence_windows

    model = get_embedder("all-MiniLM-L6-v2")
    chunker = Chunker(model.count_tokens, model.max_tokens, 200, 24, True)
    notes = load_corpus(corpus).notes
    random.Random(0).shuffle(notes)
    texts: list[str] = []
    for note in notes[:60]:
        for chunk in chunker.chunk(note):
            texts.extend(" ".join(group) for _, _, group in sentence_windows(chunk.text, 3))
    random.Random(1).shuffle(texts)
    return texts[:n]


# -- 4. LangChain-tutorial baseline ---------------------------------------------------------


def part_baseline(run: Run) -> None:
    corpus, _ = run.notes_copy()
    warm = run.warm_query()
    run.log("LangChain-tutorial pipeline on the same notes")
    base = worker("baseline", {"corpus_dir": str(corpus), "n": 60 if run.quick else 225})
    notes_full = run.cache.get("notes_full_s")
    if notes_full is None:
        run.log("dsqa full reindex of the notes (for the ratio)")
        notes_full = worker("reindex", {"corpus_dir": str(corpus), "index_dir": str(run.tmp / "baseline-dsqa-index"), "full": True})["seconds"]
    d, b = warm["quality"], base["quality"]
    t = Table("Side by side on the same notes and dev questions: dsqa vs the LangChain-tutorial pipeline", ["metric", "dsqa", "LangChain tutorial", "dsqa / LangChain"])

    def row(name: str, x: float, y: float, better: str) -> None:
        t.add(name, x, y, f"{x / y:.2f}x ({better})" if y else "-")

    row("hit@1", d["hit@1"], b["hit@1"], "higher is better")
    row("hit@5", d["hit@5"], b["hit@5"], "higher is better")
    row("MRR@10", d["mrr10"], b["mrr10"], "higher is better")
    row("nDCG@10", d["ndcg10"], b["ndcg10"], "higher is better")
    row("median passage chars (top 5)", d["median_passage_chars"], b["median_passage_chars"], "shorter is easier to read")
    row("search p50 ms (warm)", warm["search_p50"], base["search_p50"], "lower is better")
    row("search p95 ms (warm)", warm["search_p95"], base["search_p95"], "lower is better")
    row("full index s (model loaded)", notes_full, base["index_s"], "lower is better")
    row("peak RSS MB (warm process)", warm["peak_rss_mb"], base["peak_rss_mb"], "lower is better")
    t.add("unanswerable questions refused", f"{d['refusal']['unanswerable_refused']}/28", "0/28 (never refuses)", "-")
    t.notes.append(
        f"LangChain pipeline: RecursiveCharacterTextSplitter(1000, 200) -> {base['chunks']} chunks, all-MiniLM-L6-v2 via sentence-transformers (torch), "
        "FAISS IndexFlatL2, top k, no reranker (what HuggingFaceEmbeddings + FAISS.from_documents do). "
        "Hit = a passage from the labelled note containing the labelled phrase (dsqa.evaluation)."
    )
    run.table(t)
    run.headlines["vs LangChain tutorial"] = (
        f"hit@1 {d['hit@1']:.3f} vs {b['hit@1']:.3f} ({d['hit@1'] / b['hit@1']:.2f}x), MRR {d['mrr10']:.3f} vs {b['mrr10']:.3f}, "
        f"search p50 {warm['search_p50']:.1f} vs {base['search_p50']:.1f} ms ({warm['search_p50'] / base['search_p50']:.2f}x)"
    )


# -- 5. scale curve -------------------------------------------------------------------------


def part_scale(run: Run) -> None:
    sizes = [10_000, 100_000] if run.quick else [10_000, 100_000, 1_000_000]
    t = Table(
        "Scale curve: synthetic unit vectors (384-d, see bench/synthetic.py), one query at a time, k=10",
        ["vectors", "index", "build s", "index MB", "peak RSS MB", "query p50 ms", "query p95 ms", "p50 ms at k=200", "recall@10 vs exact"],
    )
    for n in sizes:
        for kind in ("flat-ip", "hnsw"):
            run.log(f"scale {n:,} {kind}")
            r = worker("scale", {"n": n, "kind": kind, "queries": 200})
            t.add(n, r["kind"], r["build_s"], r["index_mb"], r["peak_rss_mb"], r["p50_ms"], r["p95_ms"], r["p50_ms_k200"], r["recall@10"])
            if n == sizes[-1] and kind == "hnsw":
                run.headlines[f"{n:,} vectors, HNSW"] = f"query p50 {r['p50_ms']:.2f} ms, recall@10 {r['recall@10']:.3f}, build (= rebuild on every write) {r['build_s']:.0f} s"
            if n == sizes[-1] and kind == "flat-ip":
                run.headlines[f"{n:,} vectors, flat"] = f"query p50 {r['p50_ms']:.1f} ms"
    t.notes.append("dsqa picks flat up to dsqa.ann.FLAT_MAX_VECTORS and HNSW beyond; 'k=200' is what the retriever asks for (4x the 50 candidates).")
    t.notes.append("Every write rebuilds the index from vectors.npy, so 'build s' is also the cost of any reindex that changes something.")
    run.table(t)

    t = Table("Flat vs HNSW at small sizes: where exact search stops being cheap", ["vectors", "flat p50 ms", "HNSW p50 ms", "HNSW recall@10", "HNSW build s"])
    for n in ([5_000, 20_000, 50_000] if run.quick else [2_000, 5_000, 10_000, 20_000, 50_000]):
        run.log(f"threshold {n:,}")
        f = worker("scale", {"n": n, "kind": "flat-ip", "queries": 200})
        h = worker("scale", {"n": n, "kind": "hnsw", "queries": 200})
        t.add(n, f["p50_ms"], h["p50_ms"], h["recall@10"], h["build_s"])
    run.table(t)


# -- 6. embedding on Ray ------------------------------------------------------------------

RAY_WAYS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("local path (no Ray)", {"way": "local"}),
    ("Ray, 1 actor x 2 CPUs", {"way": "ray", "actors": 1, "cpus_per_actor": 2}),
    ("Ray, 2 actors x 1 CPU", {"way": "ray", "actors": 2, "cpus_per_actor": 1}),
)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def part_ray(run: Run) -> None:
    """The local path against 1 and 2 local Ray actors on one sample of KEP
    texts (bench/ray_speed.py), taking turns, each way and round in a
    fresh interpreter."""
    if not KEP_SOURCE.is_dir():
        run.log(f"skipping ray: no corpus at {KEP_SOURCE}")
        return
    chunks, rounds = (100, 2) if run.quick else (500, 3)
    texts, reference = run.tmp / "ray-sample.json", run.tmp / "ray-reference.npy"
    run.log(f"ray: a sample of {chunks} KEP chunk texts and their sentences")
    sample = worker("ray_sample", {"corpus_dir": str(KEP_SOURCE), "chunks": chunks, "out": str(texts)})
    load_start = _load()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in RAY_WAYS}
    for r in range(rounds):
        for name, args in RAY_WAYS:
            run.log(f"ray round {r + 1}/{rounds}: {name}")
            runs[name].append(worker("ray_embed", {**args, "texts": str(texts), "reference": str(reference)}))
    load_end = _load()
    pieces = sample["word_pieces"]
    t = Table(
        f"Embedding on Ray (a local instance on this machine) against the local path: {sample['texts']:,} KEP texts, {pieces:,} word pieces",
        ["way", "median s", "word pieces/s", "throughput vs local", "rounds (s)", "one-text run, median s", "ray.init, median s", "least cosine to local", "encoder"],
    )
    local = median([x["seconds"] for x in runs[RAY_WAYS[0][0]]])
    ratios, inits, pools = {}, [], []
    for name, args in RAY_WAYS:
        rs = runs[name]
        seconds = median([x["seconds"] for x in rs])
        ratios[name] = local / seconds
        if args["way"] == "ray":
            inits += [x["ray_init_s"] for x in rs]
            pools += [x["one_text_s"] for x in rs]
        t.add(
            name, seconds, pieces / seconds, f"{ratios[name]:.2f}x", " ".join(f"{x['seconds']:.1f}" for x in rs),
            median([x["one_text_s"] for x in rs]), median([x["ray_init_s"] for x in rs]) if args["way"] == "ray" else "-",
            f"{min(x['least_cosine'] for x in rs):.6f}", " ".join(sorted({x["encoder"] for x in rs})),
        )
    model_load = median([x["model_load_s"] for x in runs[RAY_WAYS[0][0]]])
    t.notes += [
        f"Sample: {sample['texts']:,} distinct KEP texts, {sample['chunks']} chunk texts and {sample['sentences']} of their sentences (about the "
        f"proportion a full index embeds); medians of {rounds} rounds taking turns, each way and round in a fresh interpreter. "
        "'Throughput vs local' is the local path's median time over the way's.",
        f"Ray's start-up, apart from those timings: `ray.init(num_cpus=2)`, median {median(inits):.1f} s (once per process; a real "
        f"cluster is already up). Inside them: every reindex on Ray starts a new actor pool whose actors import dsqa and load the model, "
        f"the one-text run (median {median(pools):.1f} s on Ray; {model_load:.1f} s to load the model in the local process, "
        "which a reindex pays once and which is outside the local timings).",
        f"Load average at the part's start {load_start}, at its end {load_end}. Above 2 other work was competing for the 2 cores, "
        "and a way running more processes (Ray's actors and daemons) can then take a larger share of them: a ratio above 1 is not a gain from Ray.",
        "One machine measures Ray's costs, not a cluster's gain: the same 2 cores embed in every way. On N machines the embedding "
        "divides by about N (the texts are independent); the start-up costs do not (docs/scaling.md).",
    ]
    run.table(t)
    one, two = ratios[RAY_WAYS[1][0]], ratios[RAY_WAYS[2][0]]
    run.headlines["Ray embedding on this one machine, vs the local path"] = (
        f"{one:.2f}x the throughput with 1 actor x 2 CPUs, {two:.2f}x with 2 actors x 1 CPU; "
        f"Ray start {median(inits):.1f} s, a new actor pool {median(pools):.1f} s per reindex"
    )


# -- 7. saved documentation (HTML) ------------------------------------------------------

#: The HTML dev corpora: name, what it is, where its pages are, the folders
#: taken from there, the dev set (bench/data/html/). The Debian packages are
#: installed by the bench's set-up, never by dsqa.
HTML_DATA = ROOT / "bench" / "data" / "html"
HTML_CORPORA: tuple[tuple[str, str, Path, tuple[str, ...], str], ...] = (
    ("pages", "saved blog, wiki and generated-manual pages written for this bench (bench/data/html/pages)",
     HTML_DATA, ("pages",), "pages.jsonl"),
    ("python", "Python 3.11 documentation, Sphinx (Debian python3.11-doc): tutorial, howto, reference, faq, using",
     Path("/usr/share/doc/python3.11/html"), ("tutorial", "howto", "reference", "faq", "using"), "python.jsonl"),
    ("linux", "Linux 6.1 kernel documentation, Sphinx Read the Docs theme (Debian linux-doc-6.1): filesystems",
     Path("/usr/share/doc/linux-doc-6.1/html"), ("filesystems",), "linux.jsonl"),
)


#: The code issue 29 was filed against (every wrapped line a sentence, every
#: vector stored twice): the html part's "as filed" row runs it.
HTML_FILED = os.environ.get("DSQA_BENCH_BASE", "b8f666b")


def _html_filed(run: Run, code: Path, corpus: Path, name: str, devset: Path) -> dict[str, Any]:
    """One folder of pages indexed and asked by the code as filed (checked
    out at ``code``, run as its own process by bench/filed_html.py), scored
    here by today's rules (:func:`score_filed`), as
    :func:`bench.worker.html_corpus` scores the other rows."""
    out = run.tmp / f"html-{name}-filed.json"
    args = {"corpus_dir": str(corpus), "index_dir": str(run.tmp / f"html-{name}-filed"), "devset": str(devset), "out": str(out)}
    run_measured([PYTHON, str(ROOT / "bench" / "filed_html.py"), json.dumps(args)], env={"PYTHONPATH": str(code)})
    return score_filed(json.loads(out.read_text(encoding="utf-8")), devset)


def score_filed(r: dict[str, Any], devset: Path) -> dict[str, Any]:
    """What bench/filed_html.py wrote, scored by today's rules: chrome chunks
    and fragment spans (bench/html_quality.py, on that code's own spans) and
    hit@1, hit@5, MRR@10 of the dev questions with an answer
    (``dsqa.evaluation.answers_question`` on each of its top passages)."""
    from types import SimpleNamespace

    from bench import html_quality
    from dsqa.evaluation import answers_question, load_questions

    r = dict(r)
    chunks = r.pop("chunks")
    spans = sum(len(c[3]) for c in chunks)
    fragments = sum(html_quality.fragments(c[2], [tuple(s) for s in c[3]]) for c in chunks)
    ranks = []
    for q, answer in zip(load_questions(devset), r.pop("answers"), strict=True):
        if q.answerable:
            hits = [answers_question(SimpleNamespace(source=s, text=t), q) for s, t in answer["passages"]]  # type: ignore[arg-type]
            ranks.append(hits.index(True) + 1 if any(hits) else None)
    n = len(ranks) or 1
    return {
        **r,
        "chunks": len(chunks),
        "vectors_per_chunk": r["vectors"] / max(1, len(chunks)),
        # its FAISS index holds every row (no row shares an entry)
        "entries": r["vectors"],
        "entries_per_chunk": r["vectors"] / max(1, len(chunks)),
        "chrome_share": html_quality.Corpus([(c[0], c[1], c[2]) for c in chunks]).chrome_share(),
        "fragment_share": fragments / max(1, spans),
        "quality": {
            "hit@1": round(sum(1 for x in ranks if x == 1) / n, 4),
            "hit@5": round(sum(1 for x in ranks if x is not None and x <= 5) / n, 4),
            "mrr10": round(sum(1 / x for x in ranks if x is not None) / n, 4),
        },
    }


def part_html(run: Run) -> None:
    """Each HTML dev corpus indexed, in the same run, by the code issue 29
    was filed against (``HTML_FILED``, its own checkout and process), by
    today's code with the HTML reader before issue 29 (bench/html_v1.py),
    and by today's code: the index, its build and the dev-set figures side
    by side. ``$DSQA_BENCH_HTML`` (names, comma-separated) runs some of the
    corpora only."""
    import subprocess

    wanted = [n.strip() for n in os.environ.get("DSQA_BENCH_HTML", "").split(",") if n.strip()]
    filed_code = run.tmp / "html-filed-code"
    subprocess.run(["git", "worktree", "add", "--detach", str(filed_code), HTML_FILED], cwd=ROOT, check=True, capture_output=True)
    try:
        for name, about, source, folders, devset in HTML_CORPORA:
            if wanted and name not in wanted:
                run.log(f"skipping html/{name}: not in $DSQA_BENCH_HTML")
                continue
            if not all((source / f).is_dir() for f in folders):
                run.log(f"skipping html/{name}: no pages at {source} (apt-get install python3.11-doc linux-doc-6.1)")
                continue
            _html_corpus(run, filed_code, name, about, source, folders, devset)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(filed_code)], cwd=ROOT, capture_output=True)


def _html_corpus(run: Run, filed_code: Path, name: str, about: str, source: Path, folders: tuple[str, ...], devset: str) -> None:
    corpus = run.tmp / f"html-{name}"
    for folder in folders:
        for page in (source / folder).rglob("*.htm*"):
            target = corpus / folder / page.relative_to(source / folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, target)
    pages = sum(1 for _ in corpus.rglob("*.htm*"))
    mb = sum(p.stat().st_size for p in corpus.rglob("*.htm*")) / 1e6
    results = {}
    run.log(f"html/{name}: full index with the code as filed ({HTML_FILED}; {pages} pages, {mb:.1f} MB)")
    results["filed"] = _html_filed(run, filed_code, corpus, name, HTML_DATA / devset)
    for reader in ("v1", "current"):
        run.log(f"html/{name}: full index with the {reader} reader ({pages} pages, {mb:.1f} MB)")
        results[reader] = worker("html_corpus", {
            "corpus_dir": str(corpus), "index_dir": str(run.tmp / f"html-{name}-{reader}"),
            "devset": str(HTML_DATA / devset), "reader": reader,
        })
    t = Table(
        f"Saved documentation: {about} ({pages} pages, {mb:.1f} MB of HTML; {results['current']['questions']} dev questions, bench/data/html/{devset})",
        ["code", "pages indexed", "chunks", "window vectors", "vectors per chunk", "vector index entries", "entries per chunk",
         "index MB", "reindex s", "reindex CPU s",
         "chrome chunks", "fragment spans", "hit@1", "hit@5", "MRR@10"],
    )
    labels = (
        ("filed", f"as filed ({HTML_FILED}, its own checkout)"),
        ("v1", "today's, HTML reader 1 (bench/html_v1.py)"),
        ("current", "today's (dsqa.sources.formats.html)"),
    )
    for key, label in labels:
        r = results[key]
        q = r["quality"]
        t.add(label, r["notes"], r["chunks"], r["vectors"], r["vectors_per_chunk"], r["entries"], r["entries_per_chunk"],
              r["index_mb"], r["seconds"], r["cpu_s"],
              f"{r['chrome_share']:.1%}", f"{r['fragment_share']:.1%}", q["hit@1"], q["hit@5"], q["mrr10"])
    after = results["current"]

    def ratio(key: str, before: dict[str, Any]) -> str:
        return f"{after[key] / before[key]:.2f}x" if before[key] else "-"

    for key, label in (("filed", "today's / as filed"), ("v1", "today's / HTML reader 1")):
        before = results[key]
        t.add(label, "-", ratio("chunks", before), ratio("vectors", before), ratio("vectors_per_chunk", before),
              ratio("entries", before), ratio("entries_per_chunk", before), ratio("index_mb", before), ratio("seconds", before), ratio("cpu_s", before), "-", "-", "-", "-", "-")
    t.notes.append(
        "Chrome chunks: chunks at least half of whose words are on navigation lines; fragment spans: quotable sentences "
        "cut at a wrapped source line (both defined in bench/html_quality.py; the as-filed row's spans are its own "
        "sentence splitter's). CPU: user + system time of the reindex in its process (the model already loaded). "
        "Window vectors: the manifest's vector_count, one per window row (the as-filed code stores each twice: vectors.npy "
        "and the FAISS index); vector index entries: the vectors the index holds (today's stores rows with the same "
        "vector once: the lines of one code block or table share one window since issue 29)."
    )
    run.table(t)
    filed, bq, aq = results["filed"], results["filed"]["quality"], after["quality"]
    run.headlines[f"HTML {name}: as filed -> today"] = (
        f"hit@5 {bq['hit@5']:.3f} -> {aq['hit@5']:.3f}, chrome chunks {filed['chrome_share']:.1%} -> {after['chrome_share']:.1%}, "
        f"fragment spans {filed['fragment_share']:.1%} -> {after['fragment_share']:.1%}, vectors per chunk "
        f"{filed['vectors_per_chunk']:.1f} -> {after['vectors_per_chunk']:.1f} (index entries {filed['entries_per_chunk']:.1f} -> "
        f"{after['entries_per_chunk']:.1f}), index {ratio('index_mb', filed)}, "
        f"reindex CPU {ratio('cpu_s', filed)}"
    )


RUNNERS: dict[str, Callable[[Run], None]] = {
    "query": part_query,
    "answers": part_answers,
    "indexing": part_indexing,
    "kep": part_kep,
    "baseline": part_baseline,
    "scale": part_scale,
    "ray": part_ray,
    "html": part_html,
    "large": part_large,
    "adds": part_adds,
    "linux": part_linux,
}
RESULTS = ROOT / "bench" / "RESULTS.md"


class UsageError(Exception):
    """Bad options: one line on stderr, nothing measured."""


def _plan(args: argparse.Namespace) -> tuple[tuple[str, ...], Path | None]:
    """The parts to run and the file to write (None: print only), or
    UsageError before anything is measured."""
    parts = PARTS if args.only is None else tuple(p.strip() for p in args.only.split(",") if p.strip())
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise UsageError(f"unknown part(s) {', '.join(unknown) or repr(args.only)}; parts are {', '.join(PARTS)}")
    if not args.update:
        return parts, args.out or (RESULTS if args.only is None and not args.quick else None)
    if args.only is None:
        raise UsageError("--update needs --only PART,... (the parts to re-measure; a full run rewrites the whole file)")
    if args.quick and args.out is None:
        raise UsageError(f"--update --quick would put quick figures into {RESULTS.relative_to(ROOT)}; give --out FILE to try it")
    out = args.out or RESULTS
    try:
        check(out.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot update {out}: {exc.strerror or exc}") from None
    except ResultsError as exc:
        raise UsageError(f"cannot update {out} part by part: {exc}") from None
    return parts, out


def _write(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    print(f"wrote {path}")
    if path.resolve() == RESULTS.resolve():
        from bench import readme_table

        readme_table.main([])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="a few minutes: fewer queries and runs, one KEP folder, no 1M, a smaller Ray sample")
    parser.add_argument("--out", type=Path, help="write the Markdown results here (a full run writes bench/RESULTS.md)")
    parser.add_argument("--update", action="store_true", help="with --only: replace only those parts' sections of bench/RESULTS.md (or --out), keeping the rest")
    args = parser.parse_args(argv)
    try:
        parts, out = _plan(args)
    except UsageError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    command = "python -m bench" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    info = machine()
    started_at = _now()
    started = time.perf_counter()
    print(f"{command}\n" + "\n".join(f"{k}: {v}" for k, v in info.items()) + "\n", flush=True)
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dsqa-bench-") as tmp:
        run = Run(args.quick, Path(tmp))
        for part in parts:
            result = run.begin(part)
            part_load, part_started, part_at = _load(), time.perf_counter(), _now()
            try:
                RUNNERS[part](run)
            except Exception as exc:  # one broken part must not lose the others' tables
                import traceback

                traceback.print_exc()
                failed.append(part)
                run.table(Table(f"Part {part}: FAILED", ["error"], [[f"{type(exc).__name__}: {exc}"[:500]]]))
            if args.update:
                result.note = remeasured_note(command, part_at, time.perf_counter() - part_started, info, part_load, _load())
    info["load average at end"] = _load()
    seconds = time.perf_counter() - started
    print("Headlines:\n" + "\n".join(f"  {k}: {v}" for p in run.parts.values() for k, v in p.headlines.items()))
    if out is None:
        return 0
    if not args.update:
        _write(out, render(run.parts.values(), info, command, started_at, seconds))
        return 0
    # A part that failed or measured nothing keeps its old section.
    kept = [p for p in parts if p in failed or not run.parts[p].tables]
    for part in kept:
        print(f"python -m bench: part {part} {'failed' if part in failed else 'measured nothing'}; its section of {out} is kept", file=sys.stderr)
    done = [run.parts[p] for p in parts if p not in kept]
    if done:
        _write(out, update(out.read_text(encoding="utf-8"), done))
    return 1 if kept else 0


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


if __name__ == "__main__":
    raise SystemExit(main())
