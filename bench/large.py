"""Big folders (issue 27), old code against new in the same run:
``python -m bench --only large``.

The old code is a commit (:data:`BASE`, or ``$DSQA_BENCH_BASE``) checked
out into a temporary git worktree; both run as ``dsqa`` processes with their
own ``PYTHONPATH``, on their own copy of the Kubernetes design documents
(``$DSQA_BENCH_LARGE_FOLDERS``: the SIG folders to take, comma-separated;
default every folder; ``--quick``: sig-apps). Measured for each:

* a full ``dsqa reindex`` with the default encoder: wall time, peak RSS,
  the index on disk and its ratio to the text;
* a cold ``dsqa ask`` (median of three processes): wall time, peak RSS;
* ``dsqa reindex`` after one note is changed (a paragraph appended), one
  added (a copy of a bundled note), and that one removed, twice each
  (``$DSQA_BENCH_LARGE_ROUNDS`` times): medians, and the new code's time as
  a share of the old's.

Then, on the new index: the vector codes (float32, float16, 8-bit) against
exact float32 search (recall@10, on the index's real vectors) and the
dev-set figures with each (bench worker task ``codes``;
``DSQA_BENCH_LARGE_CODES=0`` leaves them out).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.common import DSQA, KEP_SOURCE, ROOT, Table, median, run_measured, worker

#: The code before issue 27's storage changes: the old side of the comparison.
BASE = os.environ.get("DSQA_BENCH_BASE", "b8f666b")
QUESTION = "how does a volume populator fill a new persistent volume claim"
CHANGED = "sig-storage/1495-volume-populators/README.md"


def _folders(quick: bool) -> list[str]:
    if quick:
        return ["sig-apps"]
    wanted = os.environ.get("DSQA_BENCH_LARGE_FOLDERS", "").strip()
    if wanted:
        return [f.strip() for f in wanted.split(",") if f.strip()]
    return sorted(p.name for p in KEP_SOURCE.iterdir() if p.is_dir())


def _text_bytes(corpus: Path) -> int:
    return sum(p.stat().st_size for p in corpus.rglob("*.md"))


def _index_bytes(index: Path) -> int:
    gen = index / (index / "CURRENT").read_text().strip()
    return sum(f.stat().st_size for f in gen.rglob("*") if f.is_file())


class Side:
    """One version of dsqa with its own corpus copy and index."""

    def __init__(self, name: str, code: Path, root: Path, folders: list[str]):
        self.name, self.code = name, code
        self.corpus, self.index = root / "corpus", root / "index"
        for folder in folders:
            shutil.copytree(KEP_SOURCE / folder, self.corpus / folder)
        self.results: dict[str, Any] = {}

    def dsqa(self, *args: str) -> tuple[float, float]:
        cmd = [DSQA, *args, "--corpus", str(self.corpus), "--index", str(self.index)]
        seconds, rss, _ = run_measured(cmd, env={"PYTHONPATH": str(self.code)})
        return seconds, rss

    def reindex(self, label: str, *extra: str) -> None:
        self.results.setdefault(label, []).append(self.dsqa("reindex", "--yes", *extra))


def _edit(side: Side, round_: int) -> None:
    """Round ``round_`` of the one-note changes, each followed by a reindex."""
    note = side.corpus / CHANGED
    if note.is_file():
        with open(note, "a", encoding="utf-8") as fh:
            fh.write(f"\n\n## Added in round {round_}\n\nThe populator fills the volume before the claim binds, round {round_}.\n")
        side.reindex("one note changed")
    added = side.corpus / f"added-{round_}.md"
    bundled = sorted((ROOT / "corpus" / "notes").glob("*.md"))
    added.write_text(bundled[round_ % len(bundled)].read_text(encoding="utf-8"), encoding="utf-8")
    side.reindex("one note added")
    added.unlink()
    side.reindex("one note removed")


def part_large(run: Any) -> None:
    if not KEP_SOURCE.is_dir():
        run.log(f"skipping large: no corpus at {KEP_SOURCE}")
        return
    folders = _folders(run.quick)
    base_code = run.tmp / "large-base-code"
    subprocess.run(["git", "worktree", "add", "--detach", str(base_code), BASE], cwd=ROOT, check=True, capture_output=True)
    try:
        sides = [Side(f"before ({BASE})", base_code, run.tmp / "large-old", folders), Side("this checkout", ROOT, run.tmp / "large-new", folders)]
        _measure(run, sides, folders)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_code)], cwd=ROOT, capture_output=True)


def _measure(run: Any, sides: list[Side], folders: list[str]) -> None:
    text = _text_bytes(sides[0].corpus)
    files = len(list(sides[0].corpus.rglob("*.md")))
    for side in sides:
        run.log(f"large: full reindex, {side.name}")
        seconds, rss = side.dsqa("reindex", "--full", "--yes")
        side.results["full"] = (seconds, rss, _index_bytes(side.index))
        asks = [side.dsqa("ask", QUESTION, "--no-auto-reindex") for _ in range(3)]
        side.results["ask"] = (median([a[0] for a in asks]), max(a[1] for a in asks))
    rounds = 1 if run.quick else int(os.environ.get("DSQA_BENCH_LARGE_ROUNDS", "2"))
    for round_ in range(rounds):
        for side in sides:  # alternating, so that both see the same load
            run.log(f"large: one-note changes, round {round_ + 1}, {side.name}")
            _edit(side, round_)
    old, new = sides
    where = "all KEP folders" if len(folders) > 20 else ", ".join(folders)
    t = Table(
        f"Big folders: the KEPs ({where}; {files} files, {text / 1e6:.1f} MB of text), old code against new in the same run",
        ["measure", "before: seconds", "before: peak RSS MB", "now: seconds", "now: peak RSS MB", "now / before (time)"],
    )
    fo, fn = old.results["full"], new.results["full"]
    t.add("full reindex (default encoder)", fo[0], fo[1], fn[0], fn[1], fn[0] / fo[0])
    ao, an = old.results["ask"], new.results["ask"]
    t.add("cold dsqa ask (median of 3)", ao[0], ao[1], an[0], an[1], an[0] / ao[0])
    for label in ("one note changed", "one note added", "one note removed"):
        if label not in new.results:
            continue
        so, sn = median([r[0] for r in old.results[label]]), median([r[0] for r in new.results[label]])
        t.add(f"`dsqa reindex`, {label} (median of {len(new.results[label])})", so, max(r[1] for r in old.results[label]), sn,
              max(r[1] for r in new.results[label]), sn / so)
    t.notes.append(
        f"Index on disk: before {fo[2] / 1e6:.0f} MB ({fo[2] / text:.1f}x the text), now {fn[2] / 1e6:.0f} MB ({fn[2] / text:.1f}x)."
    )
    t.notes.append("Each figure is one `dsqa` process (wall time and its own peak RSS); the two versions alternate for the one-note changes.")
    run.table(t)
    run.headlines["big folders (KEPs " + where + ")"] = (
        f"index {fn[2] / 1e6:.0f} MB on disk ({fn[2] / text:.1f}x the text; before {fo[2] / text:.1f}x); full reindex peak RSS "
        f"{fn[1]:,.0f} MB (before {fo[1]:,.0f}); one note changed {median([r[0] for r in new.results.get('one note changed', [(float('nan'), 0)])]):.1f} s; cold ask {an[0]:.2f} s, {an[1]:.0f} MB"
    )
    if os.environ.get("DSQA_BENCH_LARGE_CODES", "1") == "0":
        return
    run.log("large: vector codes on the new index")
    r = worker("codes", {"corpus_dir": str(new.corpus), "index_dir": str(new.index)})
    c = Table(
        f"Vector codes on the real KEP vectors ({r['vectors']:,} vectors, {r['queries']} dev questions as queries): recall@10 against exact float32 search, and the KEP dev set",
        ["codes", "index MB", "recall@10", "max cosine error", "hit@1", "hit@5", "MRR@10", "refused (answerable / unanswerable)"],
    )
    for v in r["variants"]:
        c.add(v["codes"], v["mb"], v["recall@10"], v["max_err"], v["hit@1"], v["hit@5"], v["mrr@10"], f"{v['answerable_refused']} / {v['unanswerable_refused']}")
    c.notes.append("Each row rebuilds the index with those codes, ranks with the decoded vectors, and recalibrates refusal on it.")
    run.table(c)


#: Where ``python -m bench --only adds`` keeps its big synthetic index between
#: runs (``$DSQA_BENCH_CACHE``): building it is the slow part, and the
#: measurement is what adding to it costs.
CACHE = Path(os.environ.get("DSQA_BENCH_CACHE") or Path.home() / ".cache" / "dsqa-bench")


def part_adds(run: Any) -> None:
    """1,000 chunks (6,000 vectors) added to a 1M-vector index of the type
    dsqa builds for that many, as a reindex adds them (``ann.update``)."""
    n = 100_000 if run.quick else 1_000_000
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = CACHE / f"hnsw-sq8-{n}.faiss"
    run.log(f"adds: {n:,} synthetic vectors ({'kept from an earlier run' if cache.is_file() else 'building them first'})")
    r = worker("million_add", {"n": n, "cache": str(cache), "chunks": 1000, "per_chunk": 6, "rounds": 3})
    t = Table(
        f"Adding 1,000 chunks ({r['added_vectors']:,} vectors) to an index of {n:,} synthetic vectors ({r['kind']}, {r['file_mb']:.0f} MB on disk)",
        ["step of the write", "median s", "min s", "max s"],
    )
    steps = (("read_s", "read the index file into memory"), ("add_s", "`ann.update`: add the new vectors to the graph"),
             ("write_s", "write the new index file and fsync it"), ("total_s", "total"))
    for key, label in steps:
        xs = [x[key] for x in r["rounds"]]
        t.add(label, median(xs), min(xs), max(xs))
    built = f"building it took {r['build_s']:.0f} s in this run" if r["build_s"] else "it was built in an earlier run and kept in $DSQA_BENCH_CACHE"
    t.notes.append(
        f"{len(r['rounds'])} rounds, each from the same saved index, in one process (peak RSS {r['peak_rss_mb']:,.0f} MB); "
        f"rebuilt in any round: {any(x['rebuilt'] for x in r['rounds'])}. Before issue 27 every write rebuilt the whole index "
        f"(the scale part's 'build s' at 1M); {built}."
    )
    run.table(t)
    total = median([x["total_s"] for x in r["rounds"]])
    run.headlines[f"adding 1,000 chunks to {n:,} vectors"] = f"{total:.1f} s (read {median([x['read_s'] for x in r['rounds']]):.1f} s, add {median([x['add_s'] for x in r['rounds']]):.1f} s)"


#: Debian's linux-doc-6.1 pages (installed by the bench's set-up with apt,
#: never by dsqa); ``$DSQA_BENCH_LINUX_FOLDERS`` takes some of its folders
#: (comma-separated, default all).
LINUX_DOCS = Path("/usr/share/doc/linux-doc-6.1/html")


def part_linux(run: Any) -> None:
    """A full reindex of the Linux kernel documentation's HTML pages: time,
    peak RSS, chunks, index size, and what the HTML reader skipped or
    warned about."""
    if not LINUX_DOCS.is_dir():
        run.log(f"skipping linux: no pages at {LINUX_DOCS} (apt-get install linux-doc-6.1)")
        return
    wanted = [f.strip() for f in os.environ.get("DSQA_BENCH_LINUX_FOLDERS", "").split(",") if f.strip()]
    if run.quick and not wanted:
        wanted = ["filesystems"]
    corpus = run.tmp / "linux"
    sources = [LINUX_DOCS / f for f in wanted] if wanted else [LINUX_DOCS]
    for source in sources:
        for page in source.rglob("*.html"):
            target = corpus / page.relative_to(LINUX_DOCS)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, target)
    pages = list(corpus.rglob("*.html"))
    mb = sum(p.stat().st_size for p in pages) / 1e6
    where = ", ".join(wanted) if wanted else "every page"
    run.log(f"linux: full reindex of {len(pages):,} pages ({mb:.0f} MB, {where})")
    r = worker("linux_reindex", {"corpus_dir": str(corpus), "index_dir": str(run.tmp / "linux-index")})
    t = Table(
        f"Linux 6.1 kernel documentation (Debian linux-doc-6.1, {where}: {len(pages):,} HTML pages, {mb:.0f} MB): full reindex, default encoder",
        ["pages indexed", "skipped", "pages with warnings", "chunks", "window vectors", "text MB", "index MB", "index / text",
         "seconds", "peak RSS MB"],
    )
    t.add(r["notes"], len(r["skipped"]), len(r["warned"]), r["chunks"], r["vectors"], r["text_mb"], r["index_mb"],
          r["index_mb"] / r["text_mb"] if r["text_mb"] else 0.0, r["seconds"], r["peak_rss_mb"])
    for label, items in (("skipped", r["skipped"]), ("warned about", r["warned"])):
        kinds: dict[str, int] = {}
        for item in items:
            kinds[item["why"]] = kinds.get(item["why"], 0) + 1
        if kinds:
            t.notes.append(f"The HTML reader {label}: " + "; ".join(f"{why} ({n})" for why, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]) + ".")
    t.notes.append("One `reindex` in a fresh process (model loading included); text MB: the chunks' text (their small overlaps counted twice).")
    if wanted:
        everything = list(LINUX_DOCS.rglob("*.html"))
        whole = sum(p.stat().st_size for p in everything) / 1e6
        t.notes.append(
            f"A part of the documentation only ($DSQA_BENCH_LINUX_FOLDERS): these folders hold {len(pages):,} of its "
            f"{len(everything):,} pages ({mb:.0f} of {whole:.0f} MB); the whole folder was not indexed in this run."
        )
    run.table(t)
    run.headlines[f"Linux docs ({where})"] = (
        f"{r['notes']:,} pages, {r['chunks']:,} chunks, index {r['index_mb']:.0f} MB, {r['seconds'] / 60:.1f} min, peak RSS {r['peak_rss_mb']:,.0f} MB"
    )
