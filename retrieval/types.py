"""Seams of the retrieval layer: the ``Embedder`` and ``VectorIndex`` protocols and ``Hit``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from knowledge.schema import Entry

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape ``(len(texts), dim)``."""

    @property
    def name(self) -> str:
        """Identifier recorded in the index manifest (e.g. ``minilm:all-MiniLM-L6-v2``)."""
        ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        """Embed ``texts``; ``kind`` is ``"query"`` or ``"passage"`` (asymmetric models use it)."""
        ...


@runtime_checkable
class VectorIndex(Protocol):
    """Inner-product search over normalised vectors with stable int64 ids."""

    @property
    def size(self) -> int: ...

    def add(self, ids: npt.NDArray[np.int64], vectors: Vectors) -> None: ...

    def remove(self, ids: npt.NDArray[np.int64]) -> None: ...

    def search(
        self, queries: Vectors, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result, with provenance.

    ``score`` is calibrated to [0, 1] so that one threshold means "confident" across
    knowledge bases; ``dense_score`` is the raw cosine, ``lexical_score`` the raw BM25 score;
    ``overall_first``: first in the fused ranking before the language preference (the engine
    offers such a hit in another language as a suggestion when it cannot answer);
    ``lang_first``: first in the fused ranking among its language's candidates (with a
    language preference, every other language's first candidate comes back);
    ``translated``: whether another language has an answer that translates this entry's
    (:mod:`retrieval.translations`; None when unknown).
    """

    entry: Entry
    score: float
    matched: str  # the phrasing (question/alt question/passage text) that matched best
    dense_score: float = 0.0
    lexical_score: float = 0.0
    rank: int = 0
    overall_first: bool = False
    lang_first: bool = False
    translated: bool | None = None

    @property
    def entry_id(self) -> str:
        return self.entry.id

    @property
    def source(self) -> str:
        return self.entry.url or self.entry.source

    @property
    def lang(self) -> str:
        return self.entry.lang


@runtime_checkable
class Retriever(Protocol):
    """Hybrid search over the current index. ``lang`` puts that language's entries first
    (cross-language hits still come back when nothing in ``lang`` matches)."""

    def search(self, query: str, *, k: int = 5, lang: str | None = None) -> list[Hit]: ...


@runtime_checkable
class Reranker(Protocol):
    """Optional second stage (e.g. a cross-encoder): reorder/rescore the fused candidates."""

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...
