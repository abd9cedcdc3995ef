"""One settings object for the whole tool.

Every tunable lives here so that the CLI, the web page and the library agree on
defaults, and so that the index manifest can record exactly the settings an
index was built with (see :func:`dsqa.build.freshness.chunking_identity`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from . import environment, paths
from .errors import InvalidInputError


def _default_corpus() -> Path:
    env = environment.CORPUS.get()
    return Path(env) if env else paths.bundled_corpus()


def default_index(corpus_dir: Path) -> Path:
    """The index a corpus uses unless told otherwise: ``$DSQA_INDEX``, else the
    bundled index for the demo notes and the folder's own index in the
    per-user data directory for any other (:func:`dsqa.paths.index_dir_for`)."""
    env = environment.INDEX.get()
    return Path(env).expanduser() if env else paths.index_dir_for(corpus_dir)


#: Below this confidence the notes are taken not to cover the question;
#: calibrated on the dev set (``dsqa eval``).
REFUSAL_THRESHOLD = 0.72


#: The fields of :meth:`Settings.confidence`.
CONFIDENCE_FIELDS = ("coverage_weight", "confidence_passages", "unknown_term_penalty", "max_unknown_terms")


def parse_threshold(value: str, where: str) -> float:
    """``value`` (from ``where``: a flag or an environment variable) as a
    refusal threshold, or an ``InvalidInputError`` that says what is wrong with it."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidInputError(f"{where} must be a number such as {REFUSAL_THRESHOLD}, not {value!r}") from None
    return number


