"""Embedding a reindex's new texts on a Ray cluster, with Ray Data.

``dsqa reindex --ray ADDRESS`` (``Settings.ray_address``) hands the texts a
reindex has to embed (only the new ones: :class:`dsqa.build.reindex._Build`
decides which, as for a local reindex) to a :class:`RayEmbedder`, which has
the interface of a local embedder. Everything else (chunking, BM25, FAISS,
the manifest, the atomic switch, the lock) stays on the driver, so an index
built this way is the same as one built locally and nothing in it says Ray
was used.

On the cluster, the texts become a dataset of ``(row, text)`` blocks,
longest texts first (a batch then holds texts of about one length, and the
slow batches do not come last), and ``map_batches`` runs them through a pool
of actors (:class:`_EmbedBatches`). Each actor builds the model with the
factory registered for it in this process (shipped to the actor by Ray's
pickling, so a model registered at run time reaches the actors too) and calls
that embedder's own ``embed``: the same encoder choice (onnxruntime, torch
bf16, sentence-transformers) and the same checks against the torch reference
as a local reindex, run on the worker. The choice is made per batch, which is
never large enough for ``auto`` to take torch bf16 (worth it for large jobs
on AMX CPUs): ``$DSQA_ENCODER`` on the driver, passed to the actors, asks
for it. Each actor's encoder runs as many threads as CPUs Ray reserved for
it (``$DSQA_THREADS``). Results carry their row, so they are
written where they belong in whatever order they arrive, and stream into the
caller's array instead of piling up as a list.

An actor that dies mid-batch is restarted and its batch retried, up to
``Settings.ray_max_retries`` times. A cluster that cannot be reached is one
:class:`~dsqa.errors.ClusterError` naming the address (Ray itself would
keep retrying an unreachable address for minutes), and so is an address
where something else listens: before Ray is imported, the address must
complete a gRPC handshake (Ray's GCS and its client server speak gRPC)
within ``Settings.ray_connect_timeout`` seconds.

Ray is imported here only, and this module only when ``ray_address`` is set.
Every node needs the same dsqa installed (``pip install 'dsqa[ray]'``) and
the model's package.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import environment
from .._version import __version__
from ..errors import ClusterError
from ..settings import Settings
from .interface import Embedder

log = logging.getLogger("dsqa")

#: Seconds to wait for the cluster's address to answer (a TCP connection,
#: then a gRPC handshake) before giving up (``Settings.ray_connect_timeout``).
CONNECT_TIMEOUT = Settings.ray_connect_timeout


class _EmbedBatches:
    """The callable class ``map_batches`` runs in each actor: the model is
    built once per actor, then embeds one batch per call."""

    def __init__(self, factory: Callable[[], Embedder], identity: tuple, version: str, mode: str | None, threads: int):
        if version != __version__:
            raise ClusterError(f"this Ray worker has dsqa {__version__}, the driver {version}: install the same on every node")
        if mode:
            environment.ENCODER.set(mode)  # the driver's encoder choice
        environment.THREADS.set(str(threads))
        self.embedder = factory()
        mine = (self.embedder.name, self.embedder.dimension, self.embedder.max_tokens)
        if mine != tuple(identity):
            raise ClusterError(f"the Ray worker's model is {mine}, the driver's {tuple(identity)}: install the same model on every node")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        encoder = self.embedder.last_encoder
        return {"row": batch["row"], "vector": vectors, "encoder": np.full(len(texts), encoder)}


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail within about ``timeout`` seconds, naming the address, when
    nothing answers there or what answers does not speak gRPC's HTTP/2 (an
    open port of some other server, where ``ray.init`` would retry until
    killed).

    ``auto`` means ``$RAY_ADDRESS`` if set, else the cluster started on this
    machine (which Ray finds, or says it did not find, by itself); ``local``
    starts Ray in this process."""
    target = address
    if target == "auto":
        target = os.environ.get("RAY_ADDRESS") or "auto"
    if target in ("auto", "local"):
        return
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"Ray address {address!r} is not auto, local, HOST:PORT or ray://HOST:PORT")
    shown = address if target == address else f"{target} (from RAY_ADDRESS)"
    deadline = time.monotonic() + timeout
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Ray cluster at {shown}: {exc.strerror or exc}; is it running (ray start --head) "
            "and is the address right?"
        ) from None
    tls = os.environ.get("RAY_USE_TLS", "").lower() in ("1", "true")  # a TLS handshake, not checked here
    if not tls and not _speaks_grpc(host.strip("[]"), int(port), max(0.1, deadline - time.monotonic())):
        raise ClusterError(
            f"cannot reach the Ray cluster at {shown}: something listens there but did not answer as Ray "
            f"within {timeout:g} s (Settings.ray_connect_timeout); is the port Ray's (6379, or 10001 for ray://)?"
        )


