"""A small LRU cache in front of an embedder, shared by the NLU and the retriever so that one
user message is embedded once per turn (both ask for ``kind="query"`` of the same text)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from retrieval.types import Embedder, Vectors


class CachingEmbedder:
    """Implements :class:`retrieval.types.Embedder`; caches single rows by ``(kind, text)``."""

    def __init__(self, inner: Embedder, maxsize: int = 512) -> None:
        self.inner = inner
        self.maxsize = maxsize
        self._rows: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def contains(self, text: str, *, kind: str = "query") -> bool:
        """Whether ``text`` is cached (an embedding of it now would cost no model call)."""
        with self._lock:
            return (kind, text) in self._rows

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if len(texts) > 8:  # bulk (indexing, training): not worth caching
            return self.inner.embed(texts, kind=kind)
        out: list[Vectors | None] = []
        missing: list[int] = []
        with self._lock:
            for i, text in enumerate(texts):
                row = self._rows.get((kind, text))
                if row is not None:
                    self._rows.move_to_end((kind, text))
                    self.hits += 1
                else:
                    missing.append(i)
                out.append(row)
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing], kind=kind)
            with self._lock:
                for j, i in enumerate(missing):
                    out[i] = fresh[j]
                    self._rows[(kind, texts[i])] = fresh[j]
                    self.misses += 1
                while len(self._rows) > self.maxsize:
                    self._rows.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([r for r in out if r is not None]).astype(np.float32, copy=False)