def _default_refusal_threshold() -> float:
    value = environment.REFUSAL_THRESHOLD.get().strip()
    return parse_threshold(value, environment.REFUSAL_THRESHOLD.name) if value else REFUSAL_THRESHOLD


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, or an ``InvalidInputError``
    saying why ``origin`` is not one."""
    if not isinstance(origin, str):
        raise InvalidInputError(f"an allowed origin must be text like http://localhost:3000, not {origin!r}")
    text = origin.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
        raise InvalidInputError(
            f"allowed origin {origin!r} is not scheme://host[:port] (e.g. http://localhost:3000); "
            "give each origin exactly as the browser sends it"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def normalise_origins(origins: Iterable[str] | None) -> tuple[str, ...]:
    if origins is None:
        return ()
    if isinstance(origins, str):
        origins = [origins]
    return tuple(dict.fromkeys(normalise_origin(o) for o in origins))


def _default_allow_origins() -> tuple[str, ...]:
    value = environment.ALLOW_ORIGINS.get()
    try:
        return normalise_origins(o for o in re.split(r"[\s,]+", value) if o)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{environment.ALLOW_ORIGINS.name}: {exc}") from None


def _check_whole(name: str, value: object, low: int, high: int | None = None) -> None:
    """An ``InvalidInputError`` unless ``value`` is a whole number from
    ``low`` (up to ``high``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"of at least {low}" if high is None else f"between {low} and {high}"
        raise InvalidInputError(f"{name} must be a whole number {bounds}, not {value!r}")


@dataclass(frozen=True)
class Settings:
    """Where things are and how they are built and searched.

    ``corpus_dir`` defaults to ``$DSQA_CORPUS``, else the bundled demo notes;
    ``index_dir`` to :func:`default_index` of the corpus (a folder of one's
    own gets its own index in the per-user data directory, never the demo's).
    """

    # -- where the notes and the index are
    #: The notes folder.
    corpus_dir: Path = field(default_factory=_default_corpus)
    #: The index folder. Always a Path once constructed; leaving it out (or passing ``None``)
    #: gives :func:`default_index` of ``corpus_dir``.
    index_dir: Path = field(default=cast(Path, None))
    #: When the index no longer matches the corpus, model or chunking
    #: settings, bring it up to date before answering (else raise
    #: ``StaleIndexError``).
    auto_reindex: bool = True

    # -- the model and the chunks (part of an index's identity: see ``chunking``)
    #: Name of a registered embedding model (see ``dsqa.register_model``).
    model: str = "all-MiniLM-L6-v2"
    #: Target chunk size in the model's own word pieces. Smaller than the
    #: model's limit so passages stay citable (about 1,000 characters).
    chunk_tokens: int = 200
    #: Whole lines of the previous chunk repeated at the start of the next,
    #: up to this many tokens, so a fact on a boundary is findable from both.
    chunk_overlap_tokens: int = 24
    #: Prefix each chunk with its heading path when embedding it: a bullet
    #: under "Lab: Docker Networking" is about networking even if it does not
    #: say so.
    embed_headings: bool = True
    #: Besides the whole chunk, each sentence is embedded with its
    #: neighbours, this many sentences in all (the lines of a code block or
    #: a table: with all the block's lines).
    window_sentences: int = 3

    # -- ranking passages (``dsqa.query.retrieval``)
    #: A chunk's score: chunk_weight * cosine of the whole chunk
    #: + window_weight * cosine of its best sentence window
    #: + bm25_weight * BM25 / the query's best BM25. Chosen on both dev sets
    #: (course notes and Kubernetes design documents): windows find the one
    #: bullet that answers in a list of notes; the whole chunk, with its
    #: heading path, keeps long documents on topic (see README, "How good is it").
    chunk_weight: float = 1.0
    window_weight: float = 0.3
    bm25_weight: float = 0.2
    #: + concept_weight * how well the chunk covers the question's
    #: worst-covered concept (see ``dsqa.query.retrieval``).
    concept_weight: float = 0.2
    #: Chunks taken from each retriever before the final scoring.
    candidates: int = 50

    # -- refusing: when the notes do not cover a question
    #: Below this confidence the notes are taken not to cover the question.
    #: The confidence is on each index's own scale (0: off-topic questions,
    #: 1: questions the rest of the corpus nearly answers; see
    #: ``dsqa.query.calibration``), so this one value serves every corpus. Default
    #: ``$DSQA_REFUSAL_THRESHOLD``, else chosen on the notes' and the KEPs' dev
    #: sets (``dsqa eval`` prints the sweep).
    refusal_threshold: float = field(default_factory=_default_refusal_threshold)
    #: Up to this far below the refusal threshold, the best passage is shown
    #: as the closest match with weak evidence rather than refused (``dsqa
    #: eval`` counts the weak answers, answerable and not). Chosen before the
    #: confidence moved to each index's calibrated scale; not yet re-tuned on it.
    weak_margin: float = 0.06

    # -- the confidence (``dsqa.query.confidence.raw_confidence``); each index's
    # calibration is measured with these (``dsqa.query.calibration``)
    #: Weight of the share of the question's terms found in the top passages.
    coverage_weight: float = 0.2
    #: How many top passages that share is taken over.
    confidence_passages: int = 3
    #: Taken off per question term the notes lack, times the share of ordinary words the corpus knows.
    unknown_term_penalty: float = 0.9
    #: Missing terms counted at most: a long question must not sink on its rare words alone.
    max_unknown_terms: int = 2

    # -- the quotes of the short answer (``dsqa.query.answering.pick_quotes``)
    #: Sentences quoted in the short answer, at most.
    answer_sentences: int = 3
    #: How many top passages the quoted sentences are taken from.
    quote_passages: int = 3
    #: Weight of the IDF-weighted share of the question's terms in a sentence.
    term_weight: float = 0.3
    #: Added to a sentence holding code when the question asks how to do something (the command is the
    #: answer), or holding a number when it asks how many, how much or how long (the amount is).
    command_weight: float = 0.1
    #: A sentence this much below the best one is not worth quoting. Sentence
    #: scores of the top passages lie within about 1 of each other, so the
    #: default quotes the best ``answer_sentences``: a tighter margin, on scores
    #: of three-sentence windows, dropped the sentence that states the fact
    #: whenever a neighbour's window scored a little higher.
    quote_margin: float = 1.0
    #: A sentence sharing more than this share of its terms (Jaccard) with a better quote is a near-duplicate.
    quote_overlap: float = 0.5
    #: The quotes together are at most this long, in characters (the first is always kept).
    max_answer_chars: int = 600

    # -- questions: how many passages, how long
    #: Passages a question returns unless it asks for another number.
    k: int = 5
    #: The most passages a question may ask for: the one limit that the
    #: library, the CLI (``-k``) and the page (its slider's maximum) share.
    max_k: int = 100
    #: Longer questions are almost always a paste accident; they would be
    #: truncated by the encoder anyway.
    max_question_chars: int = 2000

    # -- walking the notes folder
    #: Walk into folders on other filesystems (mount points) inside the
    #: corpus. Kernel pseudo-filesystems (/proc, /sys, /dev) are never walked.
    cross_mounts: bool = False
    #: A reindex stops before reading or embedding anything when the corpus
    #: holds more note files, or more bytes of notes, than this, unless
    #: ``allow_large_corpus``: such a corpus is most likely a home folder or
    #: ``/`` given by mistake, and would take hours of CPU to embed. Both are
    #: far above any notes folder kept by hand (the Kubernetes design-document
    #: corpus, the largest dsqa is measured on, is under a thousand files and
    #: a few tens of MB).
    max_corpus_files: int = 20_000
    max_corpus_bytes: int = 1_000_000_000
    allow_large_corpus: bool = False

    # -- reading one note (``dsqa.sources.formats.limits``)
    #: Bounds on reading one note (see ``dsqa.sources.formats.limits``):
    #: seconds, MiB of memory, characters of extracted text (PDFs, web pages,
    #: notebooks) and nesting depth (a page's elements, a notebook's JSON).
    #: A note over one is skipped with a warning naming it. Not part of an
    #: index's identity: a note they skip is simply not in the index.
    reader_timeout: float = 60.0
    reader_memory_mb: int = 2048
    reader_max_chars: int = 10_000_000
    reader_max_depth: int = 500

    # -- embedding: the encoder, and a Ray cluster (``dsqa.encoders.ray``)
    #: Let a large reindex (a million characters of text to embed or more)
    #: run the model with torch in bfloat16 on CPUs that report AMX tiles
    #: (``amx_bf16`` in /proc/cpuinfo): the same model, checked against fp32
    #: before use, faster there. Off by default: it loads torch, and it was
    #: measured on one kind of CPU only. ``DSQA_ENCODER=bf16`` forces it.
    bf16_encoder: bool = False
    #: Embed a reindex's new texts on a Ray cluster (``dsqa reindex --ray``,
    #: :mod:`dsqa.encoders.ray`): ``"auto"`` ($RAY_ADDRESS, else the cluster
    #: started on this machine with ``ray start``), ``"ray://HEAD:10001"``,
    #: ``"HOST:PORT"``, or ``"local"`` (start Ray for this one command).
    #: ``None``: embed in this process, and never import Ray. Not part of an
    #: index's identity: the index is the same either way.
    ray_address: str | None = None
    #: Actors embedding at once; 0: as many as the cluster's CPUs (and GPUs)
    #: hold at ``ray_cpus_per_actor`` (``ray_gpus_per_actor``) each.
    ray_actors: int = 0
    #: Texts per Ray batch (one call on one actor).
    ray_batch_size: int = 256
    #: CPUs Ray reserves for each actor; its encoder runs that many threads.
    ray_cpus_per_actor: float = 1.0
    #: GPUs Ray reserves for each actor. dsqa's encoders run on the CPU, so
    #: this only places actors on GPU nodes.
    ray_gpus_per_actor: float = 0.0
    #: How often an actor that died is restarted and its batch retried.
    ray_max_retries: int = 3
    #: Seconds the Ray address has to answer, as Ray, before the reindex
    #: stops with ``ClusterError`` (an open port of another server would
    #: otherwise keep ``ray.init`` retrying, and the index locked, until killed).
    ray_connect_timeout: float = 30.0

    # -- the web page
    #: Origins (``scheme://host[:port]``, e.g. ``http://localhost:3000``)
    #: whose pages may call the web page's API from the browser (``dsqa serve
    #: --allow-origin``); every other cross-origin request is refused.
    #: Default ``$DSQA_ALLOW_ORIGINS`` (separated by spaces or commas), else
    #: none. Not part of an index's identity.
    allow_origins: tuple[str, ...] = field(default_factory=_default_allow_origins)

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir).expanduser())
        index = default_index(self.corpus_dir) if self.index_dir is None else Path(self.index_dir).expanduser()
        object.__setattr__(self, "index_dir", index)
        object.__setattr__(self, "allow_origins", normalise_origins(self.allow_origins))
        _check_whole("max_k", self.max_k, 1)
        _check_whole("k", self.k, 1, self.max_k)
        if self.chunk_tokens < 16:
            raise InvalidInputError(f"chunk_tokens must be at least 16, got {self.chunk_tokens}")
        if self.window_sentences < 1:
            raise InvalidInputError("window_sentences must be at least 1")
        for name in ("refusal_threshold", "weak_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidInputError(f"{name} must be a number, not {value!r}")
        if self.weak_margin < 0:
            raise InvalidInputError(f"weak_margin must be 0 or more, got {self.weak_margin}")
        self._check_answering()
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens:
            raise InvalidInputError("chunk_overlap_tokens must be >= 0 and smaller than chunk_tokens")
        self._check_ray()
        self._check_readers()

    def _check_readers(self) -> None:
        """The reader bounds: a number of seconds above 0, whole numbers of at least 1."""
        seconds = self.reader_timeout
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
            raise InvalidInputError(f"reader_timeout must be a number of seconds above 0, not {seconds!r}")
        for name in ("reader_memory_mb", "reader_max_chars", "reader_max_depth"):
            _check_whole(name, getattr(self, name), 1)

    def _check_ray(self) -> None:
        """The Ray fields: an address that is not blank, counts and resources in range."""
        if self.ray_address is not None and not self.ray_address.strip():
            raise InvalidInputError("the Ray address is empty: give auto, local, HOST:PORT or ray://HOST:PORT")
        if self.ray_actors < 0 or self.ray_batch_size < 1 or self.ray_max_retries < 0:
            raise InvalidInputError("ray_actors and ray_max_retries must be >= 0, ray_batch_size >= 1")
        if isinstance(self.ray_connect_timeout, bool) or not isinstance(self.ray_connect_timeout, (int, float)) or not (
            0 < self.ray_connect_timeout < math.inf
        ):
            raise InvalidInputError(f"ray_connect_timeout must be a number of seconds above 0, not {self.ray_connect_timeout!r}")
        if self.ray_cpus_per_actor <= 0 or self.ray_gpus_per_actor < 0:
            raise InvalidInputError("ray_cpus_per_actor must be > 0 and ray_gpus_per_actor >= 0")

    def _check_answering(self) -> None:
        """The confidence's and the quotes' fields: finite weights of 0 or
        more, and counts of 1 or more (``max_unknown_terms``: 0 or more)."""
        for name in ("coverage_weight", "unknown_term_penalty", "term_weight", "command_weight", "quote_margin", "quote_overlap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InvalidInputError(f"{name} must be a number of 0 or more, not {value!r}")
        for name in ("answer_sentences", "confidence_passages", "quote_passages", "max_answer_chars"):
            _check_whole(name, getattr(self, name), 1)
        _check_whole("max_unknown_terms", self.max_unknown_terms, 0)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed; ``None`` values are ignored so CLI
        flags that were not given keep the defaults. A new ``corpus_dir``
        without an ``index_dir`` takes that corpus's default index, unless
        this one's index was chosen rather than defaulted."""
        given = {k: v for k, v in changes.items() if v is not None}
        if "corpus_dir" in given and "index_dir" not in given and self.index_dir == default_index(self.corpus_dir):
            given["index_dir"] = None
        return replace(self, **given)

    def chunking(self) -> dict[str, object]:
        """The settings that change which chunks exist; recorded in the manifest."""
        return {
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap_tokens": self.chunk_overlap_tokens,
            "embed_headings": self.embed_headings,
            "window_sentences": self.window_sentences,
        }

    def confidence(self) -> dict[str, object]:
        """The settings of the confidence (``dsqa.query.confidence.raw_confidence``),
        which each index's refusal calibration is measured with (see
        ``dsqa.query.calibration``); recorded in the manifest, so an index
        calibrated with others is recalibrated."""
        return {name: getattr(self, name) for name in CONFIDENCE_FIELDS}