def _speaks_grpc(host: str, port: int, timeout: float) -> bool:
    """Whether the server at ``host``:``port`` answers an HTTP/2 connection
    preface (what every gRPC connection starts with) with its own SETTINGS
    frame within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(_HTTP2_PREFACE + _HTTP2_EMPTY_SETTINGS)
            head = b""
            while len(head) < 9:
                piece = conn.recv(9 - len(head))
                if not piece:
                    return False
                head += piece
    except OSError:  # refused, reset, or no answer in time
        return False
    return head[3] == 0x04 and head[5:9] == b"\0\0\0\0"  # a SETTINGS frame on stream 0


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: A frame header: length 0, type 4 (SETTINGS), no flags, stream 0.
_HTTP2_EMPTY_SETTINGS = b"\0\0\0\x04\0\0\0\0\0"


@dataclass(frozen=True)
class RayOptions:
    """Where and how :class:`RayEmbedder` embeds: the ``ray_*`` fields of
    :class:`dsqa.Settings` (:meth:`of`), whose defaults these are."""

    #: ``"auto"``, ``"local"``, ``"HOST:PORT"`` or ``"ray://HEAD:10001"`` (``Settings.ray_address``).
    address: str
    actors: int = Settings.ray_actors
    batch_size: int = Settings.ray_batch_size
    cpus_per_actor: float = Settings.ray_cpus_per_actor
    gpus_per_actor: float = Settings.ray_gpus_per_actor
    max_retries: int = Settings.ray_max_retries
    connect_timeout: float = CONNECT_TIMEOUT

    @classmethod
    def of(cls, settings: Settings) -> RayOptions:
        if settings.ray_address is None:
            raise ValueError("Settings.ray_address is None: there is no Ray cluster to embed on")
        return cls(
            settings.ray_address,
            actors=settings.ray_actors,
            batch_size=settings.ray_batch_size,
            cpus_per_actor=settings.ray_cpus_per_actor,
            gpus_per_actor=settings.ray_gpus_per_actor,
            max_retries=settings.ray_max_retries,
            connect_timeout=settings.ray_connect_timeout,
        )


class RayEmbedder(Embedder):
    """An embedder (:class:`dsqa.encoders.Embedder`) whose ``embed`` runs on
    a Ray cluster. ``local`` is the same model in this process: it gives the
    name, dimension and token counts (tokenizer only), which chunking needs
    on the driver."""

    def __init__(self, local: Embedder, factory: Callable[[], Any], options: RayOptions):
        self.local = local
        self.factory = factory
        self.options = options
        self.name = local.name
        self.dimension = local.dimension
        self.max_tokens = local.max_tokens
        #: The encoder the actors used in the last call, as ``ray:<encoder>``.
        self.last_encoder = ""
        #: Actors the last call ran.
        self.last_actors = 0
        self._started = False  # whether this object connected Ray (and so disconnects it)

    @classmethod
    def from_settings(cls, settings: Settings, local: Embedder) -> RayEmbedder:
        from .registry import MODELS

        return cls(local, MODELS[settings.model], RayOptions.of(settings))

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        return self.local.count_tokens_batch(texts)

    def embed_into(
        self, texts: Sequence[str], out: np.ndarray, *, progress: bool | Callable[[int], None] = False
    ) -> np.ndarray:
        return self.embed(texts, progress=progress, out=out)

    def embed(
        self, texts: Sequence[str], *, progress: bool | Callable[[int], None] = False, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Unit vectors of ``texts``, one row each in input order, written
        into ``out`` (an array or memory map of ``len(texts)`` rows) as they
        arrive, when given. ``progress``: Ray Data's progress bars when true,
        or ``progress(n)`` after each batch of ``n`` texts arrives."""
        n = len(texts)
        if out is None:
            out = np.empty((n, self.dimension), dtype=np.float32)
        if out.shape != (n, self.dimension):
            raise ValueError(f"out has shape {out.shape}, expected {(n, self.dimension)}")
        if n == 0:
            return out
        ray = self._connect()
        try:
            self._run(ray, texts, out, progress)
        finally:
            if self._started:
                ray.shutdown()
        return out

    # -- internals ---------------------------------------------------------
    def _connect(self) -> Any:
        """Ray, connected: to the cluster at the address, or the connection
        this process already has (a Ray driver calling dsqa)."""
        check_reachable(self.options.address, self.options.connect_timeout)
        import ray
        import ray.data  # noqa: F401  (ray.data.* below)

        self._started = False
        if ray.is_initialized():
            return ray
        try:
            ray.init(address=self.options.address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterError(f"cannot connect to the Ray cluster at {self.options.address}: {first}") from None
        self._started = True
        return ray

    def _pool_size(self, ray: Any, blocks: int) -> int:
        if self.options.actors:
            return max(1, min(self.options.actors, blocks))
        resources = ray.cluster_resources()
        fit = int(resources.get("CPU", 1) // self.options.cpus_per_actor)
        if self.options.gpus_per_actor:
            fit = min(fit, int(resources.get("GPU", 0) // self.options.gpus_per_actor))
        if fit < 1:
            raise ClusterError(
                f"the Ray cluster at {self.options.address} has {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs: "
                f"not enough for one actor of {self.options.cpus_per_actor:g} CPUs and {self.options.gpus_per_actor:g} GPUs"
            )
        return max(1, min(fit, blocks))

    def _run(self, ray: Any, texts: Sequence[str], out: np.ndarray, progress: bool | Callable[[int], None]) -> None:
        import pyarrow as pa

        n = len(texts)
        order = sorted(range(n), key=lambda i: -len(texts[i]))
        size = self.options.batch_size
        blocks = [
            pa.table({"row": pa.array(order[o:o + size], pa.int64()), "text": [texts[i] for i in order[o:o + size]]})
            for o in range(0, n, size)
        ]
        actors = self._pool_size(ray, len(blocks))
        context = ray.data.DataContext.get_current()
        saved = context.enable_progress_bars, context.print_on_execution_start
        context.enable_progress_bars, context.print_on_execution_start = progress is True, False
        identity = (self.name, self.dimension, self.max_tokens)
        mode = environment.ENCODER.get() or None
        threads = max(1, math.ceil(self.options.cpus_per_actor))
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing max_restarts and max_task_retries
            # through map_batches but offers no other way to bound them (its
            # default retries a batch that kills its actor forever).
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = ray.data.from_arrow(blocks).map_batches(
                _EmbedBatches,
                fn_constructor_args=(self.factory, identity, __version__, mode, threads),
                batch_size=size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=self.options.cpus_per_actor,
                num_gpus=self.options.gpus_per_actor or None,
                max_restarts=self.options.max_retries,
                max_task_retries=self.options.max_retries,
            )
        filled = np.zeros(n, dtype=bool)
        encoders: set[str] = set()
        ray_data_log = logging.getLogger("ray.data")
        level = ray_data_log.level
        if not log.isEnabledFor(logging.DEBUG):
            ray_data_log.setLevel(logging.ERROR)  # its per-run INFO and progress-bar notices
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                rows = batch["row"]
                vectors = batch["vector"]
                if vectors.shape != (len(rows), self.dimension):
                    raise ClusterError(f"the Ray workers returned vectors of shape {vectors.shape[1:]}, expected ({self.dimension},)")
                out[rows] = vectors
                filled[rows] = True
                encoders.update(str(e) for e in batch["encoder"])
                if callable(progress):
                    progress(len(rows))
        except ClusterError:
            raise
        except Exception as exc:  # a task that failed on every retry: Ray's error, in one line
            cause = _root_cause(exc)
            if isinstance(cause, ClusterError):
                raise cause from None
            raise ClusterError(f"embedding on the Ray cluster at {self.options.address} failed: {cause}") from None
        finally:
            ray_data_log.setLevel(level)
            context.enable_progress_bars, context.print_on_execution_start = saved
        if not filled.all():
            raise ClusterError(f"the Ray cluster at {self.options.address} returned {int(filled.sum())} of {n} vectors")
        self.last_actors = actors
        used = "+".join(sorted(e for e in encoders if e))
        self.last_encoder = f"ray:{used}" if used else "ray"


def _root_cause(exc: BaseException) -> BaseException | str:
    """The user's exception inside Ray's wrappers (``RayTaskError`` keeps
    it as ``cause``), or the first line of Ray's message."""
    seen = exc
    for _ in range(5):
        inner = getattr(seen, "cause", None) or seen.__cause__
        if inner is None or inner is seen:
            break
        seen = inner
    if isinstance(seen, ClusterError):
        return seen
    text = str(seen).strip().splitlines()
    return f"{type(seen).__name__}: {text[0] if text else ''}"
