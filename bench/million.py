"""dsqa's whole query path at a million chunks: ``python -m bench.million``.

The scale curve in ``python -m bench`` times the FAISS index alone. This
puts N chunks (default 1,000,000) behind dsqa's own ``Retriever``, the code
every ``search`` and ``ask`` runs: BM25 over the chunks' text, HNSW over
their vectors, and exact re-scoring of the candidates. Embedding a million
real chunks would take about ten hours here, so:

* text: the real chunks of the Kubernetes design documents (45k, cut by
  dsqa's chunker), repeated to N, so that BM25's posting lists grow with
  the corpus as they would;
* vectors: synthetic (``bench/synthetic.py``), one per chunk, and query
  vectors drawn the same way. A real index holds ~6 vectors per chunk
  (sentence windows); the FAISS part of that is the scale curve's row at
  the matching vector count.

Queries are the dev questions (both sets), each with a synthetic query
vector. Prints a table and writes it to ``bench/MILLION.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench import synthetic
from bench.common import (
    DEVSET,
    KEP_DEVSET,
    KEP_SOURCE,
    ROOT,
    Table,
    machine,
    peak_rss_mb,
    percentile,
)
from dsqa.build.chunking import Chunker
from dsqa.encoders import get_embedder
from dsqa.query.retrieval import Retriever
from dsqa.settings import Settings
from dsqa.sources.loading import load_corpus
from dsqa.storage import StoredIndex, ann
from dsqa.storage.lexical import LexicalIndex, document_tokens, lexical_text


def chunk_texts(corpus: Path) -> list[tuple[str, str]]:
    """(heading, text) of every chunk of the corpus, as dsqa cuts them."""
    s = Settings()
    model = get_embedder(s.model)
    chunker = Chunker(
        model.count_tokens, model.max_tokens, s.chunk_tokens, s.chunk_overlap_tokens, s.embed_headings, model.count_tokens_batch
    )
    return [(c.heading, c.text) for note in load_corpus(corpus).notes for c in chunker.chunk(note)]


def bm25_of_copies(chunks: list[tuple[str, str]], n: int) -> LexicalIndex:
    """BM25 over ``n`` chunks, the given ones repeated: each distinct text is
    tokenised once (dsqa's tokenizer) and its token ids reused per copy."""
    import bm25s

    vocab: dict[str, int] = {}
    ids = []
    for heading, text in chunks:
        ids.append([vocab.setdefault(token, len(vocab)) for token in document_tokens(lexical_text(heading, text))])
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenization.Tokenized(ids=[ids[i % len(ids)] for i in range(n)], vocab=vocab), show_progress=False)
    return LexicalIndex(retriever)


def questions() -> list[str]:
    out = []
    for path in (DEVSET, KEP_DEVSET):
        out += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.million", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--ef-search", default=f"{ann.HNSW_EF_SEARCH},256",
        help="comma-separated HNSW search breadths to time on the one built index (default: dsqa's, then 256)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "MILLION.md")
    args = parser.parse_args(argv)
    n = args.chunks
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    log("chunking the KEP corpus")
    chunks = chunk_texts(KEP_SOURCE)
    log(f"{len(chunks):,} real chunks; BM25 over {n:,} copies")
    t = time.perf_counter()
    lexical = bm25_of_copies(chunks, n)
    bm25_s = time.perf_counter() - t
    log(f"BM25 built in {bm25_s:.0f} s; {n:,} synthetic vectors and HNSW")
    qs = questions()
    vectors, query_vectors = synthetic.vectors(n, n_queries=args.queries, seed=1)
    t = time.perf_counter()
    faiss_index, distinct = ann.build(vectors)  # what a reindex builds (synthetic vectors: no copies)
    ann_s = time.perf_counter() - t
    log(f"{ann.describe(faiss_index)} built in {ann_s:.0f} s")

    records = [{"source": f"copy-{i // len(chunks)}.md", "heading": chunks[i % len(chunks)][0]} for i in range(n)]
    windows = np.column_stack([np.arange(n, dtype=np.int32), np.full(n, -1, np.int32), np.full(n, -1, np.int32)])
    index = StoredIndex(Path("."), {"notes": {}}, records, vectors, windows, faiss_index, lexical, distinct)
    settings = Settings()
    retriever = Retriever(index, embedder=None, settings=settings)  # type: ignore[arg-type]  (query vectors are given)

    table = Table(
        f"Query path at {n:,} chunks (dsqa.retrieval.Retriever.rank, k=5, {args.queries} queries, one at a time)",
        ["HNSW efSearch", "step", "p50 ms", "p95 ms"],
    )
    for ef in (int(v) for v in args.ef_search.split(",")):
        faiss_index.hnsw.efSearch = ef
        log(f"{args.queries} queries at efSearch {ef}")
        parts: dict[str, list[float]] = {"rank (whole search)": [], "BM25 scores": [], "ANN search": []}
        hits = 0
        for i in range(args.queries):
            q, qv = qs[i % len(qs)], query_vectors[i]
            t = time.perf_counter()
            ranked = retriever.rank(q, k=5, query_vector=qv)
            parts["rank (whole search)"].append((time.perf_counter() - t) * 1000)
            hits += bool(ranked)
            t = time.perf_counter()
            lexical.scores(q)
            parts["BM25 scores"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            ann.search(faiss_index, qv, settings.candidates * 4, rows=distinct)
            parts["ANN search"].append((time.perf_counter() - t) * 1000)
        assert hits == args.queries, "every query should find something"
        for name, ms in parts.items():
            table.add(ef, name, percentile(ms, 50), percentile(ms, 95))
    table.notes.append(
        f"{len(chunks):,} real KEP chunk texts repeated to {n:,}; one synthetic vector per chunk; "
        f"index {ann.describe(faiss_index).rsplit(' efSearch', 1)[0]} (built in {ann_s:.0f} s; dsqa searches with efSearch {ann.HNSW_EF_SEARCH}), BM25 built in {bm25_s:.0f} s; peak RSS {peak_rss_mb():,.0f} MB."
    )
    table.notes.append("'rank' is the whole search: BM25 scores of every chunk, top candidates, ANN, exact re-scoring; 'ask' adds the short answer and refusal (about 2 ms on the notes: ask 9.4 against search 7.7 ms p50 in bench/RESULTS.md).")
    text = table.markdown()
    print(text)
    info = machine()
    header = [
        "# dsqa at a million chunks",
        "",
        f"Written by `python -m bench.million --chunks {n}` on {started} (took {(time.perf_counter() - t0) / 60:.1f} min).",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
    ]
    args.out.write_text("\n".join(header) + "\n" + text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
